//! Dispatcher settings.

use std::time::Duration;

use crate::setup_script::{RunnerSource, DEFAULT_WORK_FOLDER};

use crate::runner_name::validate_runner_name_prefix;

/// How often and how fast a job is retried after a retryable failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Dispatch attempts per job, the first one included; after the last failure the job
    /// is dropped with its reason. At least 1.
    pub max_attempts: u32,
    /// Delay before the second attempt; each later delay doubles it.
    pub base_delay: Duration,
    /// Upper bound of any delay.
    pub max_delay: Duration,
    /// Whether each delay is drawn at random from its upper half, so jobs that failed
    /// together (a capacity shortage, say) do not all return at the same moment.
    pub jitter: bool,
    /// Age, counted from the webhook's receipt, after which a failing job is dropped even
    /// with attempts left; `None` for no limit.
    pub max_age: Option<Duration>,
}

impl RetryPolicy {
    /// Returns the delay before the attempt that follows the failed `attempt` (0-based):
    /// `base_delay * 2^attempt`, capped at `max_delay`, and with jitter a random value
    /// between half of that and all of it.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let factor = 2u32.checked_pow(attempt).unwrap_or(u32::MAX);
        let ceiling = self
            .base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        if !self.jitter {
            return ceiling;
        }
        // A v4 UUID carries 122 random bits from the operating system; 32 of them suffice.
        let random = (uuid::Uuid::new_v4().as_u128() & u128::from(u32::MAX)) as f64;
        let fraction = random / f64::from(u32::MAX);
        ceiling / 2 + ceiling.mul_f64(fraction / 2.0)
    }
}

impl Default for RetryPolicy {
    /// 5 attempts, 5 seconds doubling up to 5 minutes, with jitter, and no age limit.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(300),
            jitter: true,
            max_age: None,
        }
    }
}

/// Settings of a [`Dispatcher`](super::Dispatcher).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DispatcherConfig {
    /// Start of every runner name (see [`runner_name`](super::runner_name)).
    pub runner_name_prefix: String,
    /// Runner group the runners join; `None` for the default group.
    pub runner_group: Option<String>,
    /// Where the setup script gets the Actions runner from.
    pub runner_source: RunnerSource,
    /// Work folder of the runners.
    pub work_folder: String,
    /// User that runs the runner; `None` for the user that runs the setup script.
    pub run_as: Option<String>,
    /// Shell commands run before each job.
    pub job_started_hook: Option<String>,
    /// Shell commands run after each job.
    pub job_completed_hook: Option<String>,
    /// Jobs processed at the same time by the loop. At least 1.
    pub max_concurrency: usize,
    /// Maximum time one receive call waits for a job before the loop calls again.
    pub receive_wait: Duration,
    /// Retry behaviour for retryable failures.
    pub retry: RetryPolicy,
    /// Name this dispatcher claims launches under; unique per dispatcher process.
    pub owner_id: String,
    /// How long a launch claim lasts before another dispatcher may take over the job, if
    /// this one stops between claiming and launching. Keep it longer than the slowest
    /// launch and shorter than the Datastore's visibility timeout.
    pub launch_lease: Duration,
    /// Maximum number of runners at once for each target; `None` for no limit. Profiles
    /// have their own limit ([`RunnerProfile::max_runners`](crate::profile::RunnerProfile::max_runners)).
    pub max_runners_per_target: Option<u32>,
    /// Delay before a job that found its profile or target at the runner limit is tried
    /// again. Such waits are returned with [`Datastore::defer_job`](crate::datastore::Datastore::defer_job),
    /// so they use up no attempt on a Datastore that supports it, and are never dropped for
    /// the attempt limit (only for [`RetryPolicy::max_age`]).
    pub cap_wait: Duration,
    /// How long a runner holds its slot under a limit if the sweeper never releases it, for
    /// example because the process that launched it died. Keep it above the sweeper's
    /// maximum runner lifetime.
    pub slot_lease: Duration,
}

impl Default for DispatcherConfig {
    /// Runner names `myshoes-…`, the default group, a download of the pinned runner
    /// version, 8 jobs at a time, 20-second receive waits, [`RetryPolicy::default`], a
    /// random owner id, 2-minute launch claims, no runner limit per target, 30-second waits
    /// at a limit and 25-hour slot leases.
    fn default() -> Self {
        Self {
            runner_name_prefix: "myshoes".to_owned(),
            runner_group: None,
            runner_source: RunnerSource::default(),
            work_folder: DEFAULT_WORK_FOLDER.to_owned(),
            run_as: None,
            job_started_hook: None,
            job_completed_hook: None,
            max_concurrency: 8,
            receive_wait: Duration::from_secs(20),
            retry: RetryPolicy::default(),
            owner_id: format!("dispatcher-{}", uuid::Uuid::new_v4().simple()),
            launch_lease: Duration::from_secs(120),
            max_runners_per_target: None,
            cap_wait: Duration::from_secs(30),
            slot_lease: Duration::from_secs(25 * 3600),
        }
    }
}

/// Error returned for invalid dispatcher settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid dispatcher configuration: {0}")]
pub struct ConfigError(String);

impl DispatcherConfig {
    /// Checks the settings and returns the first problem.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_runner_name_prefix(&self.runner_name_prefix).map_err(ConfigError)?;
        if self.max_concurrency == 0 {
            return Err(ConfigError("max_concurrency must be at least 1".to_owned()));
        }
        if self.owner_id.is_empty() {
            return Err(ConfigError("owner_id must not be empty".to_owned()));
        }
        if self.max_runners_per_target == Some(0) {
            return Err(ConfigError(
                "max_runners_per_target must be at least 1, or unset for no limit".to_owned(),
            ));
        }
        if self.retry.max_attempts == 0 {
            return Err(ConfigError(
                "retry.max_attempts must be at least 1".to_owned(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_and_caps() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(60),
            jitter: false,
            max_age: None,
        };
        assert_eq!(policy.delay_after(0), Duration::from_secs(5));
        assert_eq!(policy.delay_after(1), Duration::from_secs(10));
        assert_eq!(policy.delay_after(3), Duration::from_secs(40));
        assert_eq!(policy.delay_after(4), Duration::from_secs(60));
        assert_eq!(policy.delay_after(200), Duration::from_secs(60));
    }

    #[test]
    fn retry_jitter_stays_in_upper_half() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_secs(8),
            max_delay: Duration::from_secs(60),
            jitter: true,
            max_age: None,
        };
        let delays: Vec<Duration> = (0..200).map(|_| policy.delay_after(1)).collect();
        for delay in &delays {
            assert!(
                *delay >= Duration::from_secs(8),
                "{delay:?} below half of 16 s"
            );
            assert!(*delay <= Duration::from_secs(16), "{delay:?} above 16 s");
        }
        let distinct: std::collections::BTreeSet<_> = delays.iter().collect();
        assert!(
            distinct.len() > 100,
            "jitter must vary: {} distinct of 200",
            distinct.len()
        );
        assert!(policy.delay_after(30) <= Duration::from_secs(60));
    }

    #[test]
    fn config_validation_names_problem() {
        assert!(DispatcherConfig::default().validate().is_ok());
        let config = DispatcherConfig {
            max_concurrency: 0,
            ..DispatcherConfig::default()
        };
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("max_concurrency"));
        let config = DispatcherConfig {
            runner_name_prefix: "bad prefix".into(),
            ..DispatcherConfig::default()
        };
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("prefix"));
    }
}
