use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

use super::config::{ClientConfig, GitHubApp, TlsRoots};
use super::http::RATE_LIMIT_UNKNOWN;
use super::tokens::{CachedJwt, TokenCache};
use super::{Error, GitHubApi, GitHubRunner, Installation};
use crate::credentials::{BoxError, CredentialError, CredentialRequest, RunnerCredentials};
use crate::job_status::{JobStatusSource, WorkflowJobState, WorkflowJobStatus};
use crate::model::{GitHubHost, Job, RepositoryName, Scope};
use crate::setup_script::RunnerCredential;

/// Redirects followed at most, and only to the origin of the first request.
const MAX_REDIRECTS: usize = 5;

/// A GitHub App client for one App, on any number of hosts and installations.
///
/// It caches the App JWT, installation tokens per (host, installation), registration
/// tokens per (host, scope) and runner group ids per (host, organization). Share one
/// client, for example in an [`Arc`](std::sync::Arc), so every caller uses the same caches.
pub struct GitHubAppClient {
    pub(super) app: GitHubApp,
    pub(super) config: ClientConfig,
    pub(super) http: reqwest::Client,
    pub(super) jwt: Mutex<Option<CachedJwt>>,
    pub(super) installation_tokens: TokenCache<(GitHubHost, u64)>,
    pub(super) registration_tokens: TokenCache<(GitHubHost, Scope)>,
    pub(super) runner_groups: Mutex<HashMap<(GitHubHost, String), HashMap<String, u64>>>,
    pub(super) jit_unavailable: Mutex<HashSet<GitHubHost>>,
    pub(super) rate_limit_remaining: AtomicU64,
}

impl GitHubAppClient {
    /// Creates a client with an HTTP client of its own: rustls with aws-lc-rs, the root
    /// certificates `config.tls_roots` names, `config.request_timeout`, and redirects
    /// followed only within the origin of the request.
    pub fn new(app: GitHubApp, config: ClientConfig) -> Result<Self, Error> {
        config.validate()?;
        let http = build_http_client(&config)?;
        Ok(Self::assemble(app, config, http))
    }

    /// Creates a client that sends its requests with `http`, for example one with a proxy.
    /// The client still sets its headers and token on every request.
    pub fn with_http_client(
        app: GitHubApp,
        config: ClientConfig,
        http: reqwest::Client,
    ) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self::assemble(app, config, http))
    }

    fn assemble(app: GitHubApp, config: ClientConfig, http: reqwest::Client) -> Self {
        Self {
            app,
            config,
            http,
            jwt: Mutex::new(None),
            installation_tokens: TokenCache::new(),
            registration_tokens: TokenCache::new(),
            runner_groups: Mutex::new(HashMap::new()),
            jit_unavailable: Mutex::new(HashSet::new()),
            rate_limit_remaining: AtomicU64::new(RATE_LIMIT_UNKNOWN),
        }
    }

    /// Returns the App identity.
    pub fn app(&self) -> &GitHubApp {
        &self.app
    }

    /// Returns the settings.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }
}

fn build_http_client(config: &ClientConfig) -> Result<reqwest::Client, Error> {
    let redirects = reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error("too many redirects from the GitHub API")
        } else if !same_origin {
            attempt.error("the GitHub API redirected to another origin; not following it")
        } else {
            attempt.follow()
        }
    });
    let builder = reqwest::Client::builder()
        .timeout(config.request_timeout)
        .redirect(redirects);
    let builder = match config.tls_roots {
        TlsRoots::Platform => builder,
        TlsRoots::Mozilla => builder.tls_backend_preconfigured(mozilla_tls_config()?),
    };
    builder.build().map_err(|source| Error::HttpClient {
        source: Box::new(source),
    })
}

/// Returns a rustls configuration that trusts Mozilla's roots and offers HTTP/1.1 through
/// ALPN, the one protocol this build of reqwest speaks.
fn mozilla_tls_config() -> Result<rustls::ClientConfig, Error> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| Error::HttpClient {
            source: Box::new(source),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tls)
}

impl fmt::Debug for GitHubAppClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let jwt = self.jwt.lock().unwrap_or_else(PoisonError::into_inner);
        let runner_groups = self
            .runner_groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let jit_unavailable = self
            .jit_unavailable
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("GitHubAppClient")
            .field("app", &self.app)
            .field("config", &self.config)
            .field("jwt", &*jwt)
            .field("installation_tokens", &self.installation_tokens)
            .field("registration_tokens", &self.registration_tokens)
            .field("runner_groups", &*runner_groups)
            .field("jit_unavailable", &*jit_unavailable)
            .field("rate_limit_remaining", &self.rate_limit_remaining())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl RunnerCredentials for GitHubAppClient {
    async fn runner_credential(
        &self,
        request: &CredentialRequest<'_>,
    ) -> Result<RunnerCredential, CredentialError> {
        let scope = request.target.host.scope_url(&request.target.scope);
        self.runner_credential_for(request)
            .await
            .map_err(|error| error.into_credential_error(scope))
    }
}

#[async_trait]
impl JobStatusSource for GitHubAppClient {
    async fn workflow_job_state(&self, job: &Job) -> Result<WorkflowJobState, BoxError> {
        let Some(installation_id) = job.installation_id else {
            return Err(Box::new(Error::MissingInstallation {
                scope: format!("repository {} on {}", job.repository, job.host),
            }));
        };
        let installation = Installation::new(job.host.clone(), installation_id);
        let state = self
            .job_state(&installation, &job.repository, job.workflow_job_id)
            .await?;
        Ok(state)
    }
}

#[async_trait]
impl GitHubApi for GitHubAppClient {
    async fn job_status(
        &self,
        installation: &Installation,
        repository: &RepositoryName,
        job_id: u64,
    ) -> Result<WorkflowJobStatus, Error> {
        GitHubAppClient::job_status(self, installation, repository, job_id).await
    }

    async fn create_runner_credential(
        &self,
        request: &CredentialRequest<'_>,
    ) -> Result<RunnerCredential, Error> {
        self.runner_credential_for(request).await
    }

    async fn list_runners(
        &self,
        installation: &Installation,
        scope: &Scope,
    ) -> Result<Vec<GitHubRunner>, Error> {
        GitHubAppClient::list_runners(self, installation, scope).await
    }

    async fn get_runner(
        &self,
        installation: &Installation,
        scope: &Scope,
        runner_id: u64,
    ) -> Result<Option<GitHubRunner>, Error> {
        GitHubAppClient::get_runner(self, installation, scope, runner_id).await
    }

    async fn delete_runner(
        &self,
        installation: &Installation,
        scope: &Scope,
        runner_id: u64,
    ) -> Result<(), Error> {
        GitHubAppClient::delete_runner(self, installation, scope, runner_id).await
    }

    async fn find_runner_by_name(
        &self,
        installation: &Installation,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<GitHubRunner>, Error> {
        GitHubAppClient::find_runner_by_name(self, installation, scope, name).await
    }
}
