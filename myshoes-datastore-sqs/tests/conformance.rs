//! The core Datastore conformance suite against standard and FIFO queues on an SQS server,
//! with a `MemoryDatastore` as the inner store. Each case gets queues of its own.

mod common;

use std::time::Duration;

use myshoes::datastore::conformance::Capabilities;

/// Visibility timeout of the test queues; SQS counts it in whole seconds.
const VISIBILITY_TIMEOUT_SECONDS: u32 = 2;

/// Capabilities shared by both queue kinds.
fn sqs_capabilities() -> Capabilities {
    Capabilities {
        // SQS cannot list messages without receiving them.
        list_jobs: false,
        // Duplicates are dropped (FIFO) or delivered (standard), never rejected.
        rejects_duplicate_jobs: false,
        // Stale handles from this store are rejected, but a deleted job's handle is
        // accepted again by SQS, so `delete_job` cannot report NotFound for it.
        detects_stale_ack: false,
        visibility_timeout: Duration::from_secs(u64::from(VISIBILITY_TIMEOUT_SECONDS)),
        // Dead letters go to the dead-letter queue, which the store does not list.
        list_dead_letters: false,
        // SQS counts every receive; the default defer_job is a retry.
        defer_keeps_attempt: false,
        ..Capabilities::all()
    }
}

mod standard_queue {
    use super::*;

    myshoes::datastore_conformance!(
        async {
            let endpoint = common::endpoint()?;
            let client = common::client(&endpoint, None);
            let pair =
                common::create_queue_pair(&client, false, VISIBILITY_TIMEOUT_SECONDS, None).await;
            Some(pair.store())
        },
        Capabilities {
            // A standard queue has no deduplication: both copies of a job are delivered.
            deduplicates_jobs: false,
            dedup_window: None,
            ..sqs_capabilities()
        }
    );
}

mod fifo_queue {
    use super::*;

    myshoes::datastore_conformance!(
        async {
            let endpoint = common::endpoint()?;
            let client = common::client(&endpoint, None);
            let pair =
                common::create_queue_pair(&client, true, VISIBILITY_TIMEOUT_SECONDS, None).await;
            Some(pair.store())
        },
        Capabilities {
            deduplicates_jobs: true,
            // NOTE: SQS keeps a FIFO deduplication id for 5 minutes even after the message
            // is deleted, but moto 5.2.5 compares only against messages still in the
            // queue. The suite runs against moto, so these capabilities state no window,
            // and the mocked tests check that every send of a job carries the same id.
            dedup_window: None,
            ..sqs_capabilities()
        }
    );
}
