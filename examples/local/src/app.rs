//! The app: an HTTP webhook receiver and the dispatcher loop over shared backends.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use myshoes::credentials::{RunnerCredentials, StaticRegistrationToken};
use myshoes::datastore::{Datastore, DatastoreExt, Error as DatastoreError};
use myshoes::dispatcher::{Dispatcher, DispatcherConfig};
use myshoes::github::{GitHubApi, GitHubAppClient};
use myshoes::secret::Secret;
use myshoes::setup_script::{RunnerCredential, RunnerSource, SetupScriptParams};
use myshoes::stadium::Stadium;
use myshoes::sweeper::{record_runner_activity, Sweeper, SweeperConfig};
use myshoes::webhook::{
    receive, DecideConfig, Decision, JobCancel, ReceiverConfig, SignatureOptions, WebhookHeaders,
    DEFAULT_MAX_BODY_BYTES,
};
use myshoes::ErrorChain;
use serde::Serialize;

use crate::config::LoadedConfig;

/// Everything the app needs besides its backends.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// Targets and profiles.
    pub config: LoadedConfig,
    /// Secret that GitHub signs webhooks with.
    pub webhook_secret: Secret,
    /// Registration token handed to every runner when no GitHub App is configured.
    pub registration_token: Secret,
    /// GitHub App client that mints runner credentials and checks that jobs are still
    /// queued; when set, `registration_token` is not used.
    pub github_app: Option<Arc<GitHubAppClient>>,
    /// Where setup scripts get the Actions runner from.
    pub runner_source: RunnerSource,
    /// User that runs the runner, if not the app's user.
    pub run_as: Option<String>,
    /// Jobs dispatched at the same time.
    pub max_concurrency: usize,
    /// Largest webhook body accepted, in bytes; at least [`MIN_BODY_LIMIT`].
    pub max_body_bytes: usize,
    /// Webhook requests handled at once; more wait. Bounds the memory that buffered bodies
    /// take, because a body is read whole before its signature can be checked.
    pub max_webhook_requests: usize,
    /// Whether deliveries signed only with HMAC-SHA1 (`X-Hub-Signature`) are accepted.
    pub allow_sha1: bool,
    /// Time between sweeper passes; zero turns the sweeper off.
    pub sweep_interval: Duration,
    /// Sweeper settings: boot grace, idle and maximum lifetimes.
    pub sweeper: SweeperConfig,
}

/// Smallest body limit the app accepts; `workflow_job` deliveries are around 10 KB.
pub const MIN_BODY_LIMIT: usize = 64 * 1024;

impl AppOptions {
    /// Creates options with a download of the pinned runner version, 4 concurrent jobs and
    /// the default body limit.
    pub fn new(config: LoadedConfig, webhook_secret: Secret, registration_token: Secret) -> Self {
        Self {
            config,
            webhook_secret,
            registration_token,
            github_app: None,
            runner_source: RunnerSource::default(),
            run_as: None,
            max_concurrency: 4,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_webhook_requests: 16,
            allow_sha1: false,
            sweep_interval: Duration::from_secs(60),
            sweeper: local_sweeper_config(),
        }
    }
}

/// Sweeper settings for the local Stadiums, whose instance listings are current at once.
fn local_sweeper_config() -> SweeperConfig {
    let mut config = SweeperConfig::default();
    config.listing_grace = Duration::ZERO;
    config
}

/// Error returned when the app cannot start.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The webhook secret is empty.
    #[error("the webhook secret is empty: set GITHUB_APP_SECRET to the secret of the GitHub App's webhook")]
    EmptySecret,
    /// A configured target could not be stored.
    #[error("failed to create target {scope}")]
    Target {
        /// Scope of the target.
        scope: String,
        /// The Datastore error.
        #[source]
        source: DatastoreError,
    },
    /// The dispatcher settings are invalid.
    #[error(transparent)]
    Dispatcher(#[from] myshoes::dispatcher::ConfigError),
    /// A setting would make every job fail, so the app does not start.
    #[error("invalid setting: {0}")]
    Invalid(String),
}

/// The running parts of the app.
#[derive(Debug, Clone)]
pub struct App {
    datastore: Arc<dyn Datastore>,
    dispatcher: Arc<Dispatcher>,
    sweeper: Arc<Sweeper>,
    sweep_interval: Duration,
    receiver: Arc<Receiver>,
}

#[derive(Debug)]
struct Receiver {
    datastore: Arc<dyn Datastore>,
    /// How long an `in_progress` event keeps its runner from being swept without a
    /// `completed`.
    activity_lease: Duration,
    secret: Secret,
    config: ReceiverConfig,
    max_requests: usize,
}

/// JSON body of the response to a webhook delivery.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct WebhookResponse {
    /// `enqueued`, `duplicate`, `cancelled`, `ignored` or `rejected`.
    pub result: String,
    /// Reason the delivery was ignored or rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Id of the stored job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// Runner profile that matched the job's labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Scope of the target the job was stored for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl WebhookResponse {
    fn new(result: &str) -> Self {
        Self {
            result: result.to_owned(),
            reason: None,
            job_id: None,
            profile: None,
            target: None,
        }
    }

    fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

impl App {
    /// Creates the configured targets in `datastore` and wires the receiver and dispatcher.
    pub async fn new(
        options: AppOptions,
        datastore: Arc<dyn Datastore>,
        stadium: Arc<dyn Stadium>,
    ) -> Result<Self, AppError> {
        validate_options(&options)?;
        for target in &options.config.targets {
            datastore
                .create_target(target)
                .await
                .map_err(|source| AppError::Target {
                    scope: target.scope.to_string(),
                    source,
                })?;
        }

        let mut dispatcher_config = DispatcherConfig::default();
        dispatcher_config.runner_source = options.runner_source.clone();
        dispatcher_config.run_as = options.run_as.clone();
        dispatcher_config.max_concurrency = options.max_concurrency;
        dispatcher_config.max_runners_per_target = options.config.max_runners_per_target;
        let credentials: Arc<dyn RunnerCredentials> = match &options.github_app {
            Some(client) => client.clone(),
            None => Arc::new(StaticRegistrationToken::new(
                options.registration_token.clone(),
            )),
        };
        let mut dispatcher = Dispatcher::new(
            datastore.clone(),
            stadium.clone(),
            credentials,
            options.config.profiles.clone(),
            dispatcher_config,
        )?;
        if let Some(client) = &options.github_app {
            dispatcher = dispatcher.with_job_status_source(client.clone());
        }

        let decide = DecideConfig::new(options.config.profiles, options.config.github_host)
            .with_runner_name_prefix(dispatcher.config().runner_name_prefix.clone());
        let mut sweeper_config = options.sweeper.clone();
        sweeper_config.runner_name_prefix = dispatcher.config().runner_name_prefix.clone();
        let github: Option<Arc<dyn GitHubApi>> = options
            .github_app
            .clone()
            .map(|client| client as Arc<dyn GitHubApi>);
        let activity_lease = sweeper_config.max_lifetime;
        let sweeper = Sweeper::new(datastore.clone(), stadium, github, sweeper_config);
        let receiver = Receiver {
            datastore: datastore.clone(),
            activity_lease,
            secret: options.webhook_secret,
            config: ReceiverConfig::new(decide)
                .with_max_body_bytes(options.max_body_bytes)
                .with_signature_options(SignatureOptions::default().with_sha1(options.allow_sha1)),
            max_requests: options.max_webhook_requests,
        };
        Ok(Self {
            datastore,
            dispatcher: Arc::new(dispatcher),
            sweeper: Arc::new(sweeper),
            sweep_interval: options.sweep_interval,
            receiver: Arc::new(receiver),
        })
    }

    /// Returns the Datastore.
    pub fn datastore(&self) -> &Arc<dyn Datastore> {
        &self.datastore
    }

    /// Returns the dispatcher, for subscribing to outcomes.
    pub fn dispatcher(&self) -> &Arc<Dispatcher> {
        &self.dispatcher
    }

    /// Returns the sweeper, for running a pass by hand.
    pub fn sweeper(&self) -> &Arc<Sweeper> {
        &self.sweeper
    }

    /// Returns the HTTP routes: `POST /webhook` and `GET /healthz`.
    pub fn router(&self) -> Router {
        // One byte over the limit still reaches the handler, so that `receive` reports the
        // size; anything larger is cut off by the server with 413.
        let limit = self.receiver.config.max_body_bytes.saturating_add(1);
        let webhook = post(handle_webhook).layer(tower::limit::ConcurrencyLimitLayer::new(
            self.receiver.max_requests,
        ));
        Router::new()
            .route("/webhook", webhook)
            .route("/healthz", get(|| async { "ok\n" }))
            .layer(DefaultBodyLimit::max(limit))
            .with_state(self.receiver.clone())
    }

    /// Serves HTTP on `listener` and runs the dispatcher and, unless its interval is zero,
    /// the sweeper until `shutdown` completes, then stops them.
    pub async fn run(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop_sender, stop) = tokio::sync::watch::channel(false);
        let mut dispatcher_stop = stop.clone();
        let dispatcher = tokio::spawn(self.dispatcher.clone().run_until(async move {
            let _ = dispatcher_stop.wait_for(|stopped| *stopped).await;
        }));
        let sweeper = (!self.sweep_interval.is_zero()).then(|| {
            let mut sweeper_stop = stop.clone();
            let sweeper = self.sweeper.clone();
            let interval = self.sweep_interval;
            tokio::spawn(async move {
                sweeper
                    .run_until(interval, async move {
                        let _ = sweeper_stop.wait_for(|stopped| *stopped).await;
                    })
                    .await;
            })
        });
        let mut server_stop = stop;
        let server = axum::serve(listener, self.router()).with_graceful_shutdown(async move {
            let _ = server_stop.wait_for(|stopped| *stopped).await;
        });
        let trigger = tokio::spawn(async move {
            shutdown.await;
            let _ = stop_sender.send(true);
        });
        let served = server.await;
        trigger.abort();
        if let Err(error) = dispatcher.await {
            tracing::error!(%error, "the dispatcher task failed");
        }
        if let Some(Err(error)) = match sweeper {
            Some(task) => Some(task.await),
            None => None,
        } {
            tracing::error!(%error, "the sweeper task failed");
        }
        served
    }
}

/// Builds the response to a delivery and counts it in `myshoes_webhooks_total` by result.
fn reply(status: StatusCode, body: WebhookResponse) -> Response {
    metrics::counter!("myshoes_webhooks_total", "result" => body.result.clone()).increment(1);
    (status, Json(body)).into_response()
}

async fn handle_webhook(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let headers = WebhookHeaders::from_pairs(
        headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes())),
    );
    let delivery_id = headers
        .delivery_id()
        .ok()
        .flatten()
        .unwrap_or("-")
        .to_owned();
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let status = rejection.status();
            let reason = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!(
                    "the request body is more than the maximum of {} bytes: GitHub sends at most 25 MB, so raise --max-body-bytes only if larger deliveries are expected",
                    receiver.config.max_body_bytes
                )
            } else {
                rejection.body_text()
            };
            tracing::warn!(delivery_id, status = status.as_u16(), %reason, "webhook rejected");
            return reply(status, WebhookResponse::new("rejected").with_reason(reason));
        }
    };

    let received = match receive(&headers, &body, &receiver.secret, &receiver.config) {
        Ok(received) => received,
        Err(error) => {
            let status =
                StatusCode::from_u16(error.status_code()).unwrap_or(StatusCode::BAD_REQUEST);
            tracing::warn!(delivery_id, status = status.as_u16(), %error, "webhook rejected");
            return reply(
                status,
                WebhookResponse::new("rejected").with_reason(error.to_string()),
            );
        }
    };

    if let Some(activity) = &received.runner_activity {
        if let Err(error) = record_runner_activity(
            receiver.datastore.as_ref(),
            activity,
            receiver.activity_lease,
        )
        .await
        {
            tracing::warn!(
                delivery_id,
                runner_name = %activity.runner_name,
                error = %ErrorChain(&error),
                "failed to record the runner's activity; the sweeper relies on GitHub's view alone"
            );
        }
    }

    let request = match received.decision {
        Decision::Cancel(cancel) => return cancel_launch(&receiver, &delivery_id, &cancel).await,
        Decision::Ignore(reason) => {
            tracing::info!(delivery_id, event = %received.event, %reason, "webhook ignored");
            return reply(
                StatusCode::OK,
                WebhookResponse::new("ignored").with_reason(reason.to_string()),
            );
        }
        Decision::Enqueue(request) => request,
    };

    let target = match receiver
        .datastore
        .find_target_for_repository(&request.host, &request.repository)
        .await
    {
        Ok(Some(target)) => target,
        Ok(None) => {
            let reason = format!(
                "no active target for {} on {}: add the repository or its owner to [[targets]]",
                request.repository, request.host
            );
            tracing::info!(
                delivery_id,
                repository = %request.repository,
                host = %request.host,
                "webhook ignored: no active target for the repository on this host"
            );
            return reply(
                StatusCode::OK,
                WebhookResponse::new("ignored").with_reason(reason),
            );
        }
        Err(error) => return datastore_unavailable(&delivery_id, &error),
    };

    let profile = request.profile.clone();
    let job = request.into_job(target.id, Utc::now());
    let mut response = WebhookResponse::new("enqueued");
    response.job_id = Some(job.id.to_string());
    response.profile = Some(profile);
    response.target = Some(target.scope.to_string());
    match receiver.datastore.enqueue_job(&job).await {
        Ok(()) => {
            tracing::info!(
                delivery_id,
                job_id = %job.id,
                workflow_job_id = job.workflow_job_id,
                target_id = %target.id,
                "job enqueued"
            );
            metrics::counter!("myshoes_jobs_enqueued_total").increment(1);
            reply(StatusCode::ACCEPTED, response)
        }
        Err(DatastoreError::AlreadyExists { .. }) => {
            tracing::info!(delivery_id, job_id = %job.id, "duplicate delivery: the job was received already");
            metrics::counter!("myshoes_dedup_hits_total", "layer" => "enqueue").increment(1);
            response.result = "duplicate".to_owned();
            response.reason = Some(
                "this job attempt was received already; no second runner is launched".to_owned(),
            );
            reply(StatusCode::OK, response)
        }
        Err(error) => datastore_unavailable(&delivery_id, &error),
    }
}

/// Name under which the receiver claims launches that a started or finished job no longer
/// needs.
const CANCEL_OWNER: &str = "webhook-cancel";

/// Completes the job attempt's launch claim under [`CANCEL_OWNER`], so a dispatcher that
/// receives the job later skips it instead of launching an idle runner.
async fn cancel_launch(receiver: &Receiver, delivery_id: &str, cancel: &JobCancel) -> Response {
    let claimed = receiver
        .datastore
        .claim_launch(cancel.job_id, CANCEL_OWNER, Duration::from_secs(60))
        .await;
    let result = match claimed {
        Ok(()) => {
            let completed = receiver
                .datastore
                .complete_launch(cancel.job_id, CANCEL_OWNER)
                .await;
            if completed.is_err() {
                // Leave no half-made cancel behind to delay a launch that is still wanted.
                if let Err(error) = receiver
                    .datastore
                    .release_launch(cancel.job_id, CANCEL_OWNER)
                    .await
                {
                    tracing::warn!(
                        delivery_id,
                        job_id = %cancel.job_id,
                        error = %ErrorChain(&error),
                        "failed to release a cancel claim; it expires after 60 seconds"
                    );
                }
            }
            completed
        }
        Err(error) => Err(error),
    };
    let reason = match result {
        Ok(()) => format!(
            "action {}: no runner will be launched for this job attempt",
            cancel.action
        ),
        Err(DatastoreError::AlreadyExists { .. }) => {
            format!("action {}: the runner was launched already", cancel.action)
        }
        Err(DatastoreError::Conflict { .. }) => {
            format!(
                "action {}: a launch is in progress and goes ahead",
                cancel.action
            )
        }
        Err(error) => return datastore_unavailable(delivery_id, &error),
    };
    tracing::info!(
        delivery_id,
        job_id = %cancel.job_id,
        workflow_job_id = cancel.workflow_job_id,
        %reason,
        "pending launch cancelled"
    );
    let mut response = WebhookResponse::new("cancelled").with_reason(reason);
    response.job_id = Some(cancel.job_id.to_string());
    reply(StatusCode::OK, response)
}

/// Rejects settings that would let the app start and then drop every job.
fn validate_options(options: &AppOptions) -> Result<(), AppError> {
    if options.webhook_secret.is_empty() {
        return Err(AppError::EmptySecret);
    }
    if options.max_body_bytes < MIN_BODY_LIMIT {
        return Err(AppError::Invalid(format!(
            "the body limit of {} bytes is below the minimum of {MIN_BODY_LIMIT} bytes",
            options.max_body_bytes
        )));
    }
    let limited = options.config.max_runners_per_target.is_some()
        || options
            .config
            .profiles
            .iter()
            .any(|profile| profile.max_runners.is_some());
    if limited && options.sweep_interval.is_zero() {
        return Err(AppError::Invalid(
            "runner limits need the sweeper to give slots back: set SWEEP_INTERVAL_SECS above 0 or remove the limits".to_owned(),
        ));
    }
    if options.max_webhook_requests == 0 {
        return Err(AppError::Invalid(
            "the number of webhook requests handled at once must be at least 1".to_owned(),
        ));
    }
    if let RunnerSource::PreInstalled { path, .. } = &options.runner_source {
        for script in ["config.sh", "run.sh"] {
            if !path.join(script).is_file() {
                return Err(AppError::Invalid(format!(
                    "the runner directory {} has no {script}: point RUNNER_DIR at an extracted Actions runner",
                    path.display()
                )));
            }
        }
    }
    // Build one script per profile now, so that a bad token, label or runner setting stops
    // the app at start instead of dropping every job later.
    let credential = match options.github_app {
        // The App mints real credentials per runner; check the rest with a placeholder.
        Some(_) => Secret::new("startup-check"),
        None => options.registration_token.clone(),
    };
    for profile in options.config.profiles.iter() {
        let mut params = SetupScriptParams::new(
            "https://github.com/startup-check",
            RunnerCredential::RegistrationToken(credential.clone()),
            "myshoes-startup-check",
        );
        params.labels = profile.labels.clone();
        params.runner_source = options.runner_source.clone();
        params.run_as = options.run_as.clone();
        params.build().map_err(|error| {
            AppError::Invalid(format!("runner profile {:?}: {error}", profile.name))
        })?;
    }
    Ok(())
}

/// Responds 503, so the failed delivery shows in GitHub and can be redelivered.
fn datastore_unavailable(delivery_id: &str, error: &DatastoreError) -> Response {
    tracing::error!(delivery_id, error = %ErrorChain(error), "failed to store a webhook job");
    reply(
        StatusCode::SERVICE_UNAVAILABLE,
        WebhookResponse::new("rejected")
            .with_reason("the job store is unavailable; redeliver the webhook later"),
    )
}

/// Default directory for runner working directories: `<temp dir>/myshoes-local`.
pub fn default_instances_dir() -> PathBuf {
    std::env::temp_dir().join("myshoes-local")
}
