//! Runs `myshoes::webhook::receive` over example payloads: the octokit/webhooks examples in
//! the shared fixtures folder next to the repository, and this crate's own
//! `tests/fixtures/workflow_job_queued.json`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::Utc;
use myshoes::model::{GitHubHost, JobId, TargetId};
use myshoes::profile::{LabelMatchMode, Profiles, RunnerProfile};
use myshoes::secret::Secret;
use myshoes::webhook::{
    receive, sign_sha256, DecideConfig, Decision, IgnoreReason, JobRequest, Received,
    ReceiverConfig, WebhookError, WebhookHeaders, WorkflowJobAction,
};

/// Folder of the octokit/webhooks example payloads, one folder per event.
const SHARED_FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/github-webhooks"
);

/// An invented, compact `workflow_job` `queued` delivery with the fields GitHub sends in 2026.
const OWN_QUEUED: &[u8] = include_bytes!("fixtures/workflow_job_queued.json");

const SECRET: &str = "fixture-test-secret";
const DELIVERY_ID: &str = "9f8e7d6c-5b4a-11f0-8a1b-0242ac120002";

/// Expected decision for one payload file.
#[derive(Debug, Clone, Copy)]
enum Expected {
    /// Enqueued with this profile.
    Enqueue(&'static str),
    /// A `workflow_job` with this action, ignored because it is not `queued`.
    NotQueued(&'static str),
    /// A `workflow_job` that started or finished: cancels a pending launch of its attempt.
    Cancel(&'static str),
    /// A `workflow_job` whose labels no profile accepts.
    NoProfile,
    /// Not a `workflow_job` event.
    NotWorkflowJob,
}

/// Every payload in the shared folder, by path relative to it, except `schemas/`.
const EXPECTED: &[(&str, Expected)] = &[
    ("check_run/completed.1.json", Expected::NotWorkflowJob),
    ("check_run/completed.json", Expected::NotWorkflowJob),
    (
        "check_run/completed.with-organization.json",
        Expected::NotWorkflowJob,
    ),
    ("check_run/created.json", Expected::NotWorkflowJob),
    (
        "check_run/created.with-organization.json",
        Expected::NotWorkflowJob,
    ),
    ("check_run/requested_action.json", Expected::NotWorkflowJob),
    ("check_run/rerequested.json", Expected::NotWorkflowJob),
    (
        "check_run/rerequested.with-organization.json",
        Expected::NotWorkflowJob,
    ),
    ("ghes-35/check_run/completed.json", Expected::NotWorkflowJob),
    ("ghes-35/check_run/created.json", Expected::NotWorkflowJob),
    (
        "ghes-35/installation/created.json",
        Expected::NotWorkflowJob,
    ),
    (
        "ghes-35/installation/deleted.json",
        Expected::NotWorkflowJob,
    ),
    ("ghes-35/ping/ping.json", Expected::NotWorkflowJob),
    // Its labels match the `gpu` profile, but the action is in_progress.
    (
        "ghes-35/workflow_job/in_progress.from-index.json",
        Expected::Cancel("in_progress"),
    ),
    ("installation/created.json", Expected::NotWorkflowJob),
    (
        "installation/created.with-requester.json",
        Expected::NotWorkflowJob,
    ),
    ("installation/deleted.json", Expected::NotWorkflowJob),
    (
        "installation/new_permissions_accepted.json",
        Expected::NotWorkflowJob,
    ),
    ("installation/suspend.json", Expected::NotWorkflowJob),
    ("installation/unsuspend.json", Expected::NotWorkflowJob),
    ("ping/ping.json", Expected::NotWorkflowJob),
    ("ping/with-app_id.json", Expected::NotWorkflowJob),
    ("ping/with-organization.json", Expected::NotWorkflowJob),
    (
        "workflow_job/completed.failure.with-organization.json",
        Expected::NoProfile,
    ),
    (
        "workflow_job/completed.success.with-organization.json",
        Expected::NoProfile,
    ),
    ("workflow_job/in_progress.json", Expected::NoProfile),
    (
        "workflow_job/in_progress.with-queued-steps.json",
        Expected::NoProfile,
    ),
    // `ubuntu-latest` is a GitHub-hosted label that no profile carries.
    ("workflow_job/queued.json", Expected::NoProfile),
    // Action queued with status waiting: the action decides.
    (
        "workflow_job/queued.with-deployment.json",
        Expected::Enqueue("k8s"),
    ),
    ("workflow_job/waiting.json", Expected::NotQueued("waiting")),
    ("workflow_run/completed.json", Expected::NotWorkflowJob),
    ("workflow_run/requested.json", Expected::NotWorkflowJob),
];

fn config() -> ReceiverConfig {
    let profiles = Profiles::new(
        vec![
            RunnerProfile::new("k8s", ["k8s"]),
            RunnerProfile::new("gpu", ["gpu", "db-app", "dc-03"]),
            RunnerProfile::new("linux-x64", ["linux", "x64"]),
        ],
        LabelMatchMode::Subset,
    )
    .expect("valid profiles");
    ReceiverConfig::new(DecideConfig::new(profiles, GitHubHost::github_com()))
}

/// Builds the headers GitHub sends with a JSON delivery of `event`, signed with [`SECRET`].
fn signed_headers(event: &str, body: &[u8]) -> WebhookHeaders {
    let signature = sign_sha256(&Secret::new(SECRET), body);
    WebhookHeaders::from_pairs([
        ("X-GitHub-Event", event),
        ("X-GitHub-Delivery", DELIVERY_ID),
        ("X-Hub-Signature-256", signature.as_str()),
        ("Content-Type", "application/json"),
        ("User-Agent", "GitHub-Hookshot/044aadd"),
    ])
}

fn receive_signed(event: &str, body: &[u8]) -> Result<Received, WebhookError> {
    receive(
        &signed_headers(event, body),
        body,
        &Secret::new(SECRET),
        &config(),
    )
}

/// Returns the paths of every `*.json` file under `root`, relative to it and with `/`
/// separators, skipping the top-level `schemas` folder.
fn payload_files(root: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut pending: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            let relative = path.strip_prefix(root).expect("path under root");
            let relative: Vec<String> = relative
                .components()
                .map(|part| part.as_os_str().to_string_lossy().into_owned())
                .collect();
            let relative = relative.join("/");
            if path.is_dir() {
                if relative != "schemas" {
                    pending.push(path);
                }
            } else if relative.ends_with(".json") {
                found.insert(relative);
            }
        }
    }
    found
}

/// Returns the event name of a payload path: its first folder after an optional `ghes-35/`.
fn event_name(relative: &str) -> &str {
    let without_ghes = relative.strip_prefix("ghes-35/").unwrap_or(relative);
    without_ghes
        .split('/')
        .next()
        .expect("split yields at least one part")
}

#[test]
fn shared_fixtures_match_table() {
    let root = Path::new(SHARED_FIXTURES);
    if !root.is_dir() {
        eprintln!(
            "SKIPPED shared_fixtures_match_table: the folder {} does not exist, so the \
             octokit/webhooks example payloads were not tested. Check out the shared \
             fixtures next to the repository to run this test.",
            root.display()
        );
        return;
    }

    let on_disk = payload_files(root);
    let in_table: BTreeSet<String> = EXPECTED
        .iter()
        .map(|(path, _)| (*path).to_owned())
        .collect();
    let not_in_table: Vec<&String> = on_disk.difference(&in_table).collect();
    let not_on_disk: Vec<&String> = in_table.difference(&on_disk).collect();
    assert!(
        not_in_table.is_empty(),
        "files missing from EXPECTED: {not_in_table:?}"
    );
    assert!(
        not_on_disk.is_empty(),
        "EXPECTED entries with no file: {not_on_disk:?}"
    );

    for (relative, expected) in EXPECTED {
        let body = std::fs::read(root.join(relative))
            .unwrap_or_else(|error| panic!("cannot read {relative}: {error}"));
        let event = event_name(relative);
        let received = receive_signed(event, &body)
            .unwrap_or_else(|error| panic!("{relative}: rejected with {error}"));

        assert_eq!(received.event, event, "{relative}");
        assert_eq!(
            received.delivery_id.as_deref(),
            Some(DELIVERY_ID),
            "{relative}"
        );
        match (*expected, &received.decision) {
            (Expected::Enqueue(profile), Decision::Enqueue(request)) => {
                assert_eq!(request.profile, profile, "{relative}");
            }
            (
                Expected::NotQueued(action),
                Decision::Ignore(IgnoreReason::NotQueued { action: got }),
            ) => {
                assert_eq!(got.as_str(), action, "{relative}");
            }
            (Expected::NoProfile, Decision::Ignore(IgnoreReason::NoMatchingProfile { .. })) => {}
            (Expected::Cancel(action), Decision::Cancel(cancel)) => {
                assert_eq!(cancel.action.as_str(), action, "{relative}");
                assert_eq!(
                    cancel.job_id,
                    myshoes::model::JobId::for_workflow_job(
                        &cancel.host,
                        cancel.workflow_job_id,
                        cancel.run_attempt
                    ),
                    "{relative}"
                );
            }
            (
                Expected::NotWorkflowJob,
                Decision::Ignore(IgnoreReason::NotWorkflowJob { event: got }),
            ) => {
                assert_eq!(got, event, "{relative}");
            }
            (expected, decision) => {
                panic!("{relative}: expected {expected:?}, got {decision:?}")
            }
        }
    }
}

#[test]
fn shared_queued_with_deployment_fields() {
    let path = Path::new(SHARED_FIXTURES).join("workflow_job/queued.with-deployment.json");
    let Ok(body) = std::fs::read(&path) else {
        eprintln!(
            "SKIPPED shared_queued_with_deployment_fields: cannot read {}, so the \
             octokit/webhooks example was not tested.",
            path.display()
        );
        return;
    };
    let request = expect_request(receive_signed("workflow_job", &body).expect("accepted"));

    assert_eq!(request.delivery_id.as_deref(), Some(DELIVERY_ID));
    assert_eq!(request.workflow_job_id, 12_877_621_891);
    assert_eq!(request.run_id, 4_747_967_848);
    assert_eq!(request.run_attempt, 1);
    assert_eq!(
        request.repository.as_str(),
        "lineville/elastic-machines-testing"
    );
    assert_eq!(request.installation_id, Some(23_154_469));
    assert_eq!(request.labels, ["self-hosted", "k8s"]);
    assert_eq!(request.host.web_url(), "https://github.com");
    assert_eq!(request.profile, "k8s");
}

fn expect_request(received: Received) -> JobRequest {
    match received.decision {
        Decision::Enqueue(request) => request,
        other => panic!("expected a job, got {other:?}"),
    }
}

fn assert_own_queued_request(request: &JobRequest) {
    assert_eq!(request.workflow_job_id, 38_000_000_001);
    assert_eq!(request.run_id, 21_876_543_210);
    assert_eq!(request.run_attempt, 1);
    assert_eq!(request.repository.as_str(), "octo-org/hello-world");
    assert_eq!(request.installation_id, Some(71_234_567));
    assert_eq!(request.labels, ["self-hosted", "linux", "x64"]);
    assert_eq!(request.host, GitHubHost::github_com());
    assert_eq!(request.profile, "linux-x64");
}

#[test]
fn own_fixture_is_compact_json() {
    assert!(!OWN_QUEUED.contains(&b'\n'), "the fixture must be one line");
    assert!(
        !OWN_QUEUED.windows(2).any(|pair| pair == b"\": "),
        "no space after keys"
    );
    let value: serde_json::Value = serde_json::from_slice(OWN_QUEUED).expect("valid JSON");
    assert_eq!(value["workflow_job"]["runner_id"], serde_json::Value::Null);
    assert_eq!(value["workflow_job"]["steps"], serde_json::json!([]));
    assert!(value["workflow_job"]["id"].as_u64().expect("u64 id") > u64::from(u32::MAX));
}

#[test]
fn own_fixture_is_enqueued() {
    let received = receive_signed("workflow_job", OWN_QUEUED).expect("accepted");
    assert_eq!(received.event, "workflow_job");
    assert_eq!(received.delivery_id.as_deref(), Some(DELIVERY_ID));
    let request = expect_request(received);
    assert_own_queued_request(&request);
    assert_eq!(request.delivery_id.as_deref(), Some(DELIVERY_ID));

    let target_id = TargetId::new_random();
    let received_at = Utc::now();
    let job = request.into_job(target_id, received_at);
    assert_eq!(
        job.id,
        JobId::for_workflow_job(&GitHubHost::github_com(), 38_000_000_001, 1)
    );
    assert_eq!(job.target_id, target_id);
    assert_eq!(job.received_at, received_at);
    assert_eq!(job.attempt, 0);
    assert_eq!(job.delivery_id.as_deref(), Some(DELIVERY_ID));
}

#[test]
fn own_fixture_as_form_is_enqueued() {
    let json = std::str::from_utf8(OWN_QUEUED).expect("UTF-8 fixture");
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", json)
        .finish();
    let signature = sign_sha256(&Secret::new(SECRET), body.as_bytes());
    let headers = WebhookHeaders::from_pairs([
        ("x-github-event", "workflow_job"),
        ("x-hub-signature-256", signature.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
    ]);
    let received =
        receive(&headers, body.as_bytes(), &Secret::new(SECRET), &config()).expect("accepted");
    let request = expect_request(received);
    assert_own_queued_request(&request);
    assert_eq!(request.delivery_id, None);
}

#[test]
fn own_fixture_in_progress_cancels() {
    let json = std::str::from_utf8(OWN_QUEUED).expect("UTF-8 fixture");
    let body = json.replacen(r#""action":"queued""#, r#""action":"in_progress""#, 1);
    let received = receive_signed("workflow_job", body.as_bytes()).expect("accepted");
    let Decision::Cancel(cancel) = received.decision else {
        panic!("expected a cancel, got {:?}", received.decision);
    };
    assert_eq!(cancel.action, WorkflowJobAction::InProgress);
    let queued = expect_request(receive_signed("workflow_job", OWN_QUEUED).expect("accepted"));
    assert_eq!(
        cancel.job_id,
        queued.job_id(),
        "the cancel names the queued attempt"
    );
}

/// Deterministic xorshift64 generator, so failures reproduce without extra crates.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

/// Asserts that `result` is an `Ok` or a client error (4xx).
fn assert_ok_or_4xx(result: &Result<Received, WebhookError>, case: &str) {
    if let Err(error) = result {
        let status = error.status_code();
        assert!(
            (400..500).contains(&status),
            "{case}: status {status} for {error}"
        );
    }
}

#[test]
fn truncated_fixture_never_panics() {
    // Every length in the first 1 KiB, which contains `action` and `workflow_job`, then every
    // fifth length, to keep the debug build under a few seconds.
    let lengths = (0..1024).chain((1024..OWN_QUEUED.len()).step_by(5));
    for len in lengths {
        let prefix = &OWN_QUEUED[..len];
        let result = receive_signed("workflow_job", prefix);
        assert_ok_or_4xx(&result, &format!("prefix of {len} bytes"));
        assert!(result.is_err(), "prefix of {len} bytes was accepted");
    }
}

#[test]
fn flipped_bytes_never_panic() {
    let mut random = XorShift(0x9E37_79B9_7F4A_7C15);
    let secret = Secret::new(SECRET);
    let config = config();

    for round in 0..1500 {
        let mut body = OWN_QUEUED.to_vec();
        let flips = 1 + random.below(4);
        for _ in 0..flips {
            let position = random.below(body.len());
            body[position] = random.next() as u8;
        }

        // Signed over the changed bytes: exercises the parser.
        let resigned = receive(
            &signed_headers("workflow_job", &body),
            &body,
            &secret,
            &config,
        );
        assert_ok_or_4xx(&resigned, &format!("round {round}, re-signed"));

        // Signed over the original bytes: must fail authentication unless nothing changed.
        let stale = receive(
            &signed_headers("workflow_job", OWN_QUEUED),
            &body,
            &secret,
            &config,
        );
        if body != OWN_QUEUED {
            assert!(
                matches!(stale, Err(WebhookError::SignatureMismatch { .. })),
                "round {round}: {stale:?}"
            );
        }
    }
}
