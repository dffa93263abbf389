//! Storage of targets, jobs, runners and locks.
//!
//! [`Datastore`] is the one trait every backend implements. [`MemoryDatastore`] is the
//! embedded default; other crates provide queue- or database-backed stores, and you can
//! implement your own and check it with the `conformance` suite (feature `conformance`).
//!
//! ```
//! use std::sync::Arc;
//! use myshoes::datastore::{Datastore, DatastoreExt, MemoryDatastore};
//! use myshoes::model::{GitHubHost, ResourceType, Target};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store: Arc<dyn Datastore> = Arc::new(MemoryDatastore::new());
//! let org = Target::new("octo-org".parse()?, GitHubHost::github_com(), ResourceType::Small);
//! store.create_target(&org).await?;
//!
//! // A repository without its own target falls back to its organization's target.
//! let repo = "octo-org/hello-world".parse()?;
//! let found = store.find_target_for_repository(&GitHubHost::github_com(), &repo).await?;
//! assert_eq!(found.map(|target| target.id), Some(org.id));
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod ack;
#[cfg(any(test, feature = "conformance"))]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
mod error;
mod ext;
mod forward;
mod memory;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::model::{
    GitHubHost, Job, JobId, ResourceType, Runner, RunnerId, Scope, Target, TargetId, TargetStatus,
};

pub use ack::{AckHandle, DeadLetter, LockLease, ReceivedJob};
pub use error::{BoxError, Error, RecordKind, Result};
pub use ext::DatastoreExt;
pub use memory::{
    MemoryDatastore, MemoryDatastoreBuilder, DEFAULT_DEAD_LETTER_LIMIT, DEFAULT_DEDUP_WINDOW,
    DEFAULT_VISIBILITY_TIMEOUT,
};

/// Storage of targets, jobs, runners and named locks.
///
/// Used as `Arc<dyn Datastore>`. `Display` names the backend and its main setting, such as
/// `MemoryDatastore` or `SqsDatastore(https://sqs...)`.
///
/// # Contract
///
/// Every backend keeps these rules; the `conformance` suite checks each of them. A backend
/// that cannot perform an operation returns [`Error::NotSupported`] for it, never a silent
/// success.
///
/// - Clones of a backend value, and every `Arc` of it, share one state.
/// - Each method is atomic: it fully happens or, when it returns an error, leaves no trace
///   (except [`Error::Backend`] from a remote store, where the outcome may be unknown).
/// - Ids are unique per record kind. "Not found" means no record with that id exists,
///   including records of another kind with the same UUID.
///
/// Jobs form an at-least-once queue: a received job stays invisible to other receivers for
/// the backend's visibility timeout; unless it is deleted or returned for retry by then, it
/// becomes receivable again. Consumers therefore deduplicate by job id or by
/// [`Job::idempotency_key`].
#[async_trait]
pub trait Datastore: fmt::Debug + fmt::Display + Send + Sync + 'static {
    /// Stores a new target.
    ///
    /// # Contract
    /// - Fails with [`Error::AlreadyExists`] when a target with the same id exists, or when a
    ///   target with the same host and scope (ignoring ASCII case) exists and is not
    ///   `deleted`. A `deleted` target does not block a new one with its scope.
    async fn create_target(&self, target: &Target) -> Result<()>;

    /// Returns the target with this id, whatever its status.
    ///
    /// # Contract
    /// - Fails with [`Error::NotFound`] when no target has this id.
    async fn get_target(&self, id: TargetId) -> Result<Target>;

    /// Returns the target for a host and scope that is not `deleted`.
    ///
    /// # Contract
    /// - Scopes compare ignoring ASCII case; a repository scope never matches an
    ///   organization scope.
    /// - Fails with [`Error::NotFound`] when no such target exists or it is `deleted`.
    async fn get_target_by_scope(&self, host: &GitHubHost, scope: &Scope) -> Result<Target>;

    /// Returns every target, including `deleted` ones, ordered by creation time.
    async fn list_targets(&self) -> Result<Vec<Target>>;

    /// Marks a target `deleted`; the record is kept for history.
    ///
    /// # Contract
    /// - Idempotent: deleting a `deleted` target succeeds and changes nothing.
    /// - Fails with [`Error::NotFound`] when no target has this id.
    async fn delete_target(&self, id: TargetId) -> Result<()>;

    /// Sets a target's status and status description, and its `updated_at` to now.
    ///
    /// # Contract
    /// - Fails with [`Error::NotFound`] when no target has this id.
    /// - Fails with [`Error::Conflict`] when moving a `deleted` target out of `deleted` while
    ///   another target with its host and scope is not `deleted`.
    async fn update_target_status(
        &self,
        id: TargetId,
        status: TargetStatus,
        description: Option<&str>,
    ) -> Result<()>;

    /// Sets a target's default resource type, and its `updated_at` to now.
    ///
    /// # Contract
    /// - Fails with [`Error::NotFound`] when no target has this id.
    async fn update_target_resource_type(
        &self,
        id: TargetId,
        resource_type: ResourceType,
    ) -> Result<()>;

    /// Adds a job to the queue.
    ///
    /// # Contract
    /// - After success the job is receivable, with [`Job::attempt`] as given.
    /// - On a backend that deduplicates, enqueueing a job whose id is already in the queue
    ///   never makes it receivable twice. Backends that detect it return
    ///   [`Error::AlreadyExists`]; a backend that drops the duplicate silently returns `Ok`
    ///   (see `Capabilities::rejects_duplicate_jobs` in the conformance suite). A backend
    ///   without deduplication, such as a standard SQS queue, may deliver both copies (see
    ///   `Capabilities::deduplicates_jobs`).
    /// - A backend with a deduplication window treats a job id enqueued within the window
    ///   the same way, even after the job was deleted; without a window, a deleted job's id
    ///   can be enqueued again (see `Capabilities::dedup_window`).
    async fn enqueue_job(&self, job: &Job) -> Result<()>;

    /// Receives up to `max` jobs, waiting up to `wait` for the first one to be available.
    ///
    /// # Contract
    /// - Returns as soon as at least one job is receivable, and an empty list when `wait`
    ///   passes without one. A `wait` of zero does not wait.
    /// - Each returned job carries a fresh [`AckHandle`] and is invisible to other receivers
    ///   until it is deleted, returned with [`Datastore::retry_job`], or its visibility
    ///   timeout passes.
    /// - [`Job::attempt`] of a returned job is the number of earlier receives of it.
    /// - `max` of zero returns an empty list.
    async fn receive_jobs(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedJob>>;

    /// Returns the jobs in the queue, received or not, without receiving them.
    async fn list_jobs(&self) -> Result<Vec<Job>>;

    /// Removes a received job from the queue: the acknowledgement after it was handled.
    ///
    /// # Contract
    /// - A deleted job is never received again.
    /// - Fails with [`Error::NotFound`] when the job is no longer in the queue.
    /// - A handle from an earlier receive of a job that was received again must not delete
    ///   it. Backends that detect this return [`Error::Conflict`].
    async fn delete_job(&self, ack: &AckHandle) -> Result<()>;

    /// Returns a received job to the queue, receivable again after `delay`.
    ///
    /// # Contract
    /// - The job is not receivable before `delay` passes and is receivable after it.
    /// - The next receive reports [`Job::attempt`] one higher.
    /// - Fails like [`Datastore::delete_job`] for a job no longer in the queue or a stale
    ///   handle.
    async fn retry_job(&self, ack: &AckHandle, delay: Duration) -> Result<()>;

    /// Stores a new runner record.
    ///
    /// # Contract
    /// - Fails with [`Error::AlreadyExists`] when a runner with the same id exists.
    async fn create_runner(&self, runner: &Runner) -> Result<()>;

    /// Returns the runner with this id, whatever its status.
    ///
    /// # Contract
    /// - Fails with [`Error::NotFound`] when no runner has this id.
    async fn get_runner(&self, id: RunnerId) -> Result<Runner>;

    /// Returns every runner that is not deleted, ordered by creation time.
    async fn list_runners(&self) -> Result<Vec<Runner>>;

    /// Returns the runners of one target that are not deleted, ordered by creation time.
    async fn list_runners_by_target(&self, target_id: TargetId) -> Result<Vec<Runner>>;

    /// Marks a runner deleted with a reason and time; the record is kept for history.
    ///
    /// # Contract
    /// - Idempotent: deleting a deleted runner succeeds and keeps the first reason and time.
    /// - Fails with [`Error::NotFound`] when no runner has this id.
    async fn delete_runner(
        &self,
        id: RunnerId,
        reason: &str,
        deleted_at: DateTime<Utc>,
    ) -> Result<()>;

    /// Takes the lock `name` for `owner` until `lease` passes.
    ///
    /// # Contract
    /// - Succeeds when the lock is free, its lease has expired, or `owner` holds it already
    ///   (which extends the lease to `lease` from now).
    /// - Fails with [`Error::Conflict`] while another owner holds an unexpired lease.
    async fn acquire_lock(&self, name: &str, owner: &str, lease: Duration) -> Result<LockLease>;

    /// Returns who holds the lock `name`, or `None` when it is free or its lease expired.
    async fn lock_holder(&self, name: &str) -> Result<Option<LockLease>>;

    /// Releases the lock `name` held by `owner`.
    ///
    /// # Contract
    /// - Releasing a free or expired lock succeeds.
    /// - Fails with [`Error::Conflict`] while another owner holds an unexpired lease.
    async fn release_lock(&self, name: &str, owner: &str) -> Result<()>;

    /// Claims the right to launch the runner for one job attempt: the idempotency primitive
    /// that makes one launch per (workflow job id, run attempt), keyed by [`JobId`], which
    /// is derived from exactly that pair and the host.
    ///
    /// # Contract
    /// - Atomic conditional create: of concurrent claims for one job id, exactly one
    ///   succeeds.
    /// - Succeeds when no claim exists, when the existing claim was released or its lease
    ///   expired without completion, or when `owner` holds it (which renews the lease).
    /// - Fails with [`Error::Conflict`] while another owner holds an unexpired claim.
    /// - Fails with [`Error::AlreadyExists`] once the claim was completed with
    ///   [`Datastore::complete_launch`], for as long as the backend remembers completed
    ///   claims (a retention each backend documents; 24 hours for [`MemoryDatastore`] by
    ///   default).
    async fn claim_launch(&self, job_id: JobId, owner: &str, lease: Duration) -> Result<()>;

    /// Marks a claim completed: the runner for this job attempt was launched.
    ///
    /// # Contract
    /// - Fails with [`Error::Conflict`] unless `owner` holds an unexpired claim for the job.
    /// - Idempotent for the owner that completed it.
    async fn complete_launch(&self, job_id: JobId, owner: &str) -> Result<()>;

    /// Gives up a claim that was not completed, so another attempt can launch.
    ///
    /// # Contract
    /// - Releasing a missing or expired claim succeeds.
    /// - Fails with [`Error::Conflict`] for a claim held by another owner or completed.
    async fn release_launch(&self, job_id: JobId, owner: &str) -> Result<()>;

    /// Returns a received job to the queue, receivable again after `delay`, because it waits
    /// for something outside itself (a free slot under a runner limit, another dispatcher's
    /// launch) rather than because it failed.
    ///
    /// The default implementation is [`Datastore::retry_job`], so the wait counts as an
    /// attempt. Backends that can return the job without counting the receive override it
    /// (see `Capabilities::defer_keeps_attempt` in the conformance suite).
    ///
    /// # Contract
    /// - Like [`Datastore::retry_job`], except that a backend that overrides it makes the
    ///   next receive report the same [`Job::attempt`] as this one.
    async fn defer_job(&self, ack: &AckHandle, delay: Duration) -> Result<()> {
        self.retry_job(ack, delay).await
    }

    /// Stores GitHub's id of a runner once it is known, so later lookups go by id.
    ///
    /// # Contract
    /// - Sets [`Runner::github_runner_id`]; setting the same value again succeeds.
    /// - Fails with [`Error::NotFound`] when no runner has this id.
    async fn set_runner_github_id(&self, id: RunnerId, github_runner_id: u64) -> Result<()>;

    /// Removes a received job from the queue and keeps it as a dead letter with `reason`:
    /// the end of a job that will never get a runner.
    ///
    /// # Contract
    /// - Afterwards the job is never received again, and [`Datastore::list_dead_letters`]
    ///   (on backends that can list) returns it with `reason`.
    /// - Fails like [`Datastore::delete_job`] for a job no longer in the queue or a stale
    ///   handle, and keeps no dead letter then.
    async fn dead_letter_job(&self, ack: &AckHandle, reason: &str) -> Result<()>;

    /// Returns the dead letters the backend keeps, oldest first. A backend that hands dead
    /// letters to another system (such as a dead-letter queue) returns
    /// [`Error::NotSupported`].
    async fn list_dead_letters(&self) -> Result<Vec<DeadLetter>>;

    /// Takes one of `capacity` slots of the pool `pool` for `holder` until `lease` passes:
    /// the counting primitive behind runner caps.
    ///
    /// # Contract
    /// - Atomic: however many callers race, at most `capacity` distinct holders hold
    ///   unexpired slots of a pool after their calls succeed.
    /// - Succeeds when `holder` holds a slot of the pool already (which renews its lease),
    ///   or when fewer than `capacity` other holders hold unexpired slots.
    /// - Fails with [`Error::Conflict`] otherwise, also when a pool holds more slots than a
    ///   smaller `capacity` given later allows.
    async fn acquire_slot(
        &self,
        pool: &str,
        capacity: u32,
        holder: &str,
        lease: Duration,
    ) -> Result<()>;

    /// Releases the slot of `holder` in `pool`.
    ///
    /// # Contract
    /// - Idempotent: releasing a slot that is not held, or that expired, succeeds.
    async fn release_slot(&self, pool: &str, holder: &str) -> Result<()>;

    /// Returns how many unexpired slots of `pool` are held.
    async fn count_slots(&self, pool: &str) -> Result<u32>;
}
