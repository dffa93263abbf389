//! Dispatcher behaviour over the in-memory Datastore and Stadium.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use myshoes::credentials::{
    CredentialError, CredentialRequest, RunnerCredentials, StaticRegistrationToken,
};
use myshoes::datastore::conformance::sample_job;
use myshoes::datastore::{Datastore, MemoryDatastore};
use myshoes::dispatcher::{Dispatcher, DispatcherConfig, Outcome, RetryPolicy};
use myshoes::model::{GitHubHost, Job, ResourceType, RunnerStatus, Target, TargetStatus};
use myshoes::profile::{LabelMatchMode, Profiles, RunnerProfile};
use myshoes::secret::Secret;
use myshoes::setup_script::RunnerCredential;
use myshoes::stadium::{
    self, AddInstanceRequest, Instance, MemoryStadium, ScriptedFailure, Stadium,
};

struct Harness {
    datastore: Arc<MemoryDatastore>,
    stadium: Arc<MemoryStadium>,
    target: Target,
    dispatcher: Arc<Dispatcher>,
}

fn profiles() -> Profiles {
    Profiles::new(
        vec![
            // A job asking for `linux` alone also fits `linux-large`, so the small profile
            // comes first.
            RunnerProfile::new("linux", ["linux"]).with_priority(10),
            RunnerProfile::new("linux-large", ["linux", "large"])
                .with_resource_type(ResourceType::XLarge),
        ],
        LabelMatchMode::Subset,
    )
    .unwrap()
}

fn config() -> DispatcherConfig {
    let mut config = DispatcherConfig::default();
    config.retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
        jitter: false,
        max_age: None,
    };
    config.receive_wait = Duration::from_secs(5);
    config
}

/// Creates an active organization target `octo-org` on github.com in `datastore`.
async fn org_target(datastore: &MemoryDatastore) -> Target {
    let target = Target::new(
        "octo-org".parse().unwrap(),
        GitHubHost::github_com(),
        ResourceType::Small,
    );
    datastore.create_target(&target).await.unwrap();
    target
}

/// Builds a dispatcher with the test profiles and a static registration token.
fn dispatcher_over(
    datastore: Arc<MemoryDatastore>,
    stadium: Arc<dyn Stadium>,
    config: DispatcherConfig,
) -> Dispatcher {
    Dispatcher::new(
        datastore,
        stadium,
        Arc::new(StaticRegistrationToken::new(Secret::new("t"))),
        profiles(),
        config,
    )
    .unwrap()
}

async fn harness_with(
    credentials: Arc<dyn RunnerCredentials>,
    config: DispatcherConfig,
) -> Harness {
    let datastore = Arc::new(MemoryDatastore::new());
    let stadium = Arc::new(MemoryStadium::new());
    let target = org_target(&datastore).await;
    let dispatcher = Dispatcher::new(
        datastore.clone(),
        stadium.clone(),
        credentials,
        profiles(),
        config,
    )
    .unwrap();
    Harness {
        datastore,
        stadium,
        target,
        dispatcher: Arc::new(dispatcher),
    }
}

async fn harness() -> Harness {
    harness_with(
        Arc::new(StaticRegistrationToken::new(Secret::new(
            "static-registration-token",
        ))),
        config(),
    )
    .await
}

impl Harness {
    async fn enqueue(&self, labels: &[&str]) -> Job {
        let mut job = sample_job(self.target.id);
        job.labels = labels.iter().map(|label| label.to_string()).collect();
        self.datastore.enqueue_job(&job).await.unwrap();
        job
    }

    async fn process_next(&self) -> Outcome {
        let mut received = self
            .datastore
            .receive_jobs(1, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(received.len(), 1, "a job must be waiting");
        self.dispatcher.process(received.remove(0)).await
    }
}

#[tokio::test]
async fn queued_job_launches_one_runner() {
    let h = harness().await;
    let job = h.enqueue(&["self-hosted", "Linux"]).await;

    let outcome = h.process_next().await;
    let Outcome::Launched {
        runner,
        profile,
        recorded,
        instance,
        ..
    } = outcome
    else {
        panic!("expected a launch, got {outcome:?}");
    };
    assert_eq!(profile, "linux");
    assert!(recorded);
    assert_eq!(runner.name, format!("myshoes-{}-1", job.workflow_job_id));
    assert_eq!(runner.job_id, job.id);
    assert_eq!(runner.target_id, h.target.id);
    assert_eq!(runner.cloud_id, instance.cloud_id);
    assert_eq!(runner.status, RunnerStatus::Running);
    assert_eq!(
        runner.resource_type,
        ResourceType::Small,
        "the target's size when the profile has none"
    );

    let stored = h.datastore.get_runner(runner.id).await.unwrap();
    assert_eq!(stored, runner);
    assert!(
        h.datastore.list_jobs().await.unwrap().is_empty(),
        "the job must be deleted"
    );

    let calls = h.stadium.add_calls();
    assert_eq!(calls.len(), 1);
    let request = &calls[0];
    assert_eq!(request.runner_name, runner.name);
    assert_eq!(request.labels, vec!["linux".to_owned()]);
    assert_eq!(request.job_id, job.id);
    let script = request.setup_script.script();
    assert!(
        script.contains("https://github.com/octo-org"),
        "script registers on the target scope"
    );
    assert!(
        script.contains("static-registration-token"),
        "script carries the credential"
    );
}

#[tokio::test]
async fn profile_resource_type_overrides_target() {
    let h = harness().await;
    h.enqueue(&["linux", "large"]).await;
    let Outcome::Launched {
        profile, runner, ..
    } = h.process_next().await
    else {
        panic!("expected a launch");
    };
    assert_eq!(profile, "linux-large");
    assert_eq!(runner.resource_type, ResourceType::XLarge);
    assert_eq!(h.stadium.add_calls()[0].resource_type, ResourceType::XLarge);
}

#[tokio::test]
async fn retryable_failure_retries_then_launches() {
    let h = harness().await;
    let job = h.enqueue(&["linux"]).await;
    h.stadium.push_failure(ScriptedFailure::Capacity);

    let Outcome::RetryScheduled {
        job: failed,
        reason,
        ..
    } = h.process_next().await
    else {
        panic!("expected a retry");
    };
    assert_eq!(failed.id, job.id);
    assert!(reason.contains("no capacity"), "{reason}");
    assert_eq!(
        h.datastore.list_jobs().await.unwrap().len(),
        1,
        "the job stays queued"
    );

    let outcome = h.process_next().await;
    let Outcome::Launched { job: launched, .. } = outcome else {
        panic!("expected a launch, got {outcome:?}");
    };
    assert_eq!(launched.attempt, 1, "the second attempt is counted");
    assert_eq!(h.stadium.running().len(), 1, "exactly one instance runs");
}

#[tokio::test]
async fn retries_stop_at_max_attempts() {
    let h = harness().await;
    h.enqueue(&["linux"]).await;
    for _ in 0..3 {
        h.stadium.push_failure(ScriptedFailure::Throttled);
    }
    assert!(matches!(
        h.process_next().await,
        Outcome::RetryScheduled { .. }
    ));
    assert!(matches!(
        h.process_next().await,
        Outcome::RetryScheduled { .. }
    ));
    let Outcome::Dropped { reason, .. } = h.process_next().await else {
        panic!("the third failure must drop the job");
    };
    assert!(reason.starts_with("gave up after 3 attempts"), "{reason}");
    assert!(
        h.datastore.list_jobs().await.unwrap().is_empty(),
        "a dropped job leaves the queue"
    );
    assert!(h.datastore.list_runners().await.unwrap().is_empty());
}

#[tokio::test]
async fn permanent_failure_drops_job() {
    let h = harness().await;
    h.enqueue(&["linux"]).await;
    h.stadium.push_failure(ScriptedFailure::AccessDenied);
    let Outcome::Dropped { reason, .. } = h.process_next().await else {
        panic!("expected a drop");
    };
    assert!(reason.contains("access denied"), "{reason}");
    assert!(h.datastore.list_jobs().await.unwrap().is_empty());
    assert!(h.stadium.running().is_empty());
}

#[tokio::test]
async fn suspended_target_drops_job() {
    let h = harness().await;
    h.enqueue(&["linux"]).await;
    h.datastore
        .update_target_status(h.target.id, TargetStatus::Suspend, Some("maintenance"))
        .await
        .unwrap();
    let Outcome::Dropped { reason, .. } = h.process_next().await else {
        panic!("expected a drop");
    };
    assert!(reason.contains("is suspend"), "{reason}");
    assert!(
        h.stadium.add_calls().is_empty(),
        "nothing may launch for a suspended target"
    );
}

#[tokio::test]
async fn missing_target_drops_job() {
    let h = harness().await;
    let mut job = sample_job(myshoes::model::TargetId::new_random());
    job.labels = vec!["linux".into()];
    h.datastore.enqueue_job(&job).await.unwrap();
    let Outcome::Dropped { reason, .. } = h.process_next().await else {
        panic!("expected a drop");
    };
    assert!(reason.contains("no longer exists"), "{reason}");
}

#[tokio::test]
async fn unmatched_labels_drop_job() {
    let h = harness().await;
    h.enqueue(&["windows"]).await;
    let Outcome::Dropped { reason, .. } = h.process_next().await else {
        panic!("expected a drop");
    };
    assert!(reason.contains("no runner profile matches"), "{reason}");
    assert!(h.stadium.add_calls().is_empty());
}

#[derive(Debug)]
struct FailingCredentials {
    retryable: bool,
}

#[async_trait]
impl RunnerCredentials for FailingCredentials {
    async fn runner_credential(
        &self,
        request: &CredentialRequest<'_>,
    ) -> Result<RunnerCredential, CredentialError> {
        Err(CredentialError::Backend {
            source_name: "test",
            scope: request.target.scope.to_string(),
            retryable: self.retryable,
            source: Box::new(std::io::Error::other("GitHub unavailable")),
        })
    }
}

#[tokio::test]
async fn credential_failures_follow_retryability() {
    let h = harness_with(Arc::new(FailingCredentials { retryable: true }), config()).await;
    h.enqueue(&["linux"]).await;
    let Outcome::RetryScheduled { reason, .. } = h.process_next().await else {
        panic!("a retryable credential failure must retry");
    };
    assert!(
        reason.contains("GitHub unavailable"),
        "the source chain is kept: {reason}"
    );

    let h = harness_with(Arc::new(FailingCredentials { retryable: false }), config()).await;
    h.enqueue(&["linux"]).await;
    assert!(matches!(h.process_next().await, Outcome::Dropped { .. }));
    assert!(h.stadium.add_calls().is_empty());
}

#[tokio::test]
async fn loop_wakes_on_enqueue_and_stops() {
    let mut config = config();
    config.receive_wait = Duration::from_secs(3600);
    let h = harness_with(
        Arc::new(StaticRegistrationToken::new(Secret::new("t"))),
        config,
    )
    .await;
    let mut outcomes = h.dispatcher.subscribe();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(h.dispatcher.clone().run_until(async {
        let _ = stopped.await;
    }));

    // The loop is already waiting in a one-hour receive; the enqueue must wake it.
    let job = h.enqueue(&["linux"]).await;
    let outcome = tokio::time::timeout(Duration::from_secs(30), outcomes.recv())
        .await
        .expect("the loop must process the job without waiting for the receive to time out")
        .unwrap();
    assert_eq!(outcome.job().id, job.id);
    assert!(matches!(outcome, Outcome::Launched { .. }));

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the loop must stop on shutdown")
        .unwrap();
}

/// A Stadium that holds every launch until released and counts launches in progress.
#[derive(Debug)]
struct GatedStadium {
    inner: MemoryStadium,
    in_progress: AtomicUsize,
    max_in_progress: AtomicUsize,
    gate: tokio::sync::Semaphore,
}

impl std::fmt::Display for GatedStadium {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GatedStadium")
    }
}

#[async_trait]
impl Stadium for GatedStadium {
    async fn add_instance(&self, request: &AddInstanceRequest) -> stadium::Result<Instance> {
        let now = self.in_progress.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_progress.fetch_max(now, Ordering::SeqCst);
        let permit = self.gate.acquire().await.expect("gate open");
        permit.forget();
        self.in_progress.fetch_sub(1, Ordering::SeqCst);
        self.inner.add_instance(request).await
    }

    async fn delete_instance(&self, cloud_id: &str, labels: &[String]) -> stadium::Result<()> {
        self.inner.delete_instance(cloud_id, labels).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loop_bounds_concurrency() {
    let datastore = Arc::new(MemoryDatastore::new());
    let stadium = Arc::new(GatedStadium {
        inner: MemoryStadium::new(),
        in_progress: AtomicUsize::new(0),
        max_in_progress: AtomicUsize::new(0),
        gate: tokio::sync::Semaphore::new(0),
    });
    let target = org_target(&datastore).await;
    let mut config = config();
    config.max_concurrency = 3;
    let dispatcher = Arc::new(dispatcher_over(datastore.clone(), stadium.clone(), config));
    let mut outcomes = dispatcher.subscribe();
    for _ in 0..10 {
        let mut job = sample_job(target.id);
        job.labels = vec!["linux".into()];
        datastore.enqueue_job(&job).await.unwrap();
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(dispatcher.clone().run_until(async {
        let _ = stopped.await;
    }));

    // Wait until three launches are blocked at the gate, then let them all through.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while stadium.in_progress.load(Ordering::SeqCst) < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "three launches must start"
        );
        tokio::task::yield_now().await;
    }
    stadium.gate.add_permits(10);
    for _ in 0..10 {
        let outcome = tokio::time::timeout(Duration::from_secs(30), outcomes.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(outcome, Outcome::Launched { .. }), "{outcome:?}");
    }
    assert_eq!(
        stadium.max_in_progress.load(Ordering::SeqCst),
        3,
        "at most max_concurrency launches at once"
    );
    assert_eq!(datastore.list_runners().await.unwrap().len(), 10);
    stop.send(()).unwrap();
    running.await.unwrap();
}

#[derive(Debug)]
struct FixedStatus(
    Result<myshoes::job_status::WorkflowJobStatus, &'static str>,
    Option<&'static str>,
);

#[async_trait]
impl myshoes::job_status::JobStatusSource for FixedStatus {
    async fn workflow_job_state(
        &self,
        _job: &Job,
    ) -> Result<myshoes::job_status::WorkflowJobState, myshoes::datastore::BoxError> {
        let status = self
            .0
            .clone()
            .map_err(|message| -> myshoes::datastore::BoxError { message.into() })?;
        Ok(myshoes::job_status::WorkflowJobState {
            status,
            runner_name: self.1.map(str::to_owned),
        })
    }
}

async fn harness_with_status(status: FixedStatus) -> Harness {
    let mut h = harness().await;
    let dispatcher = dispatcher_over(h.datastore.clone(), h.stadium.clone(), config())
        .with_job_status_source(Arc::new(status));
    h.dispatcher = Arc::new(dispatcher);
    h
}

#[tokio::test]
async fn started_or_finished_job_is_skipped() {
    use myshoes::job_status::WorkflowJobStatus;
    for status in [WorkflowJobStatus::InProgress, WorkflowJobStatus::Completed] {
        let h = harness_with_status(FixedStatus(
            Ok(status.clone()),
            Some("someone-elses-runner"),
        ))
        .await;
        h.enqueue(&["linux"]).await;
        let outcome = h.process_next().await;
        let Outcome::Skipped { reason, .. } = outcome else {
            panic!("{status}: expected a skip, got {outcome:?}");
        };
        assert!(reason.contains(&status.to_string()), "{reason}");
        assert!(
            h.stadium.add_calls().is_empty(),
            "{status}: nothing may launch"
        );
        assert!(
            h.datastore.list_jobs().await.unwrap().is_empty(),
            "the job is acknowledged"
        );
    }
}

#[tokio::test]
async fn queued_job_passes_status_check() {
    let h = harness_with_status(FixedStatus(
        Ok(myshoes::job_status::WorkflowJobStatus::Queued),
        None,
    ))
    .await;
    h.enqueue(&["linux"]).await;
    assert!(matches!(h.process_next().await, Outcome::Launched { .. }));
    assert_eq!(h.dispatcher.status_check_errors(), 0);
}

#[tokio::test]
async fn status_check_error_launches_and_counts() {
    let h = harness_with_status(FixedStatus(Err("GitHub timed out"), None)).await;
    h.enqueue(&["linux"]).await;
    assert!(matches!(h.process_next().await, Outcome::Launched { .. }));
    assert_eq!(h.dispatcher.status_check_errors(), 1);
}

#[tokio::test]
async fn relaunch_of_launched_job_is_skipped() {
    // A Datastore without a deduplication window lets a redelivered job into the queue;
    // the launch claim still stops a second runner.
    let datastore = Arc::new(
        MemoryDatastore::builder()
            .with_dedup_window(Duration::ZERO)
            .build(),
    );
    let stadium = Arc::new(MemoryStadium::new());
    let target = org_target(&datastore).await;
    let dispatcher = dispatcher_over(datastore.clone(), stadium.clone(), config());
    let mut job = sample_job(target.id);
    job.labels = vec!["linux".into()];

    for round in 0..3 {
        datastore.enqueue_job(&job).await.unwrap();
        let received = datastore
            .receive_jobs(1, Duration::from_secs(5))
            .await
            .unwrap()
            .remove(0);
        let outcome = dispatcher.process(received).await;
        if round == 0 {
            assert!(matches!(outcome, Outcome::Launched { .. }), "{outcome:?}");
        } else {
            assert!(
                matches!(outcome, Outcome::Skipped { .. }),
                "round {round}: {outcome:?}"
            );
        }
    }
    assert_eq!(
        stadium.add_calls().len(),
        1,
        "one launch for one job attempt"
    );
    assert_eq!(datastore.list_runners().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_dispatchers_launch_once() {
    // Two dispatchers see the same job attempt at once (two copies in two queues, as two
    // webhooks with different delivery ids could produce with a queue that does not
    // deduplicate), sharing one Datastore for claims and one Stadium.
    let shared = Arc::new(MemoryDatastore::new());
    let stadium = Arc::new(MemoryStadium::new());
    let target = org_target(&shared).await;
    let mut job = sample_job(target.id);
    job.labels = vec!["linux".into()];
    let make = |owner: &str| {
        let mut config = config();
        config.owner_id = owner.to_owned();
        Arc::new(dispatcher_over(shared.clone(), stadium.clone(), config))
    };
    let (a, b) = (make("dispatcher-a"), make("dispatcher-b"));
    let ack = |n: &str| myshoes::datastore::ReceivedJob {
        job: job.clone(),
        ack: myshoes::datastore::AckHandle::new(job.id, n),
    };
    let (first, second) = tokio::join!(a.process(ack("copy-a")), b.process(ack("copy-b")));
    let launched = [&first, &second]
        .iter()
        .filter(|outcome| matches!(outcome, Outcome::Launched { .. }))
        .count();
    assert_eq!(launched, 1, "{first:?} {second:?}");
    assert_eq!(
        stadium.add_calls().len(),
        1,
        "one instance for one job attempt"
    );
}

#[tokio::test]
async fn old_job_is_dropped_despite_attempts() {
    let mut config = config();
    config.retry.max_attempts = 100;
    config.retry.max_age = Some(Duration::from_secs(60));
    let h = harness_with(
        Arc::new(StaticRegistrationToken::new(Secret::new("t"))),
        config,
    )
    .await;
    let mut job = sample_job(h.target.id);
    job.labels = vec!["linux".into()];
    job.received_at = chrono::Utc::now() - chrono::Duration::seconds(120);
    h.datastore.enqueue_job(&job).await.unwrap();
    h.stadium.push_failure(ScriptedFailure::Capacity);
    let Outcome::Dropped { reason, .. } = h.process_next().await else {
        panic!("a job past max_age must be dropped");
    };
    assert!(
        reason.starts_with("gave up after 120 s since the webhook")
            || reason.starts_with("gave up after 121 s"),
        "{reason}"
    );
}

#[test]
fn outcomes_are_counted() {
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
            h.enqueue(&["linux"]).await;
            assert!(matches!(h.process_next().await, Outcome::Launched { .. }));
            h.enqueue(&["windows"]).await;
            assert!(matches!(h.process_next().await, Outcome::Dropped { .. }));
        });
    });

    let mut launched = None;
    let mut dropped = None;
    let mut latencies = 0;
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let name = key.key().name().to_owned();
        let outcome = key
            .key()
            .labels()
            .find(|label| label.key() == "outcome")
            .map(|label| label.value().to_owned());
        match (name.as_str(), outcome.as_deref(), value) {
            ("myshoes_dispatch_outcomes_total", Some("launched"), DebugValue::Counter(count)) => {
                launched = Some(count)
            }
            ("myshoes_dispatch_outcomes_total", Some("dropped"), DebugValue::Counter(count)) => {
                dropped = Some(count)
            }
            ("myshoes_launch_latency_seconds", None, DebugValue::Histogram(values)) => {
                latencies = values.len()
            }
            _ => {}
        }
    }
    assert_eq!(launched, Some(1));
    assert_eq!(dropped, Some(1));
    assert_eq!(latencies, 1, "one latency per launch");
}

#[tokio::test]
async fn job_taken_by_own_runner_still_launches() {
    // The runner launched for another job took this one, so that other job now needs the
    // runner launched for this one.
    let h = harness_with_status(FixedStatus(
        Ok(myshoes::job_status::WorkflowJobStatus::InProgress),
        Some("myshoes-12345-1"),
    ))
    .await;
    h.enqueue(&["linux"]).await;
    assert!(matches!(h.process_next().await, Outcome::Launched { .. }));
}

#[tokio::test]
async fn claim_conflict_defers_without_attempt_limit() {
    let h = harness().await;
    let job = h.enqueue(&["linux"]).await;
    // Another receive of the same job has the claim.
    h.datastore
        .claim_launch(job.id, "other-dispatcher/receipt", Duration::from_secs(60))
        .await
        .unwrap();
    let mut received = h
        .datastore
        .receive_jobs(1, Duration::from_secs(5))
        .await
        .unwrap();
    received[0].job.attempt = 50; // far past max_attempts (3)
    let outcome = h.dispatcher.process(received.remove(0)).await;
    let Outcome::RetryScheduled { reason, delay, .. } = outcome else {
        panic!("a conflict must defer, not drop: {outcome:?}");
    };
    assert!(reason.contains("another dispatcher"), "{reason}");
    assert_eq!(delay, h.dispatcher.config().launch_lease);
    assert!(h.stadium.add_calls().is_empty());
}
