//! Where the machine's CPU went during a run, and the server's memory, read from Linux's `/proc`.
//!
//! The server, PostgreSQL and this generator share the machine's cores, so a throughput figure
//! means little without the split: each report records how many cores each of the three used
//! over the measured phase, and the server's resident memory at its end. Off Linux, or when the
//! server's process cannot be found, the report simply has no such notes.

use std::time::Instant;

use serde::Serialize;

/// Linux reports process CPU time in clock ticks of `USER_HZ`, which is 100 on every
/// architecture the server runs on.
const TICKS_PER_SECOND: f64 = 100.0;

/// The server's process: given (`--server-pid`), or the one process named `tutoring`.
pub fn find_server(given: Option<u32>) -> Option<u32> {
    if given.is_some() {
        return given;
    }
    let mut found = processes().filter(|(_, name)| name == "tutoring");
    let (pid, _) = found.next()?;
    // Two servers on one machine: which one is measured must be said.
    found.next().is_none().then_some(pid)
}

/// CPU time used so far by the server, by every PostgreSQL process and by this generator.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    at: Instant,
    server: u64,
    postgres: u64,
    generator: u64,
}

impl CpuSample {
    pub fn take(server: u32) -> Option<Self> {
        // With the time of exited children, which their parent (the postmaster) collects: a
        // backend that ends during the phase keeps counting.
        let postgres = processes()
            .filter(|(_, name)| name.starts_with("postgres"))
            .filter_map(|(pid, _)| cpu_ticks_with_children(&pid.to_string()))
            .sum();
        Some(Self {
            at: Instant::now(),
            server: cpu_ticks(&server.to_string())?,
            postgres,
            generator: cpu_ticks("self")?,
        })
    }

    /// The cores each used on average between `self` and `later`.
    pub fn cores_until(&self, later: &Self) -> CpuSplit {
        let seconds = later
            .at
            .duration_since(self.at)
            .as_secs_f64()
            .max(f64::EPSILON);
        let cores = |before: u64, after: u64| {
            let used = after.saturating_sub(before) as f64 / TICKS_PER_SECOND / seconds;
            (used * 100.0).round() / 100.0
        };
        CpuSplit {
            server: cores(self.server, later.server),
            postgres: cores(self.postgres, later.postgres),
            generator: cores(self.generator, later.generator),
        }
    }
}

/// Cores used on average over a phase.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CpuSplit {
    pub server: f64,
    pub postgres: f64,
    pub generator: f64,
}

/// The server's resident memory, in MiB.
pub fn resident_mib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// Measures one phase of a run: the CPU split over it and the server's memory at its end, both
/// added to the report as notes.
pub struct Meter {
    server: Option<u32>,
    start: Option<CpuSample>,
}

impl Meter {
    /// Starts measuring (now).
    pub fn start(options: &crate::Options) -> Self {
        let server = find_server(options.server_pid);
        if server.is_none() {
            eprintln!(
                "no single `tutoring` process found: the report will not say where the CPU went \
                 (give --server-pid)"
            );
        }
        Self {
            server,
            start: server.and_then(CpuSample::take),
        }
    }

    /// Ends the phase (now) and notes what it measured.
    pub fn finish(self, report: &mut crate::stats::Report) {
        let Some(server) = self.server else { return };
        if let (Some(start), Some(end)) = (self.start, CpuSample::take(server)) {
            report.note("cpu_cores", start.cores_until(&end));
        }
        if let Some(mib) = resident_mib(server) {
            report.note("server_rss_mib", mib);
        }
    }
}

/// Every process's id and command name.
fn processes() -> impl Iterator<Item = (u32, String)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let name = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            Some((pid, name.trim_end().to_owned()))
        })
}

/// User plus system time of a process, in clock ticks (`/proc/<pid>/stat`, fields 14 and 15).
fn cpu_ticks(pid: &str) -> Option<u64> {
    Some(stat_times(pid)?.into_iter().take(2).sum())
}

/// The same, plus the time of its children that have exited (fields 16 and 17).
fn cpu_ticks_with_children(pid: &str) -> Option<u64> {
    Some(stat_times(pid)?.into_iter().sum())
}

/// `utime`, `stime`, `cutime` and `cstime` of a process.
fn stat_times(pid: &str) -> Option<[u64; 4]> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; the fields after it do not.
    let after_name = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = after_name.split_whitespace().skip(11);
    let mut times = [0; 4];
    for time in &mut times {
        *time = fields.next()?.parse().ok()?;
    }
    Some(times)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_cpu_time_and_memory_are_read() {
        let before = cpu_ticks("self").expect("our own /proc/self/stat");
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let mut spins = 0u64;
        let mut after = before;
        while after == before && Instant::now() < deadline {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(100_000) {
                after = cpu_ticks("self").expect("readable again");
            }
        }
        assert!(after > before, "no CPU time counted after spinning");
        let mib = resident_mib(std::process::id()).expect("our own VmRSS");
        assert!(mib < 1024 * 1024, "an implausible resident size: {mib} MiB");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_split_is_in_cores() {
        let at = Instant::now();
        let start = CpuSample {
            at,
            server: 100,
            postgres: 50,
            generator: 0,
        };
        let end = CpuSample {
            at: at + std::time::Duration::from_secs(2),
            server: 400,
            postgres: 250,
            generator: 20,
        };
        let split = start.cores_until(&end);
        assert_eq!(
            (split.server, split.postgres, split.generator),
            (1.5, 1.0, 0.1)
        );
    }
}
