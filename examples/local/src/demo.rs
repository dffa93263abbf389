//! The demo: start the app, send it a signed `workflow_job` webhook, and show each step.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use myshoes::datastore::{Datastore, MemoryDatastore};
use myshoes::dispatcher::Outcome;
use myshoes::secret::Secret;
use myshoes::setup_script::RunnerSource;
use myshoes::stadium::{ProcessStadium, LOG_FILE, SCRIPT_FILE};
use sha2::Sha256;

use crate::app::{App, AppOptions, WebhookResponse};
use crate::config::LoadedConfig;

/// A `workflow_job` `queued` delivery as GitHub sends it, for repository
/// `octo-org/hello-world` with labels `self-hosted, linux, x64`.
pub const QUEUED_WEBHOOK: &[u8] =
    include_bytes!("../../../myshoes/tests/fixtures/workflow_job_queued.json");

/// Directory of the stand-in `config.sh` and `run.sh` shipped with the app.
pub fn stand_in_runner_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("stand-in-runner")
}

/// Settings of one demo run.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Targets and profiles.
    pub config: LoadedConfig,
    /// Webhook secret; the demo signs its webhook with it.
    pub webhook_secret: Secret,
    /// Registration token handed to the runner.
    pub registration_token: Secret,
    /// Where the runner comes from; the stand-in directory unless a real runner is asked for.
    pub runner_source: RunnerSource,
    /// Parent of the runner working directories.
    pub instances_dir: PathBuf,
    /// Address to listen on, such as `127.0.0.1:0` for any free port.
    pub listen: std::net::SocketAddr,
}

/// Signs `body` as GitHub does: `sha256=` and the lower-case hex HMAC-SHA256.
pub fn sign(secret: &Secret, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Error returned when the demo cannot complete.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The app could not start.
    #[error("the app failed to start")]
    App(#[from] crate::app::AppError),
    /// A local network call failed.
    #[error("failed to talk to the app at {address}")]
    Http {
        /// The app's address.
        address: String,
        /// The client error.
        #[source]
        source: reqwest::Error,
    },
    /// The socket could not be bound.
    #[error("failed to listen on {address}")]
    Listen {
        /// The address.
        address: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A step ended differently than the demo expects.
    #[error("demo step failed: {0}")]
    Step(String),
}

struct Sent {
    status: u16,
    response: WebhookResponse,
}

async fn post_webhook(
    client: &reqwest::Client,
    url: &str,
    body: &[u8],
    signature: &str,
    event: &str,
    delivery_id: &str,
) -> Result<Sent, DemoError> {
    let http_error = |source| DemoError::Http {
        address: url.to_owned(),
        source,
    };
    let answer = client
        .post(url)
        .header("Content-Type", "application/json")
        .header("User-Agent", "GitHub-Hookshot/myshoes-demo")
        .header("X-GitHub-Event", event)
        .header("X-GitHub-Delivery", delivery_id)
        .header("X-Hub-Signature-256", signature)
        .body(body.to_vec())
        .send()
        .await
        .map_err(http_error)?;
    let status = answer.status().as_u16();
    let text = answer.text().await.map_err(http_error)?;
    let response = serde_json::from_str(&text).map_err(|error| {
        DemoError::Step(format!(
            "the app answered {status} with a body that is not the expected JSON ({error}): {text}"
        ))
    })?;
    Ok(Sent { status, response })
}

/// Runs the demo and returns its report, one line per step. `print` receives each line as
/// it happens.
pub async fn run_demo(
    options: DemoOptions,
    print: impl Fn(&str) + Send + Sync,
) -> Result<String, DemoError> {
    let mut report = String::new();
    let mut step = |line: String| {
        print(&line);
        let _ = writeln!(report, "{line}");
    };
    let stand_in = matches!(&options.runner_source, RunnerSource::PreInstalled { path, .. } if path == &stand_in_runner_dir());

    let datastore = Arc::new(MemoryDatastore::new());
    let stadium = Arc::new(ProcessStadium::new(&options.instances_dir));
    let mut app_options = AppOptions::new(
        options.config,
        options.webhook_secret.clone(),
        options.registration_token,
    );
    app_options.runner_source = options.runner_source;
    // The demo runs one sweeper pass itself, after the runner exits; the app's own passes
    // run at the start and then hourly.
    app_options.sweep_interval = Duration::from_secs(3600);
    let app = App::new(app_options, datastore.clone(), stadium.clone()).await?;
    let mut outcomes = app.dispatcher().subscribe();

    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| DemoError::Listen {
            address: options.listen.to_string(),
            source,
        })?;
    let address = listener.local_addr().map_err(|source| DemoError::Listen {
        address: options.listen.to_string(),
        source,
    })?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running_app = app.clone();
    let server = tokio::spawn(async move {
        running_app
            .run(listener, async {
                let _ = stopped.await;
            })
            .await
    });
    step(format!(
        "app listening on http://{address} (in-memory Datastore, process Stadium under {})",
        options.instances_dir.display()
    ));

    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|source| DemoError::Http {
            address: address.to_string(),
            source,
        })?;
    let url = format!("http://{address}/webhook");
    let delivery_id = uuid::Uuid::new_v4().to_string();
    let signature = sign(&options.webhook_secret, QUEUED_WEBHOOK);

    step(format!(
        "sent workflow_job (queued) delivery {delivery_id}: {} bytes, signed with HMAC-SHA256",
        QUEUED_WEBHOOK.len()
    ));
    let sent = post_webhook(
        &client,
        &url,
        QUEUED_WEBHOOK,
        &signature,
        "workflow_job",
        &delivery_id,
    )
    .await?;
    if sent.response.result != "enqueued" {
        return Err(DemoError::Step(format!(
            "expected the job to be enqueued, got HTTP {} {:?}",
            sent.status, sent.response
        )));
    }
    step(format!(
        "1. signature verified: HTTP {} from the receiver",
        sent.status
    ));
    step(format!(
        "2. decision: enqueue, matched runner profile {:?}",
        sent.response.profile.clone().unwrap_or_default()
    ));
    let job_id = sent.response.job_id.clone().unwrap_or_default();
    step(format!(
        "3. job stored: {job_id} for target {}",
        sent.response.target.clone().unwrap_or_default()
    ));

    let outcome = loop {
        let outcome = tokio::time::timeout(Duration::from_secs(60), outcomes.recv())
            .await
            .map_err(|_| DemoError::Step("no dispatch outcome within 60 seconds".to_owned()))?
            .map_err(|error| DemoError::Step(format!("outcome channel failed: {error}")))?;
        if outcome.job().id.to_string() == job_id {
            break outcome;
        }
    };
    let (runner, instance) = match outcome {
        Outcome::Launched {
            runner, instance, ..
        } => (runner, instance),
        other => return Err(DemoError::Step(format!("expected a launch, got {other:?}"))),
    };
    let directory = PathBuf::from(instance.address.clone().unwrap_or_default());
    step(format!("4. runner name: {}", runner.name));
    step(format!(
        "5. instance launched on {}: {} (script {}, deleted by itself at start because it holds the token; log {})",
        instance.stadium,
        instance.cloud_id,
        directory.join(SCRIPT_FILE).display(),
        directory.join(LOG_FILE).display()
    ));
    let recorded = datastore
        .get_runner(runner.id)
        .await
        .map_err(|error| DemoError::Step(format!("runner record missing: {error}")))?;
    step(format!(
        "6. runner recorded: {} ({}, {}, status {})",
        recorded.id, recorded.resource_type, recorded.stadium, recorded.status
    ));

    let sent_again = post_webhook(
        &client,
        &url,
        QUEUED_WEBHOOK,
        &signature,
        "workflow_job",
        &delivery_id,
    )
    .await?;
    step(format!(
        "7. same delivery sent again: HTTP {} {} ({})",
        sent_again.status,
        sent_again.response.result,
        sent_again.response.reason.clone().unwrap_or_default()
    ));
    let forged = post_webhook(
        &client,
        &url,
        QUEUED_WEBHOOK,
        &sign(&Secret::new("wrong secret"), QUEUED_WEBHOOK),
        "workflow_job",
        &delivery_id,
    )
    .await?;
    step(format!(
        "8. delivery with a wrong signature: HTTP {} {}",
        forged.status, forged.response.result
    ));

    let status = tokio::time::timeout(
        Duration::from_secs(120),
        stadium.wait_for_exit(&instance.cloud_id),
    )
    .await
    .map_err(|_| {
        DemoError::Step("the runner process did not finish within 120 seconds".to_owned())
    })?;
    let log = std::fs::read_to_string(directory.join(LOG_FILE)).unwrap_or_default();
    step(format!(
        "9. runner process exited with {}; its log:",
        status.map_or_else(
            || "an unknown status".to_owned(),
            |status| status.to_string()
        )
    ));
    for line in log.lines() {
        step(format!("   | {line}"));
    }
    let swept = app
        .sweeper()
        .sweep()
        .await
        .map_err(|error| DemoError::Step(format!("sweeper pass failed: {error}")))?;
    let decision = swept.for_runner(runner.id).ok_or_else(|| {
        DemoError::Step("the sweeper made no decision about the runner".to_owned())
    })?;
    let record = datastore
        .get_runner(runner.id)
        .await
        .map_err(|error| DemoError::Step(format!("runner record missing: {error}")))?;
    step(format!(
        "10. sweeper pass: {} runner {} ({}), record now {}",
        decision.action.label(),
        runner.name,
        decision.reason,
        record.status
    ));
    if stand_in {
        step("NOTE: a stand-in runner ran (config.sh and run.sh only print their arguments), because GitHub is not reachable from this machine. With network access, a real registration token and --download-runner, the same app downloads and runs the real Actions runner.".to_owned());
    }

    let _ = stop.send(());
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return Err(DemoError::Step(format!("server failed: {error}"))),
        Err(error) => return Err(DemoError::Step(format!("server task failed: {error}"))),
    }
    Ok(report)
}
