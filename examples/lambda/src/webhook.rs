//! The webhook function: checks a GitHub delivery and enqueues its job to SQS.
//!
//! Requests arrive from a Lambda Function URL or API Gateway (REST or HTTP API);
//! `lambda_http` turns all of them into one `http::Request` and decodes base64 bodies, so
//! the signature is checked over the bytes GitHub sent.
//!
//! | result | status |
//! |---|---|
//! | job enqueued | 202 `enqueued` |
//! | same job attempt enqueued before (standard queue) | 200 `duplicate` |
//! | ping, other events, jobs no profile matches, repositories without a target | 200 `ignored` with the reason |
//! | `in_progress` or `completed` for a queued job | 200 `ignored` (see [`WebhookFunction::handle`]) |
//! | bad or missing signature | 401 |
//! | unparseable body or headers | 400 |
//! | body over the limit | 413 |
//! | unsupported content type | 415 |
//! | SQS unavailable | 503, so the delivery shows as failed and can be redelivered |

use std::sync::Arc;
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::SdkConfig;

use chrono::Utc;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use myshoes::datastore::{Datastore, DatastoreExt, Error as DatastoreError};
use myshoes::secret::Secret;
use myshoes::webhook::{receive, DecideConfig, Decision, ReceiverConfig, WebhookHeaders};
use myshoes::ErrorChain;
use serde::{Deserialize, Serialize};

use crate::config::{self, ConfigError, Deployment, MAX_BODY_BYTES_VAR, WEBHOOK_SECRET_VAR};
use crate::init::{self, InitError};
use crate::secrets::SettingReader;

/// JSON body of every webhook response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookResponse {
    /// `enqueued`, `duplicate`, `ignored` or `rejected`.
    pub result: String,
    /// Reason the delivery was ignored or rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Id of the enqueued job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
}

impl WebhookResponse {
    fn new(result: &str, reason: Option<String>) -> Self {
        Self {
            result: result.to_owned(),
            reason,
            job_id: None,
        }
    }
}

/// State of the webhook function, built once at init.
#[derive(Debug)]
pub struct WebhookFunction {
    datastore: Arc<dyn Datastore>,
    secret: Secret,
    config: ReceiverConfig,
}

impl WebhookFunction {
    /// Creates the function over `datastore`, which must hold the deployment's targets.
    pub fn new(datastore: Arc<dyn Datastore>, secret: Secret, config: ReceiverConfig) -> Self {
        Self {
            datastore,
            secret,
            config,
        }
    }

    /// Builds the function from the environment: the deployment document, the webhook
    /// secret, the queue URL and the body limit.
    pub async fn from_env(
        reader: &SettingReader<'_>,
        sqs: aws_sdk_sqs::Client,
    ) -> Result<Self, InitError> {
        let deployment = init::load_deployment(reader).await?;
        let secret = reader
            .required(
                WEBHOOK_SECRET_VAR,
                "set it to the webhook secret entered in the GitHub App's settings",
            )
            .await?;
        let max_body_bytes =
            config::number(reader.env(), MAX_BODY_BYTES_VAR, config::DEFAULT_BODY_LIMIT)?;
        if max_body_bytes < config::MIN_BODY_LIMIT {
            return Err(ConfigError::invalid(
                MAX_BODY_BYTES_VAR,
                format!(
                    "{max_body_bytes} bytes is below the minimum of {} bytes",
                    config::MIN_BODY_LIMIT
                ),
            )
            .into());
        }
        let store = init::seeded_store(&deployment).await?;
        let datastore = init::sqs_datastore(reader.env(), sqs, store, false)?;
        let config = receiver_config(&deployment, init::runner_name_prefix(reader.env()))
            .with_max_body_bytes(max_body_bytes);
        Ok(Self::new(Arc::new(datastore), secret, config))
    }

    /// Handles one request and always returns a response; failures become 4xx or 5xx.
    ///
    /// `in_progress` and `completed` events get 200 `ignored` and change nothing, because
    /// launch claims live in each dispatcher instance's memory, which this function cannot
    /// reach. The dispatcher checks on GitHub that a job is still queued before it launches
    /// a runner.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let headers = WebhookHeaders::from_pairs(
            request
                .headers()
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_bytes())),
        );
        let delivery_id = headers
            .delivery_id()
            .ok()
            .flatten()
            .unwrap_or("-")
            .to_owned();
        let body: &[u8] = request.body().as_ref();

        let received = match receive(&headers, body, &self.secret, &self.config) {
            Ok(received) => received,
            Err(error) => {
                let status =
                    StatusCode::from_u16(error.status_code()).unwrap_or(StatusCode::BAD_REQUEST);
                tracing::warn!(delivery_id, status = status.as_u16(), %error, "webhook rejected");
                return reply(
                    status,
                    WebhookResponse::new("rejected", Some(error.to_string())),
                );
            }
        };

        let request = match received.decision {
            Decision::Enqueue(request) => request,
            Decision::Ignore(reason) => {
                tracing::info!(delivery_id, event = %received.event, %reason, "webhook ignored");
                return reply(
                    StatusCode::OK,
                    WebhookResponse::new("ignored", Some(reason.to_string())),
                );
            }
            Decision::Cancel(cancel) => {
                let reason = format!(
                    "action {}: the dispatcher checks the job's status on GitHub before launching",
                    cancel.action
                );
                tracing::info!(delivery_id, job_id = %cancel.job_id, "webhook ignored: job no longer queued");
                return reply(
                    StatusCode::OK,
                    WebhookResponse::new("ignored", Some(reason)),
                );
            }
        };

        let target = match self
            .datastore
            .find_target_for_repository(&request.host, &request.repository)
            .await
        {
            Ok(Some(target)) => target,
            Ok(None) => {
                let reason = format!(
                    "no active target for {} on {}: add the repository or its owner to the targets in {}",
                    request.repository,
                    request.host,
                    config::CONFIG_VAR
                );
                tracing::info!(delivery_id, repository = %request.repository, host = %request.host, "webhook ignored: no active target");
                return reply(
                    StatusCode::OK,
                    WebhookResponse::new("ignored", Some(reason)),
                );
            }
            Err(error) => return unavailable(&delivery_id, &error),
        };

        let job = request.into_job(target.id, Utc::now());
        let mut response = WebhookResponse::new("enqueued", None);
        response.job_id = Some(job.id.to_string());
        match self.datastore.enqueue_job(&job).await {
            Ok(()) => {
                tracing::info!(
                    delivery_id,
                    job_id = %job.id,
                    workflow_job_id = job.workflow_job_id,
                    target_id = %target.id,
                    "job enqueued"
                );
                reply(StatusCode::ACCEPTED, response)
            }
            Err(DatastoreError::AlreadyExists { .. }) => {
                tracing::info!(delivery_id, job_id = %job.id, "duplicate delivery");
                response.result = "duplicate".to_owned();
                response.reason = Some("this job attempt was enqueued already".to_owned());
                reply(StatusCode::OK, response)
            }
            Err(error) => unavailable(&delivery_id, &error),
        }
    }
}

/// Maximum time one SQS call of the webhook function may take, retries included. GitHub
/// records a delivery as failed when the response takes more than 10 seconds.
pub const SQS_OPERATION_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds the webhook function's SQS client, with [`SQS_OPERATION_TIMEOUT`].
pub fn sqs_client(aws: &SdkConfig) -> aws_sdk_sqs::Client {
    let timeouts = TimeoutConfig::builder()
        .operation_timeout(SQS_OPERATION_TIMEOUT)
        .build();
    let config = aws_sdk_sqs::config::Builder::from(aws)
        .timeout_config(timeouts)
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

/// Builds the receiver settings for the deployment's profiles.
pub fn receiver_config(deployment: &Deployment, runner_name_prefix: String) -> ReceiverConfig {
    let decide = DecideConfig::new(deployment.profiles.clone(), deployment.github_host.clone())
        .with_runner_name_prefix(runner_name_prefix);
    ReceiverConfig::new(decide).with_max_body_bytes(config::DEFAULT_BODY_LIMIT)
}

fn reply(status: StatusCode, body: WebhookResponse) -> Response<Body> {
    let json = serde_json::to_string(&body).unwrap_or_else(|_| "{}".to_owned());
    let mut response = Response::new(Body::Text(json));
    *response.status_mut() = status;
    response.headers_mut().insert(
        lambda_http::http::header::CONTENT_TYPE,
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    response
}

/// Responds 503, so the delivery shows as failed in GitHub and can be redelivered.
fn unavailable(delivery_id: &str, error: &DatastoreError) -> Response<Body> {
    tracing::error!(delivery_id, error = %ErrorChain(error), "failed to enqueue a webhook job");
    reply(
        StatusCode::SERVICE_UNAVAILABLE,
        WebhookResponse::new(
            "rejected",
            Some("the job queue is unavailable; redeliver the webhook later".to_owned()),
        ),
    )
}
