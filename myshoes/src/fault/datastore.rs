//! [`FaultyDatastore`]: a [`Datastore`] that fails at the calls a [`FaultPlan`] selects.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::plan::{apply, Fault, FaultPlan, InjectedError, Op};
use crate::datastore::{
    AckHandle, Datastore, DeadLetter, Error, LockLease, ReceivedJob, RecordKind, Result,
};
use crate::model::{
    GitHubHost, Job, JobId, ResourceType, Runner, RunnerId, Scope, Target, TargetId, TargetStatus,
};

/// A [`Datastore`] that forwards every call to `D`, except those its [`FaultPlan`] selects.
///
/// Errors it returns for each [`Fault`]:
///
/// | fault | error |
/// |---|---|
/// | retryable error, throttled, timed out, lost response | [`Error::Backend`] (retryable), with an [`InjectedError`] source naming the fault |
/// | permanent error | [`Error::NotFound`] for the call's record kind, with the id `injected-fault` |
/// | capacity | [`Error::Conflict`], the error of a full slot pool or a claim held by another owner |
///
/// [`Error`] has no permanent variant without a meaning of its own, so the permanent
/// fault uses `NotFound`, the one whose handling asserts the least about the store's
/// state. Every other non-`Backend` variant is permanent as well.
///
/// `Display` is `Faulty(<inner>)`.
pub struct FaultyDatastore<D> {
    inner: D,
    plan: FaultPlan,
}

impl<D: Datastore> FaultyDatastore<D> {
    /// Wraps `inner`, injecting the faults `plan` selects.
    pub fn new(inner: D, plan: FaultPlan) -> Self {
        Self { inner, plan }
    }

    /// Returns the wrapped Datastore.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// Returns the plan.
    pub fn plan(&self) -> &FaultPlan {
        &self.plan
    }
}

fn to_error(kind: RecordKind, injected: InjectedError) -> Error {
    match injected.fault {
        Fault::PermanentError => Error::NotFound {
            kind,
            id: "injected-fault".to_owned(),
        },
        Fault::Capacity => Error::Conflict {
            kind,
            id: "injected-fault".to_owned(),
            reason: injected.to_string(),
        },
        _ => Error::Backend {
            backend: "fault injection",
            operation: injected.op.name(),
            source: Box::new(injected),
        },
    }
}

impl<D: fmt::Debug> fmt::Debug for FaultyDatastore<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyDatastore")
            .field("inner", &self.inner)
            .field("plan", &self.plan)
            .finish()
    }
}

impl<D: fmt::Display> fmt::Display for FaultyDatastore<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Faulty({})", self.inner)
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<D: Datastore> Datastore for FaultyDatastore<D> {
    async fn create_target(&self, target: &Target) -> Result<()> {
        let fault = self.plan.decide(Op::CreateTarget, None);
        apply(
            Op::CreateTarget,
            fault,
            self.inner.create_target(target),
            |e| to_error(RecordKind::Target, e),
        )
        .await
    }

    async fn get_target(&self, id: TargetId) -> Result<Target> {
        let fault = self.plan.decide(Op::GetTarget, None);
        apply(Op::GetTarget, fault, self.inner.get_target(id), |e| {
            to_error(RecordKind::Target, e)
        })
        .await
    }

    async fn get_target_by_scope(&self, host: &GitHubHost, scope: &Scope) -> Result<Target> {
        let fault = self.plan.decide(Op::GetTargetByScope, None);
        apply(
            Op::GetTargetByScope,
            fault,
            self.inner.get_target_by_scope(host, scope),
            |e| to_error(RecordKind::Target, e),
        )
        .await
    }

    async fn list_targets(&self) -> Result<Vec<Target>> {
        let fault = self.plan.decide(Op::ListTargets, None);
        apply(Op::ListTargets, fault, self.inner.list_targets(), |e| {
            to_error(RecordKind::Target, e)
        })
        .await
    }

    async fn delete_target(&self, id: TargetId) -> Result<()> {
        let fault = self.plan.decide(Op::DeleteTarget, None);
        apply(Op::DeleteTarget, fault, self.inner.delete_target(id), |e| {
            to_error(RecordKind::Target, e)
        })
        .await
    }

    async fn update_target_status(
        &self,
        id: TargetId,
        status: TargetStatus,
        description: Option<&str>,
    ) -> Result<()> {
        let fault = self.plan.decide(Op::UpdateTargetStatus, None);
        apply(
            Op::UpdateTargetStatus,
            fault,
            self.inner.update_target_status(id, status, description),
            |e| to_error(RecordKind::Target, e),
        )
        .await
    }

    async fn update_target_resource_type(
        &self,
        id: TargetId,
        resource_type: ResourceType,
    ) -> Result<()> {
        let fault = self.plan.decide(Op::UpdateTargetResourceType, None);
        apply(
            Op::UpdateTargetResourceType,
            fault,
            self.inner.update_target_resource_type(id, resource_type),
            |e| to_error(RecordKind::Target, e),
        )
        .await
    }

    async fn enqueue_job(&self, job: &Job) -> Result<()> {
        let fault = self.plan.decide(Op::EnqueueJob, Some(job.id));
        apply(Op::EnqueueJob, fault, self.inner.enqueue_job(job), |e| {
            to_error(RecordKind::Job, e)
        })
        .await
    }

    async fn receive_jobs(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedJob>> {
        let fault = self.plan.decide(Op::ReceiveJobs, None);
        apply(
            Op::ReceiveJobs,
            fault,
            self.inner.receive_jobs(max, wait),
            |e| to_error(RecordKind::Job, e),
        )
        .await
    }

    async fn list_jobs(&self) -> Result<Vec<Job>> {
        let fault = self.plan.decide(Op::ListJobs, None);
        apply(Op::ListJobs, fault, self.inner.list_jobs(), |e| {
            to_error(RecordKind::Job, e)
        })
        .await
    }

    async fn delete_job(&self, ack: &AckHandle) -> Result<()> {
        let fault = self.plan.decide(Op::DeleteJob, Some(ack.job_id()));
        apply(Op::DeleteJob, fault, self.inner.delete_job(ack), |e| {
            to_error(RecordKind::Job, e)
        })
        .await
    }

    async fn retry_job(&self, ack: &AckHandle, delay: Duration) -> Result<()> {
        let fault = self.plan.decide(Op::RetryJob, Some(ack.job_id()));
        apply(Op::RetryJob, fault, self.inner.retry_job(ack, delay), |e| {
            to_error(RecordKind::Job, e)
        })
        .await
    }

    async fn defer_job(&self, ack: &AckHandle, delay: Duration) -> Result<()> {
        let fault = self.plan.decide(Op::DeferJob, Some(ack.job_id()));
        apply(Op::DeferJob, fault, self.inner.defer_job(ack, delay), |e| {
            to_error(RecordKind::Job, e)
        })
        .await
    }

    async fn create_runner(&self, runner: &Runner) -> Result<()> {
        let fault = self.plan.decide(Op::CreateRunner, Some(runner.job_id));
        apply(
            Op::CreateRunner,
            fault,
            self.inner.create_runner(runner),
            |e| to_error(RecordKind::Runner, e),
        )
        .await
    }

    async fn get_runner(&self, id: RunnerId) -> Result<Runner> {
        let fault = self.plan.decide(Op::GetRunner, None);
        apply(Op::GetRunner, fault, self.inner.get_runner(id), |e| {
            to_error(RecordKind::Runner, e)
        })
        .await
    }

    async fn list_runners(&self) -> Result<Vec<Runner>> {
        let fault = self.plan.decide(Op::ListRunners, None);
        apply(Op::ListRunners, fault, self.inner.list_runners(), |e| {
            to_error(RecordKind::Runner, e)
        })
        .await
    }

    async fn list_runners_by_target(&self, target_id: TargetId) -> Result<Vec<Runner>> {
        let fault = self.plan.decide(Op::ListRunnersByTarget, None);
        apply(
            Op::ListRunnersByTarget,
            fault,
            self.inner.list_runners_by_target(target_id),
            |e| to_error(RecordKind::Runner, e),
        )
        .await
    }

    async fn delete_runner(
        &self,
        id: RunnerId,
        reason: &str,
        deleted_at: DateTime<Utc>,
    ) -> Result<()> {
        let fault = self.plan.decide(Op::DeleteRunner, None);
        apply(
            Op::DeleteRunner,
            fault,
            self.inner.delete_runner(id, reason, deleted_at),
            |e| to_error(RecordKind::Runner, e),
        )
        .await
    }

    async fn acquire_lock(&self, name: &str, owner: &str, lease: Duration) -> Result<LockLease> {
        let fault = self.plan.decide(Op::AcquireLock, None);
        apply(
            Op::AcquireLock,
            fault,
            self.inner.acquire_lock(name, owner, lease),
            |e| to_error(RecordKind::Lock, e),
        )
        .await
    }

    async fn lock_holder(&self, name: &str) -> Result<Option<LockLease>> {
        let fault = self.plan.decide(Op::LockHolder, None);
        apply(Op::LockHolder, fault, self.inner.lock_holder(name), |e| {
            to_error(RecordKind::Lock, e)
        })
        .await
    }

    async fn release_lock(&self, name: &str, owner: &str) -> Result<()> {
        let fault = self.plan.decide(Op::ReleaseLock, None);
        apply(
            Op::ReleaseLock,
            fault,
            self.inner.release_lock(name, owner),
            |e| to_error(RecordKind::Lock, e),
        )
        .await
    }

    async fn claim_launch(&self, job_id: JobId, owner: &str, lease: Duration) -> Result<()> {
        let fault = self.plan.decide(Op::ClaimLaunch, Some(job_id));
        apply(
            Op::ClaimLaunch,
            fault,
            self.inner.claim_launch(job_id, owner, lease),
            |e| to_error(RecordKind::Launch, e),
        )
        .await
    }

    async fn complete_launch(&self, job_id: JobId, owner: &str) -> Result<()> {
        let fault = self.plan.decide(Op::CompleteLaunch, Some(job_id));
        apply(
            Op::CompleteLaunch,
            fault,
            self.inner.complete_launch(job_id, owner),
            |e| to_error(RecordKind::Launch, e),
        )
        .await
    }

    async fn release_launch(&self, job_id: JobId, owner: &str) -> Result<()> {
        let fault = self.plan.decide(Op::ReleaseLaunch, Some(job_id));
        apply(
            Op::ReleaseLaunch,
            fault,
            self.inner.release_launch(job_id, owner),
            |e| to_error(RecordKind::Launch, e),
        )
        .await
    }

    async fn set_runner_github_id(&self, id: RunnerId, github_runner_id: u64) -> Result<()> {
        let fault = self.plan.decide(Op::SetRunnerGithubId, None);
        apply(
            Op::SetRunnerGithubId,
            fault,
            self.inner.set_runner_github_id(id, github_runner_id),
            |e| to_error(RecordKind::Runner, e),
        )
        .await
    }

    async fn dead_letter_job(&self, ack: &AckHandle, reason: &str) -> Result<()> {
        let fault = self.plan.decide(Op::DeadLetterJob, Some(ack.job_id()));
        apply(
            Op::DeadLetterJob,
            fault,
            self.inner.dead_letter_job(ack, reason),
            |e| to_error(RecordKind::Job, e),
        )
        .await
    }

    async fn list_dead_letters(&self) -> Result<Vec<DeadLetter>> {
        let fault = self.plan.decide(Op::ListDeadLetters, None);
        apply(
            Op::ListDeadLetters,
            fault,
            self.inner.list_dead_letters(),
            |e| to_error(RecordKind::Job, e),
        )
        .await
    }

    async fn acquire_slot(
        &self,
        pool: &str,
        capacity: u32,
        holder: &str,
        lease: Duration,
    ) -> Result<()> {
        let fault = self.plan.decide(Op::AcquireSlot, None);
        apply(
            Op::AcquireSlot,
            fault,
            self.inner.acquire_slot(pool, capacity, holder, lease),
            |e| to_error(RecordKind::Slot, e),
        )
        .await
    }

    async fn release_slot(&self, pool: &str, holder: &str) -> Result<()> {
        let fault = self.plan.decide(Op::ReleaseSlot, None);
        apply(
            Op::ReleaseSlot,
            fault,
            self.inner.release_slot(pool, holder),
            |e| to_error(RecordKind::Slot, e),
        )
        .await
    }

    async fn count_slots(&self, pool: &str) -> Result<u32> {
        let fault = self.plan.decide(Op::CountSlots, None);
        apply(Op::CountSlots, fault, self.inner.count_slots(pool), |e| {
            to_error(RecordKind::Slot, e)
        })
        .await
    }
}
