#!/usr/bin/env bash
# Runs the `validators` example against a real etcd: starts etcd on free
# loopback ports in a temporary directory, runs the example with
# `--backend etcd://…`, and removes both on exit (success, failure or
# interrupt).
set -euo pipefail
cd "$(dirname "$0")/.."

dir=$(mktemp -d "${TMPDIR:-/tmp}/tenure-validators-etcd.XXXXXX")
etcd_pid=""
cleanup() {
  if [ -n "$etcd_pid" ]; then
    kill "$etcd_pid" 2>/dev/null || true
    wait "$etcd_pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

# Two free loopback ports (client, peer), chosen by the kernel.
read -r client peer < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
PY
)
url="http://127.0.0.1:$client"
etcd --name validators --data-dir "$dir/data" \
  --listen-client-urls "$url" --advertise-client-urls "$url" \
  --listen-peer-urls "http://127.0.0.1:$peer" \
  --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
  --initial-cluster "validators=http://127.0.0.1:$peer" \
  --initial-cluster-state new \
  --heartbeat-interval 25 --election-timeout 250 \
  >"$dir/etcd.log" 2>&1 &
etcd_pid=$!

# Ready when it answers (bounded: a server that never comes up fails the step).
for _ in $(seq 1 100); do
  if etcdctl --endpoints="$url" endpoint health >/dev/null 2>&1; then
    break
  fi
  if ! kill -0 "$etcd_pid" 2>/dev/null; then
    echo "etcd exited at start-up:" >&2
    cat "$dir/etcd.log" >&2
    exit 1
  fi
  sleep 0.1
done
etcdctl --endpoints="$url" endpoint health >/dev/null

cargo run --features etcd --example validators -- --backend "etcd://127.0.0.1:$client"
