//! Outcomes of the jobs the dispatcher processed.

use std::time::Duration;

use crate::model::{Job, Runner};
use crate::stadium::Instance;

/// The result of processing one received job.
// One outcome is built per job and moved, never stored in bulk, so the size difference
// between variants costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Outcome {
    /// A runner instance was launched, and the job was removed from the queue.
    Launched {
        /// The job.
        job: Job,
        /// Name of the runner profile that matched the job's labels.
        profile: String,
        /// The runner record; see `recorded` for whether the Datastore stored it.
        runner: Runner,
        /// Whether the runner record was stored. It is `false` when the Datastore failed
        /// after the launch; the error was then logged, and the instance still runs.
        recorded: bool,
        /// The instance the Stadium started.
        instance: Instance,
    },
    /// A retryable failure; the job returns to the queue after `delay`.
    RetryScheduled {
        /// The job, with the attempt count it failed at.
        job: Job,
        /// Delay before the job is receivable again.
        delay: Duration,
        /// What failed.
        reason: String,
    },
    /// Nothing needed launching: GitHub reports the job started or finished, or a runner
    /// was launched for this job attempt already. The job was removed from the queue.
    Skipped {
        /// The job.
        job: Job,
        /// Reason nothing was launched.
        reason: String,
    },
    /// A permanent failure, or the last retryable one: the job will get no runner. It was
    /// moved to the Datastore's dead letters with the reason, or, on a Datastore without
    /// dead letters, deleted with the reason logged.
    Dropped {
        /// The job.
        job: Job,
        /// Reason the job was dropped.
        reason: String,
        /// Whether the Datastore keeps the job as a dead letter.
        dead_lettered: bool,
    },
}

impl Outcome {
    /// Returns the job this outcome is about.
    pub fn job(&self) -> &Job {
        match self {
            Outcome::Launched { job, .. }
            | Outcome::RetryScheduled { job, .. }
            | Outcome::Skipped { job, .. }
            | Outcome::Dropped { job, .. } => job,
        }
    }
}
