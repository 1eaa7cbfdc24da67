#!/usr/bin/env bash
# The whole test suite: installs what is missing (protoc, etcd, etcdctl,
# ZooKeeper), then runs every test of every crate, including the property
# tests and the conformance suite against the in-memory backend and the
# real etcd and ZooKeeper servers the tests start themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# At least 256 cases per property (proptest's default; set explicitly so a
# stray environment cannot lower it).
export PROPTEST_CASES="${PROPTEST_CASES:-256}"
# Every backend compiled into the facade too (`--all-features`), so the
# by-URL tests reach real etcd and ZooKeeper; then the facade alone on its
# default features, as most users build it.
cargo test --workspace --all-features --no-fail-fast "$@"
cargo test -p tenure --lib --no-fail-fast "$@"
