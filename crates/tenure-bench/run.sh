#!/usr/bin/env bash
# tenure's benchmark suite, from a fresh machine: installs what it needs
# (scripts/install-deps.sh: etcd, etcdctl, ZooKeeper, protoc, kazoo),
# builds the bench and the `tenure` CLI in release mode, runs every section
# and the criterion micro-benchmark of the state machine.
#
#   crates/tenure-bench/run.sh            full run (~10 min): target/bench/report.md + latency.svg
#   crates/tenure-bench/run.sh --quick    smoke run (< 2 min once built), for CI
#
# Other arguments go to `tenure-bench` (e.g. `--only handover`, `--out DIR`).
set -euo pipefail
cd "$(dirname "$0")/../.."

scripts/install-deps.sh

quick=0
for arg in "$@"; do
  [ "$arg" = "--quick" ] && quick=1
done

# The bench finds `tenure` next to its own binary (same target directory).
cargo build --release -p tenure-cli -p tenure-bench
cargo run --release -q -p tenure-bench -- "$@"

if [ "$quick" -eq 1 ]; then
  cargo bench -q -p tenure-bench --bench machine -- --quick
else
  cargo bench -q -p tenure-bench --bench machine
fi
