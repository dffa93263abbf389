//! Runner limits per profile and per target, and dead letters, over the in-memory backends.

use std::sync::Arc;
use std::time::Duration;

use myshoes::credentials::StaticRegistrationToken;
use myshoes::datastore::conformance::sample_job;
use myshoes::datastore::{Datastore, MemoryDatastore};
use myshoes::dispatcher::{
    profile_pool, target_pool, Dispatcher, DispatcherConfig, Outcome, RetryPolicy,
};
use myshoes::model::{GitHubHost, Job, ResourceType, Target};
use myshoes::profile::{LabelMatchMode, Profiles, RunnerProfile};
use myshoes::secret::Secret;
use myshoes::stadium::{MemoryStadium, ScriptedFailure};
use myshoes::sweeper::{SweepReason, Sweeper, SweeperConfig};

struct Limits {
    profile_max: Option<u32>,
    target_max: Option<u32>,
}

struct Harness {
    datastore: Arc<MemoryDatastore>,
    stadium: Arc<MemoryStadium>,
    target: Target,
    dispatcher: Arc<Dispatcher>,
}

async fn harness(limits: Limits) -> Harness {
    let datastore = Arc::new(MemoryDatastore::new());
    let stadium = Arc::new(MemoryStadium::new());
    let target = Target::new(
        "octo-org".parse().unwrap(),
        GitHubHost::github_com(),
        ResourceType::Small,
    );
    datastore.create_target(&target).await.unwrap();
    let mut profile = RunnerProfile::new("linux", ["linux"]);
    profile.max_runners = limits.profile_max;
    let profiles = Profiles::new(vec![profile], LabelMatchMode::Subset).unwrap();
    let mut config = DispatcherConfig::default();
    config.retry = RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
        jitter: false,
        max_age: None,
    };
    config.max_runners_per_target = limits.target_max;
    config.cap_wait = Duration::ZERO;
    let dispatcher = Dispatcher::new(
        datastore.clone(),
        stadium.clone(),
        Arc::new(StaticRegistrationToken::new(Secret::new("token"))),
        profiles,
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

impl Harness {
    async fn enqueue(&self) -> Job {
        let mut job = sample_job(self.target.id);
        job.labels = vec!["self-hosted".into(), "linux".into()];
        self.datastore.enqueue_job(&job).await.unwrap();
        job
    }

    /// Receives every visible job and processes them concurrently.
    async fn process_all(&self) -> Vec<Outcome> {
        let received = self
            .datastore
            .receive_jobs(100, Duration::from_secs(1))
            .await
            .unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for job in received {
            let dispatcher = self.dispatcher.clone();
            tasks.spawn(async move { dispatcher.process(job).await });
        }
        let mut outcomes = Vec::new();
        while let Some(outcome) = tasks.join_next().await {
            outcomes.push(outcome.unwrap());
        }
        outcomes
    }

    fn sweeper(&self) -> Sweeper {
        let mut config = SweeperConfig::default();
        config.boot_grace = Duration::ZERO;
        config.listing_grace = Duration::ZERO;
        Sweeper::new(self.datastore.clone(), self.stadium.clone(), None, config)
    }
}

fn launched(outcomes: &[Outcome]) -> usize {
    outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Outcome::Launched { .. }))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_at_max_minus_one_launches_exactly_one_of_three() {
    let h = harness(Limits {
        profile_max: Some(3),
        target_max: None,
    })
    .await;
    for _ in 0..2 {
        h.enqueue().await;
    }
    assert_eq!(launched(&h.process_all().await), 2, "below the limit");

    for _ in 0..3 {
        h.enqueue().await;
    }
    let outcomes = h.process_all().await;
    assert_eq!(
        launched(&outcomes),
        1,
        "current = max - 1: exactly one launch"
    );
    let deferred: Vec<&Outcome> = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Outcome::RetryScheduled { reason, .. } if reason.contains("limit of 3")))
        .collect();
    assert_eq!(deferred.len(), 2, "the others wait: {outcomes:?}");
    assert_eq!(h.stadium.running().len(), 3);
    assert_eq!(
        h.datastore
            .count_slots(&profile_pool("linux"))
            .await
            .unwrap(),
        3
    );
}

#[tokio::test]
async fn target_over_max_launches_none() {
    let h = harness(Limits {
        profile_max: None,
        target_max: Some(2),
    })
    .await;
    // Three runners hold slots, more than the limit of two (the limit was lowered).
    for holder in ["a", "b", "c"] {
        h.datastore
            .acquire_slot(
                &target_pool(h.target.id),
                3,
                holder,
                Duration::from_secs(600),
            )
            .await
            .unwrap();
    }
    for _ in 0..3 {
        h.enqueue().await;
    }
    let outcomes = h.process_all().await;
    assert_eq!(
        launched(&outcomes),
        0,
        "current > max: no launch: {outcomes:?}"
    );
    assert!(
        h.stadium.add_calls().is_empty(),
        "nothing reached the Stadium"
    );
    assert!(outcomes
        .iter()
        .all(|outcome| matches!(outcome, Outcome::RetryScheduled { .. })));
}

#[tokio::test]
async fn waiting_at_the_limit_uses_no_attempt() {
    let h = harness(Limits {
        profile_max: Some(1),
        target_max: None,
    })
    .await;
    h.enqueue().await;
    assert_eq!(launched(&h.process_all().await), 1);

    // The second job waits at the limit more often than max_attempts (2) allows failures.
    let waiting = h.enqueue().await;
    for _ in 0..4 {
        let outcomes = h.process_all().await;
        assert!(
            matches!(&outcomes[..], [Outcome::RetryScheduled { job, .. }] if job.attempt == 0),
            "a wait keeps the job at attempt 0: {outcomes:?}"
        );
    }

    // The first runner is swept, and the waiting job's first real failure is retried.
    let (instance, _) = h.stadium.running().remove(0);
    h.stadium.finish(&instance.cloud_id);
    h.sweeper().sweep().await.unwrap();
    h.stadium.push_failure(ScriptedFailure::Capacity);
    let outcomes = h.process_all().await;
    assert!(
        matches!(&outcomes[..], [Outcome::RetryScheduled { job, .. }] if job.id == waiting.id),
        "one failure after waits is retried, not dropped: {outcomes:?}"
    );
    assert_eq!(launched(&h.process_all().await), 1);
}

#[tokio::test]
async fn sweeping_a_finished_runner_frees_its_slot() {
    let h = harness(Limits {
        profile_max: Some(1),
        target_max: Some(1),
    })
    .await;
    h.enqueue().await;
    let first = h.process_all().await;
    assert_eq!(launched(&first), 1);
    h.enqueue().await;
    assert_eq!(launched(&h.process_all().await), 0, "the limit is reached");

    // The first runner finishes its job and its instance ends.
    let (instance, _) = h.stadium.running().remove(0);
    h.stadium.finish(&instance.cloud_id);
    let report = h.sweeper().sweep().await.unwrap();
    assert_eq!(report.deleted(), 1);
    assert_eq!(report.decisions[0].reason, SweepReason::InstanceGone);
    assert_eq!(
        h.datastore
            .count_slots(&profile_pool("linux"))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        h.datastore
            .count_slots(&target_pool(h.target.id))
            .await
            .unwrap(),
        0
    );

    assert_eq!(
        launched(&h.process_all().await),
        1,
        "the waiting job launches"
    );
}

#[tokio::test]
async fn failed_launch_gives_its_slots_back() {
    let h = harness(Limits {
        profile_max: Some(1),
        target_max: Some(1),
    })
    .await;
    h.stadium.push_failure(ScriptedFailure::Capacity);
    h.enqueue().await;
    let outcomes = h.process_all().await;
    assert!(matches!(outcomes[0], Outcome::RetryScheduled { .. }));
    assert_eq!(
        h.datastore
            .count_slots(&profile_pool("linux"))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        h.datastore
            .count_slots(&target_pool(h.target.id))
            .await
            .unwrap(),
        0
    );
    // The retry takes the slot again and launches.
    assert_eq!(launched(&h.process_all().await), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_dispatchers_respect_the_limit() {
    let h = harness(Limits {
        profile_max: Some(2),
        target_max: None,
    })
    .await;
    let second = Arc::new(
        Dispatcher::new(
            h.datastore.clone(),
            h.stadium.clone(),
            Arc::new(StaticRegistrationToken::new(Secret::new("token"))),
            Profiles::new(
                vec![RunnerProfile::new("linux", ["linux"]).with_max_runners(2)],
                LabelMatchMode::Subset,
            )
            .unwrap(),
            DispatcherConfig::default(),
        )
        .unwrap(),
    );
    for _ in 0..10 {
        h.enqueue().await;
    }
    let received = h
        .datastore
        .receive_jobs(10, Duration::from_secs(1))
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for (index, job) in received.into_iter().enumerate() {
        let dispatcher = if index % 2 == 0 {
            h.dispatcher.clone()
        } else {
            second.clone()
        };
        tasks.spawn(async move { dispatcher.process(job).await });
    }
    let mut outcomes = Vec::new();
    while let Some(outcome) = tasks.join_next().await {
        outcomes.push(outcome.unwrap());
    }
    assert_eq!(launched(&outcomes), 2, "two dispatchers, one limit of 2");
    assert_eq!(h.stadium.running().len(), 2);
}

#[tokio::test]
async fn given_up_job_becomes_a_dead_letter() {
    let h = harness(Limits {
        profile_max: None,
        target_max: None,
    })
    .await;
    let mut job = sample_job(h.target.id);
    job.labels = vec!["windows".into()];
    h.datastore.enqueue_job(&job).await.unwrap();
    let outcomes = h.process_all().await;
    let Outcome::Dropped {
        reason,
        dead_lettered,
        ..
    } = &outcomes[0]
    else {
        panic!("an unmatched job is given up: {outcomes:?}");
    };
    assert!(dead_lettered);
    let letters = h.datastore.list_dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].job.id, job.id);
    assert_eq!(&letters[0].reason, reason);
    assert!(reason.contains("no runner profile matches"), "{reason}");

    // Retries used up end the same way, with the attempts in the reason.
    h.stadium.push_failure(ScriptedFailure::Capacity);
    h.stadium.push_failure(ScriptedFailure::Capacity);
    let retried = h.enqueue().await;
    h.process_all().await;
    let outcomes = h.process_all().await;
    assert!(matches!(
        outcomes[0],
        Outcome::Dropped {
            dead_lettered: true,
            ..
        }
    ));
    let letters = h.datastore.list_dead_letters().await.unwrap();
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[1].job.id, retried.id);
    assert!(
        letters[1].reason.contains("gave up after 2 attempts"),
        "{}",
        letters[1].reason
    );
}

#[test]
fn retries_and_dead_letters_are_counted_by_reason() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let h = harness(Limits {
                profile_max: Some(1),
                target_max: None,
            })
            .await;
            h.enqueue().await;
            h.process_all().await;
            // The second job waits at the limit, twice.
            h.enqueue().await;
            h.process_all().await;
            let mut job = sample_job(h.target.id);
            job.labels = vec!["windows".into()];
            h.datastore.enqueue_job(&job).await.unwrap();
            h.process_all().await;
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
    // The job at the limit waits zero seconds, so the second pass receives it again.
    assert_eq!(
        counters.get(r#"myshoes_retries_total["reason=runner_limit"]"#),
        Some(&2),
        "{counters:?}"
    );
    assert_eq!(
        counters.get(
            r#"myshoes_dispatch_outcomes_total["outcome=retry_scheduled", "reason=runner_limit"]"#
        ),
        Some(&2),
        "{counters:?}"
    );
    assert_eq!(
        counters.get(r#"myshoes_dispatch_outcomes_total["outcome=dropped", "reason=no_profile"]"#),
        Some(&1),
        "{counters:?}"
    );
    assert_eq!(
        counters.get(r#"myshoes_dead_letters_total["reason=no_profile"]"#),
        Some(&1),
        "{counters:?}"
    );
    assert_eq!(
        counters.get(r#"myshoes_runner_limit_waits_total["limit=profile"]"#),
        Some(&2),
        "{counters:?}"
    );
}
