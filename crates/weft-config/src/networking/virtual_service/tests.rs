use super::*;
use crate::diag::{Code, Finding, Severity};
use crate::validate::check;
use serde_json::{Value, json};

pub(super) fn vs(j: Value) -> VirtualService {
    serde_json::from_value(j).expect("VirtualService should deserialize")
}

pub(super) fn run(j: Value) -> Vec<Finding> {
    check(&vs(j), "default")
}

pub(super) fn paths(fs: &[Finding], sev: Severity) -> Vec<String> {
    fs.iter()
        .filter(|f| f.severity == sev)
        .map(|f| f.path.to_string())
        .collect()
}

pub(super) fn errors(j: Value) -> Vec<String> {
    paths(&run(j), Severity::Error)
}

pub(super) fn warnings(j: Value) -> Vec<String> {
    paths(&run(j), Severity::Warning)
}

/// A VS with one HTTP route built from `route` (merged into a forwarding route).
pub(super) fn http(route: Value) -> Value {
    let mut r = json!({"route": [{"destination": {"host": "reviews"}}]});
    for (k, v) in route.as_object().expect("object").clone() {
        r[k] = v;
    }
    json!({"hosts": ["reviews"], "http": [r]})
}

pub(super) fn clean(j: Value) {
    let fs = run(j);
    assert!(fs.is_empty(), "expected no findings, got {fs:#?}");
}

#[test]
fn canary_seed_is_valid() {
    clean(json!({
        "hosts": ["reviews.prod.svc.cluster.local"],
        "http": [
            {
                "name": "canary",
                "match": [{"headers": {"user-agent": {"exact": "canary-tester"}}}],
                "route": [{"destination": {"host": "reviews.prod.svc.cluster.local", "subset": "v2"}}],
                "retries": {"attempts": 3, "perTryTimeout": "2s",
                            "retryOn": "5xx,gateway-error,connect-failure,refused-stream"},
                "fault": {"delay": {"percentage": {"value": 0.1}, "fixedDelay": "5s"}}
            },
            {
                "route": [
                    {"destination": {"host": "reviews.prod.svc.cluster.local", "subset": "v1"}, "weight": 90},
                    {"destination": {"host": "reviews.prod.svc.cluster.local", "subset": "v2"}, "weight": 10}
                ],
                "timeout": "10s"
            }
        ]
    }));
}

#[test]
fn round_trips_every_field() {
    let sm = json!({"prefix": "/api"});
    let headers = json!({"request": {"set": {"x-a": "1"}, "add": {"x-b": "2"}, "remove": ["x-c"]},
                         "response": {"set": {"x-d": "1"}, "remove": ["x-e"]}});
    let dest = json!({"host": "a.b.svc.cluster.local", "subset": "v1", "port": {"number": 8080}});
    let j = json!({
        "hosts": ["a.example.com"], "gateways": ["ns/gw", "mesh"], "exportTo": ["."],
        "http": [{
            "name": "r", "timeout": "3s",
            "match": [{"name": "m", "uri": sm, "scheme": {"exact": "https"}, "method": {"exact": "GET"},
                       "authority": {"regex": ".*"}, "headers": {"x-h": {"exact": "1"}}, "port": 80,
                       "sourceLabels": {"app": "a"}, "gateways": ["ns/gw"], "queryParams": {"q": {"exact": "1"}},
                       "ignoreUriCase": true, "withoutHeaders": {"x-n": {"regex": "*"}},
                       "sourceNamespace": "ns", "statPrefix": "sp"}],
            "route": [{"destination": dest, "weight": 100, "headers": headers}],
            "redirect": {"uri": "/x", "authority": "b", "derivePort": "FROM_REQUEST_PORT", "scheme": "https", "redirectCode": 302},
            "directResponse": {"status": 503, "body": {"string": "down"}},
            "delegate": {"name": "d", "namespace": "ns"},
            "rewrite": {"authority": "c", "uriRegexRewrite": {"match": "^/a", "rewrite": "/b"}},
            "retries": {"attempts": 2, "perTryTimeout": "1s", "retryOn": "5xx", "retryRemoteLocalities": true,
                        "retryIgnorePreviousHosts": false, "backoff": "0.025s"},
            "fault": {"delay": {"percent": 5, "fixedDelay": "1s", "percentage": {"value": 1.5}},
                      "abort": {"httpStatus": 503, "percentage": {"value": 2.0}}},
            "mirror": dest, "mirrors": [{"destination": dest, "percentage": {"value": 5.0}}],
            "mirrorPercent": 50, "mirrorPercentage": {"value": 25.5},
            "corsPolicy": {"allowOrigin": ["a"], "allowOrigins": [{"exact": "https://a"}], "allowMethods": ["GET"],
                           "allowHeaders": ["x"], "exposeHeaders": ["y"], "maxAge": "86400s", "allowCredentials": true,
                           "unmatchedPreflights": "IGNORE"},
            "headers": headers
        }],
        "tls": [{"match": [{"sniHosts": ["a.example.com"], "destinationSubnets": ["10.0.0.0/8"], "port": 443,
                            "sourceLabels": {"app": "a"}, "gateways": ["mesh"], "sourceNamespace": "ns"}],
                 "route": [{"destination": dest, "weight": 1}]}],
        "tcp": [{"match": [{"destinationSubnets": ["10.0.0.1"], "port": 27017, "sourceSubnet": "10.1.0.0/16",
                            "sourceLabels": {"app": "a"}, "gateways": ["mesh"], "sourceNamespace": "ns"}],
                 "route": [{"destination": dest}]}]
    });
    let parsed = vs(j.clone());
    let out = serde_json::to_value(&parsed).expect("serialize");
    assert_eq!(out, j, "serialized form must use the proto JSON names");
    assert_eq!(vs(out), parsed);
}

#[test]
fn legacy_snake_case_mirror_percent_loads() {
    let r = vs(json!({"hosts": ["a"], "http": [{"mirror_percent": 30}]}));
    assert_eq!(r.http[0].mirror_percent, Some(30));
}

#[test]
fn accessors() {
    let v = vs(json!({"hosts": ["a"]}));
    assert_eq!(v.gateways_or_mesh(), vec!["mesh"]);
    assert!(v.applies_to_mesh() && !v.is_delegate());
    let v = vs(json!({"gateways": ["ns/gw"]}));
    assert_eq!(v.gateways_or_mesh(), vec!["ns/gw"]);
    assert!(!v.applies_to_mesh() && v.is_delegate());
    let sm: StringMatch = serde_json::from_value(json!({"regex": "a.*"})).expect("sm");
    assert_eq!(sm.kind(), Some(StringMatchKind::Regex("a.*")));
    assert_eq!(StringMatch::default().kind(), None);
}

#[test]
fn needs_some_route_kind() {
    let fs = run(json!({"hosts": ["a"]}));
    assert_eq!(fs.len(), 1);
    assert_eq!(fs[0].code, Code::MissingField);
    assert!(fs[0].path.is_root());
}

#[test]
fn delegate_restrictions() {
    let e = errors(json!({
        "gateways": ["ns/gw"],
        "http": [{"delegate": {"name": "x"}, "route": [{"destination": {"host": "a"}}]}],
        "tls": [{"match": [{"sniHosts": ["a"]}], "route": [{"destination": {"host": "a"}}]}],
        "tcp": [{"route": [{"destination": {"host": "a"}}]}]
    }));
    for p in ["gateways", "tls", "tcp", "http[0].delegate"] {
        assert!(e.contains(&p.to_string()), "{p} missing from {e:?}");
    }
}

#[test]
fn root_route_only_delegates() {
    let fs = run(json!({"hosts": ["a"], "http": [{
        "delegate": {"name": "x"}, "redirect": {"uri": "/"}, "route": [{"destination": {"host": "a"}}]
    }]}));
    let conflicts: Vec<_> = fs
        .iter()
        .filter(|f| f.code == Code::Conflict)
        .map(|f| f.path.to_string())
        .collect();
    assert_eq!(conflicts, ["http[0].redirect", "http[0].route"]);
    clean(json!({"hosts": ["a"], "http": [{"delegate": {"name": "x", "namespace": "ns"}}]}));
}

#[test]
fn action_conflicts() {
    let e = errors(http(
        json!({"redirect": {"uri": "/x"}, "fault": {"abort": {"httpStatus": 500}},
                               "rewrite": {"uri": "/y"}, "directResponse": {"status": 200}}),
    ));
    assert_eq!(
        e,
        [
            "http[0].route",
            "http[0].fault",
            "http[0].rewrite",
            "http[0].directResponse"
        ]
    );
    let e = errors(
        json!({"hosts": ["a"], "http": [{"directResponse": {"status": 200}, "rewrite": {"uri": "/y"},
                          "route": [{"destination": {"host": "a"}}]}]}),
    );
    assert_eq!(e, ["http[0].route", "http[0].rewrite"]);
    assert_eq!(
        errors(json!({"hosts": ["a"], "http": [{"timeout": "1s"}]})),
        ["http[0].route"]
    );
    let e = errors(http(
        json!({"mirror": {"host": "m"}, "mirrors": [{"destination": {"host": "n"}}]}),
    ));
    assert_eq!(e, ["http[0].mirrors"]);
    clean(
        json!({"hosts": ["a"], "http": [{"directResponse": {"status": 404, "body": {"bytes": "aGk="}}}]}),
    );
}

#[test]
fn hosts() {
    assert_eq!(
        errors(json!({"hosts": ["*"], "http": [{"route": [{"destination": {"host": "a"}}]}]})),
        ["hosts[0]"]
    );
    clean(
        json!({"hosts": ["*"], "gateways": ["ns/gw"], "http": [{"route": [{"destination": {"host": "a"}}]}]}),
    );
    let mk = |h: Value| json!({"hosts": h, "http": [{"route": [{"destination": {"host": "a"}}]}]});
    assert_eq!(
        errors(mk(json!(["*.foo.com", "bar.foo.com"]))),
        ["hosts[1]"]
    );
    assert_eq!(errors(mk(json!(["foo..com"]))), ["hosts[0]"]);
    assert_eq!(errors(mk(json!(["a.com", "a.com"]))), ["hosts[1]"]);
    clean(mk(json!(["10.0.0.1", "reviews", "*.example.com"])));
}

#[test]
fn gateway_names() {
    let mk = |g: Value| json!({"hosts": ["a.com"], "gateways": g, "http": [{"route": [{"destination": {"host": "a"}}]}]});
    clean(mk(json!(["istio-system/ingress", "mesh"])));
    assert_eq!(
        warnings(mk(json!(["ingress.istio-system"]))),
        ["gateways[0]"]
    );
    assert_eq!(errors(mk(json!(["/gw"]))), ["gateways[0]", "gateways[0]"]);
    assert_eq!(errors(mk(json!(["ns/gw_1"]))), ["gateways[0]"]);
    // Istio stops at the first name without a namespace.
    clean(mk(json!(["gw", "ns/Bad_Name"])));
}

#[test]
fn jwt_claim_routing_needs_a_gateway() {
    let route = json!({"match": [{"headers": {"@request.auth.claims.group": {"exact": "a"}}}],
                       "route": [{"destination": {"host": "a"}}]});
    let e = errors(json!({"hosts": ["a.com"], "http": [route.clone()]}));
    assert_eq!(
        e,
        ["http[0].match[0].headers[\"@request.auth.claims.group\"]"]
    );
    clean(json!({"hosts": ["a.com"], "gateways": ["ns/gw"], "http": [route]}));
}

#[test]
fn match_requests() {
    let m = |m: Value| http(json!({"match": [m]}));
    clean(m(
        json!({"headers": {"User-Agent": {"prefix": "Mozilla"}, "x-present": {}},
                   "uri": {"prefix": ""}, "withoutHeaders": {"x-debug": {"regex": "*"}}}),
    ));
    assert_eq!(
        errors(m(json!({"headers": {"bad header": {"exact": "a"}}}))),
        ["http[0].match[0].headers[\"bad header\"]"]
    );
    // Pseudo-headers Istio knows are valid match keys; other ':' names are not tokens.
    clean(m(json!({"headers": {":authority": {"exact": "a"}}})));
    assert_eq!(
        errors(m(json!({"headers": {":foo": {"exact": "a"}}}))),
        ["http[0].match[0].headers[\":foo\"]"]
    );
    assert_eq!(
        errors(m(json!({"scheme": {"prefix": ""}}))),
        ["http[0].match[0].scheme.prefix"]
    );
    assert_eq!(
        errors(m(json!({"uri": {"regex": "(["}}))),
        ["http[0].match[0].uri.regex"]
    );
    assert_eq!(
        errors(m(json!({"uri": {"regex": ""}}))),
        ["http[0].match[0].uri.regex"]
    );
    assert_eq!(
        errors(m(json!({"uri": {"regex": "a".repeat(1025)}}))),
        ["http[0].match[0].uri.regex"]
    );
    assert_eq!(
        errors(m(json!({"queryParams": {"q": {"regex": "a(?=b)"}}}))),
        ["http[0].match[0].queryParams[q].regex"]
    );
    assert_eq!(
        errors(m(json!({"method": {"exact": "GET", "prefix": "G"}}))),
        ["http[0].match[0].method"]
    );
    assert_eq!(errors(m(json!({"port": 70000}))), ["http[0].match[0].port"]);
    assert_eq!(
        errors(m(json!({"sourceNamespace": "Bad_ns"}))),
        ["http[0].match[0].sourceNamespace"]
    );
    assert_eq!(
        errors(m(json!({"sourceLabels": {"-bad": "x"}}))),
        ["http[0].match[0].sourceLabels[-bad]"]
    );
    assert_eq!(
        errors(m(json!({"gateways": ["a/b/c"]}))),
        ["http[0].match[0].gateways[0]"]
    );
}

#[test]
fn route_destinations() {
    let r = |r: Value| errors(json!({"hosts": ["a"], "http": [{"route": r}]}));
    assert_eq!(
        r(json!([{"destination": {"host": "a"}, "weight": -1}])),
        ["http[0].route[0].weight"]
    );
    assert_eq!(
        r(json!([{"destination": {"host": "a"}}, {"destination": {"host": "b"}}])),
        ["http[0].route"]
    );
    assert_eq!(
        r(json!([{"weight": 100}])),
        ["http[0].route[0].destination"]
    );
    assert_eq!(
        r(json!([{"destination": {"host": "*"}}])),
        ["http[0].route[0].destination.host"]
    );
    assert_eq!(
        r(json!([{"destination": {"host": "a", "port": {"number": 0}}}])),
        ["http[0].route[0].destination.port.number"]
    );
    // Istio no longer requires weights to add up to 100.
    assert!(r(json!([{"destination": {"host": "a"}, "weight": 30}, {"destination": {"host": "b"}, "weight": 30}])).is_empty());
}

#[test]
fn tls_routes() {
    let t = |hosts: Value, gateways: Value, sni: Value| {
        run(json!({"hosts": hosts, "gateways": gateways,
                   "tls": [{"match": [{"sniHosts": sni, "port": 443}], "route": [{"destination": {"host": "a"}}]}]}))
    };
    assert!(
        t(
            json!(["*.bookinfo.com"]),
            json!(["ns/gw"]),
            json!(["login.bookinfo.com"])
        )
        .is_empty()
    );
    assert_eq!(
        paths(
            &t(json!(["a.com"]), json!(["ns/gw"]), json!(["b.com"])),
            Severity::Error
        ),
        ["tls[0].match[0].sniHosts[0]"]
    );
    assert_eq!(
        paths(
            &t(json!(["a.com"]), json!(["ns/gw"]), json!(["10.0.0.1"])),
            Severity::Warning
        ),
        ["tls[0].match[0].sniHosts[0]"]
    );
    assert!(
        t(
            json!(["outbound_.80_._.a.com"]),
            json!(["ns/gw"]),
            json!(["outbound_.80_._.a.com"])
        )
        .is_empty()
    );
    assert_eq!(
        paths(
            &t(json!(["a.com"]), json!(["mesh"]), json!([])),
            Severity::Error
        ),
        ["tls[0].match[0].sniHosts"]
    );
    let e = errors(json!({"hosts": ["a.com"], "tls": [{"match": [], "route": []}]}));
    assert_eq!(e, ["tls[0].match", "tls[0].route"]);
}

#[test]
fn tcp_routes() {
    let t = |m: Value, r: Value| errors(json!({"hosts": ["a"], "tcp": [{"match": m, "route": r}]}));
    assert_eq!(t(json!([]), json!([])), ["tcp[0].route"]);
    let ok = json!([{"destination": {"host": "a"}}]);
    assert_eq!(
        t(json!([{"destinationSubnets": ["10.0.0.0/33"]}]), ok.clone()),
        ["tcp[0].match[0].destinationSubnets[0]"]
    );
    assert_eq!(
        t(json!([{"port": 70000}]), ok.clone()),
        ["tcp[0].match[0].port"]
    );
    assert!(
        t(
            json!([{"port": 27017, "destinationSubnets": ["10.0.0.1", "fd00::/8"]}]),
            ok
        )
        .is_empty()
    );
}

#[test]
fn export_to() {
    let x = |e: Value| {
        errors(
            json!({"hosts": ["a"], "exportTo": e, "http": [{"route": [{"destination": {"host": "a"}}]}]}),
        )
    };
    assert!(x(json!([".", "other"])).is_empty());
    assert_eq!(x(json!([".", "default"])), ["exportTo[1]"]);
    assert_eq!(x(json!(["a", "a"])), ["exportTo[1]"]);
    assert_eq!(x(json!(["*", "."])), ["exportTo"]);
    assert_eq!(x(json!(["~"])), ["exportTo[0]"]);
    assert_eq!(x(json!(["Bad_ns"])), ["exportTo[0]"]);
}

#[test]
fn unreachable_rules() {
    let route = |m: Value| json!({"match": m, "route": [{"destination": {"host": "a"}}]});
    let w = warnings(json!({"hosts": ["a"], "http": [route(json!([])), route(json!([]))]}));
    assert_eq!(w, ["http[1]"]);
    let m = json!([{"uri": {"exact": "/a"}}]);
    let w = warnings(json!({"hosts": ["a"], "http": [route(m.clone()), route(m)]}));
    assert_eq!(w, ["http[1].match[0]", "http[1]"]);
    let w = warnings(json!({"hosts": ["a"], "http": [
        route(json!([{"uri": {"prefix": "/foo"}}])), route(json!([{"uri": {"prefix": "/foobar"}}]))]}));
    assert_eq!(w, ["http[1].match[0]"]);
    // A header condition on the later match keeps it reachable.
    assert!(
        warnings(json!({"hosts": ["a"], "http": [
        route(json!([{"uri": {"prefix": "/foo"}}])),
        route(json!([{"uri": {"prefix": "/foobar"}, "headers": {"x": {"exact": "1"}}}]))]}))
        .is_empty()
    );
    let tcp = json!({"match": [{"port": 1}], "route": [{"destination": {"host": "a"}}]});
    assert_eq!(
        warnings(json!({"hosts": ["a"], "tcp": [tcp.clone(), tcp]})),
        ["tcp[1].match[0]", "tcp[1]"]
    );
}
