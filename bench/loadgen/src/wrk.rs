//! Reads wrk's text output (wrk has no machine-readable mode without a Lua script): the
//! request count, window, rate and every kind of failure, so a run that errored is shown
//! as such instead of as a fast one.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WrkResult {
    pub requests: u64,
    pub seconds: f64,
    pub rps: f64,
    pub non_2xx: u64,
    pub socket_errors: u64,
}

fn duration_seconds(text: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else {
        (text, 1.0)
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

pub fn parse(output: &str) -> Option<WrkResult> {
    let mut result = WrkResult::default();
    let mut saw_rate = false;
    for line in output.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Requests/sec:") {
            result.rps = rest.trim().parse().ok()?;
            saw_rate = true;
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            result.non_2xx = rest.trim().parse().ok()?;
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            result.socket_errors = rest
                .split(',')
                .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
        } else if let Some((count, rest)) = line.split_once(" requests in ") {
            result.requests = count.trim().parse().ok()?;
            result.seconds = duration_seconds(rest.split(',').next()?.trim())?;
        }
    }
    saw_rate.then_some(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "Running 10s test @ http://127.0.0.1:4000/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms  161.84us   5.21ms   90.11%
    Req/Sec    42.08k     1.02k   43.61k    77.00%
  418848 requests in 10.00s, 51.13MB read
  Non-2xx or 3xx responses: 12
  Socket errors: connect 0, read 3, write 0, timeout 2
Requests/sec:  41882.35
Transfer/sec:      5.11MB
";

    #[test]
    fn parses_counts_rate_and_failures() {
        let result = parse(OUTPUT).expect("parses");
        assert_eq!(result.requests, 418_848);
        assert_eq!(result.seconds, 10.0);
        assert_eq!(result.rps, 41_882.35);
        assert_eq!(result.non_2xx, 12);
        assert_eq!(result.socket_errors, 5);
    }

    #[test]
    fn clean_run_has_no_failures_and_truncated_output_is_rejected() {
        let clean = OUTPUT
            .replace("  Non-2xx or 3xx responses: 12\n", "")
            .replace(
                "  Socket errors: connect 0, read 3, write 0, timeout 2\n",
                "",
            );
        let result = parse(&clean).expect("parses");
        assert_eq!((result.non_2xx, result.socket_errors), (0, 0));
        assert_eq!(parse("Running 10s test @ http://127.0.0.1:1/\n"), None);
        assert_eq!(duration_seconds("1.00m"), Some(60.0));
        assert_eq!(duration_seconds("500.00ms"), Some(0.5));
    }
}
