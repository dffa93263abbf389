//! The [`Datastore`] implementation of [`SqsDatastore`]: jobs on SQS, the rest delegated.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use myshoes::datastore::{AckHandle, Datastore, DeadLetter, LockLease, ReceivedJob, Result};
use myshoes::model::{
    GitHubHost, Job, JobId, ResourceType, Runner, RunnerId, Scope, Target, TargetId, TargetStatus,
};

use crate::config::whole_seconds;
use crate::datastore::{SqsDatastore, MAX_WAIT};
use crate::error::not_supported;

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl Datastore for SqsDatastore {
    async fn create_target(&self, target: &Target) -> Result<()> {
        self.inner("create_target")?.create_target(target).await
    }

    async fn get_target(&self, id: TargetId) -> Result<Target> {
        self.inner("get_target")?.get_target(id).await
    }

    async fn get_target_by_scope(&self, host: &GitHubHost, scope: &Scope) -> Result<Target> {
        self.inner("get_target_by_scope")?
            .get_target_by_scope(host, scope)
            .await
    }

    async fn list_targets(&self) -> Result<Vec<Target>> {
        self.inner("list_targets")?.list_targets().await
    }

    async fn delete_target(&self, id: TargetId) -> Result<()> {
        self.inner("delete_target")?.delete_target(id).await
    }

    async fn update_target_status(
        &self,
        id: TargetId,
        status: TargetStatus,
        description: Option<&str>,
    ) -> Result<()> {
        self.inner("update_target_status")?
            .update_target_status(id, status, description)
            .await
    }

    async fn update_target_resource_type(
        &self,
        id: TargetId,
        resource_type: ResourceType,
    ) -> Result<()> {
        self.inner("update_target_resource_type")?
            .update_target_resource_type(id, resource_type)
            .await
    }

    #[tracing::instrument(skip_all, fields(queue_url = %self.queue_url(), job_id = %job.id))]
    async fn enqueue_job(&self, job: &Job) -> Result<()> {
        self.send_job(job).await
    }

    /// Long-polls in whole seconds: `wait` is rounded up to the next second, and a `wait`
    /// over 20 seconds takes several receive calls.
    #[tracing::instrument(skip_all, fields(queue_url = %self.queue_url(), max = max, wait = ?wait))]
    async fn receive_jobs(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedJob>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let deadline = Instant::now() + wait;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let jobs = self
                .receive_batch(max, whole_seconds(remaining, MAX_WAIT))
                .await?;
            // A batch of only undecodable messages comes back empty; keep polling while
            // time is left.
            if !jobs.is_empty() || Instant::now() >= deadline {
                return Ok(jobs);
            }
        }
    }

    async fn list_jobs(&self) -> Result<Vec<Job>> {
        // NOTE: SQS cannot list messages without receiving them, which would hide them
        // from consumers.
        Err(not_supported("list_jobs"))
    }

    #[tracing::instrument(skip_all, fields(queue_url = %self.queue_url(), job_id = %ack.job_id()))]
    async fn delete_job(&self, ack: &AckHandle) -> Result<()> {
        self.delete_one(ack).await
    }

    /// Sets the message's visibility timeout to `delay`, rounded up to whole seconds and
    /// capped at SQS's maximum of 12 hours.
    #[tracing::instrument(skip_all, fields(queue_url = %self.queue_url(), job_id = %ack.job_id(), delay = ?delay))]
    async fn retry_job(&self, ack: &AckHandle, delay: Duration) -> Result<()> {
        self.change_visibility(ack, delay, "retry_job").await
    }

    /// Same as `retry_job`: SQS counts every receive in `ApproximateReceiveCount`, so a
    /// deferred job comes back with its attempt one higher. Give the queue's
    /// `maxReceiveCount` room for waits at runner limits.
    async fn defer_job(&self, ack: &AckHandle, delay: Duration) -> Result<()> {
        self.change_visibility(ack, delay, "defer_job").await
    }

    async fn create_runner(&self, runner: &Runner) -> Result<()> {
        self.inner("create_runner")?.create_runner(runner).await
    }

    async fn get_runner(&self, id: RunnerId) -> Result<Runner> {
        self.inner("get_runner")?.get_runner(id).await
    }

    async fn list_runners(&self) -> Result<Vec<Runner>> {
        self.inner("list_runners")?.list_runners().await
    }

    async fn list_runners_by_target(&self, target_id: TargetId) -> Result<Vec<Runner>> {
        self.inner("list_runners_by_target")?
            .list_runners_by_target(target_id)
            .await
    }

    async fn delete_runner(
        &self,
        id: RunnerId,
        reason: &str,
        deleted_at: DateTime<Utc>,
    ) -> Result<()> {
        self.inner("delete_runner")?
            .delete_runner(id, reason, deleted_at)
            .await
    }

    async fn acquire_lock(&self, name: &str, owner: &str, lease: Duration) -> Result<LockLease> {
        self.inner("acquire_lock")?
            .acquire_lock(name, owner, lease)
            .await
    }

    async fn lock_holder(&self, name: &str) -> Result<Option<LockLease>> {
        self.inner("lock_holder")?.lock_holder(name).await
    }

    async fn release_lock(&self, name: &str, owner: &str) -> Result<()> {
        self.inner("release_lock")?.release_lock(name, owner).await
    }

    async fn claim_launch(&self, job_id: JobId, owner: &str, lease: Duration) -> Result<()> {
        self.inner("claim_launch")?
            .claim_launch(job_id, owner, lease)
            .await
    }

    async fn complete_launch(&self, job_id: JobId, owner: &str) -> Result<()> {
        self.inner("complete_launch")?
            .complete_launch(job_id, owner)
            .await
    }

    async fn release_launch(&self, job_id: JobId, owner: &str) -> Result<()> {
        self.inner("release_launch")?
            .release_launch(job_id, owner)
            .await
    }

    async fn set_runner_github_id(&self, id: RunnerId, github_runner_id: u64) -> Result<()> {
        self.inner("set_runner_github_id")?
            .set_runner_github_id(id, github_runner_id)
            .await
    }

    #[tracing::instrument(skip_all, fields(queue_url = %self.queue_url(), job_id = %ack.job_id()))]
    async fn dead_letter_job(&self, ack: &AckHandle, reason: &str) -> Result<()> {
        self.dead_letter(ack, reason).await
    }

    async fn list_dead_letters(&self) -> Result<Vec<DeadLetter>> {
        // NOTE: dead letters live in the dead-letter queue; reading them there would
        // receive them, so inspect that queue with SQS tools instead.
        Err(not_supported("list_dead_letters"))
    }

    async fn acquire_slot(
        &self,
        pool: &str,
        capacity: u32,
        holder: &str,
        lease: Duration,
    ) -> Result<()> {
        self.inner("acquire_slot")?
            .acquire_slot(pool, capacity, holder, lease)
            .await
    }

    async fn release_slot(&self, pool: &str, holder: &str) -> Result<()> {
        self.inner("release_slot")?.release_slot(pool, holder).await
    }

    async fn count_slots(&self, pool: &str) -> Result<u32> {
        self.inner("count_slots")?.count_slots(pool).await
    }
}
