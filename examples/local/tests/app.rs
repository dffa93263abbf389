//! The local app over HTTP on loopback: status codes, what is enqueued, and the demo.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use myshoes::datastore::{Datastore, MemoryDatastore};
use myshoes::dispatcher::Outcome;
use myshoes::secret::Secret;
use myshoes::setup_script::RunnerSource;
use myshoes::stadium::MemoryStadium;
use myshoes_local::app::{App, AppOptions, WebhookResponse};
use myshoes_local::config::ConfigFile;
use myshoes_local::demo::{run_demo, sign, stand_in_runner_dir, DemoOptions, QUEUED_WEBHOOK};

const SECRET: &str = "app-test-secret";

fn example_config() -> myshoes_local::config::LoadedConfig {
    ConfigFile::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("myshoes.example.toml")).unwrap()
}

struct Running {
    url: String,
    datastore: Arc<MemoryDatastore>,
    stadium: Arc<MemoryStadium>,
    app: App,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(max_body_bytes: usize) -> Running {
    start_with(max_body_bytes, Duration::from_secs(60)).await
}

async fn start_with(max_body_bytes: usize, sweep_interval: Duration) -> Running {
    let datastore = Arc::new(MemoryDatastore::new());
    let stadium = Arc::new(MemoryStadium::new());
    let mut options = AppOptions::new(
        example_config(),
        Secret::new(SECRET),
        Secret::new("registration-token"),
    );
    options.max_body_bytes = max_body_bytes;
    options.sweep_interval = sweep_interval;
    let app = App::new(options, datastore.clone(), stadium.clone())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running_app = app.clone();
    let task = tokio::spawn(async move {
        running_app
            .run(listener, async {
                let _ = stopped.await;
            })
            .await
    });
    Running {
        url,
        datastore,
        stadium,
        app,
        stop: Some(stop),
        task,
    }
}

impl Running {
    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn post(url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, WebhookResponse) {
    let mut request = client().post(format!("{url}/webhook")).body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let parsed =
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("{status} {text:?}: {error}"));
    (status, parsed)
}

async fn post_signed(url: &str, event: &str, body: &[u8]) -> (u16, WebhookResponse) {
    let signature = sign(&Secret::new(SECRET), body);
    post(
        url,
        &[
            ("X-GitHub-Event", event),
            ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            ("x-hub-signature-256", &signature),
            ("content-type", "application/json"),
        ],
        body.to_vec(),
    )
    .await
}

#[tokio::test]
async fn queued_webhook_enqueues_and_launches() {
    let app = start(1 << 20).await;
    let mut outcomes = app.app.dispatcher().subscribe();
    let (status, response) = post_signed(&app.url, "workflow_job", QUEUED_WEBHOOK).await;
    assert_eq!(status, 202, "{response:?}");
    assert_eq!(response.result, "enqueued");
    assert_eq!(response.profile.as_deref(), Some("linux-x64"));
    assert_eq!(
        response.target.as_deref(),
        Some("octo-org/hello-world"),
        "the repository target wins"
    );

    let outcome = tokio::time::timeout(Duration::from_secs(30), outcomes.recv())
        .await
        .unwrap()
        .unwrap();
    let Outcome::Launched { runner, .. } = outcome else {
        panic!("expected a launch, got {outcome:?}");
    };
    assert_eq!(runner.job_id.to_string(), response.job_id.unwrap());
    assert_eq!(app.stadium.running().len(), 1);
    assert_eq!(app.datastore.list_runners().await.unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn duplicate_delivery_enqueues_once() {
    let app = start(1 << 20).await;
    let mut outcomes = app.app.dispatcher().subscribe();
    let (first, _) = post_signed(&app.url, "workflow_job", QUEUED_WEBHOOK).await;
    assert_eq!(first, 202);
    // Once while the job may still be queued, once after it was dispatched.
    let (status, response) = post_signed(&app.url, "workflow_job", QUEUED_WEBHOOK).await;
    assert_eq!(
        (status, response.result.as_str()),
        (200, "duplicate"),
        "{response:?}"
    );
    tokio::time::timeout(Duration::from_secs(30), outcomes.recv())
        .await
        .unwrap()
        .unwrap();
    let (status, response) = post_signed(&app.url, "workflow_job", QUEUED_WEBHOOK).await;
    assert_eq!(
        (status, response.result.as_str()),
        (200, "duplicate"),
        "{response:?}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !app.datastore.list_jobs().await.unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "jobs must be dispatched"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.stadium.running().len(), 1, "one runner for one job");
    app.stop().await;
}

#[tokio::test]
async fn bad_signature_is_401_and_enqueues_nothing() {
    let app = start(1 << 20).await;
    let wrong = sign(&Secret::new("not the secret"), QUEUED_WEBHOOK);
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![
            ("X-GitHub-Event", "workflow_job"),
            ("X-Hub-Signature-256", &wrong),
        ],
        vec![("X-GitHub-Event", "workflow_job")],
        vec![
            ("X-GitHub-Event", "workflow_job"),
            ("X-Hub-Signature-256", "sha256=zz"),
        ],
    ];
    for headers in cases {
        let (status, response) = post(&app.url, &headers, QUEUED_WEBHOOK.to_vec()).await;
        assert_eq!(status, 401, "{headers:?}: {response:?}");
        assert_eq!(response.result, "rejected");
        assert!(!response.reason.unwrap_or_default().contains(SECRET));
    }
    assert!(app.datastore.list_jobs().await.unwrap().is_empty());
    assert!(app.stadium.add_calls().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn unparseable_body_is_400() {
    let app = start(1 << 20).await;
    let (status, response) = post_signed(&app.url, "workflow_job", b"{not json").await;
    assert_eq!(status, 400, "{response:?}");
    assert!(app.datastore.list_jobs().await.unwrap().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn oversize_body_is_413() {
    let limit = myshoes_local::app::MIN_BODY_LIMIT;
    let app = start(limit).await;
    // One byte over reaches the receiver; far over is cut off by the server. Both are 413.
    for size in [limit + 1, limit * 4] {
        let mut body = QUEUED_WEBHOOK.to_vec();
        body.resize(size, b' ');
        let (status, response) = post_signed(&app.url, "workflow_job", &body).await;
        assert_eq!(status, 413, "{size} bytes: {response:?}");
        let reason = response.reason.unwrap();
        assert!(
            reason.contains(&format!("maximum of {limit} bytes")),
            "{reason}"
        );
    }
    assert!(app.datastore.list_jobs().await.unwrap().is_empty());
    app.stop().await;
}

async fn start_error(options: AppOptions) -> String {
    let error = App::new(
        options,
        Arc::new(MemoryDatastore::new()),
        Arc::new(MemoryStadium::new()),
    )
    .await
    .unwrap_err();
    myshoes::ErrorChain(&error).to_string()
}

#[tokio::test]
async fn startup_rejects_settings_that_drop_jobs() {
    let options = || {
        AppOptions::new(
            example_config(),
            Secret::new(SECRET),
            Secret::new("registration-token"),
        )
    };

    let mut empty_token = options();
    empty_token.registration_token = Secret::new("");
    let message = start_error(empty_token).await;
    assert!(
        message.contains("runner profile") && message.contains("registration token"),
        "{message}"
    );

    let mut empty_secret = options();
    empty_secret.webhook_secret = Secret::new("");
    assert!(start_error(empty_secret)
        .await
        .contains("GITHUB_APP_SECRET"));

    let mut limits_without_sweeper = options();
    limits_without_sweeper.sweep_interval = Duration::ZERO;
    assert!(start_error(limits_without_sweeper)
        .await
        .contains("SWEEP_INTERVAL_SECS"));

    let mut tiny_limit = options();
    tiny_limit.max_body_bytes = 0;
    assert!(start_error(tiny_limit).await.contains("below the minimum"));

    let mut missing_runner = options();
    missing_runner.runner_source = RunnerSource::PreInstalled {
        path: "/nonexistent/runner".into(),
        copy: true,
    };
    let message = start_error(missing_runner).await;
    assert!(
        message.contains("/nonexistent/runner has no config.sh"),
        "{message}"
    );
}

#[tokio::test]
async fn sha1_only_follows_setting() {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(QUEUED_WEBHOOK);
    let signature = format!("sha1={}", hex::encode(mac.finalize().into_bytes()));
    let headers = [
        ("X-GitHub-Event", "workflow_job"),
        ("X-Hub-Signature", signature.as_str()),
    ];

    let app = start(1 << 20).await;
    let (status, _) = post(&app.url, &headers, QUEUED_WEBHOOK.to_vec()).await;
    assert_eq!(status, 401, "SHA-1 only is rejected by default");
    app.stop().await;

    let datastore = Arc::new(MemoryDatastore::new());
    let mut options = AppOptions::new(
        example_config(),
        Secret::new(SECRET),
        Secret::new("registration-token"),
    );
    options.allow_sha1 = true;
    let app = App::new(options, datastore.clone(), Arc::new(MemoryStadium::new()))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app.router()).await });
    let (status, response) = post(&url, &headers, QUEUED_WEBHOOK.to_vec()).await;
    assert_eq!(status, 202, "{response:?}");
    server.abort();
}

#[tokio::test]
async fn ping_and_other_events_are_ignored() {
    let app = start(1 << 20).await;
    let (status, response) = post_signed(
        &app.url,
        "ping",
        br#"{"zen":"Design for failure.","hook_id":1}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(response.result, "ignored");
    let (status, response) = post_signed(&app.url, "push", b"{}").await;
    assert_eq!(status, 200);
    assert_eq!(response.result, "ignored");
    let (status, response) = post_signed(&app.url, "workflow_job", &with_action("waiting")).await;
    assert_eq!(status, 200);
    assert_eq!(response.result, "ignored", "{response:?}");
    assert!(app.datastore.list_jobs().await.unwrap().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn unknown_repository_is_ignored() {
    let app = start(1 << 20).await;
    let other = String::from_utf8(QUEUED_WEBHOOK.to_vec())
        .unwrap()
        .replace("octo-org/", "other-org/")
        .replace("octo-org\"", "other-org\"");
    let (status, response) = post_signed(&app.url, "workflow_job", other.as_bytes()).await;
    assert_eq!(status, 200, "{response:?}");
    assert_eq!(response.result, "ignored");
    assert!(response.reason.unwrap().contains("no active target"));
    assert!(app.datastore.list_jobs().await.unwrap().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn healthz_answers_ok() {
    let app = start(1 << 20).await;
    let response = client()
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    app.stop().await;
}

#[tokio::test]
async fn demo_runs_every_step_offline() {
    let temp = tempfile::tempdir().unwrap();
    let options = DemoOptions {
        config: example_config(),
        webhook_secret: Secret::new("demo-secret"),
        registration_token: Secret::new("demo-registration-token"),
        runner_source: RunnerSource::PreInstalled {
            path: stand_in_runner_dir(),
            copy: true,
        },
        instances_dir: temp.path().to_path_buf(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    let report = run_demo(options, |_| {}).await.unwrap();
    for expected in [
        "1. signature verified: HTTP 202",
        "2. decision: enqueue, matched runner profile \"linux-x64\"",
        "3. job stored:",
        "4. runner name: myshoes-",
        "5. instance launched on process:",
        "6. runner recorded:",
        "7. same delivery sent again: HTTP 200 duplicate",
        "8. delivery with a wrong signature: HTTP 401 rejected",
        "9. runner process exited with exit status: 0",
        "10. sweeper pass: delete runner myshoes-38000000001-1 (the Stadium no longer lists the instance), record now deleted",
        "NOTE: a stand-in runner ran",
    ] {
        assert!(
            report.contains(expected),
            "missing {expected:?} in:\n{report}"
        );
    }
    assert!(
        report.contains("stand-in"),
        "the stand-in's own output is shown:\n{report}"
    );
    assert!(
        !report.contains("demo-registration-token"),
        "the token must not be printed:\n{report}"
    );
    assert!(!report.contains("demo-secret"));
}

/// Returns the bundled queued delivery with another `action`.
fn with_action(action: &str) -> Vec<u8> {
    let text = String::from_utf8(QUEUED_WEBHOOK.to_vec()).unwrap();
    let changed = text.replacen(
        "\"action\":\"queued\"",
        &format!("\"action\":\"{action}\""),
        1,
    );
    assert_ne!(changed, text, "the fixture starts with action queued");
    changed.into_bytes()
}

#[tokio::test]
async fn completed_before_dispatch_cancels_launch() {
    let app = start(1 << 20).await;
    let mut outcomes = app.app.dispatcher().subscribe();

    // The job finished (say, on another runner) before its queued event was dispatched.
    let (status, response) = post_signed(&app.url, "workflow_job", &with_action("completed")).await;
    assert_eq!(
        (status, response.result.as_str()),
        (200, "cancelled"),
        "{response:?}"
    );
    let (status, _) = post_signed(&app.url, "workflow_job", QUEUED_WEBHOOK).await;
    assert_eq!(status, 202);

    let outcome = tokio::time::timeout(Duration::from_secs(30), outcomes.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(outcome, Outcome::Skipped { .. }), "{outcome:?}");
    assert!(
        app.stadium.add_calls().is_empty(),
        "a finished job gets no runner"
    );
    app.stop().await;
}

#[tokio::test]
async fn late_events_change_nothing_after_launch() {
    let app = start(1 << 20).await;
    let mut outcomes = app.app.dispatcher().subscribe();
    let (status, _) = post_signed(&app.url, "workflow_job", QUEUED_WEBHOOK).await;
    assert_eq!(status, 202);
    let outcome = tokio::time::timeout(Duration::from_secs(30), outcomes.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(outcome, Outcome::Launched { .. }), "{outcome:?}");

    let (status, response) = post_signed(&app.url, "workflow_job", &with_action("waiting")).await;
    assert_eq!(
        (status, response.result.as_str()),
        (200, "ignored"),
        "{response:?}"
    );
    let (status, response) =
        post_signed(&app.url, "workflow_job", &with_action("in_progress")).await;
    assert_eq!(status, 200, "{response:?}");
    assert!(response.reason.unwrap().contains("launched already"));
    let (status, response) = post_signed(&app.url, "workflow_job", &with_action("completed")).await;
    assert_eq!(status, 200, "{response:?}");
    assert_eq!(app.stadium.add_calls().len(), 1);
    assert_eq!(
        app.stadium.running().len(),
        1,
        "no event stops or doubles the launched runner"
    );
    app.stop().await;
}

#[tokio::test]
async fn job_on_own_runner_keeps_its_launch() {
    let app = start(1 << 20).await;
    let mut outcomes = app.app.dispatcher().subscribe();
    // A runner launched for another job took this job before its own launch ran.
    let text = String::from_utf8(with_action("in_progress")).unwrap();
    let taken = text.replacen(
        "\"runner_name\":null",
        "\"runner_name\":\"myshoes-37000000005-1\"",
        1,
    );
    assert_ne!(taken, text, "the fixture has a null runner_name");
    let (status, response) = post_signed(&app.url, "workflow_job", taken.as_bytes()).await;
    assert_eq!(
        (status, response.result.as_str()),
        (200, "ignored"),
        "{response:?}"
    );

    let (status, _) = post_signed(&app.url, "workflow_job", QUEUED_WEBHOOK).await;
    assert_eq!(status, 202);
    let outcome = tokio::time::timeout(Duration::from_secs(30), outcomes.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(outcome, Outcome::Launched { .. }),
        "the other job still needs this runner: {outcome:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn in_progress_on_own_runner_is_recorded_for_the_sweeper() {
    use myshoes::sweeper::activity_lock;

    let app = start(1 << 20).await;
    let text = String::from_utf8(with_action("in_progress")).unwrap();
    let started = text.replacen(
        "\"runner_name\":null",
        "\"runner_name\":\"myshoes-38000000001-1\"",
        1,
    );
    let (status, _) = post_signed(&app.url, "workflow_job", started.as_bytes()).await;
    assert_eq!(status, 200);
    let holder = app
        .datastore
        .lock_holder(&activity_lock("myshoes-38000000001-1"))
        .await
        .unwrap();
    assert!(holder.is_some(), "in_progress marks the runner busy");

    let finished = started.replacen("\"action\":\"in_progress\"", "\"action\":\"completed\"", 1);
    let (status, _) = post_signed(&app.url, "workflow_job", finished.as_bytes()).await;
    assert_eq!(status, 200);
    let holder = app
        .datastore
        .lock_holder(&activity_lock("myshoes-38000000001-1"))
        .await
        .unwrap();
    assert!(holder.is_none(), "completed clears the mark");
    app.stop().await;
}

#[tokio::test]
async fn sweeper_runs_on_its_interval() {
    let app = start_with(1 << 20, Duration::from_millis(50)).await;
    let mut outcomes = app.app.dispatcher().subscribe();
    let (status, _) = post_signed(&app.url, "workflow_job", QUEUED_WEBHOOK).await;
    assert_eq!(status, 202);
    let Outcome::Launched {
        runner, instance, ..
    } = tokio::time::timeout(Duration::from_secs(30), outcomes.recv())
        .await
        .unwrap()
        .unwrap()
    else {
        panic!("the job launches");
    };
    // The runner finishes its job and its instance ends; the next pass removes the record.
    app.stadium.finish(&instance.cloud_id);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let record = app.datastore.get_runner(runner.id).await.unwrap();
        if record.status == myshoes::model::RunnerStatus::Deleted {
            assert_eq!(
                record.deletion_reason.as_deref(),
                Some("the Stadium no longer lists the instance")
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sweeper did not remove the record"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn same_job_under_two_delivery_ids_launches_once() {
    let app = start(1 << 20).await;
    let mut outcomes = app.app.dispatcher().subscribe();
    let signature = sign(&Secret::new(SECRET), QUEUED_WEBHOOK);
    let mut results = Vec::new();
    // Two webhooks (say, a repository hook and an App hook) report one job attempt.
    for delivery_id in [
        "0b989ba4-242f-11e5-81e1-c7b6966d2516",
        "1c0a0cb5-353f-11e5-92f2-d8c7a77e3627",
    ] {
        let (status, response) = post(
            &app.url,
            &[
                ("X-GitHub-Event", "workflow_job"),
                ("X-GitHub-Delivery", delivery_id),
                ("X-Hub-Signature-256", &signature),
                ("Content-Type", "application/json"),
            ],
            QUEUED_WEBHOOK.to_vec(),
        )
        .await;
        results.push((status, response.result));
    }
    assert_eq!(
        results,
        [(202, "enqueued".to_owned()), (200, "duplicate".to_owned())]
    );
    let outcome = tokio::time::timeout(Duration::from_secs(30), outcomes.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(outcome, Outcome::Launched { .. }), "{outcome:?}");
    assert_eq!(
        app.stadium.add_calls().len(),
        1,
        "one runner for one job attempt"
    );
    app.stop().await;
}
