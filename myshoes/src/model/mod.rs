//! Records shared by every part of the library: targets, jobs, runners and their parts.
//!
//! These are plain values. Storing them is the [`Datastore`](crate::datastore::Datastore)'s job.

mod host;
mod ids;
mod job;
mod resource_type;
mod runner;
mod scope;
mod target;

pub use host::{GitHubHost, HostKind, ParseHostError, MAX_HOST_LEN};
pub use ids::{JobId, RunnerId, TargetId};
pub use job::Job;
pub use resource_type::{ParseResourceTypeError, ResourceType};
pub use runner::{Runner, RunnerStatus};
pub use scope::{ParseScopeError, RepositoryName, Scope, MAX_OWNER_LEN, MAX_REPO_LEN};
pub use target::{ParseTargetStatusError, Target, TargetStatus};
