//! The embedded in-memory Datastore.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{AckHandle, Datastore, DeadLetter, Error, LockLease, ReceivedJob, RecordKind, Result};
use crate::model::{
    GitHubHost, Job, JobId, ResourceType, Runner, RunnerId, RunnerStatus, Scope, Target, TargetId,
    TargetStatus,
};

/// Visibility timeout used by [`MemoryDatastore::new`].
pub const DEFAULT_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(300);

/// Deduplication window used by [`MemoryDatastore::new`].
pub const DEFAULT_DEDUP_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Number of dead letters [`MemoryDatastore::new`] keeps.
pub const DEFAULT_DEAD_LETTER_LIMIT: usize = 10_000;

/// A Datastore kept in process memory: the embedded default.
///
/// **Not durable**: everything is lost when the process exits, and two processes never
/// share it. Use it for development, tests and single-process setups where losing queued
/// jobs on restart is acceptable; GitHub does not redeliver webhooks by itself, so jobs
/// queued at a crash need a rescue or a manual re-run.
///
/// Clones share one state. Every operation is supported. Enqueueing a job whose id is
/// queued, or was enqueued within the deduplication window (24 hours by default), fails
/// with [`Error::AlreadyExists`], so a redelivered webhook does not launch a second runner
/// after the first delivery's job was dispatched. A stale acknowledgement handle fails
/// with [`Error::Conflict`]. Completed launch claims are remembered for 24 hours by
/// default ([`MemoryDatastoreBuilder::with_claim_retention`]), deleted runner records for
/// 24 hours ([`MemoryDatastoreBuilder::with_deleted_runner_retention`]), and the newest
/// 10,000 dead letters; a dead-lettered job's id leaves the deduplication window, so a
/// redelivery of it after the cause was fixed is enqueued again. Expired claims and locks are swept out as the maps grow, so memory
/// stays bounded by what the retentions allow. [`MemoryDatastore::receive_jobs`] wakes as
/// soon as a job is enqueued or a retried job becomes visible, without polling.
#[derive(Clone)]
pub struct MemoryDatastore {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    job_available: Notify,
    visibility_timeout: Duration,
    dedup_window: Duration,
    claim_retention: Duration,
    dead_letter_limit: usize,
    deleted_runner_retention: Duration,
}

#[derive(Default)]
struct State {
    targets: HashMap<TargetId, Target>,
    jobs: BTreeMap<u64, QueuedJob>,
    job_positions: HashMap<JobId, u64>,
    next_position: u64,
    next_receipt: u64,
    runners: HashMap<RunnerId, Runner>,
    locks: HashMap<String, HeldLock>,
    launch_claims: HashMap<JobId, LaunchClaim>,
    /// Completed claims, oldest first, for forgetting them after the deduplication window.
    completed_claims: VecDeque<(Instant, JobId)>,
    /// Ids of jobs enqueued within the deduplication window, oldest first.
    recent_jobs: VecDeque<(Instant, JobId)>,
    recent_job_ids: HashMap<JobId, Instant>,
    /// Dead letters, oldest first, at most `dead_letter_limit`.
    dead_letters: VecDeque<DeadLetter>,
    /// Held slots per pool: holder and expiry.
    slots: HashMap<String, HashMap<String, Instant>>,
    /// Deleted runner records, oldest deletion first, for forgetting them after the
    /// retention.
    deleted_runners: VecDeque<(Instant, RunnerId)>,
    /// Sizes at which expired claims and locks are next swept out.
    claims_sweep_at: usize,
    locks_sweep_at: usize,
}

/// Size below which expired claims and locks are left for their next access.
const SWEEP_FLOOR: usize = 1024;

struct QueuedJob {
    job: Job,
    visible_at: Instant,
    receipt: Option<u64>,
    receive_count: u32,
}

struct HeldLock {
    lease: LockLease,
    expires: Instant,
}

struct LaunchClaim {
    owner: String,
    expires: Instant,
    completed: bool,
}

/// Builder for [`MemoryDatastore`] options.
#[derive(Debug, Clone)]
pub struct MemoryDatastoreBuilder {
    visibility_timeout: Duration,
    dedup_window: Duration,
    claim_retention: Duration,
    dead_letter_limit: usize,
    deleted_runner_retention: Duration,
}

impl MemoryDatastoreBuilder {
    /// Sets how long a received job stays invisible before it can be received again
    /// (default 300 seconds).
    pub fn with_visibility_timeout(mut self, timeout: Duration) -> Self {
        self.visibility_timeout = timeout;
        self
    }

    /// Sets how long an enqueued job id is remembered, so that enqueueing it again fails
    /// even after the job was deleted (default 24 hours). Zero remembers only queued jobs.
    pub fn with_dedup_window(mut self, window: Duration) -> Self {
        self.dedup_window = window;
        self
    }

    /// Sets how long a completed launch claim is remembered, so that claiming the same job
    /// attempt again fails with [`Error::AlreadyExists`] (default 24 hours).
    pub fn with_claim_retention(mut self, retention: Duration) -> Self {
        self.claim_retention = retention;
        self
    }

    /// Sets how many dead letters are kept, at least 1; the oldest are forgotten first
    /// (default 10,000).
    pub fn with_dead_letter_limit(mut self, limit: usize) -> Self {
        self.dead_letter_limit = limit.max(1);
        self
    }

    /// Sets how long a deleted runner record stays readable with
    /// [`Datastore::get_runner`] before it is forgotten (default 24 hours).
    pub fn with_deleted_runner_retention(mut self, retention: Duration) -> Self {
        self.deleted_runner_retention = retention;
        self
    }

    /// Builds the store.
    pub fn build(self) -> MemoryDatastore {
        MemoryDatastore {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                job_available: Notify::new(),
                visibility_timeout: self.visibility_timeout,
                dedup_window: self.dedup_window,
                claim_retention: self.claim_retention,
                dead_letter_limit: self.dead_letter_limit,
                deleted_runner_retention: self.deleted_runner_retention,
            }),
        }
    }
}

impl MemoryDatastore {
    /// Creates an empty store with the default visibility timeout.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Returns a builder for options.
    pub fn builder() -> MemoryDatastoreBuilder {
        MemoryDatastoreBuilder {
            visibility_timeout: DEFAULT_VISIBILITY_TIMEOUT,
            dedup_window: DEFAULT_DEDUP_WINDOW,
            claim_retention: DEFAULT_DEDUP_WINDOW,
            dead_letter_limit: DEFAULT_DEAD_LETTER_LIMIT,
            deleted_runner_retention: DEFAULT_DEDUP_WINDOW,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held cannot leave the maps half-updated in a way that
        // matters more than losing the whole store, so keep serving.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for MemoryDatastore {
    /// Same as [`MemoryDatastore::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryDatastore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("MemoryDatastore")
            .field("targets", &state.targets.len())
            .field("jobs", &state.jobs.len())
            .field("runners", &state.runners.len())
            .field("visibility_timeout", &self.inner.visibility_timeout)
            .field("dedup_window", &self.inner.dedup_window)
            .finish()
    }
}

impl fmt::Display for MemoryDatastore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MemoryDatastore")
    }
}

impl State {
    fn target_mut(&mut self, id: TargetId) -> Result<&mut Target> {
        self.targets
            .get_mut(&id)
            .ok_or_else(|| Error::not_found(RecordKind::Target, id))
    }

    fn live_target_with_scope(&self, host: &GitHubHost, scope: &Scope) -> Option<&Target> {
        self.targets.values().find(|target| {
            target.status != TargetStatus::Deleted && target.host == *host && target.scope == *scope
        })
    }

    /// Finds the queued job an acknowledgement handle refers to, checking that the handle
    /// comes from the latest receive.
    fn acked_position(&self, ack: &AckHandle) -> Result<u64> {
        let job_id = ack.job_id();
        let not_found = || Error::not_found(RecordKind::Job, job_id);
        let (position, receipt) = ack.token().split_once(':').ok_or_else(not_found)?;
        let position: u64 = position.parse().map_err(|_| not_found())?;
        let receipt: u64 = receipt.parse().map_err(|_| not_found())?;
        let queued = self.jobs.get(&position).ok_or_else(not_found)?;
        if queued.job.id != job_id {
            return Err(not_found());
        }
        if queued.receipt != Some(receipt) {
            return Err(Error::conflict(
                RecordKind::Job,
                job_id,
                "the acknowledgement handle is from an earlier receive; the job was received again or returned for retry",
            ));
        }
        Ok(position)
    }

    fn take_visible_jobs(
        &mut self,
        max: usize,
        now: Instant,
        visibility: Duration,
    ) -> Vec<ReceivedJob> {
        let mut received = Vec::new();
        for (position, queued) in self.jobs.iter_mut() {
            if received.len() == max {
                break;
            }
            if queued.visible_at > now {
                continue;
            }
            self.next_receipt += 1;
            queued.receipt = Some(self.next_receipt);
            queued.visible_at = instant_after(now, visibility);
            let mut job = queued.job.clone();
            job.attempt = job.attempt.saturating_add(queued.receive_count);
            queued.receive_count += 1;
            received.push(ReceivedJob {
                job,
                ack: AckHandle::new(queued.job.id, format!("{position}:{}", self.next_receipt)),
            });
        }
        received
    }

    /// Forgets job ids enqueued longer ago than `window`.
    fn prune_recent_jobs(&mut self, now: Instant, window: Duration) {
        while let Some((enqueued_at, job_id)) = self.recent_jobs.front().copied() {
            if now.saturating_duration_since(enqueued_at) < window {
                break;
            }
            self.recent_jobs.pop_front();
            if self.recent_job_ids.get(&job_id) == Some(&enqueued_at) {
                self.recent_job_ids.remove(&job_id);
            }
        }
    }

    fn next_visible_at(&self) -> Option<Instant> {
        self.jobs.values().map(|queued| queued.visible_at).min()
    }

    /// Forgets completed launch claims older than `window`, and, whenever the map has
    /// doubled since the last sweep, claims that expired without completion.
    fn prune_completed_claims(&mut self, now: Instant, window: Duration) {
        while let Some((completed_at, job_id)) = self.completed_claims.front().copied() {
            if now.saturating_duration_since(completed_at) < window {
                break;
            }
            self.completed_claims.pop_front();
            if self
                .launch_claims
                .get(&job_id)
                .is_some_and(|claim| claim.completed)
            {
                self.launch_claims.remove(&job_id);
            }
        }
        if self.launch_claims.len() >= self.claims_sweep_at.max(SWEEP_FLOOR) {
            self.launch_claims
                .retain(|_, claim| claim.completed || claim.expires > now);
            self.claims_sweep_at = self.launch_claims.len() * 2;
        }
    }

    /// Forgets deleted runner records older than `retention`.
    fn prune_deleted_runners(&mut self, now: Instant, retention: Duration) {
        while let Some((deleted_at, id)) = self.deleted_runners.front().copied() {
            if now.saturating_duration_since(deleted_at) < retention {
                break;
            }
            self.deleted_runners.pop_front();
            self.runners.remove(&id);
        }
    }

    /// Forgets expired locks whenever the map has doubled since the last sweep.
    fn prune_locks(&mut self, now: Instant) {
        if self.locks.len() >= self.locks_sweep_at.max(SWEEP_FLOOR) {
            self.locks.retain(|_, held| held.expires > now);
            self.locks_sweep_at = self.locks.len() * 2;
        }
    }

    fn live_lock(&mut self, name: &str, now: Instant) -> Option<&HeldLock> {
        if self.locks.get(name).is_some_and(|held| held.expires <= now) {
            self.locks.remove(name);
        }
        self.locks.get(name)
    }
}

/// Returns `now + duration`, saturating at about a century for durations that would
/// overflow `Instant`.
fn instant_after(now: Instant, duration: Duration) -> Instant {
    now.checked_add(duration)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

fn sorted_by_creation<T>(mut items: Vec<T>, created_at: impl Fn(&T) -> DateTime<Utc>) -> Vec<T> {
    items.sort_by_key(|item| created_at(item));
    items
}

#[async_trait]
impl Datastore for MemoryDatastore {
    async fn create_target(&self, target: &Target) -> Result<()> {
        let mut state = self.state();
        if state.targets.contains_key(&target.id) {
            return Err(Error::already_exists(RecordKind::Target, target.id));
        }
        if target.status != TargetStatus::Deleted {
            if let Some(existing) = state.live_target_with_scope(&target.host, &target.scope) {
                return Err(Error::already_exists(
                    RecordKind::Target,
                    format!(
                        "{} (scope {} on {})",
                        existing.id, target.scope, target.host
                    ),
                ));
            }
        }
        state.targets.insert(target.id, target.clone());
        Ok(())
    }

    async fn get_target(&self, id: TargetId) -> Result<Target> {
        self.state()
            .targets
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found(RecordKind::Target, id))
    }

    async fn get_target_by_scope(&self, host: &GitHubHost, scope: &Scope) -> Result<Target> {
        self.state()
            .live_target_with_scope(host, scope)
            .cloned()
            .ok_or_else(|| Error::not_found(RecordKind::Target, format!("{scope} on {host}")))
    }

    async fn list_targets(&self) -> Result<Vec<Target>> {
        let targets = self.state().targets.values().cloned().collect();
        Ok(sorted_by_creation(targets, |target| target.created_at))
    }

    async fn delete_target(&self, id: TargetId) -> Result<()> {
        let mut state = self.state();
        let target = state.target_mut(id)?;
        if target.status != TargetStatus::Deleted {
            target.status = TargetStatus::Deleted;
            target.updated_at = Utc::now();
        }
        Ok(())
    }

    async fn update_target_status(
        &self,
        id: TargetId,
        status: TargetStatus,
        description: Option<&str>,
    ) -> Result<()> {
        let mut state = self.state();
        let current = state.target_mut(id)?.clone();
        if current.status == TargetStatus::Deleted && status != TargetStatus::Deleted {
            if let Some(other) = state.live_target_with_scope(&current.host, &current.scope) {
                return Err(Error::conflict(
                    RecordKind::Target,
                    id,
                    format!(
                        "target {} already serves scope {} on {}; delete it before restoring this one",
                        other.id, current.scope, current.host
                    ),
                ));
            }
        }
        let target = state.target_mut(id)?;
        target.status = status;
        target.status_description = description.map(str::to_owned);
        target.updated_at = Utc::now();
        Ok(())
    }

    async fn update_target_resource_type(
        &self,
        id: TargetId,
        resource_type: ResourceType,
    ) -> Result<()> {
        let mut state = self.state();
        let target = state.target_mut(id)?;
        target.resource_type = resource_type;
        target.updated_at = Utc::now();
        Ok(())
    }

    async fn enqueue_job(&self, job: &Job) -> Result<()> {
        {
            let now = Instant::now();
            let mut state = self.state();
            state.prune_recent_jobs(now, self.inner.dedup_window);
            if state.job_positions.contains_key(&job.id)
                || state.recent_job_ids.contains_key(&job.id)
            {
                return Err(Error::already_exists(RecordKind::Job, job.id));
            }
            if !self.inner.dedup_window.is_zero() {
                state.recent_jobs.push_back((now, job.id));
                state.recent_job_ids.insert(job.id, now);
            }
            let position = state.next_position;
            state.next_position += 1;
            state.job_positions.insert(job.id, position);
            state.jobs.insert(
                position,
                QueuedJob {
                    job: job.clone(),
                    visible_at: now,
                    receipt: None,
                    receive_count: 0,
                },
            );
        }
        self.inner.job_available.notify_waiters();
        Ok(())
    }

    async fn receive_jobs(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedJob>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let deadline = instant_after(Instant::now(), wait);
        loop {
            // Register for the wake-up before looking, so an enqueue between the look and the
            // wait is not missed.
            let notified = self.inner.job_available.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();

            let now = Instant::now();
            let next_visible = {
                let mut state = self.state();
                let received = state.take_visible_jobs(max, now, self.inner.visibility_timeout);
                if !received.is_empty() {
                    return Ok(received);
                }
                state.next_visible_at()
            };
            if now >= deadline {
                return Ok(Vec::new());
            }
            let wake_at = next_visible.map_or(deadline, |at| at.min(deadline));
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(wake_at) => {}
            }
        }
    }

    async fn list_jobs(&self) -> Result<Vec<Job>> {
        Ok(self
            .state()
            .jobs
            .values()
            .map(|queued| queued.job.clone())
            .collect())
    }

    async fn delete_job(&self, ack: &AckHandle) -> Result<()> {
        let mut state = self.state();
        let position = state.acked_position(ack)?;
        state.jobs.remove(&position);
        state.job_positions.remove(&ack.job_id());
        Ok(())
    }

    async fn retry_job(&self, ack: &AckHandle, delay: Duration) -> Result<()> {
        {
            let mut state = self.state();
            let position = state.acked_position(ack)?;
            if let Some(queued) = state.jobs.get_mut(&position) {
                queued.receipt = None;
                queued.visible_at = instant_after(Instant::now(), delay);
            }
        }
        // A waiting receiver recomputes its wake-up time from the new visibility.
        self.inner.job_available.notify_waiters();
        Ok(())
    }

    async fn create_runner(&self, runner: &Runner) -> Result<()> {
        let mut state = self.state();
        if state.runners.contains_key(&runner.id) {
            return Err(Error::already_exists(RecordKind::Runner, runner.id));
        }
        state.runners.insert(runner.id, runner.clone());
        Ok(())
    }

    async fn get_runner(&self, id: RunnerId) -> Result<Runner> {
        self.state()
            .runners
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found(RecordKind::Runner, id))
    }

    async fn list_runners(&self) -> Result<Vec<Runner>> {
        let runners = self
            .state()
            .runners
            .values()
            .filter(|runner| runner.status != RunnerStatus::Deleted)
            .cloned()
            .collect();
        Ok(sorted_by_creation(runners, |runner| runner.created_at))
    }

    async fn list_runners_by_target(&self, target_id: TargetId) -> Result<Vec<Runner>> {
        let runners = self
            .state()
            .runners
            .values()
            .filter(|runner| {
                runner.status != RunnerStatus::Deleted && runner.target_id == target_id
            })
            .cloned()
            .collect();
        Ok(sorted_by_creation(runners, |runner| runner.created_at))
    }

    async fn delete_runner(
        &self,
        id: RunnerId,
        reason: &str,
        deleted_at: DateTime<Utc>,
    ) -> Result<()> {
        let mut state = self.state();
        let runner = state
            .runners
            .get_mut(&id)
            .ok_or_else(|| Error::not_found(RecordKind::Runner, id))?;
        if runner.status != RunnerStatus::Deleted {
            runner.status = RunnerStatus::Deleted;
            runner.deletion_reason = Some(reason.to_owned());
            runner.deleted_at = Some(deleted_at);
            let now = Instant::now();
            state.deleted_runners.push_back((now, id));
            state.prune_deleted_runners(now, self.inner.deleted_runner_retention);
        }
        Ok(())
    }

    async fn acquire_lock(&self, name: &str, owner: &str, lease: Duration) -> Result<LockLease> {
        let now = Instant::now();
        let mut state = self.state();
        state.prune_locks(now);
        if let Some(held) = state.live_lock(name, now) {
            if held.lease.owner != owner {
                return Err(Error::conflict(
                    RecordKind::Lock,
                    name,
                    format!(
                        "held by {} until {}",
                        held.lease.owner, held.lease.expires_at
                    ),
                ));
            }
        }
        let expires_at = chrono::Duration::from_std(lease)
            .ok()
            .and_then(|lease| Utc::now().checked_add_signed(lease))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let lease_record = LockLease {
            name: name.to_owned(),
            owner: owner.to_owned(),
            expires_at,
        };
        state.locks.insert(
            name.to_owned(),
            HeldLock {
                lease: lease_record.clone(),
                expires: instant_after(now, lease),
            },
        );
        Ok(lease_record)
    }

    async fn lock_holder(&self, name: &str) -> Result<Option<LockLease>> {
        let now = Instant::now();
        Ok(self
            .state()
            .live_lock(name, now)
            .map(|held| held.lease.clone()))
    }

    async fn release_lock(&self, name: &str, owner: &str) -> Result<()> {
        let now = Instant::now();
        let mut state = self.state();
        match state.live_lock(name, now) {
            None => Ok(()),
            Some(held) if held.lease.owner == owner => {
                state.locks.remove(name);
                Ok(())
            }
            Some(held) => Err(Error::conflict(
                RecordKind::Lock,
                name,
                format!("held by {}, not by {owner}", held.lease.owner),
            )),
        }
    }

    async fn claim_launch(&self, job_id: JobId, owner: &str, lease: Duration) -> Result<()> {
        let now = Instant::now();
        let mut state = self.state();
        state.prune_completed_claims(now, self.inner.claim_retention);
        if let Some(claim) = state.launch_claims.get(&job_id) {
            if claim.completed {
                return Err(Error::already_exists(RecordKind::Launch, job_id));
            }
            if claim.owner != owner && claim.expires > now {
                return Err(Error::conflict(
                    RecordKind::Launch,
                    job_id,
                    format!("{} is launching this job", claim.owner),
                ));
            }
        }
        state.launch_claims.insert(
            job_id,
            LaunchClaim {
                owner: owner.to_owned(),
                expires: instant_after(now, lease),
                completed: false,
            },
        );
        Ok(())
    }

    async fn complete_launch(&self, job_id: JobId, owner: &str) -> Result<()> {
        let now = Instant::now();
        let mut state = self.state();
        let Some(claim) = state.launch_claims.get_mut(&job_id) else {
            return Err(Error::conflict(
                RecordKind::Launch,
                job_id,
                "no claim to complete",
            ));
        };
        if claim.owner != owner {
            return Err(Error::conflict(
                RecordKind::Launch,
                job_id,
                format!("claimed by {}, not by {owner}", claim.owner),
            ));
        }
        if claim.completed {
            return Ok(());
        }
        if claim.expires <= now {
            return Err(Error::conflict(
                RecordKind::Launch,
                job_id,
                "the claim expired",
            ));
        }
        claim.completed = true;
        state.completed_claims.push_back((now, job_id));
        Ok(())
    }

    async fn release_launch(&self, job_id: JobId, owner: &str) -> Result<()> {
        let now = Instant::now();
        let mut state = self.state();
        match state.launch_claims.get(&job_id) {
            None => Ok(()),
            Some(claim) if claim.completed => Err(Error::conflict(
                RecordKind::Launch,
                job_id,
                "the launch was completed and cannot be released",
            )),
            Some(claim) if claim.owner != owner && claim.expires > now => Err(Error::conflict(
                RecordKind::Launch,
                job_id,
                format!("claimed by {}, not by {owner}", claim.owner),
            )),
            Some(_) => {
                state.launch_claims.remove(&job_id);
                Ok(())
            }
        }
    }

    async fn defer_job(&self, ack: &AckHandle, delay: Duration) -> Result<()> {
        {
            let mut state = self.state();
            let position = state.acked_position(ack)?;
            if let Some(queued) = state.jobs.get_mut(&position) {
                queued.receipt = None;
                queued.visible_at = instant_after(Instant::now(), delay);
                queued.receive_count = queued.receive_count.saturating_sub(1);
            }
        }
        self.inner.job_available.notify_waiters();
        Ok(())
    }

    async fn set_runner_github_id(&self, id: RunnerId, github_runner_id: u64) -> Result<()> {
        let mut state = self.state();
        let runner = state
            .runners
            .get_mut(&id)
            .ok_or_else(|| Error::not_found(RecordKind::Runner, id))?;
        runner.github_runner_id = Some(github_runner_id);
        Ok(())
    }

    async fn dead_letter_job(&self, ack: &AckHandle, reason: &str) -> Result<()> {
        let mut state = self.state();
        let position = state.acked_position(ack)?;
        let Some(queued) = state.jobs.remove(&position) else {
            return Err(Error::not_found(RecordKind::Job, ack.job_id()));
        };
        let mut job = queued.job;
        // The attempt as the last receive reported it.
        job.attempt = job
            .attempt
            .saturating_add(queued.receive_count.saturating_sub(1));
        state.job_positions.remove(&ack.job_id());
        // The job got no runner, so a later delivery of it (a manual redelivery once the
        // cause is fixed) must be enqueued again rather than taken for a duplicate.
        state.recent_job_ids.remove(&ack.job_id());
        while state.dead_letters.len() >= self.inner.dead_letter_limit {
            state.dead_letters.pop_front();
        }
        state.dead_letters.push_back(DeadLetter {
            job,
            reason: reason.to_owned(),
            dead_lettered_at: Utc::now(),
        });
        Ok(())
    }

    async fn list_dead_letters(&self) -> Result<Vec<DeadLetter>> {
        Ok(self.state().dead_letters.iter().cloned().collect())
    }

    async fn acquire_slot(
        &self,
        pool: &str,
        capacity: u32,
        holder: &str,
        lease: Duration,
    ) -> Result<()> {
        let now = Instant::now();
        let mut state = self.state();
        let holders = state.slots.entry(pool.to_owned()).or_default();
        holders.retain(|_, expires| *expires > now);
        if !holders.contains_key(holder) && holders.len() >= capacity as usize {
            return Err(Error::conflict(
                RecordKind::Slot,
                pool,
                format!("all {capacity} slots are held ({} holders)", holders.len()),
            ));
        }
        holders.insert(holder.to_owned(), instant_after(now, lease));
        Ok(())
    }

    async fn release_slot(&self, pool: &str, holder: &str) -> Result<()> {
        let mut state = self.state();
        if let Some(holders) = state.slots.get_mut(pool) {
            holders.remove(holder);
            if holders.is_empty() {
                state.slots.remove(pool);
            }
        }
        Ok(())
    }

    async fn count_slots(&self, pool: &str) -> Result<u32> {
        let now = Instant::now();
        let state = self.state();
        let held = state.slots.get(pool).map_or(0, |holders| {
            holders.values().filter(|expires| **expires > now).count()
        });
        Ok(u32::try_from(held).unwrap_or(u32::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datastore::conformance::sample_job;

    #[tokio::test]
    async fn default_matches_new() {
        let store = MemoryDatastore::default();
        let job = sample_job(TargetId::new_random());
        store.enqueue_job(&job).await.unwrap();

        let received = store.receive_jobs(1, Duration::ZERO).await.unwrap();
        assert_eq!(received.len(), 1);
        let again = store.receive_jobs(1, Duration::ZERO).await.unwrap();
        assert!(
            again.is_empty(),
            "default() must keep the visibility timeout of new()"
        );

        store.delete_job(&received[0].ack).await.unwrap();
        let duplicate = store.enqueue_job(&job).await;
        assert!(
            matches!(duplicate, Err(Error::AlreadyExists { .. })),
            "default() must keep the deduplication window of new()"
        );
    }

    #[tokio::test]
    async fn abandoned_claims_and_expired_locks_are_swept_out() {
        let store = MemoryDatastore::new();
        for _ in 0..5000 {
            store
                .claim_launch(JobId::new_random(), "gone", Duration::ZERO)
                .await
                .unwrap();
            let name = format!("lock-{}", uuid::Uuid::new_v4().simple());
            store
                .acquire_lock(&name, "gone", Duration::ZERO)
                .await
                .unwrap();
        }
        let state = store.state();
        assert!(
            state.launch_claims.len() <= 2 * SWEEP_FLOOR,
            "{} abandoned claims kept",
            state.launch_claims.len()
        );
        assert!(
            state.locks.len() <= 2 * SWEEP_FLOOR,
            "{} expired locks kept",
            state.locks.len()
        );
    }

    #[tokio::test]
    async fn deleted_runners_are_forgotten_after_the_retention() {
        let store = MemoryDatastore::builder()
            .with_deleted_runner_retention(Duration::ZERO)
            .build();
        let first = crate::datastore::conformance::sample_runner(TargetId::new_random());
        let second = crate::datastore::conformance::sample_runner(TargetId::new_random());
        for runner in [&first, &second] {
            store.create_runner(runner).await.unwrap();
            store
                .delete_runner(runner.id, "test", Utc::now())
                .await
                .unwrap();
        }
        assert!(store.get_runner(first.id).await.unwrap_err().is_not_found());
        assert!(store
            .get_runner(second.id)
            .await
            .unwrap_err()
            .is_not_found());

        let kept = MemoryDatastore::new();
        kept.create_runner(&first).await.unwrap();
        kept.delete_runner(first.id, "test", Utc::now())
            .await
            .unwrap();
        assert_eq!(
            kept.get_runner(first.id).await.unwrap().status,
            RunnerStatus::Deleted,
            "the default keeps deleted records for a day"
        );
    }

    #[tokio::test]
    async fn dead_lettered_job_can_be_enqueued_again() {
        let store = MemoryDatastore::new();
        let job = sample_job(TargetId::new_random());
        store.enqueue_job(&job).await.unwrap();
        let received = store.receive_jobs(1, Duration::ZERO).await.unwrap();
        store
            .dead_letter_job(&received[0].ack, "no profile")
            .await
            .unwrap();
        store
            .enqueue_job(&job)
            .await
            .expect("a redelivery after a dead letter is a new chance, not a duplicate");
    }
}
