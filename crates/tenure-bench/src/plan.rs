//! How much each section measures: the full run and the quick run.

use std::time::Duration;

/// Run sizes of every section.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Quick mode (smoke test of the benchmark code, few runs).
    pub quick: bool,
    /// Samples of each raw floor and in-process handover series.
    pub inproc_runs: usize,
    /// Samples of each process-level handover chain.
    pub process_runs: usize,
    /// Pause between "successor queued" and "leader resigns".
    pub settle: Duration,
    /// TTL of the handover candidates.
    pub handover_ttl: Duration,
    /// TTLs of the crash-failover series.
    pub failover_ttls: Vec<Duration>,
    /// Samples per TTL and backend.
    pub failover_samples: usize,
    /// Elections failing over at once.
    pub failover_width: usize,
    /// Candidate counts of the herd on memory and etcd.
    pub scale_sizes: Vec<usize>,
    /// Candidate counts of the herd on ZooKeeper (a session per lease).
    pub zk_scale_sizes: Vec<usize>,
    /// Handovers per candidate count.
    pub scale_handovers: usize,
    /// First-leader rounds for N below 1,000 (and for 1,000 and above).
    pub first_rounds: (usize, usize),
    /// TTL of the scale and footprint leases.
    pub scale_ttl: Duration,
    /// Idle window over which keep-alives are counted.
    pub idle_window: Duration,
    /// Idle candidates on the memory backend.
    pub footprint_memory: Vec<usize>,
    /// Idle candidates on etcd.
    pub footprint_etcd: Vec<usize>,
    /// One-second CPU slices per footprint measurement.
    pub cpu_slices: usize,
    /// Election counts of the `observe_all` rows (the first is the
    /// reference the others are compared with).
    pub all_elections: Vec<usize>,
    /// Batches (samples) of the machine transition cost.
    pub machine_batches: usize,
    /// Cycles per batch.
    pub machine_cycles: u32,
}

impl Plan {
    /// The full run (about 10 minutes on 2 cores).
    pub fn full() -> Plan {
        Plan {
            quick: false,
            inproc_runs: 50,
            process_runs: 30,
            settle: Duration::from_millis(150),
            handover_ttl: Duration::from_secs(5),
            failover_ttls: vec![
                Duration::from_secs(1),
                Duration::from_secs(2),
                Duration::from_secs(5),
            ],
            failover_samples: 30,
            failover_width: 10,
            scale_sizes: vec![2, 10, 100, 1000],
            zk_scale_sizes: vec![2, 10, 100, 1000],
            scale_handovers: 30,
            first_rounds: (30, 10),
            scale_ttl: Duration::from_secs(6),
            idle_window: Duration::from_secs(6),
            footprint_memory: vec![1000, 10_000],
            footprint_etcd: vec![1000, 10_000],
            cpu_slices: 5,
            all_elections: vec![1, 1000],
            machine_batches: 30,
            machine_cycles: 20_000,
        }
    }

    /// The quick run (under 2 minutes): keeps every code path working.
    pub fn quick() -> Plan {
        Plan {
            quick: true,
            inproc_runs: 8,
            process_runs: 4,
            settle: Duration::from_millis(150),
            handover_ttl: Duration::from_secs(5),
            failover_ttls: vec![Duration::from_secs(1)],
            failover_samples: 6,
            failover_width: 6,
            scale_sizes: vec![2, 10, 100],
            zk_scale_sizes: vec![2, 10],
            scale_handovers: 4,
            first_rounds: (3, 2),
            scale_ttl: Duration::from_secs(6),
            idle_window: Duration::from_secs(2),
            footprint_memory: vec![1000],
            footprint_etcd: vec![100],
            cpu_slices: 2,
            all_elections: vec![1, 50],
            machine_batches: 30,
            machine_cycles: 1_000,
        }
    }
}
