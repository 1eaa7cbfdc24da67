//! scratch
#![allow(clippy::unwrap_used)]
mod common;
use std::time::Duration;
use tenure_core::{DynBackend, Election, Session};

#[tokio::test(flavor = "multi_thread")]
async fn burst() {
    let server = common::server().await;
    let conn: DynBackend = common::dyn_backend(&server.endpoint()).await;
    let n = 1000;
    let mut sessions = Vec::new();
    for _ in 0..n {
        sessions.push(Session::new(conn.clone(), Duration::from_secs(5)).await.unwrap());
    }
    let elections: Vec<Election> = sessions.iter().map(|s| Election::builder(conn.clone(), "burst").session(s.clone()).build().unwrap()).collect();
    let watcher = Election::builder(conn.clone(), "burst").ttl(Duration::from_secs(5)).build().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for round in 0..4 {
        let mut tasks = Vec::new();
        for (i, e) in elections.iter().enumerate() {
            let e = e.clone();
            let tx = tx.clone();
            tasks.push(tokio::spawn(async move {
                match e.campaign(format!("c{i}")).await {
                    Ok(l) => { let _ = tx.send(l); }
                    Err(err) => eprintln!("{i} failed: {err}"),
                }
            }));
        }
        let leader = rx.recv().await.unwrap();
        let mut full = false;
        for _ in 0..100 {
            let c = watcher.candidates().await.unwrap();
            eprintln!("round {round} queue {}", c.len());
            if c.len() == n { full = true; break; }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(full, "never full");
        for t in tasks { t.abort(); }
        leader.resign().await;
        for _ in 0..100 {
            let c = watcher.candidates().await.unwrap();
            eprintln!("round {round} draining {}", c.len());
            if c.is_empty() { break; }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        while let Ok(l) = rx.try_recv() { l.resign().await; }
    }
}
