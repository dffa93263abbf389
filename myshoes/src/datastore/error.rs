//! The error type of every [`Datastore`](super::Datastore) operation.

use std::fmt;

/// A boxed error from a backend, kept as the [`source`](std::error::Error::source) of
/// [`Error::Backend`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result of a Datastore operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Kind of record an error refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordKind {
    /// A [`Target`](crate::model::Target).
    Target,
    /// A [`Job`](crate::model::Job), or its acknowledgement handle.
    Job,
    /// A [`Runner`](crate::model::Runner).
    Runner,
    /// A named lock.
    Lock,
    /// A launch claim of one job attempt.
    Launch,
    /// A slot of a capped pool, such as the runners of one profile.
    Slot,
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordKind::Target => "target",
            RecordKind::Job => "job",
            RecordKind::Runner => "runner",
            RecordKind::Lock => "lock",
            RecordKind::Launch => "launch claim",
            RecordKind::Slot => "slot pool",
        })
    }
}

/// Error returned by a [`Datastore`](super::Datastore).
///
/// `Display` describes this layer only; the cause of a [`Error::Backend`] is reached
/// through [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No record with this id exists.
    #[error("{kind} {id} not found")]
    NotFound {
        /// Kind of record.
        kind: RecordKind,
        /// The id that was looked up.
        id: String,
    },
    /// A record with this id, or with the same unique key, exists already.
    #[error("{kind} {id} already exists")]
    AlreadyExists {
        /// Kind of record.
        kind: RecordKind,
        /// The id or unique key that is taken.
        id: String,
    },
    /// The record is in a state that forbids the operation, such as a lock held by another
    /// owner or an acknowledgement handle from an earlier receive.
    #[error("conflict on {kind} {id}: {reason}")]
    Conflict {
        /// Kind of record.
        kind: RecordKind,
        /// Id of the record.
        id: String,
        /// What the conflicting state is.
        reason: String,
    },
    /// This backend does not implement the operation.
    #[error("{operation} is not supported by the {backend} datastore")]
    NotSupported {
        /// Name of the Datastore method.
        operation: &'static str,
        /// Name of the backend.
        backend: &'static str,
    },
    /// The backend failed; the source has the details.
    #[error("{backend} datastore failed during {operation}")]
    Backend {
        /// Name of the backend.
        backend: &'static str,
        /// Name of the Datastore method.
        operation: &'static str,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// Returns whether retrying the same call later may succeed. Only backend failures are
    /// retryable; the other variants describe a state that a retry does not change.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Backend { .. })
    }

    /// Returns whether this is [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    pub(crate) fn not_found(kind: RecordKind, id: impl fmt::Display) -> Self {
        Error::NotFound {
            kind,
            id: id.to_string(),
        }
    }

    pub(crate) fn already_exists(kind: RecordKind, id: impl fmt::Display) -> Self {
        Error::AlreadyExists {
            kind,
            id: id.to_string(),
        }
    }

    pub(crate) fn conflict(
        kind: RecordKind,
        id: impl fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        Error::Conflict {
            kind,
            id: id.to_string(),
            reason: reason.into(),
        }
    }
}
