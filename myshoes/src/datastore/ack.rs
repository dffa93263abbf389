use std::fmt;

use chrono::{DateTime, Utc};

use crate::model::{Job, JobId};

/// Opaque proof that a job was received, used to delete it or return it for retry.
///
/// A queue backend keeps its receipt handle in the token; the dispatcher never looks inside.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AckHandle {
    job_id: JobId,
    token: String,
}

impl AckHandle {
    /// Creates a handle; for Datastore implementations.
    pub fn new(job_id: JobId, token: impl Into<String>) -> Self {
        Self {
            job_id,
            token: token.into(),
        }
    }

    /// Returns the id of the job this handle acknowledges.
    pub fn job_id(&self) -> JobId {
        self.job_id
    }

    /// Returns the backend's token, such as an SQS receipt handle; for Datastore
    /// implementations.
    pub fn token(&self) -> &str {
        &self.token
    }
}

impl fmt::Debug for AckHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Receipt handles are long; the prefix is enough to tell two apart in a log.
        let shown: String = self.token.chars().take(16).collect();
        f.debug_struct("AckHandle")
            .field("job_id", &self.job_id)
            .field("token", &format_args!("{shown}..."))
            .finish()
    }
}

/// A job handed out by [`Datastore::receive_jobs`](super::Datastore::receive_jobs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedJob {
    /// The job.
    pub job: Job,
    /// Handle for deleting the job or returning it for retry.
    pub ack: AckHandle,
}

/// A job that will never get a runner, kept with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The job as it was last received.
    pub job: Job,
    /// Why it was given up.
    pub reason: String,
    /// When it was given up.
    pub dead_lettered_at: DateTime<Utc>,
}

/// A held lock: who holds it and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockLease {
    /// Name of the lock.
    pub name: String,
    /// Owner that holds it.
    pub owner: String,
    /// When the lease ends unless the owner renews it.
    pub expires_at: DateTime<Utc>,
}
