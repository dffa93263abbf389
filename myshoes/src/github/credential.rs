//! Runner credentials: JIT configs, registration tokens and runner group ids.

use std::collections::HashMap;
use std::sync::PoisonError;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::http::CallContext;
use super::tokens::{CachedToken, TokenBody};
use super::{CredentialKind, Error, GitHubAppClient, Installation, DEFAULT_RUNNER_GROUP_ID};
use crate::credentials::CredentialRequest;
use crate::model::{GitHubHost, HostKind, Scope};
use crate::secret::Secret;
use crate::setup_script::RunnerCredential;

/// Labels GitHub accepts per JIT request, at least and at most.
const MIN_LABELS: usize = 1;
const MAX_LABELS: usize = 100;
/// Runner groups requested per page, GitHub's maximum.
const GROUPS_PER_PAGE: usize = 100;
/// Name of the default runner group, the only group a repository scope has.
const DEFAULT_RUNNER_GROUP_NAME: &str = "Default";
/// Pages read at most when listing runner groups.
const MAX_GROUP_PAGES: u32 = 100;

/// Body of a `generate-jitconfig` response.
#[derive(Deserialize)]
struct JitBody {
    runner: JitRunner,
    encoded_jit_config: String,
}

#[derive(Deserialize)]
struct JitRunner {
    id: u64,
}

#[derive(Deserialize)]
struct RunnerGroupsPage {
    #[serde(default)]
    total_count: usize,
    runner_groups: Vec<RunnerGroup>,
}

#[derive(Deserialize)]
struct RunnerGroup {
    id: u64,
    name: String,
}

/// A runner group id and whether it came from the GitHub lookup, which a 404 refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ResolvedGroup {
    id: u64,
    looked_up: bool,
}

/// Returns the REST path prefix of a scope: `/repos/{owner}/{repo}` or `/orgs/{org}`.
/// Scope names are validated to ASCII letters, digits, `-`, `_` and `.`, so they need
/// no escaping.
pub(super) fn scope_path(scope: &Scope) -> String {
    match scope {
        Scope::Repository(name) => format!("/repos/{}/{}", name.owner(), name.repo()),
        Scope::Organization(org) => format!("/orgs/{org}"),
    }
}

/// Returns a scope and host as error messages and logs write them.
pub(super) fn describe_scope(scope: &Scope, host: &GitHubHost) -> String {
    match scope {
        Scope::Repository(name) => format!("repository {name} on {host}"),
        Scope::Organization(org) => format!("organization {org} on {host}"),
    }
}

impl GitHubAppClient {
    /// Creates the credential for one runner as [`CredentialKind`] sets.
    ///
    /// For JIT configs, a 409 (the runner name exists, for example after a lost response)
    /// deletes the existing runner and requests again, up to `jit_conflict_attempts` times. A
    /// 404 first refreshes a looked-up runner group id. A 404 that remains on GitHub
    /// Enterprise Server marks JIT as unavailable on that host, so this and later requests
    /// there use registration tokens.
    pub async fn runner_credential_for(
        &self,
        request: &CredentialRequest<'_>,
    ) -> Result<RunnerCredential, Error> {
        let scope = &request.target.scope;
        let host = &request.target.host;
        let described = describe_scope(scope, host);
        let Some(installation_id) = request.job.installation_id else {
            return Err(Error::MissingInstallation { scope: described });
        };
        let installation = Installation::new(host.clone(), installation_id);

        if self.config.credential_kind == CredentialKind::RegistrationToken
            || self.jit_unavailable(host)
        {
            let token = self.registration_token(&installation, scope).await?;
            return Ok(RunnerCredential::RegistrationToken(token));
        }
        self.jit_config(&installation, scope, request, &described)
            .await
    }

    async fn jit_config(
        &self,
        installation: &Installation,
        scope: &Scope,
        request: &CredentialRequest<'_>,
        described: &str,
    ) -> Result<RunnerCredential, Error> {
        if request.runner_name.is_empty() {
            return Err(Error::InvalidRequest {
                scope: described.to_owned(),
                reason: "the runner name is empty".to_owned(),
            });
        }
        if !(MIN_LABELS..=MAX_LABELS).contains(&request.labels.len()) {
            return Err(Error::InvalidRequest {
                scope: described.to_owned(),
                reason: format!(
                    "a JIT runner needs {MIN_LABELS} to {MAX_LABELS} labels, got {}; fix the runner profile",
                    request.labels.len()
                ),
            });
        }

        let context = CallContext {
            operation: "generate JIT runner config",
            scope: described,
        };
        let url = self.api_url(
            &installation.host,
            &format!("{}/actions/runners/generate-jitconfig", scope_path(scope)),
        )?;
        let mut group = self
            .resolve_runner_group(installation, scope, request.runner_group, false)
            .await?;
        let mut group_refreshed = false;
        let mut conflicts: u32 = 0;
        loop {
            let body = json!({
                "name": request.runner_name,
                "runner_group_id": group.id,
                "labels": request.labels,
                "work_folder": self.config.work_folder,
            });
            let response = self
                .send(
                    context,
                    Method::POST,
                    url.clone(),
                    installation,
                    Some(&body),
                )
                .await?;
            match response.status {
                StatusCode::CREATED | StatusCode::OK => {
                    let jit: JitBody = response.json(context)?;
                    tracing::info!(
                        scope = described,
                        runner_id = jit.runner.id,
                        runner_group_id = group.id,
                        "created JIT runner config"
                    );
                    return Ok(RunnerCredential::JitConfig(Secret::new(
                        jit.encoded_jit_config,
                    )));
                }
                StatusCode::CONFLICT => {
                    conflicts += 1;
                    if conflicts >= self.config.jit_conflict_attempts {
                        return Err(response.into_error(context));
                    }
                    tracing::warn!(
                        scope = described,
                        runner_name = request.runner_name,
                        conflicts,
                        "runner name exists on GitHub; deleting that runner and asking again"
                    );
                    self.delete_runners_named(installation, scope, request.runner_name)
                        .await?;
                }
                StatusCode::NOT_FOUND => {
                    if group.looked_up && !group_refreshed {
                        group_refreshed = true;
                        let fresh = self
                            .resolve_runner_group(installation, scope, request.runner_group, true)
                            .await?;
                        if fresh.id != group.id {
                            tracing::info!(
                                scope = described,
                                old_group_id = group.id,
                                new_group_id = fresh.id,
                                "runner group id changed; asking again"
                            );
                            group = fresh;
                            continue;
                        }
                    }
                    if installation.host.kind() != HostKind::Server {
                        return Err(response.into_error(context));
                    }
                    // NOTE: a missing scope or group also gives a 404 on GitHub Enterprise
                    // Server, so it too switches the host to registration tokens. The token
                    // request then fails with the real cause.
                    self.mark_jit_unavailable(&installation.host);
                    let token = self.registration_token(installation, scope).await?;
                    return Ok(RunnerCredential::RegistrationToken(token));
                }
                _ => return Err(response.into_error(context)),
            }
        }
    }

    fn jit_unavailable(&self, host: &GitHubHost) -> bool {
        self.jit_unavailable
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(host)
    }

    fn mark_jit_unavailable(&self, host: &GitHubHost) {
        let newly = self
            .jit_unavailable
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(host.clone());
        if newly {
            tracing::warn!(
                host = %host,
                "generate-jitconfig responded 404 on GitHub Enterprise Server; using registration tokens on this host from now on"
            );
        }
    }

    /// Returns a registration token for `scope`, reusing the cached one while it stays
    /// valid for the boot budget plus margin.
    pub async fn registration_token(
        &self,
        installation: &Installation,
        scope: &Scope,
    ) -> Result<Secret, Error> {
        let key = (installation.host.clone(), scope.clone());
        let lifetime = self.config.boot_budget + self.config.registration_token_margin;
        let token = self
            .registration_tokens
            .get_or_mint(&key, lifetime, || {
                self.mint_registration_token(installation, scope)
            })
            .await?;
        Ok(token.token)
    }

    async fn mint_registration_token(
        &self,
        installation: &Installation,
        scope: &Scope,
    ) -> Result<CachedToken, Error> {
        let described = describe_scope(scope, &installation.host);
        let context = CallContext {
            operation: "create registration token",
            scope: &described,
        };
        let url = self.api_url(
            &installation.host,
            &format!("{}/actions/runners/registration-token", scope_path(scope)),
        )?;
        let response = self
            .send(context, Method::POST, url, installation, None)
            .await?;
        if response.status != StatusCode::CREATED && response.status != StatusCode::OK {
            return Err(response.into_error(context));
        }
        let token: CachedToken = response.json::<TokenBody>(context)?.into();
        tracing::info!(
            scope = %described,
            expires_at = %token.expires_at,
            "created runner registration token"
        );
        Ok(token)
    }

    /// Returns the id of runner group `name` (the default group for `None`): from
    /// `runner_group_ids`, else from the organization's group list, cached per
    /// organization and read again when `refresh` is set or the name is not cached. On a
    /// repository scope only `Default` and names in `runner_group_ids` resolve.
    async fn resolve_runner_group(
        &self,
        installation: &Installation,
        scope: &Scope,
        name: Option<&str>,
        refresh: bool,
    ) -> Result<ResolvedGroup, Error> {
        let Some(name) = name else {
            return Ok(ResolvedGroup {
                id: DEFAULT_RUNNER_GROUP_ID,
                looked_up: false,
            });
        };
        if let Some(&id) = self.config.runner_group_ids.get(name) {
            return Ok(ResolvedGroup {
                id,
                looked_up: false,
            });
        }
        let described = describe_scope(scope, &installation.host);
        let Scope::Organization(org) = scope else {
            if name.eq_ignore_ascii_case(DEFAULT_RUNNER_GROUP_NAME) {
                return Ok(ResolvedGroup {
                    id: DEFAULT_RUNNER_GROUP_ID,
                    looked_up: false,
                });
            }
            return Err(Error::InvalidRequest {
                scope: described,
                reason: format!(
                    "runner group {name:?} is not in runner_group_ids; runner groups belong to organizations, so a repository runner uses the default group unless its id is configured"
                ),
            });
        };

        let key = (installation.host.clone(), org.to_ascii_lowercase());
        if !refresh {
            if let Some(id) = self.cached_group_id(&key, name) {
                return Ok(ResolvedGroup {
                    id,
                    looked_up: true,
                });
            }
        }
        let groups = self
            .fetch_runner_groups(installation, org, &described)
            .await?;
        let found = find_group(&groups, name);
        self.runner_groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, groups);
        match found {
            Some(id) => Ok(ResolvedGroup {
                id,
                looked_up: true,
            }),
            None => Err(Error::InvalidRequest {
                scope: described,
                reason: format!(
                    "runner group {name:?} does not exist; create it in the organization's Actions settings or fix the runner profile"
                ),
            }),
        }
    }

    fn cached_group_id(&self, key: &(GitHubHost, String), name: &str) -> Option<u64> {
        let groups = self
            .runner_groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        groups.get(key).and_then(|groups| find_group(groups, name))
    }

    async fn fetch_runner_groups(
        &self,
        installation: &Installation,
        org: &str,
        described: &str,
    ) -> Result<HashMap<String, u64>, Error> {
        let context = CallContext {
            operation: "list runner groups",
            scope: described,
        };
        let mut groups = HashMap::new();
        for page in 1..=MAX_GROUP_PAGES {
            let mut url = self.api_url(
                &installation.host,
                &format!("/orgs/{org}/actions/runner-groups"),
            )?;
            url.query_pairs_mut()
                .append_pair("per_page", &GROUPS_PER_PAGE.to_string())
                .append_pair("page", &page.to_string());
            let response = self
                .send(context, Method::GET, url, installation, None)
                .await?;
            if response.status != StatusCode::OK {
                return Err(response.into_error(context));
            }
            let body: RunnerGroupsPage = response.json(context)?;
            let received = body.runner_groups.len();
            groups.extend(
                body.runner_groups
                    .into_iter()
                    .map(|group| (group.name, group.id)),
            );
            if received < GROUPS_PER_PAGE || groups.len() >= body.total_count {
                break;
            }
        }
        tracing::debug!(
            scope = described,
            groups = groups.len(),
            "listed runner groups"
        );
        Ok(groups)
    }
}

/// Finds `name` in `groups`, exactly or else ignoring ASCII case.
fn find_group(groups: &HashMap<String, u64>, name: &str) -> Option<u64> {
    groups.get(name).copied().or_else(|| {
        groups
            .iter()
            .find(|(group, _)| group.eq_ignore_ascii_case(name))
            .map(|(_, &id)| id)
    })
}
