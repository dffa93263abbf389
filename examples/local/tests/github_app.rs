//! The local app with a GitHub App: JIT configs minted per job and the still-queued check,
//! against a GitHub fake on 127.0.0.1 (wiremock). No request leaves the machine: the
//! webhook's repository URL, and so the job's host, is the fake's address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use myshoes::datastore::{Datastore, MemoryDatastore};
use myshoes::dispatcher::Outcome;
use myshoes::github::{ClientConfig, GitHubApp, GitHubAppClient};
use myshoes::secret::Secret;
use myshoes::stadium::MemoryStadium;
use myshoes_local::app::{App, AppOptions};
use myshoes_local::config::ConfigFile;
use myshoes_local::demo::{sign, QUEUED_WEBHOOK};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "github-app-test-secret";
const INSTALLATION_ID: u64 = 71_234_567;
const JIT_CONFIG: &str = "eyJydW5uZXIiOiJqaXQtY29uZmlnLWZvci10ZXN0cyJ9";
const TEST_KEY: &str = include_str!("../../../myshoes/tests/fixtures/throwaway-test-rsa-key.pem");

/// Starts the app with its GitHub App pointed at `github` and returns its webhook URL.
async fn start(github: &MockServer) -> (String, App, Arc<MemoryStadium>) {
    let host = github.uri();
    let config = ConfigFile::parse(
        &format!(
            "github_host = '{host}'\n[[targets]]\nscope = 'octo-org'\n[[profiles]]\nname = 'linux-x64'\nlabels = ['linux', 'x64']\n"
        ),
        "test.toml",
    )
    .unwrap();
    let app = GitHubApp::new(12345, &Secret::new(TEST_KEY)).unwrap();
    let client = Arc::new(GitHubAppClient::new(app, ClientConfig::default()).unwrap());
    let mut options = AppOptions::new(config, Secret::new(SECRET), Secret::new(""));
    options.github_app = Some(client);
    let stadium = Arc::new(MemoryStadium::new());
    let app = App::new(options, Arc::new(MemoryDatastore::new()), stadium.clone())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    let running = app.clone();
    tokio::spawn(async move { running.run(listener, std::future::pending()).await });
    (url, app, stadium)
}

/// Returns the bundled queued delivery with its repository on `host`.
fn webhook_on(host: &str) -> Vec<u8> {
    String::from_utf8(QUEUED_WEBHOOK.to_vec())
        .unwrap()
        .replace(
            "https://github.com/octo-org/hello-world",
            &format!("{host}/octo-org/hello-world"),
        )
        .into_bytes()
}

async fn post(url: &str, body: &[u8]) -> u16 {
    let signature = sign(&Secret::new(SECRET), body);
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(url)
        .header("X-GitHub-Event", "workflow_job")
        .header("X-Hub-Signature-256", signature)
        .header("Content-Type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn mount_token(github: &MockServer) {
    Mock::given(method("POST"))
        .and(path(format!(
            "/api/v3/app/installations/{INSTALLATION_ID}/access_tokens"
        )))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "token": "ghs_installation_token_for_tests",
            "expires_at": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
        })))
        .expect(1)
        .mount(github)
        .await;
}

async fn mount_job_status(github: &MockServer, status: &str) {
    Mock::given(method("GET"))
        .and(path(
            "/api/v3/repos/octo-org/hello-world/actions/jobs/38000000001",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": 38_000_000_001u64,
            "status": status,
        })))
        .expect(1)
        .mount(github)
        .await;
}

#[tokio::test]
async fn queued_job_gets_jit_runner() {
    let github = MockServer::start().await;
    mount_token(&github).await;
    mount_job_status(&github, "queued").await;
    Mock::given(method("POST"))
        .and(path("/api/v3/orgs/octo-org/actions/runners/generate-jitconfig"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "runner": {"id": 23, "name": "myshoes-38000000001-1", "os": "unknown", "status": "offline", "busy": false, "labels": []},
            "encoded_jit_config": JIT_CONFIG,
        })))
        .expect(1)
        .mount(&github)
        .await;

    let (url, app, stadium) = start(&github).await;
    let mut outcomes = app.dispatcher().subscribe();
    assert_eq!(post(&url, &webhook_on(&github.uri())).await, 202);
    let outcome = tokio::time::timeout(Duration::from_secs(30), outcomes.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(outcome, Outcome::Launched { .. }), "{outcome:?}");

    let calls = stadium.add_calls();
    assert_eq!(calls.len(), 1);
    let script = calls[0].setup_script.script();
    assert!(
        script.contains(JIT_CONFIG),
        "the runner starts with the minted JIT config"
    );
    assert!(
        !script.contains("config.sh"),
        "a JIT runner skips config.sh"
    );
    assert_eq!(app.dispatcher().status_check_errors(), 0);
}

#[tokio::test]
async fn started_job_gets_no_runner() {
    let github = MockServer::start().await;
    mount_token(&github).await;
    mount_job_status(&github, "in_progress").await;
    // No generate-jitconfig mock: a call would get 404 and fail the launch.

    let (url, app, stadium) = start(&github).await;
    let mut outcomes = app.dispatcher().subscribe();
    assert_eq!(post(&url, &webhook_on(&github.uri())).await, 202);
    let outcome = tokio::time::timeout(Duration::from_secs(30), outcomes.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(outcome, Outcome::Skipped { .. }), "{outcome:?}");
    assert!(stadium.add_calls().is_empty());
    assert!(app.datastore().list_jobs().await.unwrap().is_empty());
}
