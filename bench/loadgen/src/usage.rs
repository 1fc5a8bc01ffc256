//! What a proxy costs, read from /proc: CPU seconds (utime + stime) and peak RSS (VmHWM)
//! summed over a process and all its descendants, because nginx and haproxy do their work
//! in worker processes while Envoy and Weft use threads of one process.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io;
use std::process::Command;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// utime + stime of every process in the trees, in seconds.
    pub cpu_seconds: f64,
    /// Sum of VmHWM (peak resident set) over the processes alive now.
    pub vmhwm_kib: u64,
    /// Sum of VmRSS over the processes alive now.
    pub vmrss_kib: u64,
    pub processes: usize,
    pub threads: u64,
    /// Busy time of the whole machine (all CPUs, /proc/stat) at the sample: the difference
    /// between two samples, less what the benchmark's own processes used, is load from
    /// elsewhere that may have disturbed the window.
    #[serde(default)]
    pub machine_busy_seconds: f64,
}

struct Stat {
    ppid: u32,
    ticks: u64,
    threads: u64,
}

/// Fields after the `(comm)` of /proc/PID/stat; comm may hold spaces and parentheses,
/// hence the split at the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `fields[0]` is field 3 (state) of proc(5): field N sits at index N - 3.
    let num = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        ppid: u32::try_from(num(4)?).ok()?,
        ticks: num(14)? + num(15)?,
        threads: num(20)?,
    })
}

fn status_kib(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// user + nice + system + irq + softirq + steal of the `cpu` line of /proc/stat, in ticks.
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

/// Clock ticks per second of /proc's time fields (USER_HZ); `getconf` avoids libc calls.
pub fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|&n: &u64| n > 0)
        .unwrap_or(100)
}

/// The given roots and every live descendant of them.
fn process_tree(roots: &[u32]) -> io::Result<BTreeSet<u32>> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in fs::read_dir("/proc")? {
        let Ok(pid) = entry?.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        // Processes exit between read_dir and read: those are simply not in the tree.
        if let Some(stat) = fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .as_deref()
            .and_then(parse_stat)
        {
            children.entry(stat.ppid).or_default().push(pid);
        }
    }
    let mut tree = BTreeSet::new();
    let mut todo: Vec<u32> = roots.to_vec();
    while let Some(pid) = todo.pop() {
        if tree.insert(pid) {
            todo.extend(children.get(&pid).into_iter().flatten());
        }
    }
    Ok(tree)
}

/// Samples the trees under `roots`. A root that has exited counts as nothing.
pub fn sample(roots: &[u32], ticks_per_second: u64) -> io::Result<Usage> {
    let mut usage = Usage::default();
    let mut ticks = 0;
    for pid in process_tree(roots)? {
        let (Ok(stat), Ok(status)) = (
            fs::read_to_string(format!("/proc/{pid}/stat")),
            fs::read_to_string(format!("/proc/{pid}/status")),
        ) else {
            continue;
        };
        let Some(stat) = parse_stat(&stat) else {
            continue;
        };
        ticks += stat.ticks;
        usage.threads += stat.threads;
        usage.processes += 1;
        usage.vmhwm_kib += status_kib(&status, "VmHWM:");
        usage.vmrss_kib += status_kib(&status, "VmRSS:");
    }
    usage.cpu_seconds = ticks as f64 / ticks_per_second as f64;
    let busy = fs::read_to_string("/proc/stat")
        .ok()
        .as_deref()
        .and_then(machine_busy_ticks);
    usage.machine_busy_seconds = busy.unwrap_or(0) as f64 / ticks_per_second as f64;
    Ok(usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_a_hostile_comm() {
        let line = "4242 (nginx: worker) (x)) S 4241 4241 4241 0 -1 4194624 300 0 0 0 \
                    153 27 0 0 20 0 3 0 12345 10000000 500 18446744073709551615";
        let stat = parse_stat(line).expect("parses");
        assert_eq!(stat.ppid, 4241);
        assert_eq!(stat.ticks, 180);
        assert_eq!(stat.threads, 3);
    }

    #[test]
    fn machine_busy_leaves_out_idle_and_iowait() {
        let text = "cpu  100 5 30 9000 70 2 3 4 0 0\ncpu0 50 0 15 4500 35 1 1 2 0 0\n";
        assert_eq!(machine_busy_ticks(text), Some(144));
    }

    #[test]
    fn status_fields() {
        let text = "Name:\tenvoy\nVmPeak:\t  900 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\n";
        assert_eq!(status_kib(text, "VmHWM:"), 51200);
        assert_eq!(status_kib(text, "VmRSS:"), 40960);
        assert_eq!(status_kib(text, "VmSwap:"), 0);
    }

    #[test]
    fn own_process_is_measured_and_children_are_found() {
        let mut child = Command::new("sleep").arg("5").spawn().expect("spawn sleep");
        let me = std::process::id();
        let tree = process_tree(&[me]).expect("read /proc");
        let found = tree.contains(&child.id());
        let usage = sample(&[me], clock_ticks()).expect("sample");
        child.kill().expect("kill sleep");
        child.wait().expect("reap sleep");
        assert!(found, "child {} not under {me}", child.id());
        assert!(usage.processes >= 2);
        assert!(usage.vmhwm_kib > 0 && usage.threads >= 1);
    }
}
