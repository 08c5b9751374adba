//! Parsers for the Linux files a node reads its load from: /proc/stat, /proc/loadavg,
//! /proc/meminfo, /proc/self/cgroup and cgroup v2's cpu.stat and cpu.max.
//! They take the file's text and return numbers; reading the files is the caller's business.

use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum ParseError {
    #[error("{file}: {what}")]
    Malformed { file: &'static str, what: String },
}

fn malformed(file: &'static str, what: impl Into<String>) -> ParseError {
    ParseError::Malformed {
        file,
        what: what.into(),
    }
}

/// Cumulative CPU time of the whole machine, from the first `cpu` line of /proc/stat, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcStatCpu {
    /// user + nice + system + irq + softirq + steal
    pub busy_ticks: u64,
    /// busy + idle + iowait
    pub total_ticks: u64,
    /// number of `cpuN` lines
    pub cpus: u32,
}

pub fn parse_proc_stat(text: &str) -> Result<ProcStatCpu, ParseError> {
    const F: &str = "/proc/stat";
    let line = text
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or_else(|| malformed(F, "no aggregate `cpu` line"))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse::<u64>())
        .collect::<Result<_, _>>()
        .map_err(|e| malformed(F, format!("bad number in `{line}`: {e}")))?;
    if fields.len() < 4 {
        return Err(malformed(
            F,
            format!("expected at least 4 counters, got {}", fields.len()),
        ));
    }
    let get = |i: usize| fields.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal (guest and guest_nice are already in user/nice)
    let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
    let idle = get(3) + get(4);
    let cpus = text
        .lines()
        .filter(|l| {
            l.strip_prefix("cpu")
                .and_then(|r| r.chars().next())
                .is_some_and(|c| c.is_ascii_digit())
        })
        .count() as u32;
    Ok(ProcStatCpu {
        busy_ticks: busy,
        total_ticks: busy + idle,
        cpus: cpus.max(1),
    })
}

/// The three load averages of /proc/loadavg.
pub fn parse_loadavg(text: &str) -> Result<[f64; 3], ParseError> {
    const F: &str = "/proc/loadavg";
    let mut it = text.split_whitespace();
    let mut out = [0.0; 3];
    for (i, slot) in out.iter_mut().enumerate() {
        let f = it
            .next()
            .ok_or_else(|| malformed(F, format!("missing field {}", i + 1)))?;
        *slot = f
            .parse()
            .map_err(|_| malformed(F, format!("bad number `{f}`")))?;
    }
    Ok(out)
}

/// MemTotal and MemAvailable of /proc/meminfo, in bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemInfo {
    pub total_bytes: u64,
    pub available_bytes: u64,
}

pub fn parse_meminfo(text: &str) -> Result<MemInfo, ParseError> {
    const F: &str = "/proc/meminfo";
    let field = |name: &str| -> Result<Option<u64>, ParseError> {
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix(name).and_then(|r| r.strip_prefix(':')) {
                let mut parts = rest.split_whitespace();
                let n: u64 = parts
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| malformed(F, format!("bad value in `{line}`")))?;
                let mult = match parts.next() {
                    Some("kB") => 1024,
                    None => 1,
                    Some(u) => return Err(malformed(F, format!("unknown unit `{u}` in `{line}`"))),
                };
                return Ok(Some(n * mult));
            }
        }
        Ok(None)
    };
    let total = field("MemTotal")?.ok_or_else(|| malformed(F, "no MemTotal"))?;
    // Kernels before 3.14 have no MemAvailable: approximate it as MemFree + Cached.
    let available = match field("MemAvailable")? {
        Some(v) => v,
        None => field("MemFree")?.unwrap_or(0) + field("Cached")?.unwrap_or(0),
    };
    Ok(MemInfo {
        total_bytes: total,
        available_bytes: available.min(total),
    })
}

/// The cgroup v2 path of this process from /proc/self/cgroup (the `0::` line), if any.
pub fn parse_self_cgroup(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim().to_string())
}

/// `usage_usec` of a cgroup v2 cpu.stat file.
pub fn parse_cgroup_cpu_stat(text: &str) -> Result<u64, ParseError> {
    const F: &str = "cpu.stat";
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        if parts.next() == Some("usage_usec") {
            return parts
                .next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| malformed(F, format!("bad value in `{line}`")));
        }
    }
    Err(malformed(F, "no usage_usec"))
}

/// The CPU limit of a cgroup v2 cpu.max file in cores (`200000 100000` is 2.0 cores);
/// `None` when unlimited (`max 100000`).
pub fn parse_cgroup_cpu_max(text: &str) -> Result<Option<f64>, ParseError> {
    const F: &str = "cpu.max";
    let mut parts = text.split_whitespace();
    let quota = parts.next().ok_or_else(|| malformed(F, "empty"))?;
    let period: f64 = match parts.next() {
        Some(p) => p
            .parse()
            .map_err(|_| malformed(F, format!("bad period `{p}`")))?,
        None => 100_000.0,
    };
    if quota == "max" {
        return Ok(None);
    }
    let quota: f64 = quota
        .parse()
        .map_err(|_| malformed(F, format!("bad quota `{quota}`")))?;
    if period <= 0.0 || quota <= 0.0 {
        return Err(malformed(
            F,
            format!("non-positive quota {quota} or period {period}"),
        ));
    }
    Ok(Some(quota / period))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn proc_stat_fixture() {
        let cpu = parse_proc_stat(&fixture("proc_stat")).unwrap();
        // user 10132153 nice 290696 system 3084719 idle 46828483 iowait 16683 irq 0 softirq 25195 steal 0
        assert_eq!(cpu.busy_ticks, 10132153 + 290696 + 3084719 + 25195);
        assert_eq!(cpu.total_ticks, cpu.busy_ticks + 46828483 + 16683);
        assert_eq!(cpu.cpus, 4);
    }

    #[test]
    fn proc_stat_old_kernel_with_four_fields() {
        let cpu = parse_proc_stat("cpu 10 20 30 40\ncpu0 10 20 30 40\n").unwrap();
        assert_eq!(cpu.busy_ticks, 60);
        assert_eq!(cpu.total_ticks, 100);
        assert_eq!(cpu.cpus, 1);
    }

    #[test]
    fn proc_stat_errors() {
        assert!(parse_proc_stat("intr 1 2 3\n").is_err());
        assert!(parse_proc_stat("cpu 1 2 x 4\n").is_err());
        assert!(parse_proc_stat("cpu 1 2\n").is_err());
    }

    #[test]
    fn loadavg_fixture() {
        assert_eq!(
            parse_loadavg(&fixture("loadavg")).unwrap(),
            [0.52, 0.58, 0.59]
        );
        assert!(parse_loadavg("0.1 0.2").is_err());
        assert!(parse_loadavg("a b c").is_err());
    }

    #[test]
    fn meminfo_fixture() {
        let m = parse_meminfo(&fixture("meminfo")).unwrap();
        assert_eq!(m.total_bytes, 16_303_428 * 1024);
        assert_eq!(m.available_bytes, 9_524_184 * 1024);
    }

    #[test]
    fn meminfo_without_memavailable_falls_back() {
        let m = parse_meminfo("MemTotal: 1000 kB\nMemFree: 100 kB\nCached: 200 kB\n").unwrap();
        assert_eq!(m.available_bytes, 300 * 1024);
        assert!(parse_meminfo("MemFree: 1 kB\n").is_err());
        assert!(parse_meminfo("MemTotal: x kB\n").is_err());
        assert!(parse_meminfo("MemTotal: 1 MB\n").is_err());
    }

    #[test]
    fn cgroup_files() {
        assert_eq!(
            parse_cgroup_cpu_stat(&fixture("cgroup_cpu.stat")).unwrap(),
            4_718_263_412
        );
        assert!(parse_cgroup_cpu_stat("user_usec 1\n").is_err());
        assert_eq!(parse_cgroup_cpu_max("max 100000\n").unwrap(), None);
        assert_eq!(
            parse_cgroup_cpu_max(&fixture("cgroup_cpu.max")).unwrap(),
            Some(1.5)
        );
        assert!(parse_cgroup_cpu_max("0 100000").is_err());
        assert!(parse_cgroup_cpu_max("abc 100000").is_err());
        assert!(parse_cgroup_cpu_max("").is_err());
        assert_eq!(
            parse_self_cgroup("0::/system.slice/postgresql@15-main.service\n").as_deref(),
            Some("/system.slice/postgresql@15-main.service")
        );
        assert_eq!(parse_self_cgroup("12:cpu,cpuacct:/\n"), None);
    }
}
