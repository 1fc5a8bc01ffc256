//! Istio's unreachable-rule analysis, run as part of VirtualService validation: warnings
//! for rules shadowed by an earlier catch-all or by earlier identical (or, for URI prefixes,
//! covering) matches. Ported from `analyzeUnreachable{HTTP,TCP,TLS}Rules`.

use super::{HTTPMatchRequest, HTTPRoute, StringMatch, VirtualService};
use crate::validate::Validator;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

pub(super) fn unreachable_rules(vs: &VirtualService, v: &mut Validator) {
    let http: Vec<Vec<String>> = vs
        .http
        .iter()
        .map(|r| r.r#match.iter().map(http_match_key).collect())
        .collect();
    let names: Vec<String> = vs
        .http
        .iter()
        .enumerate()
        .map(|(i, r)| http_route_name(r, i))
        .collect();
    v.field("http", |v| {
        let match_names = |i: usize, j: usize| request_name(&vs.http[i].r#match[j], j);
        duplicate_matches(v, &http, &names, &match_names);
        overlapping_prefixes(v, &vs.http);
    });

    for (field, keys) in [
        (
            "tcp",
            vs.tcp
                .iter()
                .map(|r| r.r#match.iter().map(json).collect())
                .collect::<Vec<Vec<_>>>(),
        ),
        (
            "tls",
            vs.tls
                .iter()
                .map(|r| r.r#match.iter().map(json).collect())
                .collect(),
        ),
    ] {
        let names: Vec<String> = (0..keys.len()).map(|i| format!("#{i}")).collect();
        v.field(field, |v| {
            duplicate_matches(v, &keys, &names, &|_, j| format!("#{j}"))
        });
    }
}

/// Reports rules after the first catch-all that also lack matches, matches identical to an
/// earlier one, and rules all of whose matches are taken.
fn duplicate_matches(
    v: &mut Validator,
    routes: &[Vec<String>],
    route_names: &[String],
    match_name: &dyn Fn(usize, usize) -> String,
) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut catch_all_seen = false;
    for (i, matches) in routes.iter().enumerate() {
        if matches.is_empty() {
            if catch_all_seen {
                v.index(i, |v| {
                    unused(v, &route_names[i], "only the last rule can have no matches")
                });
            }
            catch_all_seen = true;
            continue;
        }
        let mut duplicates = 0;
        for (j, key) in matches.iter().enumerate() {
            if let Some(&dup) = seen.get(key.as_str()) {
                v.index(i, |v| {
                    v.field("match", |v| {
                        v.index(j, |v| {
                            ineffective(v, &route_names[i], &match_name(i, j), &route_names[dup])
                        })
                    })
                });
                duplicates += 1;
            } else {
                seen.insert(key, i);
            }
        }
        if duplicates == matches.len() {
            v.index(i, |v| {
                unused(v, &route_names[i], "all matches used by prior rules")
            });
        }
    }
}

fn unused(v: &mut Validator, rule: &str, reason: &str) {
    v.warn(format!("virtualService rule {rule} not used ({reason})"));
}

fn ineffective(v: &mut Validator, rule: &str, m: &str, dup: &str) {
    v.warn(format!(
        "virtualService rule {rule} match {m} is not used (duplicate/overlapping match in rule {dup})"
    ));
}

/// What Istio compares prefix matches on.
struct PrefixMatch {
    route: usize,
    index: usize,
    route_name: String,
    match_name: String,
    prefix: String,
    port: u32,
    method: String,
    authority: String,
    headers: BTreeMap<String, String>,
    query_params: BTreeMap<String, String>,
    without_headers: BTreeMap<String, String>,
}

fn exact_or_prefix(sm: Option<&StringMatch>) -> String {
    match sm {
        Some(sm) if !sm.exact_or_empty().is_empty() => format!("exact:{}", sm.exact_or_empty()),
        Some(sm) if !sm.prefix_or_empty().is_empty() => format!("prefix:{}", sm.prefix_or_empty()),
        _ => String::new(),
    }
}

fn exact_or_prefix_map(m: &BTreeMap<String, StringMatch>) -> BTreeMap<String, String> {
    m.iter()
        .map(|(k, sm)| (k.clone(), exact_or_prefix(Some(sm))))
        .collect()
}

/// Warns when an earlier URI prefix match covers a later one with the same (or weaker)
/// other conditions, so the later match can never be selected.
fn overlapping_prefixes(v: &mut Validator, routes: &[HTTPRoute]) {
    let mut seen = std::collections::HashSet::new();
    let mut prefixes = Vec::new();
    for (i, route) in routes.iter().enumerate() {
        if route.r#match.is_empty() {
            continue;
        }
        for (j, m) in route.r#match.iter().enumerate() {
            if !seen.insert(http_match_key(m)) {
                continue;
            }
            let prefix = m.uri.as_ref().map_or("", StringMatch::prefix_or_empty);
            if prefix.is_empty() {
                continue;
            }
            let mut method = exact_or_prefix(m.method.as_ref());
            if method.is_empty() {
                method = "exact:GET".into();
            }
            prefixes.push(PrefixMatch {
                route: i,
                index: j,
                route_name: http_route_name(route, i),
                match_name: request_name(m, j),
                prefix: prefix.to_string(),
                port: m.port,
                method,
                authority: exact_or_prefix(m.authority.as_ref()),
                headers: exact_or_prefix_map(&m.headers),
                query_params: exact_or_prefix_map(&m.query_params),
                without_headers: exact_or_prefix_map(&m.without_headers),
            });
        }
    }
    for (a_idx, a) in prefixes.iter().enumerate() {
        for b in &prefixes[a_idx + 1..] {
            if a.prefix == b.prefix || !covers(a, b) {
                continue;
            }
            v.index(b.route, |v| {
                v.field("match", |v| {
                    v.index(b.index, |v| {
                        ineffective(
                            v,
                            &b.route_name,
                            &format!("{} of prefix {}", b.match_name, b.prefix),
                            &format!(
                                "{} of prefix {} on {}",
                                a.match_name, a.prefix, a.route_name
                            ),
                        )
                    })
                })
            });
        }
    }
}

/// Istio's `coveredValidation`: does earlier match `a` take every request later match `b`
/// would? (Its string comparisons are kept as they are.)
fn covers(a: &PrefixMatch, b: &PrefixMatch) -> bool {
    let value_covers = |x: &str, y: &str| x == y || x.starts_with(y);
    let map_covers = |x: &BTreeMap<String, String>, y: &BTreeMap<String, String>| {
        x.len() == y.len()
            && x.iter()
                .all(|(k, xv)| y.get(k).is_some_and(|yv| value_covers(xv, yv)))
    };
    b.prefix.starts_with(&a.prefix)
        && a.port == b.port
        && value_covers(&a.method, &b.method)
        && value_covers(&a.authority, &b.authority)
        && map_covers(&a.headers, &b.headers)
        && map_covers(&a.query_params, &b.query_params)
        && map_covers(&a.without_headers, &b.without_headers)
}

/// A serialization of the match that ignores its name, for equality comparison.
fn http_match_key(m: &HTTPMatchRequest) -> String {
    if m.name.is_empty() {
        json(m)
    } else {
        let mut c = m.clone();
        c.name.clear();
        json(&c)
    }
}

fn json<T: Serialize>(t: &T) -> String {
    serde_json::to_string(t).unwrap_or_else(|e| e.to_string())
}

fn http_route_name(r: &HTTPRoute, i: usize) -> String {
    if r.name.is_empty() {
        format!("#{i}")
    } else {
        format!("{:?}", r.name)
    }
}

fn request_name(m: &HTTPMatchRequest, j: usize) -> String {
    if m.name.is_empty() {
        format!("#{j}")
    } else {
        format!("{:?}", m.name)
    }
}
