//! Property tests of `webhook::receive` over generated bodies, headers and signatures:
//! it never panics, an unauthenticated delivery is always 401, an authenticated one is
//! never 401, and only an accepted `queued` delivery yields a job to enqueue.

use myshoes::model::GitHubHost;
use myshoes::profile::{LabelMatchMode, Profiles, RunnerProfile};
use myshoes::secret::Secret;
use myshoes::webhook::{
    receive, sign_sha1, sign_sha256, DecideConfig, Decision, ReceiverConfig, WebhookHeaders,
};
use proptest::prelude::*;

const SECRET: &str = "property-test-secret";
const DELIVERY: &str = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
const QUEUED: &[u8] = include_bytes!("fixtures/workflow_job_queued.json");

/// Returns `PROPTEST_CASES` when set, and `default` otherwise. An explicit `cases` in a
/// proptest config would ignore the variable.
fn case_count(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn config() -> ReceiverConfig {
    let profiles = Profiles::new(
        vec![RunnerProfile::new("linux", ["self-hosted", "linux", "x64"])],
        LabelMatchMode::Subset,
    )
    .unwrap();
    ReceiverConfig::new(DecideConfig::new(profiles, GitHubHost::github_com()))
}

fn proptest_config() -> ProptestConfig {
    ProptestConfig {
        cases: case_count(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Header names in the spellings GitHub and proxies use.
fn header_name(canonical: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        Just(canonical.to_owned()),
        Just(canonical.to_ascii_lowercase()),
        Just(canonical.to_ascii_uppercase()),
    ]
}

fn optional_value(known: &'static [&'static str]) -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        Just(None),
        proptest::sample::select(known).prop_map(|value| Some(value.as_bytes().to_vec())),
        proptest::collection::vec(any::<u8>(), 0..80).prop_map(Some),
    ]
}

/// `X-GitHub-Event`, `X-GitHub-Delivery`, `Content-Type` and `X-GitHub-Enterprise-Host`
/// headers, each absent, a known value or arbitrary bytes.
fn other_headers() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    (
        header_name("X-GitHub-Event"),
        optional_value(&["workflow_job", "ping", "push", ""]),
        header_name("X-GitHub-Delivery"),
        optional_value(&[DELIVERY, ""]),
        header_name("Content-Type"),
        optional_value(&[
            "application/json",
            "application/x-www-form-urlencoded",
            "text/plain",
            "application/json; charset=utf-8",
        ]),
        header_name("X-GitHub-Enterprise-Host"),
        optional_value(&["ghe.example.com", "not a host"]),
    )
        .prop_map(|(en, ev, dn, dv, cn, cv, hn, hv)| {
            [(en, ev), (dn, dv), (cn, cv), (hn, hv)]
                .into_iter()
                .filter_map(|(name, value)| value.map(|value| (name, value)))
                .collect()
        })
}

/// Bodies: arbitrary bytes, or the recorded `queued` delivery with random bytes changed.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 0..6).prop_map(
            |edits| {
                let mut body = QUEUED.to_vec();
                for (index, byte) in edits {
                    let position = index.index(body.len());
                    body[position] = byte;
                }
                body
            }
        ),
    ]
}

/// Signature headers that do not authenticate `body` under `SECRET`: missing, malformed,
/// signed with another secret, signed over another body, or SHA-1 only.
fn wrong_signature(body: Vec<u8>) -> impl Strategy<Value = Option<(String, Vec<u8>)>> {
    let other_secret = Secret::new("another-secret");
    let bad_secret = sign_sha256(&other_secret, &body);
    let mut other_body = body.clone();
    other_body.push(b' ');
    let bad_body = sign_sha256(&Secret::new(SECRET), &other_body);
    let sha1 = sign_sha1(&Secret::new(SECRET), &body);
    prop_oneof![
        Just(None),
        proptest::collection::vec(any::<u8>(), 0..90)
            .prop_map(|value| Some(("X-Hub-Signature-256".to_owned(), value))),
        "sha256=[0-9a-f]{64}"
            .prop_map(|value| Some(("x-hub-signature-256".to_owned(), value.into_bytes()))),
        Just(Some((
            "X-Hub-Signature-256".to_owned(),
            bad_secret.into_bytes()
        ))),
        Just(Some((
            "X-Hub-Signature-256".to_owned(),
            bad_body.into_bytes()
        ))),
        Just(Some(("X-Hub-Signature".to_owned(), sha1.into_bytes()))),
    ]
}

fn headers_from(pairs: &[(String, Vec<u8>)]) -> WebhookHeaders {
    WebhookHeaders::from_pairs(
        pairs
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_slice())),
    )
}

proptest! {
    #![proptest_config(proptest_config())]

    /// Whatever else the request carries, a delivery without a valid HMAC-SHA256 of its
    /// body is rejected with 401 and yields nothing to enqueue.
    #[test]
    fn unauthenticated_delivery_is_401(
        (body, signature) in body().prop_flat_map(|body| (Just(body.clone()), wrong_signature(body))),
        mut headers in other_headers(),
    ) {
        headers.extend(signature);
        let result = receive(&headers_from(&headers), &body, &Secret::new(SECRET), &config());
        match result {
            Ok(received) => prop_assert!(false, "accepted without a valid signature: {received:?}"),
            Err(error) => prop_assert_eq!(error.status_code(), 401, "{}", error),
        }
    }

    /// A correctly signed delivery is never 401, and any rejection is 400 or 415, with
    /// 415 exactly for a content type other than JSON or a form.
    #[test]
    fn authenticated_delivery_is_never_401(
        body in body(),
        content_type in prop_oneof![
            Just(None),
            Just(Some("application/json")),
            Just(Some("application/x-www-form-urlencoded")),
            Just(Some("text/plain")),
        ],
    ) {
        let signature = sign_sha256(&Secret::new(SECRET), &body);
        let mut pairs = vec![
            ("X-GitHub-Event", "workflow_job"),
            ("X-GitHub-Delivery", DELIVERY),
            ("X-Hub-Signature-256", signature.as_str()),
        ];
        if let Some(content_type) = content_type {
            pairs.push(("Content-Type", content_type));
        }
        let result = receive(&WebhookHeaders::from_pairs(pairs), &body, &Secret::new(SECRET), &config());
        match result {
            Ok(_) => prop_assert_ne!(content_type, Some("text/plain")),
            Err(error) => {
                let expected = if content_type == Some("text/plain") { 415 } else { 400 };
                prop_assert_eq!(error.status_code(), expected, "{}", error);
            }
        }
    }

    /// Changing one byte of a signed delivery's body, or one character of its signature,
    /// turns an accepted delivery into a 401.
    #[test]
    fn tampered_delivery_is_401(
        position in any::<proptest::sample::Index>(),
        flip in 1u8..=255,
        tamper_signature in any::<bool>(),
    ) {
        let secret = Secret::new(SECRET);
        let mut body = QUEUED.to_vec();
        let mut signature = sign_sha256(&secret, &body).into_bytes();
        let accepted = receive(
            &WebhookHeaders::from_pairs([
                ("X-GitHub-Event", "workflow_job".as_bytes()),
                ("X-GitHub-Delivery", DELIVERY.as_bytes()),
                ("X-Hub-Signature-256", signature.as_slice()),
            ]),
            &body,
            &secret,
            &config(),
        )
        .unwrap();
        prop_assert!(matches!(accepted.decision, Decision::Enqueue(_)), "{:?}", accepted);

        if tamper_signature {
            // Only the hex digits after `sha256=`.
            let index = 7 + position.index(signature.len() - 7);
            signature[index] = if signature[index] == b'0' { b'1' } else { b'0' };
        } else {
            let index = position.index(body.len());
            body[index] ^= flip;
        }
        let error = receive(
            &WebhookHeaders::from_pairs([
                ("X-GitHub-Event", "workflow_job".as_bytes()),
                ("X-GitHub-Delivery", DELIVERY.as_bytes()),
                ("X-Hub-Signature-256", signature.as_slice()),
            ]),
            &body,
            &secret,
            &config(),
        )
        .unwrap_err();
        prop_assert_eq!(error.status_code(), 401, "{}", error);
    }
}
