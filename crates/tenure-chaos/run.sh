#!/usr/bin/env bash
# The fault campaign, short or long, in one command.
#
#   crates/tenure-chaos/run.sh short [extra tenure-chaos flags]
#       CI's version: every backend (etcd, etcd 3-member, ZooKeeper,
#       ZooKeeper 3-server, PostgreSQL) concurrently, 30 faults each, a fresh seed
#       printed first (replay with --seed). A few minutes.
#   crates/tenure-chaos/run.sh long [extra flags]
#       The long campaign: 1,000 faults on each of the five backends
#       (2,000 per backend family), concurrently, logs in
#       ${CHAOS_OUT:-target/chaos-long}. About 40 minutes.
#
# Installs etcd, ZooKeeper, PostgreSQL and protoc first if they are missing. Exits
# non-zero on any violation (and prints the replay command).
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/install-deps.sh
mode="${1:-short}"
shift || true
cargo build -p tenure-chaos --bins
bin="${CARGO_TARGET_DIR:-target}/debug/tenure-chaos"
seed="${CHAOS_SEED:-$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')}"
case "$mode" in
  short)
    exec "$bin" --backend all --parallel --faults 30 --seed "$seed" \
      --out "${CHAOS_OUT:-target/chaos/$seed}" "$@" ;;
  long)
    exec "$bin" --backend all --parallel --faults 1000 --seed "$seed" \
      --out "${CHAOS_OUT:-target/chaos-long}" "$@" ;;
  *)
    echo "usage: $0 short|long [tenure-chaos flags]" >&2
    exit 2 ;;
esac
