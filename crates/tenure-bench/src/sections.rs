//! The sections of the report: each runs its measurements, then adds its
//! tables, targets and plot series to the report.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tenure::memory::MemoryBackend;
use tenure::DynBackend;

use crate::error::{fail, Result};
use crate::peers::Tool;
use crate::plan::Plan;
use crate::report::Section;
use crate::servers::Servers;
use crate::stats::Distribution;

mod all_elections;
mod failover;
mod footprint;
mod handover;
mod machine;
mod postgres;
mod scale;

pub use all_elections::all_elections;
pub use failover::failover;
pub use footprint::footprint;
pub use handover::handover;
pub use machine::machine;
pub use postgres::postgres;
pub use scale::scale;

/// What every section may use.
pub struct Ctx {
    /// Run sizes.
    pub plan: Plan,
    /// The servers (absent when only the machine section runs).
    pub servers: Option<Servers>,
    /// The `tenure` CLI, when built.
    pub tenure_cli: Option<PathBuf>,
    /// A Python with kazoo, when installed.
    pub python: Option<String>,
    /// Live heap bytes (the bench's counting allocator).
    pub live_bytes: fn() -> usize,
}

impl Ctx {
    pub(crate) fn servers(&self) -> Result<&Servers> {
        self.servers
            .as_ref()
            .ok_or_else(|| fail("the servers are not running"))
    }

    /// The tenure candidate process: the CLI if built, else this binary's
    /// `child` command (the library in a process of its own).
    pub(crate) fn tenure_tool(&self, url: String, ttl: Duration) -> Result<Tool> {
        Ok(match &self.tenure_cli {
            Some(bin) => Tool::TenureCli {
                bin: bin.clone(),
                url,
                ttl,
            },
            None => Tool::BenchChild {
                exe: std::env::current_exe().map_err(|e| fail(format!("own binary: {e}")))?,
                url,
                ttl,
            },
        })
    }
}

/// Keeps a measurement's samples, or notes its failure in the section.
pub(crate) fn keep<T>(sec: &mut Section, what: &str, r: Result<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            eprintln!("bench: {what} failed: {e}");
            sec.text(format!(
                "**{what} failed:** {}",
                e.to_string().replace('\n', " ")
            ));
            None
        }
    }
}

pub(crate) fn memory_pair() -> (DynBackend, DynBackend) {
    let m = MemoryBackend::new();
    (Arc::new(m.client()), Arc::new(m.client()))
}

/// The median of a distribution that may be missing.
pub(crate) fn median(d: &Option<Distribution>) -> Option<f64> {
    d.as_ref().map(|d| d.median)
}

/// The p99 of a distribution that may be missing.
pub(crate) fn p99(d: &Option<Distribution>) -> Option<f64> {
    d.as_ref().map(|d| d.p99)
}
