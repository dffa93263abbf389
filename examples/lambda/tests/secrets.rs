//! The webhook function's log output, captured at TRACE level, never contains the webhook
//! secret or a signature, on the accepted path and on every rejection.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use myshoes::secret::Secret;
use myshoes_lambda::config::{Deployment, CONFIG_VAR};
use myshoes_lambda::init::seeded_store;
use myshoes_lambda::webhook::{receiver_config, WebhookFunction};

use common::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn webhook_logs_hold_no_secret_or_signature() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let deployment = Deployment::parse(&deployment_json("https://github.com"), CONFIG_VAR).unwrap();
    let store = seeded_store(&deployment).await.unwrap();
    let function = WebhookFunction::new(
        store,
        Secret::new(SECRET),
        receiver_config(&deployment, "myshoes".to_owned()),
    );
    let body = webhook_on("https://github.com", WORKFLOW_JOB_ID);
    let good = sign(body.as_bytes());
    let wrong = sign(b"another body");
    let cases = [
        (good.clone(), body.clone(), 202),
        (wrong.clone(), body.clone(), 401),
        (sign(b"{not json"), "{not json".to_owned(), 400),
    ];
    for (index, (signature, body, expected)) in cases.into_iter().enumerate() {
        let headers = github_headers("workflow_job", &signature, &format!("d-secret-{index}"));
        let response = function
            .handle(function_url_event(headers, body.as_bytes()))
            .await;
        assert_eq!(response_json(&response).0, expected);
    }

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("d-secret-0"),
        "the run logged its deliveries: {logs}"
    );
    assert!(
        logs.contains("d-secret-1"),
        "the rejection was logged: {logs}"
    );
    for secret in [SECRET, good.as_str(), wrong.as_str()] {
        assert!(
            !logs.contains(secret),
            "{secret:?} appeared in the logs:\n{logs}"
        );
    }
    assert!(
        !logs.contains(&good["sha256=".len()..]),
        "a signature digest was logged"
    );
}
