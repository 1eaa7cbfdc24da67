# tenure tasks. Each recipe wraps a script so that nothing needs `just`.

# Run the whole test suite (installs etcd, ZooKeeper, protoc if missing).
test *ARGS:
    scripts/test.sh {{ARGS}}

# Three candidates on the in-memory backend.
quickstart:
    cargo run --example quickstart

# Formatting and lints, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# API docs, warnings as errors.
doc:
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

# Everything CI runs.
ci:
    .ci/run
