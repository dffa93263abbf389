//! Request shapes and error mapping that moto cannot show, checked with SDK mock rules.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::operation::change_message_visibility::{
    ChangeMessageVisibilityError, ChangeMessageVisibilityOutput,
};
use aws_sdk_sqs::operation::send_message::{SendMessageError, SendMessageOutput};
use aws_sdk_sqs::types::error::{MessageNotInflight, QueueDoesNotExist};
use aws_sdk_sqs::Client;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use myshoes::datastore::conformance::sample_job;
use myshoes::datastore::{AckHandle, Datastore, Error};
use myshoes::model::{JobId, TargetId};
use myshoes::ErrorChain;
use myshoes_datastore_sqs::{MessageGroup, SqsDatastore};

const FIFO_URL: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/jobs.fifo";
const STANDARD_URL: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/jobs";

/// The (group id, deduplication id) of each SendMessage request, in order.
type SentIds = Arc<Mutex<Vec<(Option<String>, Option<String>)>>>;

/// Records the ids of each SendMessage request into `seen`.
fn recording_send_rule(seen: SentIds) -> aws_smithy_mocks::Rule {
    mock!(Client::send_message)
        .match_requests(move |request| {
            seen.lock().expect("lock").push((
                request.message_group_id().map(str::to_owned),
                request.message_deduplication_id().map(str::to_owned),
            ));
            true
        })
        .then_output(|| SendMessageOutput::builder().message_id("m-1").build())
}

#[tokio::test]
async fn fifo_send_sets_group_and_dedup_ids() {
    // NOTE: moto drops a FIFO duplicate only while the first message is still queued,
    // whereas SQS remembers the deduplication id for 5 minutes after deletion too. What
    // this crate controls is that every send of a job carries the same id, checked here.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let rule = recording_send_rule(seen.clone());
    let client = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, &[&rule]);
    let job = sample_job(TargetId::new_random());

    let per_job = SqsDatastore::new(client.clone(), FIFO_URL);
    per_job.enqueue_job(&job).await.expect("enqueue_job");
    per_job.enqueue_job(&job).await.expect("enqueue_job again");
    let per_repository = SqsDatastore::builder(client, FIFO_URL)
        .with_message_group(MessageGroup::PerRepository)
        .build()
        .expect("valid settings");
    per_repository.enqueue_job(&job).await.expect("enqueue_job");

    let seen = seen.lock().expect("lock").clone();
    let job_id = job.id.to_string();
    let repository = format!("{}/{}", job.host, job.repository);
    assert_eq!(
        seen,
        vec![
            (Some(job_id.clone()), Some(job_id.clone())),
            (Some(job_id.clone()), Some(job_id.clone())),
            (Some(repository), Some(job_id)),
        ]
    );
}

#[tokio::test]
async fn standard_send_has_no_fifo_ids() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let rule = recording_send_rule(seen.clone());
    let client = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, &[&rule]);
    let store = SqsDatastore::new(client, STANDARD_URL);
    store
        .enqueue_job(&sample_job(TargetId::new_random()))
        .await
        .expect("enqueue_job");
    assert_eq!(*seen.lock().expect("lock"), vec![(None, None)]);
}

#[tokio::test]
async fn retry_delay_is_capped_at_twelve_hours() {
    let timeouts = Arc::new(Mutex::new(Vec::new()));
    let recorded = timeouts.clone();
    let rule = mock!(Client::change_message_visibility)
        .match_requests(move |request| {
            recorded
                .lock()
                .expect("lock")
                .push(request.visibility_timeout());
            true
        })
        .then_output(|| ChangeMessageVisibilityOutput::builder().build());
    let client = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, &[&rule]);
    let store = SqsDatastore::new(client, STANDARD_URL);
    let ack = AckHandle::new(JobId::new_random(), "receipt");

    store
        .retry_job(&ack, Duration::from_secs(13 * 60 * 60))
        .await
        .expect("retry_job");
    store
        .retry_job(&ack, Duration::from_millis(1500))
        .await
        .expect("retry_job");

    assert_eq!(
        *timeouts.lock().expect("lock"),
        vec![Some(43_200), Some(2)],
        "capped at 12 hours, and rounded up to whole seconds"
    );
}

#[tokio::test]
async fn message_not_in_flight_is_conflict() {
    let rule = mock!(Client::change_message_visibility).then_error(|| {
        ChangeMessageVisibilityError::MessageNotInflight(MessageNotInflight::builder().build())
    });
    let client = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, &[&rule]);
    let store = SqsDatastore::new(client, STANDARD_URL);
    let ack = AckHandle::new(JobId::new_random(), "receipt");

    let result = store.retry_job(&ack, Duration::from_secs(5)).await;

    assert!(
        matches!(result, Err(Error::Conflict { .. })),
        "got {result:?}"
    );
}

#[tokio::test]
async fn modeled_queue_does_not_exist_is_backend() {
    let rule = mock!(Client::send_message)
        .then_error(|| SendMessageError::QueueDoesNotExist(QueueDoesNotExist::builder().build()));
    let client = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, &[&rule]);
    let store = SqsDatastore::new(client, STANDARD_URL);

    let error = store
        .enqueue_job(&sample_job(TargetId::new_random()))
        .await
        .expect_err("the queue is missing");

    assert!(matches!(error, Error::Backend { .. }), "got {error:?}");
    let chain = ErrorChain(&error).to_string();
    assert!(
        chain.contains(&format!("SQS queue {STANDARD_URL} does not exist")),
        "{chain}"
    );
}
