#!/usr/bin/env bash
# Installs what the full test suite needs beyond Rust: protoc (to build
# etcd-client), real etcd, ZooKeeper and PostgreSQL servers, etcdctl for
# interop tests, and the foreign election participants of the ZooKeeper interop
# tests: kazoo (Python) and Apache Curator's jars (run with the system
# Java). Idempotent: installs only what is missing. Needs root (or sudo)
# for apt.
set -euo pipefail

need=()
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
# etcd-client's protos import google/protobuf/descriptor.proto, which
# Debian ships in libprotobuf-dev (only recommended by protobuf-compiler).
[ -f /usr/include/google/protobuf/descriptor.proto ] || need+=(libprotobuf-dev)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
[ -x /usr/share/zookeeper/bin/zkServer.sh ] || need+=(zookeeper)
# PostgreSQL (the tests run initdb/postgres from /usr/lib/postgresql/*/bin
# as an unprivileged user; psql and pg_isready come with it).
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || need+=(postgresql)
command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
# ZooKeeper's TLS port (the Netty connection factory) needs Netty's codec
# and resolver jars, which its manifest does not name (tenure-testkit's
# TLS servers).
[ -f /usr/share/java/netty-codec.jar ] || need+=(libnetty-java)
# Curator LeaderLatch (tests/interop.rs of tenure-zookeeper); the
# packages pull in curator-client, zookeeper, guava and slf4j jars.
[ -f /usr/share/java/curator-recipes.jar ] || need+=(libcurator-recipes-java)
[ -f /usr/share/java/curator-framework.jar ] || need+=(libcurator-framework-java)
# A real headless browser for the status page test of `tenure observe
# --all --listen` (tenure-cli's tests/status_page.rs).
command -v chromium >/dev/null 2>&1 || need+=(chromium)

# kazoo, for whichever Python the interop test finds: python3 on the
# PATH, or Debian's /usr/bin/python3 (where python3-kazoo installs).
kazoo_present() {
  local py
  for py in python3 /usr/bin/python3; do
    "$py" -c 'import kazoo.recipe.election' >/dev/null 2>&1 && return 0
  done
  return 1
}
want_kazoo=0
kazoo_present || want_kazoo=1

if [ ${#need[@]} -eq 0 ] && [ "$want_kazoo" -eq 0 ]; then
  echo "install-deps: everything present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
pip_kazoo=0
if [ "$want_kazoo" -eq 1 ]; then
  # Debian's package when the release has one, else PyPI.
  # (Captured first: with pipefail, grep -q closing the pipe early would
  # fail the pipeline.)
  policy=$(apt-cache policy python3-kazoo 2>/dev/null || true)
  if grep -q 'Candidate: [0-9]' <<<"$policy"; then
    need+=(python3-kazoo)
  else
    pip_kazoo=1
  fi
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "install-deps: installing ${need[*]}"
  $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
fi
if [ "$pip_kazoo" -eq 1 ]; then
  echo "install-deps: python3-kazoo not in apt; pip install kazoo"
  if ! python3 -m pip install kazoo; then
    echo "install-deps: pip install kazoo failed; install kazoo into some" \
      "Python 3 and point TENURE_PYTHON at it" >&2
    exit 1
  fi
fi
