//! An in-process GitHub and the backends the dispatch benchmarks run on.

// Each including crate uses a different part.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use myshoes::credentials::{CredentialError, CredentialRequest, RunnerCredentials};
use myshoes::datastore::{BoxError, Datastore, MemoryDatastore};
use myshoes::dispatcher::{Dispatcher, DispatcherConfig, Outcome};
use myshoes::job_status::{JobStatusSource, WorkflowJobState, WorkflowJobStatus};
use myshoes::model::{GitHubHost, Job, JobId, ResourceType, Target};
use myshoes::profile::{LabelMatchMode, Profiles, RunnerProfile};
use myshoes::secret::Secret;
use myshoes::setup_script::{RunnerCredential, RunnerSource};
use myshoes::stadium::MemoryStadium;

/// Stand-in for GitHub without a network: every job is still queued, and every runner
/// gets a fresh JIT config.
#[derive(Debug, Default)]
pub(crate) struct FakeGitHub;

#[async_trait]
impl RunnerCredentials for FakeGitHub {
    async fn runner_credential(
        &self,
        request: &CredentialRequest<'_>,
    ) -> Result<RunnerCredential, CredentialError> {
        Ok(RunnerCredential::JitConfig(Secret::new(format!(
            "jit-config-for-{}",
            request.runner_name
        ))))
    }
}

#[async_trait]
impl JobStatusSource for FakeGitHub {
    async fn workflow_job_state(&self, _job: &Job) -> Result<WorkflowJobState, BoxError> {
        Ok(WorkflowJobState {
            status: WorkflowJobStatus::Queued,
            runner_name: None,
        })
    }
}

/// The dispatcher over a `MemoryDatastore` (with `retention` for its windows), a
/// `MemoryStadium` without a call log and the fake GitHub.
pub(crate) struct Bench {
    pub(crate) datastore: Arc<MemoryDatastore>,
    pub(crate) stadium: Arc<MemoryStadium>,
    pub(crate) dispatcher: Dispatcher,
    pub(crate) target: Target,
    next_job: AtomicU64,
}

impl Bench {
    pub(crate) async fn new(retention: Duration) -> Self {
        let datastore = Arc::new(
            MemoryDatastore::builder()
                .with_dedup_window(retention)
                .with_claim_retention(retention)
                .with_deleted_runner_retention(retention)
                .build(),
        );
        let stadium = Arc::new(MemoryStadium::without_call_log());
        let target = Target::new(
            "octo-org".parse().unwrap(),
            GitHubHost::github_com(),
            ResourceType::Small,
        );
        datastore.create_target(&target).await.unwrap();
        let profiles = Profiles::new(
            vec![RunnerProfile::new("linux", ["linux"]).with_max_runners(1_000_000)],
            LabelMatchMode::Subset,
        )
        .unwrap();
        let mut config = DispatcherConfig::default();
        config.runner_source = RunnerSource::PreInstalled {
            path: "/opt/actions-runner".into(),
            copy: false,
        };
        config.max_runners_per_target = Some(1_000_000);
        let github = Arc::new(FakeGitHub);
        let dispatcher = Dispatcher::new(
            datastore.clone(),
            stadium.clone(),
            github.clone(),
            profiles,
            config,
        )
        .unwrap()
        .with_job_status_source(github);
        Self {
            datastore,
            stadium,
            dispatcher,
            target,
            next_job: AtomicU64::new(1),
        }
    }

    /// Enqueues `count` jobs as the webhook receiver would.
    pub(crate) async fn enqueue(&self, count: usize) {
        let host = GitHubHost::github_com();
        for _ in 0..count {
            let workflow_job_id = 40_000_000_000 + self.next_job.fetch_add(1, Ordering::Relaxed);
            let job = Job {
                id: JobId::for_workflow_job(&host, workflow_job_id, 1),
                delivery_id: None,
                workflow_job_id,
                run_id: workflow_job_id / 3,
                run_attempt: 1,
                repository: "octo-org/hello-world".parse().unwrap(),
                installation_id: Some(4242),
                labels: vec!["self-hosted".to_owned(), "linux".to_owned()],
                host: host.clone(),
                target_id: self.target.id,
                received_at: chrono::Utc::now(),
                attempt: 0,
            };
            self.datastore.enqueue_job(&job).await.unwrap();
        }
    }

    /// Receives and dispatches every queued job, and returns how many launched.
    pub(crate) async fn dispatch_all(&self) -> usize {
        let mut launched = 0;
        loop {
            let received = self
                .datastore
                .receive_jobs(100, Duration::ZERO)
                .await
                .unwrap();
            if received.is_empty() {
                return launched;
            }
            for job in received {
                if let Outcome::Launched { .. } = self.dispatcher.process(job).await {
                    launched += 1;
                }
            }
        }
    }
}
