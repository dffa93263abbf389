//! Property test of the local app's webhook endpoint over HTTP on loopback: for generated
//! headers, bodies and signatures the response status is the one `webhook::receive`
//! assigns, and a rejected or ignored delivery stores no job.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use myshoes::datastore::{Datastore, MemoryDatastore};
use myshoes::secret::Secret;
use myshoes::stadium::MemoryStadium;
use myshoes::webhook::{receive, sign_sha256, DecideConfig, ReceiverConfig, WebhookHeaders};
use myshoes_local::app::{App, AppOptions};
use myshoes_local::config::{ConfigFile, LoadedConfig};
use myshoes_local::demo::QUEUED_WEBHOOK;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const SECRET: &str = "app-property-secret";

/// Returns `PROPTEST_CASES` when set, and `default` otherwise. An explicit `cases` in a
/// proptest config would ignore the variable.
fn case_count(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn example_config() -> LoadedConfig {
    ConfigFile::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("myshoes.example.toml")).unwrap()
}

/// Generates header values that survive HTTP: visible ASCII with inner spaces and no
/// surrounding whitespace, which servers strip.
fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[!-~]([ -~]{0,40}[!-~])?",]
}

#[derive(Debug, Clone)]
struct Delivery {
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

/// Generates deliveries: one in four is a correctly signed `queued` delivery for a fresh
/// workflow job id, with up to two bytes changed; the rest mix arbitrary headers, bodies
/// and signatures.
fn delivery() -> impl Strategy<Value = Delivery> {
    prop_oneof![1 => signed_queued_delivery(), 3 => mixed_delivery()]
}

fn signed_queued_delivery() -> impl Strategy<Value = Delivery> {
    let edits = proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 0..2);
    (40_000_000_000u64..50_000_000_000, edits).prop_map(|(workflow_job_id, edits)| {
        let text = String::from_utf8(QUEUED_WEBHOOK.to_vec()).unwrap();
        let mut body = text
            .replace("38000000001", &workflow_job_id.to_string())
            .into_bytes();
        for (index, byte) in edits {
            let position = index.index(body.len());
            body[position] = byte;
        }
        let headers = vec![
            ("X-GitHub-Event", "workflow_job".to_owned()),
            ("X-GitHub-Delivery", uuid::Uuid::new_v4().to_string()),
            ("Content-Type", "application/json".to_owned()),
            (
                "X-Hub-Signature-256",
                sign_sha256(&Secret::new(SECRET), &body),
            ),
        ];
        Delivery { headers, body }
    })
}

fn mixed_delivery() -> impl Strategy<Value = Delivery> {
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 0..4).prop_map(
            |edits| {
                let mut body = QUEUED_WEBHOOK.to_vec();
                for (index, byte) in edits {
                    let position = index.index(body.len());
                    body[position] = byte;
                }
                body
            }
        ),
    ];
    let event = prop_oneof![
        3 => Just(Some("workflow_job".to_owned())),
        1 => Just(None),
        1 => header_value().prop_map(Some),
    ];
    let delivery_id = prop_oneof![
        3 => "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}".prop_map(Some),
        1 => Just(None),
        1 => header_value().prop_map(Some),
    ];
    let content_type = prop_oneof![
        Just(None),
        Just(Some("application/json".to_owned())),
        Just(Some("application/x-www-form-urlencoded".to_owned())),
        header_value().prop_map(Some),
    ];
    // 0: signed correctly, 1: missing, 2: arbitrary value, 3: signed with another secret.
    let signing = 0u8..4;
    (
        body,
        event,
        delivery_id,
        content_type,
        signing,
        header_value(),
    )
        .prop_map(
            |(body, event, delivery_id, content_type, signing, arbitrary)| {
                let mut headers = Vec::new();
                if let Some(event) = event {
                    headers.push(("X-GitHub-Event", event));
                }
                if let Some(delivery_id) = delivery_id {
                    headers.push(("X-GitHub-Delivery", delivery_id));
                }
                if let Some(content_type) = content_type {
                    headers.push(("Content-Type", content_type));
                }
                match signing {
                    0 => headers.push((
                        "X-Hub-Signature-256",
                        sign_sha256(&Secret::new(SECRET), &body),
                    )),
                    1 => {}
                    2 => headers.push(("X-Hub-Signature-256", arbitrary)),
                    _ => headers.push((
                        "X-Hub-Signature-256",
                        sign_sha256(&Secret::new("another secret"), &body),
                    )),
                }
                Delivery { headers, body }
            },
        )
}

#[test]
fn webhook_status_matches_receive_and_rejections_store_nothing() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let datastore = Arc::new(MemoryDatastore::new());
    let config = example_config();
    let oracle = ReceiverConfig::new(DecideConfig::new(
        config.profiles.clone(),
        config.github_host.clone(),
    ));
    let url = runtime.block_on(async {
        let options = AppOptions::new(config, Secret::new(SECRET), Secret::new("token"));
        let app = App::new(options, datastore.clone(), Arc::new(MemoryStadium::new()))
            .await
            .unwrap();
        // Only the HTTP routes: without the dispatcher loop, stored jobs stay in the queue
        // where the test counts them.
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let url = format!("http://{}/webhook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app.router()).await });
        url
    });
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let statuses = std::sync::Mutex::new(std::collections::BTreeSet::new());

    let mut runner = TestRunner::new(Config {
        cases: case_count(96),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&delivery(), |delivery| {
            runtime.block_on(async {
                let jobs_before = datastore.list_jobs().await.unwrap().len();
                let mut request = client.post(&url).body(delivery.body.clone());
                for (name, value) in &delivery.headers {
                    request = request.header(*name, value.as_str());
                }
                let status = request.send().await.unwrap().status().as_u16();
                statuses.lock().unwrap().insert(status);
                let jobs_after = datastore.list_jobs().await.unwrap().len();

                let headers = WebhookHeaders::from_pairs(
                    delivery
                        .headers
                        .iter()
                        .map(|(name, value)| (*name, value.as_str())),
                );
                match receive(&headers, &delivery.body, &Secret::new(SECRET), &oracle) {
                    Err(error) => {
                        prop_assert_eq!(status, error.status_code(), "{}", error);
                        prop_assert_eq!(
                            jobs_after,
                            jobs_before,
                            "a rejected delivery stored a job"
                        );
                    }
                    Ok(_) => {
                        prop_assert!(
                            status == 200 || status == 202,
                            "an accepted delivery got {}",
                            status
                        );
                        let stored = if status == 202 { 1 } else { 0 };
                        prop_assert_eq!(jobs_after, jobs_before + stored);
                    }
                }
                Ok(())
            })
        })
        .unwrap();

    // The generator must reach every stage of the receiver, or the test checks little.
    let statuses = statuses.into_inner().unwrap();
    for expected in [202, 400, 401] {
        assert!(
            statuses.contains(&expected),
            "no case got {expected}: {statuses:?}"
        );
    }
}
