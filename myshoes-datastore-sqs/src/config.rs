//! Construction of [`SqsDatastore`](crate::SqsDatastore).

use std::sync::Arc;
use std::time::Duration;

use myshoes::datastore::Datastore;

use crate::datastore::SqsDatastore;

/// SQS's maximum visibility timeout, which also caps [`retry_job`] delays: 12 hours.
///
/// [`retry_job`]: myshoes::datastore::Datastore::retry_job
pub const MAX_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(12 * 60 * 60);

/// Grouping of messages in a FIFO queue. SQS delivers the messages of one group in order and
/// delays the rest of a group while one of its messages is in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MessageGroup {
    /// One group per job, so no job waits for another. The default.
    #[default]
    PerJob,
    /// One group per repository (with its host), so the jobs of one repository are
    /// received one at a time, in the order they were enqueued.
    PerRepository,
}

/// Invalid [`SqsDatastoreBuilder`] settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The queue URL is empty.
    #[error("the SQS queue URL is empty; pass the URL that GetQueueUrl or CreateQueue returns")]
    EmptyQueueUrl,
    /// The visibility timeout exceeds what SQS accepts.
    #[error("visibility timeout {given:?} exceeds the SQS maximum of 12 hours")]
    VisibilityTimeoutTooLong {
        /// The timeout given.
        given: Duration,
    },
    /// The dead-letter queue and the main queue are not both FIFO or both standard.
    #[error("dead-letter queue {dead_letter_queue_url} and queue {queue_url} must both be FIFO (URL ending in .fifo) or both standard")]
    DeadLetterQueueKind {
        /// Main queue URL.
        queue_url: String,
        /// Dead-letter queue URL.
        dead_letter_queue_url: String,
    },
    /// The dead-letter queue is the main queue.
    #[error("dead-letter queue URL {queue_url} is the main queue; give a separate queue")]
    DeadLetterQueueIsMain {
        /// The URL given for both.
        queue_url: String,
    },
}

/// Builder of [`SqsDatastore`] with options; see [`SqsDatastore::builder`].
#[derive(Debug, Clone)]
pub struct SqsDatastoreBuilder {
    pub(crate) client: aws_sdk_sqs::Client,
    pub(crate) queue_url: String,
    pub(crate) inner: Option<Arc<dyn Datastore>>,
    pub(crate) dead_letter_queue_url: Option<String>,
    pub(crate) message_group: MessageGroup,
    pub(crate) visibility_timeout: Option<Duration>,
}

impl SqsDatastoreBuilder {
    pub(crate) fn new(client: aws_sdk_sqs::Client, queue_url: String) -> Self {
        Self {
            client,
            queue_url,
            inner: None,
            dead_letter_queue_url: None,
            message_group: MessageGroup::default(),
            visibility_timeout: None,
        }
    }

    /// Sets the store for targets, runners, locks, launch claims and slots. Without one,
    /// those operations return `NotSupported`.
    pub fn with_inner(mut self, inner: Arc<dyn Datastore>) -> Self {
        self.inner = Some(inner);
        self
    }

    /// Sets the dead-letter queue that
    /// [`dead_letter_job`](myshoes::datastore::Datastore::dead_letter_job) and undecodable
    /// messages go to. Use the queue of the main queue's redrive policy, so both paths end
    /// in one place.
    pub fn with_dead_letter_queue_url(mut self, url: impl Into<String>) -> Self {
        self.dead_letter_queue_url = Some(url.into());
        self
    }

    /// Sets how a FIFO queue groups messages; ignored for standard queues.
    pub fn with_message_group(mut self, group: MessageGroup) -> Self {
        self.message_group = group;
        self
    }

    /// Sets the visibility timeout of each receive, in whole seconds (rounded up). Without
    /// it, the queue's `VisibilityTimeout` attribute applies.
    pub fn with_visibility_timeout(mut self, timeout: Duration) -> Self {
        self.visibility_timeout = Some(timeout);
        self
    }

    /// Checks the settings and builds the store.
    ///
    /// # Errors
    /// Fails with [`ConfigError`] for an empty queue URL, a visibility timeout over 12
    /// hours, or a dead-letter queue that is the main queue or of the other kind.
    pub fn build(self) -> Result<SqsDatastore, ConfigError> {
        if self.queue_url.is_empty() {
            return Err(ConfigError::EmptyQueueUrl);
        }
        if let Some(given) = self.visibility_timeout {
            if given > MAX_VISIBILITY_TIMEOUT {
                return Err(ConfigError::VisibilityTimeoutTooLong { given });
            }
        }
        if let Some(dead_letter_queue_url) = &self.dead_letter_queue_url {
            if *dead_letter_queue_url == self.queue_url {
                return Err(ConfigError::DeadLetterQueueIsMain {
                    queue_url: self.queue_url,
                });
            }
            if is_fifo_url(dead_letter_queue_url) != is_fifo_url(&self.queue_url) {
                return Err(ConfigError::DeadLetterQueueKind {
                    queue_url: self.queue_url,
                    dead_letter_queue_url: dead_letter_queue_url.clone(),
                });
            }
        }
        Ok(SqsDatastore::from_builder(self))
    }
}

/// Returns whether a queue URL names a FIFO queue; SQS requires their names to end in
/// `.fifo`.
pub(crate) fn is_fifo_url(queue_url: &str) -> bool {
    queue_url.ends_with(".fifo")
}

/// Converts a duration to whole seconds for SQS, rounding up and capping at `max`.
pub(crate) fn whole_seconds(duration: Duration, max: Duration) -> i32 {
    let capped = duration.min(max);
    let seconds = capped.as_secs() + u64::from(capped.subsec_nanos() > 0);
    i32::try_from(seconds).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> aws_sdk_sqs::Client {
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "test", "test", None, None, "static",
            ))
            .build();
        aws_sdk_sqs::Client::from_conf(config)
    }

    #[test]
    fn build_rejects_invalid_settings() {
        let main = "http://127.0.0.1:9/123456789012/jobs.fifo";
        let cases: Vec<(SqsDatastoreBuilder, &str)> = vec![
            (SqsDatastore::builder(client(), ""), "empty URL"),
            (
                SqsDatastore::builder(client(), main)
                    .with_visibility_timeout(MAX_VISIBILITY_TIMEOUT + Duration::from_secs(1)),
                "timeout over 12 hours",
            ),
            (
                SqsDatastore::builder(client(), main).with_dead_letter_queue_url(main),
                "dead-letter queue is the main queue",
            ),
            (
                SqsDatastore::builder(client(), main)
                    .with_dead_letter_queue_url("http://127.0.0.1:9/123456789012/dlq"),
                "standard dead-letter queue for a FIFO queue",
            ),
        ];
        for (builder, case) in cases {
            assert!(builder.build().is_err(), "{case} must be rejected");
        }
        let store = SqsDatastore::builder(client(), main)
            .with_dead_letter_queue_url("http://127.0.0.1:9/123456789012/dlq.fifo")
            .build()
            .expect("valid settings");
        assert!(store.is_fifo());
        assert_eq!(store.to_string(), format!("SqsDatastore({main})"));
    }

    #[test]
    fn whole_seconds_rounds_up_and_caps() {
        assert_eq!(whole_seconds(Duration::ZERO, MAX_VISIBILITY_TIMEOUT), 0);
        assert_eq!(
            whole_seconds(Duration::from_millis(200), MAX_VISIBILITY_TIMEOUT),
            1
        );
        assert_eq!(
            whole_seconds(Duration::from_secs(3), MAX_VISIBILITY_TIMEOUT),
            3
        );
        assert_eq!(
            whole_seconds(Duration::from_secs(90_000), MAX_VISIBILITY_TIMEOUT),
            43_200
        );
    }
}
