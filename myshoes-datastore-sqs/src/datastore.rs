//! [`SqsDatastore`] and its queue operations.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageAttributeValue, MessageSystemAttributeName,
};
use myshoes::datastore::{AckHandle, Datastore, Error, ReceivedJob, RecordKind, Result};
use myshoes::model::{Job, JobId};
use tracing::{debug, warn};

use crate::body::encode_job;
use crate::config::{
    is_fifo_url, whole_seconds, MessageGroup, SqsDatastoreBuilder, MAX_VISIBILITY_TIMEOUT,
};
use crate::decode::{decode_message, DecodedRecord, SqsEventRecord};
use crate::error::{backend, map_sdk_error, meaning_of_code, CallSite, Meaning, SqsError};
use crate::receipts::{HandleState, ReceiptLedger};

/// Maximum number of messages in one SQS receive or batch call.
pub(crate) const MAX_BATCH: usize = 10;

/// Maximum long-poll wait of one SQS receive.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(20);

/// Message attribute with the reason on messages this crate moves to the dead-letter
/// queue.
pub const REASON_ATTRIBUTE: &str = "myshoes.dead_letter_reason";

/// Message attribute with the id of the original message on messages this crate moves to
/// the dead-letter queue.
pub const SOURCE_MESSAGE_ID_ATTRIBUTE: &str = "myshoes.source_message_id";

/// Maximum length of [`REASON_ATTRIBUTE`], in bytes; longer reasons are truncated.
const MAX_REASON_BYTES: usize = 4096;

/// A [`Datastore`] that keeps jobs in an Amazon SQS queue and delegates everything else to
/// an inner store. See the crate documentation for what each operation does.
///
/// Clones share the client, the settings and the record of handed-out receipt handles.
#[derive(Clone)]
pub struct SqsDatastore {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) client: aws_sdk_sqs::Client,
    pub(crate) queue_url: String,
    pub(crate) fifo: bool,
    pub(crate) dead_letter_queue_url: Option<String>,
    pub(crate) message_group: MessageGroup,
    pub(crate) visibility_timeout: Option<Duration>,
    pub(crate) inner: Option<Arc<dyn Datastore>>,
    pub(crate) receipts: Mutex<ReceiptLedger>,
}

impl fmt::Debug for SqsDatastore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &self.shared;
        f.debug_struct("SqsDatastore")
            .field("queue_url", &shared.queue_url)
            .field("fifo", &shared.fifo)
            .field("dead_letter_queue_url", &shared.dead_letter_queue_url)
            .field("message_group", &shared.message_group)
            .field("visibility_timeout", &shared.visibility_timeout)
            .field("inner", &shared.inner)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for SqsDatastore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SqsDatastore({})", self.shared.queue_url)
    }
}

impl SqsDatastore {
    /// Creates a store for the queue at `queue_url` with default options: no inner store
    /// (so targets, runners, locks, claims and slots return `NotSupported`), no
    /// dead-letter queue, one FIFO group per job, and the queue's own visibility timeout.
    ///
    /// The caller builds `client` with its endpoint, region and credentials. A URL ending
    /// in `.fifo` selects FIFO behaviour.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self::from_builder(SqsDatastoreBuilder::new(client, queue_url.into()))
    }

    /// Starts a builder for the queue at `queue_url`.
    pub fn builder(
        client: aws_sdk_sqs::Client,
        queue_url: impl Into<String>,
    ) -> SqsDatastoreBuilder {
        SqsDatastoreBuilder::new(client, queue_url.into())
    }

    pub(crate) fn from_builder(builder: SqsDatastoreBuilder) -> Self {
        let fifo = is_fifo_url(&builder.queue_url);
        Self {
            shared: Arc::new(Shared {
                client: builder.client,
                fifo,
                queue_url: builder.queue_url,
                dead_letter_queue_url: builder.dead_letter_queue_url,
                message_group: builder.message_group,
                visibility_timeout: builder.visibility_timeout,
                inner: builder.inner,
                receipts: Mutex::new(ReceiptLedger::default()),
            }),
        }
    }

    /// Returns the queue URL.
    pub fn queue_url(&self) -> &str {
        &self.shared.queue_url
    }

    /// Returns whether the queue is a FIFO queue.
    pub fn is_fifo(&self) -> bool {
        self.shared.fifo
    }

    /// Returns the dead-letter queue URL, if one is set.
    pub fn dead_letter_queue_url(&self) -> Option<&str> {
        self.shared.dead_letter_queue_url.as_deref()
    }

    fn receipts(&self) -> MutexGuard<'_, ReceiptLedger> {
        // A panic in another thread cannot break the ledger, because every update is a
        // single map operation.
        self.shared
            .receipts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn site(
        &self,
        operation: &'static str,
        action: &'static str,
        job_id: Option<JobId>,
    ) -> CallSite<'_> {
        CallSite {
            operation,
            action,
            queue_url: &self.shared.queue_url,
            job_id,
        }
    }

    /// Rejects a handle that a later receive in this process replaced, before it reaches
    /// SQS, because SQS itself may still delete or change the message with it.
    fn check_handle(&self, ack: &AckHandle) -> Result<HandleState> {
        let state = self.receipts().state(ack.token());
        if state == HandleState::Stale {
            return Err(Error::Conflict {
                kind: RecordKind::Job,
                id: ack.job_id().to_string(),
                reason: "the handle is from an earlier receive; the job was received again, so use the newer handle"
                    .to_owned(),
            });
        }
        Ok(state)
    }

    /// Returns the FIFO message group of a job.
    fn message_group_id(&self, job: &Job) -> String {
        match self.shared.message_group {
            MessageGroup::PerJob => job.id.to_string(),
            MessageGroup::PerRepository => {
                let key = format!("{}/{}", job.host, job.repository);
                // SQS accepts at most 128 characters; a longer key is replaced by a
                // name-based UUID of it, which stays the same for the repository.
                if key.len() <= 128 {
                    key
                } else {
                    uuid_of(&key)
                }
            }
        }
    }

    pub(crate) async fn send_job(&self, job: &Job) -> Result<()> {
        let mut request = self
            .shared
            .client
            .send_message()
            .queue_url(&self.shared.queue_url)
            .message_body(encode_job(job));
        if self.shared.fifo {
            // The job id is derived from host, workflow job id and run attempt, so every
            // delivery of one job attempt carries the same deduplication id.
            request = request
                .message_group_id(self.message_group_id(job))
                .message_deduplication_id(job.id.to_string());
        }
        let output = request.send().await.map_err(|error| {
            map_sdk_error(error, self.site("enqueue_job", "SendMessage", Some(job.id)))
        })?;
        debug!(job_id = %job.id, message_id = output.message_id().unwrap_or(""), "sent job");
        Ok(())
    }

    /// Receives up to `max` jobs with one long poll of `wait_seconds`.
    pub(crate) async fn receive_batch(
        &self,
        max: usize,
        wait_seconds: i32,
    ) -> Result<Vec<ReceivedJob>> {
        let max = i32::try_from(max.min(MAX_BATCH)).unwrap_or(1);
        let mut request = self
            .shared
            .client
            .receive_message()
            .queue_url(&self.shared.queue_url)
            .max_number_of_messages(max)
            .wait_time_seconds(wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount);
        if let Some(timeout) = self.shared.visibility_timeout {
            request = request.visibility_timeout(whole_seconds(timeout, MAX_VISIBILITY_TIMEOUT));
        }
        let output = request.send().await.map_err(|error| {
            map_sdk_error(error, self.site("receive_jobs", "ReceiveMessage", None))
        })?;

        let mut jobs = Vec::new();
        for message in output.messages.unwrap_or_default() {
            let message_id = message.message_id().unwrap_or_default();
            let body = message.body().unwrap_or_default();
            let count = message
                .attributes()
                .and_then(|attributes| {
                    attributes.get(&MessageSystemAttributeName::ApproximateReceiveCount)
                })
                .map(String::as_str);
            match decode_message(message_id, message.receipt_handle(), body, count) {
                Ok(received) => {
                    self.receipts()
                        .record(received.ack.token(), message_id, received.job.id, body);
                    debug!(job_id = %received.job.id, message_id, attempt = received.job.attempt, "received job");
                    jobs.push(received);
                }
                Err(error) => {
                    self.quarantine(message.receipt_handle(), message_id, body, &error)
                        .await
                }
            }
        }
        Ok(jobs)
    }

    /// Moves an undecodable message to the dead-letter queue, or leaves it to the queue's
    /// redrive policy when no dead-letter queue is set. Errors are logged, not returned, so
    /// one bad message does not fail the receive of the others.
    async fn quarantine(
        &self,
        receipt_handle: Option<&str>,
        message_id: &str,
        body: &str,
        error: &crate::DecodeError,
    ) {
        let (Some(dead_letter_queue_url), Some(receipt_handle)) =
            (self.shared.dead_letter_queue_url.as_deref(), receipt_handle)
        else {
            warn!(
                message_id,
                error = %crate::error_chain(error),
                "undecodable message left for the queue's redrive policy, as no dead-letter queue is set"
            );
            return;
        };
        let reason = crate::error_chain(error);
        let moved = async {
            self.send_dead_letter(
                dead_letter_queue_url,
                body,
                message_id,
                None,
                &reason,
                "receive_jobs",
            )
            .await?;
            self.delete_receipt(receipt_handle, None, "receive_jobs")
                .await
        };
        match moved.await {
            Ok(()) => {
                warn!(message_id, error = %reason, "moved undecodable message to the dead-letter queue")
            }
            Err(failure) => warn!(
                message_id,
                error = %reason,
                failure = %crate::error_chain(&failure),
                "failed to move undecodable message to the dead-letter queue; it returns after its visibility timeout"
            ),
        }
    }

    async fn send_dead_letter(
        &self,
        dead_letter_queue_url: &str,
        body: &str,
        message_id: &str,
        job_id: Option<JobId>,
        reason: &str,
        operation: &'static str,
    ) -> Result<()> {
        let reason = truncate_utf8(reason, MAX_REASON_BYTES);
        let string_attribute = |value: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .expect("data type is set")
        };
        let mut request = self
            .shared
            .client
            .send_message()
            .queue_url(dead_letter_queue_url)
            .message_body(body)
            .message_attributes(
                REASON_ATTRIBUTE,
                string_attribute(if reason.is_empty() { "-" } else { reason }),
            )
            .message_attributes(SOURCE_MESSAGE_ID_ATTRIBUTE, string_attribute(message_id));
        if is_fifo_url(dead_letter_queue_url) {
            // One group per message keeps one dead letter from holding back another, and
            // the source message id makes a repeated move a duplicate.
            request = request
                .message_group_id(message_id)
                .message_deduplication_id(message_id);
        }
        request.send().await.map_err(|error| {
            map_sdk_error(
                error,
                CallSite {
                    operation,
                    action: "SendMessage",
                    queue_url: dead_letter_queue_url,
                    job_id,
                },
            )
        })?;
        Ok(())
    }

    async fn delete_receipt(
        &self,
        receipt_handle: &str,
        job_id: Option<JobId>,
        operation: &'static str,
    ) -> Result<()> {
        self.shared
            .client
            .delete_message()
            .queue_url(&self.shared.queue_url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map_err(|error| map_sdk_error(error, self.site(operation, "DeleteMessage", job_id)))?;
        self.receipts().forget_message_of(receipt_handle);
        Ok(())
    }

    pub(crate) async fn delete_one(&self, ack: &AckHandle) -> Result<()> {
        self.check_handle(ack)?;
        self.delete_receipt(ack.token(), Some(ack.job_id()), "delete_job")
            .await?;
        debug!(job_id = %ack.job_id(), "deleted job");
        Ok(())
    }

    /// Deletes received jobs with one `DeleteMessageBatch` call per 10 handles.
    ///
    /// Returns one result per handle, in order, so a partial batch failure is reported for
    /// exactly the jobs it hit. A handle this store replaced by a later receive fails with
    /// [`Error::Conflict`] without reaching SQS, and an invalid receipt handle with
    /// [`Error::NotFound`].
    ///
    /// # Errors
    /// A failed batch call fails every handle of that batch with its error.
    #[tracing::instrument(skip_all, fields(queue_url = %self.shared.queue_url, jobs = acks.len()))]
    pub async fn delete_jobs(&self, acks: &[AckHandle]) -> Vec<Result<()>> {
        let mut results: Vec<Option<Result<()>>> = acks.iter().map(|_| None).collect();
        let mut pending = Vec::new();
        for (index, ack) in acks.iter().enumerate() {
            match self.check_handle(ack) {
                Ok(_) => pending.push(index),
                Err(error) => results[index] = Some(Err(error)),
            }
        }
        for chunk in pending.chunks(MAX_BATCH) {
            for (index, result) in self.delete_chunk(acks, chunk).await {
                results[index] = Some(result);
            }
        }
        results
            .into_iter()
            .zip(acks)
            .map(|(result, ack)| {
                result.unwrap_or_else(|| {
                    Err(backend(
                        "delete_jobs",
                        SqsError::MissingBatchEntry {
                            action: "DeleteMessageBatch",
                            queue_url: self.shared.queue_url.clone(),
                            job_id: ack.job_id(),
                        },
                    ))
                })
            })
            .collect()
    }

    async fn delete_chunk(&self, acks: &[AckHandle], chunk: &[usize]) -> Vec<(usize, Result<()>)> {
        let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
            .iter()
            .map(|&index| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .receipt_handle(acks[index].token())
                    .build()
                    .expect("id and receipt handle are set")
            })
            .collect();
        let output = self
            .shared
            .client
            .delete_message_batch()
            .queue_url(&self.shared.queue_url)
            .set_entries(Some(entries))
            .send()
            .await;
        let output = match output {
            Ok(output) => output,
            Err(error) => {
                // One error value cannot be cloned, so the first entry gets the mapped SDK
                // error and the rest a description of it.
                let mut results = Vec::with_capacity(chunk.len());
                let first =
                    map_sdk_error(error, self.site("delete_jobs", "DeleteMessageBatch", None));
                let description = crate::error_chain(&first);
                results.push((chunk[0], Err(first)));
                for &index in &chunk[1..] {
                    results.push((
                        index,
                        Err(backend(
                            "delete_jobs",
                            SqsError::Call {
                                action: "DeleteMessageBatch",
                                queue_url: self.shared.queue_url.clone(),
                                source: description.clone().into(),
                            },
                        )),
                    ));
                }
                return results;
            }
        };

        let mut results = Vec::with_capacity(chunk.len());
        for entry in output.successful() {
            if let Ok(index) = entry.id().parse::<usize>() {
                self.receipts().forget_message_of(acks[index].token());
                results.push((index, Ok(())));
            }
        }
        for entry in output.failed() {
            let Ok(index) = entry.id().parse::<usize>() else {
                continue;
            };
            let job_id = acks[index].job_id();
            let error = match meaning_of_code(Some(entry.code())) {
                Meaning::ReceiptInvalid => Error::NotFound {
                    kind: RecordKind::Job,
                    id: job_id.to_string(),
                },
                _ => backend(
                    "delete_jobs",
                    SqsError::BatchEntry {
                        action: "DeleteMessageBatch",
                        queue_url: self.shared.queue_url.clone(),
                        job_id,
                        code: entry.code().to_owned(),
                        sender_fault: entry.sender_fault(),
                    },
                ),
            };
            warn!(job_id = %job_id, code = entry.code(), "batch delete failed for one job");
            results.push((index, Err(error)));
        }
        results
    }

    /// Sets the visibility timeout of a received job, counted from now.
    pub(crate) async fn change_visibility(
        &self,
        ack: &AckHandle,
        timeout: Duration,
        operation: &'static str,
    ) -> Result<()> {
        self.check_handle(ack)?;
        if timeout > MAX_VISIBILITY_TIMEOUT {
            debug!(job_id = %ack.job_id(), requested = ?timeout, "capping visibility timeout at the SQS maximum of 12 hours");
        }
        self.shared
            .client
            .change_message_visibility()
            .queue_url(&self.shared.queue_url)
            .receipt_handle(ack.token())
            .visibility_timeout(whole_seconds(timeout, MAX_VISIBILITY_TIMEOUT))
            .send()
            .await
            .map_err(|error| {
                map_sdk_error(
                    error,
                    self.site(operation, "ChangeMessageVisibility", Some(ack.job_id())),
                )
            })?;
        Ok(())
    }

    /// Extends a received job's visibility timeout to `timeout` from now (rounded up to
    /// whole seconds, capped at 12 hours), so work that runs long keeps the job hidden.
    ///
    /// [`SqsDatastore::start_heartbeat`] calls this periodically.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an invalid receipt handle, [`Error::Conflict`] for a handle
    /// replaced by a later receive or a message no longer in flight, and
    /// [`Error::Backend`] when SQS fails.
    #[tracing::instrument(skip_all, fields(job_id = %ack.job_id()))]
    pub async fn extend_visibility(&self, ack: &AckHandle, timeout: Duration) -> Result<()> {
        self.change_visibility(ack, timeout, "extend_visibility")
            .await
    }

    pub(crate) async fn dead_letter(&self, ack: &AckHandle, reason: &str) -> Result<()> {
        let Some(dead_letter_queue_url) = self.shared.dead_letter_queue_url.clone() else {
            return Err(crate::error::not_supported("dead_letter_job"));
        };
        let HandleState::Current(receipt) = self.check_handle(ack)? else {
            return Err(Error::Conflict {
                kind: RecordKind::Job,
                id: ack.job_id().to_string(),
                reason: "this SqsDatastore did not receive the job, so it lacks the message body to dead-letter; \
                         receive it with receive_jobs or decode_event_records of this store"
                    .to_owned(),
            });
        };
        // Changing the visibility first proves the handle still holds the message, so a
        // job no longer in the queue leaves no dead letter behind. It also keeps the
        // message hidden while it moves.
        self.change_visibility(ack, Duration::from_secs(60), "dead_letter_job")
            .await?;
        self.send_dead_letter(
            &dead_letter_queue_url,
            &receipt.body,
            &receipt.message_id,
            Some(ack.job_id()),
            reason,
            "dead_letter_job",
        )
        .await?;
        self.delete_receipt(ack.token(), Some(ack.job_id()), "dead_letter_job")
            .await?;
        debug!(job_id = %ack.job_id(), message_id = %receipt.message_id, "moved job to the dead-letter queue");
        Ok(())
    }

    /// Decodes the records of one Lambda SQS event like [`crate::decode_event_records`],
    /// and remembers each job's body so [`Datastore::dead_letter_job`] works on it.
    pub fn decode_event_records(&self, records: &[SqsEventRecord]) -> Vec<DecodedRecord> {
        let decoded = crate::decode_event_records(records);
        let mut ledger = self.receipts();
        for (record, outcome) in records.iter().zip(&decoded) {
            if let Ok(received) = &outcome.result {
                ledger.record(
                    &record.receipt_handle,
                    &record.message_id,
                    received.job.id,
                    &record.body,
                );
            }
        }
        decoded
    }

    pub(crate) fn inner(&self, operation: &'static str) -> Result<&dyn Datastore> {
        self.shared
            .inner
            .as_deref()
            .ok_or_else(|| crate::error::not_supported(operation))
    }
}

/// Returns a name-based UUID of `key`, for identifiers that must fit a length limit.
fn uuid_of(key: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, key.as_bytes()).to_string()
}

/// Returns the longest prefix of `text` of at most `max` bytes that ends on a character
/// boundary.
fn truncate_utf8(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
