//! A scan of repository targets for jobs that have waited in `queued` without a webhook.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde::Deserialize;

use super::http::CallContext;
use super::{Error, GitHubAppClient, Installation};
use crate::datastore::{Datastore, Error as DatastoreError};
use crate::model::{GitHubHost, Job, JobId, RepositoryName, Scope, Target};
use crate::profile::Profiles;
use crate::ErrorChain;

/// Runs and jobs requested per page, GitHub's maximum.
const PER_PAGE: usize = 100;

#[derive(Deserialize)]
struct RunsPage {
    workflow_runs: Vec<RunEntry>,
}

#[derive(Deserialize)]
struct RunEntry {
    id: u64,
}

#[derive(Deserialize)]
struct JobsPage {
    jobs: Vec<QueuedJobEntry>,
}

#[derive(Deserialize)]
struct QueuedJobEntry {
    id: u64,
    run_id: u64,
    #[serde(default)]
    run_attempt: Option<u32>,
    status: String,
    #[serde(default)]
    labels: Vec<String>,
    created_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct InstallationBody {
    id: u64,
}

/// Counts of one [`QueuedJobScan::run`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct QueuedScanReport {
    /// Repository targets scanned.
    pub repositories: usize,
    /// Workflow runs found `queued` or `in_progress`.
    pub queued_runs: usize,
    /// Stale queued jobs skipped because the Datastore keeps them as dead letters.
    pub dead_lettered: usize,
    /// Jobs in `queued` older than the threshold whose labels a profile accepts.
    pub stale_jobs: usize,
    /// Of those, jobs the Datastore did not have, now enqueued.
    pub enqueued: usize,
    /// Of those, jobs the Datastore had already (a duplicate enqueue).
    pub already_known: usize,
    /// GitHub requests sent.
    pub requests: usize,
    /// Failures, one line each with the repository; the scan went on with the next one.
    pub errors: Vec<String>,
}

/// Finds jobs that stay `queued` on GitHub although no webhook brought them, and enqueues
/// them: the second net behind [`RescuePass`](super::RescuePass), for deliveries GitHub
/// never recorded as failed.
///
/// For each active repository target it reads the App's installation on the repository
/// once (cached), the first 100 `queued` and the first 100 `in_progress` workflow runs (a
/// run with some jobs started is `in_progress` and may still hold queued jobs), and the
/// latest attempt's jobs of each run. A job in `queued` for longer than the threshold,
/// whose labels a runner profile accepts, is enqueued like a webhook would enqueue it,
/// unless the Datastore keeps it as a dead letter. The Datastore's deduplication makes a
/// job that was received already a no-op, and the dispatcher's launch claim and
/// still-queued check stop a second runner.
///
/// GitHub request cost per pass and repository: two `GET /repos/{owner}/{repo}/actions/runs`
/// plus one `GET .../runs/{run_id}/jobs` per run found, and once per repository
/// `GET /repos/{owner}/{repo}/installation` with the App JWT. Organization targets are not
/// scanned, because GitHub lists runs per repository.
#[derive(Debug)]
pub struct QueuedJobScan {
    threshold: Duration,
    installations: tokio::sync::Mutex<HashMap<(String, String), u64>>,
}

impl QueuedJobScan {
    /// Creates a scan that picks up jobs queued for longer than `threshold`. Keep it above
    /// the usual webhook-to-launch time (a few minutes), so the scan does not race
    /// webhooks that are on their way.
    pub fn new(threshold: Duration) -> Self {
        Self {
            threshold,
            installations: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Runs one pass over `targets` and enqueues what it finds into `datastore`.
    pub async fn run(
        &self,
        client: &GitHubAppClient,
        datastore: &dyn Datastore,
        targets: &[Target],
        profiles: &Profiles,
    ) -> QueuedScanReport {
        let mut report = QueuedScanReport::default();
        for target in targets {
            if !target.can_receive_jobs() {
                continue;
            }
            let Scope::Repository(repository) = &target.scope else {
                continue;
            };
            report.repositories += 1;
            if let Err(error) = self
                .scan_repository(client, datastore, target, repository, profiles, &mut report)
                .await
            {
                tracing::warn!(
                    target_id = %target.id,
                    repository = %repository,
                    error = %error,
                    "queued-job scan of a repository failed; the next pass tries again"
                );
                report.errors.push(format!("{repository}: {error}"));
            }
        }
        metrics::counter!("myshoes_queued_scan_enqueued_total").increment(report.enqueued as u64);
        tracing::info!(
            repositories = report.repositories,
            queued_runs = report.queued_runs,
            stale_jobs = report.stale_jobs,
            enqueued = report.enqueued,
            already_known = report.already_known,
            requests = report.requests,
            errors = report.errors.len(),
            "queued-job scan finished"
        );
        report
    }

    async fn scan_repository(
        &self,
        client: &GitHubAppClient,
        datastore: &dyn Datastore,
        target: &Target,
        repository: &RepositoryName,
        profiles: &Profiles,
        report: &mut QueuedScanReport,
    ) -> Result<(), String> {
        let installation = self
            .installation(client, &target.host, repository, report)
            .await
            .map_err(|error| ErrorChain(&error).to_string())?;
        let described = format!("{repository} on {}", target.host);
        // A run with some jobs started is in_progress, and may still hold queued jobs.
        let mut runs = Vec::new();
        for status in ["queued", "in_progress"] {
            let found = client
                .runs_with_status(&installation, repository, status, &described)
                .await
                .map_err(|error| ErrorChain(&error).to_string())?;
            report.requests += 1;
            runs.extend(found);
        }
        report.queued_runs += runs.len();
        let dead_letters: HashSet<JobId> = match datastore.list_dead_letters().await {
            Ok(letters) => letters.into_iter().map(|letter| letter.job.id).collect(),
            Err(_) => HashSet::new(),
        };
        let now = Utc::now();
        for run in runs {
            let jobs = client
                .run_jobs(&installation, repository, run.id, &described)
                .await
                .map_err(|error| ErrorChain(&error).to_string())?;
            report.requests += 1;
            for entry in jobs {
                let age = (now - entry.created_at).to_std().unwrap_or_default();
                if entry.status != "queued" || age < self.threshold {
                    continue;
                }
                if profiles.choose(&entry.labels).is_none() {
                    continue;
                }
                let run_attempt = entry.run_attempt.unwrap_or(1);
                if dead_letters.contains(&JobId::for_workflow_job(
                    &target.host,
                    entry.id,
                    run_attempt,
                )) {
                    // Enqueuing it again would repeat the failure that dead-lettered it.
                    report.dead_lettered += 1;
                    continue;
                }
                report.stale_jobs += 1;
                let job = Job {
                    id: JobId::for_workflow_job(&target.host, entry.id, run_attempt),
                    delivery_id: None,
                    workflow_job_id: entry.id,
                    run_id: entry.run_id,
                    run_attempt,
                    repository: repository.clone(),
                    installation_id: Some(installation.id),
                    labels: entry.labels,
                    host: target.host.clone(),
                    target_id: target.id,
                    received_at: now,
                    attempt: 0,
                };
                match datastore.enqueue_job(&job).await {
                    Ok(()) => {
                        tracing::info!(
                            job_id = %job.id,
                            workflow_job_id = job.workflow_job_id,
                            repository = %repository,
                            "queued job without a webhook enqueued"
                        );
                        report.enqueued += 1;
                    }
                    Err(DatastoreError::AlreadyExists { .. }) => report.already_known += 1,
                    Err(error) => {
                        return Err(format!(
                            "failed to enqueue job {}: {}",
                            job.id,
                            ErrorChain(&error)
                        ))
                    }
                }
            }
        }
        Ok(())
    }

    async fn installation(
        &self,
        client: &GitHubAppClient,
        host: &GitHubHost,
        repository: &RepositoryName,
        report: &mut QueuedScanReport,
    ) -> Result<Installation, Error> {
        let key = (host.web_url().to_owned(), repository.to_string());
        let mut cache = self.installations.lock().await;
        if let Some(id) = cache.get(&key) {
            return Ok(Installation::new(host.clone(), *id));
        }
        let id = client.repository_installation(host, repository).await?;
        report.requests += 1;
        cache.insert(key, id);
        Ok(Installation::new(host.clone(), id))
    }
}

impl GitHubAppClient {
    /// Returns the id of the App's installation on `repository`
    /// (`GET /repos/{owner}/{repo}/installation`, authenticated with the App JWT).
    pub async fn repository_installation(
        &self,
        host: &GitHubHost,
        repository: &RepositoryName,
    ) -> Result<u64, Error> {
        let described = format!("{repository} on {host}");
        let context = CallContext {
            operation: "get repository installation",
            scope: &described,
        };
        let url = self.api_url(host, &format!("/repos/{repository}/installation"))?;
        let response = self.send_as_app(context, Method::GET, url, None).await?;
        if response.status != StatusCode::OK {
            return Err(response.into_error(context));
        }
        let body: InstallationBody = response.json(context)?;
        Ok(body.id)
    }

    async fn runs_with_status(
        &self,
        installation: &Installation,
        repository: &RepositoryName,
        status: &str,
        described: &str,
    ) -> Result<Vec<RunEntry>, Error> {
        let context = CallContext {
            operation: "list workflow runs",
            scope: described,
        };
        let mut url = self.api_url(
            &installation.host,
            &format!("/repos/{repository}/actions/runs"),
        )?;
        url.query_pairs_mut()
            .append_pair("status", status)
            .append_pair("per_page", &PER_PAGE.to_string());
        let response = self
            .send(context, Method::GET, url, installation, None)
            .await?;
        if response.status != StatusCode::OK {
            return Err(response.into_error(context));
        }
        let page: RunsPage = response.json(context)?;
        Ok(page.workflow_runs)
    }

    async fn run_jobs(
        &self,
        installation: &Installation,
        repository: &RepositoryName,
        run_id: u64,
        described: &str,
    ) -> Result<Vec<QueuedJobEntry>, Error> {
        let context = CallContext {
            operation: "list workflow run jobs",
            scope: described,
        };
        let mut url = self.api_url(
            &installation.host,
            &format!("/repos/{repository}/actions/runs/{run_id}/jobs"),
        )?;
        url.query_pairs_mut()
            .append_pair("filter", "latest")
            .append_pair("per_page", &PER_PAGE.to_string());
        let response = self
            .send(context, Method::GET, url, installation, None)
            .await?;
        if response.status != StatusCode::OK {
            return Err(response.into_error(context));
        }
        let page: JobsPage = response.json(context)?;
        Ok(page.jobs)
    }
}
