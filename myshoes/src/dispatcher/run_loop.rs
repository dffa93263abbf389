//! The loop that feeds received jobs to [`Dispatcher::process`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{error_chain, Dispatcher};

/// Maximum pause after consecutive receive failures.
const MAX_RECEIVE_BACKOFF: Duration = Duration::from_secs(30);

impl Dispatcher {
    /// Receives and processes jobs until `shutdown` completes, then waits for the jobs in
    /// progress to finish.
    ///
    /// At most [`DispatcherConfig::max_concurrency`](super::DispatcherConfig) jobs are
    /// processed at once, and the loop receives only as many jobs as it has room for, so
    /// jobs it cannot start stay in the queue for other dispatchers. Receiving waits on the
    /// Datastore (long polling), so a new job starts without a polling delay. Receive
    /// failures are logged and retried with a growing pause of up to 30 seconds.
    pub async fn run_until<F>(self: Arc<Self>, shutdown: F)
    where
        F: Future<Output = ()> + Send,
    {
        let permits = Arc::new(Semaphore::new(self.config.max_concurrency));
        let mut tasks = JoinSet::new();
        let mut failures: u32 = 0;
        tokio::pin!(shutdown);
        tracing::info!(
            datastore = %self.datastore,
            stadium = %self.stadium,
            max_concurrency = self.config.max_concurrency,
            "dispatcher started"
        );

        loop {
            while let Some(finished) = tasks.try_join_next() {
                log_task_panic(finished);
            }

            let first = tokio::select! {
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            };
            let mut held = vec![first];
            while let Ok(permit) = permits.clone().try_acquire_owned() {
                held.push(permit);
            }

            let received = tokio::select! {
                received = self.datastore.receive_jobs(held.len(), self.config.receive_wait) => received,
                () = &mut shutdown => break,
            };
            match received {
                Ok(jobs) => {
                    failures = 0;
                    for (job, permit) in jobs.into_iter().zip(held) {
                        let dispatcher = Arc::clone(&self);
                        tasks.spawn(async move {
                            let _permit = permit;
                            dispatcher.process(job).await;
                        });
                    }
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let pause = receive_backoff(failures);
                    tracing::warn!(
                        error = %error_chain(&error),
                        failures,
                        pause_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                        "failed to receive jobs; retrying"
                    );
                    drop(held);
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = &mut shutdown => break,
                    }
                }
            }
        }

        while let Some(finished) = tasks.try_join_next() {
            log_task_panic(finished);
        }
        tracing::info!(
            in_progress = tasks.len(),
            "dispatcher stopping; waiting for jobs in progress"
        );
        while let Some(finished) = tasks.join_next().await {
            log_task_panic(finished);
        }
        tracing::info!("dispatcher stopped");
    }
}

fn receive_backoff(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(10);
    (Duration::from_millis(100) * 2u32.pow(exponent)).min(MAX_RECEIVE_BACKOFF)
}

fn log_task_panic(finished: Result<(), tokio::task::JoinError>) {
    if let Err(error) = finished {
        // The job was not acknowledged, so the Datastore hands it out again after its
        // visibility timeout.
        tracing::error!(%error, "a dispatch task panicked; its job will be received again");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receive_backoff_grows_and_caps() {
        assert_eq!(receive_backoff(1), Duration::from_millis(100));
        assert_eq!(receive_backoff(2), Duration::from_millis(200));
        assert_eq!(receive_backoff(9), Duration::from_millis(25_600));
        assert_eq!(receive_backoff(10), MAX_RECEIVE_BACKOFF);
        assert_eq!(receive_backoff(u32::MAX), MAX_RECEIVE_BACKOFF);
    }
}
