//! Behaviour specific to SQS, against an SQS server such as moto.

mod common;

use std::sync::Arc;
use std::time::Duration;

use myshoes::datastore::conformance::sample_job;
use myshoes::datastore::{AckHandle, Datastore, Error, MemoryDatastore};
use myshoes::model::TargetId;
use myshoes::ErrorChain;
use myshoes_datastore_sqs::{
    decode_job, encode_job, SqsDatastore, REASON_ATTRIBUTE, SOURCE_MESSAGE_ID_ATTRIBUTE,
};

use common::{create_queue, create_queue_pair, message_count, receive_raw, QueueSpec};

#[tokio::test]
async fn unacked_job_reappears_after_visibility_timeout() {
    let Some(endpoint) = common::endpoint() else {
        return;
    };
    let client = common::client(&endpoint, None);
    let pair = create_queue_pair(&client, false, 1, None).await;
    let store = pair.store();
    let job = sample_job(TargetId::new_random());
    store.enqueue_job(&job).await.expect("enqueue_job");

    let first = store
        .receive_jobs(10, Duration::from_secs(5))
        .await
        .expect("receive_jobs");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].job.attempt, 0);
    let hidden = store
        .receive_jobs(10, Duration::ZERO)
        .await
        .expect("receive_jobs");
    assert!(hidden.is_empty(), "the job must be hidden while in flight");

    let again = store
        .receive_jobs(10, Duration::from_secs(5))
        .await
        .expect("receive_jobs");
    assert_eq!(again.len(), 1, "the undeleted job must reappear");
    assert_eq!(again[0].job.id, job.id);
    assert_eq!(
        again[0].job.attempt, 1,
        "attempt counts the earlier receive"
    );
    assert_ne!(
        again[0].ack, first[0].ack,
        "each receive carries a new receipt handle"
    );
}

#[tokio::test]
async fn fifo_duplicate_is_delivered_once() {
    let Some(endpoint) = common::endpoint() else {
        return;
    };
    let client = common::client(&endpoint, None);
    let pair = create_queue_pair(&client, true, 30, None).await;
    let store = pair.store();
    let job = sample_job(TargetId::new_random());
    let mut next_attempt = job.clone();
    next_attempt.run_attempt = 2;
    next_attempt.id = myshoes::model::JobId::for_workflow_job(&job.host, job.workflow_job_id, 2);

    store.enqueue_job(&job).await.expect("first enqueue");
    store
        .enqueue_job(&job)
        .await
        .expect("a duplicate within the window is accepted and dropped");
    store
        .enqueue_job(&next_attempt)
        .await
        .expect("another run attempt is a new job");

    let mut ids = Vec::new();
    for _ in 0..3 {
        let batch = store
            .receive_jobs(10, Duration::from_secs(1))
            .await
            .expect("receive_jobs");
        ids.extend(batch.iter().map(|received| received.job.id));
    }
    ids.sort();
    let mut expected = vec![job.id, next_attempt.id];
    expected.sort();
    assert_eq!(
        ids, expected,
        "each job attempt must be delivered exactly once"
    );
}

#[tokio::test]
async fn max_receive_count_dead_letters_job() {
    let Some(endpoint) = common::endpoint() else {
        return;
    };
    let client = common::client(&endpoint, None);
    let pair = create_queue_pair(&client, false, 1, Some(2)).await;
    let store = pair.store();
    let job = sample_job(TargetId::new_random());
    store.enqueue_job(&job).await.expect("enqueue_job");

    for expected_attempt in 0..2 {
        let received = store
            .receive_jobs(1, Duration::from_secs(5))
            .await
            .expect("receive_jobs");
        assert_eq!(received.len(), 1, "receive {expected_attempt} gets the job");
        assert_eq!(received[0].job.attempt, expected_attempt);
    }
    let after_limit = store
        .receive_jobs(1, Duration::from_secs(3))
        .await
        .expect("receive_jobs");
    assert!(
        after_limit.is_empty(),
        "after maxReceiveCount receives the job must leave the queue"
    );

    let dead = receive_raw(&client, &pair.dead_letter_queue_url, Duration::from_secs(2)).await;
    assert_eq!(dead.len(), 1, "the job must be in the dead-letter queue");
    let dead_job = decode_job(dead[0].body().expect("body")).expect("the body is a job");
    assert_eq!(dead_job.id, job.id);
}

#[tokio::test]
async fn poison_body_goes_to_dead_letter_queue() {
    let Some(endpoint) = common::endpoint() else {
        return;
    };
    let client = common::client(&endpoint, None);
    let pair = create_queue_pair(&client, false, 30, None).await;
    let store = pair.store();
    let poison = client
        .send_message()
        .queue_url(&pair.queue_url)
        .message_body("{\"v\":1,\"job\":\"truncated")
        .send()
        .await
        .expect("SendMessage");
    let poison_id = poison.message_id().expect("message id").to_owned();
    let job = sample_job(TargetId::new_random());
    store.enqueue_job(&job).await.expect("enqueue_job");

    let mut received = Vec::new();
    for _ in 0..3 {
        received.extend(
            store
                .receive_jobs(10, Duration::from_secs(1))
                .await
                .expect("receive_jobs must not fail on a bad body"),
        );
    }
    assert_eq!(received.len(), 1, "the good job must still be received");
    assert_eq!(received[0].job.id, job.id);
    store
        .delete_job(&received[0].ack)
        .await
        .expect("delete_job");

    let dead = receive_raw(&client, &pair.dead_letter_queue_url, Duration::from_secs(2)).await;
    assert_eq!(
        dead.len(),
        1,
        "the poison message must be in the dead-letter queue"
    );
    let attributes = dead[0].message_attributes().expect("message attributes");
    let reason = attributes[REASON_ATTRIBUTE].string_value().expect("reason");
    assert!(
        reason.contains(&poison_id),
        "the reason names the message: {reason}"
    );
    assert_eq!(
        attributes[SOURCE_MESSAGE_ID_ATTRIBUTE].string_value(),
        Some(poison_id.as_str())
    );
    assert_eq!(
        message_count(&client, &pair.queue_url).await,
        0,
        "the poison message must leave the main queue, not wait to loop"
    );
}

#[tokio::test]
async fn poison_body_uses_redrive_without_url() {
    let Some(endpoint) = common::endpoint() else {
        return;
    };
    let client = common::client(&endpoint, None);
    let pair = create_queue_pair(&client, false, 1, Some(1)).await;
    let store = SqsDatastore::new(client.clone(), &pair.queue_url);
    client
        .send_message()
        .queue_url(&pair.queue_url)
        .message_body("not json")
        .send()
        .await
        .expect("SendMessage");

    for _ in 0..3 {
        let received = store
            .receive_jobs(10, Duration::from_secs(2))
            .await
            .expect("receive_jobs must not fail on a bad body");
        assert!(received.is_empty());
    }
    let dead = receive_raw(&client, &pair.dead_letter_queue_url, Duration::from_secs(2)).await;
    assert_eq!(
        dead.len(),
        1,
        "the redrive policy must move the poison message to the dead-letter queue"
    );
}

#[tokio::test]
async fn dead_letter_job_sends_reason_and_deletes() {
    let Some(endpoint) = common::endpoint() else {
        return;
    };
    let client = common::client(&endpoint, None);
    for fifo in [false, true] {
        let pair = create_queue_pair(&client, fifo, 30, None).await;
        let store = pair.store();
        let job = sample_job(TargetId::new_random());
        store.enqueue_job(&job).await.expect("enqueue_job");
        let received = store
            .receive_jobs(1, Duration::from_secs(5))
            .await
            .expect("receive_jobs")
            .pop()
            .expect("the job");

        store
            .dead_letter_job(&received.ack, "no runner profile matches")
            .await
            .expect("dead_letter_job");

        let dead = receive_raw(&client, &pair.dead_letter_queue_url, Duration::from_secs(2)).await;
        assert_eq!(dead.len(), 1, "fifo={fifo}: one dead letter");
        let attributes = dead[0].message_attributes().expect("message attributes");
        assert_eq!(
            attributes[REASON_ATTRIBUTE].string_value(),
            Some("no runner profile matches")
        );
        let dead_job = decode_job(dead[0].body().expect("body")).expect("a job");
        assert_eq!(dead_job.id, job.id);
        assert_eq!(
            message_count(&client, &pair.queue_url).await,
            0,
            "fifo={fifo}: the job left the main queue"
        );
    }
}

#[tokio::test]
async fn dead_letter_without_queue_is_not_supported() {
    let Some(endpoint) = common::endpoint() else {
        return;
    };
    let client = common::client(&endpoint, None);
    let queue_url = create_queue(&client, "jobs", &QueueSpec::default()).await;
    let store = SqsDatastore::new(client, queue_url);
    let ack = AckHandle::new(myshoes::model::JobId::new_random(), "handle");
    let result = store.dead_letter_job(&ack, "reason").await;
    assert!(
        matches!(result, Err(Error::NotSupported { .. })),
        "got {result:?}"
    );
    let result = store
        .create_target(&myshoes::datastore::conformance::sample_target())
        .await;
    assert!(
        matches!(result, Err(Error::NotSupported { .. })),
        "without an inner store targets are not supported, got {result:?}"
    );
}

#[tokio::test]
async fn heartbeat_keeps_job_hidden() {
    let Some(endpoint) = common::endpoint() else {
        return;
    };
    let client = common::client(&endpoint, None);
    let pair = create_queue_pair(&client, false, 1, None).await;
    let store = pair.store();
    store
        .enqueue_job(&sample_job(TargetId::new_random()))
        .await
        .expect("enqueue_job");
    let received = store
        .receive_jobs(1, Duration::from_secs(5))
        .await
        .expect("receive_jobs")
        .pop()
        .expect("the job");

    let heartbeat = store.start_heartbeat(&received.ack, Duration::from_secs(3));
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let during = store
        .receive_jobs(1, Duration::ZERO)
        .await
        .expect("receive_jobs");
    assert!(
        during.is_empty(),
        "the heartbeat must keep the job hidden past the queue's 1 s timeout"
    );
    assert!(!heartbeat.is_finished(), "the heartbeat is still running");
    heartbeat.stop();
    store.delete_job(&received.ack).await.expect("delete_job");
}

#[tokio::test]
async fn missing_queue_is_backend_error() {
    let Some(endpoint) = common::endpoint() else {
        return;
    };
    let client = common::client(&endpoint, None);
    let queue_url = format!(
        "{}/123456789012/{}",
        endpoint.trim_end_matches('/'),
        common::unique_name("missing", false)
    );
    let store = SqsDatastore::new(client, &queue_url);
    let error = store
        .enqueue_job(&sample_job(TargetId::new_random()))
        .await
        .expect_err("a missing queue fails");
    assert!(matches!(error, Error::Backend { .. }), "got {error:?}");
    assert!(error.is_retryable());
    assert_eq!(
        error.to_string(),
        "sqs datastore failed during enqueue_job",
        "Display describes this layer only"
    );
    let chain = ErrorChain(&error).to_string();
    assert!(
        chain.contains(&format!("SQS queue {queue_url} does not exist")),
        "the source names the queue: {chain}"
    );
}

#[tokio::test]
async fn invalid_receipt_handle_is_not_found() {
    let Some(endpoint) = common::endpoint() else {
        return;
    };
    let client = common::client(&endpoint, None);
    let queue_url = create_queue(&client, "jobs", &QueueSpec::default()).await;
    let store = SqsDatastore::new(client, queue_url);
    let ack = AckHandle::new(myshoes::model::JobId::new_random(), "not-a-receipt-handle");
    let result = store.delete_job(&ack).await;
    assert!(
        matches!(result, Err(Error::NotFound { .. })),
        "got {result:?}"
    );
    let result = store.retry_job(&ack, Duration::from_secs(1)).await;
    assert!(
        matches!(result, Err(Error::NotFound { .. })),
        "got {result:?}"
    );
}

#[tokio::test]
async fn delete_jobs_reports_each_failure() {
    let Some(endpoint) = common::endpoint() else {
        return;
    };
    let client = common::client(&endpoint, None);
    let pair = create_queue_pair(&client, false, 30, None).await;
    let store = pair.store();
    for _ in 0..2 {
        store
            .enqueue_job(&sample_job(TargetId::new_random()))
            .await
            .expect("enqueue_job");
    }
    let mut received = Vec::new();
    while received.len() < 2 {
        received.extend(
            store
                .receive_jobs(10, Duration::from_secs(2))
                .await
                .expect("receive_jobs"),
        );
    }
    let bogus = AckHandle::new(myshoes::model::JobId::new_random(), "not-a-receipt-handle");
    let acks = vec![received[0].ack.clone(), bogus, received[1].ack.clone()];

    let results = store.delete_jobs(&acks).await;

    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok(), "got {:?}", results[0]);
    assert!(
        matches!(results[1], Err(Error::NotFound { .. })),
        "got {:?}",
        results[1]
    );
    assert!(results[2].is_ok(), "got {:?}", results[2]);
    assert_eq!(message_count(&client, &pair.queue_url).await, 0);
}

#[tokio::test]
async fn event_records_decode_on_their_own() {
    let Some(endpoint) = common::endpoint() else {
        return;
    };
    let client = common::client(&endpoint, None);
    let pair = create_queue_pair(&client, false, 30, None).await;
    let store = pair.store();
    let good = [
        sample_job(TargetId::new_random()),
        sample_job(TargetId::new_random()),
    ];
    for job in &good {
        store.enqueue_job(job).await.expect("enqueue_job");
    }
    client
        .send_message()
        .queue_url(&pair.queue_url)
        .message_body("{\"v\":99,\"job\":{}}")
        .send()
        .await
        .expect("SendMessage");

    // Lambda's event source mapping receives the messages and hands them over as records.
    let mut messages = Vec::new();
    while messages.len() < 3 {
        messages.extend(receive_raw(&client, &pair.queue_url, Duration::from_secs(1)).await);
    }
    let records: Vec<_> = messages
        .iter()
        .map(|message| myshoes_datastore_sqs::SqsEventRecord {
            message_id: message.message_id().expect("id").to_owned(),
            receipt_handle: message.receipt_handle().expect("handle").to_owned(),
            body: message.body().expect("body").to_owned(),
            approximate_receive_count: 1,
        })
        .collect();

    let decoded = store.decode_event_records(&records);

    let failures: Vec<_> = decoded
        .iter()
        .filter(|record| record.result.is_err())
        .collect();
    assert_eq!(failures.len(), 1, "exactly the bad record fails");
    assert_eq!(
        failures[0]
            .result
            .as_ref()
            .expect_err("failed")
            .message_id(),
        failures[0].message_id
    );
    let jobs: Vec<_> = decoded
        .into_iter()
        .filter_map(|record| record.result.ok())
        .collect();
    assert_eq!(jobs.len(), 2, "the good records yield their jobs");
    for received in &jobs {
        store
            .dead_letter_job(&received.ack, "handled by the test")
            .await
            .expect("jobs from event records can be dead-lettered");
    }
}

#[tokio::test]
async fn stale_handle_from_same_store_is_conflict() {
    let Some(endpoint) = common::endpoint() else {
        return;
    };
    let client = common::client(&endpoint, None);
    let pair = create_queue_pair(&client, false, 30, None).await;
    let store = SqsDatastore::builder(client.clone(), &pair.queue_url)
        .with_inner(Arc::new(MemoryDatastore::new()))
        .build()
        .expect("valid settings");
    let job = sample_job(TargetId::new_random());
    store.enqueue_job(&job).await.expect("enqueue_job");
    let first = store
        .receive_jobs(1, Duration::from_secs(5))
        .await
        .expect("receive_jobs")
        .pop()
        .expect("the job");
    store
        .retry_job(&first.ack, Duration::ZERO)
        .await
        .expect("retry_job");
    let second = store
        .receive_jobs(1, Duration::from_secs(5))
        .await
        .expect("receive_jobs")
        .pop()
        .expect("the job again");

    let stale = store.delete_job(&first.ack).await;

    assert!(
        matches!(stale, Err(Error::Conflict { .. })),
        "got {stale:?}"
    );
    store
        .delete_job(&second.ack)
        .await
        .expect("the newer handle deletes the job");
}

#[tokio::test]
async fn body_is_compact() {
    let job = sample_job(TargetId::new_random());
    let body = encode_job(&job);
    assert!(body.len() < 1024, "{} bytes: {body}", body.len());
    assert_eq!(decode_job(&body).expect("decode"), job);
}
