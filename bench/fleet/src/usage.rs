//! What the control plane costs, read from /proc/PID: CPU seconds (utime + stime, all
//! threads), resident memory now (VmRSS) and at its peak (VmHWM); and, from /proc/stat,
//! how busy the rest of the machine was meanwhile.

use std::process::Command;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub cpu_s: f64,
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

/// Samples one process; `None` when no pid was given or it is gone.
#[derive(Clone, Copy, Debug)]
pub struct Sampler {
    pid: Option<u32>,
    ticks_per_s: f64,
}

/// Fields after the `(comm)` of /proc/PID/stat (comm may hold spaces and parentheses):
/// utime and stime are fields 14 and 15 of proc(5), at index N - 3 after the `)`.
fn ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let num = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(num(14)? + num(15)?)
}

fn status_kib(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Busy CPU seconds of the whole machine (user + nice + system + irq + softirq + steal of
/// /proc/stat's `cpu` line), in ticks.
fn machine_busy_ticks(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    Some(
        [0, 1, 2, 5, 6, 7]
            .iter()
            .filter_map(|&i| fields.get(i))
            .sum(),
    )
}

/// CPU seconds used by everything on the machine except the control plane and this
/// process: the load from elsewhere that may have disturbed a run.
#[derive(Clone, Copy, Debug)]
pub struct Others {
    machine_s: f64,
    mine_s: f64,
}

impl Sampler {
    pub fn others(&self) -> Option<Others> {
        let machine = std::fs::read_to_string("/proc/stat").ok()?;
        let me = std::fs::read_to_string("/proc/self/stat").ok()?;
        let control = self.sample().map_or(0.0, |s| s.cpu_s);
        Some(Others {
            machine_s: machine_busy_ticks(&machine)? as f64 / self.ticks_per_s,
            mine_s: ticks(&me)? as f64 / self.ticks_per_s + control,
        })
    }
}

impl Others {
    /// CPUs busy on average with other work between `self` and `later`, over `wall_s`.
    pub fn load_until(&self, later: &Others, wall_s: f64) -> f64 {
        let other = (later.machine_s - self.machine_s) - (later.mine_s - self.mine_s);
        (other / wall_s.max(1e-9)).max(0.0)
    }
}

impl Sampler {
    pub fn new(pid: Option<u32>) -> Self {
        // USER_HZ from getconf, which avoids libc calls; 100 on every Linux in practice.
        let ticks_per_s = Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|t| t.trim().parse::<u32>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(100);
        Self {
            pid,
            ticks_per_s: f64::from(ticks_per_s),
        }
    }

    pub fn enabled(&self) -> bool {
        self.pid.is_some()
    }

    pub fn sample(&self) -> Option<Sample> {
        let pid = self.pid?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        Some(Sample {
            cpu_s: ticks(&stat)? as f64 / self.ticks_per_s,
            rss_kib: status_kib(&status, "VmRSS:"),
            hwm_kib: status_kib(&status, "VmHWM:"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_and_status_fields() {
        let stat = "4242 (weft (control)) S 1 4242 4242 0 -1 4194624 300 0 0 0 \
                    153 27 0 0 20 0 3 0 12345 10000000 500";
        assert_eq!(ticks(stat), Some(180));
        let status = "Name:\tweft\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\n";
        assert_eq!(status_kib(status, "VmHWM:"), 51200);
        assert_eq!(status_kib(status, "VmSwap:"), 0);
    }

    #[test]
    fn machine_busy_leaves_out_idle_and_iowait() {
        let text = "cpu  100 5 30 9000 70 2 3 4 0 0\ncpu0 50 0 15 4500 35 1 1 2 0 0\n";
        assert_eq!(machine_busy_ticks(text), Some(144));
    }

    #[test]
    fn samples_this_process() {
        let s = Sampler::new(Some(std::process::id()))
            .sample()
            .expect("sample");
        assert!(s.rss_kib > 0 && s.hwm_kib >= s.rss_kib);
        assert!(Sampler::new(None).sample().is_none());
    }
}
