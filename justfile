# tenure tasks. Each recipe wraps a script so that nothing needs `just`.

# Run the whole test suite (installs etcd, ZooKeeper, protoc if missing).
test *ARGS:
    scripts/test.sh {{ARGS}}

# Three candidates on the in-memory backend.
quickstart:
    cargo run --example quickstart

# The other examples (compare_backends starts its own etcd and ZooKeeper).
examples:
    cargo run --example leader_gated_job
    cargo run --example validators
    cargo run --features etcd,zookeeper --example compare_backends

# The `tenure` command (every backend compiled in; etcd needs protoc), e.g.
# just cli --backend memory:// campaign demo --once -- sh -c 'echo token $TENURE_TOKEN'
cli *ARGS:
    cargo run -q -p tenure-cli -- {{ARGS}}

# Benchmark suite: installs etcd, ZooKeeper, kazoo if missing; writes
# target/bench/report.md and latency.svg (about 11 minutes).
bench *ARGS:
    crates/tenure-bench/run.sh {{ARGS}}

# Quick benchmark run (about a minute once built) that keeps the benchmark
# code working; no pass/fail on timings.
bench-quick:
    crates/tenure-bench/run.sh --quick --out target/bench-quick

# Fault campaign, short (what CI runs): 30 faults on each of etcd, a
# 3-member etcd, ZooKeeper and a 3-server ensemble, in a minute or two;
# the seed is printed (replay with CHAOS_SEED=<seed>).
chaos *ARGS:
    crates/tenure-chaos/run.sh short {{ARGS}}

# Long fault campaign: 1,000 faults on each backend (about 35 minutes);
# summary in target/chaos-long/summary.md (see docs/reliability.md).
chaos-long *ARGS:
    crates/tenure-chaos/run.sh long {{ARGS}}

# Formatting and lints, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --all-features -- -D warnings

# API docs, warnings as errors.
doc:
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features

# Everything CI runs.
ci:
    .ci/run
