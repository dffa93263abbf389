//! Places where runners run.
//!
//! A [`Stadium`] starts one instance (a machine, container or process) per runner with the
//! runner's setup script, and deletes it again. [`MemoryStadium`] records calls for tests;
//! [`ProcessStadium`] runs each setup script as a local child process. A cloud backend
//! implements the same trait, and the `conformance` suite (feature `conformance`) checks
//! any implementation against the contract below.

#[cfg(any(test, feature = "conformance"))]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
mod error;
mod forward;
mod memory;
mod process;

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::model::{JobId, RepositoryName, ResourceType, TargetId};
use crate::setup_script::SetupScript;

pub use error::{BoxError, Error, Result};
pub use memory::{MemoryStadium, ScriptedFailure};

pub use process::{ProcessStadium, ProcessStadiumBuilder, LOG_FILE, SCRIPT_FILE};

/// Request to start one runner instance.
#[derive(Debug, Clone)]
pub struct AddInstanceRequest {
    /// Name the runner registers with; unique per job attempt.
    pub runner_name: String,
    /// The script the instance runs. Backends with a size limit use its wrapper form.
    pub setup_script: SetupScript,
    /// Requested size class.
    pub resource_type: ResourceType,
    /// The runner's labels, for backends that choose an image or pool by label.
    pub labels: Vec<String>,
    /// Target the runner serves.
    pub target_id: TargetId,
    /// Job the runner is launched for.
    pub job_id: JobId,
    /// Repository of the job, for tags and logs.
    pub repository: RepositoryName,
    /// Name of the runner profile, for tags and the sweeper's slot release.
    pub profile: String,
    /// GitHub App installation of the job, so the sweeper can ask GitHub about an instance
    /// without a runner record.
    pub installation_id: Option<u64>,
}

/// A started instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The backend's identifier of the instance, used to delete it.
    pub cloud_id: String,
    /// Kind of Stadium, such as `process` or `ecs`.
    pub stadium: String,
    /// Where the instance can be reached or inspected, when the backend knows: an IP
    /// address, a host name, or a directory.
    pub address: Option<String>,
    /// Size class the backend actually used.
    pub resource_type: ResourceType,
}

/// An instance as [`Stadium::list_instances`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedInstance {
    /// The backend's identifier of the instance, as [`Instance::cloud_id`] returned it.
    pub cloud_id: String,
    /// Runner name the instance was launched with, when the backend keeps it (a tag, for
    /// example).
    pub runner_name: Option<String>,
    /// Job the instance was launched for, when the backend keeps it.
    pub job_id: Option<JobId>,
    /// Target the instance serves, when the backend keeps it.
    pub target_id: Option<TargetId>,
    /// GitHub App installation of the job, when the backend keeps it.
    pub installation_id: Option<u64>,
    /// Runner profile of the instance, when the backend keeps it.
    pub profile: Option<String>,
    /// Labels the instance was launched with, when the backend keeps them; passed back to
    /// [`Stadium::delete_instance`].
    pub labels: Vec<String>,
    /// When the instance was started, when the backend knows.
    pub started_at: Option<DateTime<Utc>>,
}

/// A place where runners run.
///
/// Used as `Arc<dyn Stadium>`. `Display` names the backend and its main setting.
///
/// # Contract
///
/// Every backend keeps these rules; the `conformance` suite checks each of them.
///
/// - Clones of a backend value share one state.
/// - Each error reports whether a retry may help ([`Error::is_retryable`]).
/// - An operation the backend lacks returns [`Error::NotSupported`], never a silent
///   success.
#[async_trait]
pub trait Stadium: fmt::Debug + fmt::Display + Send + Sync + 'static {
    /// Starts an instance that runs the request's setup script.
    ///
    /// # Contract
    /// - On success the instance has been started and [`Instance::cloud_id`] identifies it.
    /// - Two requests with different runner names get different cloud ids.
    /// - Backends that can, make a repeated request for a runner name they launched return
    ///   the same instance instead of a second one (see the conformance suite's
    ///   `idempotent_add`).
    async fn add_instance(&self, request: &AddInstanceRequest) -> Result<Instance>;

    /// Stops an instance and releases what it holds. `labels` are the labels the instance
    /// was launched with, for backends that keep one pool per label set; others ignore them.
    /// What remains afterwards (logs, stopped-task records) depends on the backend.
    ///
    /// # Contract
    /// - Idempotent: an unknown, stopped or already deleted instance counts as deleted and
    ///   returns `Ok`.
    /// - After success the instance no longer runs.
    async fn delete_instance(&self, cloud_id: &str, labels: &[String]) -> Result<()>;

    /// Lists the instances this backend started that have not ended: starting or running.
    /// The sweeper uses it to find instances without a runner record and records whose
    /// instance is gone.
    ///
    /// The default implementation returns [`Error::NotSupported`]; the sweeper then works
    /// from runner records and GitHub alone.
    ///
    /// # Contract
    /// - An instance started by [`Stadium::add_instance`] is listed, with its runner name,
    ///   until it ends or is deleted.
    /// - An instance for which [`Stadium::delete_instance`] returned `Ok` is not listed.
    async fn list_instances(&self) -> Result<Vec<ListedInstance>> {
        Err(Error::NotSupported {
            operation: "list_instances",
            backend: "custom",
        })
    }
}
