//! The queued-job scan against a wiremock server on 127.0.0.1 that plays a GitHub
//! Enterprise Server host, so every path starts with `/api/v3`.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use myshoes::datastore::conformance::sample_job;
use myshoes::datastore::{Datastore, MemoryDatastore};
use myshoes::github::{ClientConfig, GitHubApp, GitHubAppClient, QueuedJobScan};
use myshoes::model::{GitHubHost, JobId, ResourceType, Target};
use myshoes::profile::{LabelMatchMode, Profiles, RunnerProfile};
use myshoes::secret::Secret;

const PRIVATE_KEY_PEM: &str = include_str!("fixtures/throwaway-test-rsa-key.pem");
const REPO: &str = "/api/v3/repos/octo-org/hello-world";

fn client() -> GitHubAppClient {
    let mut config = ClientConfig::default();
    config.retry.max_attempts = 2;
    config.retry.initial_backoff = Duration::from_millis(1);
    config.retry.max_backoff = Duration::from_millis(5);
    let app = GitHubApp::new(4711, &Secret::new(PRIVATE_KEY_PEM)).expect("valid fixture key");
    GitHubAppClient::new(app, config).expect("valid configuration")
}

fn job_entry(
    id: u64,
    run_id: u64,
    status: &str,
    labels: &[&str],
    age_minutes: i64,
) -> serde_json::Value {
    let created = Utc::now() - chrono::TimeDelta::minutes(age_minutes);
    json!({
        "id": id,
        "run_id": run_id,
        "run_attempt": 1,
        "status": status,
        "labels": labels,
        "created_at": created.to_rfc3339_opts(SecondsFormat::Secs, true),
        "runner_name": null
    })
}

async fn mount(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/installation")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 99, "app_id": 4711})))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v3/app/installations/99/access_tokens"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "token": "ghs_scan_installation_token",
            "expires_at": (Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339()
        })))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/actions/runs")))
        .and(query_param("status", "queued"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "total_count": 2,
            "workflow_runs": [{"id": 501, "status": "queued"}, {"id": 502, "status": "queued"}]
        })))
        .mount(server)
        .await;
    // A matrix run with one job started is in_progress, and its other job still waits.
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/actions/runs")))
        .and(query_param("status", "in_progress"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "total_count": 1,
            "workflow_runs": [{"id": 503, "status": "in_progress"}]
        })))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/actions/runs/503/jobs")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "total_count": 2,
            "jobs": [
                job_entry(9006, 503, "in_progress", &["linux"], 30),
                job_entry(9007, 503, "queued", &["linux"], 30),
            ]
        })))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/actions/runs/501/jobs")))
        .and(query_param("filter", "latest"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "total_count": 3,
            "jobs": [
                job_entry(9001, 501, "queued", &["self-hosted", "linux"], 30),
                job_entry(9002, 501, "queued", &["self-hosted", "linux"], 1),
                job_entry(9003, 501, "in_progress", &["self-hosted", "linux"], 30),
            ]
        })))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/actions/runs/502/jobs")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "total_count": 2,
            "jobs": [
                job_entry(9004, 502, "queued", &["windows"], 30),
                job_entry(9005, 502, "queued", &["linux"], 30),
            ]
        })))
        .mount(server)
        .await;
}

#[tokio::test]
async fn stale_queued_jobs_are_enqueued_once() {
    let server = MockServer::start().await;
    mount(&server).await;
    let host: GitHubHost = server.uri().parse().unwrap();
    let datastore = MemoryDatastore::new();
    let repository_target = Target::new(
        "octo-org/hello-world".parse().unwrap(),
        host.clone(),
        ResourceType::Small,
    );
    let organization_target = Target::new(
        "octo-org".parse().unwrap(),
        host.clone(),
        ResourceType::Small,
    );
    datastore.create_target(&repository_target).await.unwrap();
    // Job 9005 came by webhook already.
    let mut known = sample_job(repository_target.id);
    known.workflow_job_id = 9005;
    known.id = JobId::for_workflow_job(&host, 9005, 1);
    datastore.enqueue_job(&known).await.unwrap();

    let profiles = Profiles::new(
        vec![RunnerProfile::new("linux", ["linux"])],
        LabelMatchMode::Subset,
    )
    .unwrap();
    let scan = QueuedJobScan::new(Duration::from_secs(600));
    let client = client();
    let targets = [repository_target.clone(), organization_target];
    let report = scan.run(&client, &datastore, &targets, &profiles).await;

    assert_eq!(report.errors, Vec::<String>::new());
    assert_eq!(
        report.repositories, 1,
        "organization targets are not scanned"
    );
    assert_eq!(report.queued_runs, 3);
    assert_eq!(
        report.stale_jobs, 3,
        "old enough, queued, and served by a profile"
    );
    assert_eq!(report.enqueued, 2);
    assert_eq!(report.already_known, 1);
    assert_eq!(
        report.requests, 6,
        "installation, runs by two statuses, and the jobs of three runs"
    );
    let queued: Vec<u64> = datastore
        .list_jobs()
        .await
        .unwrap()
        .iter()
        .map(|job| job.workflow_job_id)
        .collect();
    assert_eq!(queued, [9005, 9001, 9007]);
    let found = datastore.list_jobs().await.unwrap().remove(1);
    assert_eq!(found.installation_id, Some(99));
    assert_eq!(found.target_id, repository_target.id);
    assert_eq!(found.id, JobId::for_workflow_job(&host, 9001, 1));

    // A second pass finds the jobs known and reads the installation from its cache.
    let again = scan.run(&client, &datastore, &targets, &profiles).await;
    assert_eq!(again.enqueued, 0);
    assert_eq!(again.already_known, 3);
    assert_eq!(again.requests, 5);

    // A job given up as a dead letter is not enqueued again by later passes.
    let received = datastore.receive_jobs(3, Duration::ZERO).await.unwrap();
    let given_up = received
        .iter()
        .find(|received| received.job.workflow_job_id == 9007)
        .unwrap();
    datastore
        .dead_letter_job(&given_up.ack, "no runner can start")
        .await
        .unwrap();
    let third = scan.run(&client, &datastore, &targets, &profiles).await;
    assert_eq!(third.dead_lettered, 1);
    assert_eq!(third.enqueued, 0);
}

#[tokio::test]
async fn scan_failure_is_reported_per_repository() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/installation")))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .mount(&server)
        .await;
    let host: GitHubHost = server.uri().parse().unwrap();
    let datastore = MemoryDatastore::new();
    let target = Target::new(
        "octo-org/hello-world".parse().unwrap(),
        host,
        ResourceType::Small,
    );
    let profiles = Profiles::new(
        vec![RunnerProfile::new("linux", ["linux"])],
        LabelMatchMode::Subset,
    )
    .unwrap();
    let report = QueuedJobScan::new(Duration::ZERO)
        .run(&client(), &datastore, &[target], &profiles)
        .await;
    assert_eq!(report.errors.len(), 1);
    assert!(
        report.errors[0].contains("octo-org/hello-world"),
        "{:?}",
        report.errors
    );
    assert!(report.errors[0].contains("404"), "{:?}", report.errors);
    assert!(datastore.list_jobs().await.unwrap().is_empty());
}
