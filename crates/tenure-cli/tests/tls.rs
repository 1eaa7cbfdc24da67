//! `tenure` as processes against an mTLS etcd and a TLS ZooKeeper, with
//! `--cacert`, `--cert`, `--key`, `--user` and `--password-file`: a
//! session works, the password shows nowhere (output, logs, JSON events,
//! the gated command's environment), and a refused certificate is exit 3
//! naming the cause.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{command, run_cmd, wait_for_file, Running};
use nix::sys::signal::Signal;
use tenure_testkit::etcd_server::EtcdServer;
use tenure_testkit::pki::{CertFiles, TestPki};
use tenure_testkit::zk_server::{ZkServer, ZkServerConfig};

/// The password: a string that cannot appear anywhere by chance.
const PASSWORD: &str = "pw-7f3a9c1e5b";

fn s(path: &Path) -> String {
    path.display().to_string()
}

/// The TLS flags for `client`.
fn tls_flags(pki: &TestPki, client: &CertFiles) -> Vec<String> {
    vec![
        "--cacert".into(),
        s(&pki.ca()),
        "--cert".into(),
        s(&client.cert),
        "--key".into(),
        s(&client.key),
    ]
}

/// A password file for `PASSWORD` in the PKI's directory.
fn password_file(pki: &TestPki) -> String {
    let path = pki.dir().join("password");
    std::fs::write(&path, format!("{PASSWORD}\n")).unwrap();
    s(&path)
}

/// A `tenure` command: `--backend url`, `flags`, then `args`.
fn tenure(url: &str, flags: &[String], args: &[&str]) -> tokio::process::Command {
    let mut all = vec!["--backend".to_owned(), url.to_owned()];
    all.extend(flags.iter().cloned());
    all.extend(args.iter().map(|a| (*a).to_owned()));
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    command(&refs)
}

/// Campaigns with a command that dumps its environment, reads the
/// leader, then stops; checks that the password appears in none of it.
async fn session_without_the_password_anywhere(url: &str, flags: &[String], dir: &Path) {
    let election = common::unique("tls");
    let env_dump = dir.join(format!("{election}.env"));
    let script = format!("env > {}.tmp; mv {0}.tmp {0}; exec sleep 60", s(&env_dump));
    let campaign = tenure(
        url,
        flags,
        &[
            "--output",
            "json",
            "--log-level",
            "debug",
            "campaign",
            &election,
            "node-a",
            "--ttl",
            "3s",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    let mut running = Running::start_cmd("campaign", campaign);
    let elected = running.expect("elected").await;
    assert_eq!(elected["proposal"], "node-a");
    let env = wait_for_file(&env_dump).await;
    assert!(env.contains("TENURE_TOKEN="), "{env}");
    assert!(
        !env.contains(PASSWORD),
        "the command saw the password:\n{env}"
    );

    let leader = run_cmd(tenure(
        url,
        flags,
        &[
            "--output",
            "json",
            "--log-level",
            "debug",
            "leader",
            &election,
        ],
    ))
    .await;
    assert_eq!(leader.code, Some(0), "{leader:?}");
    assert_eq!(leader.events()[0]["proposal"], "node-a");
    for text in [&leader.stdout, &leader.stderr] {
        assert!(!text.contains(PASSWORD), "{text}");
    }

    running.signal(Signal::SIGTERM);
    running.expect("resigned").await;
    assert_eq!(running.wait().await.code(), Some(0), "{}", running.stderr());
    let events = serde_json::to_string(&running.seen).unwrap();
    assert!(!events.contains(PASSWORD), "{events}");
    assert!(!running.stderr().contains(PASSWORD), "{}", running.stderr());
}

/// mTLS etcd with auth on: the client certificate gets through TLS, the
/// user `app` (password from a file) through auth, within `allowed/`.
#[tokio::test(flavor = "multi_thread")]
async fn etcd_session_over_mtls_with_a_password_file() {
    let pki = TestPki::generate().unwrap();
    let server = EtcdServer::start_tls(&pki).await.unwrap();
    server
        .enable_auth_with_prefix_user("app", PASSWORD, "allowed/")
        .await
        .unwrap();
    let client = pki.client("tenure").unwrap();
    let host = server.endpoint().trim_start_matches("https://").to_owned();
    let url = format!("etcds://{host}/allowed/");
    let mut flags = tls_flags(&pki, &client);
    flags.extend([
        "--user".to_owned(),
        "app".to_owned(),
        "--password-file".to_owned(),
        password_file(&pki),
    ]);
    session_without_the_password_anywhere(&url, &flags, pki.dir()).await;
}

/// TLS ZooKeeper with a client certificate and digest credentials from a
/// password file.
#[tokio::test(flavor = "multi_thread")]
async fn zookeeper_session_over_tls_with_a_password_file() {
    let pki = TestPki::generate().unwrap();
    let server = ZkServer::start_tls(&pki, ZkServerConfig::default())
        .await
        .unwrap();
    let client = pki.client("tenure").unwrap();
    let url = format!("zks://{}/cli-tls", server.secure_connect_string());
    let mut flags = tls_flags(&pki, &client);
    flags.extend([
        "--user".to_owned(),
        "app".to_owned(),
        "--password-file".to_owned(),
        password_file(&pki),
    ]);
    session_without_the_password_anywhere(&url, &flags, pki.dir()).await;
}

/// The flags can come from the environment (`TENURE_CACERT`, ...), and a
/// refused certificate is exit 3 naming the cause; a missing key file is
/// exit 2 naming the file; a flag that repeats a URL option is exit 2.
#[tokio::test(flavor = "multi_thread")]
async fn refused_and_missing_files_exit_with_the_cause() {
    let pki = TestPki::generate().unwrap();
    let server = EtcdServer::start_tls(&pki).await.unwrap();
    let host = server.endpoint().trim_start_matches("https://").to_owned();
    let url = format!("etcds://{host}");
    let good = pki.client("tenure").unwrap();

    let mut from_env = tenure(&url, &[], &["leader", "nobody-leads"]);
    from_env
        .env("TENURE_CACERT", pki.ca())
        .env("TENURE_CERT", &good.cert)
        .env("TENURE_KEY", &good.key);
    let r = run_cmd(from_env).await;
    assert_eq!(r.code, Some(1), "no leader, but connected: {r:?}");

    let r = run_cmd(tenure(
        &url,
        &["--cacert".into(), s(&pki.ca())],
        &["leader", "x"],
    ))
    .await;
    assert_eq!(r.code, Some(3), "{r:?}");
    assert!(r.stderr.contains("requires a client certificate"), "{r:?}");

    let expired = pki.expired_client("tenure").unwrap();
    let r = run_cmd(tenure(&url, &tls_flags(&pki, &expired), &["leader", "x"])).await;
    assert_eq!(r.code, Some(3), "{r:?}");
    assert!(r.stderr.contains("refused the client certificate"), "{r:?}");

    let missing = pki.dir().join("no-such-key.pem");
    let r = run_cmd(tenure(
        &url,
        &[
            "--cacert".into(),
            s(&pki.ca()),
            "--cert".into(),
            s(&good.cert),
            "--key".into(),
            s(&missing),
        ],
        &["leader", "x"],
    ))
    .await;
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains(&s(&missing)), "{r:?}");

    let r = run_cmd(tenure(
        &format!("{url}?ca={}", s(&pki.ca())),
        &["--cacert".into(), s(&pki.ca())],
        &["leader", "x"],
    ))
    .await;
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("--cacert"), "{r:?}");
}

/// A password given inside `TENURE_BACKEND` stays with tenure: the
/// gated command's environment has no `TENURE_BACKEND` then.
#[tokio::test(flavor = "multi_thread")]
async fn a_password_in_the_backend_url_is_not_passed_to_the_command() {
    let server = EtcdServer::start().await.unwrap();
    server
        .enable_auth_with_prefix_user("app", PASSWORD, "apps/")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let host = server.endpoint().trim_start_matches("http://").to_owned();
    let url = format!("etcd://{host}/apps/?user=app&password={PASSWORD}");
    let election = common::unique("url-pw");
    let env_dump = dir.path().join("env");
    let script = format!("env > {}.tmp; mv {0}.tmp {0}; exec sleep 60", s(&env_dump));
    let mut cmd = command(&[
        "--output", "json", "campaign", &election, "--ttl", "3s", "--", "sh", "-c", &script,
    ]);
    cmd.env("TENURE_BACKEND", &url);
    let mut running = Running::start_cmd("campaign", cmd);
    running.expect("elected").await;
    let env = wait_for_file(&env_dump).await;
    assert!(env.contains("TENURE_TOKEN="), "the command ran: {env}");
    assert!(!env.contains(PASSWORD), "{env}");
    running.signal(Signal::SIGTERM);
    assert_eq!(running.wait().await.code(), Some(0), "{}", running.stderr());
}
