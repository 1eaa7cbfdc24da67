//! A validator set in the style of a blockchain deployment: five
//! validators self-elect a signer; only the signer signs blocks, each with
//! a write the backend accepts only from the current leader; the others
//! follow the signer through a watch, without polling. Then the signer
//! crashes (its connection dies mid-term) and another validator takes
//! over once the crashed signer's lease has expired, about one TTL later.
//! At the end the chain is checked: no height signed twice, and signer
//! tokens never go backwards.
//!
//! Runs on the in-memory backend. Run with `cargo run --example validators`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tenure::backend::CoordinationBackend;
use tenure::memory::{MemoryBackend, MemoryClient};
use tenure::{DynBackend, Election, Leadership};

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
    client: &MemoryClient,
    leadership: &Leadership,
    ledger: &Ledger,
    start: Instant,
) -> tenure::Result<()> {
    while leadership.is_leader() {
        let (head, _) = client.get(HEAD).await?;
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
    name: String,
    client: MemoryClient,
    ledger: Ledger,
    start: Instant,
) -> tenure::Result<()> {
    let backend: DynBackend = Arc::new(client.clone());
    let election = Election::builder(backend, "validators/signer")
        .ttl(TTL)
        .build()?;
    loop {
        let leadership = election.campaign(name.clone()).await?;
        println!(
            "{} {name}: elected signer (token {})",
            at(start),
            leadership.token()
        );
        sign_blocks(&name, &client, &leadership, &ledger, start).await?;
        println!(
            "{} {name}: stopped signing ({})",
            at(start),
            leadership.lost().await
        );
    }
}

#[tokio::main]
async fn main() -> tenure::Result<()> {
    let start = Instant::now();
    let server = MemoryBackend::new();
    let clients: Vec<MemoryClient> = (0..VALIDATORS).map(|_| server.client()).collect();
    let ledger = Ledger::default();
    let mut tasks = Vec::new();
    for (i, c) in clients.iter().enumerate() {
        let name = format!("validator-{i}");
        tasks.push(tokio::spawn(validator(
            name,
            c.clone(),
            ledger.clone(),
            start,
        )));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Everyone, validators included, can follow the signer through one
    // watch; here a separate observer prints each change.
    let observer: DynBackend = Arc::new(server.client());
    let mut signers = Election::builder(observer, "validators/signer")
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

    tokio::time::sleep(Duration::from_secs(2)).await;
    let before: Vec<u64> = clients.iter().map(|c| c.stats().requests).collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle: Vec<u64> = clients
        .iter()
        .zip(&before)
        .map(|(c, b)| c.stats().requests - b)
        .collect();
    println!(
        "{} requests per validator over 2 s (signer's include its blocks; followers' are keep-alives only, one per TTL/3): {idle:?}",
        at(start)
    );

    // Crash the signer: its connection dies, then its process.
    let (head, _) = server.client().get(HEAD).await?;
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
    clients[victim].set_unreachable(true);
    tasks[victim].abort();

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
    for t in &tasks {
        t.abort();
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
