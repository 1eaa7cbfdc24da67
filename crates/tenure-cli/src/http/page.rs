//! The status page of `tenure observe --all --listen ADDR`: every
//! election, its leader, fencing token, when this observer first saw the
//! term, and its last changes.
//!
//! `/` is plain HTML, complete as served (it reads without JavaScript);
//! a small inline script then polls `/elections.json` every second and
//! redraws the table, so the page follows hand-overs live.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

/// How many changes each row keeps.
const CHANGES_KEPT: usize = 5;

/// What the page shows, updated by the observe loop, read by the
/// handlers. Cloning gives another handle on the same board.
#[derive(Clone, Debug, Default)]
pub struct Board {
    rows: Arc<Mutex<BTreeMap<String, Row>>>,
}

/// One election on the page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The election's name.
    pub election: String,
    /// `leader`, `none` (nobody leads) or `unknown` (not confirmed within
    /// the staleness bound).
    pub state: &'static str,
    /// The leader's proposal, while one is confirmed.
    pub proposal: Option<String>,
    /// The leader's fencing token, while one is confirmed.
    pub token: Option<u64>,
    /// When this observer first saw the current term (Unix ms).
    pub term_start_ms: Option<u64>,
    /// The last changes, newest first.
    pub changes: VecDeque<Change>,
}

/// A change of one election's leader, as the page lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// When it was observed (Unix ms).
    pub at_ms: u64,
    /// What it was: `leader node-a (token 42)`, `no leader`, `unknown`.
    pub what: String,
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Board {
    /// An empty board.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Row>> {
        // A panic while holding the lock leaves plain data: keep serving it.
        self.rows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records what the observer says of `election` now.
    pub fn record(&self, election: &str, observation: &tenure::Observation) {
        let now = unix_ms(SystemTime::now());
        let mut rows = self.lock();
        let row = rows.entry(election.to_owned()).or_insert_with(|| Row {
            election: election.to_owned(),
            state: "unknown",
            proposal: None,
            token: None,
            term_start_ms: None,
            changes: VecDeque::new(),
        });
        let (state, proposal, token, what) = match observation {
            tenure::Observation::Leader(l) => {
                let p = String::from_utf8_lossy(&l.value).into_owned();
                let what = format!("leader {p} (token {})", l.token);
                ("leader", Some(p), Some(l.token), what)
            }
            tenure::Observation::Unknown { .. } => ("unknown", None, None, "unknown".to_owned()),
            _ => ("none", None, None, "no leader".to_owned()),
        };
        // A term starts when its token first shows; `unknown` in between
        // does not end it.
        if state != "unknown" && token != row.token {
            row.term_start_ms = token.map(|_| now);
        }
        if state != "unknown" || row.state != "unknown" {
            row.changes.push_front(Change { at_ms: now, what });
            row.changes.truncate(CHANGES_KEPT);
        }
        row.state = state;
        if state != "unknown" {
            row.proposal = proposal;
            row.token = token;
        }
    }

    /// Every row, in name order.
    pub fn rows(&self) -> Vec<Row> {
        self.lock().values().cloned().collect()
    }

    /// Whether no election is `unknown`.
    pub fn all_confirmed(&self) -> bool {
        self.lock().values().all(|r| r.state != "unknown")
    }
}

/// `/` and `/elections.json`, reading `board`.
pub fn routes(board: &Board) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/elections.json", get(elections))
        .with_state(board.clone())
}

async fn elections(State(board): State<Board>) -> impl IntoResponse {
    Json(board.rows())
}

async fn index(State(board): State<Board>) -> Html<String> {
    Html(render(&board.rows()))
}

/// Escapes text for HTML content and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn time(ms: u64) -> String {
    humantime::format_rfc3339_seconds(SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
        .to_string()
}

/// One table row, as the script draws it too.
fn render_row(r: &Row) -> String {
    let changes: Vec<String> = r
        .changes
        .iter()
        .map(|c| format!("{} {}", time(c.at_ms), escape(&c.what)))
        .collect();
    format!(
        "<tr data-election=\"{e}\" class=\"{s}\"><td>{e}</td><td>{s}</td><td>{p}</td><td>{t}</td><td>{start}</td><td>{changes}</td></tr>",
        e = escape(&r.election),
        s = r.state,
        p = r.proposal.as_deref().map(escape).unwrap_or_default(),
        t = r.token.map(|t| t.to_string()).unwrap_or_default(),
        start = r.term_start_ms.map(time).unwrap_or_default(),
        changes = changes.join("<br>"),
    )
}

fn render(rows: &[Row]) -> String {
    let body: String = rows.iter().map(render_row).collect();
    // The count first: a proposal may hold the text `{count}`.
    PAGE.replace("{count}", &rows.len().to_string())
        .replace("{rows}", &body)
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tenure: elections</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35em .7em; border-bottom: 1px solid #ddd; vertical-align: top; white-space: nowrap; }
th { background: #f4f4f4; }
tr.leader td:nth-child(2) { color: #1a7f37; font-weight: 600; }
tr.none td:nth-child(2) { color: #9a6700; }
tr.unknown td:nth-child(2) { color: #cf222e; font-weight: 600; }
td:last-child { font-size: .85em; color: #555; }
</style>
</head>
<body>
<h1>tenure: <span id="count">{count}</span> elections</h1>
<table>
<thead><tr><th>election</th><th>state</th><th>leader</th><th>token</th><th>term seen since</th><th>last changes</th></tr></thead>
<tbody id="rows">{rows}</tbody>
</table>
<script>
"use strict";
function iso(ms) { return new Date(ms).toISOString().replace(/\.\d+Z$/, "Z"); }
function cell(tr, text) { const td = document.createElement("td"); td.textContent = text; tr.appendChild(td); return td; }
function draw(rows) {
  const body = document.getElementById("rows");
  const fresh = document.createElement("tbody");
  fresh.id = "rows";
  for (const r of rows) {
    const tr = document.createElement("tr");
    tr.className = r.state;
    tr.dataset.election = r.election;
    cell(tr, r.election);
    cell(tr, r.state);
    cell(tr, r.proposal === null ? "" : r.proposal);
    cell(tr, r.token === null ? "" : String(r.token));
    cell(tr, r.term_start_ms === null ? "" : iso(r.term_start_ms));
    const changes = cell(tr, "");
    r.changes.forEach((c, i) => {
      if (i > 0) changes.appendChild(document.createElement("br"));
      changes.appendChild(document.createTextNode(iso(c.at_ms) + " " + c.what));
    });
    fresh.appendChild(tr);
  }
  body.replaceWith(fresh);
  document.getElementById("count").textContent = String(rows.length);
}
async function poll() {
  try {
    const response = await fetch("/elections.json", { cache: "no-store" });
    if (response.ok) draw(await response.json());
  } catch (e) {
    // The observer is restarting or gone: keep what is shown, try again.
  }
  setTimeout(poll, 1000);
}
setTimeout(poll, 1000);
</script>
</body>
</html>
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use tenure::{LeaderInfo, Observation};

    fn leader(p: &str, token: u64) -> Observation {
        Observation::Leader(LeaderInfo {
            key: format!("e/{token}"),
            value: p.as_bytes().to_vec().into(),
            token,
        })
    }

    #[test]
    fn rows_keep_the_term_and_the_last_changes() {
        let board = Board::new();
        board.record("e", &leader("a", 1));
        let start = board.rows()[0].term_start_ms;
        board.record(
            "e",
            &Observation::Unknown {
                unconfirmed_for: Duration::from_secs(3),
            },
        );
        assert!(!board.all_confirmed());
        board.record("e", &leader("a", 1));
        let row = &board.rows()[0];
        assert_eq!(row.term_start_ms, start, "unknown does not end a term");
        assert_eq!(row.state, "leader");
        assert_eq!(row.changes.len(), 3);
        for t in 2..10 {
            board.record("e", &leader("b", t));
        }
        let row = &board.rows()[0];
        assert_eq!(row.changes.len(), CHANGES_KEPT);
        assert_eq!(row.changes[0].what, "leader b (token 9)");
        assert!(board.all_confirmed());
    }

    #[test]
    fn proposals_are_escaped() {
        let board = Board::new();
        board.record("e", &leader("<script>x</script>", 1));
        let html = render(&board.rows());
        assert!(!html.contains("<script>x"), "{html}");
        assert!(html.contains("&lt;script&gt;x"), "{html}");
    }
}
