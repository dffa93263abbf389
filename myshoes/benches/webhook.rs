//! Compares the full webhook receiver with the least work any receiver must do.
//!
//! All cases run on `tests/fixtures/workflow_job_queued.json`, a compact 7.5 KB
//! `workflow_job` delivery:
//!
//! - `receive`: HMAC-SHA256 verification, one-pass parsing and the profile decision.
//! - `headers_and_receive`: the same, plus building [`WebhookHeaders`] from header pairs.
//! - `floor`: one HMAC-SHA256 of the body plus one `serde_json` pass that skips every value.
//!
//! Run with `cargo bench -p myshoes --bench webhook`. The `receive` median should stay
//! within 1.5 times the `floor` median.
//!
//! Criterion measures one case after the other, so a machine whose speed drifts (a shared
//! virtual machine, for example) can skew the ratio of two medians. After the Criterion
//! report, the binary therefore also times `receive` and `floor` in alternating rounds and
//! prints the median of the per-round ratios.

use std::hint::black_box;
use std::time::Instant;

use criterion::Criterion;
use hmac::{Hmac, Mac};
use myshoes::model::GitHubHost;
use myshoes::profile::{LabelMatchMode, Profiles, RunnerProfile};
use myshoes::secret::Secret;
use myshoes::webhook::{
    receive, sign_sha256, DecideConfig, Decision, Received, ReceiverConfig, WebhookError,
    WebhookHeaders,
};
use sha2::Sha256;

const BODY: &[u8] = include_bytes!("../tests/fixtures/workflow_job_queued.json");
const SECRET: &str = "benchmark-secret";

/// Rounds of the alternating comparison, and calls of each case per round.
const RATIO_ROUNDS: usize = 101;
const CALLS_PER_ROUND: u32 = 200;

/// Everything `receive` needs, built once.
struct Fixture {
    secret: Secret,
    signature: String,
    config: ReceiverConfig,
    headers: WebhookHeaders,
}

impl Fixture {
    fn new() -> Self {
        let profiles = Profiles::new(
            vec![
                RunnerProfile::new("k8s", ["k8s"]),
                RunnerProfile::new("linux-x64", ["linux", "x64"]),
            ],
            LabelMatchMode::Subset,
        )
        .expect("valid profiles");
        let secret = Secret::new(SECRET);
        let signature = sign_sha256(&secret, BODY);
        let mut fixture = Self {
            secret,
            signature,
            config: ReceiverConfig::new(DecideConfig::new(profiles, GitHubHost::github_com())),
            headers: WebhookHeaders::new(),
        };
        fixture.headers = WebhookHeaders::from_pairs(fixture.header_pairs());
        fixture
    }

    fn header_pairs(&self) -> [(&str, &str); 4] {
        [
            ("X-GitHub-Event", "workflow_job"),
            ("X-GitHub-Delivery", "9f8e7d6c-5b4a-11f0-8a1b-0242ac120002"),
            ("X-Hub-Signature-256", self.signature.as_str()),
            ("Content-Type", "application/json"),
        ]
    }

    fn receive(&self) -> Result<Received, WebhookError> {
        receive(
            black_box(&self.headers),
            black_box(BODY),
            &self.secret,
            &self.config,
        )
    }

    fn headers_and_receive(&self) -> Result<Received, WebhookError> {
        let headers = WebhookHeaders::from_pairs(black_box(self.header_pairs()));
        receive(&headers, black_box(BODY), &self.secret, &self.config)
    }
}

/// Computes one HMAC-SHA256 of the body and runs one `serde_json` pass over it that keeps
/// nothing.
fn floor() -> (impl Sized, bool) {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(black_box(BODY));
    let digest = mac.finalize().into_bytes();
    let parsed = serde_json::from_slice::<serde::de::IgnoredAny>(black_box(BODY));
    (digest, parsed.is_ok())
}

fn bench_webhook(c: &mut Criterion, fixture: &Fixture) {
    let mut group = c.benchmark_group("webhook");
    group.bench_function("receive", |b| b.iter(|| fixture.receive()));
    group.bench_function("headers_and_receive", |b| {
        b.iter(|| fixture.headers_and_receive())
    });
    group.bench_function("floor", |b| b.iter(floor));
    group.finish();
}

/// Returns the mean time of one call of `case` over [`CALLS_PER_ROUND`] calls, in µs.
fn time_round<R>(mut case: impl FnMut() -> R) -> f64 {
    let start = Instant::now();
    for _ in 0..CALLS_PER_ROUND {
        black_box(case());
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(CALLS_PER_ROUND)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Prints the medians of `receive` and `floor` timed in alternating rounds, and the median
/// of their per-round ratios.
fn print_alternating_ratio(fixture: &Fixture) {
    let mut receive_times = Vec::with_capacity(RATIO_ROUNDS);
    let mut floor_times = Vec::with_capacity(RATIO_ROUNDS);
    let mut ratios = Vec::with_capacity(RATIO_ROUNDS);
    for _ in 0..RATIO_ROUNDS {
        let floor_time = time_round(floor);
        let receive_time = time_round(|| fixture.receive());
        ratios.push(receive_time / floor_time);
        receive_times.push(receive_time);
        floor_times.push(floor_time);
    }
    println!(
        "alternating rounds ({RATIO_ROUNDS} x {CALLS_PER_ROUND} calls): receive median \
         {:.2} µs, floor median {:.2} µs, median ratio {:.2}",
        median(&mut receive_times),
        median(&mut floor_times),
        median(&mut ratios),
    );
}

// Written out instead of `criterion_group!`, whose generated public function has no docs.
fn main() {
    let fixture = Fixture::new();
    let received = fixture.receive().expect("the fixture is accepted");
    assert!(
        matches!(received.decision, Decision::Enqueue(_)),
        "the fixture must be enqueued, got {:?}",
        received.decision
    );

    let mut criterion = Criterion::default().configure_from_args();
    bench_webhook(&mut criterion, &fixture);
    criterion.final_summary();

    // `cargo bench` passes `--bench`. Without it (`cargo test --benches`), Criterion runs each
    // case once as a smoke test, and the timing rounds are skipped too.
    if std::env::args().any(|arg| arg == "--bench") {
        print_alternating_ratio(&fixture);
    }
}
