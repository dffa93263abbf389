use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{JobId, RepositoryName, ResourceType, RunnerId, TargetId};

/// State of a [`Runner`] record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunnerStatus {
    /// The instance was launched and has not been deleted.
    Running,
    /// The instance was deleted; the record says why and when.
    Deleted,
}

impl fmt::Display for RunnerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RunnerStatus::Running => "running",
            RunnerStatus::Deleted => "deleted",
        })
    }
}

/// A runner instance launched on a Stadium for one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runner {
    /// Identifier of this record.
    pub id: RunnerId,
    /// Name the runner registers with on GitHub (at most 64 characters).
    pub name: String,
    /// Target the runner serves.
    pub target_id: TargetId,
    /// Job the runner was launched for.
    pub job_id: JobId,
    /// Repository of that job.
    pub repository: RepositoryName,
    /// `workflow_job.id` of that job.
    pub workflow_job_id: u64,
    /// Stadium's identifier of the instance, such as a task ARN or a process id.
    pub cloud_id: String,
    /// Kind of Stadium that runs the instance, such as `process` or `ecs`.
    pub stadium: String,
    /// Size class the Stadium actually used.
    pub resource_type: ResourceType,
    /// Name of the runner profile the runner was launched with; empty when unknown.
    #[serde(default)]
    pub profile: String,
    /// Labels the runner registered with.
    #[serde(default)]
    pub labels: Vec<String>,
    /// GitHub App installation that minted the runner's credential, when known.
    #[serde(default)]
    pub installation_id: Option<u64>,
    /// GitHub's id of the registered runner, once known.
    #[serde(default)]
    pub github_runner_id: Option<u64>,
    /// Current state.
    pub status: RunnerStatus,
    /// Why the runner was deleted; `None` while it runs.
    pub deletion_reason: Option<String>,
    /// When the instance was launched.
    pub created_at: DateTime<Utc>,
    /// When the runner was deleted; `None` while it runs.
    pub deleted_at: Option<DateTime<Utc>>,
}
