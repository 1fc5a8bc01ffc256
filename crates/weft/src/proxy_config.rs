//! `weft proxy-config`: `istioctl proxy-config` for `weft control` — what the control plane
//! generated for one proxy, as istioctl-style tables or JSON. Reads
//! `/debug/config_dump?proxyID=`.
//! Exit codes: 0 when shown, 1 when the proxy is unknown or the control plane unreachable.

use std::io::Write;

use weft_control::debug::UnknownProxy;
use weft_control::debug::client::query_escape;
use weft_control::debug::config_dump::ConfigDump;

use crate::cli::{ConfigKind, ConfigOutput, ProxyConfigArgs};
use crate::proxy_status::{fetch, table};

fn dash(s: &str) -> String {
    if s.is_empty() {
        "-".to_string()
    } else {
        s.to_string()
    }
}

/// istioctl's columns for a cluster named `DIRECTION|PORT|SUBSET|FQDN`; other names (such
/// as `BlackHoleCluster`) are the FQDN alone.
fn cluster_columns(name: &str) -> [String; 4] {
    match name.split('|').collect::<Vec<_>>()[..] {
        [direction, port, subset, fqdn] => [fqdn, port, subset, direction].map(dash),
        _ => [name.to_string(), dash(""), dash(""), dash("")],
    }
}

fn clusters(dump: &ConfigDump) -> String {
    let rows: Vec<Vec<String>> = dump
        .clusters()
        .iter()
        .map(|c| {
            let mut row = cluster_columns(&c.name).to_vec();
            row.push(
                c.summary
                    .as_ref()
                    .map_or_else(|| dash(""), |s| dash(&s.kind)),
            );
            row
        })
        .collect();
    table(
        &["SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE"],
        &rows,
    )
}

fn listeners(dump: &ConfigDump) -> String {
    let rows: Vec<Vec<String>> = dump
        .listeners()
        .iter()
        .map(|l| match &l.summary {
            Some(s) => vec![
                l.name.clone(),
                dash(&s.address),
                s.port.to_string(),
                s.filter_chains.to_string(),
            ],
            None => vec![l.name.clone(), dash(""), dash(""), dash("")],
        })
        .collect();
    table(&["NAME", "ADDRESS", "PORT", "FILTER CHAINS"], &rows)
}

fn routes(dump: &ConfigDump) -> String {
    let rows: Vec<Vec<String>> = dump
        .routes()
        .iter()
        .map(|r| match &r.summary {
            Some(s) => vec![
                r.name.clone(),
                s.virtual_hosts.len().to_string(),
                s.virtual_hosts
                    .iter()
                    .map(|v| v.routes)
                    .sum::<usize>()
                    .to_string(),
            ],
            None => vec![r.name.clone(), dash(""), dash("")],
        })
        .collect();
    table(&["NAME", "VIRTUAL HOSTS", "ROUTES"], &rows)
}

fn endpoints(dump: &ConfigDump) -> String {
    let rows: Vec<Vec<String>> = dump
        .endpoints()
        .iter()
        .map(|e| match &e.summary {
            Some(s) => {
                let addresses: Vec<&str> = s.endpoints.iter().map(|e| e.address.as_str()).collect();
                vec![
                    e.name.clone(),
                    s.endpoints.len().to_string(),
                    dash(&addresses.join(",")),
                ]
            }
            None => vec![e.name.clone(), dash(""), dash("")],
        })
        .collect();
    table(&["CLUSTER", "ENDPOINTS", "ADDRESSES"], &rows)
}

/// The credentials the control plane serves the proxy (its namespace's Kubernetes Secrets
/// named by `credentialName`, on the TLS port only); the workload's own certificate comes
/// from its agent, not from here.
fn secrets(dump: &ConfigDump) -> String {
    let rows: Vec<Vec<String>> = dump
        .secrets()
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.kind.clone(),
                s.not_after.map_or_else(
                    || dash(""),
                    |t| weft_proxy::admin::config_dump::rfc3339(t as f64),
                ),
            ]
        })
        .collect();
    table(&["RESOURCE NAME", "TYPE", "NOT AFTER"], &rows)
}

fn short(kind: ConfigKind, dump: &ConfigDump) -> String {
    match kind {
        ConfigKind::Clusters => clusters(dump),
        ConfigKind::Listeners => listeners(dump),
        ConfigKind::Routes => routes(dump),
        ConfigKind::Endpoints => endpoints(dump),
        ConfigKind::Secrets => secrets(dump),
        ConfigKind::All => [
            clusters(dump),
            listeners(dump),
            routes(dump),
            endpoints(dump),
        ]
        .join("\n"),
    }
}

fn json(kind: ConfigKind, dump: &ConfigDump) -> Result<String, serde_json::Error> {
    let value = match kind {
        ConfigKind::Clusters => serde_json::to_value(dump.clusters())?,
        ConfigKind::Listeners => serde_json::to_value(dump.listeners())?,
        ConfigKind::Routes => serde_json::to_value(dump.routes())?,
        ConfigKind::Endpoints => serde_json::to_value(dump.endpoints())?,
        ConfigKind::Secrets => serde_json::to_value(dump.secrets())?,
        ConfigKind::All => serde_json::to_value(dump)?,
    };
    Ok(serde_json::to_string_pretty(&value)? + "\n")
}

pub fn run(args: &ProxyConfigArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let path = format!("/debug/config_dump?proxyID={}", query_escape(&args.proxy));
    let body = match fetch(&args.control_address, &path) {
        Ok((200, body)) => body,
        Ok((code, body)) => {
            let message = match serde_json::from_str::<UnknownProxy>(&body) {
                Ok(unknown) if unknown.connected.is_empty() => {
                    format!("{}; no proxies are connected", unknown.error)
                }
                Ok(unknown) => format!(
                    "{}; connected proxies: {}",
                    unknown.error,
                    unknown.connected.join(", ")
                ),
                Err(_) => format!(
                    "{path} on {} answered {code}: {}",
                    args.control_address,
                    body.trim()
                ),
            };
            let _ = writeln!(err, "weft proxy-config: {message}");
            return 1;
        }
        Err(e) => {
            let _ = writeln!(err, "weft proxy-config: {e}");
            return 1;
        }
    };
    let dump: ConfigDump = match serde_json::from_str(&body) {
        Ok(dump) => dump,
        Err(e) => {
            let _ = writeln!(
                err,
                "weft proxy-config: {} did not answer {path} with a config dump: {e}",
                args.control_address
            );
            return 1;
        }
    };
    let text = match args.output {
        ConfigOutput::Short => Ok(short(args.kind, &dump)),
        ConfigOutput::Json => json(args.kind, &dump),
    };
    match text
        .map_err(|e| e.to_string())
        .and_then(|t| out.write_all(t.as_bytes()).map_err(|e| e.to_string()))
    {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(err, "weft proxy-config: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn istio_cluster_names_split_into_columns() {
        assert_eq!(
            cluster_columns("outbound|9080|v1|reviews.default.svc.cluster.local"),
            [
                "reviews.default.svc.cluster.local",
                "9080",
                "v1",
                "outbound"
            ]
        );
        assert_eq!(
            cluster_columns("inbound|8080||"),
            ["-", "8080", "-", "inbound"]
        );
        assert_eq!(
            cluster_columns("BlackHoleCluster"),
            ["BlackHoleCluster", "-", "-", "-"]
        );
    }
}
