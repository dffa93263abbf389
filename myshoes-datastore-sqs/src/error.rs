//! Mapping of SQS SDK errors into the Datastore error.

use std::fmt;

use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::operation::change_message_visibility::ChangeMessageVisibilityError;
use aws_sdk_sqs::operation::delete_message::DeleteMessageError;
use aws_sdk_sqs::operation::delete_message_batch::DeleteMessageBatchError;
use aws_sdk_sqs::operation::receive_message::ReceiveMessageError;
use aws_sdk_sqs::operation::send_message::SendMessageError;
use myshoes::datastore::{BoxError, Error, RecordKind};
use myshoes::model::JobId;

/// Name of this backend in [`Error`] values.
pub(crate) const BACKEND: &str = "sqs";

/// Source of an [`Error::Backend`] from this crate.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SqsError {
    /// An SQS call failed.
    #[error("SQS {action} on queue {queue_url} failed")]
    Call {
        action: &'static str,
        queue_url: String,
        #[source]
        source: BoxError,
    },
    /// The queue does not exist.
    #[error("SQS queue {queue_url} does not exist; create it or correct the queue URL")]
    QueueDoesNotExist {
        queue_url: String,
        #[source]
        source: BoxError,
    },
    /// One entry of a batch call failed.
    #[error("SQS {action} on queue {queue_url} failed for job {job_id} with code {code} (sender fault: {sender_fault})")]
    BatchEntry {
        action: &'static str,
        queue_url: String,
        job_id: JobId,
        code: String,
        sender_fault: bool,
    },
    /// A batch response left out an entry that was sent.
    #[error("SQS {action} on queue {queue_url} returned no result for job {job_id}")]
    MissingBatchEntry {
        action: &'static str,
        queue_url: String,
        job_id: JobId,
    },
}

/// Meaning of an SQS error for the Datastore contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Meaning {
    QueueMissing,
    ReceiptInvalid,
    NotInFlight,
    Other,
}

/// Classifies errors by their modeled variant; `code` covers servers that return the error
/// code without the modeled shape.
pub(crate) trait Classify: ProvideErrorMetadata {
    fn modeled(&self) -> Meaning;

    fn meaning(&self) -> Meaning {
        match self.modeled() {
            Meaning::Other => meaning_of_code(self.code()),
            known => known,
        }
    }
}

/// Returns the meaning of an SQS error code, for errors the SDK did not model.
pub(crate) fn meaning_of_code(code: Option<&str>) -> Meaning {
    match code {
        Some("AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist") => {
            Meaning::QueueMissing
        }
        Some("ReceiptHandleIsInvalid") => Meaning::ReceiptInvalid,
        Some("AWS.SimpleQueueService.MessageNotInflight" | "MessageNotInflight") => {
            Meaning::NotInFlight
        }
        _ => Meaning::Other,
    }
}

impl Classify for SendMessageError {
    fn modeled(&self) -> Meaning {
        if self.is_queue_does_not_exist() {
            Meaning::QueueMissing
        } else {
            Meaning::Other
        }
    }
}

impl Classify for ReceiveMessageError {
    fn modeled(&self) -> Meaning {
        if self.is_queue_does_not_exist() {
            Meaning::QueueMissing
        } else {
            Meaning::Other
        }
    }
}

impl Classify for DeleteMessageError {
    fn modeled(&self) -> Meaning {
        if self.is_queue_does_not_exist() {
            Meaning::QueueMissing
        } else if self.is_receipt_handle_is_invalid() {
            Meaning::ReceiptInvalid
        } else {
            Meaning::Other
        }
    }
}

impl Classify for DeleteMessageBatchError {
    fn modeled(&self) -> Meaning {
        if self.is_queue_does_not_exist() {
            Meaning::QueueMissing
        } else {
            Meaning::Other
        }
    }
}

impl Classify for ChangeMessageVisibilityError {
    fn modeled(&self) -> Meaning {
        if self.is_queue_does_not_exist() {
            Meaning::QueueMissing
        } else if self.is_receipt_handle_is_invalid() {
            Meaning::ReceiptInvalid
        } else if self.is_message_not_inflight() {
            Meaning::NotInFlight
        } else {
            Meaning::Other
        }
    }
}

/// Location of an SQS call (method, action, queue and job), for error values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallSite<'a> {
    /// Datastore method.
    pub(crate) operation: &'static str,
    /// SQS action.
    pub(crate) action: &'static str,
    /// Queue URL.
    pub(crate) queue_url: &'a str,
    /// Job the call was about, when it was about one.
    pub(crate) job_id: Option<JobId>,
}

/// Maps an SDK error into the Datastore error.
///
/// An invalid receipt handle is [`Error::NotFound`] (the job is no longer in the queue), a
/// message no longer in flight is [`Error::Conflict`] (the handle is stale), and the rest,
/// a missing queue included, is [`Error::Backend`].
pub(crate) fn map_sdk_error<E, R>(error: SdkError<E, R>, site: CallSite<'_>) -> Error
where
    E: Classify + std::error::Error + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    let meaning = error
        .as_service_error()
        .map_or(Meaning::Other, Classify::meaning);
    map_meaning(meaning, Box::new(error), site)
}

/// Maps a classified failure into the Datastore error.
pub(crate) fn map_meaning(meaning: Meaning, source: BoxError, site: CallSite<'_>) -> Error {
    let job_id = site.job_id.map(|id| id.to_string());
    match (meaning, job_id) {
        (Meaning::ReceiptInvalid, Some(id)) => Error::NotFound {
            kind: RecordKind::Job,
            id,
        },
        (Meaning::NotInFlight, Some(id)) => Error::Conflict {
            kind: RecordKind::Job,
            id,
            reason: "its message is no longer in flight because the visibility timeout passed; \
                     the job may be received again, so drop this handle"
                .to_owned(),
        },
        (Meaning::QueueMissing, _) => backend(
            site.operation,
            SqsError::QueueDoesNotExist {
                queue_url: site.queue_url.to_owned(),
                source,
            },
        ),
        _ => backend(
            site.operation,
            SqsError::Call {
                action: site.action,
                queue_url: site.queue_url.to_owned(),
                source,
            },
        ),
    }
}

/// Wraps a source into [`Error::Backend`].
pub(crate) fn backend(operation: &'static str, source: SqsError) -> Error {
    Error::Backend {
        backend: BACKEND,
        operation,
        source: Box::new(source),
    }
}

/// Returns [`Error::NotSupported`] for `operation`.
pub(crate) fn not_supported(operation: &'static str) -> Error {
    Error::NotSupported {
        operation,
        backend: BACKEND,
    }
}
