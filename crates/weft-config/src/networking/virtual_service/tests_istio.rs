//! Parity with Istio's own validation test tables: `virtualservice_test.go`
//! (TestValidateChainingVirtualService, TestValidateRootHTTPRoute,
//! TestValidateDelegateHTTPRoute) and the VirtualService-related tables of
//! `validation_test.go` (TestValidateVirtualService, TestValidateHTTPRoute,
//! TestValidateRouteDestination, TestValidateDestination, TestValidateCORSPolicy,
//! TestValidateHTTPFaultInjectionAbort/Delay, TestValidateHTTPRetry, TestValidateHTTPRewrite,
//! TestValidateUriRegexRewrite, TestValidateHTTPRedirect, TestValidateHTTPDirectResponse).
//! Each Go struct literal is translated to the YAML/JSON an Istio user would write; the
//! comment on each case is the Go case name. Only the verdict (valid / error / warning) is
//! compared, never the message text.

use super::*;
use crate::validate::check;
use serde_json::{Value, json};

use crate::validate::istio_table::{Want, run, verdict};
use Want::*;

type Table = Vec<(&'static str, Value, Want)>;

/// Istio runs these tables in namespace `default`; `strict` is whether its harness also
/// checks that valid cases carry no warning.
fn run_table<T>(table: Table, strict: bool, wrap: impl Fn(Value) -> Value)
where
    T: serde::de::DeserializeOwned + crate::validate::Validate,
{
    run::<T>(table, "default", strict, wrap);
}

fn vs_table(table: Table) {
    run::<VirtualService>(table, "default", true, |v| v);
}

/// `validateHTTPRoute(route, delegate=false)`.
fn route_table(table: Table) {
    run::<HTTPRoute>(table, "default", false, |v| v);
}

/// `validateHTTPRoute(route, delegate=true)`: the route of a VirtualService without hosts.
fn delegate_route_table(table: Table) {
    run::<VirtualService>(table, "default", false, |r| json!({"http": [r]}));
}

/// `validateRouteDestinations` (L4): the routes of a TCP route.
fn l4_routes_table(table: Table) {
    run_table::<VirtualService>(
        table,
        false,
        |routes| json!({"hosts": ["foo.bar"], "tcp": [{"route": routes}]}),
    );
}

/// A forwarding HTTP route with `field` set to `value`, for tables that test one message.
fn with(field: &str, value: Value) -> Value {
    let mut r = json!({"route": [{"destination": {"host": "foo.bar"}}]});
    if !value.is_null() {
        r[field] = value;
    }
    r
}

fn dest(host: &str) -> Value {
    json!({"destination": {"host": host}})
}

fn weighted(host: &str, weight: i64) -> Value {
    json!({"destination": {"host": host}, "weight": weight})
}

fn delegate() -> Value {
    json!({"name": "test", "namespace": "test"})
}

/// Base64 of `n` bytes of "aaa...", `n` rounded up to a multiple of 3.
fn base64_of(n: usize) -> String {
    "YWFh".repeat(n.div_ceil(3))
}

const KB: usize = 1024;
const MB: usize = 1024 * KB;

#[test]
fn chaining_virtual_service() {
    vs_table(vec![
        // root simple
        (
            "root simple",
            json!({"hosts": ["foo.bar"], "gateways": ["test-gateway"],
                   "http": [{"delegate": delegate()}]}),
            Valid,
        ),
        // root applies to sidecar with delegate
        (
            "root applies to sidecar with delegate",
            json!({"hosts": ["foo.bar"], "http": [{"delegate": delegate()}]}),
            Valid,
        ),
        // root with delegate and destination in one route
        (
            "root with delegate and destination in one route",
            json!({"hosts": ["foo.bar"],
                   "http": [{"delegate": delegate(), "route": [dest("foo.baz")]}]}),
            Error,
        ),
        // delegate with no destination
        (
            "delegate with no destination",
            json!({"hosts": [], "http": [{}]}),
            Error,
        ),
        // delegate with delegate
        (
            "delegate with delegate",
            json!({"hosts": [], "http": [{"delegate": delegate()}]}),
            Error,
        ),
        // delegate with TCP route
        (
            "delegate with TCP route",
            json!({"hosts": [], "tcp": [{"route": [dest("foo.baz")]}]}),
            Error,
        ),
        // delegate with gateway
        (
            "delegate with gateway",
            json!({"hosts": [], "gateways": ["test"], "http": [{"route": [dest("foo.baz")]}]}),
            Error,
        ),
        // delegate with sourceNamespace
        (
            "delegate with sourceNamespace",
            json!({"hosts": [], "http": [{"match": [{"sourceNamespace": "test"}],
                                           "route": [dest("foo.baz")]}]}),
            Valid,
        ),
    ]);
}

#[test]
fn root_http_route() {
    let redirect = json!({"uri": "/", "authority": "foo.biz"});
    route_table(vec![
        // simple
        ("simple", json!({"delegate": delegate()}), Valid),
        // route and delegate conflict
        (
            "route and delegate conflict",
            json!({"route": [dest("foo.baz")], "delegate": delegate()}),
            Error,
        ),
        // redirect and delegate conflict
        (
            "redirect and delegate conflict",
            json!({"redirect": {"uri": "/lerp", "authority": "foo.biz"}, "delegate": delegate()}),
            Error,
        ),
        // prefix header match
        (
            "prefix header match",
            json!({"delegate": delegate(), "match": [{"headers": {"header": {"prefix": "test"}}}]}),
            Valid,
        ),
        // exact header match
        (
            "exact header match",
            json!({"delegate": delegate(), "match": [{"headers": {"header": {"exact": "test"}}}]}),
            Valid,
        ),
        // regex header match
        (
            "regex header match",
            json!({"delegate": delegate(), "match": [{"headers": {"header": {"regex": "test"}}}]}),
            Valid,
        ),
        // regex uri match
        (
            "regex uri match",
            json!({"delegate": delegate(), "match": [{"uri": {"regex": "test"}}]}),
            Valid,
        ),
        // prefix uri match
        (
            "prefix uri match",
            json!({"delegate": delegate(), "match": [{"uri": {"prefix": "test"}}]}),
            Valid,
        ),
        // exact uri match
        (
            "exact uri match",
            json!({"delegate": delegate(), "match": [{"uri": {"exact": "test"}}]}),
            Valid,
        ),
        // prefix queryParams match
        (
            "prefix queryParams match",
            json!({"delegate": delegate(), "match": [{"queryParams": {"q": {"prefix": "test"}}}]}),
            Valid,
        ),
        // exact queryParams match
        (
            "exact queryParams match",
            json!({"delegate": delegate(), "match": [{"queryParams": {"q": {"exact": "test"}}}]}),
            Valid,
        ),
        // regex queryParams match (the Go case puts the regex on a header)
        (
            "regex queryParams match",
            json!({"delegate": delegate(), "match": [{"headers": {"q": {"regex": "test"}}}]}),
            Valid,
        ),
        // empty regex match in method
        (
            "empty regex match in method",
            json!({"match": [{"method": {"regex": ""}}], "redirect": redirect}),
            Error,
        ),
        // empty regex match in uri
        (
            "empty regex match in uri",
            json!({"match": [{"uri": {"regex": ""}}], "redirect": redirect}),
            Error,
        ),
        // empty regex match in query
        (
            "empty regex match in query",
            json!({"match": [{"queryParams": {"q": {"regex": ""}}}], "redirect": redirect}),
            Error,
        ),
        // empty regex match in scheme
        (
            "empty regex match in scheme",
            json!({"match": [{"scheme": {"regex": ""}}], "redirect": redirect}),
            Error,
        ),
    ]);
}

/// Go's `"header": nil` StringMatch (the "null header match" cases of the root, delegate and
/// plain HTTP route tables).
// differs: Istio rejects a nil header StringMatch in validation; our typed map cannot hold a
// null match, so the same YAML (`header: null`) is rejected when it loads instead.
#[test]
fn null_header_match_is_rejected_at_load() {
    for route in [
        json!({"delegate": delegate(), "match": [{"headers": {"header": null}}]}),
        json!({"route": [dest("foo.bar")], "match": [{"headers": {"header": null}}]}),
    ] {
        assert!(serde_json::from_value::<HTTPRoute>(route).is_err());
    }
}

/// Shared by TestValidateDelegateHTTPRoute and TestValidateHTTPRoute: header operations and
/// weights, which both tables list with the same inputs and outcomes.
fn header_cases() -> Table {
    let ops = |side: &str, op: &str, val: Value| json!({"route": [{"destination": {"host": "foo.baz"}, "headers": {side: {op: val}}}]});
    vec![
        // empty
        ("empty", json!({}), Error),
        // simple
        ("simple", json!({"route": [dest("foo.baz")]}), Valid),
        // no destination
        ("no destination", json!({"route": [{}]}), Error),
        // weighted
        (
            "weighted",
            json!({"route": [weighted("foo.baz.south", 25), weighted("foo.baz.east", 75)]}),
            Valid,
        ),
        // total weight > 100
        (
            "total weight > 100",
            json!({"route": [weighted("foo.baz.south", 55), weighted("foo.baz.east", 50)]}),
            Valid,
        ),
        // total weight < 100
        (
            "total weight < 100",
            json!({"route": [weighted("foo.baz.south", 49), weighted("foo.baz.east", 50)]}),
            Valid,
        ),
        // simple redirect
        (
            "simple redirect",
            json!({"redirect": {"uri": "/lerp", "authority": "foo.biz"}}),
            Valid,
        ),
        // conflicting redirect and route
        (
            "conflicting redirect and route",
            json!({"route": [dest("foo.baz")], "redirect": {"uri": "/lerp", "authority": "foo.biz"}}),
            Error,
        ),
        // request response headers
        (
            "request response headers",
            json!({"route": [dest("foo.baz")]}),
            Valid,
        ),
        // valid headers
        (
            "valid headers",
            json!({"route": [{"destination": {"host": "foo.baz"}, "headers": {
                "request": {"add": {"name": ""}, "set": {"name": ""}, "remove": ["name"]},
                "response": {"add": {"name": ""}, "set": {"name": ""}, "remove": ["name"]},
            }}]}),
            Valid,
        ),
        // empty header name - request add
        (
            "empty header name - request add",
            ops("request", "add", json!({"": "value"})),
            Error,
        ),
        // empty header name - request set
        (
            "empty header name - request set",
            ops("request", "set", json!({"": "value"})),
            Error,
        ),
        // empty header name - request remove
        (
            "empty header name - request remove",
            ops("request", "remove", json!([""])),
            Error,
        ),
        // empty header name - response add
        (
            "empty header name - response add",
            ops("response", "add", json!({"": "value"})),
            Error,
        ),
        // empty header name - response set
        (
            "empty header name - response set",
            ops("response", "set", json!({"": "value"})),
            Error,
        ),
        // empty header name - response remove
        (
            "empty header name - response remove",
            ops("response", "remove", json!([""])),
            Error,
        ),
        // nil match
        ("nil match", json!({"route": [dest("foo.bar")]}), Valid),
        // match with nil element (a nil list element is written as an empty match in YAML)
        (
            "match with nil element",
            json!({"route": [dest("foo.bar")], "match": [{}]}),
            Valid,
        ),
        // invalid mirror percent
        (
            "invalid mirror percent",
            json!({"mirrorPercent": 101, "route": [dest("foo.bar")], "match": [{}]}),
            Error,
        ),
        // invalid mirror percentage
        (
            "invalid mirror percentage",
            json!({"mirrorPercentage": {"value": 101}, "route": [dest("foo.bar")], "match": [{}]}),
            Error,
        ),
        // valid mirror percentage
        (
            "valid mirror percentage",
            json!({"mirrorPercentage": {"value": 1}, "route": [dest("foo.bar")], "match": [{}]}),
            Valid,
        ),
        // negative mirror percentage
        (
            "negative mirror percentage",
            json!({"mirrorPercentage": {"value": -1}, "route": [dest("foo.bar")], "match": [{}]}),
            Error,
        ),
    ]
}

#[test]
fn delegate_http_route() {
    let mut table = header_cases();
    table.push((
        // delegate route with delegate
        "delegate route with delegate",
        json!({"delegate": delegate()}),
        Error,
    ));
    delegate_route_table(table);
}

#[test]
fn http_route() {
    let mut table = header_cases();
    let resp_header = |op: &str, name: &str, val: &str| {
        json!({"route": [{"destination": {"host": "foo.baz"},
                          "headers": {"response": {op: {name: val}}}}]})
    };
    table.extend([
        // envoy escaped % set
        (
            "envoy escaped % set",
            resp_header("set", "i-love-istio", "100%%"),
            Valid,
        ),
        // envoy variable set
        (
            "envoy variable set",
            resp_header("set", "name", "%HOSTNAME%"),
            Valid,
        ),
        // envoy unescaped % set
        (
            "envoy unescaped % set",
            resp_header("set", "name", "abcd%oijasodifj"),
            Error,
        ),
        // envoy escaped % add
        (
            "envoy escaped % add",
            resp_header("add", "i-love-istio", "100%% and more"),
            Valid,
        ),
        // envoy variable add
        (
            "envoy variable add",
            resp_header("add", "name", "hello %HOSTNAME%"),
            Valid,
        ),
        // envoy unescaped % add
        (
            "envoy unescaped % add",
            resp_header("add", "name", "abcd%oijasodifj"),
            Error,
        ),
        // empty prefix header match
        (
            "empty prefix header match",
            json!({"route": [dest("foo.bar")],
                   "match": [{"headers": {"emptyprefix": {"prefix": ""}}}]}),
            Error,
        ),
        // mirrors without destination
        (
            "mirrors without destination",
            json!({"mirrors": [{}], "route": [dest("foo.bar")], "match": [{}]}),
            Error,
        ),
        // mirrors invalid mirror percentage
        (
            "mirrors invalid mirror percentage",
            json!({"mirrors": [{"destination": {"host": "foo.baz"}},
                               {"destination": {"host": "foo.baz"}, "percentage": {"value": 101}}],
                   "route": [dest("foo.bar")], "match": [{}]}),
            Error,
        ),
        // mirrors valid mirror percentage
        (
            "mirrors valid mirror percentage",
            json!({"mirrors": [{"destination": {"host": "foo.baz"}, "percentage": {"value": 1}},
                               {"destination": {"host": "foo.baz"}, "percentage": {"value": 50}}],
                   "route": [dest("foo.bar")], "match": [{}]}),
            Valid,
        ),
        // mirrors negative mirror percentage
        (
            "mirrors negative mirror percentage",
            json!({"mirrors": [{"destination": {"host": "foo.baz"}, "percentage": {"value": -1}}],
                   "route": [dest("foo.bar")], "match": [{}]}),
            Error,
        ),
        // conflicting mirror and mirrors
        (
            "conflicting mirror and mirrors",
            json!({"mirror": {"host": "foo.baz"}, "mirrors": [{"destination": {"host": "foo.bar"}}],
                   "route": [dest("foo.baz")]}),
            Error,
        ),
    ]);
    route_table(table);
}

#[test]
fn route_destination() {
    l4_routes_table(vec![
        // simple
        ("simple", json!([dest("foo.baz")]), Valid),
        // wildcard dash
        ("wildcard dash", json!([dest("*-foo.baz")]), Valid),
        // wildcard prefix
        ("wildcard prefix", json!([dest("*foo.baz")]), Valid),
        // wildcard
        ("wildcard", json!([dest("*")]), Error),
        // bad wildcard
        ("bad wildcard", json!([dest("foo.*")]), Error),
        // bad fqdn
        ("bad fqdn", json!([dest("default/baz")]), Error),
        // no destination
        ("no destination", json!([{}]), Error),
        // weighted
        (
            "weighted",
            json!([weighted("foo.baz.south", 25), weighted("foo.baz.east", 75)]),
            Valid,
        ),
        // weight < 0
        (
            "weight < 0",
            json!([weighted("foo.baz.south", 5), weighted("foo.baz.east", -1)]),
            Error,
        ),
        // total weight > 100
        (
            "total weight > 100",
            json!([
                weighted("foo.baz.south", 550),
                weighted("foo.baz.east", 500)
            ]),
            Valid,
        ),
        // total weight < 100
        (
            "total weight < 100",
            json!([weighted("foo.baz.south", 49), weighted("foo.baz.east", 50)]),
            Valid,
        ),
        // total weight = 100
        (
            "total weight = 100",
            json!([weighted("foo.baz.south", 100), weighted("foo.baz.east", 0)]),
            Valid,
        ),
        // weight = 0
        ("weight = 0", json!([weighted("foo.baz.south", 0)]), Valid),
        // total weight = 0 with multi RouteDestination
        (
            "total weight = 0 with multi RouteDestination",
            json!([weighted("foo.baz.south", 0), weighted("foo.baz.east", 0)]),
            Error,
        ),
    ]);
}

#[test]
fn destination() {
    let d = |d: Value| with("route", json!([{"destination": d}]));
    route_table(vec![
        // empty
        ("empty", d(json!({})), Error),
        // simple
        ("simple", d(json!({"host": "foo.bar"})), Valid),
        // full
        (
            "full",
            d(json!({"host": "foo.bar", "subset": "shiny", "port": {"number": 5000}})),
            Valid,
        ),
        // unnumbered-selector
        (
            "unnumbered-selector",
            d(json!({"host": "foo.bar", "subset": "shiny", "port": {}})),
            Error,
        ),
    ]);
}

#[test]
fn cors_policy() {
    let cors = |extra: Value| {
        let mut c = json!({
            "allowMethods": ["GET", "POST"],
            "allowHeaders": ["header1", "header2"],
            "exposeHeaders": ["header3"],
            "maxAge": "2s",
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            c[k] = v.clone();
        }
        with("corsPolicy", c)
    };
    route_table(vec![
        // valid
        ("valid", cors(json!({})), Valid),
        // bad method
        (
            "bad method",
            cors(json!({"allowMethods": ["GET", "PUTT"]})),
            Error,
        ),
        // bad header
        ("bad header", cors(json!({"exposeHeaders": [""]})), Error),
        // bad max age
        (
            "bad max age",
            cors(json!({"maxAge": "2.000000042s"})),
            Error,
        ),
        // empty matchType AllowOrigins
        (
            "empty matchType AllowOrigins",
            cors(json!({"allowOrigins": [{"exact": ""}, {"prefix": ""}, {"regex": ""}]})),
            Error,
        ),
        // non empty matchType AllowOrigins
        (
            "non empty matchType AllowOrigins",
            cors(
                json!({"allowOrigins": [{"exact": "exact"}, {"prefix": "prefix"},
                                         {"regex": "regex"}]}),
            ),
            Valid,
        ),
    ]);
}

/// TestValidateHTTPStatus, through a direct response's status.
#[test]
fn http_status() {
    let status = |s: i64| json!({"directResponse": {"status": s}});
    route_table(vec![
        // {0, false}
        ("0", status(0), Error),
        // {200, true}
        ("200", status(200), Valid),
        // {600, true}
        ("600", status(600), Valid),
        // {601, false}
        ("601", status(601), Error),
    ]);
}

#[test]
fn fault_injection_abort() {
    let abort = |a: Value| with("fault", if a.is_null() { a } else { json!({"abort": a}) });
    route_table(vec![
        // nil
        ("nil", abort(Value::Null), Valid),
        // valid
        (
            "valid",
            abort(json!({"percentage": {"value": 20}, "httpStatus": 200})),
            Valid,
        ),
        // valid default
        ("valid default", abort(json!({"httpStatus": 200})), Valid),
        // invalid http status
        (
            "invalid http status",
            abort(json!({"percentage": {"value": 20}, "httpStatus": 9000})),
            Error,
        ),
        // invalid low http status
        (
            "invalid low http status",
            abort(json!({"percentage": {"value": 20}, "httpStatus": 100})),
            Error,
        ),
        // valid percentage
        (
            "valid percentage",
            abort(json!({"percentage": {"value": 0.001}, "httpStatus": 200})),
            Valid,
        ),
        // invalid fractional percent
        (
            "invalid fractional percent",
            abort(json!({"percentage": {"value": -10.0}, "httpStatus": 200})),
            Error,
        ),
        // grpc: valid
        (
            "grpc: valid",
            abort(json!({"percentage": {"value": 20}, "grpcStatus": "DEADLINE_EXCEEDED"})),
            Valid,
        ),
        // grpc: valid default percentage
        (
            "grpc: valid default percentage",
            abort(json!({"grpcStatus": "DEADLINE_EXCEEDED"})),
            Valid,
        ),
        // grpc: invalid status
        (
            "grpc: invalid status",
            abort(json!({"percentage": {"value": 20}, "grpcStatus": "BAD_STATUS"})),
            Error,
        ),
        // grpc: valid percentage
        (
            "grpc: valid percentage",
            abort(json!({"percentage": {"value": 0.001}, "grpcStatus": "INTERNAL"})),
            Valid,
        ),
        // grpc: invalid fractional percent
        (
            "grpc: invalid fractional percent",
            abort(json!({"percentage": {"value": -10.0}, "grpcStatus": "DEADLINE_EXCEEDED"})),
            Error,
        ),
    ]);
}

#[test]
fn fault_injection_delay() {
    let delay = |d: Value| with("fault", if d.is_null() { d } else { json!({"delay": d}) });
    route_table(vec![
        // nil
        ("nil", delay(Value::Null), Valid),
        // valid fixed
        (
            "valid fixed",
            delay(json!({"percentage": {"value": 20}, "fixedDelay": "3s"})),
            Valid,
        ),
        // valid default
        ("valid default", delay(json!({"fixedDelay": "3s"})), Valid),
        // invalid percent
        (
            "invalid percent",
            delay(json!({"percentage": {"value": 101}, "fixedDelay": "3s"})),
            Error,
        ),
        // invalid delay
        (
            "invalid delay",
            delay(json!({"percentage": {"value": 20}, "fixedDelay": "3.000000042s"})),
            Error,
        ),
        // valid fractional percentage
        (
            "valid fractional percentage",
            delay(json!({"percentage": {"value": 0.001}, "fixedDelay": "3s"})),
            Valid,
        ),
        // invalid fractional percentage
        (
            "invalid fractional percentage",
            delay(json!({"percentage": {"value": -10.0}, "fixedDelay": "3s"})),
            Error,
        ),
    ]);
}

#[test]
fn http_retry() {
    let retries = |r: Value| with("retries", r);
    route_table(vec![
        // valid
        (
            "valid",
            retries(json!({"attempts": 10, "perTryTimeout": "2s", "retryOn": "5xx,gateway-error"})),
            Valid,
        ),
        // disable retries
        ("disable retries", retries(json!({"attempts": 0})), Valid),
        // invalid, retry policy configured but attempts set to zero
        (
            "invalid, retry policy configured but attempts set to zero",
            retries(json!({"attempts": 0, "perTryTimeout": "2s", "retryOn": "5xx,gateway-error"})),
            Error,
        ),
        // valid default
        ("valid default", retries(json!({"attempts": 10})), Valid),
        // valid http status retryOn
        (
            "valid http status retryOn",
            retries(
                json!({"attempts": 10, "perTryTimeout": "2s", "retryOn": "503,connect-failure"}),
            ),
            Valid,
        ),
        // invalid attempts
        (
            "invalid attempts",
            retries(json!({"attempts": -1, "perTryTimeout": "2s"})),
            Error,
        ),
        // invalid timeout
        (
            "invalid timeout",
            retries(json!({"attempts": 10, "perTryTimeout": "2.000000001s"})),
            Error,
        ),
        // timeout too small
        (
            "timeout too small",
            retries(json!({"attempts": 10, "perTryTimeout": "999ns"})),
            Error,
        ),
        // invalid backoff
        (
            "invalid backoff",
            retries(json!({"attempts": 10, "backoff": "999ns"})),
            Error,
        ),
        // invalid policy retryOn
        (
            "invalid policy retryOn",
            retries(
                json!({"attempts": 10, "perTryTimeout": "2s", "retryOn": "5xx,invalid policy"}),
            ),
            Error,
        ),
        // invalid http status retryOn
        (
            "invalid http status retryOn",
            retries(
                json!({"attempts": 10, "perTryTimeout": "2s", "retryOn": "600,connect-failure"}),
            ),
            Error,
        ),
        // invalid, retryRemoteLocalities configured but attempts set to zero
        (
            "invalid, retryRemoteLocalities configured but attempts set to zero",
            retries(json!({"attempts": 0, "retryRemoteLocalities": false})),
            Error,
        ),
    ]);
}

#[test]
fn http_rewrite() {
    let rewrite = |r: Value| with("rewrite", r);
    let rr = json!({"match": "^/service/([^/]+)(/.*)$", "rewrite": "\\2/instance/\\1"});
    route_table(vec![
        // nil in
        ("nil in", rewrite(Value::Null), Valid),
        // uri and authority
        (
            "uri and authority",
            rewrite(json!({"uri": "/path/to/resource", "authority": "foobar.org"})),
            Valid,
        ),
        // uri
        ("uri", rewrite(json!({"uri": "/path/to/resource"})), Valid),
        // authority
        (
            "authority",
            rewrite(json!({"authority": "foobar.org"})),
            Valid,
        ),
        // uriRegexRewrite
        (
            "uriRegexRewrite",
            rewrite(json!({"uriRegexRewrite": rr})),
            Valid,
        ),
        // uriRegexRewrite and authority
        (
            "uriRegexRewrite and authority",
            rewrite(json!({"authority": "foobar.org", "uriRegexRewrite": rr})),
            Valid,
        ),
        // uriRegexRewrite and uri
        (
            "uriRegexRewrite and uri",
            rewrite(json!({"uri": "/path/to/resource", "uriRegexRewrite": rr})),
            Error,
        ),
        // no uri, uriRegexRewrite, or authority
        (
            "no uri, uriRegexRewrite, or authority",
            rewrite(json!({})),
            Error,
        ),
    ]);
}

#[test]
fn uri_regex_rewrite() {
    let rr = |r: Value| with("rewrite", json!({"uriRegexRewrite": r}));
    route_table(vec![
        // uriRegexRewrite happy path
        (
            "uriRegexRewrite happy path",
            rr(json!({"match": "^/service/([^/]+)(/.*)$", "rewrite": "\\2/instance/\\1"})),
            Valid,
        ),
        // uriRegexRewrite missing match
        (
            "uriRegexRewrite missing match",
            rr(json!({"rewrite": "\\2/instance/\\1"})),
            Error,
        ),
        // uriRegexRewrite missing rewrite
        (
            "uriRegexRewrite missing rewrite",
            rr(json!({"match": "^/service/([^/]+)(/.*)$"})),
            Error,
        ),
        // uriRegexRewrite invalid regex patterns
        (
            "uriRegexRewrite invalid regex patterns",
            rr(json!({"match": "[", "rewrite": "["})),
            Error,
        ),
    ]);
}

#[test]
fn http_redirect() {
    let redirect = |r: Value| json!({"redirect": r});
    route_table(vec![
        // empty uri and authority
        (
            "empty uri and authority",
            redirect(json!({"uri": "", "authority": ""})),
            Error,
        ),
        // too small redirect code
        (
            "too small redirect code",
            redirect(json!({"uri": "t", "authority": "", "redirectCode": 299})),
            Error,
        ),
        // too large redirect code
        (
            "too large redirect code",
            redirect(json!({"uri": "t", "authority": "", "redirectCode": 400})),
            Error,
        ),
        // empty authority
        (
            "empty authority",
            redirect(json!({"uri": "t", "authority": ""})),
            Valid,
        ),
        // empty uri
        (
            "empty uri",
            redirect(json!({"uri": "", "authority": "t"})),
            Valid,
        ),
        // empty redirect code
        (
            "empty redirect code",
            redirect(json!({"uri": "t", "authority": "t", "redirectCode": 0})),
            Valid,
        ),
        // normal redirect
        (
            "normal redirect",
            redirect(json!({"uri": "t", "authority": "t", "redirectCode": 308})),
            Valid,
        ),
    ]);
}

#[test]
fn http_direct_response() {
    let dr = |d: Value| json!({"directResponse": d});
    // Istio's harness checks the warning here too, so this table is strict.
    run_table::<HTTPRoute>(
        vec![
            // status 200
            ("status 200", dr(json!({"status": 200})), Valid),
            // status 100
            ("status 100", dr(json!({"status": 199})), Error),
            // status 600
            ("status 600", dr(json!({"status": 601})), Error),
            // with string body
            (
                "with string body",
                dr(json!({"status": 200, "body": {"string": "hello"}})),
                Valid,
            ),
            // with string body over 100kb
            (
                "with string body over 100kb",
                dr(json!({"status": 200, "body": {"string": "a".repeat(101 * KB)}})),
                Warning,
            ),
            // with string body over 1mb
            (
                "with string body over 1mb",
                dr(json!({"status": 200, "body": {"string": "a".repeat(2 * MB)}})),
                Error,
            ),
            // with bytes body
            (
                "with bytes body",
                dr(json!({"status": 200, "body": {"bytes": "aGVsbG8="}})),
                Valid,
            ),
            // with bytes body over 100kb
            (
                "with bytes body over 100kb",
                dr(json!({"status": 200, "body": {"bytes": base64_of(100 * KB + 1)}})),
                Warning,
            ),
            // with bytes body over 1mb
            (
                "with bytes body over 1mb",
                dr(json!({"status": 200, "body": {"bytes": base64_of(MB + 1)}})),
                Error,
            ),
        ],
        true,
        |v| v,
    );
}

#[test]
fn virtual_service() {
    let simple_http = json!([{"route": [dest("foo.baz")]}]);
    let vs_with = |extra: Value| {
        let mut v = json!({"hosts": ["foo.bar"], "http": simple_http.clone()});
        for (k, val) in extra.as_object().into_iter().flatten() {
            v[k] = val.clone();
        }
        v
    };
    vs_table(vec![
        // simple
        ("simple", vs_with(json!({})), Valid),
        // allow sni based domains
        (
            "allow sni based domains",
            json!({
                "hosts": ["outbound_.15010_._.istiod.istio-system.svc.cluster.local"],
                "gateways": ["ns1/gateway"],
                "tls": [{
                    "match": [{"sniHosts": ["outbound_.15010_._.istiod.istio-system.svc.cluster.local"]}],
                    "route": [dest("istio.istio-system.svc.cluster.local")],
                }],
            }),
            Valid,
        ),
        // duplicate hosts
        (
            "duplicate hosts",
            vs_with(json!({"hosts": ["*.foo.bar", "*.bar"]})),
            Error,
        ),
        // with no destination
        (
            "with no destination",
            json!({"hosts": ["*.foo.bar", "*.bar"], "http": [{"route": [{}]}]}),
            Error,
        ),
        // destination with out hosts
        (
            "destination with out hosts",
            json!({"hosts": ["*.foo.bar", "*.bar"], "http": [{"route": [{"destination": {}}]}]}),
            Error,
        ),
        // delegate with no hosts
        (
            "delegate with no hosts",
            json!({"http": simple_http.clone()}),
            Valid,
        ),
        // bad host
        ("bad host", vs_with(json!({"hosts": ["foo.ba!r"]})), Error),
        // no tcp or http routing
        (
            "no tcp or http routing",
            json!({"hosts": ["foo.bar"]}),
            Error,
        ),
        // bad gateway
        (
            "bad gateway",
            vs_with(json!({"gateways": ["b@dgateway"]})),
            Error,
        ),
        // FQDN for gateway
        (
            "FQDN for gateway",
            vs_with(json!({"gateways": ["gateway.example.com"]})),
            Warning,
        ),
        // namespace/name for gateway
        (
            "namespace/name for gateway",
            vs_with(json!({"gateways": ["ns1/gateway"]})),
            Valid,
        ),
        // namespace/* for gateway
        (
            "namespace/* for gateway",
            vs_with(json!({"gateways": ["ns1/*"]})),
            Error,
        ),
        // */name for gateway
        (
            "*/name for gateway",
            vs_with(json!({"gateways": ["*/gateway"]})),
            Error,
        ),
        // wildcard for mesh gateway
        (
            "wildcard for mesh gateway",
            vs_with(json!({"hosts": ["*"]})),
            Error,
        ),
        // wildcard for non-mesh gateway
        (
            "wildcard for non-mesh gateway",
            vs_with(json!({"hosts": ["*"], "gateways": ["somegateway"]})),
            Valid,
        ),
        // missing tcp route
        (
            "missing tcp route",
            json!({"hosts": ["foo.bar"], "tcp": [{"match": [{"port": 999}]}]}),
            Error,
        ),
        // missing tls route
        (
            "missing tls route",
            json!({"hosts": ["foo.bar"],
                   "tls": [{"match": [{"port": 999, "sniHosts": ["foo.bar"]}]}]}),
            Error,
        ),
        // deprecated mirror
        (
            "deprecated mirror",
            json!({"hosts": ["foo.bar"], "gateways": ["ns1/gateway"],
                   "http": [{"mirrorPercent": 5, "route": [dest("foo.baz")]}]}),
            Warning,
        ),
        // set authority
        (
            "set authority",
            json!({"hosts": ["foo.bar"], "http": [{
                "headers": {"request": {"set": {":authority": "foo"}}},
                "route": [dest("foo.baz")],
            }]}),
            Valid,
        ),
        // set authority in destination
        (
            "set authority in destination",
            json!({"hosts": ["foo.bar"], "http": [{"route": [{
                "destination": {"host": "foo.baz"},
                "headers": {"request": {"set": {":authority": "foo"}}},
            }]}]}),
            Valid,
        ),
        // set authority in rewrite and header
        (
            "set authority in rewrite and header",
            json!({"hosts": ["foo.bar"], "http": [{
                "headers": {"request": {"set": {":authority": "foo"}}},
                "rewrite": {"authority": "bar"},
                "route": [dest("foo.baz")],
            }]}),
            Error,
        ),
        // non-method-get
        (
            "non-method-get",
            json!({"hosts": ["foo.bar"], "http": [{
                "route": [dest("foo.baz")],
                "match": [
                    {"uri": {"prefix": "/api/v1/product"}},
                    {"uri": {"prefix": "/api/v1/products"}, "method": {"exact": "GET"}},
                ],
            }]}),
            Warning,
        ),
        // uri-with-prefix-exact
        (
            "uri-with-prefix-exact",
            json!({"hosts": ["foo.bar"], "http": [{
                "route": [dest("foo.baz")],
                "match": [
                    {"uri": {"prefix": "/"}},
                    {"uri": {"exact": "/"}, "method": {"exact": "GET"}},
                ],
            }]}),
            Valid,
        ),
        // jwt claim route without gateway
        (
            "jwt claim route without gateway",
            json!({"hosts": ["foo.bar"], "gateways": ["mesh"], "http": [{
                "route": [dest("foo.baz")],
                "match": [{
                    "uri": {"prefix": "/"},
                    "headers": {"@request.auth.claims.foo": {"exact": "bar"}},
                }],
            }]}),
            Error,
        ),
        // ip address as sni host
        (
            "ip address as sni host",
            json!({"hosts": ["foo.bar"], "tls": [{
                "route": [dest("foo.baz")],
                "match": [{"port": 999, "sniHosts": ["1.1.1.1"]}],
            }]}),
            Warning,
        ),
        // invalid wildcard as sni host
        (
            "invalid wildcard as sni host",
            json!({"hosts": ["foo.bar"], "tls": [{
                "route": [dest("foo.baz")],
                "match": [{"port": 999, "sniHosts": ["foo.*.com"]}],
            }]}),
            Error,
        ),
    ]);
}

/// TestValidateHTTPHeaderName (`ValidateHTTPHeaderNameOrJwtClaimRoute`), through the header
/// names of an HTTP match.
#[test]
fn http_header_name() {
    let header = |name: &str| json!({"route": [dest("foo.bar")], "match": [{"headers": {name: {"exact": "v"}}}]});
    route_table(vec![
        // {name: "header1", valid: true}
        ("header1", header("header1"), Valid),
        // {name: "X-Requested-With", valid: true}
        ("X-Requested-With", header("X-Requested-With"), Valid),
        // {name: ":authority", valid: true}
        (":authority", header(":authority"), Valid),
        // {name: "funky!$#_", valid: true}
        ("funky!$#_", header("funky!$#_"), Valid),
        // {name: "", valid: false}
        ("empty", header(""), Error),
        // {name: "::", valid: false}
        ("::", header("::"), Error),
        // {name: "illegal\"char", valid: false}
        ("illegal\"char", header("illegal\"char"), Error),
    ]);
}

/// TestValidateHTTPHeaderValue (`ValidateHTTPHeaderValue`), through a request header `set`.
#[test]
fn http_header_value() {
    let value = |val: &str| json!({"route": [dest("foo.bar")], "headers": {"request": {"set": {"x-value": val}}}});
    route_table(vec![
        // foo
        ("foo", value("foo"), Valid),
        // %HOSTNAME%
        ("%HOSTNAME%", value("%HOSTNAME%"), Valid),
        // 100%%
        ("100%%", value("100%%"), Valid),
        // prefix %HOSTNAME% suffix
        (
            "prefix %HOSTNAME% suffix",
            value("prefix %HOSTNAME% suffix"),
            Valid,
        ),
        // %DOWNSTREAM_PEER_CERT_V_END(%b %d %H:%M:%S %Y %Z)%
        (
            "%DOWNSTREAM_PEER_CERT_V_END(...)%",
            value("%DOWNSTREAM_PEER_CERT_V_END(%b %d %H:%M:%S %Y %Z)%"),
            Valid,
        ),
        // %DYNAMIC_METADATA(com.test.my_filter)%
        (
            "%DYNAMIC_METADATA(com.test.my_filter)%",
            value("%DYNAMIC_METADATA(com.test.my_filter)%"),
            Valid,
        ),
        // %START_TIME%%
        ("%START_TIME%%", value("%START_TIME%%"), Error),
        // abc%123
        ("abc%123", value("abc%123"), Error),
    ]);
}

/// Test_validateExportTo, the cases that apply to a VirtualService (not a ServiceEntry, not a
/// DestinationRule with a workload selector), in namespace `ns5`.
#[test]
fn export_to() {
    let cases = vec![
        // empty exportTo is okay
        ("empty exportTo is okay", json!([]), Valid),
        // * is allowed
        ("* is allowed", json!(["*"]), Valid),
        // . and ns1 are allowed
        (". and ns1 are allowed", json!([".", "ns1"]), Valid),
        // bunch of namespaces in exportTo is okay
        (
            "bunch of namespaces in exportTo is okay",
            json!(["ns1", "ns2", "ns5"]),
            Valid,
        ),
        // ~ not allowed for non service entry configs
        (
            "~ not allowed for non service entry configs",
            json!(["~", "ns1"]),
            Error,
        ),
        // . and * together are not allowed
        (". and * together are not allowed", json!([".", "*"]), Error),
        // * and ns1 together are not allowed
        (
            "* and ns1 together are not allowed",
            json!(["*", "ns1"]),
            Error,
        ),
        // . and same namespace in exportTo is not okay
        (
            ". and same namespace in exportTo is not okay",
            json!([".", "ns5"]),
            Error,
        ),
        // duplicate namespaces in exportTo is not okay
        (
            "duplicate namespaces in exportTo is not okay",
            json!(["ns1", "ns2", "ns1"]),
            Error,
        ),
        // invalid namespace names are not okay
        (
            "invalid namespace names are not okay",
            json!(["ns1_"]),
            Error,
        ),
    ];
    run::<VirtualService>(cases, "ns5", true, |export_to| {
        json!({
            "hosts": ["foo.bar"], "exportTo": export_to,
            "http": [{"route": [dest("foo.baz")]}],
        })
    });
}

/// Not table cases: `validateCORSPolicy` in `validation.go` accepts `*` as a method
/// (`supportedCORSMethods`) and any RFC 7230 token or `*` as a CORS header name
/// (`ValidateCORSHTTPHeaderName`).
#[test]
fn cors_wildcards_and_tokens() {
    route_table(vec![
        (
            "* method",
            with("corsPolicy", json!({"allowMethods": ["*"]})),
            Valid,
        ),
        (
            "* and token headers",
            with(
                "corsPolicy",
                json!({"allowHeaders": ["*", "x-custom.v1"], "exposeHeaders": ["x~y"]}),
            ),
            Valid,
        ),
        (
            "header with space",
            with("corsPolicy", json!({"allowHeaders": ["bad header"]})),
            Error,
        ),
    ]);
}

/// The harness itself must report a mismatch, or every table above would pass vacuously.
#[test]
fn harness_detects_mismatches() {
    let route = |j: Value| -> HTTPRoute { serde_json::from_value(j).expect("HTTPRoute") };
    let bad = check(&route(json!({})), "default");
    assert!(verdict(&bad, Error, false) && !verdict(&bad, Valid, false));
    let good = check(&route(with("route", json!([dest("foo.bar")]))), "default");
    assert!(verdict(&good, Valid, true) && !verdict(&good, Error, false));
    assert!(!verdict(&good, Warning, false));
    let warned = check(&route(with("mirrorPercent", json!(5))), "default");
    assert!(verdict(&warned, Warning, false) && !verdict(&warned, Valid, true));
}
