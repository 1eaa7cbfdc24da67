//! The deployment recipes of docs/operations.md, run as written: the
//! Kubernetes sidecar's `args` and the systemd unit's `ExecStart`, read
//! from the document, against a real etcd server with authentication
//! (the password from a file, as the recipes have it). Only the backend,
//! the listening port (0), the password file and the command run as
//! leader are the test's own.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::Running;
use nix::sys::signal::Signal;
use tenure_testkit::etcd_server::EtcdServer;

const PASSWORD: &str = "recipe-pw";

fn operations_md() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/operations.md");
    std::fs::read_to_string(path).unwrap()
}

/// The text after `prefix` on the first line of `doc` that starts with it
/// (after indentation).
fn line_after<'a>(doc: &'a str, prefix: &str) -> &'a str {
    doc.lines()
        .map(str::trim_start)
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in docs/operations.md"))
}

/// A server with auth on, where `user` may use keys under `prefix`.
async fn server(user: &str, prefix: &str) -> (EtcdServer, String) {
    let server = EtcdServer::start()
        .await
        .unwrap_or_else(|e| panic!("cannot start etcd: {e}"));
    server
        .enable_auth_with_prefix_user(user, PASSWORD, prefix)
        .await
        .unwrap();
    let url = format!("etcd://{}", server.endpoint().trim_start_matches("http://"));
    (server, url)
}

/// Writes the password file and the command run as leader (a loop that
/// exits 0 on SIGTERM) into `dir`.
fn files(dir: &Path) -> (String, String) {
    let password = dir.join("password");
    std::fs::write(&password, PASSWORD).unwrap();
    let app = dir.join("app");
    std::fs::write(
        &app,
        "#!/bin/sh\ntrap 'exit 0' TERM\nwhile :; do sleep 0.05; done\n",
    )
    .unwrap();
    std::fs::set_permissions(&app, std::fs::Permissions::from_mode(0o755)).unwrap();
    (
        password.to_str().unwrap().to_owned(),
        app.to_str().unwrap().to_owned(),
    )
}

/// `args` with each `(from, to)` replaced (whole arguments only).
fn substitute(args: &[String], swaps: &[(&str, &str)]) -> Vec<String> {
    args.iter()
        .map(|a| {
            swaps
                .iter()
                .find(|(from, _)| a == from)
                .map_or_else(|| a.clone(), |(_, to)| (*to).to_owned())
        })
        .collect()
}

fn start(label: &str, url: &str, args: &[String]) -> Running {
    let mut cmd = common::command(&args.iter().map(String::as_str).collect::<Vec<_>>());
    cmd.env("TENURE_BACKEND", url);
    Running::start_cmd(label, cmd)
}

async fn get(addr: &str, path: &str) -> u16 {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    tokio::time::timeout(
        common::PATIENCE,
        client.get(format!("http://{addr}{path}")).send(),
    )
    .await
    .unwrap()
    .unwrap()
    .status()
    .as_u16()
}

/// The Kubernetes sidecar, two replicas: only the leader is ready; on
/// SIGTERM (pod deletion) the leader stops its command, resigns and exits
/// 0, and the other replica becomes ready.
#[tokio::test(flavor = "multi_thread")]
async fn kubernetes_sidecar_recipe() {
    let doc = operations_md();
    let args: Vec<String> = serde_json::from_str(line_after(&doc, "args: ")).unwrap();
    let probes: Vec<&str> = doc
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("httpGet: {path: "))
        .filter_map(|l| l.split(',').next())
        .collect();
    assert_eq!(probes, ["/healthz", "/readyz"]);
    let election = &args[1];
    let user = &args[args.iter().position(|a| a == "--user").unwrap() + 1];
    let (_server, url) = server(user, election).await;
    let (_dir, dir) = common::temp();
    let (password, app) = files(&dir);
    let replica = |pod: &str| {
        substitute(
            &args,
            &[
                ("$(POD_NAME)", pod),
                ("/etc/tenure/password", &password),
                ("0.0.0.0:9090", "127.0.0.1:0"),
                ("/app/orders", &app),
            ],
        )
    };
    let mut a = start("pod-a", &url, &replica("pod-a"));
    let a_addr = a.expect("listening").await["addr"]
        .as_str()
        .unwrap()
        .to_owned();
    a.expect("elected").await;
    a.expect("child_started").await;
    let mut b = start("pod-b", &url, &replica("pod-b"));
    let b_addr = b.expect("listening").await["addr"]
        .as_str()
        .unwrap()
        .to_owned();
    b.expect("campaigning").await;
    assert_eq!(get(&a_addr, probes[0]).await, 200);
    assert_eq!(get(&a_addr, probes[1]).await, 200);
    assert_eq!(get(&b_addr, probes[0]).await, 200);
    assert_eq!(get(&b_addr, probes[1]).await, 503);

    a.signal(Signal::SIGTERM);
    let signalled = a.expect("child_signalled").await;
    assert_eq!(signalled["signal"], "SIGTERM");
    a.expect("resigned").await;
    assert_eq!(a.wait().await.code(), Some(0), "{}", a.stderr());
    b.expect("elected").await;
    assert_eq!(get(&b_addr, probes[1]).await, 200);
    b.signal(Signal::SIGTERM);
    assert_eq!(b.wait().await.code(), Some(0), "{}", b.stderr());
    // The password went nowhere.
    for t in [&a, &b] {
        assert!(!t.stderr().contains(PASSWORD));
    }
}

/// The systemd unit's `ExecStart`: leads, answers `/healthz` and
/// `/readyz` on its port, and on `systemctl stop` (SIGTERM to tenure
/// alone, `KillMode=mixed`) stops the command, resigns and exits 0 (a
/// clean stop: no restart). The exit codes the unit refuses to restart
/// on (2, 127) are what a bad password file or a missing command give.
#[tokio::test(flavor = "multi_thread")]
async fn systemd_unit_recipe() {
    let doc = operations_md();
    assert_eq!(line_after(&doc, "KillMode="), "mixed");
    assert_eq!(line_after(&doc, "KillSignal="), "SIGTERM");
    assert_eq!(line_after(&doc, "RestartPreventExitStatus="), "2 126 127");
    let exec: Vec<String> = line_after(&doc, "ExecStart=")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let args = &exec[1..]; // the binary's path is the test's own
    let election = &args[1];
    let user = &args[args.iter().position(|a| a == "--user").unwrap() + 1];
    let (_server, url) = server(user, election).await;
    let (_dir, dir) = common::temp();
    let (password, app) = files(&dir);
    let unit = |password: &str, app: &str| {
        substitute(
            args,
            &[
                ("/etc/tenure/password", password),
                ("127.0.0.1:9091", "127.0.0.1:0"),
                ("/usr/local/bin/report-loop", app),
            ],
        )
    };
    let mut t = start("unit", &url, &unit(&password, &app));
    let addr = t.expect("listening").await["addr"]
        .as_str()
        .unwrap()
        .to_owned();
    t.expect("elected").await;
    t.expect("child_started").await;
    assert_eq!(get(&addr, "/healthz").await, 200);
    assert_eq!(get(&addr, "/readyz").await, 200);
    t.signal(Signal::SIGTERM);
    t.expect("resigned").await;
    assert_eq!(t.wait().await.code(), Some(0), "{}", t.stderr());

    let missing: PathBuf = dir.join("no-such-file");
    let mut bad = common::command(
        &unit(missing.to_str().unwrap(), &app)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    bad.env("TENURE_BACKEND", &url);
    assert_eq!(common::run_cmd(bad).await.code, Some(2));
    let mut gone = common::command(
        &unit(&password, dir.join("no-such-command").to_str().unwrap())
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    gone.env("TENURE_BACKEND", &url);
    assert_eq!(common::run_cmd(gone).await.code, Some(127));
}
