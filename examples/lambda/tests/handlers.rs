//! The handlers with synthetic Function URL, API Gateway and SQS events, no Lambda runtime
//! and no AWS: the webhook function writes to a memory store, and the dispatcher tests
//! only take paths that make no SQS call.

mod common;

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use myshoes::credentials::StaticRegistrationToken;
use myshoes::datastore::{Datastore, MemoryDatastore};
use myshoes::dispatcher::{Dispatcher, DispatcherConfig};
use myshoes::secret::Secret;
use myshoes::stadium::MemoryStadium;
use myshoes_datastore_sqs::SqsDatastore;
use myshoes_lambda::config::{Deployment, CONFIG_VAR};
use myshoes_lambda::dispatch::DispatcherFunction;
use myshoes_lambda::init::seeded_store;
use myshoes_lambda::secrets::SettingReader;
use myshoes_lambda::webhook::{receiver_config, WebhookFunction};
use serde_json::json;

use common::*;

const HOST: &str = "https://github.com";

async fn webhook_function() -> (WebhookFunction, Arc<MemoryDatastore>) {
    let deployment = Deployment::parse(&deployment_json(HOST), CONFIG_VAR).unwrap();
    let store = seeded_store(&deployment).await.unwrap();
    let function = WebhookFunction::new(
        store.clone(),
        Secret::new(SECRET),
        receiver_config(&deployment, "myshoes".to_owned()),
    );
    (function, store)
}

#[tokio::test]
async fn function_url_base64_body_enqueues() {
    let (function, store) = webhook_function().await;
    let body = webhook_on(HOST, WORKFLOW_JOB_ID);
    let headers = github_headers("workflow_job", &sign(body.as_bytes()), "d-1");
    let response = function
        .handle(function_url_event(headers, body.as_bytes()))
        .await;

    let (status, json) = response_json(&response);
    assert_eq!(status, 202, "{json}");
    assert_eq!(json["result"], "enqueued");
    let jobs = store.list_jobs().await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].workflow_job_id, WORKFLOW_JOB_ID);
    assert_eq!(json["job_id"], jobs[0].id.to_string());
    assert_eq!(jobs[0].installation_id, Some(INSTALLATION_ID));
}

#[tokio::test]
async fn http_api_event_enqueues() {
    let (function, store) = webhook_function().await;
    let body = webhook_on(HOST, WORKFLOW_JOB_ID);
    let headers = github_headers("workflow_job", &sign(body.as_bytes()), "d-2");
    let response = function.handle(http_api_event(headers, &body)).await;

    assert_eq!(response_json(&response).0, 202);
    assert_eq!(store.list_jobs().await.unwrap().len(), 1);
}

#[tokio::test]
async fn rest_api_event_enqueues() {
    let (function, store) = webhook_function().await;
    let body = webhook_on(HOST, WORKFLOW_JOB_ID);
    // REST APIs pass header names as the client spelled them.
    let headers = github_headers("workflow_job", &sign(body.as_bytes()), "d-3");
    let response = function.handle(rest_api_event(headers, &body)).await;

    assert_eq!(response_json(&response).0, 202);
    assert_eq!(store.list_jobs().await.unwrap().len(), 1);
}

#[tokio::test]
async fn bad_signature_is_401() {
    let (function, store) = webhook_function().await;
    let body = webhook_on(HOST, WORKFLOW_JOB_ID);
    let wrong = sign(b"another body");
    let response = function
        .handle(function_url_event(
            github_headers("workflow_job", &wrong, "d-4"),
            body.as_bytes(),
        ))
        .await;
    let (status, json) = response_json(&response);
    assert_eq!(status, 401, "{json}");
    assert_eq!(json["result"], "rejected");
    assert!(store.list_jobs().await.unwrap().is_empty());

    let mut unsigned = github_headers("workflow_job", "", "d-5");
    unsigned
        .as_object_mut()
        .unwrap()
        .remove("X-Hub-Signature-256");
    let response = function.handle(http_api_event(unsigned, &body)).await;
    assert_eq!(response_json(&response).0, 401);
}

#[tokio::test]
async fn signature_over_base64_text_is_401() {
    // A signature computed over the base64 text instead of the decoded body must fail:
    // the handler checks the bytes GitHub sent.
    let (function, _) = webhook_function().await;
    let body = webhook_on(HOST, WORKFLOW_JOB_ID);
    let encoded = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(body.as_bytes())
    };
    let headers = github_headers("workflow_job", &sign(encoded.as_bytes()), "d-6");
    let response = function
        .handle(function_url_event(headers, body.as_bytes()))
        .await;
    assert_eq!(response_json(&response).0, 401);
}

#[tokio::test]
async fn unparseable_body_is_400() {
    let (function, _) = webhook_function().await;
    let body = br#"{"action":"queued","workflow_job":"#;
    let headers = github_headers("workflow_job", &sign(body), "d-7");
    let response = function.handle(function_url_event(headers, body)).await;
    let (status, json) = response_json(&response);
    assert_eq!(status, 400, "{json}");
    assert_eq!(json["result"], "rejected");
}

#[tokio::test]
async fn oversize_body_is_413() {
    let (function, _) = webhook_function().await;
    let body = vec![b' '; myshoes_lambda::config::DEFAULT_BODY_LIMIT + 1];
    let headers = github_headers("workflow_job", &sign(&body), "d-8");
    let response = function.handle(function_url_event(headers, &body)).await;
    assert_eq!(response_json(&response).0, 413);
}

#[tokio::test]
async fn ping_is_ignored_with_reason() {
    let (function, store) = webhook_function().await;
    let body = br#"{"zen":"Keep it logically awesome.","hook_id":1}"#;
    let headers = github_headers("ping", &sign(body), "d-9");
    let response = function.handle(function_url_event(headers, body)).await;
    let (status, json) = response_json(&response);
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["result"], "ignored");
    assert!(json["reason"].as_str().unwrap().contains("ping"), "{json}");
    assert!(store.list_jobs().await.unwrap().is_empty());
}

#[tokio::test]
async fn unknown_repository_is_ignored() {
    let (function, store) = webhook_function().await;
    let body = webhook_on(HOST, WORKFLOW_JOB_ID).replace("octo-org/", "other-org/");
    let headers = github_headers("workflow_job", &sign(body.as_bytes()), "d-10");
    let response = function
        .handle(function_url_event(headers, body.as_bytes()))
        .await;
    let (status, json) = response_json(&response);
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["result"], "ignored");
    assert!(json["reason"]
        .as_str()
        .unwrap()
        .contains("no active target"));
    assert!(store.list_jobs().await.unwrap().is_empty());
}

#[tokio::test]
async fn completed_event_is_ignored() {
    let (function, store) = webhook_function().await;
    let body = webhook_on(HOST, WORKFLOW_JOB_ID).replacen(
        r#""action":"queued""#,
        r#""action":"completed""#,
        1,
    );
    let headers = github_headers("workflow_job", &sign(body.as_bytes()), "d-11");
    let response = function
        .handle(function_url_event(headers, body.as_bytes()))
        .await;
    let (status, json) = response_json(&response);
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["result"], "ignored");
    assert!(store.list_jobs().await.unwrap().is_empty());
}

/// A dispatcher function whose SQS client points at a closed loopback port: the tests
/// below must finish without any SQS call.
async fn offline_dispatcher() -> DispatcherFunction {
    let aws = moto_sdk_config("http://127.0.0.1:9").await;
    let deployment = Deployment::parse(&deployment_json(HOST), CONFIG_VAR).unwrap();
    let store: Arc<dyn Datastore> = seeded_store(&deployment).await.unwrap();
    let datastore = Arc::new(
        SqsDatastore::builder(
            aws_sdk_sqs::Client::new(&aws),
            "http://127.0.0.1:9/123456789012/jobs.fifo",
        )
        .with_inner(store)
        .with_dead_letter_queue_url("http://127.0.0.1:9/123456789012/jobs-dlq.fifo")
        .build()
        .unwrap(),
    );
    let dispatcher = Dispatcher::new(
        datastore.clone(),
        Arc::new(MemoryStadium::new()),
        Arc::new(StaticRegistrationToken::new(Secret::new("unused"))),
        deployment.profiles,
        DispatcherConfig::default(),
    )
    .unwrap();
    DispatcherFunction::new(datastore, dispatcher, 2)
}

#[tokio::test]
async fn undecodable_records_are_reported() {
    let function = offline_dispatcher().await;
    let event: SqsEvent = serde_json::from_value(json!({
        "Records": [
            {
                "messageId": "poison-1",
                "receiptHandle": "AQEBpoison1",
                "body": "not a job",
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:jobs.fifo",
                "awsRegion": "us-east-1"
            },
            {
                "messageId": "no-handle-2",
                "body": "{}",
                "attributes": {"ApproximateReceiveCount": "2"},
                "messageAttributes": {}
            },
            {
                "messageId": "future-version-3",
                "receiptHandle": "AQEBfuture3",
                "body": "{\"v\":99}",
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {}
            }
        ]
    }))
    .unwrap();

    let response = function.handle(event).await;
    let mut reported: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.as_str())
        .collect();
    reported.sort_unstable();
    assert_eq!(reported, ["future-version-3", "no-handle-2", "poison-1"]);
}

#[tokio::test]
async fn empty_event_reports_nothing() {
    let function = offline_dispatcher().await;
    let event: SqsEvent = serde_json::from_value(json!({"Records": []})).unwrap();
    let response = function.handle(event).await;
    assert!(response.batch_item_failures.is_empty());
    let json = serde_json::to_value(&response).unwrap();
    assert_eq!(json, json!({"batchItemFailures": []}));
}

#[tokio::test]
async fn init_errors_name_the_variable() {
    let aws = moto_sdk_config("http://127.0.0.1:9").await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let ecs = aws_sdk_ecs::Client::new(&aws);
    let key = TEST_KEY.to_owned();
    let config = deployment_json(HOST);
    let complete = env_of(&[
        ("MYSHOES_CONFIG", &config),
        ("GITHUB_APP_SECRET", SECRET),
        ("GITHUB_APP_ID", "12345"),
        ("GITHUB_PRIVATE_KEY_BASE64", &key),
        (
            "AWS_SQS_QUEUE_URL",
            "http://127.0.0.1:9/123456789012/jobs.fifo",
        ),
        (
            "AWS_SQS_DEAD_LETTER_QUEUE_URL",
            "http://127.0.0.1:9/123456789012/jobs-dlq.fifo",
        ),
        ("ECS_TASK_CLUSTER", "runners"),
        ("ECS_TASK_DEFINITION_ARN", "runner"),
        ("ECS_TASK_SUBNETS", "subnet-1"),
        ("ECS_TASK_SECURITY_GROUPS", "sg-1"),
    ]);
    let reader = SettingReader::new(&complete, &aws);
    DispatcherFunction::from_env(&reader, sqs.clone(), ecs.clone())
        .await
        .expect("complete settings");
    WebhookFunction::from_env(&reader, sqs.clone())
        .await
        .expect("complete settings");

    for (variable, value) in [
        ("MYSHOES_CONFIG", ""),
        ("MYSHOES_CONFIG", "{"),
        ("GITHUB_APP_ID", ""),
        ("GITHUB_APP_ID", "twelve"),
        ("GITHUB_PRIVATE_KEY_BASE64", ""),
        ("GITHUB_PRIVATE_KEY_BASE64", "bm90IGEga2V5"),
        ("AWS_SQS_QUEUE_URL", ""),
        ("AWS_SQS_DEAD_LETTER_QUEUE_URL", ""),
        ("ECS_TASK_CLUSTER", ""),
        ("ECS_TASK_DEFINITION_ARN", ""),
        ("ECS_TASK_LAUNCH_TYPE", "LAMBDA"),
        ("DISPATCHER_MAX_CONCURRENCY", "0"),
        ("RUNNER_DIR", "relative/path"),
    ] {
        let mut env = complete.clone();
        env.insert(variable.to_owned(), value.to_owned());
        let reader = SettingReader::new(&env, &aws);
        let error = DispatcherFunction::from_env(&reader, sqs.clone(), ecs.clone())
            .await
            .expect_err(variable)
            .to_string();
        assert!(error.contains(variable), "{variable}={value:?}: {error}");
        assert!(!error.contains(&key), "the key never appears in errors");
    }

    for (variable, value) in [
        ("GITHUB_APP_SECRET", ""),
        ("WEBHOOK_MAX_BODY_BYTES", "1024"),
    ] {
        let mut env = complete.clone();
        env.insert(variable.to_owned(), value.to_owned());
        let reader = SettingReader::new(&env, &aws);
        let error = WebhookFunction::from_env(&reader, sqs.clone())
            .await
            .expect_err(variable)
            .to_string();
        assert!(error.contains(variable), "{variable}={value:?}: {error}");
    }
}
