//! Fault matrix: every fault at every call site of the dispatcher, with the real run loop,
//! retries and redelivery, must still end each job as exactly one launch or one dead
//! letter.
//!
//! Time is paused, so visibility timeouts, retry delays and lease expiries pass as soon as
//! the runtime is idle. The test waits on no wall clock.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use myshoes::credentials::StaticRegistrationToken;
use myshoes::datastore::conformance::sample_job;
use myshoes::datastore::{Datastore, MemoryDatastore};
use myshoes::dispatcher::{Dispatcher, DispatcherConfig, RetryPolicy};
use myshoes::fault::{
    Fault, FaultPlan, FaultRule, FaultyCredentials, FaultyDatastore, FaultyStadium, InjectedCrash,
    Op,
};
use myshoes::model::{GitHubHost, JobId, ResourceType, Target};
use myshoes::profile::{LabelMatchMode, Profiles, RunnerProfile};
use myshoes::secret::Secret;
use myshoes::stadium::{
    self, AddInstanceRequest, Instance, ListedInstance, MemoryStadium, Stadium,
};

const JOBS: usize = 20;

/// Visibility timeout of the queue: a received job that is neither deleted nor returned
/// comes back after it.
const VISIBILITY_TIMEOUT: Duration = Duration::from_secs(30);

/// Virtual time after which a cell that has not settled counts its remaining jobs as lost.
const SETTLE_LIMIT: Duration = Duration::from_secs(6 * 3600);

/// The dispatcher's call sites, as the report names them.
const SITES: [(&str, Op); 10] = [
    ("receive", Op::ReceiveJobs),
    ("claim_launch", Op::ClaimLaunch),
    ("acquire_slot", Op::AcquireSlot),
    ("credential", Op::RunnerCredential),
    ("add_instance", Op::AddInstance),
    ("create_runner", Op::CreateRunner),
    ("complete_launch", Op::CompleteLaunch),
    ("delete_job", Op::DeleteJob),
    ("retry_job", Op::RetryJob),
    ("dead_letter_job", Op::DeadLetterJob),
];

/// A Stadium that records, per job, every instance the inner Stadium returned, so the
/// test counts instances started, not dispatcher outcomes. It sits below the fault
/// decorators, so a launch whose response was lost is counted too.
#[derive(Clone, Default)]
struct CountingStadium {
    inner: MemoryStadium,
    started: Arc<Mutex<Vec<(JobId, String)>>>,
}

impl fmt::Debug for CountingStadium {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountingStadium").finish_non_exhaustive()
    }
}

impl fmt::Display for CountingStadium {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CountingStadium")
    }
}

#[async_trait]
impl Stadium for CountingStadium {
    async fn add_instance(&self, request: &AddInstanceRequest) -> stadium::Result<Instance> {
        let instance = self.inner.add_instance(request).await?;
        self.started
            .lock()
            .unwrap()
            .push((request.job_id, instance.cloud_id.clone()));
        Ok(instance)
    }

    async fn delete_instance(&self, cloud_id: &str, labels: &[String]) -> stadium::Result<()> {
        self.inner.delete_instance(cloud_id, labels).await
    }

    async fn list_instances(&self) -> stadium::Result<Vec<ListedInstance>> {
        self.inner.list_instances().await
    }
}

/// One row of the matrix.
#[derive(Debug, Default, Clone)]
struct Row {
    site: &'static str,
    fault: &'static str,
    jobs: usize,
    launched: usize,
    dead_lettered: usize,
    lost: usize,
    doubled: usize,
    /// `add_instance` calls that returned an instance already started for the same job:
    /// the dispatcher launched again, and only the Stadium's idempotency per runner name
    /// kept it to one instance.
    re_adds: usize,
    /// Launched jobs without a runner record.
    unrecorded: usize,
    /// Runner records beyond the first for one job: the dispatcher recorded the same
    /// launch twice.
    extra_records: usize,
    /// Dispatcher loops that stopped on an injected crash and were started again.
    restarts: usize,
    injected: usize,
    /// Job ids that were lost or doubled, for the failure message.
    bad_jobs: Vec<String>,
}

fn profiles() -> Profiles {
    // The cap is far above the job count: it is there so every launch takes a slot.
    Profiles::new(
        vec![RunnerProfile::new("linux", ["linux"]).with_max_runners(1000)],
        LabelMatchMode::Subset,
    )
    .unwrap()
}

fn config() -> DispatcherConfig {
    let mut config = DispatcherConfig::default();
    config.retry = RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(8),
        jitter: false,
        max_age: None,
    };
    config.receive_wait = Duration::from_secs(5);
    config.max_concurrency = 4;
    config.launch_lease = Duration::from_secs(10);
    config.cap_wait = Duration::from_secs(5);
    config
}

/// Runs `JOBS` jobs through the dispatcher with `fault` injected at every odd-numbered
/// call of `op`.
///
/// Every fifth job has labels no profile matches, so it must end as a dead letter, and
/// the first `add_instance` of every fifth job (another one) fails with a capacity error,
/// so `retry_job` and `dead_letter_job` are called in every cell.
async fn run_cell(site: &'static str, op: Op, fault: Fault) -> Row {
    let store = MemoryDatastore::builder()
        .with_visibility_timeout(VISIBILITY_TIMEOUT)
        .build();
    let target = Target::new(
        "octo-org".parse().unwrap(),
        GitHubHost::github_com(),
        ResourceType::Small,
    );
    store.create_target(&target).await.unwrap();

    let mut unlaunchable = HashSet::new();
    let mut capacity_once = HashSet::new();
    let mut all_jobs = Vec::new();
    for index in 0..JOBS {
        let mut job = sample_job(target.id);
        if index % 5 == 4 {
            job.labels = vec!["self-hosted".into(), "gpu".into()];
            unlaunchable.insert(job.id);
        }
        if index % 5 == 3 {
            capacity_once.insert(job.id);
        }
        store.enqueue_job(&job).await.unwrap();
        all_jobs.push(job.id);
    }

    let plan =
        FaultPlan::new().with_rule(FaultRule::new(op, fault).when(|call| call.call % 2 == 1));
    let background = FaultPlan::new();
    let first_adds = Mutex::new(HashSet::new());
    background.add_rule(
        FaultRule::new(Op::AddInstance, Fault::Capacity).when(move |call| {
            let job_id = call.job_id.expect("add_instance names its job");
            capacity_once.contains(&job_id) && first_adds.lock().unwrap().insert(job_id)
        }),
    );

    let counting = CountingStadium::default();
    let stadium: Arc<dyn Stadium> = Arc::new(FaultyStadium::new(
        FaultyStadium::new(counting.clone(), background),
        plan.clone(),
    ));
    let datastore: Arc<dyn Datastore> = Arc::new(FaultyDatastore::new(store.clone(), plan.clone()));
    let credentials = Arc::new(FaultyCredentials::new(
        StaticRegistrationToken::new(Secret::new("registration-token")),
        plan.clone(),
    ));

    let mut restarts = 0;
    let started = tokio::time::Instant::now();
    loop {
        let dispatcher = Arc::new(
            Dispatcher::new(
                datastore.clone(),
                stadium.clone(),
                credentials.clone(),
                profiles(),
                config(),
            )
            .unwrap(),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let mut handle = tokio::spawn(dispatcher.run_until(async move {
            let _ = stopped.await;
        }));

        let settled = loop {
            tokio::select! {
                finished = &mut handle => {
                    let error = finished.expect_err("the loop stops only when told or on a crash");
                    let payload = error.into_panic();
                    assert!(
                        InjectedCrash::from_panic(payload.as_ref()).is_some(),
                        "the dispatcher loop panicked without an injected crash"
                    );
                    break false;
                }
                () = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
            if store.list_jobs().await.unwrap().is_empty() || started.elapsed() > SETTLE_LIMIT {
                break true;
            }
        };
        if settled {
            let _ = stop.send(());
            handle.await.expect("the dispatcher loop stops cleanly");
            break;
        }
        restarts += 1;
    }

    let mut instances: HashMap<JobId, Vec<String>> = HashMap::new();
    let mut re_adds = 0;
    for (job_id, cloud_id) in counting.started.lock().unwrap().iter() {
        let seen = instances.entry(*job_id).or_default();
        if seen.contains(cloud_id) {
            re_adds += 1;
        } else {
            seen.push(cloud_id.clone());
        }
    }
    let mut dead: HashMap<JobId, usize> = HashMap::new();
    for letter in store.list_dead_letters().await.unwrap() {
        assert!(!letter.reason.is_empty(), "a dead letter without a reason");
        *dead.entry(letter.job.id).or_default() += 1;
    }
    let mut records: HashMap<JobId, usize> = HashMap::new();
    for runner in store.list_runners().await.unwrap() {
        *records.entry(runner.job_id).or_default() += 1;
    }

    let mut row = Row {
        site,
        fault: fault.name(),
        jobs: JOBS,
        re_adds,
        restarts,
        injected: plan.injected().len(),
        ..Row::default()
    };
    for job_id in &all_jobs {
        let launches = instances.get(job_id).map_or(0, Vec::len);
        let letters = dead.get(job_id).copied().unwrap_or(0);
        assert!(
            !(unlaunchable.contains(job_id) && launches > 0),
            "{site}/{fault}: a job no profile matches got a runner"
        );
        match (launches, letters) {
            (1, 0) => {
                row.launched += 1;
                match records.get(job_id).copied().unwrap_or(0) {
                    0 => row.unrecorded += 1,
                    count => row.extra_records += count - 1,
                }
            }
            (0, 1) => row.dead_lettered += 1,
            (0, 0) => {
                row.lost += 1;
                row.bad_jobs.push(format!("{job_id} lost"));
            }
            _ => {
                row.doubled += 1;
                row.bad_jobs.push(format!(
                    "{job_id}: {launches} instances, {letters} dead letters"
                ));
            }
        }
    }
    row
}

fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| site | fault | jobs | launched | dead-lettered | lost | doubled | re-adds | unrecorded | extra records | restarts | faults injected |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            row.site,
            row.fault,
            row.jobs,
            row.launched,
            row.dead_lettered,
            row.lost,
            row.doubled,
            row.re_adds,
            row.unrecorded,
            row.extra_records,
            row.restarts,
            row.injected,
        ));
    }
    out
}

#[tokio::test(start_paused = true)]
async fn every_fault_at_every_site_loses_nothing() {
    let mut rows = Vec::new();
    for (site, op) in SITES {
        for fault in Fault::ALL {
            rows.push(run_cell(site, op, fault).await);
        }
    }
    println!("{}", table(&rows));

    let mut problems = BTreeMap::new();
    for row in &rows {
        assert_eq!(
            row.launched + row.dead_lettered + row.lost + row.doubled,
            row.jobs,
            "{}/{}: every job is counted once",
            row.site,
            row.fault
        );
        assert!(
            row.injected > 0,
            "{}/{}: the fault was never injected, so the cell tests nothing",
            row.site,
            row.fault
        );
        if row.lost > 0 || row.doubled > 0 {
            problems.insert(format!("{}/{}", row.site, row.fault), row.bad_jobs.clone());
        }
    }
    assert!(problems.is_empty(), "lost or doubled jobs: {problems:#?}");
}
