//! Duplicates against moto: the same job sent twice on a standard queue (which delivers
//! both copies) and on a FIFO queue, handled by two dispatchers racing on one shared
//! claim store, end as one launch.

mod common;

use std::sync::Arc;
use std::time::Duration;

use myshoes::credentials::StaticRegistrationToken;
use myshoes::datastore::conformance::sample_job;
use myshoes::datastore::{Datastore, MemoryDatastore};
use myshoes::dispatcher::{Dispatcher, DispatcherConfig, Outcome};
use myshoes::model::{GitHubHost, ResourceType, Target};
use myshoes::profile::{LabelMatchMode, Profiles, RunnerProfile};
use myshoes::secret::Secret;
use myshoes::stadium::MemoryStadium;
use myshoes_datastore_sqs::SqsDatastore;

fn dispatcher(datastore: Arc<dyn Datastore>, stadium: Arc<MemoryStadium>) -> Arc<Dispatcher> {
    let profiles = Profiles::new(
        vec![RunnerProfile::new("linux", ["linux"])],
        LabelMatchMode::Subset,
    )
    .unwrap();
    Arc::new(
        Dispatcher::new(
            datastore,
            stadium,
            Arc::new(StaticRegistrationToken::new(Secret::new("token"))),
            profiles,
            DispatcherConfig::default(),
        )
        .unwrap(),
    )
}

/// Sends one job twice (two deliveries of one webhook), lets two dispatchers, each with
/// its own `SqsDatastore` over one queue and one shared claim store, receive and process
/// concurrently, and returns the outcomes.
async fn race(fifo: bool) -> Option<(Vec<Outcome>, Arc<MemoryStadium>)> {
    let endpoint = common::endpoint()?;
    let client = common::client(&endpoint, None);
    let queue_url = common::create_queue(
        &client,
        "myshoes-duplicates",
        &common::QueueSpec {
            fifo,
            visibility_timeout_seconds: Some(30),
            redrive: None,
        },
    )
    .await;
    let shared = Arc::new(MemoryDatastore::new());
    let target = Target::new(
        "conf-org".parse().unwrap(),
        GitHubHost::github_com(),
        ResourceType::Small,
    );
    shared.create_target(&target).await.unwrap();
    let store = |client: aws_sdk_sqs::Client| -> Arc<dyn Datastore> {
        Arc::new(
            SqsDatastore::builder(client, queue_url.clone())
                .with_inner(shared.clone())
                .build()
                .unwrap(),
        )
    };
    let first_store = store(common::client(&endpoint, None));
    let second_store = store(common::client(&endpoint, None));

    let mut job = sample_job(target.id);
    job.labels = vec!["self-hosted".into(), "linux".into()];
    first_store.enqueue_job(&job).await.unwrap();
    second_store.enqueue_job(&job).await.unwrap();

    let stadium = Arc::new(MemoryStadium::new());
    let mut tasks = tokio::task::JoinSet::new();
    for store in [first_store, second_store] {
        let dispatcher = dispatcher(store.clone(), stadium.clone());
        tasks.spawn(async move {
            let mut outcomes = Vec::new();
            for received in store
                .receive_jobs(10, Duration::from_secs(1))
                .await
                .unwrap()
            {
                outcomes.push(dispatcher.process(received).await);
            }
            outcomes
        });
    }
    let mut outcomes = Vec::new();
    while let Some(done) = tasks.join_next().await {
        outcomes.extend(done.unwrap());
    }
    Some((outcomes, stadium))
}

fn launches(outcomes: &[Outcome]) -> usize {
    outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Outcome::Launched { .. }))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_queue_duplicates_launch_once() {
    let Some((outcomes, stadium)) = race(false).await else {
        return;
    };
    assert_eq!(
        outcomes.len(),
        2,
        "a standard queue delivers both copies: {outcomes:?}"
    );
    assert_eq!(launches(&outcomes), 1, "{outcomes:?}");
    assert_eq!(
        stadium.add_calls().len(),
        1,
        "one instance for one job attempt"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_queue_duplicates_launch_once() {
    let Some((outcomes, stadium)) = race(true).await else {
        return;
    };
    assert_eq!(
        outcomes.len(),
        1,
        "FIFO deduplication drops the copy: {outcomes:?}"
    );
    assert_eq!(launches(&outcomes), 1, "{outcomes:?}");
    assert_eq!(stadium.add_calls().len(), 1);
}
