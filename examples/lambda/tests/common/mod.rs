//! Helpers shared by the handler tests and the moto tests: synthetic Lambda events, signed
//! deliveries, moto set-up on loopback and a GitHub fake.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::config::Credentials;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Webhook secret of every test.
pub const SECRET: &str = "lambda-test-webhook-secret";
/// Installation id in the bundled delivery.
pub const INSTALLATION_ID: u64 = 71_234_567;
/// Workflow job id in the bundled delivery.
pub const WORKFLOW_JOB_ID: u64 = 38_000_000_001;
/// JIT config the GitHub fake returns.
pub const JIT_CONFIG: &str = "eyJydW5uZXIiOiJsYW1iZGEtZTJlLWppdC1jb25maWcifQ==";
/// Installation token the GitHub stand-in mints.
pub const INSTALLATION_TOKEN: &str = "ghs_installation_token_for_lambda_tests";
/// Throwaway RSA key that belongs to no GitHub App.
pub const TEST_KEY: &str =
    include_str!("../../../../myshoes/tests/fixtures/throwaway-test-rsa-key.pem");
/// A real-shaped `workflow_job` `queued` delivery for `octo-org/hello-world`.
pub const QUEUED_WEBHOOK: &str =
    include_str!("../../../../myshoes/tests/fixtures/workflow_job_queued.json");

/// Returns the bundled delivery with its repository on `host` and the given job id.
pub fn webhook_on(host: &str, workflow_job_id: u64) -> String {
    QUEUED_WEBHOOK
        .replace(
            "https://github.com/octo-org/hello-world",
            &format!("{host}/octo-org/hello-world"),
        )
        .replace(&WORKFLOW_JOB_ID.to_string(), &workflow_job_id.to_string())
}

/// Returns `sha256=<hex>` of `body` under [`SECRET`].
pub fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Delivery headers with the given event and signature, names in GitHub's spelling.
pub fn github_headers(event: &str, signature: &str, delivery: &str) -> Value {
    json!({
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/044aadd",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": signature,
    })
}

/// Builds a Lambda Function URL event (payload format 2.0) with a base64-encoded body, as
/// Function URLs send bodies with a JSON content type.
pub fn function_url_event(headers: Value, body: &[u8]) -> lambda_http::Request {
    let event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": lower_case_names(headers),
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghij",
            "domainName": "abcdefghij.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abcdefghij",
            "http": {
                "method": "POST",
                "path": "/",
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.10",
                "userAgent": "GitHub-Hookshot/044aadd"
            },
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "routeKey": "$default",
            "stage": "$default",
            "time": "04/Dec/2026:23:00:00 +0000",
            "timeEpoch": 1_796_425_200_000u64
        },
        "body": base64::engine::general_purpose::STANDARD.encode(body),
        "isBase64Encoded": true
    });
    lambda_http::request::from_str(&event.to_string()).expect("a valid Function URL event")
}

/// Builds an API Gateway HTTP API event (payload format 2.0) with a plain-text body.
pub fn http_api_event(headers: Value, body: &str) -> lambda_http::Request {
    let event = json!({
        "version": "2.0",
        "routeKey": "POST /webhook",
        "rawPath": "/webhook",
        "rawQueryString": "",
        "headers": lower_case_names(headers),
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api1234567",
            "domainName": "api1234567.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "api1234567",
            "http": {
                "method": "POST",
                "path": "/webhook",
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.10",
                "userAgent": "GitHub-Hookshot/044aadd"
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "POST /webhook",
            "stage": "$default",
            "time": "04/Dec/2026:23:00:00 +0000",
            "timeEpoch": 1_796_425_200_000u64
        },
        "body": body,
        "isBase64Encoded": false
    });
    lambda_http::request::from_str(&event.to_string()).expect("a valid HTTP API event")
}

/// Builds an API Gateway REST API event (payload format 1.0), headers as GitHub spells them.
pub fn rest_api_event(headers: Value, body: &str) -> lambda_http::Request {
    let multi: serde_json::Map<String, Value> = headers
        .as_object()
        .expect("headers object")
        .iter()
        .map(|(name, value)| (name.clone(), json!([value])))
        .collect();
    let event = json!({
        "resource": "/webhook",
        "path": "/webhook",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": multi,
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": null,
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012",
            "resourceId": "abc123",
            "stage": "prod",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": { "sourceIp": "192.0.2.10", "userAgent": "GitHub-Hookshot/044aadd" },
            "resourcePath": "/webhook",
            "httpMethod": "POST",
            "apiId": "api1234567",
            "path": "/prod/webhook",
            "protocol": "HTTP/1.1"
        },
        "body": body,
        "isBase64Encoded": false
    });
    lambda_http::request::from_str(&event.to_string()).expect("a valid REST API event")
}

fn lower_case_names(headers: Value) -> Value {
    Value::Object(
        headers
            .as_object()
            .expect("headers object")
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
            .collect(),
    )
}

/// Parses a webhook response's status and JSON body.
pub fn response_json(response: &lambda_http::Response<lambda_http::Body>) -> (u16, Value) {
    let body: &[u8] = response.body().as_ref();
    (
        response.status().as_u16(),
        serde_json::from_slice(body).expect("JSON response body"),
    )
}

/// Returns the deployment document for `octo-org` on `host` with one `linux-x64` profile.
pub fn deployment_json(host: &str) -> String {
    json!({
        "github_host": host,
        "targets": [{ "scope": "octo-org" }],
        "profiles": [{ "name": "linux-x64", "labels": ["linux", "x64"] }]
    })
    .to_string()
}

/// Builds an environment map from pairs.
pub fn env_of(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

/// Returns moto's endpoint from `AWS_ENDPOINT_URL`, or `None` after printing why the test
/// is skipped.
pub fn moto_endpoint() -> Option<String> {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(endpoint) if !endpoint.is_empty() => Some(endpoint),
        _ => {
            eprintln!(
                "SKIPPED: AWS_ENDPOINT_URL is not set; run the tests through .ci/run, which \
                 starts moto on 127.0.0.1 and sets it"
            );
            None
        }
    }
}

/// SDK configuration for moto at `endpoint`: explicit region and static credentials, so no
/// provider chain reaches for instance metadata, and no retries, so emulator errors show
/// at once.
pub async fn moto_sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .retry_config(RetryConfig::disabled())
        .load()
        .await
}

/// Returns a name unique to this test run, with `prefix`.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Keeps moto's ECS tasks RUNNING until StopTask; moto otherwise advances a task one state
/// per DescribeTasks. The setting is global and idempotent.
pub async fn keep_tasks_running(endpoint: &str) {
    let status = reqwest::Client::new()
        .post(format!("{endpoint}/moto-api/state-manager/set-transition"))
        .header("Content-Type", "application/json")
        .body(r#"{"model_name":"ecs::task","transition":{"progression":"manual","times":1000000}}"#)
        .send()
        .await
        .expect("moto state manager request")
        .status();
    assert!(status.is_success(), "moto state manager returned {status}");
}

/// Returns a default-VPC subnet id from moto's EC2 Query API (DescribeSubnets); moto reads
/// only the service name from the credential scope.
pub async fn moto_default_subnet(endpoint: &str) -> String {
    let body = reqwest::Client::new()
        .post(format!("{endpoint}/"))
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=00",
        )
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("Action=DescribeSubnets&Version=2016-11-15&Filter.1.Name=default-for-az&Filter.1.Value.1=true")
        .send()
        .await
        .expect("DescribeSubnets on moto")
        .text()
        .await
        .expect("DescribeSubnets body");
    let open = "<subnetId>";
    let start = body
        .find(open)
        .unwrap_or_else(|| panic!("no default subnet in DescribeSubnets output: {body}"))
        + open.len();
    let end = start + body[start..].find('<').expect("closing subnetId tag");
    body[start..end].to_owned()
}

/// Mounts the GitHub App endpoints the dispatcher calls: an installation token, every job
/// `queued`, and JIT configs for `octo-org`.
pub async fn mount_github(github: &MockServer) {
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
    Mock::given(method("GET"))
        .and(path_regex(
            r"^/api/v3/repos/octo-org/hello-world/actions/jobs/[0-9]+$",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "queued"})))
        .mount(github)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v3/orgs/octo-org/actions/runners/generate-jitconfig"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "runner": {"id": 23, "name": "myshoes-runner", "os": "unknown", "status": "offline", "busy": false, "labels": []},
            "encoded_jit_config": JIT_CONFIG,
        })))
        .mount(github)
        .await;
}
