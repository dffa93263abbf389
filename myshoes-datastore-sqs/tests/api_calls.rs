//! Counts SQS API calls per job over 100 jobs, against an SQS server such as moto.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_sqs::config::{ConfigBag, Intercept, RuntimeComponents, SharedInterceptor};
use aws_sdk_sqs::error::BoxError;
use myshoes::datastore::conformance::sample_job;
use myshoes::datastore::Datastore;
use myshoes::model::TargetId;

/// Counts requests per SQS action, read from the `X-Amz-Target` header of each request.
#[derive(Debug, Clone, Default)]
struct CallCounter {
    counts: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl CallCounter {
    fn count(&self, action: &str) -> usize {
        self.counts
            .lock()
            .expect("counter lock")
            .get(action)
            .copied()
            .unwrap_or(0)
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("unknown");
        let action = target.rsplit('.').next().unwrap_or(target).to_owned();
        *self
            .counts
            .lock()
            .expect("counter lock")
            .entry(action)
            .or_default() += 1;
        Ok(())
    }
}

const JOBS: usize = 100;

#[tokio::test]
async fn api_calls_per_job_are_batched() {
    let Some(endpoint) = common::endpoint() else {
        return;
    };
    let setup_client = common::client(&endpoint, None);
    let pair = common::create_queue_pair(&setup_client, false, 60, None).await;
    let counter = CallCounter::default();
    let client = common::client(&endpoint, Some(SharedInterceptor::new(counter.clone())));
    let store = common::QueuePair {
        client,
        queue_url: pair.queue_url.clone(),
        dead_letter_queue_url: pair.dead_letter_queue_url.clone(),
    }
    .store();

    let started = Instant::now();
    for _ in 0..JOBS {
        store
            .enqueue_job(&sample_job(TargetId::new_random()))
            .await
            .expect("enqueue_job");
    }
    let mut handled = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while handled < JOBS && Instant::now() < deadline {
        let batch = store
            .receive_jobs(10, Duration::from_secs(1))
            .await
            .expect("receive_jobs");
        let acks: Vec<_> = batch.iter().map(|received| received.ack.clone()).collect();
        for result in store.delete_jobs(&acks).await {
            result.expect("delete in batch");
        }
        handled += batch.len();
    }
    let elapsed = started.elapsed();

    let sends = counter.count("SendMessage");
    let receives = counter.count("ReceiveMessage");
    let deletes = counter.count("DeleteMessageBatch") + counter.count("DeleteMessage");
    #[allow(clippy::cast_precision_loss)]
    let per_job = |calls: usize| calls as f64 / JOBS as f64;
    println!(
        "{JOBS} jobs: SendMessage {sends} ({:.2}/job), ReceiveMessage {receives} ({:.2}/job), \
         delete calls {deletes} ({:.2}/job), receive+delete {:.2}/job, {:.2?} in total",
        per_job(sends),
        per_job(receives),
        per_job(deletes),
        per_job(receives + deletes),
        elapsed,
    );
    assert_eq!(handled, JOBS, "every job must be received once");
    assert_eq!(sends, JOBS, "one SendMessage per job");
    assert!(
        receives + deletes <= JOBS / 5,
        "receive and delete calls must stay at or below 0.2 per job, got {}",
        receives + deletes
    );
}
