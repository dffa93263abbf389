//! A test suite that checks a [`Datastore`] against the trait's contract.
//!
//! Each public `async fn` checks one sentence of the contract and panics with a message
//! naming it when the backend breaks it. [`datastore_conformance!`](crate::datastore_conformance)
//! expands every case into its own `#[tokio::test]`, so a report names the failing case:
//!
//! ```
//! use std::time::Duration;
//! use myshoes::datastore::MemoryDatastore;
//! use myshoes::datastore::conformance::Capabilities;
//!
//! // The capabilities must state the store's real visibility timeout.
//! myshoes::datastore_conformance!(
//!     async {
//!         Some(MemoryDatastore::builder().with_visibility_timeout(Duration::from_millis(500)).build())
//!     },
//!     Capabilities::all()
//! );
//! # fn main() {}
//! ```
//!
//! The setup expression is awaited once per case and returns `Option<D>` for a
//! `D: Datastore`; `None` skips the case, and the setup should print why. Every case needs a
//! job queue of its own (a fresh store, or a fresh queue per setup call), because job cases
//! receive whatever is queued. Target, runner and lock cases use random ids and scopes, so
//! they can share a backend. The test crate needs `tokio` with the `macros` and `rt`
//! features.
//!
//! This module is not covered by semantic versioning: cases are added as the contract grows.

use std::time::Duration;

use chrono::Utc;
use uuid::Uuid;

use super::{Datastore, DatastoreExt, Error, Result};
use crate::model::{
    GitHubHost, Job, JobId, RepositoryName, ResourceType, Runner, RunnerId, RunnerStatus, Scope,
    Target, TargetId, TargetStatus,
};

/// Features of the backend under test. An unsupported area is still called, and the case
/// checks that every call returns [`Error::NotSupported`].
#[derive(Debug, Clone)]
pub struct Capabilities {
    /// Targets are stored.
    pub targets: bool,
    /// Jobs are queued.
    pub jobs: bool,
    /// [`Datastore::list_jobs`] works.
    pub list_jobs: bool,
    /// Enqueueing a job id that is already queued never makes it receivable twice. When
    /// false, as on a standard SQS queue, both copies may be received.
    pub deduplicates_jobs: bool,
    /// Enqueueing a job id that is already queued fails with [`Error::AlreadyExists`]
    /// (otherwise the duplicate must be dropped silently).
    pub rejects_duplicate_jobs: bool,
    /// A handle from an earlier receive fails with [`Error::Conflict`] (otherwise it must
    /// be a no-op).
    pub detects_stale_ack: bool,
    /// The backend's visibility timeout for received jobs.
    pub visibility_timeout: Duration,
    /// How long the backend remembers an enqueued job id after the job was deleted, or
    /// `None` when it forgets it at deletion.
    pub dedup_window: Option<Duration>,
    /// Runner records are stored.
    pub runners: bool,
    /// Locks work.
    pub locks: bool,
    /// Launch claims work.
    pub launch_claims: bool,
    /// [`Datastore::dead_letter_job`] works.
    pub dead_letters: bool,
    /// [`Datastore::list_dead_letters`] works.
    pub list_dead_letters: bool,
    /// Slot pools ([`Datastore::acquire_slot`] and friends) work.
    pub slots: bool,
    /// [`Datastore::defer_job`] returns a job without counting the receive as an attempt.
    pub defer_keeps_attempt: bool,
}

impl Capabilities {
    /// Everything supported, with a visibility timeout of 500 ms and a deduplication window
    /// of a minute or more; fits a `MemoryDatastore` built with that timeout.
    pub fn all() -> Self {
        Self {
            targets: true,
            jobs: true,
            list_jobs: true,
            deduplicates_jobs: true,
            rejects_duplicate_jobs: true,
            detects_stale_ack: true,
            visibility_timeout: Duration::from_millis(500),
            dedup_window: Some(Duration::from_secs(60)),
            runners: true,
            locks: true,
            launch_claims: true,
            dead_letters: true,
            list_dead_letters: true,
            slots: true,
            defer_keeps_attempt: true,
        }
    }
}

fn unique(prefix: &str) -> String {
    let id = Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..12])
}

/// Returns an `active` organization target with a random owner name.
pub fn sample_target() -> Target {
    let scope: Scope = unique("conf-org")
        .parse()
        .expect("generated scope is valid");
    Target::new(scope, GitHubHost::github_com(), ResourceType::Small)
}

/// Returns a job for `target_id` with a random workflow job id.
pub fn sample_job(target_id: TargetId) -> Job {
    let workflow_job_id = u64::from(Uuid::new_v4().as_fields().0) + (1 << 33);
    let host = GitHubHost::github_com();
    Job {
        id: JobId::for_workflow_job(&host, workflow_job_id, 1),
        delivery_id: Some(Uuid::new_v4().to_string()),
        workflow_job_id,
        run_id: workflow_job_id / 2,
        run_attempt: 1,
        repository: "conf-org/conf-repo".parse().expect("static name is valid"),
        installation_id: Some(42),
        labels: vec!["self-hosted".to_owned(), "linux".to_owned()],
        host,
        target_id,
        received_at: Utc::now(),
        attempt: 0,
    }
}

/// Returns a running runner record for `target_id`.
pub fn sample_runner(target_id: TargetId) -> Runner {
    let job = sample_job(target_id);
    Runner {
        id: RunnerId::new_random(),
        name: format!("myshoes-{}-1", job.workflow_job_id),
        target_id,
        job_id: job.id,
        repository: job.repository.clone(),
        workflow_job_id: job.workflow_job_id,
        cloud_id: unique("cloud"),
        stadium: "conformance".to_owned(),
        resource_type: ResourceType::Small,
        profile: "conformance".to_owned(),
        labels: vec!["self-hosted".to_owned(), "linux".to_owned()],
        installation_id: Some(42),
        github_runner_id: None,
        status: RunnerStatus::Running,
        deletion_reason: None,
        created_at: Utc::now(),
        deleted_at: None,
    }
}

#[track_caller]
fn expect_not_supported<T: std::fmt::Debug>(result: Result<T>, operation: &str) {
    match result {
        Err(Error::NotSupported { .. }) => {}
        other => {
            panic!("{operation} on an unsupported area must return NotSupported, got {other:?}")
        }
    }
}

#[track_caller]
fn expect_not_found<T: std::fmt::Debug>(result: Result<T>, what: &str) {
    match result {
        Err(Error::NotFound { .. }) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

#[track_caller]
fn expect_conflict<T: std::fmt::Debug>(result: Result<T>, what: &str) {
    match result {
        Err(Error::Conflict { .. }) => {}
        other => panic!("{what}: expected Conflict, got {other:?}"),
    }
}

#[track_caller]
fn expect_already_exists<T: std::fmt::Debug>(result: Result<T>, what: &str) {
    match result {
        Err(Error::AlreadyExists { .. }) => {}
        other => panic!("{what}: expected AlreadyExists, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Targets

/// A created target is returned by `get_target` unchanged.
pub async fn target_create_then_get(store: &dyn Datastore, caps: &Capabilities) {
    let target = sample_target();
    if !caps.targets {
        expect_not_supported(store.create_target(&target).await, "create_target");
        expect_not_supported(store.get_target(target.id).await, "get_target");
        expect_not_supported(store.list_targets().await, "list_targets");
        expect_not_supported(store.delete_target(target.id).await, "delete_target");
        return;
    }
    store.create_target(&target).await.expect("create_target");
    let fetched = store.get_target(target.id).await.expect("get_target");
    assert_eq!(
        fetched, target,
        "get_target must return the stored target unchanged"
    );
}

/// Creating a target with an existing id fails with `AlreadyExists`.
pub async fn target_create_rejects_duplicate_id(store: &dyn Datastore, caps: &Capabilities) {
    if !caps.targets {
        return expect_not_supported(store.create_target(&sample_target()).await, "create_target");
    }
    let target = sample_target();
    store.create_target(&target).await.expect("create_target");
    let mut same_id = sample_target();
    same_id.id = target.id;
    expect_already_exists(
        store.create_target(&same_id).await,
        "second target with the same id",
    );
}

/// Creating a second live target for the same host and scope, in any case, fails with
/// `AlreadyExists`.
pub async fn target_create_rejects_duplicate_scope(store: &dyn Datastore, caps: &Capabilities) {
    if !caps.targets {
        return expect_not_supported(store.create_target(&sample_target()).await, "create_target");
    }
    let target = sample_target();
    store.create_target(&target).await.expect("create_target");
    let upper: Scope = target
        .scope
        .to_string()
        .to_uppercase()
        .parse()
        .expect("valid scope");
    let duplicate = Target::new(upper, target.host.clone(), ResourceType::Large);
    expect_already_exists(
        store.create_target(&duplicate).await,
        "second live target with the same scope in other case",
    );
}

/// A deleted target does not block a new target with its scope.
pub async fn target_deleted_scope_is_reusable(store: &dyn Datastore, caps: &Capabilities) {
    if !caps.targets {
        return expect_not_supported(store.create_target(&sample_target()).await, "create_target");
    }
    let old = sample_target();
    store.create_target(&old).await.expect("create_target");
    store.delete_target(old.id).await.expect("delete_target");
    let new = Target::new(old.scope.clone(), old.host.clone(), ResourceType::Small);
    store
        .create_target(&new)
        .await
        .expect("a deleted target must not block a new one with its scope");
    let found = store
        .get_target_by_scope(&new.host, &new.scope)
        .await
        .expect("get_target_by_scope");
    assert_eq!(
        found.id, new.id,
        "get_target_by_scope must return the live target"
    );
}

/// `get_target` of an unknown id fails with `NotFound`.
pub async fn target_get_missing_is_not_found(store: &dyn Datastore, caps: &Capabilities) {
    let result = store.get_target(TargetId::new_random()).await;
    if !caps.targets {
        return expect_not_supported(result, "get_target");
    }
    expect_not_found(result, "get_target of an unknown id");
}

/// `get_target_by_scope` ignores ASCII case and never mixes repository and organization
/// scopes.
pub async fn target_get_by_scope_ignores_case(store: &dyn Datastore, caps: &Capabilities) {
    let target = sample_target();
    if !caps.targets {
        return expect_not_supported(
            store.get_target_by_scope(&target.host, &target.scope).await,
            "get_target_by_scope",
        );
    }
    store.create_target(&target).await.expect("create_target");
    let upper: Scope = target
        .scope
        .to_string()
        .to_uppercase()
        .parse()
        .expect("valid scope");
    let found = store
        .get_target_by_scope(&target.host, &upper)
        .await
        .expect("lookup in upper case");
    assert_eq!(found.id, target.id);

    let repository = Scope::Repository(
        RepositoryName::new(target.scope.owner(), "some-repo").expect("valid name"),
    );
    expect_not_found(
        store.get_target_by_scope(&target.host, &repository).await,
        "a repository scope must not match an organization target",
    );
    let other_host: GitHubHost = "ghes.example.com".parse().expect("valid host");
    expect_not_found(
        store.get_target_by_scope(&other_host, &target.scope).await,
        "a scope on another host must not match",
    );
}

/// `get_target_by_scope` does not return a deleted target.
pub async fn target_get_by_scope_skips_deleted(store: &dyn Datastore, caps: &Capabilities) {
    if !caps.targets {
        return expect_not_supported(
            store.delete_target(TargetId::new_random()).await,
            "delete_target",
        );
    }
    let target = sample_target();
    store.create_target(&target).await.expect("create_target");
    store.delete_target(target.id).await.expect("delete_target");
    expect_not_found(
        store.get_target_by_scope(&target.host, &target.scope).await,
        "get_target_by_scope of a deleted target",
    );
    let kept = store
        .get_target(target.id)
        .await
        .expect("get_target of a deleted target");
    assert_eq!(
        kept.status,
        TargetStatus::Deleted,
        "delete_target must keep the record as deleted"
    );
}

/// `list_targets` returns deleted targets too, ordered by creation time.
pub async fn target_list_includes_deleted_in_order(store: &dyn Datastore, caps: &Capabilities) {
    if !caps.targets {
        return expect_not_supported(store.list_targets().await, "list_targets");
    }
    let mut first = sample_target();
    first.created_at = Utc::now() - chrono::Duration::seconds(10);
    let second = sample_target();
    store.create_target(&second).await.expect("create_target");
    store.create_target(&first).await.expect("create_target");
    store.delete_target(first.id).await.expect("delete_target");
    let ids: Vec<TargetId> = store
        .list_targets()
        .await
        .expect("list_targets")
        .into_iter()
        .map(|target| target.id)
        .filter(|id| *id == first.id || *id == second.id)
        .collect();
    assert_eq!(
        ids,
        vec![first.id, second.id],
        "list_targets must include deleted targets, oldest first"
    );
}

/// Deleting a deleted target succeeds and changes nothing; an unknown id is `NotFound`.
pub async fn target_delete_is_idempotent(store: &dyn Datastore, caps: &Capabilities) {
    if !caps.targets {
        return expect_not_supported(
            store.delete_target(TargetId::new_random()).await,
            "delete_target",
        );
    }
    let target = sample_target();
    store.create_target(&target).await.expect("create_target");
    store
        .delete_target(target.id)
        .await
        .expect("first delete_target");
    let after_first = store.get_target(target.id).await.expect("get_target");
    store
        .delete_target(target.id)
        .await
        .expect("second delete_target must succeed");
    let after_second = store.get_target(target.id).await.expect("get_target");
    assert_eq!(
        after_first, after_second,
        "a second delete must change nothing"
    );
    expect_not_found(
        store.delete_target(TargetId::new_random()).await,
        "delete_target of an unknown id",
    );
}

/// `update_target_status` sets status, description and `updated_at`; an unknown id is
/// `NotFound`.
pub async fn target_update_status_sets_description(store: &dyn Datastore, caps: &Capabilities) {
    if !caps.targets {
        return expect_not_supported(
            store
                .update_target_status(TargetId::new_random(), TargetStatus::Error, None)
                .await,
            "update_target_status",
        );
    }
    let mut target = sample_target();
    target.updated_at = Utc::now() - chrono::Duration::seconds(60);
    store.create_target(&target).await.expect("create_target");
    store
        .update_target_status(target.id, TargetStatus::Error, Some("registration failed"))
        .await
        .expect("update_target_status");
    let updated = store.get_target(target.id).await.expect("get_target");
    assert_eq!(updated.status, TargetStatus::Error);
    assert_eq!(
        updated.status_description.as_deref(),
        Some("registration failed")
    );
    assert!(
        updated.updated_at > target.updated_at,
        "updated_at must move forward"
    );

    store
        .update_target_status(target.id, TargetStatus::Active, None)
        .await
        .expect("update_target_status");
    let cleared = store.get_target(target.id).await.expect("get_target");
    assert_eq!(
        cleared.status_description, None,
        "a None description must clear it"
    );
    expect_not_found(
        store
            .update_target_status(TargetId::new_random(), TargetStatus::Active, None)
            .await,
        "update_target_status of an unknown id",
    );
}

/// Restoring a deleted target while another live target has its scope is a `Conflict`.
pub async fn target_restore_conflicts_with_live_scope(store: &dyn Datastore, caps: &Capabilities) {
    if !caps.targets {
        return expect_not_supported(store.create_target(&sample_target()).await, "create_target");
    }
    let old = sample_target();
    store.create_target(&old).await.expect("create_target");
    store.delete_target(old.id).await.expect("delete_target");
    let new = Target::new(old.scope.clone(), old.host.clone(), ResourceType::Small);
    store.create_target(&new).await.expect("create_target");
    expect_conflict(
        store
            .update_target_status(old.id, TargetStatus::Active, None)
            .await,
        "restoring a deleted target whose scope is taken",
    );
    store.delete_target(new.id).await.expect("delete_target");
    store
        .update_target_status(old.id, TargetStatus::Active, None)
        .await
        .expect("restoring must succeed once the scope is free");
}

/// `update_target_resource_type` changes the resource type; an unknown id is `NotFound`.
pub async fn target_update_resource_type(store: &dyn Datastore, caps: &Capabilities) {
    if !caps.targets {
        return expect_not_supported(
            store
                .update_target_resource_type(TargetId::new_random(), ResourceType::Large)
                .await,
            "update_target_resource_type",
        );
    }
    let target = sample_target();
    store.create_target(&target).await.expect("create_target");
    store
        .update_target_resource_type(target.id, ResourceType::XLarge2)
        .await
        .expect("update_target_resource_type");
    let updated = store.get_target(target.id).await.expect("get_target");
    assert_eq!(updated.resource_type, ResourceType::XLarge2);
    expect_not_found(
        store
            .update_target_resource_type(TargetId::new_random(), ResourceType::Large)
            .await,
        "update_target_resource_type of an unknown id",
    );
}

/// The repository target wins over the organization target; a suspended or deleted
/// repository target falls back to the organization; suspended or deleted targets never
/// receive jobs.
pub async fn target_lookup_prefers_repository(store: &dyn Datastore, caps: &Capabilities) {
    let owner = unique("conf-owner");
    let repository = RepositoryName::new(&owner, "app").expect("valid name");
    let host = GitHubHost::github_com();
    if !caps.targets {
        return expect_not_supported(
            store.find_target_for_repository(&host, &repository).await,
            "find_target_for_repository",
        );
    }
    assert_eq!(
        store
            .find_target_for_repository(&host, &repository)
            .await
            .expect("lookup"),
        None,
        "no target yet"
    );

    let org = Target::new(
        Scope::Organization(owner.clone()),
        host.clone(),
        ResourceType::Small,
    );
    store.create_target(&org).await.expect("create org target");
    let repo = Target::new(
        Scope::Repository(repository.clone()),
        host.clone(),
        ResourceType::Large,
    );
    store
        .create_target(&repo)
        .await
        .expect("create repo target");

    let found = store
        .find_target_for_repository(&host, &repository)
        .await
        .expect("lookup");
    assert_eq!(
        found.map(|t| t.id),
        Some(repo.id),
        "the repository target must win"
    );

    store
        .update_target_status(repo.id, TargetStatus::Suspend, Some("paused"))
        .await
        .expect("suspend repo");
    let found = store
        .find_target_for_repository(&host, &repository)
        .await
        .expect("lookup");
    assert_eq!(
        found.map(|t| t.id),
        Some(org.id),
        "a suspended repository target falls back to the organization"
    );

    store
        .update_target_status(org.id, TargetStatus::Suspend, None)
        .await
        .expect("suspend org");
    assert_eq!(
        store
            .find_target_for_repository(&host, &repository)
            .await
            .expect("lookup"),
        None,
        "suspended targets never receive jobs"
    );

    store.delete_target(repo.id).await.expect("delete repo");
    store
        .update_target_status(org.id, TargetStatus::Running, None)
        .await
        .expect("resume org");
    let found = store
        .find_target_for_repository(&host, &repository)
        .await
        .expect("lookup");
    assert_eq!(
        found.map(|t| t.id),
        Some(org.id),
        "a deleted repository target falls back to the organization"
    );

    store.delete_target(org.id).await.expect("delete org");
    assert_eq!(
        store
            .find_target_for_repository(&host, &repository)
            .await
            .expect("lookup"),
        None,
        "deleted targets never receive jobs"
    );
}

// ---------------------------------------------------------------------------------------
// Jobs

/// An enqueued job is received once, unchanged, with a handle for it.
pub async fn job_enqueue_then_receive(store: &dyn Datastore, caps: &Capabilities) {
    let job = sample_job(TargetId::new_random());
    if !caps.jobs {
        expect_not_supported(store.enqueue_job(&job).await, "enqueue_job");
        expect_not_supported(store.receive_jobs(1, Duration::ZERO).await, "receive_jobs");
        return;
    }
    store.enqueue_job(&job).await.expect("enqueue_job");
    let received = store
        .receive_jobs(10, Duration::from_secs(5))
        .await
        .expect("receive_jobs");
    assert_eq!(
        received.len(),
        1,
        "exactly the one enqueued job must be received"
    );
    assert_eq!(
        received[0].job, job,
        "the received job must equal the enqueued one"
    );
    assert_eq!(
        received[0].ack.job_id(),
        job.id,
        "the handle must name the job"
    );
}

/// `receive_jobs` returns at most `max` jobs, and nothing for `max` zero.
pub async fn job_receive_respects_max(store: &dyn Datastore, caps: &Capabilities) {
    if !caps.jobs {
        return expect_not_supported(store.receive_jobs(1, Duration::ZERO).await, "receive_jobs");
    }
    let target_id = TargetId::new_random();
    for _ in 0..3 {
        store
            .enqueue_job(&sample_job(target_id))
            .await
            .expect("enqueue_job");
    }
    let none = store
        .receive_jobs(0, Duration::ZERO)
        .await
        .expect("receive_jobs(0)");
    assert!(none.is_empty(), "max 0 must return nothing");
    let mut total = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while total < 3 && tokio::time::Instant::now() < deadline {
        let batch = store
            .receive_jobs(2, Duration::from_secs(2))
            .await
            .expect("receive_jobs");
        assert!(batch.len() <= 2, "received {} jobs with max 2", batch.len());
        total += batch.len();
    }
    assert_eq!(total, 3, "all three jobs must be received across batches");
}

/// `receive_jobs` on an empty queue returns an empty list once `wait` passes.
pub async fn job_receive_empty_returns_after_wait(store: &dyn Datastore, caps: &Capabilities) {
    if !caps.jobs {
        return expect_not_supported(store.receive_jobs(1, Duration::ZERO).await, "receive_jobs");
    }
    let received = store
        .receive_jobs(5, Duration::from_millis(200))
        .await
        .expect("receive_jobs");
    assert!(received.is_empty(), "an empty queue must return no jobs");
}

/// A waiting `receive_jobs` returns a job enqueued while it waits, well before `wait` ends.
pub async fn job_receive_wakes_on_enqueue(store: &dyn Datastore, caps: &Capabilities) {
    if !caps.jobs {
        return expect_not_supported(store.receive_jobs(1, Duration::ZERO).await, "receive_jobs");
    }
    let job = sample_job(TargetId::new_random());
    let receive = store.receive_jobs(1, Duration::from_secs(20));
    let enqueue = async {
        tokio::task::yield_now().await;
        store.enqueue_job(&job).await.expect("enqueue_job");
    };
    let (received, ()) = tokio::join!(receive, enqueue);
    let received = received.expect("receive_jobs");
    assert_eq!(
        received.len(),
        1,
        "the waiting receive must return the new job"
    );
    assert_eq!(received[0].job.id, job.id);
}

/// A received job is invisible to other receivers until its visibility timeout.
pub async fn job_received_is_invisible(store: &dyn Datastore, caps: &Capabilities) {
    if !caps.jobs {
        return expect_not_supported(store.receive_jobs(1, Duration::ZERO).await, "receive_jobs");
    }
    store
        .enqueue_job(&sample_job(TargetId::new_random()))
        .await
        .expect("enqueue_job");
    let first = store
        .receive_jobs(1, Duration::from_secs(5))
        .await
        .expect("receive_jobs");
    assert_eq!(first.len(), 1);
    let second = store
        .receive_jobs(1, Duration::ZERO)
        .await
        .expect("receive_jobs");
    assert!(
        second.is_empty(),
        "a received job must be invisible to the next receive"
    );
}

/// Enqueueing the same job id twice never makes it receivable twice; a backend without
/// deduplication accepts both and delivers only copies of the job.
pub async fn job_duplicate_enqueue_received_once(store: &dyn Datastore, caps: &Capabilities) {
    let job = sample_job(TargetId::new_random());
    if !caps.jobs {
        return expect_not_supported(store.enqueue_job(&job).await, "enqueue_job");
    }
    store.enqueue_job(&job).await.expect("enqueue_job");
    if !caps.deduplicates_jobs {
        store
            .enqueue_job(&job)
            .await
            .expect("a backend without deduplication must accept the second enqueue");
        let mut received = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while received.len() < 2 && tokio::time::Instant::now() < deadline {
            let batch = store
                .receive_jobs(10, Duration::from_secs(1))
                .await
                .expect("receive_jobs");
            received.extend(batch);
        }
        assert_eq!(received.len(), 2, "both copies must be received");
        for copy in &received {
            assert_eq!(copy.job, job, "each copy must equal the enqueued job");
            store.delete_job(&copy.ack).await.expect("delete_job");
        }
        return;
    }
    let again = store.enqueue_job(&job).await;
    if caps.rejects_duplicate_jobs {
        expect_already_exists(again, "second enqueue of a queued job id");
    } else {
        again.expect("a backend that drops duplicates silently must return Ok");
    }
    let received = store
        .receive_jobs(10, Duration::from_secs(2))
        .await
        .expect("receive_jobs");
    assert_eq!(received.len(), 1, "the job must be received once");
    store
        .delete_job(&received[0].ack)
        .await
        .expect("delete_job");
    let more = store
        .receive_jobs(10, Duration::from_millis(500))
        .await
        .expect("receive_jobs");
    assert!(more.is_empty(), "no second copy may follow");
}

/// Enqueueing a deleted job's id again is dropped within the deduplication window, and
/// accepted without one.
pub async fn job_dedup_window_covers_deleted(store: &dyn Datastore, caps: &Capabilities) {
    let job = sample_job(TargetId::new_random());
    if !caps.jobs {
        return expect_not_supported(store.enqueue_job(&job).await, "enqueue_job");
    }
    store.enqueue_job(&job).await.expect("enqueue_job");
    let received = store
        .receive_jobs(1, Duration::from_secs(5))
        .await
        .expect("receive_jobs");
    assert_eq!(received.len(), 1);
    store
        .delete_job(&received[0].ack)
        .await
        .expect("delete_job");

    let again = store.enqueue_job(&job).await;
    let redelivered = match caps.dedup_window {
        Some(_) if caps.rejects_duplicate_jobs => {
            expect_already_exists(
                again,
                "enqueue of a deleted job id within the deduplication window",
            );
            false
        }
        Some(_) => {
            again.expect("a backend that drops duplicates silently must return Ok");
            false
        }
        None => {
            again.expect("without a deduplication window a deleted job's id can be enqueued again");
            true
        }
    };
    let received = store
        .receive_jobs(1, Duration::from_secs(2))
        .await
        .expect("receive_jobs");
    if redelivered {
        assert_eq!(received.len(), 1, "the job enqueued again must be received");
    } else {
        assert!(
            received.is_empty(),
            "a job id within the deduplication window must not be received again"
        );
    }
}

/// A deleted job is never received again; deleting it twice is `NotFound`.
pub async fn job_delete_removes_job(store: &dyn Datastore, caps: &Capabilities) {
    if !caps.jobs {
        let ack = super::AckHandle::new(JobId::new_random(), "x");
        return expect_not_supported(store.delete_job(&ack).await, "delete_job");
    }
    store
        .enqueue_job(&sample_job(TargetId::new_random()))
        .await
        .expect("enqueue_job");
    let received = store
        .receive_jobs(1, Duration::from_secs(5))
        .await
        .expect("receive_jobs");
    assert_eq!(received.len(), 1);
    store
        .delete_job(&received[0].ack)
        .await
        .expect("delete_job");
    let wait = caps.visibility_timeout * 2 + Duration::from_millis(500);
    let again = store.receive_jobs(1, wait).await.expect("receive_jobs");
    assert!(
        again.is_empty(),
        "a deleted job must never be received again"
    );
    if caps.detects_stale_ack {
        expect_not_found(
            store.delete_job(&received[0].ack).await,
            "second delete_job",
        );
    }
}

/// A job returned with `retry_job` is invisible for the delay, then received with its
/// attempt one higher.
pub async fn job_retry_delays_and_counts(store: &dyn Datastore, caps: &Capabilities) {
    if !caps.jobs {
        let ack = super::AckHandle::new(JobId::new_random(), "x");
        return expect_not_supported(store.retry_job(&ack, Duration::ZERO).await, "retry_job");
    }
    let job = sample_job(TargetId::new_random());
    store.enqueue_job(&job).await.expect("enqueue_job");
    let first = store
        .receive_jobs(1, Duration::from_secs(5))
        .await
        .expect("receive_jobs");
    assert_eq!(first[0].job.attempt, 0, "a new job has attempt 0");
    store
        .retry_job(&first[0].ack, Duration::from_secs(1))
        .await
        .expect("retry_job");
    let early = store
        .receive_jobs(1, Duration::ZERO)
        .await
        .expect("receive_jobs");
    assert!(
        early.is_empty(),
        "a retried job must stay invisible during its delay"
    );
    let later = store
        .receive_jobs(1, Duration::from_secs(10))
        .await
        .expect("receive_jobs");
    assert_eq!(
        later.len(),
        1,
        "a retried job must come back after its delay"
    );
    assert_eq!(later[0].job.id, job.id);
    assert_eq!(
        later[0].job.attempt, 1,
        "the attempt must count the earlier receive"
    );
}

/// A received job that is neither deleted nor retried is received again after the
/// visibility timeout.
pub async fn job_reappears_after_visibility_timeout(store: &dyn Datastore, caps: &Capabilities) {
    if !caps.jobs {
        return expect_not_supported(store.receive_jobs(1, Duration::ZERO).await, "receive_jobs");
    }
    let job = sample_job(TargetId::new_random());
    store.enqueue_job(&job).await.expect("enqueue_job");
    let first = store
        .receive_jobs(1, Duration::from_secs(5))
        .await
        .expect("receive_jobs");
    assert_eq!(first.len(), 1);
    let wait = caps.visibility_timeout * 4 + Duration::from_secs(5);
    let again = store.receive_jobs(1, wait).await.expect("receive_jobs");
    assert_eq!(
        again.len(),
        1,
        "an unacknowledged job must reappear after the visibility timeout"
    );
    assert_eq!(again[0].job.id, job.id);
    assert_eq!(again[0].job.attempt, 1);
}

/// A handle from an earlier receive does not delete a job received again.
pub async fn job_stale_ack_does_not_delete(store: &dyn Datastore, caps: &Capabilities) {
    if !caps.jobs {
        return expect_not_supported(store.receive_jobs(1, Duration::ZERO).await, "receive_jobs");
    }
    let job = sample_job(TargetId::new_random());
    store.enqueue_job(&job).await.expect("enqueue_job");
    let first = store
        .receive_jobs(1, Duration::from_secs(5))
        .await
        .expect("receive_jobs");
    store
        .retry_job(&first[0].ack, Duration::ZERO)
        .await
        .expect("retry_job");
    let second = store
        .receive_jobs(1, Duration::from_secs(5))
        .await
        .expect("receive_jobs");
    assert_eq!(second.len(), 1);
    let stale = store.delete_job(&first[0].ack).await;
    if caps.detects_stale_ack {
        expect_conflict(stale, "delete_job with a handle from an earlier receive");
    }
    store
        .retry_job(&second[0].ack, Duration::ZERO)
        .await
        .expect("the current handle must still work: the stale one must not have deleted the job");
    let third = store
        .receive_jobs(1, Duration::from_secs(5))
        .await
        .expect("receive_jobs");
    assert_eq!(third.len(), 1, "the job must still be queued");
}

/// `list_jobs` returns queued jobs, received or not.
pub async fn job_list_includes_received(store: &dyn Datastore, caps: &Capabilities) {
    if !caps.jobs || !caps.list_jobs {
        return expect_not_supported(store.list_jobs().await, "list_jobs");
    }
    let target_id = TargetId::new_random();
    let a = sample_job(target_id);
    let b = sample_job(target_id);
    store.enqueue_job(&a).await.expect("enqueue_job");
    store.enqueue_job(&b).await.expect("enqueue_job");
    let received = store
        .receive_jobs(1, Duration::from_secs(5))
        .await
        .expect("receive_jobs");
    assert_eq!(received.len(), 1);
    let mut listed: Vec<JobId> = store
        .list_jobs()
        .await
        .expect("list_jobs")
        .into_iter()
        .map(|job| job.id)
        .collect();
    listed.sort();
    let mut expected = vec![a.id, b.id];
    expected.sort();
    assert_eq!(
        listed, expected,
        "list_jobs must include received and unreceived jobs"
    );
    store
        .delete_job(&received[0].ack)
        .await
        .expect("delete_job");
    assert_eq!(
        store.list_jobs().await.expect("list_jobs").len(),
        1,
        "a deleted job leaves the list"
    );
}

// ---------------------------------------------------------------------------------------
// Runners

/// A created runner is returned by `get_runner`; a duplicate id is `AlreadyExists`; an
/// unknown id is `NotFound`.
pub async fn runner_create_then_get(store: &dyn Datastore, caps: &Capabilities) {
    let runner = sample_runner(TargetId::new_random());
    if !caps.runners {
        expect_not_supported(store.create_runner(&runner).await, "create_runner");
        expect_not_supported(store.get_runner(runner.id).await, "get_runner");
        expect_not_supported(store.list_runners().await, "list_runners");
        return;
    }
    store.create_runner(&runner).await.expect("create_runner");
    assert_eq!(
        store.get_runner(runner.id).await.expect("get_runner"),
        runner
    );
    expect_already_exists(
        store.create_runner(&runner).await,
        "second create_runner with one id",
    );
    expect_not_found(
        store.get_runner(RunnerId::new_random()).await,
        "get_runner of an unknown id",
    );
}

/// `list_runners` and `list_runners_by_target` leave out deleted runners and filter by
/// target, oldest first.
pub async fn runner_list_excludes_deleted(store: &dyn Datastore, caps: &Capabilities) {
    let target_id = TargetId::new_random();
    if !caps.runners {
        return expect_not_supported(
            store.list_runners_by_target(target_id).await,
            "list_runners_by_target",
        );
    }
    let mut older = sample_runner(target_id);
    older.created_at = Utc::now() - chrono::Duration::seconds(30);
    let newer = sample_runner(target_id);
    let gone = sample_runner(target_id);
    let elsewhere = sample_runner(TargetId::new_random());
    for runner in [&newer, &older, &gone, &elsewhere] {
        store.create_runner(runner).await.expect("create_runner");
    }
    store
        .delete_runner(gone.id, "test", Utc::now())
        .await
        .expect("delete_runner");

    let by_target: Vec<RunnerId> = store
        .list_runners_by_target(target_id)
        .await
        .expect("list_runners_by_target")
        .into_iter()
        .map(|runner| runner.id)
        .collect();
    assert_eq!(
        by_target,
        vec![older.id, newer.id],
        "live runners of the target, oldest first"
    );

    let all: Vec<RunnerId> = store
        .list_runners()
        .await
        .expect("list_runners")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert!(
        all.contains(&elsewhere.id),
        "list_runners must include other targets' runners"
    );
    assert!(
        !all.contains(&gone.id),
        "list_runners must leave out deleted runners"
    );
}

/// `delete_runner` records reason and time once; a second delete keeps the first; an
/// unknown id is `NotFound`.
pub async fn runner_delete_keeps_first_reason(store: &dyn Datastore, caps: &Capabilities) {
    if !caps.runners {
        return expect_not_supported(
            store
                .delete_runner(RunnerId::new_random(), "x", Utc::now())
                .await,
            "delete_runner",
        );
    }
    let runner = sample_runner(TargetId::new_random());
    store.create_runner(&runner).await.expect("create_runner");
    let first_time = Utc::now();
    store
        .delete_runner(runner.id, "job completed", first_time)
        .await
        .expect("delete_runner");
    store
        .delete_runner(
            runner.id,
            "swept",
            first_time + chrono::Duration::seconds(5),
        )
        .await
        .expect("second delete_runner must succeed");
    let deleted = store
        .get_runner(runner.id)
        .await
        .expect("get_runner of a deleted runner");
    assert_eq!(deleted.status, RunnerStatus::Deleted);
    assert_eq!(deleted.deletion_reason.as_deref(), Some("job completed"));
    assert_eq!(deleted.deleted_at, Some(first_time));
    expect_not_found(
        store
            .delete_runner(RunnerId::new_random(), "x", Utc::now())
            .await,
        "delete_runner of an unknown id",
    );
}

// ---------------------------------------------------------------------------------------
// Locks

/// A free lock is taken; a second owner is rejected with `Conflict` while the lease runs;
/// `lock_holder` names the holder.
pub async fn lock_rejects_second_owner(store: &dyn Datastore, caps: &Capabilities) {
    let name = unique("conf-lock");
    if !caps.locks {
        expect_not_supported(
            store
                .acquire_lock(&name, "a", Duration::from_secs(60))
                .await,
            "acquire_lock",
        );
        expect_not_supported(store.lock_holder(&name).await, "lock_holder");
        expect_not_supported(store.release_lock(&name, "a").await, "release_lock");
        return;
    }
    assert_eq!(
        store.lock_holder(&name).await.expect("lock_holder"),
        None,
        "a new lock is free"
    );
    let lease = store
        .acquire_lock(&name, "owner-a", Duration::from_secs(60))
        .await
        .expect("acquire_lock");
    assert_eq!(lease.owner, "owner-a");
    assert!(
        lease.expires_at > Utc::now(),
        "the lease must end in the future"
    );
    expect_conflict(
        store
            .acquire_lock(&name, "owner-b", Duration::from_secs(60))
            .await,
        "a second owner while the lease runs",
    );
    let holder = store
        .lock_holder(&name)
        .await
        .expect("lock_holder")
        .expect("the lock is held");
    assert_eq!(holder.owner, "owner-a");
}

/// The holder can acquire again, which extends the lease.
pub async fn lock_same_owner_extends(store: &dyn Datastore, caps: &Capabilities) {
    let name = unique("conf-lock");
    if !caps.locks {
        return expect_not_supported(
            store.acquire_lock(&name, "a", Duration::from_secs(1)).await,
            "acquire_lock",
        );
    }
    let first = store
        .acquire_lock(&name, "owner-a", Duration::from_secs(30))
        .await
        .expect("acquire_lock");
    let second = store
        .acquire_lock(&name, "owner-a", Duration::from_secs(600))
        .await
        .expect("the holder must be able to acquire again");
    assert!(
        second.expires_at > first.expires_at,
        "acquiring again must extend the lease"
    );
}

/// A lock whose lease has expired can be taken by another owner and reads as free.
pub async fn lock_expired_can_be_taken(store: &dyn Datastore, caps: &Capabilities) {
    let name = unique("conf-lock");
    if !caps.locks {
        return expect_not_supported(
            store.acquire_lock(&name, "a", Duration::ZERO).await,
            "acquire_lock",
        );
    }
    store
        .acquire_lock(&name, "owner-a", Duration::ZERO)
        .await
        .expect("acquire_lock");
    assert_eq!(
        store.lock_holder(&name).await.expect("lock_holder"),
        None,
        "an expired lease reads as free"
    );
    store
        .acquire_lock(&name, "owner-b", Duration::from_secs(60))
        .await
        .expect("an expired lock must be takeable");
}

/// The holder's release frees the lock; another owner's release is a `Conflict`;
/// releasing a free lock succeeds.
pub async fn lock_release_by_holder_only(store: &dyn Datastore, caps: &Capabilities) {
    let name = unique("conf-lock");
    if !caps.locks {
        return expect_not_supported(store.release_lock(&name, "a").await, "release_lock");
    }
    store
        .release_lock(&name, "owner-a")
        .await
        .expect("releasing a free lock must succeed");
    store
        .acquire_lock(&name, "owner-a", Duration::from_secs(60))
        .await
        .expect("acquire_lock");
    expect_conflict(
        store.release_lock(&name, "owner-b").await,
        "release by a non-holder",
    );
    store
        .release_lock(&name, "owner-a")
        .await
        .expect("release by the holder");
    assert_eq!(store.lock_holder(&name).await.expect("lock_holder"), None);
    store
        .acquire_lock(&name, "owner-b", Duration::from_secs(60))
        .await
        .expect("a released lock must be takeable");
}

// ---------------------------------------------------------------------------------------
// Launch claims

/// Of two concurrent claims for one job, exactly one succeeds and the other is a
/// `Conflict`.
pub async fn launch_claim_first_wins(store: &dyn Datastore, caps: &Capabilities) {
    let job_id = JobId::new_random();
    let lease = Duration::from_secs(60);
    if !caps.launch_claims {
        expect_not_supported(store.claim_launch(job_id, "a", lease).await, "claim_launch");
        expect_not_supported(store.complete_launch(job_id, "a").await, "complete_launch");
        expect_not_supported(store.release_launch(job_id, "a").await, "release_launch");
        return;
    }
    let (a, b) = tokio::join!(
        store.claim_launch(job_id, "dispatcher-a", lease),
        store.claim_launch(job_id, "dispatcher-b", lease)
    );
    let won = [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count();
    assert_eq!(won, 1, "exactly one claim must win: {a:?} {b:?}");
    let loser = if a.is_ok() { b } else { a };
    expect_conflict(loser, "the second concurrent claim");
}

/// The holder renews its claim; another owner gets `Conflict` until the lease expires.
pub async fn launch_claim_expires_and_renews(store: &dyn Datastore, caps: &Capabilities) {
    let job_id = JobId::new_random();
    if !caps.launch_claims {
        return expect_not_supported(
            store.claim_launch(job_id, "a", Duration::ZERO).await,
            "claim_launch",
        );
    }
    store
        .claim_launch(job_id, "owner-a", Duration::from_secs(60))
        .await
        .expect("claim_launch");
    store
        .claim_launch(job_id, "owner-a", Duration::from_secs(60))
        .await
        .expect("the holder must be able to renew its claim");
    expect_conflict(
        store
            .claim_launch(job_id, "owner-b", Duration::from_secs(60))
            .await,
        "a claim held by another owner",
    );

    let expired = JobId::new_random();
    store
        .claim_launch(expired, "owner-a", Duration::ZERO)
        .await
        .expect("claim_launch");
    store
        .claim_launch(expired, "owner-b", Duration::from_secs(60))
        .await
        .expect("an expired claim must be takeable");
}

/// A completed claim blocks every later claim with `AlreadyExists`, and cannot be
/// released; completing needs the holder.
pub async fn launch_completed_blocks_claims(store: &dyn Datastore, caps: &Capabilities) {
    let job_id = JobId::new_random();
    if !caps.launch_claims {
        return expect_not_supported(store.complete_launch(job_id, "a").await, "complete_launch");
    }
    expect_conflict(
        store.complete_launch(job_id, "owner-a").await,
        "completing an unclaimed job",
    );
    store
        .claim_launch(job_id, "owner-a", Duration::from_secs(60))
        .await
        .expect("claim_launch");
    expect_conflict(
        store.complete_launch(job_id, "owner-b").await,
        "completing another owner's claim",
    );
    store
        .complete_launch(job_id, "owner-a")
        .await
        .expect("complete_launch");
    store
        .complete_launch(job_id, "owner-a")
        .await
        .expect("completing twice is idempotent");
    for owner in ["owner-a", "owner-b"] {
        expect_already_exists(
            store
                .claim_launch(job_id, owner, Duration::from_secs(60))
                .await,
            "a claim after completion",
        );
    }
    expect_conflict(
        store.release_launch(job_id, "owner-a").await,
        "releasing a completed claim",
    );
}

/// A released claim can be taken again; only the holder can release it.
pub async fn launch_release_allows_reclaim(store: &dyn Datastore, caps: &Capabilities) {
    let job_id = JobId::new_random();
    if !caps.launch_claims {
        return expect_not_supported(store.release_launch(job_id, "a").await, "release_launch");
    }
    store
        .release_launch(job_id, "owner-a")
        .await
        .expect("releasing a missing claim succeeds");
    store
        .claim_launch(job_id, "owner-a", Duration::from_secs(60))
        .await
        .expect("claim_launch");
    expect_conflict(
        store.release_launch(job_id, "owner-b").await,
        "release by a non-holder",
    );
    store
        .release_launch(job_id, "owner-a")
        .await
        .expect("release by the holder");
    store
        .claim_launch(job_id, "owner-b", Duration::from_secs(60))
        .await
        .expect("a released claim must be takeable");
}

/// `set_runner_github_id` stores GitHub's id on the record; an unknown runner is
/// `NotFound`.
pub async fn runner_set_github_id(store: &dyn Datastore, caps: &Capabilities) {
    let runner = sample_runner(TargetId::new_random());
    if !caps.runners {
        return expect_not_supported(
            store.set_runner_github_id(runner.id, 7).await,
            "set_runner_github_id",
        );
    }
    store.create_runner(&runner).await.expect("create_runner");
    for _ in 0..2 {
        store
            .set_runner_github_id(runner.id, 4242)
            .await
            .expect("set_runner_github_id (twice with one value)");
    }
    assert_eq!(
        store
            .get_runner(runner.id)
            .await
            .expect("get_runner")
            .github_runner_id,
        Some(4242),
        "the stored GitHub runner id"
    );
    expect_not_found(
        store.set_runner_github_id(RunnerId::new_random(), 1).await,
        "set_runner_github_id of an unknown runner",
    );
}

/// A deferred job comes back after the delay. Backends with `defer_keeps_attempt` return
/// it with the same attempt as before the deferral.
pub async fn job_defer_keeps_attempt(store: &dyn Datastore, caps: &Capabilities) {
    if !caps.jobs {
        return;
    }
    let job = sample_job(TargetId::new_random());
    store.enqueue_job(&job).await.expect("enqueue_job");
    let first = store
        .receive_jobs(1, Duration::from_secs(5))
        .await
        .expect("receive_jobs")
        .pop()
        .expect("the enqueued job");
    store
        .retry_job(&first.ack, Duration::ZERO)
        .await
        .expect("retry_job");
    let second = store
        .receive_jobs(1, Duration::from_secs(5))
        .await
        .expect("receive_jobs")
        .pop()
        .expect("the retried job");
    assert_eq!(second.job.attempt, first.job.attempt + 1, "a retry counts");
    store
        .defer_job(&second.ack, Duration::ZERO)
        .await
        .expect("defer_job");
    let third = store
        .receive_jobs(1, Duration::from_secs(5))
        .await
        .expect("receive_jobs")
        .pop()
        .expect("a deferred job must come back");
    let expected = if caps.defer_keeps_attempt {
        second.job.attempt
    } else {
        second.job.attempt + 1
    };
    assert_eq!(third.job.attempt, expected, "attempt after a deferral");
    store.delete_job(&third.ack).await.expect("delete_job");
}

// ---------------------------------------------------------------------------------------
// Dead letters

/// A dead-lettered job is never received again and, where dead letters can be listed,
/// is listed with its reason; a stale handle keeps no dead letter.
pub async fn job_dead_letter_removes_and_keeps(store: &dyn Datastore, caps: &Capabilities) {
    let job = sample_job(TargetId::new_random());
    if !caps.jobs {
        return;
    }
    store.enqueue_job(&job).await.expect("enqueue_job");
    let received = store
        .receive_jobs(1, Duration::from_secs(5))
        .await
        .expect("receive_jobs")
        .pop()
        .expect("the enqueued job");
    if !caps.dead_letters {
        return expect_not_supported(
            store.dead_letter_job(&received.ack, "conformance").await,
            "dead_letter_job",
        );
    }
    store
        .dead_letter_job(&received.ack, "no runner profile matches")
        .await
        .expect("dead_letter_job");
    let wait = caps.visibility_timeout * 2 + Duration::from_millis(500);
    let again = store.receive_jobs(1, wait).await.expect("receive_jobs");
    assert!(
        again.is_empty(),
        "a dead-lettered job must never be received again, got {again:?}"
    );
    if !caps.list_dead_letters {
        return expect_not_supported(store.list_dead_letters().await, "list_dead_letters");
    }
    let letters = store.list_dead_letters().await.expect("list_dead_letters");
    let letter = letters
        .iter()
        .find(|letter| letter.job.id == job.id)
        .expect("the dead-lettered job must be listed");
    assert_eq!(letter.reason, "no runner profile matches");
    assert!(
        store
            .dead_letter_job(&received.ack, "second time")
            .await
            .is_err(),
        "dead-lettering a job no longer in the queue must fail"
    );
    let letters = store.list_dead_letters().await.expect("list_dead_letters");
    assert_eq!(
        letters
            .iter()
            .filter(|letter| letter.job.id == job.id)
            .count(),
        1,
        "a failed dead_letter_job must keep no second dead letter"
    );
}

// ---------------------------------------------------------------------------------------
// Slots

/// Of many concurrent holders, exactly `capacity` get a slot, and a holder re-acquires its
/// own slot. A smaller capacity admits no new holder while the pool is over it.
pub async fn slot_capacity_is_atomic(store: &dyn Datastore, caps: &Capabilities) {
    let pool = unique("pool");
    let lease = Duration::from_secs(60);
    if !caps.slots {
        expect_not_supported(
            store.acquire_slot(&pool, 1, "a", lease).await,
            "acquire_slot",
        );
        expect_not_supported(store.release_slot(&pool, "a").await, "release_slot");
        expect_not_supported(store.count_slots(&pool).await, "count_slots");
        return;
    }
    let holders: Vec<String> = (0..10).map(|i| format!("holder-{i}")).collect();
    let results = futures_join_all(
        holders
            .iter()
            .map(|holder| store.acquire_slot(&pool, 3, holder, lease)),
    )
    .await;
    let won: Vec<&String> = holders
        .iter()
        .zip(&results)
        .filter_map(|(holder, result)| result.is_ok().then_some(holder))
        .collect();
    assert_eq!(
        won.len(),
        3,
        "exactly 3 of 10 racing holders get a slot: {results:?}"
    );
    for result in results.into_iter().filter(Result::is_err) {
        expect_conflict(result, "acquire_slot on a full pool");
    }
    assert_eq!(store.count_slots(&pool).await.expect("count_slots"), 3);
    store
        .acquire_slot(&pool, 3, won[0], lease)
        .await
        .expect("a holder must be able to renew its slot");
    assert_eq!(store.count_slots(&pool).await.expect("count_slots"), 3);
    expect_conflict(
        store.acquire_slot(&pool, 2, "newcomer", lease).await,
        "acquire_slot while the pool holds more than the capacity",
    );
    store
        .release_slot(&pool, won[1])
        .await
        .expect("release_slot");
    expect_conflict(
        store.acquire_slot(&pool, 2, "newcomer", lease).await,
        "acquire_slot while the pool is at the capacity",
    );
    store
        .acquire_slot(&pool, 3, "newcomer", lease)
        .await
        .expect("a released slot must be takeable");
    expect_conflict(
        store.acquire_slot(&pool, 0, "another", lease).await,
        "acquire_slot with capacity zero",
    );
}

/// Releasing is idempotent; an expired slot no longer counts; pools are independent.
pub async fn slot_release_and_expiry(store: &dyn Datastore, caps: &Capabilities) {
    let pool = unique("pool");
    let other = unique("pool");
    if !caps.slots {
        return expect_not_supported(store.count_slots(&pool).await, "count_slots");
    }
    store
        .release_slot(&pool, "nobody")
        .await
        .expect("releasing a slot that is not held succeeds");
    store
        .acquire_slot(&pool, 1, "short", Duration::ZERO)
        .await
        .expect("acquire_slot");
    assert_eq!(
        store.count_slots(&pool).await.expect("count_slots"),
        0,
        "an expired slot must not count"
    );
    store
        .acquire_slot(&pool, 1, "long", Duration::from_secs(60))
        .await
        .expect("an expired slot must be takeable");
    store
        .acquire_slot(&other, 1, "elsewhere", Duration::from_secs(60))
        .await
        .expect("a full pool must not block another pool");
    store
        .release_slot(&pool, "long")
        .await
        .expect("release_slot");
    store
        .release_slot(&pool, "long")
        .await
        .expect("a second release_slot succeeds");
    assert_eq!(store.count_slots(&pool).await.expect("count_slots"), 0);
    assert_eq!(store.count_slots(&other).await.expect("count_slots"), 1);
}

/// Runs the futures concurrently and returns their outputs in order.
async fn futures_join_all<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|output| output.expect("every future completed"))
        .collect()
}

/// Expands the Datastore conformance suite into one `#[tokio::test]` per case.
///
/// `$setup` is an expression whose value is awaited per case and yields `Option<D>` with
/// `D: Datastore`; `None` skips the case. `$capabilities` is a
/// [`Capabilities`](crate::datastore::conformance::Capabilities) expression.
#[macro_export]
macro_rules! datastore_conformance {
    ($setup:expr, $capabilities:expr $(,)?) => {
        $crate::datastore_conformance!(@cases ($setup) ($capabilities)
            target_create_then_get,
            target_create_rejects_duplicate_id,
            target_create_rejects_duplicate_scope,
            target_deleted_scope_is_reusable,
            target_get_missing_is_not_found,
            target_get_by_scope_ignores_case,
            target_get_by_scope_skips_deleted,
            target_list_includes_deleted_in_order,
            target_delete_is_idempotent,
            target_update_status_sets_description,
            target_restore_conflicts_with_live_scope,
            target_update_resource_type,
            target_lookup_prefers_repository,
            job_enqueue_then_receive,
            job_receive_respects_max,
            job_receive_empty_returns_after_wait,
            job_receive_wakes_on_enqueue,
            job_received_is_invisible,
            job_duplicate_enqueue_received_once,
            job_dedup_window_covers_deleted,
            job_delete_removes_job,
            job_retry_delays_and_counts,
            job_reappears_after_visibility_timeout,
            job_stale_ack_does_not_delete,
            job_list_includes_received,
            runner_create_then_get,
            runner_list_excludes_deleted,
            runner_delete_keeps_first_reason,
            lock_rejects_second_owner,
            lock_same_owner_extends,
            lock_expired_can_be_taken,
            lock_release_by_holder_only,
            launch_claim_first_wins,
            launch_claim_expires_and_renews,
            launch_completed_blocks_claims,
            launch_release_allows_reclaim,
            runner_set_github_id,
            job_dead_letter_removes_and_keeps,
            job_defer_keeps_attempt,
            slot_capacity_is_atomic,
            slot_release_and_expiry,
        );
    };
    (@cases ($setup:expr) ($capabilities:expr) $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test]
            async fn $case() {
                let Some(store) = $setup.await else {
                    return;
                };
                let capabilities: $crate::datastore::conformance::Capabilities = $capabilities;
                $crate::datastore::conformance::$case(&store, &capabilities).await;
            }
        )*
    };
}

#[cfg(test)]
mod memory_conformance {
    use super::Capabilities;
    use crate::datastore::MemoryDatastore;

    crate::datastore_conformance!(
        async {
            Some(
                MemoryDatastore::builder()
                    .with_visibility_timeout(std::time::Duration::from_millis(500))
                    .build(),
            )
        },
        Capabilities::all()
    );
}
