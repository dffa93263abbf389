//! The sweeper function: one sweeper pass per EventBridge schedule event.
//!
//! It has no runner records of its own, because the dispatcher keeps them in its instances'
//! memory. It judges each ECS task by its tags (runner name, job, target, installation,
//! profile) and by GitHub's list of runners. A busy runner is kept. A runner idle past the
//! minimum idle lifetime is removed from GitHub and stopped. A task whose runner never
//! registered is stopped after the boot grace. These are the `myshoes` sweeper's rules for
//! instances without a record, which read the target, installation and profile from the
//! task's tags.

use std::sync::Arc;

use myshoes::github::{ClientConfig, GitHubApi};
use myshoes::stadium::Stadium;
use myshoes::sweeper::{SweepError, Sweeper, SweeperConfig};
use serde::Serialize;

use crate::config::{self, BOOT_GRACE_VAR, MAX_LIFETIME_VAR, MIN_IDLE_VAR};
use crate::init::{self, InitError};
use crate::secrets::SettingReader;

/// Result of one pass, returned as the invocation's response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepSummary {
    /// Instances and runners kept.
    pub kept: usize,
    /// Instances stopped and runners removed.
    pub deleted: usize,
    /// Actions that failed; the next pass tries them again.
    pub failed: usize,
    /// Reason the pass was skipped, when another pass held the sweep lock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// State of the sweeper function, built once at init.
#[derive(Debug)]
pub struct SweeperFunction {
    sweeper: Sweeper,
}

impl SweeperFunction {
    /// Creates the function around a sweeper.
    pub fn new(sweeper: Sweeper) -> Self {
        Self { sweeper }
    }

    /// Builds the function from the environment: the targets, the ECS Stadium and the
    /// GitHub App client.
    pub async fn from_env(
        reader: &SettingReader<'_>,
        ecs: aws_sdk_ecs::Client,
    ) -> Result<Self, InitError> {
        let env = reader.env();
        let deployment = init::load_deployment(reader).await?;
        let store = init::seeded_store(&deployment).await?;
        let stadium: Arc<dyn Stadium> = Arc::new(init::ecs_stadium(env, ecs, &deployment)?);
        let github: Arc<dyn GitHubApi> =
            Arc::new(init::github_client(reader, ClientConfig::default()).await?);
        let defaults = SweeperConfig::default();
        let mut sweeper_config = SweeperConfig::default();
        sweeper_config.runner_name_prefix = init::runner_name_prefix(env);
        sweeper_config.boot_grace = config::seconds(env, BOOT_GRACE_VAR, defaults.boot_grace)?;
        sweeper_config.min_idle_lifetime =
            config::seconds(env, MIN_IDLE_VAR, defaults.min_idle_lifetime)?;
        sweeper_config.max_lifetime =
            config::seconds(env, MAX_LIFETIME_VAR, defaults.max_lifetime)?;
        Ok(Self::new(Sweeper::new(
            store,
            stadium,
            Some(github),
            sweeper_config,
        )))
    }

    /// Runs one pass. A pass skipped because another holds the lock is a success.
    ///
    /// # Errors
    ///
    /// The [`SweepError`] when ECS tasks or records could not be listed, so the invocation
    /// shows as failed.
    pub async fn handle(&self) -> Result<SweepSummary, SweepError> {
        match self.sweeper.sweep().await {
            Ok(report) => {
                for (decision, error) in &report.failures {
                    tracing::warn!(?decision, %error, "sweep action failed; the next pass tries again");
                }
                let summary = SweepSummary {
                    kept: report.kept(),
                    deleted: report.deleted(),
                    failed: report.failures.len(),
                    skipped: None,
                };
                tracing::info!(
                    kept = summary.kept,
                    deleted = summary.deleted,
                    failed = summary.failed,
                    "sweep pass finished"
                );
                Ok(summary)
            }
            Err(error @ SweepError::Busy { .. }) => {
                tracing::info!(%error, "sweep pass skipped");
                Ok(SweepSummary {
                    skipped: Some(error.to_string()),
                    ..SweepSummary::default()
                })
            }
            Err(error) => {
                tracing::error!(error = %myshoes::ErrorChain(&error), "sweep pass failed");
                Err(error)
            }
        }
    }
}
