//! The GitHub App client against wiremock servers on 127.0.0.1.
//!
//! Every client here talks to a loopback mock server, so every host is a GitHub
//! Enterprise Server host and every path starts with `/api/v3`. The tests that check
//! github.com and ghe.com URLs resolve every name to a loopback listener, so no request
//! leaves the machine.
//!
//! `fixtures/throwaway-test-rsa-key.pem` (2048 bits) and
//! `fixtures/throwaway-test-rsa-1024-key.pem` are RSA keys generated with `openssl genrsa`
//! for these tests only; they belong to no GitHub App.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};
use wiremock::matchers::{body_json, body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use myshoes::credentials::{CredentialError, CredentialRequest, RunnerCredentials};
use myshoes::github::{
    AppJwtClaims, ClientConfig, CredentialKind, Error, GitHubApi, GitHubApp, GitHubAppClient,
    Installation, TlsRoots,
};
use myshoes::job_status::WorkflowJobStatus;
use myshoes::model::{GitHubHost, Job, JobId, RepositoryName, ResourceType, Scope, Target};
use myshoes::secret::Secret;
use myshoes::setup_script::RunnerCredential;

const PRIVATE_KEY_PEM: &str = include_str!("fixtures/throwaway-test-rsa-key.pem");
const PUBLIC_KEY_PEM: &str = include_str!("fixtures/throwaway-test-rsa-key.pub.pem");
const SMALL_KEY_PEM: &str = include_str!("fixtures/throwaway-test-rsa-1024-key.pem");
const APP_ID: u64 = 4711;
const INSTALLATION_ID: u64 = 4242;
const INSTALLATION_TOKEN: &str = "ghs_installation_token_one";
const REGISTRATION_TOKEN: &str = "AABBCCregistrationtoken";
const JIT_CONFIG: &str = "eyJqaXQiOiJzZWNyZXQtaml0LWNvbmZpZyJ9";
const TOKENS_PATH: &str = "/api/v3/app/installations/4242/access_tokens";
const REPO_RUNNERS: &str = "/api/v3/repos/octo-org/hello-world/actions/runners";
const ORG_RUNNERS: &str = "/api/v3/orgs/octo-org/actions/runners";

fn app() -> GitHubApp {
    captured_logs();
    GitHubApp::new(APP_ID, &Secret::new(PRIVATE_KEY_PEM)).expect("the fixture key is valid")
}

/// Settings with millisecond backoffs, so retries do not slow the tests.
fn fast_config() -> ClientConfig {
    let mut config = ClientConfig::default();
    config.retry.max_attempts = 3;
    config.retry.initial_backoff = Duration::from_millis(1);
    config.retry.max_backoff = Duration::from_millis(5);
    config.retry.max_rate_limit_wait = Duration::from_secs(2);
    config.request_timeout = Duration::from_secs(10);
    config
}

fn client(config: ClientConfig) -> GitHubAppClient {
    GitHubAppClient::new(app(), config).expect("valid configuration")
}

fn host_of(server: &MockServer) -> GitHubHost {
    server.uri().parse().expect("the mock server URI is a host")
}

fn installation(server: &MockServer) -> Installation {
    Installation::new(host_of(server), INSTALLATION_ID)
}

fn repository() -> RepositoryName {
    "octo-org/hello-world".parse().unwrap()
}

fn target(host: &GitHubHost, scope: &str) -> Target {
    Target::new(scope.parse().unwrap(), host.clone(), ResourceType::Small)
}

fn job(host: &GitHubHost, workflow_job_id: u64, installation_id: Option<u64>) -> Job {
    Job {
        id: JobId::for_workflow_job(host, workflow_job_id, 1),
        delivery_id: None,
        workflow_job_id,
        run_id: 19_000_000_001,
        run_attempt: 1,
        repository: repository(),
        installation_id,
        labels: vec!["self-hosted".to_owned(), "linux".to_owned()],
        host: host.clone(),
        target_id: myshoes::model::TargetId::new_random(),
        received_at: Utc::now(),
        attempt: 0,
    }
}

fn labels() -> Vec<String> {
    vec!["self-hosted".to_owned(), "linux".to_owned()]
}

fn request<'a>(
    target: &'a Target,
    job: &'a Job,
    runner_name: &'a str,
    labels: &'a [String],
    runner_group: Option<&'a str>,
) -> CredentialRequest<'a> {
    CredentialRequest {
        target,
        job,
        runner_name,
        labels,
        runner_group,
    }
}

fn in_minutes(minutes: i64) -> String {
    (Utc::now() + chrono::Duration::minutes(minutes)).to_rfc3339()
}

fn token_body(token: &str, expires_at: &str) -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({ "token": token, "expires_at": expires_at }))
}

/// Mounts the access-token endpoint, which returns a token valid for an hour.
async fn mount_installation_token(server: &MockServer, expected_mints: u64) {
    Mock::given(method("POST"))
        .and(path(TOKENS_PATH))
        .respond_with(token_body(INSTALLATION_TOKEN, &in_minutes(60)))
        .expect(expected_mints)
        .mount(server)
        .await;
}

fn jit_response(runner_id: u64) -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({
        "runner": {
            "id": runner_id,
            "name": "myshoes-38000000001-1",
            "os": "unknown",
            "status": "offline",
            "busy": false,
            "labels": [{"id": 0, "name": "self-hosted", "type": "read-only"}]
        },
        "encoded_jit_config": JIT_CONFIG
    }))
}

fn runner_json(id: u64, name: &str) -> Value {
    json!({
        "id": id,
        "name": name,
        "os": "linux",
        "status": "online",
        "busy": false,
        "labels": [{"id": 1, "name": "self-hosted", "type": "read-only"}]
    })
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn expect_secret(credential: RunnerCredential) -> (&'static str, String) {
    match credential {
        RunnerCredential::RegistrationToken(token) => ("registration", token.expose().to_owned()),
        RunnerCredential::JitConfig(config) => ("jit", config.expose().to_owned()),
    }
}

#[test]
fn app_jwt_claims_match_github_rules() {
    let client = client(fast_config());
    let jwt = client.app_jwt().unwrap();

    let key = DecodingKey::from_rsa_pem(PUBLIC_KEY_PEM.as_bytes()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[APP_ID.to_string()]);
    validation.set_required_spec_claims(&["exp", "iat", "iss"]);
    let decoded = jsonwebtoken::decode::<AppJwtClaims>(jwt.expose(), &key, &validation)
        .expect("the JWT verifies with the App's public key");
    let claims = decoded.claims;
    let now = now_secs();

    assert_eq!(decoded.header.alg, Algorithm::RS256);
    assert_eq!(claims.iss, "4711");
    assert!(
        claims.iat <= now - 59,
        "iat {} is not a minute back from {now}",
        claims.iat
    );
    assert!(
        claims.iat >= now - 62,
        "iat {} is too far back from {now}",
        claims.iat
    );
    assert!(
        claims.exp <= now + 600,
        "exp {} is more than 10 minutes ahead",
        claims.exp
    );
    assert!(
        claims.exp > now + 300,
        "exp {} leaves little reuse time",
        claims.exp
    );
}

#[test]
fn app_jwt_is_reused() {
    let client = client(fast_config());
    let first = client.app_jwt().unwrap();
    let second = client.app_jwt().unwrap();
    assert_eq!(first.expose(), second.expose());
}

#[test]
fn private_key_accepts_base64_of_pem() {
    let encoded = base64::engine::general_purpose::STANDARD.encode(PRIVATE_KEY_PEM);
    let app = GitHubApp::new(APP_ID, &Secret::new(encoded)).expect("base64 of PEM is accepted");
    assert_eq!(app.app_id(), APP_ID);
}

#[test]
fn private_key_accepts_rewrapped_pem() {
    // The base64 body on one line, with trailing spaces, as a copy and paste may leave it.
    let mut lines = PRIVATE_KEY_PEM.trim().lines();
    let begin = lines.next().unwrap();
    let body: Vec<&str> = lines.collect();
    let (end, body) = body.split_last().unwrap();
    let rewrapped = format!("{begin}\n{}  \n{end}\n", body.concat());
    let app = GitHubApp::new(APP_ID, &Secret::new(rewrapped)).expect("one-line PEM is accepted");
    assert_eq!(app.app_id(), APP_ID);
}

#[test]
fn private_key_rejects_invalid_values() {
    let base64_of_text = base64::engine::general_purpose::STANDARD.encode("not a key");
    let truncated = &PRIVATE_KEY_PEM[..200];
    // One base64 character in the middle of the key changed: the DER still parses, but the
    // key's components no longer fit together.
    let middle = PRIVATE_KEY_PEM.len() / 2;
    let replacement = if &PRIVATE_KEY_PEM[middle..=middle] == "A" {
        "B"
    } else {
        "A"
    };
    let corrupted = format!(
        "{}{replacement}{}",
        &PRIVATE_KEY_PEM[..middle],
        &PRIVATE_KEY_PEM[middle + 1..]
    );
    let cases = [
        ("empty", ""),
        ("garbage", "not a key at all!"),
        ("base64 of text", base64_of_text.as_str()),
        ("public key", PUBLIC_KEY_PEM),
        ("truncated PEM", truncated),
        ("corrupted component", corrupted.as_str()),
        ("1024-bit key", SMALL_KEY_PEM),
    ];
    for (case, value) in cases {
        let error = GitHubApp::new(APP_ID, &Secret::new(value)).unwrap_err();
        assert!(
            matches!(error, Error::InvalidPrivateKey { .. }),
            "{case}: {error:?}"
        );
        assert!(error.to_string().contains("private key"), "{case}: {error}");
    }
    let zero = GitHubApp::new(0, &Secret::new(PRIVATE_KEY_PEM)).unwrap_err();
    assert!(matches!(
        zero,
        Error::InvalidConfig {
            field: "app_id",
            ..
        }
    ));
}

#[test]
fn app_debug_hides_key() {
    let debug = format!("{:?}", app());
    assert!(debug.contains("4711"), "{debug}");
    assert!(!debug.contains("BEGIN"), "{debug}");
}

#[tokio::test]
async fn installation_token_minted_once_for_concurrent_callers() {
    let server = MockServer::start().await;
    mount_installation_token(&server, 1).await;
    let client = Arc::new(client(fast_config()));
    let host = host_of(&server);

    let mut tasks = Vec::new();
    for _ in 0..20 {
        let client = client.clone();
        let host = host.clone();
        tasks.push(tokio::spawn(async move {
            client.installation_token(&host, INSTALLATION_ID).await
        }));
    }
    for task in tasks {
        let token = task.await.unwrap().unwrap();
        assert_eq!(token.expose(), INSTALLATION_TOKEN);
    }
    let again = client
        .installation_token(&host, INSTALLATION_ID)
        .await
        .unwrap();
    assert_eq!(again.expose(), INSTALLATION_TOKEN);
}

#[tokio::test]
async fn installation_token_request_is_signed_by_app() {
    let server = MockServer::start().await;
    mount_installation_token(&server, 1).await;
    let client = client(fast_config());
    client
        .installation_token(&host_of(&server), INSTALLATION_ID)
        .await
        .unwrap();

    let requests = server.received_requests().await.unwrap();
    let authorization = requests[0]
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap();
    let jwt = authorization
        .strip_prefix("Bearer ")
        .expect("a bearer token");
    let key = DecodingKey::from_rsa_pem(PUBLIC_KEY_PEM.as_bytes()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[APP_ID.to_string()]);
    jsonwebtoken::decode::<AppJwtClaims>(jwt, &key, &validation)
        .expect("the access-token request carries the App JWT");
}

#[tokio::test]
async fn mozilla_roots_client_sends_requests() {
    let server = MockServer::start().await;
    mount_installation_token(&server, 1).await;
    let mut config = fast_config();
    config.tls_roots = TlsRoots::Mozilla;
    // Building fails if reqwest does not accept the rustls configuration.
    let client = client(config);

    let token = client
        .installation_token(&host_of(&server), INSTALLATION_ID)
        .await
        .unwrap();
    assert_eq!(token.expose(), INSTALLATION_TOKEN);
}

/// Starts a TLS listener on 127.0.0.1 with a new self-signed certificate and returns its
/// port and the certificate. It completes handshakes and then closes the connection.
async fn self_signed_tls_listener() -> (u16, rustls::pki_types::CertificateDer<'static>) {
    let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
        .expect("a self-signed certificate");
    let certificate = generated.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(generated.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certificate.clone()], key)
        .expect("a server configuration");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(stream).await;
            });
        }
    });
    (port, certificate)
}

#[tokio::test]
async fn mozilla_roots_reject_unknown_certificate() {
    let (port, certificate) = self_signed_tls_listener().await;
    let host: GitHubHost = format!("https://127.0.0.1:{port}").parse().unwrap();
    let mut config = fast_config();
    config.tls_roots = TlsRoots::Mozilla;
    let error = client(config)
        .installation_token(&host, INSTALLATION_ID)
        .await
        .unwrap_err();
    let chain = myshoes::ErrorChain(&error).to_string();
    assert!(chain.contains("certificate"), "{chain}");

    // Control: a client that trusts the certificate gets past the handshake, so the error
    // above came from the certificate check.
    let trusting = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_der(&certificate).unwrap()])
        .build()
        .unwrap();
    let error = GitHubAppClient::with_http_client(app(), fast_config(), trusting)
        .unwrap()
        .installation_token(&host, INSTALLATION_ID)
        .await
        .unwrap_err();
    let chain = myshoes::ErrorChain(&error).to_string();
    assert!(!chain.contains("certificate"), "{chain}");
}

#[tokio::test]
async fn installation_token_renewed_near_expiry() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKENS_PATH))
        .respond_with(token_body("ghs_expiring_soon", &in_minutes(4)))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(TOKENS_PATH))
        .respond_with(token_body("ghs_fresh", &in_minutes(60)))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(fast_config());
    let host = host_of(&server);

    let first = client
        .installation_token(&host, INSTALLATION_ID)
        .await
        .unwrap();
    let second = client
        .installation_token(&host, INSTALLATION_ID)
        .await
        .unwrap();
    let third = client
        .installation_token(&host, INSTALLATION_ID)
        .await
        .unwrap();

    assert_eq!(first.expose(), "ghs_expiring_soon");
    assert_eq!(second.expose(), "ghs_fresh");
    assert_eq!(third.expose(), "ghs_fresh");
}

#[tokio::test]
async fn expired_installation_token_is_reminted() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKENS_PATH))
        .respond_with(token_body("ghs_already_expired", &in_minutes(-1)))
        .expect(2)
        .mount(&server)
        .await;
    let client = client(fast_config());
    let host = host_of(&server);
    client
        .installation_token(&host, INSTALLATION_ID)
        .await
        .unwrap();
    client
        .installation_token(&host, INSTALLATION_ID)
        .await
        .unwrap();
}

#[tokio::test]
async fn revoked_token_reminted_once_on_401() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKENS_PATH))
        .respond_with(token_body("ghs_revoked", &in_minutes(60)))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(TOKENS_PATH))
        .respond_with(token_body("ghs_replacement", &in_minutes(60)))
        .expect(1)
        .mount(&server)
        .await;
    let job_path = "/api/v3/repos/octo-org/hello-world/actions/jobs/77";
    Mock::given(method("GET"))
        .and(path(job_path))
        .and(header("authorization", "Bearer ghs_revoked"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"message": "Bad credentials"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(job_path))
        .and(header("authorization", "Bearer ghs_replacement"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": 77, "status": "queued"})),
        )
        .expect(2)
        .mount(&server)
        .await;
    let client = client(fast_config());
    let installation = installation(&server);

    let status = client
        .job_status(&installation, &repository(), 77)
        .await
        .unwrap();
    assert_eq!(status, WorkflowJobStatus::Queued);
    let again = client
        .job_status(&installation, &repository(), 77)
        .await
        .unwrap();
    assert_eq!(again, WorkflowJobStatus::Queued);
}

#[tokio::test]
async fn persistent_401_rejected_after_remint() {
    let server = MockServer::start().await;
    mount_installation_token(&server, 2).await;
    Mock::given(method("GET"))
        .and(path("/api/v3/repos/octo-org/hello-world/actions/jobs/77"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"message": "Bad credentials"})),
        )
        .expect(2)
        .mount(&server)
        .await;
    let client = client(fast_config());

    let error = client
        .job_status(&installation(&server), &repository(), 77)
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(401));
    assert!(!error.is_retryable(), "{error}");
    assert!(error.to_string().contains("Bad credentials"), "{error}");
}

#[tokio::test]
async fn jit_config_sends_exact_body() {
    let server = MockServer::start().await;
    mount_installation_token(&server, 1).await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO_RUNNERS}/generate-jitconfig")))
        .and(header(
            "authorization",
            format!("Bearer {INSTALLATION_TOKEN}").as_str(),
        ))
        .and(body_json(json!({
            "name": "myshoes-38000000001-1",
            "runner_group_id": 1,
            "labels": ["self-hosted", "linux"],
            "work_folder": "_work"
        })))
        .respond_with(jit_response(23))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(fast_config());
    let host = host_of(&server);
    let target = target(&host, "octo-org/hello-world");
    let job = job(&host, 38_000_000_001, Some(INSTALLATION_ID));
    let labels = labels();

    let credential = client
        .runner_credential(&request(
            &target,
            &job,
            "myshoes-38000000001-1",
            &labels,
            None,
        ))
        .await
        .unwrap();
    assert_eq!(expect_secret(credential), ("jit", JIT_CONFIG.to_owned()));
}

#[tokio::test]
async fn jit_conflict_deletes_runner_and_retries() {
    let server = MockServer::start().await;
    mount_installation_token(&server, 1).await;
    let generate = format!("{ORG_RUNNERS}/generate-jitconfig");
    Mock::given(method("POST"))
        .and(path(generate.as_str()))
        .respond_with(ResponseTemplate::new(409).set_body_json(json!({"message": "Already exists - A runner with the name myshoes-1-1 already exists."})))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(generate.as_str()))
        .respond_with(jit_response(24))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(ORG_RUNNERS))
        .and(query_param("name", "myshoes-1-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "total_count": 1,
            "runners": [runner_json(99, "myshoes-1-1")]
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("{ORG_RUNNERS}/99")))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(fast_config());
    let host = host_of(&server);
    let target = target(&host, "octo-org");
    let job = job(&host, 1, Some(INSTALLATION_ID));
    let labels = labels();

    let credential = client
        .runner_credential(&request(&target, &job, "myshoes-1-1", &labels, None))
        .await
        .unwrap();
    assert_eq!(expect_secret(credential).0, "jit");
}

#[tokio::test]
async fn jit_conflict_gives_up_after_bounded_attempts() {
    let server = MockServer::start().await;
    mount_installation_token(&server, 1).await;
    Mock::given(method("POST"))
        .and(path(format!("{ORG_RUNNERS}/generate-jitconfig")))
        .respond_with(
            ResponseTemplate::new(409).set_body_json(json!({"message": "Already exists"})),
        )
        .expect(3)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(ORG_RUNNERS))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"total_count": 0, "runners": []})),
        )
        .expect(2)
        .mount(&server)
        .await;
    let client = client(fast_config());
    let host = host_of(&server);
    let target = target(&host, "octo-org");
    let job = job(&host, 1, Some(INSTALLATION_ID));
    let labels = labels();

    let error = client
        .create_runner_credential(&request(&target, &job, "myshoes-1-1", &labels, None))
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(409));
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn jit_404_falls_back_to_registration_token() {
    let server = MockServer::start().await;
    mount_installation_token(&server, 1).await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO_RUNNERS}/generate-jitconfig")))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO_RUNNERS}/registration-token")))
        .respond_with(token_body(REGISTRATION_TOKEN, &in_minutes(60)))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(fast_config());
    let host = host_of(&server);
    let target = target(&host, "octo-org/hello-world");
    let labels = labels();

    for workflow_job_id in [1, 2, 3] {
        let job = job(&host, workflow_job_id, Some(INSTALLATION_ID));
        let name = format!("myshoes-{workflow_job_id}-1");
        let credential = client
            .runner_credential(&request(&target, &job, &name, &labels, None))
            .await
            .unwrap();
        assert_eq!(
            expect_secret(credential),
            ("registration", REGISTRATION_TOKEN.to_owned()),
            "job {workflow_job_id}"
        );
    }
}

#[tokio::test]
async fn registration_token_reused_within_boot_budget() {
    let server = MockServer::start().await;
    mount_installation_token(&server, 1).await;
    Mock::given(method("POST"))
        .and(path(
            "/api/v3/orgs/octo-org/actions/runners/registration-token",
        ))
        .respond_with(token_body(REGISTRATION_TOKEN, &in_minutes(60)))
        .expect(1)
        .mount(&server)
        .await;
    let mut config = fast_config();
    config.credential_kind = CredentialKind::RegistrationToken;
    config.boot_budget = Duration::from_secs(10 * 60);
    config.registration_token_margin = Duration::from_secs(60);
    let client = client(config);
    let host = host_of(&server);
    let target = target(&host, "octo-org");
    let labels = labels();

    for workflow_job_id in 1..=5 {
        let job = job(&host, workflow_job_id, Some(INSTALLATION_ID));
        let credential = client
            .runner_credential(&request(&target, &job, "runner", &labels, None))
            .await
            .unwrap();
        assert_eq!(expect_secret(credential).0, "registration");
    }
}

#[tokio::test]
async fn registration_token_renewed_under_boot_budget() {
    let server = MockServer::start().await;
    mount_installation_token(&server, 1).await;
    // Valid for 8 minutes, under the 10-minute budget plus 1-minute margin.
    Mock::given(method("POST"))
        .and(path(
            "/api/v3/orgs/octo-org/actions/runners/registration-token",
        ))
        .respond_with(token_body(REGISTRATION_TOKEN, &in_minutes(8)))
        .expect(3)
        .mount(&server)
        .await;
    let mut config = fast_config();
    config.credential_kind = CredentialKind::RegistrationToken;
    config.boot_budget = Duration::from_secs(10 * 60);
    config.registration_token_margin = Duration::from_secs(60);
    let client = client(config);
    let installation = installation(&server);
    let scope: Scope = "octo-org".parse().unwrap();

    for _ in 0..3 {
        let token = client
            .registration_token(&installation, &scope)
            .await
            .unwrap();
        assert_eq!(token.expose(), REGISTRATION_TOKEN);
    }
}

#[tokio::test]
async fn runner_group_refreshed_on_jit_404() {
    let server = MockServer::start().await;
    mount_installation_token(&server, 1).await;
    let groups_path = "/api/v3/orgs/octo-org/actions/runner-groups";
    let groups = |gpu_id: u64| {
        ResponseTemplate::new(200).set_body_json(json!({
            "total_count": 2,
            "runner_groups": [
                {"id": 1, "name": "Default", "default": true},
                {"id": gpu_id, "name": "gpu", "default": false}
            ]
        }))
    };
    Mock::given(method("GET"))
        .and(path(groups_path))
        .and(query_param("per_page", "100"))
        .respond_with(groups(7))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(groups_path))
        .respond_with(groups(8))
        .expect(1)
        .mount(&server)
        .await;
    let generate = format!("{ORG_RUNNERS}/generate-jitconfig");
    Mock::given(method("POST"))
        .and(path(generate.as_str()))
        .and(body_partial_json(json!({"runner_group_id": 7})))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(generate.as_str()))
        .and(body_partial_json(json!({"runner_group_id": 8})))
        .respond_with(jit_response(30))
        .expect(2)
        .mount(&server)
        .await;
    let client = client(fast_config());
    let host = host_of(&server);
    let target = target(&host, "octo-org");
    let labels = labels();

    for workflow_job_id in [1, 2] {
        let job = job(&host, workflow_job_id, Some(INSTALLATION_ID));
        let name = format!("myshoes-{workflow_job_id}-1");
        let credential = client
            .runner_credential(&request(&target, &job, &name, &labels, Some("gpu")))
            .await
            .unwrap();
        assert_eq!(expect_secret(credential).0, "jit", "job {workflow_job_id}");
    }
}

#[tokio::test]
async fn runner_group_missing_is_rejected() {
    let server = MockServer::start().await;
    mount_installation_token(&server, 1).await;
    Mock::given(method("GET"))
        .and(path("/api/v3/orgs/octo-org/actions/runner-groups"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "total_count": 1,
            "runner_groups": [{"id": 1, "name": "Default"}]
        })))
        .mount(&server)
        .await;
    let client = client(fast_config());
    let host = host_of(&server);
    let target = target(&host, "octo-org");
    let job = job(&host, 1, Some(INSTALLATION_ID));
    let labels = labels();

    let error = client
        .runner_credential(&request(&target, &job, "runner", &labels, Some("gpu")))
        .await
        .unwrap_err();
    assert!(
        matches!(error, CredentialError::Rejected { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("\"gpu\" does not exist"),
        "{error}"
    );
}

#[tokio::test]
async fn jit_422_is_not_retryable() {
    let server = MockServer::start().await;
    mount_installation_token(&server, 1).await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO_RUNNERS}/generate-jitconfig")))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "message": "Invalid input: object is missing required key: runner_group_id"
        })))
        .expect(2)
        .mount(&server)
        .await;
    let client = client(fast_config());
    let host = host_of(&server);
    let target = target(&host, "octo-org/hello-world");
    let job = job(&host, 1, Some(INSTALLATION_ID));
    let labels = labels();
    let request = request(&target, &job, "runner", &labels, None);

    let error = client.create_runner_credential(&request).await.unwrap_err();
    assert_eq!(error.status(), Some(422));
    assert!(!error.is_retryable());

    let credential_error = client.runner_credential(&request).await.unwrap_err();
    assert!(!credential_error.is_retryable());
    let CredentialError::Rejected { reason, .. } = &credential_error else {
        panic!("expected Rejected, got {credential_error:?}");
    };
    assert!(reason.contains("missing required key"), "{reason}");
    assert!(!reason.contains(INSTALLATION_TOKEN), "{reason}");
}

#[tokio::test]
async fn credential_without_installation_is_rejected() {
    let server = MockServer::start().await;
    let client = client(fast_config());
    let host = host_of(&server);
    let target = target(&host, "octo-org");
    let job = job(&host, 1, None);
    let labels = labels();

    let error = client
        .runner_credential(&request(&target, &job, "runner", &labels, None))
        .await
        .unwrap_err();
    assert!(
        matches!(error, CredentialError::Rejected { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("installation"), "{error}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn jit_label_count_checked_before_sending() {
    let server = MockServer::start().await;
    let client = client(fast_config());
    let host = host_of(&server);
    let target = target(&host, "octo-org");
    let job = job(&host, 1, Some(INSTALLATION_ID));
    let too_many: Vec<String> = (0..101).map(|i| format!("label-{i}")).collect();

    for labels in [Vec::new(), too_many] {
        let error = client
            .create_runner_credential(&request(&target, &job, "runner", &labels, None))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::InvalidRequest { .. }), "{error:?}");
        assert!(error.to_string().contains("1 to 100 labels"), "{error}");
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn server_error_is_retried_until_success() {
    let server = MockServer::start().await;
    mount_installation_token(&server, 1).await;
    let job_path = "/api/v3/repos/octo-org/hello-world/actions/jobs/5";
    Mock::given(method("GET"))
        .and(path(job_path))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(job_path))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "in_progress"})))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(fast_config());

    let status = client
        .job_status(&installation(&server), &repository(), 5)
        .await
        .unwrap();
    assert_eq!(status, WorkflowJobStatus::InProgress);
}

#[tokio::test]
async fn server_error_after_attempts_is_retryable() {
    let server = MockServer::start().await;
    mount_installation_token(&server, 1).await;
    Mock::given(method("GET"))
        .and(path("/api/v3/repos/octo-org/hello-world/actions/jobs/5"))
        .respond_with(ResponseTemplate::new(503))
        .expect(3)
        .mount(&server)
        .await;
    let client = client(fast_config());

    let error = client
        .job_status(&installation(&server), &repository(), 5)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::Server {
                status: 503,
                attempts: 3,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.is_retryable());
}

#[tokio::test]
async fn rate_limits_are_retried_after_wait() {
    for (status, headers) in [
        (403, vec![("retry-after", "1".to_owned())]),
        (429, vec![("retry-after", "0".to_owned())]),
        (
            403,
            vec![
                ("x-ratelimit-remaining", "0".to_owned()),
                ("x-ratelimit-reset", now_secs().to_string()),
            ],
        ),
    ] {
        let server = MockServer::start().await;
        mount_installation_token(&server, 1).await;
        let job_path = "/api/v3/repos/octo-org/hello-world/actions/jobs/6";
        let mut limited = ResponseTemplate::new(status).set_body_json(json!({
            "message": "You have exceeded a secondary rate limit."
        }));
        for (name, value) in &headers {
            limited = limited.insert_header(*name, value.as_str());
        }
        Mock::given(method("GET"))
            .and(path(job_path))
            .respond_with(limited)
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(job_path))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("x-ratelimit-remaining", "4321")
                    .set_body_json(json!({"status": "completed"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let client = client(fast_config());

        let status_value = client
            .job_status(&installation(&server), &repository(), 6)
            .await
            .unwrap();
        assert_eq!(
            status_value,
            WorkflowJobStatus::Completed,
            "HTTP {status} {headers:?}"
        );
        assert_eq!(
            client.rate_limit_remaining(),
            Some(4321),
            "HTTP {status} {headers:?}"
        );
    }
}

#[tokio::test]
async fn rate_limit_longer_than_cap_fails_fast() {
    let server = MockServer::start().await;
    mount_installation_token(&server, 1).await;
    Mock::given(method("GET"))
        .and(path("/api/v3/repos/octo-org/hello-world/actions/jobs/6"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "3600")
                .insert_header("x-ratelimit-remaining", "0"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = client(fast_config());

    let error = client
        .job_status(&installation(&server), &repository(), 6)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::RateLimited { status: 429, retry_after: Some(wait), .. } if wait == Duration::from_secs(3600)),
        "{error:?}"
    );
    assert!(error.is_retryable());
    assert_eq!(client.rate_limit_remaining(), Some(0));
}

#[tokio::test]
async fn plain_403_is_rejected_without_retry() {
    let server = MockServer::start().await;
    mount_installation_token(&server, 1).await;
    Mock::given(method("POST"))
        .and(path(
            "/api/v3/orgs/octo-org/actions/runners/registration-token",
        ))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "message": "Resource not accessible by integration"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(fast_config());

    let error = client
        .registration_token(&installation(&server), &"octo-org".parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(403));
    assert!(!error.is_retryable());
    assert!(error.to_string().contains("Self-hosted runners"), "{error}");
}

#[tokio::test]
async fn list_runners_follows_pages() {
    let server = MockServer::start().await;
    mount_installation_token(&server, 1).await;
    let first: Vec<Value> = (1..=100)
        .map(|id| runner_json(id, &format!("runner-{id}")))
        .collect();
    let second: Vec<Value> = (101..=150)
        .map(|id| runner_json(id, &format!("runner-{id}")))
        .collect();
    Mock::given(method("GET"))
        .and(path(ORG_RUNNERS))
        .and(query_param("per_page", "100"))
        .and(query_param("page", "1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"total_count": 150, "runners": first})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(ORG_RUNNERS))
        .and(query_param("per_page", "100"))
        .and(query_param("page", "2"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"total_count": 150, "runners": second})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = client(fast_config());

    let runners = client
        .list_runners(&installation(&server), &"octo-org".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(runners.len(), 150);
    assert_eq!(runners[0].id, 1);
    assert_eq!(runners[149].name, "runner-150");
    assert_eq!(runners[0].labels, ["self-hosted"]);
}

#[tokio::test]
async fn get_and_delete_runner() {
    let server = MockServer::start().await;
    mount_installation_token(&server, 1).await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO_RUNNERS}/10")))
        .respond_with(ResponseTemplate::new(200).set_body_json(runner_json(10, "runner-10")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO_RUNNERS}/11")))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("{REPO_RUNNERS}/10")))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("{REPO_RUNNERS}/11")))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("{REPO_RUNNERS}/12")))
        .respond_with(ResponseTemplate::new(422).set_body_json(
            json!({"message": "Bad request - Runner \"runner-12\" is still running a job\""}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(fast_config());
    let installation = installation(&server);
    let scope: Scope = "octo-org/hello-world".parse().unwrap();

    let found = client.get_runner(&installation, &scope, 10).await.unwrap();
    assert_eq!(
        found.map(|runner| runner.name),
        Some("runner-10".to_owned())
    );
    assert_eq!(
        client.get_runner(&installation, &scope, 11).await.unwrap(),
        None
    );
    client
        .delete_runner(&installation, &scope, 10)
        .await
        .unwrap();
    client
        .delete_runner(&installation, &scope, 11)
        .await
        .unwrap();
    let busy = client
        .delete_runner(&installation, &scope, 12)
        .await
        .unwrap_err();
    assert_eq!(busy.status(), Some(422));
    assert!(busy.to_string().contains("still running a job"), "{busy}");
}

#[tokio::test]
async fn job_status_maps_github_values() {
    let server = MockServer::start().await;
    mount_installation_token(&server, 1).await;
    let cases = [
        (1, "queued", WorkflowJobStatus::Queued),
        (2, "in_progress", WorkflowJobStatus::InProgress),
        (3, "completed", WorkflowJobStatus::Completed),
        (4, "waiting", WorkflowJobStatus::Waiting),
        (
            5,
            "requested",
            WorkflowJobStatus::Other("requested".to_owned()),
        ),
    ];
    for (id, value, _) in &cases {
        Mock::given(method("GET"))
            .and(path(format!(
                "/api/v3/repos/octo-org/hello-world/actions/jobs/{id}"
            )))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"id": id, "status": value})),
            )
            .mount(&server)
            .await;
    }
    let client = client(fast_config());
    let installation = installation(&server);

    for (id, value, expected) in cases {
        let status = client
            .job_status(&installation, &repository(), id)
            .await
            .unwrap();
        assert_eq!(status, expected, "{value}");
    }

    let host = host_of(&server);
    let stored = job(&host, 3, Some(INSTALLATION_ID));
    let source: &dyn myshoes::job_status::JobStatusSource = &client;
    let state = source.workflow_job_state(&stored).await.unwrap();
    assert_eq!(state.status, WorkflowJobStatus::Completed);
    assert_eq!(state.runner_name, None, "the response names no runner");
}

#[tokio::test]
async fn every_request_carries_github_headers() {
    let server = MockServer::start().await;
    mount_installation_token(&server, 1).await;
    Mock::given(method("GET"))
        .and(path("/api/v3/repos/octo-org/hello-world/actions/jobs/9"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "queued"})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO_RUNNERS}/generate-jitconfig")))
        .respond_with(jit_response(1))
        .mount(&server)
        .await;
    let client = client(fast_config());
    let host = host_of(&server);
    let target = target(&host, "octo-org/hello-world");
    let job = job(&host, 9, Some(INSTALLATION_ID));
    let labels = labels();
    client
        .job_status(&installation(&server), &repository(), 9)
        .await
        .unwrap();
    client
        .runner_credential(&request(&target, &job, "runner", &labels, None))
        .await
        .unwrap();

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3);
    for received in &requests {
        let header_of = |name: &str| {
            received
                .headers
                .get(name)
                .map(|value| value.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        let url = received.url.path();
        assert!(url.starts_with("/api/v3/"), "{url}");
        assert_eq!(header_of("accept"), "application/vnd.github+json", "{url}");
        assert_eq!(header_of("x-github-api-version"), "2022-11-28", "{url}");
        assert!(header_of("user-agent").starts_with("myshoes-rs/"), "{url}");
        assert!(header_of("authorization").starts_with("Bearer "), "{url}");
    }
}

/// Resolves every name to one loopback listener and records the names requested, so a
/// test can check which host a request was for without any traffic leaving the machine.
#[derive(Clone)]
struct LoopbackResolver {
    target: SocketAddr,
    names: Arc<Mutex<Vec<String>>>,
}

impl reqwest::dns::Resolve for LoopbackResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        self.names.lock().unwrap().push(name.as_str().to_owned());
        let target = self.target;
        Box::pin(async move {
            let addrs: reqwest::dns::Addrs = Box::new(std::iter::once(target));
            Ok(addrs)
        })
    }
}

/// Returns the host names a client asked DNS for while minting a token for `host`.
async fn names_resolved_for(host: &str) -> Vec<String> {
    // A listener that closes every connection, so TLS fails at once on loopback.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let acceptor = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    let resolver = LoopbackResolver {
        target,
        names: Arc::new(Mutex::new(Vec::new())),
    };
    let http = reqwest::Client::builder()
        .no_proxy()
        .dns_resolver(resolver.clone())
        .build()
        .unwrap();
    let mut config = fast_config();
    config.retry.max_attempts = 1;
    let client = GitHubAppClient::with_http_client(app(), config, http).unwrap();

    let host: GitHubHost = host.parse().unwrap();
    let error = client
        .installation_token(&host, INSTALLATION_ID)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Transport { .. }), "{error:?}");
    assert!(
        accepted.load(Ordering::SeqCst) >= 1,
        "no connection reached the listener"
    );
    acceptor.abort();
    let names = resolver.names.lock().unwrap().clone();
    names
}

#[tokio::test]
async fn api_host_follows_the_github_host() {
    let cases = [
        ("octocorp.ghe.com", "api.octocorp.ghe.com"),
        ("https://ghes.example.com", "ghes.example.com"),
        ("github.com", "api.github.com"),
    ];
    for (host, expected) in cases {
        let names = names_resolved_for(host).await;
        assert_eq!(names, [expected], "{host}");
    }
}

#[tokio::test]
async fn debug_output_has_no_secrets() {
    let server = MockServer::start().await;
    mount_installation_token(&server, 1).await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO_RUNNERS}/generate-jitconfig")))
        .respond_with(jit_response(1))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(
            "/api/v3/orgs/octo-org/actions/runners/registration-token",
        ))
        .respond_with(token_body(REGISTRATION_TOKEN, &in_minutes(60)))
        .mount(&server)
        .await;
    let client = client(fast_config());
    let host = host_of(&server);
    let target = target(&host, "octo-org/hello-world");
    let job = job(&host, 1, Some(INSTALLATION_ID));
    let labels = labels();
    let jwt = client.app_jwt().unwrap();
    let credential = client
        .runner_credential(&request(&target, &job, "runner", &labels, None))
        .await
        .unwrap();
    let registration = client
        .registration_token(&installation(&server), &"octo-org".parse().unwrap())
        .await
        .unwrap();

    let key_line = PRIVATE_KEY_PEM.lines().nth(5).unwrap();
    let outputs = [
        format!("{client:?}"),
        format!("{:?}", client.app()),
        format!("{credential:?}"),
        format!("{registration:?}"),
        format!("{jwt:?}"),
    ];
    for output in &outputs {
        for secret in [
            INSTALLATION_TOKEN,
            REGISTRATION_TOKEN,
            JIT_CONFIG,
            jwt.expose(),
            key_line,
        ] {
            assert!(!output.contains(secret), "{output} contains a secret");
        }
    }
    let client_debug = &outputs[0];
    assert!(
        client_debug.contains("installation_tokens"),
        "{client_debug}"
    );
    assert!(client_debug.contains("4242"), "{client_debug}");
}

/// Counts the requests of `jobs` jobs that each check their status and get a credential.
async fn requests_per_job(kind: CredentialKind, jobs: u64) -> (f64, HashMap<String, usize>) {
    let server = MockServer::start().await;
    mount_installation_token(&server, 1).await;
    Mock::given(method("GET"))
        .and(wiremock::matchers::path_regex(
            r"^/api/v3/repos/octo-org/hello-world/actions/jobs/\d+$",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "queued"})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(
            "/api/v3/orgs/octo-org/actions/runners/generate-jitconfig",
        ))
        .respond_with(jit_response(1))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(
            "/api/v3/orgs/octo-org/actions/runners/registration-token",
        ))
        .respond_with(token_body(REGISTRATION_TOKEN, &in_minutes(60)))
        .mount(&server)
        .await;
    let mut config = fast_config();
    config.credential_kind = kind;
    let client = client(config);
    let host = host_of(&server);
    let target = target(&host, "octo-org");
    let installation = installation(&server);
    let labels = labels();

    for workflow_job_id in 1..=jobs {
        let job = job(&host, workflow_job_id, Some(INSTALLATION_ID));
        let status = client
            .job_status(&installation, &repository(), workflow_job_id)
            .await
            .unwrap();
        assert_eq!(status, WorkflowJobStatus::Queued);
        let name = format!("myshoes-{workflow_job_id}-1");
        client
            .runner_credential(&request(&target, &job, &name, &labels, None))
            .await
            .unwrap();
    }

    let requests = server.received_requests().await.unwrap();
    let mut by_path: HashMap<String, usize> = HashMap::new();
    for received in &requests {
        let key = if received.url.path().contains("/actions/jobs/") {
            "GET /actions/jobs/{id}".to_owned()
        } else {
            format!("{} {}", received.method, received.url.path())
        };
        *by_path.entry(key).or_default() += 1;
    }
    (requests.len() as f64 / jobs as f64, by_path)
}

#[tokio::test]
async fn request_count_with_jit() {
    let (per_job, by_path) = requests_per_job(CredentialKind::JitConfig, 100).await;
    println!("JIT: {per_job:.2} requests per job (job status + JIT config), {by_path:?}");
    assert!(per_job <= 2.05, "{per_job} requests per job");
    assert_eq!(by_path.get(&format!("POST {TOKENS_PATH}")), Some(&1));
}

#[tokio::test]
async fn request_count_with_registration_tokens() {
    let (per_job, by_path) = requests_per_job(CredentialKind::RegistrationToken, 100).await;
    println!("registration token: {per_job:.2} requests per job (job status + shared token), {by_path:?}");
    assert!(per_job <= 1.05, "{per_job} requests per job");
    assert_eq!(by_path.get(&format!("POST {TOKENS_PATH}")), Some(&1));
}

#[tokio::test]
async fn fake_api_is_usable_as_trait_object() {
    #[derive(Debug)]
    struct Fake;

    #[async_trait::async_trait]
    impl GitHubApi for Fake {
        async fn job_status(
            &self,
            _installation: &Installation,
            _repository: &RepositoryName,
            _job_id: u64,
        ) -> Result<WorkflowJobStatus, Error> {
            Ok(WorkflowJobStatus::Completed)
        }

        async fn create_runner_credential(
            &self,
            _request: &CredentialRequest<'_>,
        ) -> Result<RunnerCredential, Error> {
            Ok(RunnerCredential::RegistrationToken(Secret::new("fake")))
        }

        async fn list_runners(
            &self,
            _installation: &Installation,
            _scope: &Scope,
        ) -> Result<Vec<myshoes::github::GitHubRunner>, Error> {
            Ok(Vec::new())
        }

        async fn get_runner(
            &self,
            _installation: &Installation,
            _scope: &Scope,
            _runner_id: u64,
        ) -> Result<Option<myshoes::github::GitHubRunner>, Error> {
            Ok(None)
        }

        async fn delete_runner(
            &self,
            _installation: &Installation,
            _scope: &Scope,
            _runner_id: u64,
        ) -> Result<(), Error> {
            Ok(())
        }
    }

    let api: Arc<dyn GitHubApi> = Arc::new(Fake);
    let installation = Installation::new(GitHubHost::github_com(), 1);
    let status = api
        .job_status(&installation, &repository(), 1)
        .await
        .unwrap();
    assert_eq!(status, WorkflowJobStatus::Completed);
}

#[tokio::test]
async fn repository_scope_runner_groups() {
    let server = MockServer::start().await;
    mount_installation_token(&server, 1).await;
    let generate = format!("{REPO_RUNNERS}/generate-jitconfig");
    Mock::given(method("POST"))
        .and(path(generate.as_str()))
        .and(body_partial_json(json!({"runner_group_id": 1})))
        .respond_with(jit_response(40))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(generate.as_str()))
        .and(body_partial_json(json!({"runner_group_id": 12})))
        .respond_with(jit_response(41))
        .expect(1)
        .mount(&server)
        .await;
    let mut config = fast_config();
    config.runner_group_ids.insert("configured".to_owned(), 12);
    let client = client(config);
    let host = host_of(&server);
    let target = target(&host, "octo-org/hello-world");
    let job = job(&host, 1, Some(INSTALLATION_ID));
    let labels = labels();

    for group in ["default", "configured"] {
        let credential = client
            .runner_credential(&request(&target, &job, "runner", &labels, Some(group)))
            .await
            .unwrap();
        assert_eq!(expect_secret(credential).0, "jit", "{group}");
    }

    let error = client
        .runner_credential(&request(&target, &job, "runner", &labels, Some("gpu")))
        .await
        .unwrap_err();
    assert!(
        matches!(error, CredentialError::Rejected { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("runner_group_ids"), "{error}");
    let group_lookups = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|received| received.url.path().ends_with("/runner-groups"))
        .count();
    assert_eq!(group_lookups, 0);
}

/// A `tracing` writer that appends every log line to a shared buffer.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Returns the buffer that collects every log line of this test binary at TRACE level.
///
/// The subscriber is the global default, set before the first event, because `tracing`
/// caches per-callsite interest across threads, so a thread-local subscriber misses
/// events whose callsite another test thread reached first.
fn captured_logs() -> &'static LogBuffer {
    static LOGS: std::sync::OnceLock<LogBuffer> = std::sync::OnceLock::new();
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

#[tokio::test]
async fn logs_have_no_secrets() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKENS_PATH))
        .respond_with(token_body("ghs_first_token", &in_minutes(60)))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    mount_installation_token(&server, 1).await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO_RUNNERS}/generate-jitconfig")))
        .and(header("authorization", "Bearer ghs_first_token"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"message": "Bad credentials"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO_RUNNERS}/generate-jitconfig")))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO_RUNNERS}/generate-jitconfig")))
        .respond_with(jit_response(1))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(
            "/api/v3/orgs/octo-org/actions/runners/registration-token",
        ))
        .respond_with(token_body(REGISTRATION_TOKEN, &in_minutes(60)))
        .mount(&server)
        .await;
    let client = client(fast_config());
    let host = host_of(&server);
    let target = target(&host, "octo-org/hello-world");
    let job = job(&host, 1, Some(INSTALLATION_ID));
    let labels = labels();
    let jwt = client.app_jwt().unwrap();
    client
        .runner_credential(&request(&target, &job, "runner", &labels, None))
        .await
        .unwrap();
    client
        .registration_token(&installation(&server), &"octo-org".parse().unwrap())
        .await
        .unwrap();

    // The buffer also contains the lines of every test that ran so far.
    let logs = String::from_utf8(captured_logs().0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("minted GitHub App installation token"),
        "{logs}"
    );
    assert!(logs.contains("retrying once with a fresh token"), "{logs}");
    for secret in [
        "ghs_first_token",
        "ghs_revoked",
        "ghs_replacement",
        "ghs_expiring_soon",
        "ghs_fresh",
        "ghs_already_expired",
        "Bearer",
        // The start of every base64-encoded JSON object, such as a JWT or a JIT config.
        "eyJ",
        INSTALLATION_TOKEN,
        REGISTRATION_TOKEN,
        JIT_CONFIG,
        jwt.expose(),
    ] {
        assert!(!logs.contains(secret), "the logs contain a secret:\n{logs}");
    }
}
