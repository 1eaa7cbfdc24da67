//! The machine a run happened on, for the report header.

use std::fmt::Write as _;

/// What the report says about the machine and the run.
#[derive(Clone, Debug, Default)]
pub struct Host {
    /// Logical CPUs.
    pub cpus: usize,
    /// CPU model from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Total memory from `/proc/meminfo`.
    pub memory: String,
    /// Kernel release.
    pub kernel: String,
    /// etcd server version.
    pub etcd: String,
    /// ZooKeeper server version.
    pub zookeeper: String,
    /// UTC date and time of the run.
    pub date: String,
    /// Load average (1, 5, 15 min) when the run started.
    pub load_at_start: String,
    /// Load average when the run ended.
    pub load_at_end: String,
}

impl Host {
    /// Reads the machine facts; the server versions are filled in by the
    /// caller.
    pub fn probe() -> Host {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "model name").then(|| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                let kb: u64 = m
                    .lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()?;
                Some(format!("{:.1} GiB", kb as f64 / 1024.0 / 1024.0))
            })
            .unwrap_or_else(|| "unknown".to_owned());
        Host {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            memory,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "unknown".to_owned()),
            etcd: String::new(),
            zookeeper: String::new(),
            date: utc_now(),
            load_at_start: load_average(),
            load_at_end: String::new(),
        }
    }

    /// The header lines of the report.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "| machine | |");
        let _ = writeln!(s, "|---|---|");
        let _ = writeln!(s, "| date (UTC) | {} |", self.date);
        let _ = writeln!(s, "| CPU | {} × {} |", self.cpus, self.cpu_model);
        let _ = writeln!(s, "| memory | {} |", self.memory);
        let _ = writeln!(s, "| kernel | Linux {} |", self.kernel);
        let _ = writeln!(s, "| etcd | {} |", self.etcd);
        let _ = writeln!(s, "| ZooKeeper | {} |", self.zookeeper);
        let _ = writeln!(
            s,
            "| load average (1, 5, 15 min) | {} at start, {} at end |",
            self.load_at_start, self.load_at_end
        );
        s
    }
}

/// The first three fields of `/proc/loadavg`.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// The current UTC time as `YYYY-MM-DD HH:MM:SS`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Year, month, day of a count of days since 1970-01-01 (proleptic
/// Gregorian calendar, the usual era arithmetic).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_dates() {
        assert_eq!(super::civil_from_days(0), (1970, 1, 1));
        assert_eq!(super::civil_from_days(19_782), (2024, 2, 29));
    }
}
