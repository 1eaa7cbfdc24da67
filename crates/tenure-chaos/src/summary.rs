//! The campaign's outputs for people and tools: the console report (first
//! violation with the history around it), `summary.json` and `summary.md`.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use tenure_testkit::stats::Distribution;

use crate::check::Report;
use crate::cluster::BackendKind;

/// One campaign's settings and verdict.
#[derive(Clone, Debug, Serialize)]
pub struct CampaignSummary {
    /// Backend.
    pub backend: BackendKind,
    /// Seed of the fault plan.
    pub seed: u64,
    /// Candidates.
    pub candidates: usize,
    /// TTL in milliseconds.
    pub ttl_ms: u64,
    /// (d) bound beyond the TTL, in milliseconds.
    pub liveness_bound_ms: u64,
    /// Wall time of the campaign, in seconds.
    pub seconds: f64,
    /// The verdict.
    pub report: Report,
}

fn dist(d: &Option<Distribution>) -> String {
    let Some(d) = d else {
        return "–".into();
    };
    format!(
        "{:.2} / {:.2} / {:.2} / {:.2} s (n={})",
        d.median, d.p90, d.p99, d.max, d.n
    )
}

/// The console report of one campaign: counts, then every violation
/// found with the history around it.
pub fn console(s: &CampaignSummary) -> String {
    let r = &s.report;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "== {} (seed {}, {} candidates, TTL {} ms): {} faults in {:.0} s, {} elections, {} violation(s)",
        s.backend,
        s.seed,
        s.candidates,
        s.ttl_ms,
        r.faults,
        s.seconds,
        r.elections,
        r.violations.len()
    );
    for (k, v) in &r.by_kind {
        let _ = writeln!(
            out,
            "   {k:<16} {:>5} injected, {:>5} deposed the leader; time to new leader p50/p90/p99/max {}",
            v.injected,
            v.deposed_leader,
            dist(&v.time_to_new_leader)
        );
    }
    let _ = writeln!(
        out,
        "   guarded writes: {} accepted, {} refused, {} unknown; liveness checked after {} heals ({} not judged: next fault came first), heal → leader {}",
        r.writes_accepted,
        r.writes_refused,
        r.writes_unknown,
        r.liveness_checked,
        r.liveness_not_judged,
        dist(&r.time_to_leader_after_heal)
    );
    let _ = writeln!(out, "   losses: {:?}", r.losses);
    if let Some(v) = &r.fenced_key_at_end {
        let _ = writeln!(
            out,
            "   the fenced key holds {v:?} at the end: a write that was not refused"
        );
    }
    for v in &r.violations {
        let _ = writeln!(out, "\nVIOLATION ({}): {}", v.invariant, v.message);
        let _ = writeln!(
            out,
            "history around it (seconds from the campaign's start):"
        );
        for l in &v.context {
            let _ = writeln!(out, "  {l}");
        }
    }
    out
}

/// Markdown for `summary.md` (and docs/reliability.md).
pub fn markdown(all: &[CampaignSummary], command: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Fault campaign summary\n");
    let _ = writeln!(out, "Reproduce with:\n\n```sh\n{command}\n```\n");
    let _ = writeln!(
        out,
        "| backend | seed | candidates | TTL | faults | elections | violations | writes accepted / refused / unknown | heal → leader p50 / p90 / p99 / max |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for s in all {
        let r = &s.report;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} ms | {} | {} | {} | {} / {} / {} | {} |",
            s.backend,
            s.seed,
            s.candidates,
            s.ttl_ms,
            r.faults,
            r.elections,
            r.violations.len(),
            r.writes_accepted,
            r.writes_refused,
            r.writes_unknown,
            dist(&r.time_to_leader_after_heal)
        );
    }
    for s in all {
        let r = &s.report;
        let _ = writeln!(
            out,
            "\n## {} — {} faults, {:.0} s\n",
            s.backend, r.faults, s.seconds
        );
        let _ = writeln!(
            out,
            "| fault kind | injected | deposed the leader | fault start → new leader p50 / p90 / p99 / max |"
        );
        let _ = writeln!(out, "|---|---|---|---|");
        for (k, v) in &r.by_kind {
            let _ = writeln!(
                out,
                "| {k} | {} | {} | {} |",
                v.injected,
                v.deposed_leader,
                dist(&v.time_to_new_leader)
            );
        }
        let _ = writeln!(
            out,
            "\nLosses by reason: {}. Liveness (leader within TTL + {} ms of each heal) checked after {} heals, {} not judged (the next fault came first).",
            r.losses
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            s.liveness_bound_ms,
            r.liveness_checked,
            r.liveness_not_judged
        );
        for v in &r.violations {
            let _ = writeln!(
                out,
                "\n**Violation ({})**: {}\n\n```",
                v.invariant, v.message
            );
            for l in &v.context {
                let _ = writeln!(out, "{l}");
            }
            let _ = writeln!(out, "```");
        }
    }
    out
}

/// Writes `summary.json` and `summary.md` into `dir`.
///
/// # Errors
/// The files cannot be written.
pub fn write(dir: &Path, all: &[CampaignSummary], command: &str) -> std::io::Result<()> {
    let json = serde_json::to_string_pretty(all).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("summary.json"), json)?;
    std::fs::write(dir.join("summary.md"), markdown(all, command))
}
