//! [`FaultyCredentials`] and [`FaultyGitHub`]: GitHub-facing sources that fail at the
//! calls a [`FaultPlan`] selects.

use std::fmt;

use async_trait::async_trait;

use super::plan::{apply, Fault, FaultPlan, InjectedError, Op};
use crate::credentials::{CredentialError, CredentialRequest, RunnerCredentials};
use crate::github::{Error as GitHubError, GitHubApi, GitHubRunner, Installation};
use crate::job_status::WorkflowJobStatus;
use crate::model::{RepositoryName, Scope};
use crate::setup_script::RunnerCredential;

/// A [`RunnerCredentials`] source that forwards every request to `C`, except those its
/// [`FaultPlan`] selects ([`Op::RunnerCredential`]).
///
/// Errors it returns for each [`Fault`]: a permanent error is
/// [`CredentialError::Rejected`]; every other fault is [`CredentialError::Backend`] with
/// `retryable: true` and an [`InjectedError`] source naming the fault. A lost response
/// models GitHub minting a credential the dispatcher never receives; for a JIT config,
/// GitHub then already has a runner with that name.
pub struct FaultyCredentials<C> {
    inner: C,
    plan: FaultPlan,
}

impl<C: RunnerCredentials> FaultyCredentials<C> {
    /// Wraps `inner`, injecting the faults `plan` selects.
    pub fn new(inner: C, plan: FaultPlan) -> Self {
        Self { inner, plan }
    }

    /// Returns the wrapped source.
    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// Returns the plan.
    pub fn plan(&self) -> &FaultPlan {
        &self.plan
    }
}

impl<C: fmt::Debug> fmt::Debug for FaultyCredentials<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyCredentials")
            .field("inner", &self.inner)
            .field("plan", &self.plan)
            .finish()
    }
}

#[async_trait]
impl<C: RunnerCredentials> RunnerCredentials for FaultyCredentials<C> {
    async fn runner_credential(
        &self,
        request: &CredentialRequest<'_>,
    ) -> Result<RunnerCredential, CredentialError> {
        let fault = self.plan.decide(Op::RunnerCredential, Some(request.job.id));
        let scope = request.target.scope.to_string();
        apply(
            Op::RunnerCredential,
            fault,
            self.inner.runner_credential(request),
            |injected| match injected.fault {
                Fault::PermanentError => CredentialError::Rejected {
                    scope,
                    reason: injected.to_string(),
                },
                _ => CredentialError::Backend {
                    source_name: "fault injection",
                    scope,
                    retryable: true,
                    source: Box::new(injected),
                },
            },
        )
        .await
    }
}

/// A [`GitHubApi`] that forwards every call to `G`, except those its [`FaultPlan`]
/// selects (the `Op::GitHub*` methods).
///
/// Errors it returns for each [`Fault`], as the HTTP client would report the matching
/// response:
///
/// | fault | error |
/// |---|---|
/// | retryable error | [`GitHubError::Server`] with status 502 |
/// | permanent error | [`GitHubError::Rejected`] with status 403 |
/// | throttled, capacity | [`GitHubError::RateLimited`] with status 429 |
/// | timed out, lost response | [`GitHubError::Server`] with status 504 |
pub struct FaultyGitHub<G> {
    inner: G,
    plan: FaultPlan,
}

impl<G: GitHubApi> FaultyGitHub<G> {
    /// Wraps `inner`, injecting the faults `plan` selects.
    pub fn new(inner: G, plan: FaultPlan) -> Self {
        Self { inner, plan }
    }

    /// Returns the wrapped source.
    pub fn inner(&self) -> &G {
        &self.inner
    }

    /// Returns the plan.
    pub fn plan(&self) -> &FaultPlan {
        &self.plan
    }
}

impl<G: fmt::Debug> fmt::Debug for FaultyGitHub<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyGitHub")
            .field("inner", &self.inner)
            .field("plan", &self.plan)
            .finish()
    }
}

fn github_error(scope: String, injected: InjectedError) -> GitHubError {
    let operation = injected.op.name();
    match injected.fault {
        Fault::PermanentError => GitHubError::Rejected {
            operation,
            scope,
            status: 403,
            message: injected.to_string(),
        },
        Fault::Throttled | Fault::Capacity => GitHubError::RateLimited {
            operation,
            scope,
            status: 429,
            retry_after: None,
            attempts: 1,
        },
        Fault::TimedOut | Fault::LostResponse | Fault::Crash => GitHubError::Server {
            operation,
            scope,
            status: 504,
            attempts: 1,
        },
        Fault::RetryableError => GitHubError::Server {
            operation,
            scope,
            status: 502,
            attempts: 1,
        },
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<G: GitHubApi> GitHubApi for FaultyGitHub<G> {
    async fn job_status(
        &self,
        installation: &Installation,
        repository: &RepositoryName,
        job_id: u64,
    ) -> Result<WorkflowJobStatus, GitHubError> {
        let fault = self.plan.decide(Op::GitHubJobStatus, None);
        apply(
            Op::GitHubJobStatus,
            fault,
            self.inner.job_status(installation, repository, job_id),
            |injected| github_error(repository.to_string(), injected),
        )
        .await
    }

    async fn create_runner_credential(
        &self,
        request: &CredentialRequest<'_>,
    ) -> Result<RunnerCredential, GitHubError> {
        let fault = self
            .plan
            .decide(Op::GitHubCreateRunnerCredential, Some(request.job.id));
        apply(
            Op::GitHubCreateRunnerCredential,
            fault,
            self.inner.create_runner_credential(request),
            |injected| github_error(request.target.scope.to_string(), injected),
        )
        .await
    }

    async fn list_runners(
        &self,
        installation: &Installation,
        scope: &Scope,
    ) -> Result<Vec<GitHubRunner>, GitHubError> {
        let fault = self.plan.decide(Op::GitHubListRunners, None);
        apply(
            Op::GitHubListRunners,
            fault,
            self.inner.list_runners(installation, scope),
            |injected| github_error(scope.to_string(), injected),
        )
        .await
    }

    async fn get_runner(
        &self,
        installation: &Installation,
        scope: &Scope,
        runner_id: u64,
    ) -> Result<Option<GitHubRunner>, GitHubError> {
        let fault = self.plan.decide(Op::GitHubGetRunner, None);
        apply(
            Op::GitHubGetRunner,
            fault,
            self.inner.get_runner(installation, scope, runner_id),
            |injected| github_error(scope.to_string(), injected),
        )
        .await
    }

    async fn delete_runner(
        &self,
        installation: &Installation,
        scope: &Scope,
        runner_id: u64,
    ) -> Result<(), GitHubError> {
        let fault = self.plan.decide(Op::GitHubDeleteRunner, None);
        apply(
            Op::GitHubDeleteRunner,
            fault,
            self.inner.delete_runner(installation, scope, runner_id),
            |injected| github_error(scope.to_string(), injected),
        )
        .await
    }

    async fn find_runner_by_name(
        &self,
        installation: &Installation,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<GitHubRunner>, GitHubError> {
        let fault = self.plan.decide(Op::GitHubListRunners, None);
        apply(
            Op::GitHubListRunners,
            fault,
            self.inner.find_runner_by_name(installation, scope, name),
            |injected| github_error(scope.to_string(), injected),
        )
        .await
    }
}
