//! A GitHub App client: App JWTs, installation tokens, runner credentials, runners and
//! job status over GitHub's REST API.
//!
//! [`GitHubAppClient`] signs RS256 App JWTs, mints installation access tokens and caches
//! both, then creates a JIT config or registration token per runner on repository and
//! organization scopes. It implements [`RunnerCredentials`](crate::credentials::RunnerCredentials)
//! for the dispatcher and [`GitHubApi`] for code that also lists and deletes runners or
//! checks jobs. Tests can fake [`GitHubApi`] instead of running a server.
//!
//! Every request goes to [`GitHubHost::api_url`] of the host it is for, so calls for
//! GitHub Enterprise Server or `ghe.com` never reach `api.github.com`. The HTTP client
//! that [`GitHubAppClient::new`] builds follows redirects only within the same origin.
//! 5xx responses, transport errors and rate limits are retried as [`RetryConfig`] sets.
//! Tokens, JWTs, JIT configs and keys are redacted in every `Debug` and never logged, so
//! logs carry only installation ids, scopes, runner ids and status codes.
//!
//! ```no_run
//! use myshoes::github::{ClientConfig, GitHubApp, GitHubAppClient};
//! use myshoes::secret::Secret;
//!
//! # fn run() -> Result<(), myshoes::github::Error> {
//! let key = Secret::new(std::env::var("GITHUB_PRIVATE_KEY_BASE64").unwrap_or_default());
//! let app = GitHubApp::new(123456, &key)?;
//! let client = GitHubAppClient::new(app, ClientConfig::default())?;
//! # let _ = client;
//! # Ok(())
//! # }
//! ```

mod client;
mod config;
mod credential;
mod deliveries;
mod error;
mod http;
mod queued_scan;
mod runners;
mod tokens;

use std::fmt;

use async_trait::async_trait;
use serde::Deserialize;

use crate::credentials::CredentialRequest;
use crate::job_status::WorkflowJobStatus;
use crate::model::{GitHubHost, RepositoryName, Scope};
use crate::setup_script::RunnerCredential;

pub use client::GitHubAppClient;
pub use config::{AppJwtClaims, ClientConfig, CredentialKind, GitHubApp, RetryConfig, TlsRoots};
pub use deliveries::{HookDelivery, RedeliveryError, RescuePass, RescueReport};
pub use error::Error;
pub use queued_scan::{QueuedJobScan, QueuedScanReport};

/// Id of the default runner group, which every organization and repository has.
pub const DEFAULT_RUNNER_GROUP_ID: u64 = 1;

/// A GitHub App installation: the host it lives on and its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Installation {
    /// GitHub instance of the installation.
    pub host: GitHubHost,
    /// Installation id, as in a webhook's `installation.id`.
    pub id: u64,
}

impl Installation {
    /// Creates an installation reference.
    pub fn new(host: GitHubHost, id: u64) -> Self {
        Self { host, id }
    }
}

/// A self-hosted runner as GitHub lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GitHubRunner {
    /// GitHub's runner id.
    pub id: u64,
    /// Name the runner registered with.
    pub name: String,
    /// Operating system, such as `linux`.
    #[serde(default)]
    pub os: String,
    /// `online` or `offline`.
    #[serde(default)]
    pub status: String,
    /// Whether the runner is running a job.
    #[serde(default)]
    pub busy: bool,
    /// Label names, default and custom.
    #[serde(default, deserialize_with = "label_names")]
    pub labels: Vec<String>,
    /// Runner group id, when GitHub sends it.
    #[serde(default)]
    pub runner_group_id: Option<u64>,
    /// Whether the runner was registered as ephemeral, when GitHub sends it.
    #[serde(default)]
    pub ephemeral: Option<bool>,
}

/// Reads GitHub's label objects (`{"id": 1, "name": "linux", "type": "read-only"}`) as
/// their names.
fn label_names<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    struct Label {
        name: String,
    }
    let labels = Vec::<Label>::deserialize(deserializer)?;
    Ok(labels.into_iter().map(|label| label.name).collect())
}

/// The GitHub calls the dispatcher and the runner sweeper need.
///
/// [`GitHubAppClient`] implements it over HTTP; tests can implement it in memory.
#[async_trait]
pub trait GitHubApi: fmt::Debug + Send + Sync + 'static {
    /// Returns the status of workflow job `job_id` in `repository`.
    async fn job_status(
        &self,
        installation: &Installation,
        repository: &RepositoryName,
        job_id: u64,
    ) -> Result<WorkflowJobStatus, Error>;

    /// Creates the credential one runner registers with: a JIT config or a registration
    /// token for the request's target, through the job's installation.
    async fn create_runner_credential(
        &self,
        request: &CredentialRequest<'_>,
    ) -> Result<RunnerCredential, Error>;

    /// Lists every self-hosted runner registered on `scope`.
    async fn list_runners(
        &self,
        installation: &Installation,
        scope: &Scope,
    ) -> Result<Vec<GitHubRunner>, Error>;

    /// Returns runner `runner_id` of `scope`, or `None` when GitHub does not know it.
    async fn get_runner(
        &self,
        installation: &Installation,
        scope: &Scope,
        runner_id: u64,
    ) -> Result<Option<GitHubRunner>, Error>;

    /// Deletes runner `runner_id` from `scope`. A runner that is already gone counts as
    /// deleted.
    async fn delete_runner(
        &self,
        installation: &Installation,
        scope: &Scope,
        runner_id: u64,
    ) -> Result<(), Error>;

    /// Returns the runner of `scope` named exactly `name`, or `None`. The default lists
    /// every runner; [`GitHubAppClient`] asks GitHub with its `name` filter instead.
    async fn find_runner_by_name(
        &self,
        installation: &Installation,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<GitHubRunner>, Error> {
        let runners = self.list_runners(installation, scope).await?;
        Ok(runners.into_iter().find(|runner| runner.name == name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runner_reads_label_names() {
        let json = r#"{"id":23,"name":"myshoes-1-1","os":"linux","status":"online","busy":false,
            "labels":[{"id":5,"name":"self-hosted","type":"read-only"},{"id":7,"name":"gpu","type":"custom"}]}"#;
        let runner: GitHubRunner = serde_json::from_str(json).unwrap();
        assert_eq!(runner.id, 23);
        assert_eq!(runner.labels, ["self-hosted", "gpu"]);
        assert_eq!(runner.runner_group_id, None);
    }

    #[test]
    fn api_trait_is_object_safe() {
        fn assert_object_safe(_: Option<&dyn GitHubApi>) {}
        assert_object_safe(None);
    }
}
