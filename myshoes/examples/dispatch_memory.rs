//! Pushes one million jobs through the dispatcher on one set of in-memory backends and
//! prints the resident memory every 100,000 jobs, to show that it stays flat.
//!
//! `cargo run --release -p myshoes --example dispatch_memory [JOBS]`
//!
//! Runners finish right after their launch, and a sweeper pass removes their records and
//! gives back their slots after every 1,000 jobs. The Datastore's deduplication, claim and
//! runner-record windows are zero here, which is the steady state a real deployment
//! reaches once its windows (24 hours by default) have passed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use myshoes::sweeper::{Sweeper, SweeperConfig};

#[path = "../benches/support/dispatch_fake.rs"]
mod dispatch_fake;

const ROUND: usize = 1_000;
const REPORT_EVERY: usize = 100_000;

/// Returns the process's resident set size in KiB, from /proc.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let jobs: usize = std::env::args()
        .nth(1)
        .map(|arg| arg.parse().expect("JOBS must be a number"))
        .unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let bench = dispatch_fake::Bench::new(Duration::ZERO).await;
        let mut config = SweeperConfig::default();
        config.boot_grace = Duration::ZERO;
        config.listing_grace = Duration::ZERO;
        let sweeper = Sweeper::new(bench.datastore.clone(), bench.stadium.clone(), None, config);
        let started = Instant::now();
        let mut done = 0;
        println!("{:>10} {:>10} {:>12}", "jobs", "rss_kib", "jobs_per_s");
        while done < jobs {
            bench.enqueue(ROUND).await;
            assert_eq!(bench.dispatch_all().await, ROUND);
            for (instance, _) in bench.stadium.running() {
                bench.stadium.finish(&instance.cloud_id);
            }
            let report = sweeper.sweep().await.unwrap();
            assert_eq!(report.deleted(), ROUND);
            done += ROUND;
            if done % REPORT_EVERY == 0 {
                let rate = done as f64 / started.elapsed().as_secs_f64();
                println!("{done:>10} {:>10} {rate:>12.0}", rss_kib());
            }
        }
        drop(Arc::clone(&bench.datastore));
    });
}
