//! The resolver behind `respect_dns_ttl`: getaddrinfo hides record TTLs, so clusters that
//! schedule refreshes from them ask name servers directly (hickory), the way Envoy's c-ares
//! resolver does: the hosts file first, `localhost` never leaves the machine, and NXDOMAIN or
//! NODATA is an answer with no addresses rather than a failure.

use super::Resolution;
use crate::model::cluster::DnsFamily;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::op::Query;
use hickory_resolver::proto::rr::{Name, RecordType};
use hickory_resolver::{Hosts, TokioResolver};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Where the name servers come from.
#[derive(Debug, Clone)]
enum Servers {
    /// `/etc/resolv.conf`: its name servers, search list and options.
    System,
    /// One name server, UDP then TCP, with default options (tests run their own).
    At(SocketAddr),
}

/// A resolver that reports record TTLs. It is built on first use, and built again after a
/// failure to build it (a missing `/etc/resolv.conf` fails that resolution, not the cluster).
pub struct TtlResolver {
    servers: Servers,
    hosts_file: Option<PathBuf>,
    inner: Option<TokioResolver>,
}

/// One address family's outcome: its addresses and their shortest TTL (zero for answers with
/// no TTL, as c-ares reports for the hosts file and `localhost`), or why the lookup failed.
type FamilyAnswer = Result<(Vec<IpAddr>, Duration), String>;

impl TtlResolver {
    /// The system's name servers, and `/etc/hosts`.
    pub fn system() -> Self {
        TtlResolver {
            servers: Servers::System,
            hosts_file: Some(PathBuf::from("/etc/hosts")),
            inner: None,
        }
    }

    /// One name server, and `hosts_file` if given.
    pub fn with_name_server(addr: SocketAddr, hosts_file: Option<PathBuf>) -> Self {
        TtlResolver {
            servers: Servers::At(addr),
            hosts_file,
            inner: None,
        }
    }

    fn resolver(&mut self) -> Result<&TokioResolver, String> {
        if self.inner.is_none() {
            let mut builder = match &self.servers {
                Servers::System => TokioResolver::builder_tokio()
                    .map_err(|e| format!("reading the system resolver configuration: {e}"))?,
                Servers::At(addr) => {
                    let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                        .into_iter()
                        .map(|mut c| {
                            c.port = addr.port();
                            c
                        })
                        .collect();
                    let ns = NameServerConfig::new(addr.ip(), true, connections);
                    TokioResolver::builder_with_config(
                        ResolverConfig::from_name_servers(vec![ns]),
                        TokioRuntimeProvider::default(),
                    )
                }
            };
            let opts: &mut ResolverOpts = builder.options_mut();
            // The hosts file is read here, per resolution, so that its answers carry no TTL
            // (hickory gives them a day) and edits to it are seen, as c-ares sees them.
            opts.use_hosts_file = ResolveHosts::Never;
            // CNAMEs stay in the answer: their TTLs bound the answer's, as in c-ares.
            opts.preserve_intermediates = true;
            let built = builder
                .build()
                .map_err(|e| format!("building the resolver: {e}"))?;
            self.inner = Some(built);
        }
        Ok(self.inner.as_ref().expect("built above"))
    }

    /// Resolves `host` for `family` with Envoy's (c-ares') family rules: AUTO asks for IPv6
    /// and falls back to IPv4 when that gives no address, V4_PREFERRED the other way round,
    /// ALL asks for both.
    pub async fn resolve(&mut self, host: &str, family: DnsFamily) -> Resolution {
        let name = match Name::from_str(host) {
            Ok(n) => n,
            Err(e) => return Resolution::Failed(format!("malformed name {host}: {e}")),
        };
        let resolver = match self.resolver() {
            Ok(r) => r.clone(),
            Err(e) => return Resolution::Failed(e),
        };
        // Each refresh asks the name servers afresh: a cached answer would come back with
        // its TTL counted down, and a refresh that lands as it expires would read zero.
        resolver.clear_cache();
        let hosts = self.hosts_file.as_ref().and_then(|p| {
            let f = std::fs::File::open(p).ok()?;
            let mut h = Hosts::default();
            h.read_hosts_conf(f).ok()?;
            Some(h)
        });
        let one = async |rt: RecordType| lookup(&resolver, hosts.as_ref(), &name, rt).await;
        let answer = match family {
            DnsFamily::V4Only => one(RecordType::A).await,
            DnsFamily::V6Only => one(RecordType::AAAA).await,
            DnsFamily::Auto | DnsFamily::V4Preferred => {
                let (first, second) = if family == DnsFamily::Auto {
                    (RecordType::AAAA, RecordType::A)
                } else {
                    (RecordType::A, RecordType::AAAA)
                };
                match one(first).await {
                    Ok((addrs, ttl)) if !addrs.is_empty() => Ok((addrs, ttl)),
                    // c-ares calls the lookup a success if either family's query was one.
                    first => match (first, one(second).await) {
                        (_, Ok(second)) => Ok(second),
                        (Ok(empty), Err(_)) => Ok(empty),
                        (Err(_), Err(e)) => Err(e),
                    },
                }
            }
            DnsFamily::All => {
                let (v4, v6) = (one(RecordType::A).await, one(RecordType::AAAA).await);
                match (v4, v6) {
                    (Ok((mut a, t4)), Ok((b, t6))) => {
                        a.extend(b);
                        Ok((a, t4.min(t6)))
                    }
                    (Ok(ok), Err(e)) | (Err(e), Ok(ok)) => {
                        if ok.0.is_empty() {
                            Err(e)
                        } else {
                            Ok(ok)
                        }
                    }
                    (Err(e), Err(_)) => Err(e),
                }
            }
        };
        match answer {
            Ok((addrs, ttl)) => Resolution::Answer { addrs, ttl },
            Err(e) => Resolution::Failed(e),
        }
    }
}

/// One family: the hosts file, then `localhost`, then the name servers.
async fn lookup(
    resolver: &TokioResolver,
    hosts: Option<&Hosts>,
    name: &Name,
    rt: RecordType,
) -> FamilyAnswer {
    let query = Query::query(name.clone(), rt);
    if let Some(found) = hosts.and_then(|h| h.lookup_static_host(&query)) {
        let addrs: Vec<IpAddr> = found
            .answers()
            .iter()
            .filter_map(|r| r.data.ip_addr())
            .collect();
        if !addrs.is_empty() {
            return Ok((addrs, Duration::ZERO));
        }
    }
    if is_localhost(name) {
        let ip = match rt {
            RecordType::AAAA => IpAddr::V6(Ipv6Addr::LOCALHOST),
            _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        return Ok((vec![ip], Duration::ZERO));
    }
    match resolver.lookup(name.clone(), rt).await {
        Ok(found) => {
            let addrs = found
                .answers()
                .iter()
                .filter(|r| r.record_type() == rt)
                .filter_map(|r| r.data.ip_addr())
                .collect();
            let ttl = found.answers().iter().map(|r| r.ttl).min().unwrap_or(0);
            Ok((addrs, Duration::from_secs(u64::from(ttl))))
        }
        Err(e) if e.is_no_records_found() => Ok((Vec::new(), Duration::ZERO)),
        Err(e) => Err(format!("{rt} lookup of {name} failed: {e}")),
    }
}

/// RFC 6761: `localhost` and names under it are the loopback addresses.
fn is_localhost(name: &Name) -> bool {
    let mut n = name.to_lowercase();
    n.set_fqdn(true);
    Name::from_ascii("localhost.").is_ok_and(|l| l.zone_of(&n))
}
