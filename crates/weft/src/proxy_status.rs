//! `weft proxy-status`: `istioctl proxy-status` for `weft control` — one row per connected
//! proxy with each xDS type's SYNCED / STALE / NACK / NOT SENT, a NACKed type followed by
//! the proxy's error. Reads the control plane's `/debug/syncz`.
//! Exit codes: 0 when the status was read, 1 when the control plane could not be asked.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use weft_control::debug::client;
use weft_control::debug::syncz::{SyncState, SyncStatus};

use crate::cli::{ProxyStatusArgs, StatusOutput};

/// How long a debug page may take to arrive.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The columns after NAME, in istioctl's order.
const COLUMNS: [&str; 4] = ["CDS", "LDS", "EDS", "RDS"];

/// `GET path` on the debug server at `address`: status code and body, or why not.
pub(crate) fn fetch(address: &str, path: &str) -> Result<(u16, String), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime
        .block_on(client::get(address, path, TIMEOUT))
        .map_err(|e| e.to_string())
}

/// Left-aligned columns three spaces apart, like istioctl's tabwriter output.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] - cell.chars().count() + 3;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// istioctl's NAME: `POD.NAMESPACE`, or the full node id when two proxies share it.
fn names(entries: &[SyncStatus]) -> Vec<String> {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for e in entries {
        *seen
            .entry(weft_control::debug::short_name(&e.proxy))
            .or_default() += 1;
    }
    entries
        .iter()
        .map(|e| {
            let short = weft_control::debug::short_name(&e.proxy);
            if seen[short] > 1 {
                e.proxy.clone()
            } else {
                short.to_string()
            }
        })
        .collect()
}

/// The table, each proxy with NACKed types followed by one line per NACK.
pub fn render(entries: &[SyncStatus]) -> String {
    let header = ["NAME", "CDS", "LDS", "EDS", "RDS", "VERSION"];
    let mut rows = Vec::new();
    let mut errors: Vec<Vec<String>> = Vec::new();
    for (e, name) in entries.iter().zip(names(entries)) {
        let mut row = vec![name];
        let mut nacks = Vec::new();
        for column in COLUMNS {
            let state = e.xds.get(column);
            row.push(state.map_or(SyncState::NotSent, |t| t.status).to_string());
            if let Some(t) = state.filter(|t| t.status == SyncState::Nack) {
                nacks.push(format!(
                    "{column} NACK of version {}: {}",
                    t.sent_version.as_deref().unwrap_or("?"),
                    t.error.as_deref().unwrap_or_default()
                ));
            }
        }
        row.push(if e.istio_version.is_empty() {
            "-".to_string()
        } else {
            e.istio_version.clone()
        });
        rows.push(row);
        errors.push(nacks);
    }
    // Laid out together, then each NACKed proxy's errors inserted under its row.
    let text = table(&header, &rows);
    let mut lines = text.lines();
    let mut out = String::new();
    if let Some(h) = lines.next() {
        out.push_str(h);
        out.push('\n');
    }
    for (line, nacks) in lines.zip(errors) {
        out.push_str(line);
        out.push('\n');
        for n in nacks {
            out.push_str("    ");
            out.push_str(&n);
            out.push('\n');
        }
    }
    out
}

pub fn run(args: &ProxyStatusArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let body = match fetch(&args.control_address, "/debug/syncz") {
        Ok((200, body)) => body,
        Ok((code, body)) => {
            let _ = writeln!(
                err,
                "weft proxy-status: /debug/syncz on {} answered {code}: {}",
                args.control_address,
                body.trim()
            );
            return 1;
        }
        Err(e) => {
            let _ = writeln!(err, "weft proxy-status: {e}");
            return 1;
        }
    };
    let entries: Vec<SyncStatus> = match serde_json::from_str(&body) {
        Ok(entries) => entries,
        Err(e) => {
            let _ = writeln!(
                err,
                "weft proxy-status: {} did not answer /debug/syncz with a sync status list: {e}",
                args.control_address
            );
            return 1;
        }
    };
    let written = match args.output {
        StatusOutput::Json => write!(out, "{body}"),
        StatusOutput::Table => write!(out, "{}", render(&entries)),
    };
    match written {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(err, "weft proxy-status: {e}");
            1
        }
    }
}
