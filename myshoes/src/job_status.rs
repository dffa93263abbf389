//! The source the dispatcher queries for whether a job still waits for a runner.
//!
//! A job can start on another runner, or be cancelled, between its webhook and its
//! dispatch. Asking GitHub first saves a runner that would sit idle.

use std::fmt;

use async_trait::async_trait;

use crate::datastore::BoxError;
use crate::model::Job;

/// Status of a workflow job as GitHub reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkflowJobStatus {
    /// Waiting for a runner.
    Queued,
    /// Waiting for an environment approval.
    Waiting,
    /// Running on a runner.
    InProgress,
    /// Finished, whatever the conclusion.
    Completed,
    /// A status this version does not know, as GitHub wrote it.
    Other(String),
}

impl WorkflowJobStatus {
    /// Maps GitHub's status string; unknown values are kept in [`WorkflowJobStatus::Other`].
    pub fn from_name(name: &str) -> Self {
        match name {
            "queued" => Self::Queued,
            "waiting" => Self::Waiting,
            "in_progress" => Self::InProgress,
            "completed" => Self::Completed,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for WorkflowJobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Queued => "queued",
            Self::Waiting => "waiting",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Other(other) => other,
        })
    }
}

/// A workflow job's status and the runner that took it, as GitHub reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowJobState {
    /// The job's status.
    pub status: WorkflowJobStatus,
    /// Name of the runner that took the job; `None` while it is queued, or when it
    /// finished without running (a cancelled workflow, say).
    pub runner_name: Option<String>,
}

/// A source of workflow job states, such as the GitHub REST API.
#[async_trait]
pub trait JobStatusSource: fmt::Debug + Send + Sync + 'static {
    /// Returns GitHub's current state of the job.
    async fn workflow_job_state(&self, job: &Job) -> Result<WorkflowJobState, BoxError>;
}
