//! The dispatcher function: launches one runner per job in an SQS event.
//!
//! The event source mapping must enable `ReportBatchItemFailures`. Each record is handled
//! on its own, at most [`DISPATCH_CONCURRENCY_VAR`] at once, and the response lists exactly
//! the records SQS should deliver again:
//!
//! | record | effect | listed |
//! |---|---|---|
//! | launched, or skipped (job started, finished or launched already) | message deleted | no |
//! | permanent failure, or the last retryable one | moved to the dead-letter queue | no |
//! | the same, but moving it failed | left in the queue | yes |
//! | retryable failure | visibility set to the retry backoff | yes |
//! | body not a job, or no receipt handle | left to the queue's redrive policy | yes |
//!
//! The handler never fails the whole batch.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::stream::{self, StreamExt};
use myshoes::dispatcher::{Dispatcher, DispatcherConfig, Outcome};
use myshoes::github::{ClientConfig, GitHubAppClient};
use myshoes_datastore_sqs::{SqsDatastore, SqsEventRecord};

use crate::config::{self, ConfigError, DISPATCH_CONCURRENCY_VAR};
use crate::init::{self, InitError};
use crate::secrets::SettingReader;

/// Default number of records processed at once.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// State of the dispatcher function, built once at init.
#[derive(Debug)]
pub struct DispatcherFunction {
    datastore: Arc<SqsDatastore>,
    dispatcher: Dispatcher,
    concurrency: usize,
}

impl DispatcherFunction {
    /// Creates the function; `dispatcher` must use `datastore` as its Datastore.
    pub fn new(datastore: Arc<SqsDatastore>, dispatcher: Dispatcher, concurrency: usize) -> Self {
        Self {
            datastore,
            dispatcher,
            concurrency: concurrency.max(1),
        }
    }

    /// Builds the function from the environment: SQS Datastore with its dead-letter queue,
    /// ECS Stadium, and the GitHub App client for credentials and the still-queued check.
    pub async fn from_env(
        reader: &SettingReader<'_>,
        sqs: aws_sdk_sqs::Client,
        ecs: aws_sdk_ecs::Client,
    ) -> Result<Self, InitError> {
        let env = reader.env();
        let deployment = init::load_deployment(reader).await?;
        let concurrency = config::number(env, DISPATCH_CONCURRENCY_VAR, DEFAULT_CONCURRENCY)?;
        if concurrency == 0 {
            return Err(
                ConfigError::invalid(DISPATCH_CONCURRENCY_VAR, "must be at least 1").into(),
            );
        }
        let store = init::seeded_store(&deployment).await?;
        let datastore = Arc::new(init::sqs_datastore(env, sqs, store, true)?);
        let stadium = Arc::new(init::ecs_stadium(env, ecs, &deployment)?);
        let github = Arc::new(init::github_client(reader, ClientConfig::default()).await?);

        let mut dispatcher_config = DispatcherConfig::default();
        dispatcher_config.runner_name_prefix = init::runner_name_prefix(env);
        dispatcher_config.runner_source = init::runner_source(env)?;
        dispatcher_config.max_concurrency = concurrency;
        let dispatcher = dispatcher(
            datastore.clone(),
            stadium,
            github,
            &deployment,
            dispatcher_config,
        )?;
        Ok(Self::new(datastore, dispatcher, concurrency))
    }

    /// Returns the dispatcher, for subscribing to outcomes.
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    /// Processes every record of `event` and returns the records to deliver again.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut failures: Vec<String> = Vec::new();
        let mut records = Vec::with_capacity(event.records.len());
        for message in event.records {
            match event_record(message) {
                Ok(record) => records.push(record),
                Err(Some(message_id)) => failures.push(message_id),
                Err(None) => {
                    tracing::error!("an SQS record has no messageId, so it cannot be reported; SQS delivers it again after its visibility timeout");
                }
            }
        }

        let decoded = self.datastore.decode_event_records(&records);
        let mut jobs = Vec::with_capacity(decoded.len());
        for record in decoded {
            match record.result {
                Ok(received) => jobs.push((record.message_id, received)),
                Err(error) => {
                    tracing::error!(message_id = %record.message_id, %error, "SQS record is not a job; it goes to the dead-letter queue through the redrive policy");
                    failures.push(record.message_id);
                }
            }
        }

        let retried: Vec<Option<String>> = stream::iter(jobs)
            .map(|(message_id, received)| async move {
                match self.dispatcher.process(received).await {
                    Outcome::RetryScheduled { .. } => Some(message_id),
                    // Moving the job to the dead-letter queue failed and the message is
                    // still in the queue. Unless it is listed, Lambda deletes it.
                    Outcome::Dropped {
                        dead_lettered: false,
                        ..
                    } => Some(message_id),
                    _ => None,
                }
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        failures.extend(retried.into_iter().flatten());

        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = failures
            .into_iter()
            .map(|item_identifier| {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = item_identifier;
                failure
            })
            .collect();
        response
    }
}

/// Builds the dispatcher with the GitHub App as credential and job status source.
pub fn dispatcher(
    datastore: Arc<SqsDatastore>,
    stadium: Arc<myshoes_stadium_ecs::EcsStadium>,
    github: Arc<GitHubAppClient>,
    deployment: &config::Deployment,
    config: DispatcherConfig,
) -> Result<Dispatcher, InitError> {
    let dispatcher = Dispatcher::new(
        datastore,
        stadium,
        github.clone(),
        deployment.profiles.clone(),
        config,
    )
    .map_err(InitError::Dispatcher)?;
    Ok(dispatcher.with_job_status_source(github))
}

/// Takes the fields the SQS Datastore decodes from one Lambda record. Returns the message
/// id (when there is one) of a record that lacks a receipt handle or body.
fn event_record(message: SqsMessage) -> Result<SqsEventRecord, Option<String>> {
    let message_id = message.message_id.ok_or(None)?;
    let (Some(receipt_handle), Some(body)) = (message.receipt_handle, message.body) else {
        tracing::error!(message_id, "SQS record has no receipt handle or body");
        return Err(Some(message_id));
    };
    // Lambda always sends this attribute; without it the record counts as a first delivery.
    let approximate_receive_count = message
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|count| count.parse().ok())
        .unwrap_or(1);
    Ok(SqsEventRecord {
        message_id,
        receipt_handle,
        body,
        approximate_receive_count,
    })
}
