//! Listing, redelivering and rescuing App webhook deliveries against wiremock servers on
//! 127.0.0.1.
//!
//! Every host is a loopback GitHub Enterprise Server host, so every path starts with
//! `/api/v3`. `fixtures/throwaway-test-rsa-key.pem` is an RSA key generated for tests
//! only; it belongs to no GitHub App.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};
use wiremock::matchers::{method, path, path_regex, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use myshoes::github::{ClientConfig, GitHubApp, GitHubAppClient, RescuePass};
use myshoes::model::GitHubHost;
use myshoes::secret::Secret;

const PRIVATE_KEY_PEM: &str = include_str!("fixtures/throwaway-test-rsa-key.pem");
const PUBLIC_KEY_PEM: &str = include_str!("fixtures/throwaway-test-rsa-key.pub.pem");
const APP_ID: u64 = 4711;
const DELIVERIES_PATH: &str = "/api/v3/app/hook/deliveries";
const ANY_ATTEMPTS_PATH: &str = r"^/api/v3/app/hook/deliveries/\d+/attempts$";

/// Creates a client with millisecond backoffs, so retries do not slow the tests.
fn client() -> GitHubAppClient {
    captured_logs();
    let mut config = ClientConfig::default();
    config.retry.max_attempts = 3;
    config.retry.initial_backoff = Duration::from_millis(1);
    config.retry.max_backoff = Duration::from_millis(5);
    config.request_timeout = Duration::from_secs(10);
    let app = GitHubApp::new(APP_ID, &Secret::new(PRIVATE_KEY_PEM)).expect("valid fixture key");
    GitHubAppClient::new(app, config).expect("valid configuration")
}

/// Log output of every test in this binary, at TRACE level.
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

impl LogBuffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

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

fn host_of(server: &MockServer) -> GitHubHost {
    server.uri().parse().expect("the mock server URI is a host")
}

fn minutes_ago(minutes: i64) -> DateTime<Utc> {
    Utc::now() - chrono::TimeDelta::minutes(minutes)
}

/// Builds one element of a `GET /app/hook/deliveries` response body, including fields
/// the client ignores.
fn delivery(id: u64, guid: &str, event: &str, status_code: u16, age_minutes: i64) -> Value {
    let action = if event == "workflow_job" {
        Value::from("queued")
    } else {
        Value::Null
    };
    json!({
        "id": id,
        "guid": guid,
        "delivered_at": minutes_ago(age_minutes).to_rfc3339_opts(SecondsFormat::Secs, true),
        "redelivery": false,
        "duration": 0.27,
        "status": if status_code == 200 { "OK" } else { "Invalid HTTP Response" },
        "status_code": status_code,
        "event": event,
        "action": action,
        "installation_id": 4242,
        "repository_id": 1_296_269,
        "throttled_at": null
    })
}

/// Mounts the first page, which carries no cursor, with an optional `rel="next"` cursor.
async fn mount_first_page(
    server: &MockServer,
    body: Vec<Value>,
    next_cursor: Option<&str>,
    expected: u64,
) {
    let mut response = ResponseTemplate::new(200).set_body_json(body);
    if let Some(cursor) = next_cursor {
        response = response.insert_header("link", link_header(server, cursor).as_str());
    }
    Mock::given(method("GET"))
        .and(path(DELIVERIES_PATH))
        .and(query_param("per_page", "100"))
        .and(query_param_is_missing("cursor"))
        .respond_with(response)
        .expect(expected)
        .mount(server)
        .await;
}

fn link_header(server: &MockServer, next_cursor: &str) -> String {
    let uri = server.uri();
    format!(
        "<{uri}{DELIVERIES_PATH}?per_page=100&cursor=v1_0>; rel=\"prev\", \
         <{uri}{DELIVERIES_PATH}?per_page=100&cursor={next_cursor}>; rel=\"next\""
    )
}

async fn mount_cursor_page(server: &MockServer, cursor: &str, body: Vec<Value>, expected: u64) {
    Mock::given(method("GET"))
        .and(path(DELIVERIES_PATH))
        .and(query_param("cursor", cursor))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .expect(expected)
        .mount(server)
        .await;
}

async fn mount_redelivery(server: &MockServer, delivery_id: u64, status: u16, expected: u64) {
    Mock::given(method("POST"))
        .and(path(format!("{DELIVERIES_PATH}/{delivery_id}/attempts")))
        .respond_with(ResponseTemplate::new(status).set_body_json(json!({})))
        .expect(expected)
        .mount(server)
        .await;
}

/// Fails the test when a delivery other than the mounted ones is redelivered.
async fn forbid_other_redeliveries(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path_regex(ANY_ATTEMPTS_PATH))
        .respond_with(ResponseTemplate::new(500))
        .with_priority(10)
        .expect(0)
        .mount(server)
        .await;
}

/// Asserts that every request the server received carried an App JWT of [`APP_ID`].
async fn assert_app_jwt_on_every_request(server: &MockServer) {
    let key = DecodingKey::from_rsa_pem(PUBLIC_KEY_PEM.as_bytes()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_required_spec_claims(&["exp", "iat", "iss"]);
    for request in server.received_requests().await.unwrap() {
        let authorization = request
            .headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap();
        let token = authorization.strip_prefix("Bearer ").unwrap();
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .unwrap()
            .claims;
        assert_eq!(
            claims["iss"],
            Value::from(APP_ID.to_string()),
            "{}",
            request.url
        );
    }
}

#[tokio::test]
async fn list_deliveries_follows_cursor() {
    let server = MockServer::start().await;
    let first = vec![
        delivery(105, "guid-5", "workflow_job", 200, 1),
        delivery(104, "guid-4", "workflow_job", 502, 2),
    ];
    let second = vec![
        delivery(103, "guid-3", "ping", 200, 3),
        delivery(102, "guid-2", "workflow_job", 500, 4),
        delivery(101, "guid-1", "workflow_job", 500, 120),
    ];
    mount_first_page(&server, first, Some("v1_103"), 1).await;
    Mock::given(method("GET"))
        .and(path(DELIVERIES_PATH))
        .and(query_param("cursor", "v1_103"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(second)
                .insert_header("link", link_header(&server, "v1_100").as_str()),
        )
        .expect(1)
        .mount(&server)
        .await;
    // The second page reaches a delivery older than `since`, so this page is never read.
    mount_cursor_page(&server, "v1_100", vec![], 0).await;

    let deliveries = client()
        .list_deliveries(&host_of(&server), minutes_ago(60))
        .await
        .unwrap();

    let ids: Vec<u64> = deliveries.iter().map(|delivery| delivery.id).collect();
    assert_eq!(ids, [105, 104, 103, 102]);
    assert_eq!(deliveries[1].guid, "guid-4");
    assert_eq!(deliveries[1].status_code, 502);
    assert_eq!(deliveries[1].action.as_deref(), Some("queued"));
    assert_eq!(deliveries[2].event, "ping");
    assert_eq!(deliveries[2].action, None);
    assert!(!deliveries[0].redelivery);
    assert_app_jwt_on_every_request(&server).await;
}

#[tokio::test]
async fn list_deliveries_rejects_foreign_next_link() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(DELIVERIES_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(vec![delivery(1, "guid-1", "workflow_job", 500, 1)])
                .insert_header(
                    "link",
                    "<http://127.0.0.2:9/api/v3/app/hook/deliveries?cursor=v1_0>; rel=\"next\"",
                ),
        )
        .expect(1)
        .mount(&server)
        .await;

    let error = client()
        .list_deliveries(&host_of(&server), minutes_ago(60))
        .await
        .unwrap_err();

    assert!(error.to_string().contains("another origin"), "{error}");
}

#[tokio::test]
async fn rescue_redelivers_only_failed_workflow_jobs() {
    let server = MockServer::start().await;
    let page = vec![
        // guid-a failed first and succeeded on a later delivery.
        delivery(10, "guid-a", "workflow_job", 200, 1),
        delivery(9, "guid-a", "workflow_job", 500, 2),
        delivery(8, "guid-b", "workflow_job", 502, 3),
        delivery(7, "guid-c", "ping", 500, 4),
        delivery(6, "guid-d", "workflow_job", 204, 5),
        // Status 0 is outside 2xx, so it counts as failed.
        delivery(5, "guid-e", "workflow_job", 0, 6),
        delivery(4, "guid-b", "workflow_job", 500, 7),
    ];
    mount_first_page(&server, page, None, 1).await;
    mount_redelivery(&server, 8, 202, 1).await;
    mount_redelivery(&server, 5, 202, 1).await;
    forbid_other_redeliveries(&server).await;

    let report = RescuePass::new()
        .run(&client(), &host_of(&server), minutes_ago(60))
        .await
        .unwrap();

    println!("rescue pass on one page: {report:?}");
    assert_eq!(report.listed, 7);
    assert_eq!(report.failed, 2);
    assert_eq!(report.redelivered, 2);
    assert_eq!(report.already_redelivered, 0);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    // One list page and two redeliveries.
    assert_eq!(report.requests, 3);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    assert_app_jwt_on_every_request(&server).await;
}

#[tokio::test]
async fn rescue_second_run_redelivers_nothing() {
    let server = MockServer::start().await;
    let first = vec![
        delivery(22, "guid-x", "workflow_job", 500, 1),
        delivery(21, "guid-y", "workflow_job", 200, 2),
    ];
    let second = vec![
        delivery(20, "guid-z", "workflow_job", 503, 3),
        delivery(19, "guid-w", "workflow_job", 503, 90),
    ];
    mount_first_page(&server, first, Some("v1_20"), 2).await;
    mount_cursor_page(&server, "v1_20", second, 2).await;
    mount_redelivery(&server, 22, 202, 1).await;
    mount_redelivery(&server, 20, 202, 1).await;
    forbid_other_redeliveries(&server).await;
    let client = client();
    let host = host_of(&server);
    let pass = RescuePass::new();

    let first_run = pass.run(&client, &host, minutes_ago(60)).await.unwrap();
    let second_run = pass.run(&client, &host, minutes_ago(60)).await.unwrap();

    println!("first run: {first_run:?}");
    println!("second run: {second_run:?}");
    assert_eq!(first_run.listed, 3);
    assert_eq!(first_run.failed, 2);
    assert_eq!(first_run.redelivered, 2);
    // Two list pages and two redeliveries.
    assert_eq!(first_run.requests, 4);
    assert_eq!(second_run.listed, 3);
    assert_eq!(second_run.failed, 2);
    assert_eq!(second_run.redelivered, 0);
    assert_eq!(second_run.already_redelivered, 2);
    // Two list pages only.
    assert_eq!(second_run.requests, 2);
    assert_eq!(pass.remembered(), 2);
    assert_eq!(server.received_requests().await.unwrap().len(), 6);
}

#[tokio::test]
async fn rescue_reports_rejected_redelivery() {
    let server = MockServer::start().await;
    let page = vec![delivery(31, "guid-r", "workflow_job", 500, 1)];
    mount_first_page(&server, page, None, 2).await;
    Mock::given(method("POST"))
        .and(path(format!("{DELIVERIES_PATH}/31/attempts")))
        .respond_with(
            ResponseTemplate::new(422).set_body_json(json!({"message": "Validation Failed"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = client();
    let host = host_of(&server);
    let pass = RescuePass::new();

    let report = pass.run(&client, &host, minutes_ago(60)).await.unwrap();

    println!("rejected redelivery: {report:?}");
    assert_eq!(report.failed, 1);
    assert_eq!(report.redelivered, 0);
    assert_eq!(report.requests, 2);
    assert_eq!(report.errors.len(), 1);
    assert_eq!(report.errors[0].delivery_id, 31);
    assert_eq!(report.errors[0].guid, "guid-r");
    assert_eq!(report.errors[0].error.status(), Some(422));
    assert!(!report.errors[0].error.is_retryable());

    // A 422 is not retried by later runs.
    let again = pass.run(&client, &host, minutes_ago(60)).await.unwrap();
    assert_eq!(again.already_redelivered, 1);
    assert_eq!(again.requests, 1);
    assert!(again.errors.is_empty());
}

#[tokio::test]
async fn rescue_retries_server_error_next_run() {
    let server = MockServer::start().await;
    let page = vec![delivery(41, "guid-s", "workflow_job", 500, 1)];
    mount_first_page(&server, page, None, 2).await;
    Mock::given(method("POST"))
        .and(path(format!("{DELIVERIES_PATH}/41/attempts")))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(3)
        .expect(3)
        .mount(&server)
        .await;
    mount_redelivery(&server, 41, 202, 1).await;
    let client = client();
    let host = host_of(&server);
    let pass = RescuePass::new();

    let first_run = pass.run(&client, &host, minutes_ago(60)).await.unwrap();
    let second_run = pass.run(&client, &host, minutes_ago(60)).await.unwrap();

    assert_eq!(first_run.errors.len(), 1);
    assert!(first_run.errors[0].error.is_retryable());
    assert_eq!(first_run.redelivered, 0);
    // The three attempts of the client's retry policy count as one request.
    assert_eq!(first_run.requests, 2);
    assert_eq!(second_run.redelivered, 1);
    assert_eq!(second_run.already_redelivered, 0);
}

#[tokio::test]
async fn rescue_returns_list_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(DELIVERIES_PATH))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({"message": "Forbidden"})))
        .expect(1)
        .mount(&server)
        .await;

    let error = RescuePass::new()
        .run(&client(), &host_of(&server), minutes_ago(60))
        .await
        .unwrap_err();

    assert_eq!(error.status(), Some(403));
}

#[tokio::test]
async fn rescue_logs_ids_without_secrets() {
    let server = MockServer::start().await;
    let page = vec![delivery(51, "guid-logged", "workflow_job", 500, 1)];
    mount_first_page(&server, page, None, 1).await;
    mount_redelivery(&server, 51, 202, 1).await;
    let client = client();

    RescuePass::new()
        .run(&client, &host_of(&server), minutes_ago(60))
        .await
        .unwrap();

    let logs = captured_logs().text();
    let redelivery_line = logs
        .lines()
        .find(|line| line.contains("guid=guid-logged"))
        .expect("a log line names the redelivered GUID");
    assert!(
        redelivery_line.contains("requested redelivery"),
        "{redelivery_line}"
    );
    assert!(
        redelivery_line.contains("delivery_id=51"),
        "{redelivery_line}"
    );
    let port = server.address().port().to_string();
    let summary = logs
        .lines()
        .find(|line| line.contains("webhook rescue pass finished") && line.contains(&port))
        .expect("a summary line for this pass");
    assert!(summary.contains("redelivered=1"), "{summary}");
    assert!(summary.contains("requests=2"), "{summary}");
    let jwt = client.app_jwt().unwrap();
    assert!(!logs.contains(jwt.expose()));
    assert!(!logs.contains("Bearer"));
}
