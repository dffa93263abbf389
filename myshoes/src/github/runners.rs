//! Runner listing and deletion, and workflow job status.

use reqwest::{Method, StatusCode};
use serde::Deserialize;

use super::credential::{describe_scope, scope_path};
use super::http::CallContext;
use super::{Error, GitHubAppClient, GitHubRunner, Installation};
use crate::job_status::{WorkflowJobState, WorkflowJobStatus};
use crate::model::{RepositoryName, Scope};

/// Runners requested per page, GitHub's maximum.
const RUNNERS_PER_PAGE: usize = 100;
/// Pages read at most when listing runners: 100,000 runners.
const MAX_RUNNER_PAGES: u32 = 1000;

#[derive(Deserialize)]
struct RunnersPage {
    #[serde(default)]
    total_count: usize,
    runners: Vec<GitHubRunner>,
}

#[derive(Deserialize)]
struct JobBody {
    status: String,
    #[serde(default)]
    runner_name: Option<String>,
}

impl GitHubAppClient {
    /// Lists every self-hosted runner of `scope`, reading pages of 100 until a short page
    /// or `total_count`.
    pub async fn list_runners(
        &self,
        installation: &Installation,
        scope: &Scope,
    ) -> Result<Vec<GitHubRunner>, Error> {
        let described = describe_scope(scope, &installation.host);
        let mut runners = Vec::new();
        for page in 1..=MAX_RUNNER_PAGES {
            let body = self
                .runners_page(installation, scope, &described, None, page)
                .await?;
            let received = body.runners.len();
            runners.extend(body.runners);
            if received < RUNNERS_PER_PAGE || runners.len() >= body.total_count {
                break;
            }
        }
        tracing::debug!(scope = %described, runners = runners.len(), "listed runners");
        Ok(runners)
    }

    async fn runners_page(
        &self,
        installation: &Installation,
        scope: &Scope,
        described: &str,
        name: Option<&str>,
        page: u32,
    ) -> Result<RunnersPage, Error> {
        let context = CallContext {
            operation: "list runners",
            scope: described,
        };
        let mut url = self.api_url(
            &installation.host,
            &format!("{}/actions/runners", scope_path(scope)),
        )?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(name) = name {
                query.append_pair("name", name);
            }
            query
                .append_pair("per_page", &RUNNERS_PER_PAGE.to_string())
                .append_pair("page", &page.to_string());
        }
        let response = self
            .send(context, Method::GET, url, installation, None)
            .await?;
        if response.status != StatusCode::OK {
            return Err(response.into_error(context));
        }
        response.json(context)
    }

    /// Returns runner `runner_id` of `scope`, or `None` on 404.
    pub async fn get_runner(
        &self,
        installation: &Installation,
        scope: &Scope,
        runner_id: u64,
    ) -> Result<Option<GitHubRunner>, Error> {
        let described = describe_scope(scope, &installation.host);
        let context = CallContext {
            operation: "get runner",
            scope: &described,
        };
        let url = self.api_url(
            &installation.host,
            &format!("{}/actions/runners/{runner_id}", scope_path(scope)),
        )?;
        let response = self
            .send(context, Method::GET, url, installation, None)
            .await?;
        match response.status {
            StatusCode::OK => response.json(context).map(Some),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(response.into_error(context)),
        }
    }

    /// Deletes runner `runner_id` from `scope`. GitHub responds 204, and a 404 means the
    /// runner is gone already and counts as deleted.
    pub async fn delete_runner(
        &self,
        installation: &Installation,
        scope: &Scope,
        runner_id: u64,
    ) -> Result<(), Error> {
        let described = describe_scope(scope, &installation.host);
        let context = CallContext {
            operation: "delete runner",
            scope: &described,
        };
        let url = self.api_url(
            &installation.host,
            &format!("{}/actions/runners/{runner_id}", scope_path(scope)),
        )?;
        let response = self
            .send(context, Method::DELETE, url, installation, None)
            .await?;
        match response.status {
            StatusCode::NO_CONTENT | StatusCode::OK => {
                tracing::info!(scope = %described, runner_id, "deleted runner");
                Ok(())
            }
            StatusCode::NOT_FOUND => {
                tracing::debug!(scope = %described, runner_id, "runner to delete was gone already");
                Ok(())
            }
            _ => Err(response.into_error(context)),
        }
    }

    /// Returns the runner of `scope` named exactly `name`, found with GitHub's `name`
    /// filter, or `None`.
    pub async fn find_runner_by_name(
        &self,
        installation: &Installation,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<GitHubRunner>, Error> {
        let described = describe_scope(scope, &installation.host);
        let page = self
            .runners_page(installation, scope, &described, Some(name), 1)
            .await?;
        Ok(page.runners.into_iter().find(|runner| runner.name == name))
    }

    /// Deletes every runner of `scope` named `name`, found with the `name` filter.
    pub(super) async fn delete_runners_named(
        &self,
        installation: &Installation,
        scope: &Scope,
        name: &str,
    ) -> Result<(), Error> {
        let described = describe_scope(scope, &installation.host);
        let page = self
            .runners_page(installation, scope, &described, Some(name), 1)
            .await?;
        let matching: Vec<u64> = page
            .runners
            .iter()
            .filter(|runner| runner.name.eq_ignore_ascii_case(name))
            .map(|runner| runner.id)
            .collect();
        if matching.is_empty() {
            tracing::debug!(scope = %described, runner_name = name, "no runner with the conflicting name was found");
        }
        for runner_id in matching {
            self.delete_runner(installation, scope, runner_id).await?;
        }
        Ok(())
    }

    /// Returns the status of workflow job `job_id` in `repository`.
    pub async fn job_status(
        &self,
        installation: &Installation,
        repository: &RepositoryName,
        job_id: u64,
    ) -> Result<WorkflowJobStatus, Error> {
        let state = self.job_state(installation, repository, job_id).await?;
        Ok(state.status)
    }

    /// Returns the status of workflow job `job_id` in `repository` and the name of the
    /// runner that took it.
    pub async fn job_state(
        &self,
        installation: &Installation,
        repository: &RepositoryName,
        job_id: u64,
    ) -> Result<WorkflowJobState, Error> {
        let described = format!(
            "job {job_id} of repository {repository} on {}",
            installation.host
        );
        let context = CallContext {
            operation: "get workflow job",
            scope: &described,
        };
        let url = self.api_url(
            &installation.host,
            &format!(
                "/repos/{}/{}/actions/jobs/{job_id}",
                repository.owner(),
                repository.repo()
            ),
        )?;
        let response = self
            .send(context, Method::GET, url, installation, None)
            .await?;
        if response.status != StatusCode::OK {
            return Err(response.into_error(context));
        }
        let body: JobBody = response.json(context)?;
        Ok(WorkflowJobState {
            status: WorkflowJobStatus::from_name(&body.status),
            runner_name: body.runner_name.filter(|name| !name.is_empty()),
        })
    }
}
