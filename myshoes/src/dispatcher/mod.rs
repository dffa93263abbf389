//! Turns queued jobs into runner instances.
//!
//! [`Dispatcher::process`] handles one received job. It finds the job's target, chooses a
//! runner profile, claims the launch, takes a slot under the profile's and target's runner
//! limits, and checks with GitHub that the job is still queued (when a status source is
//! set). Then it gets a credential, builds the setup script,
//! starts an instance on the Stadium, records the runner and removes the job from the
//! queue. Retryable failures return the job to the queue with a growing delay, up to
//! [`RetryPolicy::max_attempts`]; permanent failures drop it with the reason logged.
//! [`Dispatcher::run_until`] runs that for every job the Datastore hands out, several at a
//! time, and waits on the Datastore instead of polling on a timer.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use myshoes::credentials::StaticRegistrationToken;
//! use myshoes::datastore::{Datastore, MemoryDatastore};
//! use myshoes::dispatcher::{Dispatcher, DispatcherConfig, Outcome};
//! use myshoes::model::{GitHubHost, Job, JobId, ResourceType, Target};
//! use myshoes::profile::{LabelMatchMode, Profiles, RunnerProfile};
//! use myshoes::secret::Secret;
//! use myshoes::stadium::MemoryStadium;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let datastore = Arc::new(MemoryDatastore::new());
//! let stadium = Arc::new(MemoryStadium::new());
//! let target = Target::new("octo-org".parse()?, GitHubHost::github_com(), ResourceType::Small);
//! datastore.create_target(&target).await?;
//!
//! let profiles = Profiles::new(vec![RunnerProfile::new("linux", ["linux"])], LabelMatchMode::Subset)?;
//! let dispatcher = Dispatcher::new(
//!     datastore.clone(),
//!     stadium.clone(),
//!     Arc::new(StaticRegistrationToken::new(Secret::new("registration-token"))),
//!     profiles,
//!     DispatcherConfig::default(),
//! )?;
//!
//! // A job as the webhook receiver enqueues it.
//! let host = GitHubHost::github_com();
//! datastore.enqueue_job(&Job {
//!     id: JobId::for_workflow_job(&host, 38000000001, 1),
//!     delivery_id: None,
//!     workflow_job_id: 38000000001,
//!     run_id: 19000000001,
//!     run_attempt: 1,
//!     repository: "octo-org/hello-world".parse()?,
//!     installation_id: Some(4242),
//!     labels: vec!["self-hosted".into(), "linux".into()],
//!     host,
//!     target_id: target.id,
//!     received_at: chrono::Utc::now(),
//!     attempt: 0,
//! }).await?;
//!
//! let received = datastore.receive_jobs(1, Duration::ZERO).await?.remove(0);
//! match dispatcher.process(received).await {
//!     Outcome::Launched { runner, .. } => assert_eq!(runner.name, "myshoes-38000000001-1"),
//!     other => panic!("expected a launch, got {other:?}"),
//! }
//! assert_eq!(stadium.running().len(), 1);
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod config;
mod outcome;
mod run_loop;

use std::error::Error as StdError;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::broadcast;
use tracing::Instrument;

use crate::credentials::{CredentialRequest, RunnerCredentials};
use crate::datastore::{AckHandle, Datastore, Error as DatastoreError, ReceivedJob};
use crate::job_status::{JobStatusSource, WorkflowJobState, WorkflowJobStatus};
use crate::model::{Job, ResourceType, Runner, RunnerId, RunnerStatus, Target, TargetId};
use crate::profile::{Profiles, RunnerProfile};
use crate::setup_script::SetupScriptParams;
use crate::stadium::{AddInstanceRequest, Stadium};
use crate::ErrorChain;

pub use crate::runner_name::{
    is_own_runner_name, runner_name, validate_runner_name_prefix, MAX_RUNNER_NAME_LEN,
    MAX_RUNNER_NAME_PREFIX_LEN,
};
pub use config::{ConfigError, DispatcherConfig, RetryPolicy};
pub use outcome::Outcome;

/// Capacity of the outcome channel; a subscriber that falls further behind misses outcomes.
const OUTCOME_CHANNEL_CAPACITY: usize = 1024;

/// Launches one runner per queued job. See the [module docs](self).
pub struct Dispatcher {
    datastore: Arc<dyn Datastore>,
    stadium: Arc<dyn Stadium>,
    credentials: Arc<dyn RunnerCredentials>,
    profiles: Profiles,
    config: DispatcherConfig,
    outcomes: broadcast::Sender<Outcome>,
    job_status: Option<Arc<dyn JobStatusSource>>,
    status_check_errors: AtomicU64,
}

/// Failure of one processing step, with whether a retry may help.
struct StepFailure {
    reason: String,
    retryable: bool,
    /// Whether the job waits for something else (another launch, a free slot) rather than
    /// failed itself, so the retry does not use up an attempt.
    deferred: bool,
    /// Delay of a deferred retry.
    defer_delay: Duration,
    /// Step that failed, as the `reason` label of the retry and dead-letter metrics.
    kind: &'static str,
}

impl StepFailure {
    fn permanent(kind: &'static str, reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            retryable: false,
            deferred: false,
            defer_delay: Duration::ZERO,
            kind,
        }
    }

    fn from_error(
        kind: &'static str,
        context: &str,
        error: &(dyn StdError + 'static),
        retryable: bool,
    ) -> Self {
        Self {
            reason: format!("{context}: {}", error_chain(error)),
            retryable,
            deferred: false,
            defer_delay: Duration::ZERO,
            kind,
        }
    }

    fn deferred(kind: &'static str, reason: String, delay: Duration) -> Self {
        Self {
            reason,
            retryable: true,
            deferred: true,
            defer_delay: delay,
            kind,
        }
    }
}

/// Returns the slot pool that caps the runners of the profile named `profile`.
pub fn profile_pool(profile: &str) -> String {
    format!("profile/{profile}")
}

/// Returns the slot pool that caps the runners of target `target_id`.
pub fn target_pool(target_id: TargetId) -> String {
    format!("target/{target_id}")
}

/// Formats an error and its sources as `outer: inner: innermost`.
pub(crate) fn error_chain(error: &(dyn StdError + 'static)) -> String {
    crate::ErrorChain(error).to_string()
}

/// Decision of the checks that run before a launch.
enum Prepared<'p> {
    /// Launch for this target with this profile; the launch claim is held.
    Ready {
        target: Target,
        profile: &'p RunnerProfile,
    },
    /// Launch nothing and acknowledge the job: a reason label for the metrics and the
    /// reason.
    Skip(&'static str, String),
}

/// Result of the launch steps.
struct Launch {
    profile: String,
    runner: Runner,
    instance: crate::stadium::Instance,
}

impl Dispatcher {
    /// Creates a dispatcher over the given backends.
    pub fn new(
        datastore: Arc<dyn Datastore>,
        stadium: Arc<dyn Stadium>,
        credentials: Arc<dyn RunnerCredentials>,
        profiles: Profiles,
        config: DispatcherConfig,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let (outcomes, _) = broadcast::channel(OUTCOME_CHANNEL_CAPACITY);
        Ok(Self {
            datastore,
            stadium,
            credentials,
            profiles,
            config,
            outcomes,
            job_status: None,
            status_check_errors: AtomicU64::new(0),
        })
    }

    /// Asks `source` whether each job is still queued before launching, and skips jobs
    /// that GitHub reports `in_progress` or `completed`. When the call fails, the
    /// dispatcher launches anyway and counts the failure
    /// ([`Dispatcher::status_check_errors`]). Without a source, no check is made.
    pub fn with_job_status_source(mut self, source: Arc<dyn JobStatusSource>) -> Self {
        self.job_status = Some(source);
        self
    }

    /// Returns how many job status checks failed, so their jobs were launched unchecked.
    pub fn status_check_errors(&self) -> u64 {
        self.status_check_errors.load(Ordering::Relaxed)
    }

    /// Returns a receiver of the outcome of every job processed from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Outcome> {
        self.outcomes.subscribe()
    }

    /// Returns the settings.
    pub fn config(&self) -> &DispatcherConfig {
        &self.config
    }

    /// Processes one received job to its outcome and acknowledges it accordingly: deleted
    /// after a launch or a drop, returned for retry otherwise.
    ///
    /// Never panics on backend errors; errors that cannot be handed back (a failed
    /// acknowledgement) are logged with the job id.
    pub async fn process(&self, received: ReceivedJob) -> Outcome {
        let span = tracing::info_span!(
            "dispatch",
            job_id = %received.job.id,
            workflow_job_id = received.job.workflow_job_id,
            run_attempt = received.job.run_attempt,
            repository = %received.job.repository,
            attempt = received.job.attempt,
        );
        let (outcome, reason) = self.process_inner(received).instrument(span).await;
        record_outcome(&outcome, reason);
        if self.outcomes.receiver_count() > 0 {
            // A subscriber that dropped its receiver meanwhile is fine.
            let _ = self.outcomes.send(outcome.clone());
        }
        outcome
    }

    /// Returns the outcome and a short reason label for the metrics.
    async fn process_inner(&self, received: ReceivedJob) -> (Outcome, &'static str) {
        let ReceivedJob { job, ack } = received;
        // The claim belongs to this receive, not to the whole dispatcher, so a second receive
        // of the job (after its visibility timeout) cannot renew or release this one's claim.
        let claim_owner = format!("{}/{}", self.config.owner_id, ack.token());
        let (target, profile) = match self.prepare(&job, &claim_owner).await {
            Ok(Prepared::Ready { target, profile }) => (target, profile),
            Ok(Prepared::Skip(kind, reason)) => {
                tracing::info!(reason = %reason, "job skipped without a launch");
                self.acknowledge(&ack, "skipped").await;
                return (Outcome::Skipped { job, reason }, kind);
            }
            Err(failure) => return self.fail(job, &ack, failure).await,
        };

        if let Err(failure) = self.acquire_slots(&job, &target, profile).await {
            self.release_claim(&job, &claim_owner).await;
            return self.fail(job, &ack, failure).await;
        }

        // Asked after the limits, so a job waiting at a limit costs no GitHub request.
        if let Some(reason) = self.skip_reason(&job).await {
            self.release_slots(&job, &target, profile).await;
            self.release_claim(&job, &claim_owner).await;
            tracing::info!(reason = %reason, "job skipped without a launch");
            self.acknowledge(&ack, "skipped").await;
            return (Outcome::Skipped { job, reason }, "not_queued");
        }

        let launch = match self.start_instance(&job, &target, profile).await {
            Ok(launch) => launch,
            Err(failure) => {
                // Let the next attempt, by this or another dispatcher, claim the job again.
                self.release_slots(&job, &target, profile).await;
                self.release_claim(&job, &claim_owner).await;
                return self.fail(job, &ack, failure).await;
            }
        };

        let recorded = match self.datastore.create_runner(&launch.runner).await {
            // A relaunch after a crash finds the record of the first launch.
            Ok(()) | Err(DatastoreError::AlreadyExists { .. }) => true,
            Err(error) => {
                // The instance runs; launching again would double it, so the job is still
                // acknowledged and only the record is missing.
                tracing::error!(
                    runner_name = %launch.runner.name,
                    cloud_id = %launch.instance.cloud_id,
                    error = %error_chain(&error),
                    "failed to record a launched runner; the instance runs unrecorded"
                );
                false
            }
        };
        if let Err(error) = self.datastore.complete_launch(job.id, &claim_owner).await {
            tracing::error!(
                error = %error_chain(&error),
                "failed to mark the launch completed; a redelivery may launch a second runner"
            );
        }
        self.acknowledge(&ack, "launched").await;
        tracing::info!(
            runner_name = %launch.runner.name,
            cloud_id = %launch.instance.cloud_id,
            profile = %launch.profile,
            "runner launched"
        );
        let outcome = Outcome::Launched {
            job,
            profile: launch.profile,
            runner: launch.runner,
            recorded,
            instance: launch.instance,
        };
        (outcome, "launched")
    }

    /// Gives up this receive's launch claim, logging a failure.
    async fn release_claim(&self, job: &Job, claim_owner: &str) {
        if let Err(error) = self.datastore.release_launch(job.id, claim_owner).await {
            tracing::warn!(
                error = %error_chain(&error),
                "failed to release the launch claim; it expires after its lease"
            );
        }
    }

    /// Takes a slot under the profile's and the target's runner limits, or defers the job
    /// when either is full. Holds nothing when it fails.
    async fn acquire_slots(
        &self,
        job: &Job,
        target: &Target,
        profile: &RunnerProfile,
    ) -> Result<(), StepFailure> {
        // NOTE: the holder is the job id. A second receive whose claim took over from a
        // launch that outlived its lease renews the first launch's slot instead of taking
        // another, so a failure of either launch gives that one slot back.
        let holder = job.id.to_string();
        let limits = [
            (profile.max_runners, profile_pool(&profile.name), "profile"),
            (
                self.config.max_runners_per_target,
                target_pool(target.id),
                "target",
            ),
        ];
        let mut taken: Vec<&str> = Vec::new();
        for (max, pool, what) in &limits {
            let Some(max) = *max else { continue };
            let acquired = self
                .datastore
                .acquire_slot(pool, max, &holder, self.config.slot_lease)
                .await;
            let failure = match acquired {
                Ok(()) => {
                    taken.push(pool);
                    continue;
                }
                Err(DatastoreError::Conflict { .. }) => {
                    metrics::counter!("myshoes_runner_limit_waits_total", "limit" => *what)
                        .increment(1);
                    StepFailure::deferred(
                        "runner_limit",
                        format!(
                            "the {what} limit of {max} runners is reached ({pool}); waiting for a runner to be swept"
                        ),
                        self.config.cap_wait,
                    )
                }
                Err(error) => {
                    let retryable = error.is_retryable();
                    StepFailure::from_error(
                        "datastore",
                        &format!("failed to take a slot of {pool}"),
                        &error,
                        retryable,
                    )
                }
            };
            for pool in taken {
                self.release_slot(pool, &holder).await;
            }
            return Err(failure);
        }
        Ok(())
    }

    /// Gives back the slots [`Dispatcher::acquire_slots`] took for the job.
    async fn release_slots(&self, job: &Job, target: &Target, profile: &RunnerProfile) {
        let holder = job.id.to_string();
        if profile.max_runners.is_some() {
            self.release_slot(&profile_pool(&profile.name), &holder)
                .await;
        }
        if self.config.max_runners_per_target.is_some() {
            self.release_slot(&target_pool(target.id), &holder).await;
        }
    }

    async fn release_slot(&self, pool: &str, holder: &str) {
        if let Err(error) = self.datastore.release_slot(pool, holder).await {
            tracing::warn!(
                pool,
                error = %error_chain(&error),
                "failed to release a runner slot; it expires after its lease"
            );
        }
    }

    /// Deletes a handled job from the queue, logging a failure.
    async fn acknowledge(&self, ack: &AckHandle, what: &str) {
        if let Err(error) = self.datastore.delete_job(ack).await {
            tracing::error!(
                error = %error_chain(&error),
                handled = what,
                "failed to delete a handled job from the queue; it may be delivered again"
            );
        }
    }

    /// Returns the job for retry, or drops it when the failure is permanent or the attempts
    /// are used up.
    async fn fail(
        &self,
        job: Job,
        ack: &AckHandle,
        failure: StepFailure,
    ) -> (Outcome, &'static str) {
        let attempts_left = job.attempt.saturating_add(1) < self.config.retry.max_attempts;
        let age = (Utc::now() - job.received_at).to_std().unwrap_or_default();
        let too_old = self
            .config
            .retry
            .max_age
            .is_some_and(|max_age| age >= max_age);
        if failure.retryable && (attempts_left || failure.deferred) && !too_old {
            // A deferred job waits for the other launch or a free slot.
            let delay = if failure.deferred {
                failure.defer_delay
            } else {
                self.config.retry.delay_after(job.attempt)
            };
            metrics::counter!("myshoes_retries_total", "reason" => failure.kind).increment(1);
            tracing::info!(
                reason = %failure.reason,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "retryable failure; job returned to the queue"
            );
            let returned = if failure.deferred {
                self.datastore.defer_job(ack, delay).await
            } else {
                self.datastore.retry_job(ack, delay).await
            };
            if let Err(error) = returned {
                tracing::warn!(
                    error = %error_chain(&error),
                    "failed to return the job for retry; it is received again after its visibility timeout"
                );
            }
            let outcome = Outcome::RetryScheduled {
                job,
                delay,
                reason: failure.reason,
            };
            return (outcome, failure.kind);
        }
        let reason = if failure.retryable && too_old {
            format!(
                "gave up after {} s since the webhook: {}",
                age.as_secs(),
                failure.reason
            )
        } else if failure.retryable {
            format!(
                "gave up after {} attempts: {}",
                self.config.retry.max_attempts, failure.reason
            )
        } else {
            failure.reason
        };
        let dead_lettered = match self.datastore.dead_letter_job(ack, &reason).await {
            Ok(()) => {
                metrics::counter!("myshoes_dead_letters_total", "reason" => failure.kind)
                    .increment(1);
                tracing::error!(reason = %reason, "job dead-lettered without a runner");
                true
            }
            Err(DatastoreError::NotSupported { .. }) => {
                tracing::error!(
                    reason = %reason,
                    "job dropped without a runner; the Datastore keeps no dead letters, so this log line is the only record"
                );
                self.acknowledge(ack, "dropped").await;
                false
            }
            Err(error) => {
                tracing::error!(
                    reason = %reason,
                    error = %error_chain(&error),
                    "failed to dead-letter a job; it is received again after its visibility timeout"
                );
                false
            }
        };
        let outcome = Outcome::Dropped {
            job,
            reason,
            dead_lettered,
        };
        (outcome, failure.kind)
    }

    /// Checks the target and the profile, then claims the launch.
    async fn prepare<'p>(
        &'p self,
        job: &Job,
        claim_owner: &str,
    ) -> Result<Prepared<'p>, StepFailure> {
        let target = self.target_for(job).await?;
        let profile = self.profiles.choose(&job.labels).ok_or_else(|| {
            StepFailure::permanent(
                "no_profile",
                format!(
                    "no runner profile matches labels {:?}; add a profile with these labels",
                    job.labels
                ),
            )
        })?;

        match self
            .datastore
            .claim_launch(job.id, claim_owner, self.config.launch_lease)
            .await
        {
            Ok(()) => Ok(Prepared::Ready { target, profile }),
            Err(DatastoreError::AlreadyExists { .. }) => {
                metrics::counter!("myshoes_dedup_hits_total", "layer" => "launch_claim")
                    .increment(1);
                Ok(Prepared::Skip(
                    "already_launched",
                    "a runner was launched for this job attempt already".to_owned(),
                ))
            }
            Err(error @ DatastoreError::Conflict { .. }) => Err(StepFailure::deferred(
                "launch_in_progress",
                format!(
                    "another dispatcher is launching this job attempt: {}",
                    error_chain(&error)
                ),
                self.config.launch_lease,
            )),
            Err(error) => {
                let retryable = error.is_retryable();
                Err(StepFailure::from_error(
                    "datastore",
                    "failed to claim the launch",
                    &error,
                    retryable,
                ))
            }
        }
    }

    /// Returns the instance that a failed `add_instance` started anyway, found by runner
    /// name in the Stadium's listing. A timeout or a lost response may come after the start
    /// happened. Launching again would then start a second instance on a Stadium that does
    /// not return the first one, and giving up would leave it running without a record.
    async fn started_despite(
        &self,
        error: &crate::stadium::Error,
        request: &AddInstanceRequest,
    ) -> Option<crate::stadium::Instance> {
        if !error.is_retryable() {
            return None;
        }
        let listed = self.stadium.list_instances().await.ok()?;
        let found = listed
            .into_iter()
            .find(|instance| instance.runner_name.as_deref() == Some(&request.runner_name))?;
        tracing::warn!(
            runner_name = %request.runner_name,
            cloud_id = %found.cloud_id,
            error = %error_chain(error),
            "the Stadium reported a failure, but the instance was started; recording it"
        );
        Some(crate::stadium::Instance {
            cloud_id: found.cloud_id,
            stadium: self.stadium.to_string(),
            address: None,
            resource_type: request.resource_type,
        })
    }

    /// Asks GitHub whether the job still needs a runner, when a status source is set, and
    /// returns the reason to skip it when it does not.
    async fn skip_reason(&self, job: &Job) -> Option<String> {
        if let Some(source) = &self.job_status {
            match source.workflow_job_state(job).await {
                Ok(WorkflowJobState {
                    status: status @ (WorkflowJobStatus::InProgress | WorkflowJobStatus::Completed),
                    runner_name,
                }) => {
                    // A runner launched for another job may have taken this one. That job
                    // then needs this job's runner, so only a foreign runner (or none)
                    // ends the need.
                    let taken_by_own = runner_name.as_deref().is_some_and(|name| {
                        is_own_runner_name(&self.config.runner_name_prefix, name)
                    });
                    if !taken_by_own {
                        return Some(format!(
                            "GitHub reports the job {status}, so it needs no new runner"
                        ));
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    // Launching anyway risks an idle runner; not launching risks a job that
                    // waits forever. The sweeper reclaims idle runners, so launch.
                    self.status_check_errors.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("myshoes_job_status_check_errors_total").increment(1);
                    tracing::warn!(
                        error = %ErrorChain(error.as_ref()),
                        "failed to read the job's status from GitHub; launching anyway"
                    );
                }
            }
        }

        None
    }

    /// Runs the steps from credentials to a started instance.
    async fn start_instance(
        &self,
        job: &Job,
        target: &Target,
        profile: &RunnerProfile,
    ) -> Result<Launch, StepFailure> {
        let resource_type = resource_type_for(profile, target);
        let name = runner_name(&self.config.runner_name_prefix, job);
        tracing::debug!(target_id = %target.id, profile = %profile.name, runner_name = %name, "launching runner");

        let credential = self
            .credentials
            .runner_credential(&CredentialRequest {
                target,
                job,
                runner_name: &name,
                labels: &profile.labels,
                runner_group: self.config.runner_group.as_deref(),
            })
            .await
            .map_err(|error| {
                let retryable = error.is_retryable();
                StepFailure::from_error(
                    "credential",
                    "failed to get a runner credential",
                    &error,
                    retryable,
                )
            })?;

        let mut params =
            SetupScriptParams::new(target.host.scope_url(&target.scope), credential, &name);
        params.labels = profile.labels.clone();
        params.runner_group = self.config.runner_group.clone();
        params.work_folder = self.config.work_folder.clone();
        params.run_as = self.config.run_as.clone();
        params.job_started_hook = self.config.job_started_hook.clone();
        params.job_completed_hook = self.config.job_completed_hook.clone();
        params.runner_source = self.config.runner_source.clone();
        let setup_script = params.build().map_err(|error| {
            StepFailure::from_error(
                "setup_script",
                "failed to build the setup script",
                &error,
                false,
            )
        })?;

        let request = AddInstanceRequest {
            runner_name: name.clone(),
            setup_script,
            resource_type,
            labels: profile.labels.clone(),
            target_id: target.id,
            job_id: job.id,
            repository: job.repository.clone(),
            profile: profile.name.clone(),
            installation_id: job.installation_id,
        };
        let instance = match self.stadium.add_instance(&request).await {
            Ok(instance) => instance,
            Err(error) => match self.started_despite(&error, &request).await {
                Some(instance) => instance,
                None => {
                    let retryable = error.is_retryable();
                    return Err(StepFailure::from_error(
                        "stadium",
                        &format!("{} failed to start the runner", self.stadium),
                        &error,
                        retryable,
                    ));
                }
            },
        };

        let runner = Runner {
            id: RunnerId::for_launch(job.id, &name),
            name,
            target_id: target.id,
            job_id: job.id,
            repository: job.repository.clone(),
            workflow_job_id: job.workflow_job_id,
            cloud_id: instance.cloud_id.clone(),
            stadium: instance.stadium.clone(),
            resource_type: instance.resource_type,
            profile: profile.name.clone(),
            labels: profile.labels.clone(),
            installation_id: job.installation_id,
            github_runner_id: None,
            status: RunnerStatus::Running,
            deletion_reason: None,
            created_at: Utc::now(),
            deleted_at: None,
        };
        Ok(Launch {
            profile: profile.name.clone(),
            runner,
            instance,
        })
    }

    async fn target_for(&self, job: &Job) -> Result<Target, StepFailure> {
        let target = self.datastore.get_target(job.target_id).await.map_err(|error| {
            if error.is_not_found() {
                StepFailure::permanent("target", format!(
                    "target {} no longer exists; register the target again to serve this repository",
                    job.target_id
                ))
            } else {
                let retryable = error.is_retryable();
                StepFailure::from_error("datastore", "failed to read the target", &error, retryable)
            }
        })?;
        if !target.can_receive_jobs() {
            return Err(StepFailure::permanent(
                "target",
                format!(
                    "target {} ({}) is {} and receives no jobs",
                    target.id, target.scope, target.status
                ),
            ));
        }
        Ok(target)
    }
}

/// Counts an outcome in `myshoes_dispatch_outcomes_total` by outcome and reason and, for a
/// launch, records the time since the webhook in `myshoes_launch_latency_seconds`.
fn record_outcome(outcome: &Outcome, reason: &'static str) {
    let label = match outcome {
        Outcome::Launched { job, .. } => {
            let latency = (Utc::now() - job.received_at).to_std().unwrap_or_default();
            metrics::histogram!("myshoes_launch_latency_seconds").record(latency.as_secs_f64());
            "launched"
        }
        Outcome::Skipped { .. } => "skipped",
        Outcome::RetryScheduled { .. } => "retry_scheduled",
        Outcome::Dropped { .. } => "dropped",
    };
    metrics::counter!("myshoes_dispatch_outcomes_total", "outcome" => label, "reason" => reason)
        .increment(1);
}

/// Returns the profile's resource type, or the target's when the profile leaves it
/// `unknown`.
fn resource_type_for(profile: &RunnerProfile, target: &Target) -> ResourceType {
    if profile.resource_type == ResourceType::Unknown {
        target.resource_type
    } else {
        profile.resource_type
    }
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("datastore", &self.datastore.to_string())
            .field("stadium", &self.stadium.to_string())
            .field("credentials", &self.credentials)
            .field("profiles", &self.profiles)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
