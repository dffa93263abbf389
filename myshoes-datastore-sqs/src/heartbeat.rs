//! Periodic visibility extension for jobs whose handling runs long.

use std::time::Duration;

use myshoes::datastore::AckHandle;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::SqsDatastore;

/// Shortest time between two extensions.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// A task that keeps one received job invisible until it is stopped or dropped.
///
/// It extends the visibility timeout every half `timeout`, and stops at the first failed
/// extension (logged as a warning), for example once the job was deleted.
#[derive(Debug)]
pub struct VisibilityHeartbeat {
    task: JoinHandle<()>,
}

impl VisibilityHeartbeat {
    /// Stops the heartbeat; dropping it does the same.
    pub fn stop(self) {}

    /// Returns whether the heartbeat ended by itself after a failed extension.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for VisibilityHeartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SqsDatastore {
    /// Starts a heartbeat that extends the job's visibility timeout to `timeout` from
    /// now, every half `timeout` (at least every second), until the returned value is
    /// stopped or dropped. Stop it before deleting or retrying the job.
    ///
    /// SQS keeps a message in flight for at most 12 hours in total, so the heartbeat
    /// fails after that.
    ///
    /// # Panics
    /// Panics when called outside a Tokio runtime.
    pub fn start_heartbeat(&self, ack: &AckHandle, timeout: Duration) -> VisibilityHeartbeat {
        let store = self.clone();
        let ack = ack.clone();
        let interval = (timeout / 2).max(MIN_INTERVAL);
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                match store.extend_visibility(&ack, timeout).await {
                    Ok(()) => debug!(job_id = %ack.job_id(), "extended visibility timeout"),
                    Err(error) => {
                        warn!(
                            job_id = %ack.job_id(),
                            error = %crate::error_chain(&error),
                            "visibility heartbeat stopped after a failed extension"
                        );
                        return;
                    }
                }
            }
        });
        VisibilityHeartbeat { task }
    }
}
