//! Runs one webhook benchmark case a given number of times, for instruction counting.
//!
//! Wall-clock ratios on a shared virtual machine drift from run to run; instruction counts
//! under callgrind repeat exactly. `docs/benchmarks.md` records both. Usage:
//!
//! ```sh
//! cargo build --release -p myshoes --example webhook_cases
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/webhook_cases receive 200
//! ```
//!
//! Cases: `none` (set-up only, to subtract), `floor` (one HMAC-SHA256 plus one `serde_json`
//! pass that skips every value), and `receive` (signature, parse and decision).

use std::hint::black_box;
use std::process::ExitCode;

use hmac::{Hmac, Mac};
use myshoes::model::GitHubHost;
use myshoes::profile::{LabelMatchMode, Profiles, RunnerProfile};
use myshoes::secret::Secret;
use myshoes::webhook::{receive, sign_sha256, DecideConfig, ReceiverConfig, WebhookHeaders};
use sha2::Sha256;

const BODY: &[u8] = include_bytes!("../tests/fixtures/workflow_job_queued.json");
const SECRET: &str = "benchmark-secret";

fn floor() {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(black_box(BODY));
    black_box(mac.finalize());
    let parsed = serde_json::from_slice::<serde::de::IgnoredAny>(black_box(BODY));
    black_box(parsed.expect("the fixture is valid JSON"));
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(case), Some(count)) = (args.get(1), args.get(2).and_then(|n| n.parse::<u32>().ok()))
    else {
        eprintln!("usage: webhook_cases none|floor|receive COUNT");
        return ExitCode::FAILURE;
    };

    let secret = Secret::new(SECRET);
    let signature = sign_sha256(&secret, BODY);
    let headers = WebhookHeaders::from_pairs([
        ("X-GitHub-Event", "workflow_job"),
        ("X-GitHub-Delivery", "9f8e7d6c-5b4a-11f0-8a1b-0242ac120002"),
        ("X-Hub-Signature-256", signature.as_str()),
        ("Content-Type", "application/json"),
    ]);
    let profiles = Profiles::new(
        vec![
            RunnerProfile::new("k8s", ["k8s"]),
            RunnerProfile::new("linux-x64", ["linux", "x64"]),
        ],
        LabelMatchMode::Subset,
    )
    .expect("valid profiles");
    let config = ReceiverConfig::new(DecideConfig::new(profiles, GitHubHost::github_com()));

    for _ in 0..count {
        match case.as_str() {
            "none" => {}
            "floor" => floor(),
            "receive" => {
                let received = receive(black_box(&headers), black_box(BODY), &secret, &config);
                black_box(received.expect("the fixture is accepted"));
            }
            other => {
                eprintln!("unknown case {other:?}: use none, floor or receive");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
