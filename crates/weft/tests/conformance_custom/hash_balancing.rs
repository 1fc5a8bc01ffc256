//! RING_HASH, MAGLEV and route hash policies, and RANDOM, compared between Envoy and Weft.
//! The backends' ports differ from run to run, and with them the rings, so the host each
//! key must reach is computed here from the ports with Envoy's algorithm (weft-proxy's
//! tables, which are ports of Envoy's): both proxies must reach exactly that host.

use super::*;
use std::net::SocketAddr;
use weft_proxy::upstream::hashing::{Maglev, Ring, normalize, normalize_by_locality};
use weft_proxy::upstream::xxhash::xxh64;

const BACKENDS: [&str; 3] = ["a", "b", "c"];
/// Keys tried per policy.
const KEYS: usize = 40;
/// Requests to the RANDOM cluster (weights 3:1, which RANDOM ignores): a 3:1 split would
/// be ten standard deviations from an even one.
const RANDOM_REQUESTS: u64 = 400;
const SIGMAS: f64 = 5.0;

enum Table {
    Ring(Ring),
    Maglev(Maglev),
}

/// `host_selection_retry_max_attempts` of the retry routes.
const RETRY_LOOKUPS: u32 = 5;

impl Table {
    fn host(&self, hash: u64) -> &'static str {
        self.lookup(hash, 0)
    }

    fn lookup(&self, hash: u64, attempt: u32) -> &'static str {
        let i = match self {
            Table::Ring(r) => r.pick(hash, attempt),
            Table::Maglev(m) => m.pick(hash, attempt),
        };
        i.map_or("none", |i| BACKENDS[i])
    }

    /// The table statistics Envoy reports for it, by name.
    fn stats(&self, cluster: &str) -> BTreeMap<String, String> {
        let named: Vec<(&str, u64)> = match self {
            Table::Ring(r) => {
                let [size, min, max] = r.stats.unwrap_or_default();
                vec![
                    ("ring_hash_lb.size", size),
                    ("ring_hash_lb.min_hashes_per_host", min),
                    ("ring_hash_lb.max_hashes_per_host", max),
                ]
            }
            Table::Maglev(m) => {
                let [min, max] = m.stats.unwrap_or_default();
                vec![
                    ("maglev_lb.min_entries_per_host", min),
                    ("maglev_lb.max_entries_per_host", max),
                ]
            }
        };
        named
            .into_iter()
            .map(|(n, v)| (format!("cluster.{cluster}.{n}"), v.to_string()))
            .collect()
    }

    /// Where a retry that avoids the first host goes: the first further lookup that gives
    /// another host, else the last one.
    fn retry_host(&self, hash: u64) -> &'static str {
        let first = self.host(hash);
        let mut host = first;
        for attempt in 1..=RETRY_LOOKUPS {
            host = self.lookup(hash, attempt);
            if host != first {
                break;
            }
        }
        host
    }
}

/// Keys whose retry (after the first try failed) did not reach the predicted host.
async fn retry_misses(
    addr: SocketAddr,
    table: &Table,
    path: &str,
) -> Result<Vec<(String, String, String)>, Error> {
    let mut out = Vec::new();
    for k in 0..KEYS {
        let key = format!("user-{k}");
        let predicted = table.retry_host(x(&key));
        let req = HttpRequest::get("example.com", path)
            .header("x-user", &key)
            .header("x-echo-fail-key", &format!("{path}-{key}-{}", addr.port()))
            .header("x-echo-fail-first", "1");
        let (got, _) = backend_of(addr, &req).await?;
        if got != predicted {
            out.push((key, predicted.to_string(), got));
        }
    }
    Ok(out)
}

fn hosts(
    rig: &Rig,
    weights: [u32; 3],
) -> Result<Vec<weft_proxy::upstream::hashing::Weighted>, Error> {
    let mut out = Vec::new();
    for (i, name) in BACKENDS.iter().enumerate() {
        let port = rig.backend(name)?.port();
        out.push((i, SocketAddr::from(([127, 0, 0, 1], port)), weights[i]));
    }
    Ok(normalize(out.into_iter()))
}

async fn backend_of(
    addr: SocketAddr,
    req: &HttpRequest,
) -> Result<(String, weft_testkit::HttpResponse), Error> {
    let resp = client::send(addr, req).await?;
    let who = EchoSeen::parse(&resp.body)
        .map(|s| s.backend)
        .unwrap_or_else(|| format!("{} {}", resp.status, String::from_utf8_lossy(&resp.body)));
    Ok((who, resp))
}

/// Keys whose host differs from the prediction: (key, predicted, reached).
async fn misses(
    addr: SocketAddr,
    table: &Table,
    request: impl Fn(&str) -> HttpRequest,
    hash: impl Fn(&str) -> u64,
) -> Result<Vec<(String, String, String)>, Error> {
    let mut out = Vec::new();
    for k in 0..KEYS {
        let key = format!("user-{k}");
        let predicted = table.host(hash(&key));
        let (got, _) = backend_of(addr, &request(&key)).await?;
        if got != predicted {
            out.push((key, predicted.to_string(), got));
        }
    }
    Ok(out)
}

fn none() -> Vec<(String, String, String)> {
    Vec::new()
}

fn x(s: &str) -> u64 {
    xxh64(s.as_bytes(), 0)
}

#[test]
pub(crate) fn hash_balancing() {
    block_on(custom("hash_balancing", async |rig: &Rig| {
        let addr = rig.addr("listener")?;
        let mut out = Vec::new();
        let ring = Table::Ring(Ring::new(&hosts(rig, [1, 1, 2])?, 1024, 8 * 1024 * 1024));
        let small_ring = Table::Ring(Ring::new(&hosts(rig, [1, 1, 1])?, 7, 16));
        let maglev = Table::Maglev(Maglev::new(&hosts(rig, [1, 3, 1])?, 65537));
        let small_maglev = Table::Maglev(Maglev::new(&hosts(rig, [1, 1, 1])?, 101));
        // Localities z1 (a, weight 1) and z2 (b, weight 1; c, weight 2) weighted 1 : 3, as
        // Envoy folds them into the table: a 1/4, b 1/4, c 1/2.
        let port = |name: &str| -> Result<SocketAddr, Error> {
            Ok(SocketAddr::from((
                [127, 0, 0, 1],
                rig.backend(name)?.port(),
            )))
        };
        let maglev_localities = Table::Maglev(Maglev::new(
            &normalize_by_locality(
                &[
                    (0, port("a")?, 1, 0, 1),
                    (1, port("b")?, 1, 1, 3),
                    (2, port("c")?, 2, 1, 3),
                ],
                &[(0, 1), (1, 3)],
            ),
            65537,
        ));
        let get = |path: &str| HttpRequest::get("example.com", path);

        out.push(Outcome::new(
            "ring: header",
            misses(addr, &ring, |k| get("/ring/header").header("x-user", k), x).await?,
            none(),
        ));
        out.push(Outcome::new(
            "ring: query parameter",
            misses(
                addr,
                &ring,
                |k| get(&format!("/ring/query?a=1&user={k}")),
                x,
            )
            .await?,
            none(),
        ));
        out.push(Outcome::new(
            "ring: source IP",
            misses(addr, &ring, |_| get("/ring/ip"), |_| x("127.0.0.1")).await?,
            none(),
        ));
        out.push(Outcome::new(
            "ring: a terminal policy that hashes stops the rest",
            misses(
                addr,
                &ring,
                |k| {
                    get("/ring/terminal")
                        .header("x-first", &format!("f-{k}"))
                        .header("x-user", k)
                },
                |k| x(&format!("f-{k}")),
            )
            .await?,
            none(),
        ));
        out.push(Outcome::new(
            "ring: a terminal policy that does not hash lets the next one",
            misses(
                addr,
                &ring,
                |k| get("/ring/terminal").header("x-user", k),
                x,
            )
            .await?,
            none(),
        ));
        out.push(Outcome::new(
            "ring: a cookie sent",
            misses(
                addr,
                &ring,
                |k| get("/ring/cookie").header("cookie", &format!("other=1; sticky=\"{k}\"")),
                x,
            )
            .await?,
            none(),
        ));
        out.push(Outcome::new(
            "ring: minimum and maximum ring size",
            misses(
                addr,
                &small_ring,
                |k| get("/small-ring").header("x-user", k),
                x,
            )
            .await?,
            none(),
        ));
        out.push(Outcome::new(
            "maglev: locality weights folded into the table",
            misses(
                addr,
                &maglev_localities,
                |k| get("/maglev/localities").header("x-user", k),
                x,
            )
            .await?,
            none(),
        ));
        out.push(Outcome::new(
            "maglev: header, weights 1:3:1",
            misses(
                addr,
                &maglev,
                |k| get("/maglev/header").header("x-user", k),
                x,
            )
            .await?,
            none(),
        ));
        out.push(Outcome::new(
            "maglev: table_size 101",
            misses(
                addr,
                &small_maglev,
                |k| get("/maglev/small").header("x-user", k),
                x,
            )
            .await?,
            none(),
        ));

        out.push(Outcome::new(
            "ring: a retry steps along the ring past the host tried",
            retry_misses(addr, &ring, "/ring/retry").await?,
            none(),
        ));
        out.push(Outcome::new(
            "maglev: a retry flips the hash past the host tried",
            retry_misses(addr, &maglev, "/maglev/retry").await?,
            none(),
        ));
        // The predictions themselves must spread, or agreeing with them proves little.
        let predicted: std::collections::BTreeSet<&str> = (0..KEYS)
            .map(|k| ring.host(x(&format!("user-{k}"))))
            .chain((0..KEYS).map(|k| maglev.host(x(&format!("user-{k}")))))
            .collect();
        out.push(Outcome::new(
            "the predicted hosts cover every backend",
            predicted.len(),
            BACKENDS.len(),
        ));

        let resp = weft_testkit::admin::get(rig.proxy().admin(), "/stats").await?;
        let all = weft_testkit::admin::exposition::text_stats(&String::from_utf8_lossy(&resp.body));
        for (table, cluster) in [
            (&ring, "ring"),
            (&small_ring, "small_ring"),
            (&maglev, "maglev"),
            (&small_maglev, "small_maglev"),
            (&maglev_localities, "maglev_localities"),
        ] {
            let expected = table.stats(cluster);
            let seen: BTreeMap<String, String> = expected
                .keys()
                .map(|k| {
                    (
                        k.clone(),
                        all.get(k).cloned().unwrap_or_else(|| "absent".into()),
                    )
                })
                .collect();
            // The figures depend on this run's backend ports, which differ between the
            // proxies' runs: each is held to its own prediction, and only the verdict is
            // compared across proxies.
            let verdict = |v: BTreeMap<String, String>| {
                if v == expected {
                    "as predicted from this run's ports".to_string()
                } else {
                    format!("{v:?}")
                }
            };
            out.push(Outcome::new(
                format!("{cluster}: table statistics"),
                verdict(seen),
                verdict(expected.clone()),
            ));
        }

        // A cookie made up when the request has none: its value decides the host, and
        // sending it back reaches the same host without a new one.
        let (first, resp) = backend_of(addr, &get("/ring/cookie")).await?;
        let set: Vec<String> = resp
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        let value = set
            .first()
            .and_then(|c| c.strip_prefix("sticky=\""))
            .and_then(|c| c.split_once('"'))
            .map(|(v, rest)| (v.to_string(), rest.to_string()));
        let shape = value.as_ref().map(|(v, rest)| {
            (
                v.len() == 16 && v.bytes().all(|b| b.is_ascii_hexdigit()),
                rest.clone(),
                set.len(),
            )
        });
        out.push(Outcome::new(
            "ring: a made-up cookie is set",
            shape,
            Some((true, "; Max-Age=60; Path=/; HttpOnly".to_string(), 1)),
        ));
        if let Some((v, _)) = &value {
            out.push(Outcome::new(
                "ring: the made-up cookie picked the host",
                first == ring.host(x(v)),
                true,
            ));
            let (again, resp) = backend_of(
                addr,
                &get("/ring/cookie").header("cookie", &format!("sticky={v}")),
            )
            .await?;
            out.push(Outcome::new(
                "ring: the cookie sent back sticks, and is not set again",
                (again == first, resp.headers.get("set-cookie").is_none()),
                (true, true),
            ));
        }

        // A tcp_proxy hashing the client's IP: the HTTP echo answers through it.
        let tcp = rig.addr("tcp")?;
        let mut reached = std::collections::BTreeSet::new();
        for i in 0..5 {
            reached.insert(backend_of(tcp, &get(&format!("/tcp/{i}"))).await?.0);
        }
        // The host depends on this run's ports, so only "as predicted" is compared.
        let predicted = ring.host(x("127.0.0.1"));
        println!("tcp_proxy: reached {reached:?}, predicted {predicted}");
        out.push(Outcome::new(
            "tcp_proxy: source IP",
            reached == [predicted.to_string()].into(),
            true,
        ));

        // No hash: a random one per request.
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..60 {
            seen.insert(backend_of(addr, &get(&format!("/ring/none/{i}"))).await?.0);
        }
        out.push(Outcome::new(
            "ring: without a hash policy requests spread",
            seen,
            BACKENDS.iter().map(|b| b.to_string()).collect(),
        ));

        let mut to_a = 0;
        for i in 0..RANDOM_REQUESTS {
            if backend_of(addr, &get(&format!("/random/{i}"))).await?.0 == "a" {
                to_a += 1;
            }
        }
        println!("random: {to_a} of {RANDOM_REQUESTS} to a (weight 3 of 4, ignored)");
        out.push(Outcome::new(
            "random: host weights are ignored",
            stats::within_sigma(to_a, RANDOM_REQUESTS, 0.5, SIGMAS),
            true,
        ));
        Ok(out)
    }));
}
