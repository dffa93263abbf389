//! The error type of every [`Stadium`](super::Stadium) operation.

pub use crate::datastore::BoxError;

/// Result of a Stadium operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Error returned by a [`Stadium`](super::Stadium).
///
/// [`Error::is_retryable`] separates failures that may pass on a later attempt (capacity,
/// throttling, time-outs, some backend failures) from permanent ones (an invalid request,
/// denied access). The dispatcher decides between retry and dead letter from that alone.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Stadium has no room for the instance now. Retryable.
    #[error("no capacity for the instance: {reason}")]
    Capacity {
        /// What ran out, as the backend reported it.
        reason: String,
    },
    /// The backend rejected the call because of its rate limit. Retryable.
    #[error("the backend throttled the request: {reason}")]
    Throttled {
        /// The backend's explanation.
        reason: String,
    },
    /// The call did not finish in time; it may or may not have taken effect. Retryable.
    #[error("{operation} timed out")]
    TimedOut {
        /// The Stadium method that timed out.
        operation: &'static str,
    },
    /// The request cannot succeed as given, such as an unknown size class or a script over
    /// the backend's size limit. Permanent.
    #[error("invalid instance request: {reason}")]
    InvalidRequest {
        /// What is wrong and what to change.
        reason: String,
    },
    /// The Stadium's credentials do not allow the call. Permanent.
    #[error("access denied: {reason}")]
    AccessDenied {
        /// The backend's explanation and the permission that is missing, when known.
        reason: String,
    },
    /// No instance has this cloud id. Permanent.
    #[error("instance {cloud_id} not found")]
    NotFound {
        /// The cloud id that was looked up.
        cloud_id: String,
    },
    /// This Stadium does not implement the operation. Permanent.
    #[error("{operation} is not supported by the {backend} stadium")]
    NotSupported {
        /// The Stadium method.
        operation: &'static str,
        /// Name of the backend.
        backend: &'static str,
    },
    /// The backend failed; the source has the details.
    #[error("{backend} stadium failed during {operation}")]
    Backend {
        /// Name of the backend.
        backend: &'static str,
        /// The Stadium method.
        operation: &'static str,
        /// Whether a later attempt may succeed.
        retryable: bool,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// Returns whether a later attempt of the same request may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Capacity { .. } | Error::Throttled { .. } | Error::TimedOut { .. } => true,
            Error::Backend { retryable, .. } => *retryable,
            Error::InvalidRequest { .. }
            | Error::AccessDenied { .. }
            | Error::NotFound { .. }
            | Error::NotSupported { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_split_matches_kind() {
        assert!(Error::Capacity { reason: "x".into() }.is_retryable());
        assert!(Error::Throttled { reason: "x".into() }.is_retryable());
        assert!(Error::TimedOut {
            operation: "add_instance"
        }
        .is_retryable());
        assert!(!Error::InvalidRequest { reason: "x".into() }.is_retryable());
        assert!(!Error::AccessDenied { reason: "x".into() }.is_retryable());
        let io = std::io::Error::other("boom");
        let backend = Error::Backend {
            backend: "test",
            operation: "add_instance",
            retryable: true,
            source: Box::new(io),
        };
        assert!(backend.is_retryable());
        assert_eq!(
            backend.to_string(),
            "test stadium failed during add_instance"
        );
    }
}
