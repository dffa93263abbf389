//! Fuzzes the `workflow_job` parser and the whole receive path behind a valid signature.
//!
//! The first input byte picks the `Content-Type` header; the rest is the body. The body is
//! signed with the test secret, so every input gets past the signature check and reaches
//! the header checks, the parser and the decision. The target fails on a panic, and on a
//! rejection with a status other than 400 or 415.
#![no_main]

use libfuzzer_sys::fuzz_target;
use myshoes::model::GitHubHost;
use myshoes::profile::{LabelMatchMode, Profiles, RunnerProfile};
use myshoes::secret::Secret;
use myshoes::webhook::{receive, sign_sha256, DecideConfig, Event, ReceiverConfig, WebhookHeaders};

const CONTENT_TYPES: [Option<&str>; 4] = [
    None,
    Some("application/json"),
    Some("application/x-www-form-urlencoded"),
    Some("application/json; charset=utf-8"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()];
    let _ = Event::parse("workflow_job", content_type, body);

    let secret = Secret::new("fuzz-secret");
    let signature = sign_sha256(&secret, body);
    let mut pairs = vec![
        ("X-GitHub-Event", "workflow_job"),
        ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ("X-Hub-Signature-256", signature.as_str()),
    ];
    if let Some(content_type) = content_type {
        pairs.push(("Content-Type", content_type));
    }
    let profiles = Profiles::new(
        vec![RunnerProfile::new("linux", ["self-hosted", "linux", "x64"])],
        LabelMatchMode::Subset,
    )
    .expect("the profile is valid");
    let config = ReceiverConfig::new(DecideConfig::new(profiles, GitHubHost::github_com()));
    if let Err(error) = receive(&WebhookHeaders::from_pairs(pairs), body, &secret, &config) {
        let status = error.status_code();
        assert!(
            status == 400 || status == 415,
            "signed delivery got {status}: {error}"
        );
    }
});
