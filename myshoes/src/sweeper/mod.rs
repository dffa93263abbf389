//! Finds runners that are done, stuck or leaked, and removes them.
//!
//! [`Sweeper::sweep`] reconciles three views in one pass:
//!
//! - the Datastore's runner records (what the dispatcher launched),
//! - the Stadium's live instances ([`Stadium::list_instances`]; a Stadium without it
//!   leaves the pass to records and GitHub),
//! - GitHub's self-hosted runners of each target, when a [`GitHubApi`] is given.
//!
//! Each record, and each instance with this deployment's runner name prefix but no record,
//! gets one [`SweepDecision`]. Ages count from the launch. The rules, in order:
//!
//! 1. Older than [`SweeperConfig::max_lifetime`]: delete, busy or not.
//! 2. The Stadium no longer lists the instance: after the listing grace (a cloud listing
//!    may lag behind a launch), delete the record, and deregister the GitHub runner unless it is
//!    busy.
//! 3. GitHub reports the runner busy: keep. GitHub returns not found for a runner that was
//!    registered (an ephemeral runner after its job): delete.
//! 4. An `in_progress` webhook named the runner and no `completed` followed
//!    ([`record_runner_activity`]): keep.
//! 5. Registered and offline: keep during the boot grace, then delete.
//! 6. Registered and idle: keep for the minimum idle lifetime, then deregister, read the
//!    runner again, and keep the instance if it turned busy; otherwise delete.
//! 7. Not registered: keep during the boot grace, then delete.
//! 8. GitHub's view could not be read: keep. An instance without a record, for which
//!    GitHub cannot be asked at all (no client, or no target or installation on the
//!    instance), is deleted after the boot grace unless rule 4 keeps it.
//!
//! GitHub runners are matched by the runner id stored on the record
//! ([`Runner::github_runner_id`](crate::model::Runner::github_runner_id)). Otherwise the
//! exact runner name is looked up, first in the target's runner list and then with
//! GitHub's name filter, and a record stores the id it found. A stored id missing from the
//! list is looked up by id before it counts as gone. Instances without a record are judged
//! the same way from the target, installation and profile the Stadium lists with them, so a
//! sweeper whose records live elsewhere (another process) still never stops a busy runner.
//!
//! A pass holds a Datastore lock, renewed before each decision, and a sweeper runs one pass
//! at a time.
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
use crate::model::TargetId;
use crate::runner_name::is_own_runner_name;
use crate::stadium::{Error as StadiumError, ListedInstance, Stadium};
use crate::webhook::RunnerActivity;
use crate::ErrorChain;

use decision::Subject;
pub use decision::{SweepAction, SweepDecision, SweepReason, SweepReport};

/// Name of the lock a sweep pass holds, so that two sweepers never work at once.
pub const SWEEP_LOCK: &str = "myshoes-sweeper";

/// Returns the name of the lock that records a webhook's evidence that `runner_name` runs
/// a job.
pub fn activity_lock(runner_name: &str) -> String {
    format!("runner-busy/{runner_name}")
}

/// Records the runner activity a webhook reported: `in_progress` takes the runner's activity
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
    /// Time from launch during which a record whose instance the Stadium does not list is
    /// kept, because a cloud listing may lag behind a launch. Zero suits a Stadium whose
    /// listing is current at once, such as the process Stadium.
    pub listing_grace: Duration,
    /// Owner name under which the sweeper takes [`SWEEP_LOCK`]. Unique per process.
    pub owner_id: String,
    /// How long the sweep lock lasts if a pass dies; keep it above the longest pass.
    pub lock_lease: Duration,
}

impl Default for SweeperConfig {
    /// Prefix `myshoes`, 10-minute boot grace, 10-minute minimum idle lifetime, 24-hour
    /// maximum lifetime, 2-minute listing grace, a random owner id and a 5-minute lock.
    fn default() -> Self {
        Self {
            runner_name_prefix: "myshoes".to_owned(),
            boot_grace: Duration::from_secs(600),
            min_idle_lifetime: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(24 * 3600),
            listing_grace: Duration::from_secs(120),
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

/// GitHub's view of one runner.
#[derive(Debug, Clone)]
enum GitHubState {
    /// GitHub cannot be asked about this runner: no client, or the record or instance names
    /// no target, installation or runner name.
    Unavailable,
    /// The calls failed.
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
    /// Held for a whole pass, so passes of this value never overlap.
    pass: tokio::sync::Mutex<()>,
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
            pass: tokio::sync::Mutex::new(()),
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
    /// [`SweepError`] when the pass could not start or had to stop: another pass holds the
    /// lock (in this process or, through the Datastore, in another), or the records could
    /// not be listed.
    pub async fn sweep(&self) -> Result<SweepReport, SweepError> {
        let Ok(_pass) = self.pass.try_lock() else {
            return Err(SweepError::Busy {
                holder: format!("{} (this process)", self.config.owner_id),
            });
        };
        self.take_lock().await?;
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

    /// Takes or renews the Datastore's sweep lock.
    async fn take_lock(&self) -> Result<(), SweepError> {
        match self
            .datastore
            .acquire_lock(SWEEP_LOCK, &self.config.owner_id, self.config.lock_lease)
            .await
        {
            Ok(_) => Ok(()),
            Err(DatastoreError::Conflict { .. }) => {
                let holder = match self.datastore.lock_holder(SWEEP_LOCK).await {
                    Ok(Some(lease)) => lease.owner,
                    _ => "unknown".to_owned(),
                };
                Err(SweepError::Busy { holder })
            }
            Err(error) => Err(SweepError::Lock(error)),
        }
    }

    async fn sweep_locked(&self) -> Result<SweepReport, SweepError> {
        let now = Utc::now();
        let records = self
            .datastore
            .list_runners()
            .await
            .map_err(SweepError::ListRunners)?;
        let mut report = SweepReport::default();
        let instances: Option<HashMap<String, ListedInstance>> = match self
            .stadium
            .list_instances()
            .await
        {
            Ok(listed) => Some(
                listed
                    .into_iter()
                    .map(|instance| (instance.cloud_id.clone(), instance))
                    .collect(),
            ),
            Err(StadiumError::NotSupported { .. }) => None,
            Err(error) => {
                // Records are still judged, so the maximum lifetime and GitHub's view keep
                // working while the listing fails.
                tracing::warn!(
                    stadium = %self.stadium,
                    error = %ErrorChain(&error),
                    "failed to list the Stadium's instances; judging runner records without them"
                );
                metrics::counter!("myshoes_sweeper_failures_total", "reason" => "list_instances")
                    .increment(1);
                report.instance_listing_error = Some(ErrorChain(&error).to_string());
                None
            }
        };

        let mut views: HashMap<TargetId, Result<TargetView, String>> = HashMap::new();
        let mut subjects: Vec<Subject> = records
            .iter()
            .map(|record| {
                let alive = instances
                    .as_ref()
                    .map(|listed| listed.contains_key(&record.cloud_id));
                Subject::from_record(record, alive)
            })
            .collect();
        if let Some(instances) = &instances {
            let recorded: HashSet<&str> = records.iter().map(|r| r.cloud_id.as_str()).collect();
            self.forget_first_seen(instances);
            for instance in instances.values() {
                if !recorded.contains(instance.cloud_id.as_str()) {
                    let started = self.started_at(instance, now);
                    subjects.push(Subject::from_instance(instance, started));
                }
            }
        }

        for subject in subjects {
            // A pass may outlast the lock's lease when deletions are slow; renew it, and stop
            // if another sweeper took over meanwhile.
            self.take_lock().await?;
            let decision = self.judge(subject, &mut views, now).await;
            self.finish(decision, &mut report).await;
        }
        Ok(report)
    }

    /// Returns when an instance without a record started: its start time, or when this
    /// sweeper first saw it.
    fn started_at(&self, instance: &ListedInstance, now: DateTime<Utc>) -> DateTime<Utc> {
        instance.started_at.unwrap_or_else(|| {
            *self
                .first_seen
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .entry(instance.cloud_id.clone())
                .or_insert(now)
        })
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
            if decision.action == SweepAction::Delete {
                metrics::counter!("myshoes_sweeper_deletions_total", "reason" => decision.reason.label())
                    .increment(1);
            }
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

    async fn judge(
        &self,
        subject: Subject,
        views: &mut HashMap<TargetId, Result<TargetView, String>>,
        now: DateTime<Utc>,
    ) -> SweepDecision {
        let age = (now - subject.started).to_std().unwrap_or_default();
        let own = subject
            .runner_name
            .as_deref()
            .is_some_and(|name| is_own_runner_name(&self.config.runner_name_prefix, name));
        let mut decision = SweepDecision::new(subject);
        if decision.subject.record.is_none() && !own {
            return decision.keep(SweepReason::ForeignInstance);
        }

        let past_grace = age >= self.config.boot_grace;
        let github = self
            .github_state(&decision.subject, views, past_grace)
            .await;
        if let GitHubState::Present(runner) = &github {
            decision.github_runner_id = Some(runner.id);
            decision.github_busy = runner.busy;
            decision.github_registered = true;
        }

        if age >= self.config.max_lifetime {
            return decision.delete(SweepReason::MaxLifetime);
        }

        if decision.subject.instance_alive == Some(false) {
            // A listing may lag behind a launch, so a young record is not judged by it.
            if age < self.config.listing_grace {
                return decision.keep(SweepReason::Booting);
            }
            return match github {
                GitHubState::Present(runner) if runner.busy => {
                    decision.keep(SweepReason::BusyWithoutInstance)
                }
                _ => decision.delete(SweepReason::InstanceGone),
            };
        }

        match &github {
            GitHubState::Present(runner) if runner.busy => return decision.keep(SweepReason::Busy),
            GitHubState::Gone => return decision.delete(SweepReason::GoneFromGitHub),
            _ => {}
        }
        // Webhook evidence counts only while GitHub still has the runner or cannot tell.
        let evidence = match decision.subject.runner_name.as_deref() {
            Some(name) => self.has_activity(name).await,
            None => Ok(false),
        };
        match evidence {
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
                if past_grace {
                    decision.delete(SweepReason::Offline)
                } else {
                    decision.keep(SweepReason::Booting)
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
                if past_grace {
                    decision.delete(SweepReason::NeverRegistered)
                } else {
                    decision.keep(SweepReason::Booting)
                }
            }
            GitHubState::Unavailable if decision.subject.record.is_none() => {
                // Nothing but the webhook evidence above can show this instance busy.
                if past_grace {
                    decision.delete(SweepReason::NoRecord)
                } else {
                    decision.keep(SweepReason::Booting)
                }
            }
            GitHubState::Unavailable => decision.keep(SweepReason::GitHubUnknown(
                "no GitHub client, or the record names no App installation".to_owned(),
            )),
            GitHubState::Unknown(why) => decision.keep(SweepReason::GitHubUnknown(why)),
            GitHubState::Gone => decision.delete(SweepReason::GoneFromGitHub),
        }
    }

    async fn has_activity(&self, runner_name: &str) -> Result<bool, DatastoreError> {
        Ok(self
            .datastore
            .lock_holder(&activity_lock(runner_name))
            .await?
            .is_some())
    }

    /// Finds the subject's runner on GitHub: by stored id, or by exact name. A name missing
    /// from the list is looked up with GitHub's name filter before it counts as not
    /// registered, when `confirm` is set.
    async fn github_state(
        &self,
        subject: &Subject,
        views: &mut HashMap<TargetId, Result<TargetView, String>>,
        confirm: bool,
    ) -> GitHubState {
        let (Some(github), Some(target_id), Some(installation_id), Some(name)) = (
            &self.github,
            subject.target_id,
            subject.installation_id,
            subject.runner_name.as_deref(),
        ) else {
            return GitHubState::Unavailable;
        };
        if let std::collections::hash_map::Entry::Vacant(slot) = views.entry(target_id) {
            slot.insert(
                self.target_view(github.as_ref(), target_id, installation_id)
                    .await,
            );
        }
        let view = match views.get(&target_id) {
            Some(Ok(view)) => view,
            Some(Err(why)) => return GitHubState::Unknown(why.clone()),
            None => return GitHubState::Unknown("target view missing".to_owned()),
        };
        if let Some(id) = subject.github_runner_id {
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
        let found = match view.by_name.get(name) {
            Some(runner) => Some(runner.clone()),
            None if confirm => {
                match github
                    .find_runner_by_name(&view.installation, &view.scope, name)
                    .await
                {
                    Ok(found) => found,
                    Err(error) => {
                        return GitHubState::Unknown(format!(
                            "failed to look up runner {name}: {}",
                            ErrorChain(&error)
                        ))
                    }
                }
            }
            None => None,
        };
        let Some(runner) = found else {
            return GitHubState::NotRegistered;
        };
        if let Some(record) = &subject.record {
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
        }
        GitHubState::Present(runner)
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

    /// Deregisters and stops one runner and deletes its record. Turns the decision into a keep when the
    /// runner turned busy during deregistration.
    async fn apply_delete(&self, decision: &mut SweepDecision) -> Result<(), String> {
        let subject = decision.subject.clone();
        if let (Some(target_id), Some(installation_id), Some(github_runner_id), Some(github)) = (
            subject.target_id,
            subject.installation_id,
            decision.github_runner_id,
            &self.github,
        ) {
            let at_max_lifetime = decision.reason == SweepReason::MaxLifetime;
            if decision.github_registered && (!decision.github_busy || at_max_lifetime) {
                let target = self
                    .datastore
                    .get_target(target_id)
                    .await
                    .map_err(|error| {
                        format!("failed to read the target: {}", ErrorChain(&error))
                    })?;
                let installation = Installation::new(target.host.clone(), installation_id);
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

        if subject.instance_alive != Some(false) {
            self.stadium
                .delete_instance(&subject.cloud_id, &subject.labels)
                .await
                .map_err(|error| {
                    format!(
                        "failed to delete instance {}: {}",
                        subject.cloud_id,
                        ErrorChain(&error)
                    )
                })?;
        }

        if let Some(record) = &subject.record {
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
        }
        if let Some(job_id) = subject.job_id {
            let holder = job_id.to_string();
            let mut pools: Vec<String> = subject.target_id.map(target_pool).into_iter().collect();
            pools.extend(subject.profile.as_deref().map(profile_pool));
            for pool in pools {
                if let Err(error) = self.datastore.release_slot(&pool, &holder).await {
                    tracing::warn!(
                        pool,
                        cloud_id = %subject.cloud_id,
                        error = %ErrorChain(&error),
                        "failed to release a runner slot; it expires after its lease"
                    );
                }
            }
        }
        Ok(())
    }
}
