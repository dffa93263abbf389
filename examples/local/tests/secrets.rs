//! No secret reaches a log line or a `Debug` string.
//!
//! One full run of the local app with a GitHub App against a GitHub fake on 127.0.0.1
//! (wiremock) is logged at TRACE level into a buffer. The run has a launch with a JIT
//! config, a delivery with a bad signature, a job whose JIT request GitHub rejects, a job
//! whose Stadium fails, a registration token and an installation whose token request fails.
//! The buffer must contain none of the webhook secret, the private key's PEM lines, the
//! installation token, the registration token, the JIT configs or a JWT.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use myshoes::credentials::{RunnerCredentials, StaticRegistrationToken};
use myshoes::datastore::MemoryDatastore;
use myshoes::dispatcher::Outcome;
use myshoes::fault::{Fault, FaultPlan, FaultRule, FaultyCredentials, FaultyStadium, Op};
use myshoes::github::{ClientConfig, CredentialKind, GitHubApp, GitHubAppClient, Installation};
use myshoes::model::{GitHubHost, JobId, ResourceType, TargetId};
use myshoes::secret::Secret;
use myshoes::setup_script::{RunnerCredential, SetupScriptParams};
use myshoes::stadium::{AddInstanceRequest, MemoryStadium};
use myshoes_local::app::{App, AppOptions};
use myshoes_local::config::ConfigFile;
use myshoes_local::demo::{sign, QUEUED_WEBHOOK};
use serde_json::json;
use wiremock::matchers::{body_partial_json, method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const WEBHOOK_SECRET: &str = "webhook-secret-never-logged-5c1e";
const INSTALLATION_ID: u64 = 71_234_567;
const FAILING_INSTALLATION_ID: u64 = 71_234_999;
const INSTALLATION_TOKEN: &str = "ghs_installation_token_never_logged";
const REGISTRATION_TOKEN: &str = "AABBCCregistrationtokenneverlogged";
const STATIC_REGISTRATION_TOKEN: &str = "AABBCCstaticregistrationtoken";
const JIT_CONFIG: &str = "eyJqaXQiOiJmaXJzdC1qaXQtY29uZmlnLW5ldmVyLWxvZ2dlZCJ9";
const JIT_CONFIG_FOR_FAILED_STADIUM: &str =
    "eyJqaXQiOiJzZWNvbmQtaml0LWNvbmZpZy1uZXZlci1sb2dnZWQifQ";
const TEST_KEY: &str = include_str!("../../../myshoes/tests/fixtures/throwaway-test-rsa-key.pem");

#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Returns the buffer that collects every log line of this test binary at TRACE level,
/// from every thread and crate.
///
/// The subscriber is the global default, because `tracing` caches per-callsite interest
/// across threads, so a thread-local default misses events on runtime worker threads.
fn captured_logs() -> &'static LogBuffer {
    static LOGS: OnceLock<LogBuffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = LogBuffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in this test binary");
        buffer
    })
}

/// Every string that must never be logged or shown by `Debug`.
fn secrets() -> Vec<String> {
    let mut secrets: Vec<String> = [
        WEBHOOK_SECRET,
        INSTALLATION_TOKEN,
        REGISTRATION_TOKEN,
        STATIC_REGISTRATION_TOKEN,
        JIT_CONFIG,
        JIT_CONFIG_FOR_FAILED_STADIUM,
        // The start of every base64-encoded JSON object, such as a JWT or a JIT config.
        "eyJ",
        "Bearer",
    ]
    .iter()
    .map(|secret| (*secret).to_owned())
    .collect();
    secrets.extend(
        TEST_KEY
            .lines()
            .filter(|line| !line.starts_with("-----") && !line.trim().is_empty())
            .map(str::to_owned),
    );
    secrets
}

fn assert_hides_secrets(source: &str, text: &str) {
    for secret in secrets() {
        assert!(
            !text.contains(&secret),
            "{source} contains the secret {secret:?}:\n{text}"
        );
    }
}

fn fast_client_config() -> ClientConfig {
    let mut config = ClientConfig::default();
    config.credential_kind = CredentialKind::JitConfig;
    config.retry.max_attempts = 2;
    config.retry.initial_backoff = Duration::from_millis(1);
    config.retry.max_backoff = Duration::from_millis(5);
    config
}

fn github_client() -> Arc<GitHubAppClient> {
    let app = GitHubApp::new(12345, &Secret::new(TEST_KEY)).unwrap();
    Arc::new(GitHubAppClient::new(app, fast_client_config()).unwrap())
}

/// Returns the bundled queued delivery for workflow job `workflow_job_id`, with its
/// repository on `host`.
fn webhook(host: &str, workflow_job_id: u64) -> Vec<u8> {
    String::from_utf8(QUEUED_WEBHOOK.to_vec())
        .unwrap()
        .replace(
            "https://github.com/octo-org/hello-world",
            &format!("{host}/octo-org/hello-world"),
        )
        .replace("38000000001", &workflow_job_id.to_string())
        .into_bytes()
}

async fn post(url: &str, body: &[u8], signature: &str) -> u16 {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(url)
        .header("X-GitHub-Event", "workflow_job")
        .header("X-GitHub-Delivery", uuid::Uuid::new_v4().to_string())
        .header("X-Hub-Signature-256", signature)
        .header("Content-Type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn jit_response(jit_config: &str, name: &str) -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({
        "runner": {"id": 23, "name": name, "os": "unknown", "status": "offline", "busy": false, "labels": []},
        "encoded_jit_config": jit_config,
    }))
}

async fn mount_github(github: &MockServer) {
    Mock::given(method("POST"))
        .and(path(format!(
            "/api/v3/app/installations/{INSTALLATION_ID}/access_tokens"
        )))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "token": INSTALLATION_TOKEN,
            "expires_at": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
        })))
        .mount(github)
        .await;
    Mock::given(method("POST"))
        .and(path(format!(
            "/api/v3/app/installations/{FAILING_INSTALLATION_ID}/access_tokens"
        )))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"message": "A JSON web token could not be decoded"})),
        )
        .mount(github)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(
            r"^/api/v3/repos/octo-org/hello-world/actions/jobs/\d+$",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "queued"})))
        .mount(github)
        .await;
    let jit_path = "/api/v3/orgs/octo-org/actions/runners/generate-jitconfig";
    Mock::given(method("POST"))
        .and(path(jit_path))
        .and(body_partial_json(json!({"name": "myshoes-38000000001-1"})))
        .respond_with(jit_response(JIT_CONFIG, "myshoes-38000000001-1"))
        .mount(github)
        .await;
    Mock::given(method("POST"))
        .and(path(jit_path))
        .and(body_partial_json(json!({"name": "myshoes-38000000002-1"})))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({"message": "Resource not accessible by integration"})),
        )
        .mount(github)
        .await;
    Mock::given(method("POST"))
        .and(path(jit_path))
        .and(body_partial_json(json!({"name": "myshoes-38000000003-1"})))
        .respond_with(jit_response(
            JIT_CONFIG_FOR_FAILED_STADIUM,
            "myshoes-38000000003-1",
        ))
        .mount(github)
        .await;
    Mock::given(method("POST"))
        .and(path(
            "/api/v3/orgs/octo-org/actions/runners/registration-token",
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "token": REGISTRATION_TOKEN,
            "expires_at": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
        })))
        .mount(github)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_run_logs_no_secrets() {
    let logs = captured_logs();
    let github = MockServer::start().await;
    mount_github(&github).await;
    let host: GitHubHost = github.uri().parse().unwrap();

    let config = ConfigFile::parse(
        &format!(
            "github_host = '{}'\n[[targets]]\nscope = 'octo-org'\n[[profiles]]\nname = 'linux-x64'\nlabels = ['linux', 'x64']\n",
            github.uri()
        ),
        "test.toml",
    )
    .unwrap();
    let client = github_client();
    let mut options = AppOptions::new(
        config,
        Secret::new(WEBHOOK_SECRET),
        Secret::new(STATIC_REGISTRATION_TOKEN),
    );
    options.github_app = Some(client.clone());
    options.sweep_interval = Duration::from_millis(200);

    // The Stadium fails permanently for the third job.
    let failing_job = JobId::for_workflow_job(&host, 38_000_000_003, 1);
    let plan = FaultPlan::new().with_rule(
        FaultRule::new(Op::AddInstance, Fault::PermanentError)
            .when(move |call| call.job_id == Some(failing_job)),
    );
    let stadium = Arc::new(FaultyStadium::new(MemoryStadium::new(), plan.clone()));
    let app = App::new(options, Arc::new(MemoryDatastore::new()), stadium)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    let running = app.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        running
            .run(listener, async {
                let _ = stopped.await;
            })
            .await
    });
    let mut outcomes = app.dispatcher().subscribe();

    let bad_signature = sign(&Secret::new("not the webhook secret"), b"other body");
    assert_eq!(
        post(
            &url,
            &webhook(&github.uri(), 38_000_000_001),
            &bad_signature
        )
        .await,
        401
    );
    for workflow_job_id in [38_000_000_001, 38_000_000_002, 38_000_000_003] {
        let body = webhook(&github.uri(), workflow_job_id);
        let signature = sign(&Secret::new(WEBHOOK_SECRET), &body);
        assert_eq!(post(&url, &body, &signature).await, 202);
    }
    let mut launched = 0;
    let mut dropped = 0;
    for _ in 0..3 {
        let outcome = tokio::time::timeout(Duration::from_secs(30), outcomes.recv())
            .await
            .unwrap()
            .unwrap();
        match outcome {
            Outcome::Launched { .. } => launched += 1,
            Outcome::Dropped { .. } => dropped += 1,
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!((launched, dropped), (1, 2));
    assert_eq!(plan.injected().len(), 1, "the Stadium failed once");

    // The registration-token path and a failing installation token.
    let org = "octo-org".parse().unwrap();
    let token = client
        .registration_token(&Installation::new(host.clone(), INSTALLATION_ID), &org)
        .await
        .unwrap();
    assert_eq!(token.expose(), REGISTRATION_TOKEN);
    // Registration tokens are cached per scope, so the failing installation requests a
    // token for another organization.
    let other_org = "other-org".parse().unwrap();
    client
        .registration_token(
            &Installation::new(host.clone(), FAILING_INSTALLATION_ID),
            &other_org,
        )
        .await
        .unwrap_err();

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    // The run was logged: without these lines the absence of secrets proves nothing.
    for expected in [
        "webhook rejected",
        "job enqueued",
        "runner launched",
        "job dead-lettered without a runner",
        "Resource not accessible by integration",
        "injected fault permanent-error at add_instance",
    ] {
        assert!(
            text.contains(expected),
            "the logs lack {expected:?}:\n{text}"
        );
    }
    assert_hides_secrets("the logs", &text);
}

#[tokio::test]
async fn debug_output_hides_secrets() {
    let host = GitHubHost::github_com();
    let client = github_client();
    let registration = RunnerCredential::RegistrationToken(Secret::new(REGISTRATION_TOKEN));
    let jit = RunnerCredential::JitConfig(Secret::new(JIT_CONFIG));
    let params = SetupScriptParams::new(
        "https://github.com/octo-org",
        registration.clone(),
        "myshoes-1-1",
    );
    let script = params.build().unwrap();
    assert!(
        script.script().contains(REGISTRATION_TOKEN),
        "the script carries the token it hides in Debug"
    );
    let request = AddInstanceRequest {
        runner_name: "myshoes-1-1".to_owned(),
        setup_script: params.build().unwrap(),
        resource_type: ResourceType::Small,
        labels: vec!["linux".to_owned()],
        target_id: TargetId::new_random(),
        job_id: JobId::for_workflow_job(&host, 1, 1),
        repository: "octo-org/hello-world".parse().unwrap(),
        profile: "linux".to_owned(),
        installation_id: Some(4242),
    };
    let static_token: Arc<dyn RunnerCredentials> = Arc::new(FaultyCredentials::new(
        StaticRegistrationToken::new(Secret::new(STATIC_REGISTRATION_TOKEN)),
        FaultPlan::new(),
    ));
    let config = ConfigFile::parse(
        "[[targets]]\nscope = 'octo-org'\n[[profiles]]\nname = 'linux-x64'\nlabels = ['linux', 'x64']\n",
        "test.toml",
    )
    .unwrap();
    let mut options = AppOptions::new(
        config,
        Secret::new(WEBHOOK_SECRET),
        Secret::new(STATIC_REGISTRATION_TOKEN),
    );
    options.github_app = Some(client.clone());
    let app = App::new(
        options.clone(),
        Arc::new(MemoryDatastore::new()),
        Arc::new(MemoryStadium::new()),
    )
    .await
    .unwrap();
    // Mint and cache a JWT, so the client's Debug would show it if it leaked.
    let jwt = client.app_jwt().unwrap();

    let debug_strings = [
        ("Secret", format!("{:?}", Secret::new(WEBHOOK_SECRET))),
        (
            "RunnerCredential::RegistrationToken",
            format!("{registration:?}"),
        ),
        ("RunnerCredential::JitConfig", format!("{jit:?}")),
        ("SetupScriptParams", format!("{params:?}")),
        ("SetupScript", format!("{script:?}")),
        ("AddInstanceRequest", format!("{request:?}")),
        ("RunnerCredentials", format!("{static_token:?}")),
        (
            "GitHubApp",
            format!("{:?}", GitHubApp::new(1, &Secret::new(TEST_KEY)).unwrap()),
        ),
        ("GitHubAppClient", format!("{client:?}")),
        ("AppOptions", format!("{options:?}")),
        ("App", format!("{app:?}")),
        ("Dispatcher", format!("{:?}", app.dispatcher())),
    ];
    for (type_name, text) in debug_strings {
        assert!(!text.is_empty(), "{type_name} shows nothing");
        assert_hides_secrets(type_name, &text);
        assert!(
            !text.contains(jwt.expose()),
            "{type_name} shows the App JWT:\n{text}"
        );
    }
}
