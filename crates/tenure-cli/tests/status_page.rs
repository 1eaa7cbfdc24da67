//! `tenure observe --all`: every election under a prefix in one stream,
//! against real etcd and ZooKeeper servers, and its status page (`/` with
//! `--listen`) in a real headless Chromium, driven over the DevTools
//! protocol.
//!
//! The browser test needs `chromium` (scripts/install-deps.sh installs
//! it). Without it the test is skipped, unless `TENURE_REQUIRE_CHROMIUM`
//! is set (as CI sets it): then it fails.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::page::ScreenshotParams;
use common::{scenarios, Running};
use futures::StreamExt;
use nix::sys::signal::Signal;
use tenure_testkit::etcd_server::EtcdServer;
use tenure_testkit::zk_server::ZkServer;

async fn etcd() -> (EtcdServer, String) {
    let server = EtcdServer::start()
        .await
        .unwrap_or_else(|e| panic!("cannot start etcd: {e}"));
    let url = format!("etcd://{}", server.endpoint().trim_start_matches("http://"));
    (server, url)
}

async fn zookeeper() -> String {
    let server = ZkServer::shared()
        .await
        .unwrap_or_else(|e| panic!("cannot start ZooKeeper: {e}"));
    format!("zk://{}/tenure-cli-all", server.connect_string())
}

/// `tenure observe --all <prefix>` (JSON events), with `extra` options.
fn observe_all(url: &str, prefix: &str, extra: &[&str]) -> Running {
    let mut args = vec![
        "--backend",
        url,
        "--output",
        "json",
        "observe",
        "--all",
        prefix,
    ];
    args.extend_from_slice(extra);
    Running::start("observe --all", &args)
}

/// Reads `o` until `election`'s leader is `proposal`. Events of
/// different elections come in any order: the latest one already read
/// for `election` counts.
async fn expect_leader(o: &mut Running, election: &str, proposal: &str) {
    let latest = o.seen.iter().rev().find(|v| v["election"] == election);
    if latest.is_some_and(|v| v["event"] == "leader" && v["proposal"] == proposal) {
        return;
    }
    o.expect_where("leader", |v| {
        v["election"] == election && v["proposal"] == proposal
    })
    .await;
}

/// Two elections under a prefix (one nested) and one outside it: the
/// stream shows both leaders, a hand-over in one, an election created
/// after it started, and never the election outside the prefix.
async fn observe_all_follows_every_election(url: &str) {
    let prefix = format!("{}/", common::unique("all"));
    let (jobs, web, late) = (
        format!("{prefix}jobs"),
        format!("{prefix}web/eu"),
        format!("{prefix}late"),
    );
    let outside = common::unique("outside");
    let mut a = scenarios::start(url, "a", "campaign", &jobs, &["node-a", "--ttl", "2s"]);
    a.expect("elected").await;
    let mut b = scenarios::start(url, "b", "campaign", &jobs, &["node-b", "--ttl", "2s"]);
    b.expect("campaigning").await;
    let mut w = scenarios::start(url, "w", "campaign", &web, &["node-w", "--ttl", "2s"]);
    w.expect("elected").await;
    let mut x = scenarios::start(url, "x", "campaign", &outside, &["node-x", "--ttl", "2s"]);
    x.expect("elected").await;

    let mut o = observe_all(url, &prefix, &[]);
    expect_leader(&mut o, &jobs, "node-a").await;
    expect_leader(&mut o, &web, "node-w").await;
    let mut l = scenarios::start(url, "l", "campaign", &late, &["node-l", "--ttl", "2s"]);
    l.expect("elected").await;
    expect_leader(&mut o, &late, "node-l").await;
    a.signal(Signal::SIGTERM);
    assert_eq!(a.wait().await.code(), Some(0), "{}", a.stderr());
    expect_leader(&mut o, &jobs, "node-b").await;
    assert!(
        o.seen
            .iter()
            .all(|v| v["election"].as_str().unwrap().starts_with(&prefix)),
        "{:#?}",
        o.seen
    );
    for t in [&mut b, &mut w, &mut x, &mut l, &mut o] {
        t.signal(Signal::SIGTERM);
        assert_eq!(t.wait().await.code(), Some(0), "{}", t.stderr());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn etcd_observe_all_follows_every_election() {
    let (_server, url) = etcd().await;
    observe_all_follows_every_election(&url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn zookeeper_observe_all_follows_every_election() {
    observe_all_follows_every_election(&zookeeper().await).await;
}

/// A prefix no election name can start with is bad input (exit 2).
#[tokio::test(flavor = "multi_thread")]
async fn observe_all_refuses_a_bad_prefix() {
    let r = common::run(&["--backend", "memory://", "observe", "--all", "bad\nname"]).await;
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("invalid election name"), "{r:?}");
}

/// The browser to drive, or `None` (test skipped) when it is absent and
/// not required.
fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("chromium"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("TENURE_REQUIRE_CHROMIUM").is_none(),
            "chromium is not installed (scripts/install-deps.sh installs it) and \
             TENURE_REQUIRE_CHROMIUM is set"
        );
        eprintln!("skipped: chromium is not installed");
    }
    found
}

/// JavaScript that resolves once the page's row of `election` shows
/// `proposal` as leader (the page redraws itself; it is never reloaded).
fn wait_for_row(election: &str, proposal: &str) -> String {
    let (e, p) = (
        serde_json::to_string(election).unwrap(),
        serde_json::to_string(proposal).unwrap(),
    );
    format!(
        "async () => {{
            for (;;) {{
                const row = document.querySelector(`tr[data-election=${{CSS.escape({e})}}]`);
                if (row && row.children[2].textContent === {p}) return row.children[3].textContent;
                await new Promise(r => setTimeout(r, 50));
            }}
        }}"
    )
}

/// The status page, open in Chromium while a hand-over happens, shows the
/// new leader and its token without being reloaded; the test leaves a
/// screenshot in `target/tmp/status-page.png`.
#[tokio::test(flavor = "multi_thread")]
async fn status_page_shows_a_handover_live() {
    let Some(chromium) = chromium() else { return };
    let (_server, url) = etcd().await;
    let prefix = format!("{}/", common::unique("page"));
    let (jobs, web) = (format!("{prefix}jobs"), format!("{prefix}web"));
    let mut a = scenarios::start(&url, "a", "campaign", &jobs, &["node-a", "--ttl", "2s"]);
    let elected_a = a.expect("elected").await;
    let mut b = scenarios::start(&url, "b", "campaign", &jobs, &["node-b", "--ttl", "2s"]);
    b.expect("campaigning").await;
    let mut w = scenarios::start(&url, "w", "campaign", &web, &["node-w", "--ttl", "2s"]);
    w.expect("elected").await;
    let mut o = observe_all(&url, &prefix, &["--listen", "127.0.0.1:0"]);
    let addr = o.expect("listening").await["addr"]
        .as_str()
        .unwrap()
        .to_owned();
    expect_leader(&mut o, &jobs, "node-a").await;
    expect_leader(&mut o, &web, "node-w").await;

    let profile = tempfile::tempdir().unwrap();
    let config = BrowserConfig::builder()
        .chrome_executable(chromium)
        .new_headless_mode()
        .no_sandbox()
        .user_data_dir(profile.path())
        .window_size(1000, 300)
        .viewport(None)
        .launch_timeout(common::PATIENCE)
        .build()
        .unwrap();
    let (mut browser, mut handler) = Browser::launch(config).await.unwrap();
    let events = tokio::spawn(async move { while handler.next().await.is_some() {} });
    let page = browser.new_page(format!("http://{addr}/")).await.unwrap();
    page.wait_for_navigation().await.unwrap();
    let within = |js: String| {
        let page = &page;
        async move {
            tokio::time::timeout(common::PATIENCE, page.evaluate_function(js))
                .await
                .expect("the page never showed it")
                .unwrap()
                .into_value::<String>()
                .unwrap()
        }
    };
    let token_a = within(wait_for_row(&jobs, "node-a")).await;
    assert_eq!(token_a, elected_a["token"].to_string());

    a.signal(Signal::SIGTERM);
    assert_eq!(a.wait().await.code(), Some(0), "{}", a.stderr());
    let elected_b = b.expect("elected").await;
    let token_b = within(wait_for_row(&jobs, "node-b")).await;
    assert_eq!(token_b, elected_b["token"].to_string());
    within(wait_for_row(&web, "node-w")).await;

    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    page.save_screenshot(ScreenshotParams::builder().build(), &shot)
        .await
        .unwrap();
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG"),
        "{} is not a PNG",
        shot.display()
    );

    browser.close().await.unwrap();
    let _ = browser.wait().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), events).await;
    for t in [&mut b, &mut w, &mut o] {
        t.signal(Signal::SIGTERM);
        assert_eq!(t.wait().await.code(), Some(0), "{}", t.stderr());
    }
}
