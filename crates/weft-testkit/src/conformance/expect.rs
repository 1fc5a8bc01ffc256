//! Checking one observation against a case's stated expectations, so a scenario fails when
//! both proxies are wrong in the same way, not only when they disagree.

use std::collections::BTreeMap;

use super::scenario::{ANY, Expect, HeaderExpect};
use crate::host;
use crate::observation::{BodyObs, HeaderObs, Observation};

/// Every way `obs` departs from `expect`; empty when it meets it.
pub fn departures(expect: &Expect, obs: &Observation) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(s) = expect.status
        && s != obs.status
    {
        out.push(format!("status: expected {s}, got {}", obs.status));
    }
    if let Some(body) = &expect.body {
        let got = match &obs.body {
            BodyObs::Empty => Some(""),
            BodyObs::Text(t) => Some(t.as_str()),
            _ => None,
        };
        if got != Some(body.as_str()) {
            out.push(format!("body: expected {body:?}, got {:?}", obs.body));
        }
    }
    let echo_fields = [
        ("backend", &expect.backend),
        ("path", &expect.path),
        ("method", &expect.method),
        ("version", &expect.version),
        ("authority", &expect.authority),
    ];
    let wants_echo = echo_fields.iter().any(|(_, v)| v.is_some())
        || expect.body_len.is_some()
        || !expect.request_headers.is_empty();
    match obs.echo() {
        Some(echo) => {
            let got = |field: &str| match field {
                "backend" => Some(echo.backend.clone()),
                "path" => Some(echo.path.clone()),
                "method" => Some(echo.method.clone()),
                "version" => Some(echo.version.clone()),
                _ => echo.authority.clone(),
            };
            for (field, want) in echo_fields {
                if let Some(want) = want
                    && got(field).as_deref() != Some(want.as_str())
                {
                    out.push(format!(
                        "backend saw {field}: expected {want:?}, got {:?}",
                        got(field)
                    ));
                }
            }
            if let Some(want) = expect.body_len
                && want != echo.body_len
            {
                out.push(format!(
                    "backend saw a body of {} bytes, expected {want}",
                    echo.body_len
                ));
            }
            headers(
                "request header",
                &expect.request_headers,
                &echo.headers,
                &mut out,
            );
        }
        None if wants_echo => out.push(format!("expected an echo answer, got body {:?}", obs.body)),
        None => {}
    }
    headers(
        "response header",
        &expect.response_headers,
        &obs.response_headers,
        &mut out,
    );
    headers("trailer", &expect.trailers, &obs.trailers, &mut out);
    out
}

/// An expected value with `{{host_address}}` filled in; a failure to find the address is
/// reported and leaves the placeholder, which then fails to match.
fn filled(value: &str, out: &mut Vec<String>) -> String {
    host::fill(value).unwrap_or_else(|e| {
        out.push(e.to_string());
        value.to_string()
    })
}

fn headers(
    what: &str,
    expect: &BTreeMap<String, Option<HeaderExpect>>,
    got: &BTreeMap<String, HeaderObs>,
    out: &mut Vec<String>,
) {
    for (name, want) in expect {
        let have = got.get(name).unwrap_or(&HeaderObs::Absent);
        let want = &match want {
            Some(HeaderExpect::One(v)) => Some(HeaderExpect::One(filled(v, out))),
            Some(HeaderExpect::All(vs)) => Some(HeaderExpect::All(
                vs.iter().map(|v| filled(v, out)).collect(),
            )),
            None => None,
        };
        let ok = match (want, have) {
            (None, HeaderObs::Absent) => true,
            (None, _) | (Some(_), HeaderObs::Absent) => false,
            (Some(HeaderExpect::One(v)), _) if v == ANY => true,
            (Some(HeaderExpect::One(v)), HeaderObs::Values(vs)) => vs.len() == 1 && &vs[0] == v,
            (Some(HeaderExpect::All(want)), HeaderObs::Values(vs)) => want == vs,
            // A value that varies by design cannot be expected to equal something.
            (Some(_), HeaderObs::Present) => false,
        };
        if !ok {
            out.push(format!("{what} {name}: expected {want:?}, got {have:?}"));
        }
    }
}
