use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Creates a new random id.
            pub fn new_random() -> Self {
                Self(Uuid::new_v4())
            }

            /// Wraps an existing UUID.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// Returns the UUID.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// Identifier of a [`Target`](super::Target).
    TargetId
);
uuid_id!(
    /// Identifier of a [`Job`](super::Job).
    ///
    /// [`JobId::for_workflow_job`] derives it from the GitHub host, workflow job id and run
    /// attempt, so every delivery of the same job attempt gets the same id.
    JobId
);
uuid_id!(
    /// Identifier of a [`Runner`](super::Runner) record.
    RunnerId
);

/// Namespace for [`JobId::for_workflow_job`] (a UUIDv5 of the URL `urn:myshoes:job`).
const JOB_NAMESPACE: Uuid = Uuid::from_bytes([
    0x3c, 0x1e, 0x5b, 0x0e, 0x86, 0x6d, 0x5e, 0x1f, 0x9a, 0x4b, 0x2f, 0x77, 0x0d, 0x52, 0x41, 0xa3,
]);

impl JobId {
    /// Derives the id of one attempt of a workflow job on a GitHub host (UUIDv5).
    ///
    /// The same inputs always give the same id, which lets a Datastore recognise a
    /// redelivered webhook.
    pub fn for_workflow_job(
        host: &super::GitHubHost,
        workflow_job_id: u64,
        run_attempt: u32,
    ) -> Self {
        let name = format!("{}/{workflow_job_id}/{run_attempt}", host.web_url());
        Self(Uuid::new_v5(&JOB_NAMESPACE, name.as_bytes()))
    }
}

impl RunnerId {
    /// Returns the id of the runner record for `runner_name` launched for `job_id`: a UUID
    /// v5 of both, so a relaunch of the same job attempt writes the same record instead of a
    /// second one.
    pub fn for_launch(job_id: JobId, runner_name: &str) -> Self {
        let name = format!("{job_id}/{runner_name}");
        Self(Uuid::new_v5(&JOB_NAMESPACE, name.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::GitHubHost;

    #[test]
    fn job_id_is_deterministic_per_attempt() {
        let host = GitHubHost::github_com();
        let a = JobId::for_workflow_job(&host, 42, 1);
        assert_eq!(a, JobId::for_workflow_job(&host, 42, 1));
        assert_ne!(a, JobId::for_workflow_job(&host, 42, 2));
        assert_ne!(a, JobId::for_workflow_job(&host, 43, 1));
        let other_host: GitHubHost = "ghes.example.com".parse().unwrap();
        assert_ne!(a, JobId::for_workflow_job(&other_host, 42, 1));
    }

    #[test]
    fn id_round_trips_through_string() {
        let id = TargetId::new_random();
        let parsed: TargetId = id.to_string().parse().unwrap();
        assert_eq!(parsed, id);
        assert!("not-a-uuid".parse::<TargetId>().is_err());
    }
}
