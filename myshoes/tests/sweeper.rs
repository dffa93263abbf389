//! The sweeper over the in-memory Datastore and Stadium and a GitHub fake.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use myshoes::credentials::CredentialRequest;
use myshoes::datastore::conformance::sample_job;
use myshoes::datastore::{Datastore, MemoryDatastore};
use myshoes::dispatcher::profile_pool;
use myshoes::github::{Error as GitHubError, GitHubApi, GitHubRunner, Installation};
use myshoes::job_status::WorkflowJobStatus;
use myshoes::model::{
    GitHubHost, RepositoryName, ResourceType, Runner, RunnerId, RunnerStatus, Scope, Target,
};
use myshoes::setup_script::RunnerCredential;
use myshoes::stadium::conformance::harmless_request;
use myshoes::stadium::{
    self, AddInstanceRequest, Instance, ListedInstance, MemoryStadium, Stadium,
};
use myshoes::sweeper::{record_runner_activity, SweepAction, SweepReason, Sweeper, SweeperConfig};
use myshoes::webhook::RunnerActivity;

/// GitHub's runners of every scope, with switches for the races the sweeper must survive.
#[derive(Debug, Default)]
struct FakeGitHub {
    state: Mutex<FakeState>,
}

#[derive(Debug, Default)]
struct FakeState {
    runners: HashMap<u64, GitHubRunner>,
    /// Runners that GitHub's list leaves out although they exist (list pages are
    /// eventually consistent).
    hidden_from_list: Vec<u64>,
    /// Runners that become busy when they are deregistered, so the delete is refused.
    busy_on_delete: Vec<u64>,
    /// Runners that GitHub reports busy on the read after a delete it accepted.
    busy_after_delete: Vec<u64>,
    calls: Vec<String>,
    fail_list: bool,
}

impl FakeGitHub {
    fn add(&self, id: u64, name: &str, status: &str, busy: bool) {
        self.state.lock().unwrap().runners.insert(
            id,
            GitHubRunner {
                id,
                name: name.to_owned(),
                os: "linux".to_owned(),
                status: status.to_owned(),
                busy,
                labels: vec!["self-hosted".to_owned()],
                runner_group_id: Some(1),
                ephemeral: Some(true),
            },
        );
    }

    fn calls(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }

    fn exists(&self, id: u64) -> bool {
        self.state.lock().unwrap().runners.contains_key(&id)
    }
}

#[async_trait]
impl GitHubApi for FakeGitHub {
    async fn job_status(
        &self,
        _installation: &Installation,
        _repository: &RepositoryName,
        _job_id: u64,
    ) -> Result<WorkflowJobStatus, GitHubError> {
        unreachable!("the sweeper does not read job status")
    }

    async fn create_runner_credential(
        &self,
        _request: &CredentialRequest<'_>,
    ) -> Result<RunnerCredential, GitHubError> {
        unreachable!("the sweeper mints no credentials")
    }

    async fn list_runners(
        &self,
        _installation: &Installation,
        scope: &Scope,
    ) -> Result<Vec<GitHubRunner>, GitHubError> {
        let mut state = self.state.lock().unwrap();
        state.calls.push("list".to_owned());
        if state.fail_list {
            return Err(GitHubError::Server {
                operation: "list runners",
                scope: scope.to_string(),
                status: 502,
                attempts: 3,
            });
        }
        let mut runners: Vec<GitHubRunner> = state
            .runners
            .values()
            .filter(|runner| !state.hidden_from_list.contains(&runner.id))
            .cloned()
            .collect();
        runners.sort_by_key(|runner| runner.id);
        Ok(runners)
    }

    async fn get_runner(
        &self,
        _installation: &Installation,
        _scope: &Scope,
        runner_id: u64,
    ) -> Result<Option<GitHubRunner>, GitHubError> {
        let mut state = self.state.lock().unwrap();
        state.calls.push(format!("get {runner_id}"));
        if state.busy_after_delete.contains(&runner_id) {
            let mut runner = state
                .runners
                .get(&runner_id)
                .cloned()
                .unwrap_or(GitHubRunner {
                    id: runner_id,
                    name: String::new(),
                    os: String::new(),
                    status: "online".to_owned(),
                    busy: true,
                    labels: Vec::new(),
                    runner_group_id: None,
                    ephemeral: None,
                });
            runner.busy = true;
            return Ok(Some(runner));
        }
        Ok(state.runners.get(&runner_id).cloned())
    }

    async fn delete_runner(
        &self,
        _installation: &Installation,
        scope: &Scope,
        runner_id: u64,
    ) -> Result<(), GitHubError> {
        let mut state = self.state.lock().unwrap();
        state.calls.push(format!("delete {runner_id}"));
        if state.busy_on_delete.contains(&runner_id) {
            if let Some(runner) = state.runners.get_mut(&runner_id) {
                runner.busy = true;
            }
            return Err(GitHubError::Rejected {
                operation: "delete runner",
                scope: scope.to_string(),
                status: 422,
                message: "Bad request - Runner \"x\" is still running a job".to_owned(),
            });
        }
        state.runners.remove(&runner_id);
        Ok(())
    }

    async fn find_runner_by_name(
        &self,
        _installation: &Installation,
        _scope: &Scope,
        name: &str,
    ) -> Result<Option<GitHubRunner>, GitHubError> {
        // GitHub's name filter finds a runner that a shifting list page missed.
        let mut state = self.state.lock().unwrap();
        state.calls.push(format!("find {name}"));
        Ok(state
            .runners
            .values()
            .find(|runner| runner.name == name)
            .cloned())
    }
}

struct Harness {
    datastore: Arc<MemoryDatastore>,
    stadium: Arc<MemoryStadium>,
    github: Arc<FakeGitHub>,
    target: Target,
    config: SweeperConfig,
}

const MINUTE: Duration = Duration::from_secs(60);

async fn harness() -> Harness {
    let datastore = Arc::new(MemoryDatastore::new());
    let target = Target::new(
        "octo-org".parse().unwrap(),
        GitHubHost::github_com(),
        ResourceType::Small,
    );
    datastore.create_target(&target).await.unwrap();
    let mut config = SweeperConfig::default();
    config.boot_grace = 5 * MINUTE;
    config.min_idle_lifetime = 10 * MINUTE;
    config.max_lifetime = 24 * 60 * MINUTE;
    config.listing_grace = 2 * MINUTE;
    Harness {
        datastore,
        stadium: Arc::new(MemoryStadium::new()),
        github: Arc::new(FakeGitHub::default()),
        target,
        config,
    }
}

impl Harness {
    fn sweeper(&self) -> Sweeper {
        Sweeper::new(
            self.datastore.clone(),
            self.stadium.clone(),
            Some(self.github.clone()),
            self.config.clone(),
        )
    }

    /// Launches an instance and records a runner launched `age` ago, with GitHub runner
    /// id `github_id` stored when given.
    async fn runner(&self, name: &str, age: Duration, github_id: Option<u64>) -> Runner {
        let job = sample_job(self.target.id);
        let mut request = harmless_request(name);
        request.job_id = job.id;
        let instance = self.stadium.add_instance(&request).await.unwrap();
        let runner = Runner {
            id: RunnerId::new_random(),
            name: name.to_owned(),
            target_id: self.target.id,
            job_id: job.id,
            repository: job.repository.clone(),
            workflow_job_id: job.workflow_job_id,
            cloud_id: instance.cloud_id,
            stadium: "memory".to_owned(),
            resource_type: ResourceType::Small,
            profile: "linux".to_owned(),
            labels: vec!["linux".to_owned()],
            installation_id: Some(4242),
            github_runner_id: github_id,
            status: RunnerStatus::Running,
            deletion_reason: None,
            created_at: Utc::now() - chrono::Duration::from_std(age).unwrap(),
            deleted_at: None,
        };
        self.datastore.create_runner(&runner).await.unwrap();
        runner
    }

    async fn status(&self, runner: &Runner) -> RunnerStatus {
        self.datastore.get_runner(runner.id).await.unwrap().status
    }

    fn instance_running(&self, runner: &Runner) -> bool {
        self.stadium
            .running()
            .iter()
            .any(|(instance, _)| instance.cloud_id == runner.cloud_id)
    }
}

#[tokio::test]
async fn busy_runner_is_never_deleted() {
    let h = harness().await;
    let runner = h.runner("myshoes-1-1", 60 * MINUTE, Some(11)).await;
    h.github.add(11, "myshoes-1-1", "online", true);
    let report = h.sweeper().sweep().await.unwrap();
    let decision = report.for_runner(runner.id).unwrap();
    assert_eq!(decision.action, SweepAction::Keep);
    assert_eq!(decision.reason, SweepReason::Busy);
    assert!(h.instance_running(&runner));
    assert!(h.github.exists(11));
    assert_eq!(h.status(&runner).await, RunnerStatus::Running);
}

#[tokio::test]
async fn idle_runner_is_deregistered_then_stopped() {
    let h = harness().await;
    let runner = h.runner("myshoes-2-1", 30 * MINUTE, Some(21)).await;
    h.github.add(21, "myshoes-2-1", "online", false);
    let report = h.sweeper().sweep().await.unwrap();
    let decision = report.for_runner(runner.id).unwrap();
    assert_eq!(
        (decision.action, &decision.reason),
        (SweepAction::Delete, &SweepReason::Idle)
    );
    assert_eq!(
        h.github.calls(),
        ["list", "delete 21", "get 21"],
        "deregister, then read again"
    );
    assert!(!h.instance_running(&runner));
    let record = h.datastore.get_runner(runner.id).await.unwrap();
    assert_eq!(record.status, RunnerStatus::Deleted);
    assert_eq!(
        record.deletion_reason.as_deref(),
        Some("idle past the minimum idle lifetime")
    );
}

#[tokio::test]
async fn idle_runner_that_turns_busy_keeps_its_instance() {
    let h = harness().await;
    let refused = h.runner("myshoes-3-1", 30 * MINUTE, Some(31)).await;
    h.github.add(31, "myshoes-3-1", "online", false);
    let reread = h.runner("myshoes-3-2", 30 * MINUTE, Some(32)).await;
    h.github.add(32, "myshoes-3-2", "online", false);
    {
        let mut state = h.github.state.lock().unwrap();
        state.busy_on_delete.push(31);
        state.busy_after_delete.push(32);
    }
    let report = h.sweeper().sweep().await.unwrap();
    for runner in [&refused, &reread] {
        let decision = report.for_runner(runner.id).unwrap();
        assert_eq!(decision.action, SweepAction::Keep, "{decision:?}");
        assert_eq!(decision.reason, SweepReason::TurnedBusy);
        assert!(
            h.instance_running(runner),
            "the instance of a busy runner stays"
        );
        assert_eq!(h.status(runner).await, RunnerStatus::Running);
    }
}

#[tokio::test]
async fn young_idle_runner_is_kept() {
    let h = harness().await;
    let runner = h.runner("myshoes-4-1", 2 * MINUTE, Some(41)).await;
    h.github.add(41, "myshoes-4-1", "online", false);
    let report = h.sweeper().sweep().await.unwrap();
    assert_eq!(
        report.for_runner(runner.id).unwrap().reason,
        SweepReason::IdleTooShort
    );
    assert!(h.github.exists(41));
}

#[tokio::test]
async fn in_progress_evidence_keeps_an_idle_runner_until_completed() {
    let h = harness().await;
    let runner = h.runner("myshoes-5-1", 30 * MINUTE, Some(51)).await;
    // GitHub's list reports the runner idle (it lags), but a webhook named it in_progress.
    h.github.add(51, "myshoes-5-1", "online", false);
    let mut activity = RunnerActivity {
        runner_name: "myshoes-5-1".to_owned(),
        workflow_job_id: 777,
        busy: true,
    };
    record_runner_activity(h.datastore.as_ref(), &activity, 60 * MINUTE)
        .await
        .unwrap();
    let report = h.sweeper().sweep().await.unwrap();
    assert_eq!(
        report.for_runner(runner.id).unwrap().reason,
        SweepReason::ActiveJobEvidence
    );
    assert!(h.instance_running(&runner));

    // A completed event for another job does not clear the evidence; its own does.
    activity.busy = false;
    activity.workflow_job_id = 778;
    record_runner_activity(h.datastore.as_ref(), &activity, 60 * MINUTE)
        .await
        .unwrap();
    let report = h.sweeper().sweep().await.unwrap();
    assert_eq!(
        report.for_runner(runner.id).unwrap().reason,
        SweepReason::ActiveJobEvidence
    );
    activity.workflow_job_id = 777;
    record_runner_activity(h.datastore.as_ref(), &activity, 60 * MINUTE)
        .await
        .unwrap();
    let report = h.sweeper().sweep().await.unwrap();
    assert_eq!(
        report.for_runner(runner.id).unwrap().reason,
        SweepReason::Idle
    );
}

#[tokio::test]
async fn unregistered_runner_gets_the_boot_grace() {
    let h = harness().await;
    let booting = h.runner("myshoes-6-1", MINUTE, None).await;
    let stuck = h.runner("myshoes-6-2", 6 * MINUTE, None).await;
    let report = h.sweeper().sweep().await.unwrap();
    assert_eq!(
        report.for_runner(booting.id).unwrap().reason,
        SweepReason::Booting
    );
    assert!(h.instance_running(&booting));
    let decision = report.for_runner(stuck.id).unwrap();
    assert_eq!(
        (decision.action, &decision.reason),
        (SweepAction::Delete, &SweepReason::NeverRegistered)
    );
    assert!(!h.instance_running(&stuck));
}

#[tokio::test]
async fn runners_are_looked_up_by_stored_id() {
    let h = harness().await;
    // Registered as id 71, which GitHub's list leaves out; a runner whose name only shares
    // a suffix is listed. Absence from the list must not count as gone.
    let runner = h.runner("myshoes-7-1", 30 * MINUTE, Some(71)).await;
    h.github.add(71, "myshoes-7-1", "online", true);
    h.github.add(72, "other-myshoes-7-1", "online", false);
    h.github.state.lock().unwrap().hidden_from_list.push(71);
    let report = h.sweeper().sweep().await.unwrap();
    let decision = report.for_runner(runner.id).unwrap();
    assert_eq!(decision.reason, SweepReason::Busy, "{decision:?}");
    assert!(h.github.calls().contains(&"get 71".to_owned()));
    assert!(
        h.github.exists(72),
        "a runner of another prefix is never touched"
    );

    // Without a stored id, the exact name matches once and the id is stored.
    let unnamed = h.runner("myshoes-7-2", 30 * MINUTE, None).await;
    h.github.add(73, "myshoes-7-2", "online", true);
    h.sweeper().sweep().await.unwrap();
    assert_eq!(
        h.datastore
            .get_runner(unnamed.id)
            .await
            .unwrap()
            .github_runner_id,
        Some(73)
    );
}

#[tokio::test]
async fn offline_and_gone_runners_are_removed_with_their_reason() {
    let h = harness().await;
    let offline = h.runner("myshoes-8-1", 30 * MINUTE, Some(81)).await;
    h.github.add(81, "myshoes-8-1", "offline", false);
    let gone = h.runner("myshoes-8-2", 30 * MINUTE, Some(82)).await;
    let report = h.sweeper().sweep().await.unwrap();
    assert_eq!(
        report.for_runner(offline.id).unwrap().reason,
        SweepReason::Offline
    );
    assert!(!h.github.exists(81));
    assert_eq!(
        report.for_runner(gone.id).unwrap().reason,
        SweepReason::GoneFromGitHub
    );
    for runner in [&offline, &gone] {
        assert!(!h.instance_running(runner));
        assert_eq!(h.status(runner).await, RunnerStatus::Deleted);
    }
}

#[tokio::test]
async fn record_without_instance_or_github_runner_is_removed() {
    let h = harness().await;
    let runner = h.runner("myshoes-9-1", 6 * MINUTE, Some(91)).await;
    h.stadium.finish(&runner.cloud_id);
    let report = h.sweeper().sweep().await.unwrap();
    assert_eq!(
        report.for_runner(runner.id).unwrap().reason,
        SweepReason::InstanceGone
    );
    assert_eq!(h.status(&runner).await, RunnerStatus::Deleted);
    assert!(
        h.stadium.delete_calls().is_empty(),
        "an instance that is gone is not deleted again"
    );
}

#[tokio::test]
async fn young_record_survives_a_lagging_listing() {
    let h = harness().await;
    // The listing does not show the instance yet, as an eventually consistent API may not.
    let runner = h.runner("myshoes-9-2", MINUTE, None).await;
    h.stadium.finish(&runner.cloud_id);
    let report = h.sweeper().sweep().await.unwrap();
    assert_eq!(
        report.for_runner(runner.id).unwrap().reason,
        SweepReason::Booting
    );
    assert_eq!(h.status(&runner).await, RunnerStatus::Running);
}

#[tokio::test]
async fn gone_from_github_outranks_stale_evidence() {
    let h = harness().await;
    // The completed event was lost, so the activity mark stays, but GitHub removed the
    // ephemeral runner after its job.
    let runner = h.runner("myshoes-9-3", 30 * MINUTE, Some(93)).await;
    let activity = RunnerActivity {
        runner_name: "myshoes-9-3".to_owned(),
        workflow_job_id: 1,
        busy: true,
    };
    record_runner_activity(h.datastore.as_ref(), &activity, 60 * MINUTE)
        .await
        .unwrap();
    let report = h.sweeper().sweep().await.unwrap();
    assert_eq!(
        report.for_runner(runner.id).unwrap().reason,
        SweepReason::GoneFromGitHub
    );
}

#[tokio::test]
async fn unregistered_name_is_confirmed_before_deletion() {
    let h = harness().await;
    let runner = h.runner("myshoes-9-4", 6 * MINUTE, None).await;
    h.github.add(94, "myshoes-9-4", "online", true);
    // The list page misses the runner (pages shift while runners come and go).
    h.github.state.lock().unwrap().hidden_from_list.push(94);
    let report = h.sweeper().sweep().await.unwrap();
    assert_eq!(
        report.for_runner(runner.id).unwrap().reason,
        SweepReason::Busy
    );
    assert!(h.instance_running(&runner));
}

#[tokio::test]
async fn failed_listing_still_judges_records() {
    let h = harness().await;
    let stadium = Arc::new(Listing {
        inner: h.stadium.clone(),
        fail: true,
    });
    let old = h.runner("myshoes-9-5", 25 * 60 * MINUTE, None).await;
    let sweeper = Sweeper::new(
        h.datastore.clone(),
        stadium,
        Some(h.github.clone()),
        h.config.clone(),
    );
    let report = sweeper.sweep().await.unwrap();
    assert!(report.instance_listing_error.is_some());
    assert_eq!(
        report.for_runner(old.id).unwrap().reason,
        SweepReason::MaxLifetime,
        "the maximum lifetime holds while the listing fails"
    );
    assert!(!h.instance_running(&old));
}

#[tokio::test]
async fn not_supported_listing_judges_by_github() {
    let h = harness().await;
    let stadium = Arc::new(Listing {
        inner: h.stadium.clone(),
        fail: false,
    });
    let idle = h.runner("myshoes-9-6", 30 * MINUTE, Some(96)).await;
    h.github.add(96, "myshoes-9-6", "online", false);
    let sweeper = Sweeper::new(
        h.datastore.clone(),
        stadium,
        Some(h.github.clone()),
        h.config.clone(),
    );
    let report = sweeper.sweep().await.unwrap();
    assert_eq!(
        report.for_runner(idle.id).unwrap().reason,
        SweepReason::Idle
    );
    assert!(report.instance_listing_error.is_none());
    assert!(!h.instance_running(&idle));
}

/// A memory Stadium whose listing fails (`fail`) or is not supported.
#[derive(Debug)]
struct Listing {
    inner: Arc<MemoryStadium>,
    fail: bool,
}

impl std::fmt::Display for Listing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Listing")
    }
}

#[async_trait]
impl Stadium for Listing {
    async fn add_instance(&self, request: &AddInstanceRequest) -> stadium::Result<Instance> {
        self.inner.add_instance(request).await
    }
    async fn delete_instance(&self, cloud_id: &str, labels: &[String]) -> stadium::Result<()> {
        self.inner.delete_instance(cloud_id, labels).await
    }
    async fn list_instances(&self) -> stadium::Result<Vec<ListedInstance>> {
        if self.fail {
            return Err(stadium::Error::AccessDenied {
                reason: "listing is not allowed".to_owned(),
            });
        }
        Err(stadium::Error::NotSupported {
            operation: "list_instances",
            backend: "test",
        })
    }
}

#[tokio::test]
async fn max_lifetime_stops_even_a_busy_runner() {
    let h = harness().await;
    let runner = h.runner("myshoes-10-1", 25 * 60 * MINUTE, Some(101)).await;
    h.github.add(101, "myshoes-10-1", "online", true);
    let report = h.sweeper().sweep().await.unwrap();
    assert_eq!(
        report.for_runner(runner.id).unwrap().reason,
        SweepReason::MaxLifetime
    );
    assert!(!h.instance_running(&runner));
    assert_eq!(h.status(&runner).await, RunnerStatus::Deleted);
}

#[tokio::test]
async fn orphan_instance_is_judged_by_github() {
    let mut h = harness().await;
    let orphan_request = |name: &str, job: &myshoes::model::Job| {
        let mut request = harmless_request(name);
        request.target_id = h.target.id;
        request.job_id = job.id;
        request.installation_id = Some(4242);
        request.profile = "linux".to_owned();
        request
    };
    // Both instances run without records, as after a failed record write or in a sweeper
    // whose records live in another process.
    let idle_job = sample_job(h.target.id);
    let busy_job = sample_job(h.target.id);
    let idle = h
        .stadium
        .add_instance(&orphan_request("myshoes-11-1", &idle_job))
        .await
        .unwrap();
    let busy = h
        .stadium
        .add_instance(&orphan_request("myshoes-11-2", &busy_job))
        .await
        .unwrap();
    let foreign = h
        .stadium
        .add_instance(&harmless_request("someone-else-1"))
        .await
        .unwrap();
    h.github.add(111, "myshoes-11-1", "online", false);
    h.github.add(112, "myshoes-11-2", "online", true);
    h.datastore
        .acquire_slot(&profile_pool("linux"), 10, &idle_job.id.to_string(), MINUTE)
        .await
        .unwrap();

    let report = h.sweeper().sweep().await.unwrap();
    assert_eq!(
        report.for_instance(&idle.cloud_id).unwrap().reason,
        SweepReason::IdleTooShort,
        "a new instance is left alone"
    );

    h.config.min_idle_lifetime = Duration::ZERO;
    h.config.boot_grace = Duration::ZERO;
    let report = h.sweeper().sweep().await.unwrap();
    assert_eq!(
        report.for_instance(&idle.cloud_id).unwrap().reason,
        SweepReason::Idle
    );
    assert_eq!(
        report.for_instance(&busy.cloud_id).unwrap().reason,
        SweepReason::Busy,
        "a busy runner without a record is never deleted"
    );
    assert_eq!(
        report.for_instance(&foreign.cloud_id).unwrap().reason,
        SweepReason::ForeignInstance
    );
    assert_eq!(h.stadium.delete_calls(), [idle.cloud_id]);
    assert!(!h.github.exists(111), "the idle runner was deregistered");
    assert_eq!(
        h.datastore
            .count_slots(&profile_pool("linux"))
            .await
            .unwrap(),
        0,
        "the orphan's slot is given back"
    );
}

#[tokio::test]
async fn orphan_without_github_view_goes_after_the_grace() {
    let mut h = harness().await;
    let orphan = h
        .stadium
        .add_instance(&harmless_request("myshoes-11-3"))
        .await
        .unwrap();
    let sweeper =
        |config: SweeperConfig| Sweeper::new(h.datastore.clone(), h.stadium.clone(), None, config);
    let report = sweeper(h.config.clone()).sweep().await.unwrap();
    assert_eq!(
        report.for_instance(&orphan.cloud_id).unwrap().reason,
        SweepReason::Booting
    );
    h.config.boot_grace = Duration::ZERO;
    let report = sweeper(h.config.clone()).sweep().await.unwrap();
    assert_eq!(
        report.for_instance(&orphan.cloud_id).unwrap().reason,
        SweepReason::NoRecord
    );
}

#[tokio::test]
async fn github_errors_delete_nothing() {
    let h = harness().await;
    let runner = h.runner("myshoes-12-1", 30 * MINUTE, Some(121)).await;
    h.github.state.lock().unwrap().fail_list = true;
    let report = h.sweeper().sweep().await.unwrap();
    let decision = report.for_runner(runner.id).unwrap();
    assert_eq!(decision.action, SweepAction::Keep);
    assert!(matches!(decision.reason, SweepReason::GitHubUnknown(_)));
    assert!(h.instance_running(&runner));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sweeper_never_runs_two_passes_at_once() {
    let h = harness().await;
    // A slow GitHub keeps the first pass inside its lock.
    let slow = Arc::new(SlowGitHub(h.github.clone()));
    h.runner("myshoes-14-1", 30 * MINUTE, Some(141)).await;
    h.github.add(141, "myshoes-14-1", "online", true);
    let sweeper = Arc::new(Sweeper::new(
        h.datastore.clone(),
        h.stadium.clone(),
        Some(slow),
        h.config.clone(),
    ));
    let first = tokio::spawn({
        let sweeper = sweeper.clone();
        async move { sweeper.sweep().await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = sweeper.sweep().await;
    assert!(
        second.is_err(),
        "a second pass of one sweeper must wait its turn"
    );
    first.await.unwrap().unwrap();
    assert!(
        h.datastore
            .lock_holder(myshoes::sweeper::SWEEP_LOCK)
            .await
            .unwrap()
            .is_none(),
        "the lock is released after the pass"
    );
}

/// Delays every runner listing by 300 ms.
#[derive(Debug)]
struct SlowGitHub(Arc<FakeGitHub>);

#[async_trait]
impl GitHubApi for SlowGitHub {
    async fn job_status(
        &self,
        installation: &Installation,
        repository: &RepositoryName,
        job_id: u64,
    ) -> Result<WorkflowJobStatus, GitHubError> {
        self.0.job_status(installation, repository, job_id).await
    }

    async fn create_runner_credential(
        &self,
        request: &CredentialRequest<'_>,
    ) -> Result<RunnerCredential, GitHubError> {
        self.0.create_runner_credential(request).await
    }

    async fn list_runners(
        &self,
        installation: &Installation,
        scope: &Scope,
    ) -> Result<Vec<GitHubRunner>, GitHubError> {
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.0.list_runners(installation, scope).await
    }

    async fn get_runner(
        &self,
        installation: &Installation,
        scope: &Scope,
        runner_id: u64,
    ) -> Result<Option<GitHubRunner>, GitHubError> {
        self.0.get_runner(installation, scope, runner_id).await
    }

    async fn delete_runner(
        &self,
        installation: &Installation,
        scope: &Scope,
        runner_id: u64,
    ) -> Result<(), GitHubError> {
        self.0.delete_runner(installation, scope, runner_id).await
    }
}

#[tokio::test]
async fn two_sweepers_never_run_at_once() {
    let h = harness().await;
    h.datastore
        .acquire_lock(myshoes::sweeper::SWEEP_LOCK, "other-sweeper", MINUTE)
        .await
        .unwrap();
    let error = h.sweeper().sweep().await.unwrap_err();
    assert!(error.to_string().contains("other-sweeper"), "{error}");
}

#[test]
fn decisions_are_counted_and_logged() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let h = harness().await;
            h.runner("myshoes-13-1", 30 * MINUTE, Some(131)).await;
            h.github.add(131, "myshoes-13-1", "online", false);
            h.runner("myshoes-13-2", 30 * MINUTE, Some(132)).await;
            h.github.add(132, "myshoes-13-2", "online", true);
            h.sweeper().sweep().await.unwrap();
        });
    });
    let mut counters = std::collections::BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        if let DebugValue::Counter(count) = value {
            let labels: Vec<String> = key
                .key()
                .labels()
                .map(|label| format!("{}={}", label.key(), label.value()))
                .collect();
            counters.insert(format!("{}{labels:?}", key.key().name()), count);
        }
    }
    assert_eq!(
        counters.get(r#"myshoes_sweeper_deletions_total["reason=idle"]"#),
        Some(&1),
        "{counters:?}"
    );
    assert_eq!(
        counters.get(r#"myshoes_sweeper_decisions_total["action=keep", "reason=busy"]"#),
        Some(&1),
        "{counters:?}"
    );
}
