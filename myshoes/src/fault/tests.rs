use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

use super::*;
use crate::credentials::CredentialRequest;
use crate::datastore::conformance::sample_job;
use crate::datastore::{Datastore, MemoryDatastore};
use crate::github::{Error as GitHubError, GitHubApi, GitHubRunner, Installation};
use crate::job_status::WorkflowJobStatus;
use crate::model::{GitHubHost, RepositoryName, ResourceType, Scope, Target, TargetId};
use crate::secret::Secret;
use crate::setup_script::{RunnerCredential, SetupScriptParams};
use crate::stadium::{AddInstanceRequest, MemoryStadium, Stadium};

fn request(job_id: crate::model::JobId) -> AddInstanceRequest {
    AddInstanceRequest {
        runner_name: "myshoes-1-1".to_owned(),
        setup_script: SetupScriptParams::new(
            "https://github.com/octo-org",
            RunnerCredential::RegistrationToken(Secret::new("token")),
            "myshoes-1-1",
        )
        .build()
        .unwrap(),
        resource_type: ResourceType::Small,
        labels: vec!["linux".to_owned()],
        target_id: TargetId::new_random(),
        job_id,
        repository: "octo-org/hello-world".parse().unwrap(),
        profile: "linux".to_owned(),
        installation_id: None,
    }
}

#[tokio::test]
async fn rule_selects_call_number() {
    let plan =
        FaultPlan::new().with_rule(FaultRule::new(Op::ListJobs, Fault::Throttled).on_call(2));
    let store = FaultyDatastore::new(MemoryDatastore::new(), plan.clone());
    assert!(store.list_jobs().await.is_ok());
    let error = store.list_jobs().await.unwrap_err();
    assert!(error.is_retryable(), "{error}");
    assert!(store.list_jobs().await.is_ok());
    assert!(store.list_targets().await.is_ok(), "other methods pass");
    assert_eq!(plan.calls(Op::ListJobs), 3);
    let injected = plan.injected();
    assert_eq!(injected.len(), 1);
    assert_eq!(injected[0].call.call, 2);
    assert_eq!(injected[0].fault, Fault::Throttled);
}

#[tokio::test]
async fn datastore_faults_map_to_errors() {
    let target = Target::new(
        "octo-org".parse().unwrap(),
        GitHubHost::github_com(),
        ResourceType::Small,
    );
    for fault in Fault::ALL {
        if fault == Fault::Crash {
            continue;
        }
        let inner = MemoryDatastore::new();
        let plan = FaultPlan::new().with_rule(FaultRule::new(Op::EnqueueJob, fault));
        let store = FaultyDatastore::new(inner.clone(), plan);
        let job = sample_job(target.id);
        let error = store.enqueue_job(&job).await.unwrap_err();
        let stored = inner.list_jobs().await.unwrap().len();
        match fault {
            Fault::PermanentError => assert!(error.is_not_found(), "{error}"),
            Fault::Capacity => assert!(
                matches!(error, crate::datastore::Error::Conflict { .. }),
                "{error}"
            ),
            _ => assert!(error.is_retryable(), "{fault}: {error}"),
        }
        let expected = usize::from(fault == Fault::LostResponse);
        assert_eq!(
            stored, expected,
            "{fault}: the inner call runs only for a lost response"
        );
    }
}

#[tokio::test]
async fn stadium_faults_map_to_errors() {
    let job_id = sample_job(TargetId::new_random()).id;
    for fault in Fault::ALL {
        if fault == Fault::Crash {
            continue;
        }
        let inner = MemoryStadium::new();
        let plan = FaultPlan::new().with_rule(
            FaultRule::new(Op::AddInstance, fault).when(move |call| call.job_id == Some(job_id)),
        );
        let stadium = FaultyStadium::new(inner.clone(), plan);
        let error = stadium.add_instance(&request(job_id)).await.unwrap_err();
        assert_eq!(
            error.is_retryable(),
            fault != Fault::PermanentError,
            "{fault}: {error}"
        );
        assert_eq!(
            inner.running().len(),
            usize::from(fault == Fault::LostResponse),
            "{fault}"
        );
    }
}

#[tokio::test]
async fn crash_runs_call_then_unwinds() {
    let inner = MemoryStadium::new();
    let plan = FaultPlan::new().with_rule(FaultRule::new(Op::AddInstance, Fault::Crash));
    let stadium = Arc::new(FaultyStadium::new(inner.clone(), plan));
    let job_id = sample_job(TargetId::new_random()).id;
    let task = tokio::spawn(async move { stadium.add_instance(&request(job_id)).await });
    let error = task.await.unwrap_err();
    let payload = error.into_panic();
    let crash = InjectedCrash::from_panic(payload.as_ref()).expect("an injected crash");
    assert_eq!(crash.op, Op::AddInstance);
    assert_eq!(
        inner.running().len(),
        1,
        "the call took effect before the crash"
    );
}

/// A GitHub API that counts its calls and succeeds.
#[derive(Debug, Default)]
struct CountingGitHub {
    calls: AtomicUsize,
}

#[async_trait]
impl GitHubApi for CountingGitHub {
    async fn job_status(
        &self,
        _installation: &Installation,
        _repository: &RepositoryName,
        _job_id: u64,
    ) -> Result<WorkflowJobStatus, GitHubError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(WorkflowJobStatus::Queued)
    }

    async fn create_runner_credential(
        &self,
        _request: &CredentialRequest<'_>,
    ) -> Result<RunnerCredential, GitHubError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(RunnerCredential::JitConfig(Secret::new("jit")))
    }

    async fn list_runners(
        &self,
        _installation: &Installation,
        _scope: &Scope,
    ) -> Result<Vec<GitHubRunner>, GitHubError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(Vec::new())
    }

    async fn get_runner(
        &self,
        _installation: &Installation,
        _scope: &Scope,
        _runner_id: u64,
    ) -> Result<Option<GitHubRunner>, GitHubError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(None)
    }

    async fn delete_runner(
        &self,
        _installation: &Installation,
        _scope: &Scope,
        _runner_id: u64,
    ) -> Result<(), GitHubError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[tokio::test]
async fn github_faults_follow_retryability() {
    let installation = Installation::new(GitHubHost::github_com(), 1);
    let scope: Scope = "octo-org".parse().unwrap();
    for fault in Fault::ALL {
        if fault == Fault::Crash {
            continue;
        }
        let plan = FaultPlan::new().with_rule(FaultRule::new(Op::GitHubDeleteRunner, fault));
        let github = FaultyGitHub::new(CountingGitHub::default(), plan);
        let error = github
            .delete_runner(&installation, &scope, 7)
            .await
            .unwrap_err();
        assert_eq!(
            error.is_retryable(),
            fault != Fault::PermanentError,
            "{fault}: {error}"
        );
        assert!(github.list_runners(&installation, &scope).await.is_ok());
        let calls = github.inner().calls.load(Ordering::Relaxed);
        assert_eq!(
            calls,
            1 + usize::from(fault == Fault::LostResponse),
            "{fault}"
        );
    }
}
