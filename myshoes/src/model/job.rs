use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{GitHubHost, JobId, RepositoryName, TargetId};

/// One queued attempt of a GitHub Actions workflow job that needs a runner.
///
/// A job keeps only what the dispatcher needs, never the webhook body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Identifier, derived with [`JobId::for_workflow_job`].
    pub id: JobId,
    /// `X-GitHub-Delivery` of the webhook that created the job, when it had one.
    pub delivery_id: Option<String>,
    /// `workflow_job.id` (equal to the check run id).
    pub workflow_job_id: u64,
    /// `workflow_job.run_id`.
    pub run_id: u64,
    /// `workflow_job.run_attempt`, starting at 1; payloads without the field count as 1.
    pub run_attempt: u32,
    /// Repository the workflow runs in.
    pub repository: RepositoryName,
    /// GitHub App installation that sent the webhook, when it came from an App.
    pub installation_id: Option<u64>,
    /// `runs-on` labels as GitHub sent them.
    pub labels: Vec<String>,
    /// GitHub instance the job runs on.
    pub host: GitHubHost,
    /// Target the runner is provided for.
    pub target_id: TargetId,
    /// When the webhook was received.
    pub received_at: DateTime<Utc>,
    /// Number of dispatch attempts that were returned for retry; 0 for a new job.
    pub attempt: u32,
}

impl Job {
    /// Returns the idempotency key `<workflow job id>-<run attempt>`: one runner launch is
    /// allowed per key, however many deliveries arrive.
    pub fn idempotency_key(&self) -> String {
        format!("{}-{}", self.workflow_job_id, self.run_attempt)
    }
}
