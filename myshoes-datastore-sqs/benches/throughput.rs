//! Throughput of `SqsDatastore` against an in-process fake: SDK mock rules return a
//! prepared response for each call inside the client, so the figures measure this crate
//! and the SDK's request pipeline, without a network or a server. moto cannot measure
//! this, because it serves about 250 calls per second.
//!
//! Run with `cargo bench -p myshoes-datastore-sqs --bench throughput`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::operation::delete_message_batch::DeleteMessageBatchOutput;
use aws_sdk_sqs::operation::receive_message::ReceiveMessageOutput;
use aws_sdk_sqs::operation::send_message::SendMessageOutput;
use aws_sdk_sqs::types::{DeleteMessageBatchResultEntry, Message, MessageSystemAttributeName};
use aws_sdk_sqs::Client;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use myshoes::datastore::conformance::sample_job;
use myshoes::datastore::Datastore;
use myshoes::model::TargetId;
use myshoes_datastore_sqs::{encode_job, SqsDatastore};

const JOBS: usize = 20_000;
const ROUNDS: usize = 5;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let body = encode_job(&sample_job(TargetId::new_random()));
    let next_handle = Arc::new(AtomicUsize::new(0));

    let send = mock!(Client::send_message)
        .then_output(|| SendMessageOutput::builder().message_id("m").build());
    let handles = next_handle.clone();
    let receive = mock!(Client::receive_message).then_compute_output(move |request| {
        let count = usize::try_from(request.max_number_of_messages().unwrap_or(1)).unwrap_or(1);
        let messages = (0..count).map(|_| {
            let handle = handles.fetch_add(1, Ordering::Relaxed);
            Message::builder()
                .message_id(format!("m-{handle}"))
                .receipt_handle(format!("r-{handle}"))
                .body(body.clone())
                .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "1")
                .build()
        });
        ReceiveMessageOutput::builder()
            .set_messages(Some(messages.collect()))
            .build()
    });
    let delete = mock!(Client::delete_message_batch).then_compute_output(|request| {
        let successful = request
            .entries()
            .iter()
            .map(|entry| {
                DeleteMessageBatchResultEntry::builder()
                    .id(entry.id())
                    .build()
                    .expect("id is set")
            })
            .collect();
        DeleteMessageBatchOutput::builder()
            .set_successful(Some(successful))
            .set_failed(Some(Vec::new()))
            .build()
            .expect("lists are set")
    });
    let client = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, &[&send, &receive, &delete]);
    let store = SqsDatastore::new(
        client,
        "https://sqs.us-east-1.amazonaws.com/123456789012/jobs",
    );
    let jobs: Vec<_> = (0..JOBS)
        .map(|_| sample_job(TargetId::new_random()))
        .collect();

    println!("{JOBS} jobs per round, in-process fake (SDK mock rules), one task");
    for round in 1..=ROUNDS {
        let started = Instant::now();
        for job in &jobs {
            store.enqueue_job(job).await.expect("enqueue_job");
        }
        let enqueue = started.elapsed();

        let started = Instant::now();
        let mut handled = 0;
        while handled < JOBS {
            let batch = store
                .receive_jobs(10, Duration::ZERO)
                .await
                .expect("receive_jobs");
            let acks: Vec<_> = batch.iter().map(|received| received.ack.clone()).collect();
            for result in store.delete_jobs(&acks).await {
                result.expect("delete_jobs");
            }
            handled += batch.len();
        }
        let consume = started.elapsed();
        println!(
            "round {round}: enqueue {:.0} jobs/s ({:.1} µs/job), receive+delete in batches of 10 {:.0} jobs/s ({:.1} µs/job)",
            per_second(enqueue),
            micros_per_job(enqueue),
            per_second(consume),
            micros_per_job(consume),
        );
    }
}

#[allow(clippy::cast_precision_loss)]
fn per_second(elapsed: Duration) -> f64 {
    JOBS as f64 / elapsed.as_secs_f64()
}

#[allow(clippy::cast_precision_loss)]
fn micros_per_job(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1e6 / JOBS as f64
}
