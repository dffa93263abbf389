//! Finds runners that are done, stuck or leaked, and removes them.
//!
//! [`Sweeper::sweep`] reconciles three views in one pass:
//!
//! - the Datastore's runner records (what the dispatcher launched),
//! - the Stadium's live instances ([`Stadium::list_instances`]; a Stadium without it
//!   leaves the pass to records and GitHub),
//! - GitHub's self-hosted runners of each target, when a [`GitHubApi`] is given.
//!
//! Each record gets one [`SweepDecision`]. The rules, in order:
//!
//! 1. Older than [`SweeperConfig::max_lifetime`]: delete, busy or not.
//! 2. Instance gone: delete the record (and deregister the GitHub runner unless it is
//!    busy).
//! 3. GitHub reports the runner busy, or an `in_progress` webhook named it and no `completed`
//!    followed ([`record_runner_activity`]): keep.
//! 4. Registered and offline: keep during the boot grace, then delete.
//! 5. Registered and idle: keep for the minimum idle lifetime, then deregister, read the
//!    runner again, and keep the instance if it turned busy; otherwise delete.
//! 6. Not registered: keep during the boot grace, then delete. Gone from GitHub after it
//!    was registered (an ephemeral runner that finished its job): delete.
//! 7. GitHub's view could not be read: keep.
//!
//! GitHub runners are matched to records by the runner id stored on the record
//! ([`Runner::github_runner_id`]). A record without one is matched once by its exact
//! runner name, and the id is stored. A runner missing from GitHub's list is confirmed
//! with a lookup by id before it counts as gone.
//!
//! Instances without a record get the boot grace (the dispatcher writes the record right
//! after the launch) and are deleted afterwards unless a webhook shows their runner busy.
//!
//! Deleting a record gives back the runner's slots under the profile and target limits
//! (see [`DispatcherConfig::max_runners_per_target`](crate::dispatcher::DispatcherConfig::max_runners_per_target)),
//! so waiting jobs can launch. Every decision is logged with the runner id, name, cloud id
//! and reason, and counted in `myshoes_sweeper_decisions_total`; deletions also in
//! `myshoes_sweeper_deletions_total`.

mod decision;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::datastore::{Datastore, Error as DatastoreError};
use crate::dispatcher::{profile_pool, target_pool};
use crate::github::{GitHubApi, GitHubRunner, Installation};
use crate::model::{Runner, TargetId};
use crate::runner_name::is_own_runner_name;
use crate::stadium::{Error as StadiumError, ListedInstance, Stadium};
use crate::webhook::RunnerActivity;
use crate::ErrorChain;

pub use decision::{SweepAction, SweepDecision, SweepReason, SweepReport};

/// Name of the lock a sweep pass holds, so that two sweepers never work at once.
pub const SWEEP_LOCK: &str = "myshoes-sweeper";

/// Returns the name of the lock that records a webhook's evidence that `runner_name` runs
/// a job.
pub fn activity_lock(runner_name: &str) -> String {
    format!("runner-busy/{runner_name}")
}

/// Records what a webhook said about a runner: `in_progress` takes the runner's activity
/// lock for `lease` (owned by the workflow job id), `completed` releases it. The sweeper
/// keeps a runner whose activity lock is held.
///
/// # Errors
///
/// The Datastore's error. A `completed` event for a job other than the one holding the
/// lock changes nothing and succeeds.
pub async fn record_runner_activity(
    datastore: &dyn Datastore,
    activity: &RunnerActivity,
    lease: Duration,
) -> Result<(), DatastoreError> {
    let lock = activity_lock(&activity.runner_name);
    let owner = activity.workflow_job_id.to_string();
    if activity.busy {
        datastore.acquire_lock(&lock, &owner, lease).await?;
        return Ok(());
    }
    match datastore.release_lock(&lock, &owner).await {
        Ok(()) | Err(DatastoreError::Conflict { .. }) => Ok(()),
        Err(error) => Err(error),
    }
}

/// Settings of a [`Sweeper`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SweeperConfig {
    /// Prefix of this deployment's runner names; instances and GitHub runners with another
    /// prefix are never touched.
    pub runner_name_prefix: String,
    /// Time from launch during which a runner that has not registered, or is offline, is
    /// left alone.
    pub boot_grace: Duration,
    /// Time from launch before an idle runner may be reclaimed; GitHub may assign a job
    /// tens of seconds after a runner comes online.
    pub min_idle_lifetime: Duration,
    /// Time from launch after which any instance is stopped, busy or not.
    pub max_lifetime: Duration,
    /// Owner name under which the sweeper takes [`SWEEP_LOCK`]. Unique per process.
    pub owner_id: String,
    /// How long the sweep lock lasts if a pass dies; keep it above the longest pass.
    pub lock_lease: Duration,
}

impl Default for SweeperConfig {
    /// Prefix `myshoes`, 10-minute boot grace, 10-minute minimum idle lifetime, 24-hour
    /// maximum lifetime, a random owner id and a 5-minute lock.
    fn default() -> Self {
        Self {
            runner_name_prefix: "myshoes".to_owned(),
            boot_grace: Duration::from_secs(600),
            min_idle_lifetime: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(24 * 3600),
            owner_id: format!("sweeper-{}", uuid::Uuid::new_v4().simple()),
            lock_lease: Duration::from_secs(300),
        }
    }
}

/// Error that ends a whole sweep pass. Failures on single runners do not; they are in the
/// [`SweepReport`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SweepError {
    /// Another sweeper holds the sweep lock.
    #[error("another sweeper holds the sweep lock ({holder}); this pass is skipped")]
    Busy {
        /// Owner of the lock.
        holder: String,
    },
    /// Reading the runner records failed.
    #[error("failed to list runner records; nothing was swept")]
    ListRunners(#[source] DatastoreError),
    /// Listing the Stadium's instances failed (other than `NotSupported`).
    #[error("failed to list the Stadium's instances; nothing was swept")]
    ListInstances(#[source] StadiumError),
    /// Taking the sweep lock failed.
    #[error("failed to take the sweep lock")]
    Lock(#[source] DatastoreError),
}

/// GitHub's view of one record's runner.
#[derive(Debug, Clone)]
enum GitHubState {
    /// No GitHub client, no installation id, or the calls failed.
    Unknown(String),
    /// Not registered (no id stored, and no runner with the exact name).
    NotRegistered,
    /// Registered once (id stored), and GitHub returns not found for the id.
    Gone,
    /// Registered.
    Present(GitHubRunner),
}

/// GitHub's runners of one target, listed once per pass.
struct TargetView {
    installation: Installation,
    scope: crate::model::Scope,
    by_id: HashMap<u64, GitHubRunner>,
    by_name: HashMap<String, GitHubRunner>,
}

/// Removes finished, stuck and leaked runners. See the [module docs](self).
pub struct Sweeper {
    datastore: Arc<dyn Datastore>,
    stadium: Arc<dyn Stadium>,
    github: Option<Arc<dyn GitHubApi>>,
    config: SweeperConfig,
    /// When each instance without a record and without a start time was first seen.
    first_seen: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl fmt::Debug for Sweeper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sweeper")
            .field("datastore", &self.datastore.to_string())
            .field("stadium", &self.stadium.to_string())
            .field("github", &self.github.is_some())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Sweeper {
    /// Creates a sweeper. Without `github`, runners are judged by their records and
    /// instances alone: idle and offline runners are then only reclaimed at the maximum
    /// lifetime.
    pub fn new(
        datastore: Arc<dyn Datastore>,
        stadium: Arc<dyn Stadium>,
        github: Option<Arc<dyn GitHubApi>>,
        config: SweeperConfig,
    ) -> Self {
        Self {
            datastore,
            stadium,
            github,
            config,
            first_seen: Mutex::new(HashMap::new()),
        }
    }

    /// Returns the settings.
    pub fn config(&self) -> &SweeperConfig {
        &self.config
    }

    /// Runs [`Sweeper::sweep`] every `interval` until `shutdown` completes, logging each
    /// pass's failure.
    pub async fn run_until(&self, interval: Duration, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = ticker.tick() => {}
            }
            match self.sweep().await {
                Ok(report) => tracing::debug!(
                    kept = report.kept(),
                    deleted = report.deleted(),
                    failed = report.failures.len(),
                    "sweep pass finished"
                ),
                Err(error) => tracing::warn!(error = %ErrorChain(&error), "sweep pass failed"),
            }
        }
    }

    /// Runs one pass and returns every decision it made.
    ///
    /// # Errors
    ///
    /// [`SweepError`] when the pass could not start: the lock is held elsewhere, or the
    /// records or instances could not be listed.
    pub async fn sweep(&self) -> Result<SweepReport, SweepError> {
        match self
            .datastore
            .acquire_lock(SWEEP_LOCK, &self.config.owner_id, self.config.lock_lease)
            .await
        {
            Ok(_) => {}
            Err(DatastoreError::Conflict { .. }) => {
                let holder = match self.datastore.lock_holder(SWEEP_LOCK).await {
                    Ok(Some(lease)) => lease.owner,
                    _ => "unknown".to_owned(),
                };
                return Err(SweepError::Busy { holder });
            }
            Err(error) => return Err(SweepError::Lock(error)),
        }
        let result = self.sweep_locked().await;
        if let Err(error) = self
            .datastore
            .release_lock(SWEEP_LOCK, &self.config.owner_id)
            .await
        {
            tracing::warn!(error = %ErrorChain(&error), "failed to release the sweep lock; it expires after its lease");
        }
        result
    }

    async fn sweep_locked(&self) -> Result<SweepReport, SweepError> {
        let now = Utc::now();
        let records = self
            .datastore
            .list_runners()
            .await
            .map_err(SweepError::ListRunners)?;
        let instances: Option<HashMap<String, ListedInstance>> =
            match self.stadium.list_instances().await {
                Ok(listed) => Some(
                    listed
                        .into_iter()
                        .map(|instance| (instance.cloud_id.clone(), instance))
                        .collect(),
                ),
                Err(StadiumError::NotSupported { .. }) => None,
                Err(error) => return Err(SweepError::ListInstances(error)),
            };

        let mut report = SweepReport::default();
        let mut views: HashMap<TargetId, Result<TargetView, String>> = HashMap::new();
        for record in &records {
            let decision = self
                .judge_record(record, instances.as_ref(), &mut views, now)
                .await;
            self.finish(decision, &mut report).await;
        }

        if let Some(instances) = &instances {
            let recorded: HashSet<&str> = records.iter().map(|r| r.cloud_id.as_str()).collect();
            let orphans: Vec<&ListedInstance> = instances
                .values()
                .filter(|instance| !recorded.contains(instance.cloud_id.as_str()))
                .collect();
            self.forget_first_seen(instances);
            for instance in orphans {
                let decision = self.judge_orphan(instance, now).await;
                self.finish(decision, &mut report).await;
            }
        }
        Ok(report)
    }

    /// Drops first-seen times of instances that are no longer listed.
    fn forget_first_seen(&self, instances: &HashMap<String, ListedInstance>) {
        let mut first_seen = self
            .first_seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        first_seen.retain(|cloud_id, _| instances.contains_key(cloud_id));
    }

    /// Logs and counts a decision, applies it, and adds it to the report.
    async fn finish(&self, mut decision: SweepDecision, report: &mut SweepReport) {
        if decision.action == SweepAction::Delete {
            if let Err(failure) = self.apply_delete(&mut decision).await {
                tracing::warn!(
                    runner_id = ?decision.runner_id,
                    runner_name = ?decision.runner_name,
                    cloud_id = %decision.cloud_id,
                    github_runner_id = ?decision.github_runner_id,
                    reason = %decision.reason,
                    error = %failure,
                    "sweeper failed to delete a runner; it is tried again next pass"
                );
                metrics::counter!("myshoes_sweeper_failures_total", "reason" => decision.reason.label())
                    .increment(1);
                report.failures.push((decision, failure));
                return;
            }
            metrics::counter!("myshoes_sweeper_deletions_total", "reason" => decision.reason.label())
                .increment(1);
        }
        metrics::counter!(
            "myshoes_sweeper_decisions_total",
            "action" => decision.action.label(),
            "reason" => decision.reason.label()
        )
        .increment(1);
        tracing::info!(
            runner_id = ?decision.runner_id,
            runner_name = ?decision.runner_name,
            cloud_id = %decision.cloud_id,
            github_runner_id = ?decision.github_runner_id,
            action = decision.action.label(),
            reason = %decision.reason,
            "sweeper decision"
        );
        report.decisions.push(decision);
    }

    async fn judge_record(
        &self,
        record: &Runner,
        instances: Option<&HashMap<String, ListedInstance>>,
        views: &mut HashMap<TargetId, Result<TargetView, String>>,
        now: DateTime<Utc>,
    ) -> SweepDecision {
        let age = (now - record.created_at).to_std().unwrap_or_default();
        let instance_alive = instances.map(|listed| listed.contains_key(&record.cloud_id));
        let mut decision = SweepDecision::for_record(record, instance_alive);

        if age >= self.config.max_lifetime {
            // Deregister the GitHub runner too when it can be found, busy or not.
            if let GitHubState::Present(runner) = self.github_state(record, views).await {
                decision.github_runner_id = Some(runner.id);
                decision.github_busy = runner.busy;
                decision.github_registered = true;
            }
            return decision.delete(SweepReason::MaxLifetime);
        }

        let github = self.github_state(record, views).await;
        if let GitHubState::Present(runner) = &github {
            decision.github_runner_id = Some(runner.id);
            decision.github_busy = runner.busy;
            decision.github_registered = true;
        }

        if instance_alive == Some(false) {
            return match github {
                GitHubState::Present(runner) if runner.busy => {
                    decision.keep(SweepReason::BusyWithoutInstance)
                }
                _ => decision.delete(SweepReason::InstanceGone),
            };
        }

        if let GitHubState::Present(runner) = &github {
            if runner.busy {
                return decision.keep(SweepReason::Busy);
            }
        }
        match self.has_activity(&record.name).await {
            Ok(true) => return decision.keep(SweepReason::ActiveJobEvidence),
            Ok(false) => {}
            Err(error) => {
                return decision.keep(SweepReason::GitHubUnknown(format!(
                    "could not read the runner's activity lock: {}",
                    ErrorChain(&error)
                )))
            }
        }

        match github {
            GitHubState::Present(runner) if runner.status == "offline" => {
                if age < self.config.boot_grace {
                    decision.keep(SweepReason::Booting)
                } else {
                    decision.delete(SweepReason::Offline)
                }
            }
            GitHubState::Present(_) => {
                if age < self.config.min_idle_lifetime {
                    decision.keep(SweepReason::IdleTooShort)
                } else {
                    decision.delete(SweepReason::Idle)
                }
            }
            GitHubState::NotRegistered => {
                if age < self.config.boot_grace {
                    decision.keep(SweepReason::Booting)
                } else {
                    decision.delete(SweepReason::NeverRegistered)
                }
            }
            GitHubState::Gone => decision.delete(SweepReason::GoneFromGitHub),
            GitHubState::Unknown(why) => decision.keep(SweepReason::GitHubUnknown(why)),
        }
    }

    async fn judge_orphan(&self, instance: &ListedInstance, now: DateTime<Utc>) -> SweepDecision {
        let decision = SweepDecision::for_instance(instance);
        let Some(name) = instance.runner_name.as_deref() else {
            return decision.keep(SweepReason::ForeignInstance);
        };
        if !is_own_runner_name(&self.config.runner_name_prefix, name) {
            return decision.keep(SweepReason::ForeignInstance);
        }
        let started = instance.started_at.unwrap_or_else(|| {
            *self
                .first_seen
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .entry(instance.cloud_id.clone())
                .or_insert(now)
        });
        let age = (now - started).to_std().unwrap_or_default();
        if age >= self.config.max_lifetime {
            return decision.delete(SweepReason::MaxLifetime);
        }
        if age < self.config.boot_grace {
            return decision.keep(SweepReason::Booting);
        }
        match self.has_activity(name).await {
            Ok(true) => decision.keep(SweepReason::ActiveJobEvidence),
            Ok(false) => decision.delete(SweepReason::NoRecord),
            Err(error) => decision.keep(SweepReason::GitHubUnknown(format!(
                "could not read the runner's activity lock: {}",
                ErrorChain(&error)
            ))),
        }
    }

    async fn has_activity(&self, runner_name: &str) -> Result<bool, DatastoreError> {
        Ok(self
            .datastore
            .lock_holder(&activity_lock(runner_name))
            .await?
            .is_some())
    }

    /// Finds the record's runner on GitHub: by stored id, or once by exact name.
    async fn github_state(
        &self,
        record: &Runner,
        views: &mut HashMap<TargetId, Result<TargetView, String>>,
    ) -> GitHubState {
        let Some(github) = &self.github else {
            return GitHubState::Unknown("no GitHub client is configured".to_owned());
        };
        let Some(installation_id) = record.installation_id else {
            return GitHubState::Unknown("the record names no App installation".to_owned());
        };
        if let std::collections::hash_map::Entry::Vacant(slot) = views.entry(record.target_id) {
            slot.insert(
                self.target_view(github.as_ref(), record.target_id, installation_id)
                    .await,
            );
        }
        let view = match views.get(&record.target_id) {
            Some(Ok(view)) => view,
            Some(Err(why)) => return GitHubState::Unknown(why.clone()),
            None => return GitHubState::Unknown("target view missing".to_owned()),
        };
        if let Some(id) = record.github_runner_id {
            if let Some(runner) = view.by_id.get(&id) {
                return GitHubState::Present(runner.clone());
            }
            // Absence from the list is not proof; ask for the runner by id.
            return match github.get_runner(&view.installation, &view.scope, id).await {
                Ok(Some(runner)) => GitHubState::Present(runner),
                Ok(None) => GitHubState::Gone,
                Err(error) => GitHubState::Unknown(format!(
                    "failed to read runner {id}: {}",
                    ErrorChain(&error)
                )),
            };
        }
        match view.by_name.get(&record.name) {
            Some(runner) => {
                if let Err(error) = self
                    .datastore
                    .set_runner_github_id(record.id, runner.id)
                    .await
                {
                    tracing::warn!(
                        runner_id = %record.id,
                        github_runner_id = runner.id,
                        error = %ErrorChain(&error),
                        "failed to store the GitHub runner id"
                    );
                }
                GitHubState::Present(runner.clone())
            }
            None => GitHubState::NotRegistered,
        }
    }

    async fn target_view(
        &self,
        github: &dyn GitHubApi,
        target_id: TargetId,
        installation_id: u64,
    ) -> Result<TargetView, String> {
        let target = self
            .datastore
            .get_target(target_id)
            .await
            .map_err(|error| {
                format!("failed to read target {target_id}: {}", ErrorChain(&error))
            })?;
        let installation = Installation::new(target.host.clone(), installation_id);
        let runners = github
            .list_runners(&installation, &target.scope)
            .await
            .map_err(|error| {
                format!(
                    "failed to list GitHub runners of {}: {}",
                    target.scope,
                    ErrorChain(&error)
                )
            })?;
        let mut by_id = HashMap::new();
        let mut by_name = HashMap::new();
        for runner in runners {
            if is_own_runner_name(&self.config.runner_name_prefix, &runner.name) {
                by_name.insert(runner.name.clone(), runner.clone());
                by_id.insert(runner.id, runner);
            }
        }
        Ok(TargetView {
            installation,
            scope: target.scope,
            by_id,
            by_name,
        })
    }

    /// Deregisters, stops and forgets one runner. Turns the decision into a keep when the
    /// runner turned busy during deregistration.
    async fn apply_delete(&self, decision: &mut SweepDecision) -> Result<(), String> {
        let record = decision.record.clone();
        if let (Some(record), Some(github_runner_id), Some(github)) =
            (&record, decision.github_runner_id, &self.github)
        {
            let at_max_lifetime = decision.reason == SweepReason::MaxLifetime;
            if decision.github_registered && (!decision.github_busy || at_max_lifetime) {
                let target =
                    self.datastore
                        .get_target(record.target_id)
                        .await
                        .map_err(|error| {
                            format!("failed to read the target: {}", ErrorChain(&error))
                        })?;
                let installation =
                    Installation::new(target.host.clone(), record.installation_id.unwrap_or(0));
                match github
                    .delete_runner(&installation, &target.scope, github_runner_id)
                    .await
                {
                    Ok(()) => {}
                    Err(error) if at_max_lifetime => {
                        // The instance is stopped regardless; GitHub then shows the runner
                        // offline.
                        tracing::warn!(
                            github_runner_id,
                            error = %ErrorChain(&error),
                            "failed to deregister a runner at its maximum lifetime; stopping its instance anyway"
                        );
                    }
                    Err(error) if error.status() == Some(422) => {
                        // GitHub rejects the removal of a runner that is running a job.
                        *decision = decision.clone().keep(SweepReason::TurnedBusy);
                        return Ok(());
                    }
                    Err(error) => {
                        return Err(format!(
                            "failed to deregister GitHub runner {github_runner_id}: {}",
                            ErrorChain(&error)
                        ))
                    }
                }
                if decision.reason == SweepReason::Idle {
                    match github
                        .get_runner(&installation, &target.scope, github_runner_id)
                        .await
                    {
                        Ok(Some(runner)) if runner.busy => {
                            *decision = decision.clone().keep(SweepReason::TurnedBusy);
                            return Ok(());
                        }
                        Ok(_) => {}
                        Err(error) => {
                            return Err(format!(
                                "failed to read GitHub runner {github_runner_id} after deregistering it: {}",
                                ErrorChain(&error)
                            ))
                        }
                    }
                }
            }
        }

        if decision.instance_alive != Some(false) {
            self.stadium
                .delete_instance(&decision.cloud_id, &decision.labels)
                .await
                .map_err(|error| {
                    format!(
                        "failed to delete instance {}: {}",
                        decision.cloud_id,
                        ErrorChain(&error)
                    )
                })?;
        }

        if let Some(record) = &record {
            self.datastore
                .delete_runner(record.id, &decision.reason.to_string(), Utc::now())
                .await
                .map_err(|error| {
                    format!(
                        "failed to mark runner record {} deleted: {}",
                        record.id,
                        ErrorChain(&error)
                    )
                })?;
            let holder = record.job_id.to_string();
            let mut pools = vec![target_pool(record.target_id)];
            if !record.profile.is_empty() {
                pools.push(profile_pool(&record.profile));
            }
            for pool in pools {
                if let Err(error) = self.datastore.release_slot(&pool, &holder).await {
                    tracing::warn!(
                        pool,
                        runner_id = %record.id,
                        error = %ErrorChain(&error),
                        "failed to release a runner slot; it expires after its lease"
                    );
                }
            }
        }
        Ok(())
    }
}
