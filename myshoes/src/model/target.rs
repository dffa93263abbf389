use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{GitHubHost, ResourceType, Scope, TargetId};

/// State of a [`Target`], with the names Go myshoes uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetStatus {
    /// Registered and idle.
    Active,
    /// At least one runner is working for it.
    Running,
    /// Paused by an operator; receives no jobs.
    Suspend,
    /// Removed; receives no jobs. The record is kept for history.
    Deleted,
    /// The last operation on it failed; the description says why. Still receives jobs.
    Error,
}

impl TargetStatus {
    /// Returns the lower-case name, such as `suspend`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TargetStatus::Active => "active",
            TargetStatus::Running => "running",
            TargetStatus::Suspend => "suspend",
            TargetStatus::Deleted => "deleted",
            TargetStatus::Error => "error",
        }
    }

    /// Returns whether a target in this state may receive new jobs: every state except
    /// `suspend` and `deleted`.
    pub const fn can_receive_jobs(self) -> bool {
        !matches!(self, TargetStatus::Suspend | TargetStatus::Deleted)
    }
}

impl fmt::Display for TargetStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error returned when a string is not a target status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid target status {0:?}: expected active, running, suspend, deleted or error")]
pub struct ParseTargetStatusError(String);

impl FromStr for TargetStatus {
    type Err = ParseTargetStatusError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            TargetStatus::Active,
            TargetStatus::Running,
            TargetStatus::Suspend,
            TargetStatus::Deleted,
            TargetStatus::Error,
        ]
        .into_iter()
        .find(|status| status.as_str().eq_ignore_ascii_case(s))
        .ok_or_else(|| ParseTargetStatusError(s.to_owned()))
    }
}

/// A repository or organization that myshoes provides runners for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Identifier.
    pub id: TargetId,
    /// Repository (`owner/repo`) or organization (`owner`) the runners register on.
    pub scope: Scope,
    /// GitHub instance the scope lives on.
    pub host: GitHubHost,
    /// Default size of runners for this target; a runner profile may override it.
    pub resource_type: ResourceType,
    /// Current state.
    pub status: TargetStatus,
    /// Reason for the current state, for example the error that put it in `error`.
    pub status_description: Option<String>,
    /// When the target was created.
    pub created_at: DateTime<Utc>,
    /// When the target last changed.
    pub updated_at: DateTime<Utc>,
}

impl Target {
    /// Creates an `active` target with a random id and both timestamps set to now.
    pub fn new(scope: Scope, host: GitHubHost, resource_type: ResourceType) -> Self {
        let now = Utc::now();
        Self {
            id: TargetId::new_random(),
            scope,
            host,
            resource_type,
            status: TargetStatus::Active,
            status_description: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Returns whether this target may receive new jobs (see [`TargetStatus::can_receive_jobs`]).
    pub fn can_receive_jobs(&self) -> bool {
        self.status.can_receive_jobs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_round_trip() {
        for status in [
            TargetStatus::Active,
            TargetStatus::Running,
            TargetStatus::Suspend,
            TargetStatus::Deleted,
            TargetStatus::Error,
        ] {
            assert_eq!(status.as_str().parse::<TargetStatus>().unwrap(), status);
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        assert!("paused".parse::<TargetStatus>().is_err());
    }

    #[test]
    fn suspend_and_deleted_receive_no_jobs() {
        assert!(TargetStatus::Active.can_receive_jobs());
        assert!(TargetStatus::Running.can_receive_jobs());
        assert!(TargetStatus::Error.can_receive_jobs());
        assert!(!TargetStatus::Suspend.can_receive_jobs());
        assert!(!TargetStatus::Deleted.can_receive_jobs());
    }
}
