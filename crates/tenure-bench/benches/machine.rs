//! Criterion micro-benchmark of the sans-IO machines: one whole candidacy
//! (leader, follower) and one keep-alive round, driven by hand.
//! Divide by the inputs per cycle (`tenure_bench::transitions`) for the
//! cost per transition; `tenure-bench` reports that division directly.

use criterion::{Criterion, Throughput};
use tenure_bench::transitions::{
    follower_cycle, keepalive_cycle, leader_cycle, Fixture, FOLLOWER_CYCLE_TRANSITIONS,
    KEEPALIVE_CYCLE_TRANSITIONS, LEADER_CYCLE_TRANSITIONS,
};

fn machine(c: &mut Criterion) {
    let f = Fixture::new();
    let mut g = c.benchmark_group("election machine");
    g.throughput(Throughput::Elements(LEADER_CYCLE_TRANSITIONS));
    g.bench_function("leader cycle", |b| b.iter(|| leader_cycle(&f)));
    g.throughput(Throughput::Elements(FOLLOWER_CYCLE_TRANSITIONS));
    g.bench_function("follower cycle", |b| b.iter(|| follower_cycle(&f)));
    g.finish();
    let mut g = c.benchmark_group("lease keeper");
    g.throughput(Throughput::Elements(KEEPALIVE_CYCLE_TRANSITIONS));
    g.bench_function("keep-alive round", |b| b.iter(|| keepalive_cycle(&f, 1)));
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    machine(&mut c);
    c.final_summary();
}
