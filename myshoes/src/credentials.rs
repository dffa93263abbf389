//! Where runners get the credential they register with.
//!
//! The dispatcher asks a [`RunnerCredentials`] source for a registration token or a JIT
//! config per runner. [`StaticRegistrationToken`] hands out one configured token; a GitHub
//! App client mints them per scope.

use std::fmt;

use async_trait::async_trait;

use crate::model::{Job, Target};
use crate::secret::Secret;
use crate::setup_script::RunnerCredential;

pub use crate::datastore::BoxError;

/// Request for one runner's credential.
#[derive(Debug, Clone, Copy)]
pub struct CredentialRequest<'a> {
    /// Target the runner registers on (its scope and host).
    pub target: &'a Target,
    /// Job the runner is launched for.
    pub job: &'a Job,
    /// Name the runner registers with.
    pub runner_name: &'a str,
    /// Labels the runner registers with.
    pub labels: &'a [String],
    /// Runner group, or `None` for the default group.
    pub runner_group: Option<&'a str>,
}

/// Error returned by a [`RunnerCredentials`] source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// GitHub rejected the request for good, for example because the App lacks a
    /// permission or the runner group does not exist. Permanent.
    #[error("credential request for {scope} was rejected: {reason}")]
    Rejected {
        /// Scope the credential was requested for.
        scope: String,
        /// What GitHub said and what to change.
        reason: String,
    },
    /// The source failed; the source error has the details.
    #[error("credential source {source_name} failed for {scope}")]
    Backend {
        /// Name of the credential source.
        source_name: &'static str,
        /// Scope the credential was requested for.
        scope: String,
        /// Whether a later attempt may succeed.
        retryable: bool,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
}

impl CredentialError {
    /// Returns whether a later attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            CredentialError::Rejected { .. } => false,
            CredentialError::Backend { retryable, .. } => *retryable,
        }
    }
}

/// A source of runner credentials.
#[async_trait]
pub trait RunnerCredentials: fmt::Debug + Send + Sync + 'static {
    /// Returns a credential that registers one runner as described by `request`.
    async fn runner_credential(
        &self,
        request: &CredentialRequest<'_>,
    ) -> Result<RunnerCredential, CredentialError>;
}

/// A registration token given in configuration, used for every runner.
///
/// GitHub's registration tokens expire after one hour, so this fits demos and tests; a
/// GitHub App client mints fresh ones. With no network, the local demo uses it with a
/// stand-in runner.
#[derive(Debug, Clone)]
pub struct StaticRegistrationToken {
    token: Secret,
}

impl StaticRegistrationToken {
    /// Uses `token` for every runner.
    pub fn new(token: Secret) -> Self {
        Self { token }
    }
}

#[async_trait]
impl RunnerCredentials for StaticRegistrationToken {
    async fn runner_credential(
        &self,
        _request: &CredentialRequest<'_>,
    ) -> Result<RunnerCredential, CredentialError> {
        Ok(RunnerCredential::RegistrationToken(self.token.clone()))
    }
}
