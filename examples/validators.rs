//! A validator set in the style of a blockchain deployment: five
//! validators self-elect a signer; only the signer signs blocks, each with
//! a write the backend accepts only from the current leader; the others
//! follow the signer through a watch, without polling. Then the signer
//! crashes (its connection dies mid-term) and another validator takes
//! over once the crashed signer's lease has expired, about one TTL later.
//! At the end the chain is checked: no height signed twice, and signer
//! tokens never go backwards.
//!
//! Each validator runs on a thread and runtime of its own with its own
//! connection, like a separate process; the crash tears it down without
//! any cleanup.
//!
//! Runs on the in-memory backend by default, on any other with
//! `--backend URL`:
//!
//! ```text
//! cargo run --example validators
//! cargo run --features etcd --example validators -- --backend etcd://127.0.0.1:2379
//! ```

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tenure::{DynBackend, Election, Leadership, StreamExt};

use common::Process;

const TTL: Duration = Duration::from_secs(2);
const BLOCK_TIME: Duration = Duration::from_millis(250);
const HEAD: &str = "chain/head";
const VALIDATORS: usize = 5;

/// Every block the backend accepted: (height, token, signer).
type Ledger = Arc<Mutex<Vec<(u64, u64, String)>>>;

fn at(start: Instant) -> String {
    format!("[{:>6.3}s]", start.elapsed().as_secs_f64())
}

/// The chain head: `height signer token`.
fn parse_head(value: &[u8]) -> Option<(u64, String, u64)> {
    let text = String::from_utf8_lossy(value);
    let mut it = text.split_whitespace();
    let height = it.next()?.parse().ok()?;
    let signer = it.next()?.to_string();
    let token = it.next()?.parse().ok()?;
    Some((height, signer, token))
}

/// Signs blocks for as long as `leadership` holds.
async fn sign_blocks(
    name: &str,
    backend: &DynBackend,
    leadership: &Leadership,
    ledger: &Ledger,
    start: Instant,
) -> tenure::Result<()> {
    while leadership.is_leader() {
        let (head, _) = backend.get(HEAD).await?;
        let height = head
            .and_then(|e| parse_head(&e.value))
            .map_or(1, |(h, _, _)| h + 1);
        let block = format!("{height} {name} {}", leadership.token());
        match leadership.guarded_put(HEAD, block).await {
            Ok(_) => {
                println!("{} {name}: signed block {height}", at(start));
                ledger.lock().unwrap_or_else(|e| e.into_inner()).push((
                    height,
                    leadership.token(),
                    name.to_string(),
                ));
            }
            Err(e) => {
                println!("{} {name}: block {height} refused: {e}", at(start));
                return Ok(());
            }
        }
        tokio::select! {
            _ = leadership.lost() => {}
            () = tokio::time::sleep(BLOCK_TIME) => {}
        }
    }
    Ok(())
}

/// One validator: campaign, sign while leader, campaign again.
async fn validator(
    url: String,
    name: String,
    ledger: Ledger,
    start: Instant,
) -> tenure::Result<()> {
    let backend = tenure::connect(&url).await?;
    let election = Election::builder(backend.clone(), "validators/signer")
        .ttl(TTL)
        .build()?;
    loop {
        let leadership = election.campaign(&name).await?;
        println!(
            "{} {name}: elected signer (token {})",
            at(start),
            leadership.token()
        );
        sign_blocks(&name, &backend, &leadership, &ledger, start).await?;
        println!(
            "{} {name}: stopped signing ({})",
            at(start),
            leadership.lost().await
        );
    }
}

#[tokio::main]
async fn main() -> tenure::Result<()> {
    // A named in-memory backend: every `connect` in this process reaches it.
    let url = common::backend_url("memory://validators");
    let start = Instant::now();
    let backend = tenure::connect(&url).await?;
    let ledger = Ledger::default();
    let mut validators = Vec::new();
    for i in 0..VALIDATORS {
        let name = format!("validator-{i}");
        let (url, ledger) = (url.clone(), ledger.clone());
        validators.push(Process::spawn(&name.clone(), move || {
            validator(url, name, ledger, start)
        }));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Everyone, validators included, can follow the signer through one
    // watch; here a separate observer prints each change.
    let mut signers = Election::builder(backend.clone(), "validators/signer")
        .build()?
        .observe();
    let (tx, mut changes) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(leader) = signers.next().await {
            let name = leader
                .leader()
                .map(|l| String::from_utf8_lossy(&l.value).into_owned());
            if tx.send((Instant::now(), name)).is_err() {
                break;
            }
        }
    });

    tokio::time::sleep(Duration::from_secs(3)).await;

    // Crash the signer: its process dies, connection and all.
    let (head, _) = backend.get(HEAD).await?;
    let (_, signer, _) = head
        .and_then(|e| parse_head(&e.value))
        .ok_or(tenure::Error::Cancelled("no block signed yet"))?;
    let victim: usize = signer
        .trim_start_matches("validator-")
        .parse()
        .map_err(|_| tenure::Error::Cancelled("unexpected signer name"))?;
    while changes.try_recv().is_ok() {}
    let killed = Instant::now();
    println!("{} -- {signer} crashes", at(start));
    validators[victim].crash();

    // The next signer, as the observer sees it.
    let taken_over = loop {
        match changes.recv().await {
            Some((when, Some(name))) if name != signer => break (when, name),
            Some(_) => {}
            None => return Err(tenure::Error::Cancelled("observer ended")),
        }
    };
    println!(
        "{} {} took over {:.3}s after the crash (TTL {:?})",
        at(start),
        taken_over.1,
        taken_over.0.duration_since(killed).as_secs_f64(),
        TTL
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    for v in &mut validators {
        v.crash();
    }

    // Check the chain: heights go up by one, tokens never go down.
    let ledger = ledger.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut signers: Vec<(u64, String)> = Vec::new();
    for pair in ledger.windows(2) {
        let ((h0, t0, _), (h1, t1, _)) = (&pair[0], &pair[1]);
        if *h1 != h0 + 1 || t1 < t0 {
            println!("CHAIN BROKEN: block {h0} (token {t0}) followed by block {h1} (token {t1})");
            std::process::exit(1);
        }
    }
    for (_, token, name) in &ledger {
        if signers.last().is_none_or(|(t, _)| t != token) {
            signers.push((*token, name.clone()));
        }
    }
    println!(
        "chain checked: {} blocks, each height signed once, signers in token order: {signers:?}",
        ledger.len()
    );
    Ok(())
}
