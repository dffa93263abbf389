//! Dispatch throughput: queued jobs to launched runners through `MemoryDatastore`,
//! `MemoryStadium` and an in-process GitHub, on one thread.
//!
//! `cargo bench -p myshoes --bench dispatch`. Each iteration enqueues a batch, dispatches
//! it (still-queued check, launch claim, two runner slots, JIT credential, setup script,
//! instance, runner record, acknowledgement) on a fresh set of backends. The memory side,
//! one million jobs through one set of backends, is `examples/dispatch_memory.rs`.

use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput};

#[path = "support/dispatch_fake.rs"]
mod dispatch_fake;

use dispatch_fake::Bench;

const BATCH: usize = 1_000;

fn dispatch(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("dispatch");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("memory_backends_1000_jobs", |b| {
        b.iter_batched(
            || {
                runtime.block_on(async {
                    let bench = Bench::new(Duration::from_secs(3600)).await;
                    bench.enqueue(BATCH).await;
                    bench
                })
            },
            |bench| {
                let launched = runtime.block_on(bench.dispatch_all());
                assert_eq!(launched, BATCH);
                bench
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

// Written out instead of `criterion_group!`, whose generated public function has no docs.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    dispatch(&mut criterion);
    criterion.final_summary();
}
