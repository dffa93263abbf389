//! A [`Datastore`](myshoes::datastore::Datastore) that keeps jobs in an Amazon SQS queue.
//!
//! [`SqsDatastore`] sends each job as one message, receives jobs in batches with long
//! polling, and acknowledges them by receipt handle. Targets, runners, locks, launch claims
//! and slots are not SQS's job: they go to an inner Datastore given to the builder, such
//! as a [`MemoryDatastore`](myshoes::datastore::MemoryDatastore) seeded from a static list
//! of targets. Without an inner store those operations return `NotSupported`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use myshoes::datastore::{Datastore, MemoryDatastore};
//! use myshoes_datastore_sqs::{MessageGroup, SqsDatastore};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! // The caller builds the client, with its endpoint, region and credentials.
//! let config = aws_config::load_from_env().await;
//! let client = aws_sdk_sqs::Client::new(&config);
//!
//! let store: Arc<dyn Datastore> = Arc::new(
//!     SqsDatastore::builder(client, "https://sqs.us-east-1.amazonaws.com/123456789012/jobs.fifo")
//!         .with_inner(Arc::new(MemoryDatastore::new()))
//!         .with_dead_letter_queue_url("https://sqs.us-east-1.amazonaws.com/123456789012/jobs-dlq.fifo")
//!         .with_message_group(MessageGroup::PerRepository)
//!         .build()?,
//! );
//! # let _ = store;
//! # Ok(())
//! # }
//! ```
//!
//! # Capabilities
//!
//! | operation | support |
//! |---|---|
//! | `enqueue_job` | supported: one `SendMessage` with a [versioned JSON body](BODY_VERSION) |
//! | duplicate `enqueue_job` | FIFO: dropped by SQS within its 5-minute deduplication window (deduplication id = job id); standard queue: both copies are delivered |
//! | `receive_jobs` | supported: up to 10 jobs per call, long polling in whole seconds (at most 20 per call) |
//! | `delete_job` | supported: `DeleteMessage`; [`SqsDatastore::delete_jobs`] batches 10 per call |
//! | `retry_job` | supported: `ChangeMessageVisibility` to the delay, capped at 12 hours |
//! | stale handles | limited: rejected with `Conflict` when this store (or a clone) received the job again within its last 10,000 receives; otherwise SQS decides, and SQS may act on an older receipt handle |
//! | deleting a deleted job | limited: SQS reports success, not `NotFound` |
//! | visibility heartbeat | supported: [`SqsDatastore::start_heartbeat`] |
//! | `dead_letter_job` | with a dead-letter queue URL: the body goes there with the reason in the [`REASON_ATTRIBUTE`] message attribute, then leaves the main queue; without one: `NotSupported`. Only for jobs this store received within its last 10,000 receives, because the handle alone does not carry the body |
//! | undecodable messages | with a dead-letter queue URL: moved there by `receive_jobs` at once; without one: left for the queue's redrive policy, which on a FIFO queue holds back the rest of the message's group until then |
//! | `list_jobs` | not supported: SQS cannot list messages without receiving them |
//! | `list_dead_letters` | not supported: dead letters are in the dead-letter queue |
//! | targets, runners, `set_runner_github_id` | delegated to the inner store; `NotSupported` without one |
//! | locks, launch claims, slots | delegated to the inner store; `NotSupported` without one |
//!
//! # Attempts and acknowledgement handles
//!
//! Each received job's [`AckHandle`](myshoes::datastore::AckHandle) contains the message's
//! receipt handle. [`Job::attempt`](myshoes::model::Job::attempt) is the attempt stored in
//! the body plus `ApproximateReceiveCount - 1`, the number of earlier receives.
//!
//! # FIFO queues
//!
//! A queue URL ending in `.fifo` selects FIFO behaviour. Each message's group is the job
//! ([`MessageGroup::PerJob`], the default) or its repository
//! ([`MessageGroup::PerRepository`]); never one group for every job, which would make each
//! job wait for the slowest one before it.
//!
//! # Lambda
//!
//! With an SQS event source mapping, Lambda receives the messages and passes them as event
//! records. [`decode_event_records`] (or [`SqsDatastore::decode_event_records`]) turns
//! them into jobs with one result per record, so the handler can list exactly the failed
//! records in `batchItemFailures`:
//!
//! ```
//! use myshoes_datastore_sqs::{decode_event_records, SqsEventRecord};
//!
//! let records = vec![SqsEventRecord {
//!     message_id: "0f6f1c5e".to_owned(),
//!     receipt_handle: "AQEB...".to_owned(),
//!     body: "not a job".to_owned(),
//!     approximate_receive_count: 1,
//! }];
//! let failed: Vec<String> = decode_event_records(&records)
//!     .into_iter()
//!     .filter(|record| record.result.is_err())
//!     .map(|record| record.message_id)
//!     .collect();
//! assert_eq!(failed, ["0f6f1c5e"]);
//! ```
//!
//! # Errors
//!
//! SDK errors map into [`myshoes::datastore::Error`] by their modeled variant or error
//! code: an invalid receipt handle is `NotFound`, a message no longer in flight is
//! `Conflict`, and everything else, including a queue that does not exist, is the
//! retryable `Backend` whose source names the queue and the SQS action.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod body;
mod config;
mod datastore;
mod decode;
mod error;
mod heartbeat;
mod receipts;
mod store;

pub use body::{decode_job, encode_job, BodyError, BODY_VERSION};
pub use config::{ConfigError, MessageGroup, SqsDatastoreBuilder, MAX_VISIBILITY_TIMEOUT};
pub use datastore::{SqsDatastore, REASON_ATTRIBUTE, SOURCE_MESSAGE_ID_ATTRIBUTE};
pub use decode::{decode_event_records, DecodeError, DecodedRecord, SqsEventRecord};
pub use heartbeat::VisibilityHeartbeat;

/// Renders an error with its sources on one line, for log fields.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    myshoes::ErrorChain(error).to_string()
}
