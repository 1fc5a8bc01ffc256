//! Tests of the HTTP route actions: retries, faults, mirrors, redirects, direct responses,
//! rewrites, header manipulation, CORS and timeouts.

use super::tests::{errors, http, paths, run};
use crate::diag::{Code, Severity};
use serde_json::{Value, json};

#[test]
fn retries() {
    let r = |r: Value| errors(http(json!({"retries": r})));
    assert!(
        r(json!({"attempts": 2, "retryOn": "503,retriable-4xx,reset-before-request,unavailable"}))
            .is_empty()
    );
    assert_eq!(
        r(json!({"attempts": 2, "retryOn": "5xx, gateway-error"})),
        ["http[0].retries.retryOn"]
    );
    assert_eq!(
        r(json!({"attempts": 2, "retryOn": "999"})),
        ["http[0].retries.retryOn"]
    );
    assert_eq!(
        r(json!({"attempts": 0, "perTryTimeout": "1s"})),
        ["http[0].retries.attempts"]
    );
    assert_eq!(r(json!({"attempts": -1})), ["http[0].retries.attempts"]);
    assert_eq!(
        r(json!({"attempts": 1, "perTryTimeout": "1500us"})),
        ["http[0].retries.perTryTimeout"]
    );
    assert_eq!(
        r(json!({"attempts": 1, "backoff": "0s"})),
        ["http[0].retries.backoff"]
    );
}

#[test]
fn fault_injection() {
    let f = |f: Value| run(http(json!({"fault": f})));
    let e = |f2: Value| paths(&f(f2), Severity::Error);
    assert_eq!(e(json!({})), ["http[0].fault"]);
    assert_eq!(
        e(json!({"abort": {"httpStatus": 700}})),
        ["http[0].fault.abort.httpStatus"]
    );
    assert!(e(json!({"abort": {"httpStatus": 600, "percentage": {"value": 100}}})).is_empty());
    assert_eq!(
        e(json!({"abort": {"grpcStatus": "NOPE"}})),
        ["http[0].fault.abort.grpcStatus"]
    );
    assert!(e(json!({"abort": {"grpcStatus": "UNAVAILABLE"}})).is_empty());
    assert_eq!(
        e(json!({"abort": {"http2Error": "x"}})),
        ["http[0].fault.abort.http2Error"]
    );
    assert_eq!(
        e(json!({"abort": {"httpStatus": 500, "grpcStatus": "OK"}})),
        ["http[0].fault.abort"]
    );
    assert_eq!(
        paths(&f(json!({"abort": {}})), Severity::Warning),
        ["http[0].fault.abort"]
    );
    assert_eq!(
        e(json!({"delay": {"fixedDelay": "1s", "percentage": {"value": 101}}})),
        ["http[0].fault.delay.percentage.value"]
    );
    assert_eq!(
        e(json!({"delay": {"fixedDelay": "1s", "percentage": {"value": 0.00001}}})),
        ["http[0].fault.delay.percentage.value"]
    );
    assert_eq!(
        e(json!({"delay": {"exponentialDelay": "1s"}})),
        ["http[0].fault.delay.exponentialDelay"]
    );
    let d = f(json!({"delay": {"fixedDelay": "1s", "percent": 10}}));
    assert_eq!(d.len(), 1);
    assert_eq!(
        (d[0].code, d[0].path.to_string()),
        (Code::Deprecated, "http[0].fault.delay.percent".into())
    );
}

#[test]
fn mirroring() {
    let fs = run(http(json!({"mirror": {"host": "m"}, "mirrorPercent": 150})));
    assert_eq!(paths(&fs, Severity::Error), ["http[0].mirrorPercent"]);
    assert_eq!(paths(&fs, Severity::Warning), ["http[0].mirrorPercent"]);
    assert_eq!(
        errors(http(json!({"mirrorPercentage": {"value": 101}}))),
        ["http[0].mirrorPercentage.value"]
    );
    assert_eq!(
        errors(http(json!({"mirrorPercentage": {"value": -1}}))),
        ["http[0].mirrorPercentage.value"]
    );
    assert_eq!(
        errors(http(json!({"mirrors": [{"percentage": {"value": 5}}]}))),
        ["http[0].mirrors[0].destination"]
    );
    assert_eq!(
        errors(http(json!({"mirrors": [{"destination": {"host": "*"}}]}))),
        ["http[0].mirrors[0].destination.host"]
    );
    assert_eq!(
        errors(http(json!({"mirror": {"host": "a", "subset": "V_1"}}))),
        ["http[0].mirror.subset"]
    );
}

#[test]
fn redirects() {
    let r = |r: Value| errors(json!({"hosts": ["a"], "http": [{"redirect": r}]}));
    assert_eq!(r(json!({})), ["http[0].redirect"]);
    assert_eq!(
        r(json!({"uri": "/a", "redirectCode": 200})),
        ["http[0].redirect.redirectCode"]
    );
    assert_eq!(r(json!({"scheme": "ftp"})), ["http[0].redirect.scheme"]);
    assert_eq!(r(json!({"port": 70000})), ["http[0].redirect.port"]);
    assert_eq!(
        r(json!({"port": 80, "derivePort": "FROM_PROTOCOL_DEFAULT"})),
        ["http[0].redirect"]
    );
    assert!(r(json!({"derivePort": "FROM_PROTOCOL_DEFAULT", "redirectCode": 308})).is_empty());
}

#[test]
fn direct_responses() {
    let d = |d: Value| run(json!({"hosts": ["a"], "http": [{"directResponse": d}]}));
    assert_eq!(
        paths(&d(json!({"status": 100})), Severity::Error),
        ["http[0].directResponse.status"]
    );
    assert_eq!(
        paths(&d(json!({})), Severity::Error),
        ["http[0].directResponse.status"]
    );
    let big = "x".repeat(200 * 1024);
    assert_eq!(
        paths(
            &d(json!({"status": 200, "body": {"string": big}})),
            Severity::Warning
        ),
        ["http[0].directResponse.body"]
    );
    let huge = "x".repeat(2 * 1024 * 1024);
    assert_eq!(
        paths(
            &d(json!({"status": 200, "body": {"string": huge}})),
            Severity::Error
        ),
        ["http[0].directResponse.body"]
    );
    assert_eq!(
        paths(
            &d(json!({"status": 200, "body": {"string": "a", "bytes": "YQ=="}})),
            Severity::Error
        ),
        ["http[0].directResponse.body"]
    );
}

#[test]
fn rewrites() {
    let r = |r: Value| errors(http(json!({"rewrite": r})));
    assert_eq!(
        r(json!({"uri": "/a", "uriRegexRewrite": {"match": "a", "rewrite": "b"}})),
        ["http[0].rewrite.uriRegexRewrite"]
    );
    assert_eq!(r(json!({})), ["http[0].rewrite"]);
    assert_eq!(
        r(json!({"uriRegexRewrite": {"match": "a"}})),
        ["http[0].rewrite.uriRegexRewrite"]
    );
    assert_eq!(
        r(json!({"uriRegexRewrite": {"match": "(", "rewrite": "b"}})),
        ["http[0].rewrite.uriRegexRewrite.match"]
    );
    assert!(r(json!({"uriRegexRewrite": {"match": "^/v1/(.*)", "rewrite": "/\\1"}})).is_empty());
    let e = errors(http(
        json!({"rewrite": {"authority": "x"}, "headers": {"request": {"set": {"Host": "y"}}}}),
    ));
    assert_eq!(e, ["http[0].headers.request.set[Host]"]);
    let e = errors(http(
        json!({"headers": {"request": {"set": {"host": "y"}, "add": {":authority": "z"}}}}),
    ));
    assert_eq!(e, ["http[0].headers.request.add[\":authority\"]"]);
}

#[test]
fn header_operations() {
    let h = |h: Value| errors(http(json!({"headers": h})));
    assert!(
        h(
            json!({"request": {"set": {"host": "a", "x-a": "%HOSTNAME%", "x-b": "100%%"}},
                     "response": {"add": {"x-c": "%UPSTREAM_METADATA([\"istio\", \"x\"])%"}}})
        )
        .is_empty()
    );
    assert_eq!(
        h(json!({"request": {"set": {":path": "/"}}})),
        ["http[0].headers.request.set[\":path\"]"]
    );
    assert_eq!(
        h(json!({"response": {"set": {"Host": "a"}}})),
        ["http[0].headers.response.set[Host]"]
    );
    assert_eq!(
        h(json!({"request": {"remove": [":authority"]}})),
        ["http[0].headers.request.remove[0]"]
    );
    assert_eq!(
        h(json!({"request": {"add": {"x": "50%"}}})),
        ["http[0].headers.request.add[x]"]
    );
    assert_eq!(
        h(json!({"request": {"add": {"x": "%FOO(bar"}}})),
        ["http[0].headers.request.add[x]"]
    );
    assert_eq!(
        h(json!({"request": {"add": {"x": "a\nb"}}})),
        ["http[0].headers.request.add[x]"]
    );
    let e = errors(json!({"hosts": ["a"], "http": [{"route": [
        {"destination": {"host": "a"}, "headers": {"response": {"remove": [""]}}}]}]}));
    assert_eq!(e, ["http[0].route[0].headers.response.remove[0]"]);
}

#[test]
fn cors() {
    let c = |c: Value| run(http(json!({"corsPolicy": c})));
    let e = |c2: Value| paths(&c(c2), Severity::Error);
    assert!(
        e(
            json!({"allowOrigins": [{"regex": "https://.*\\.example\\.com"}], "allowHeaders": ["*"],
                     "allowMethods": ["GET", "OPTIONS"], "maxAge": "24h"})
        )
        .is_empty()
    );
    assert_eq!(
        e(json!({"allowOrigins": [{"exact": ""}]})),
        ["http[0].corsPolicy.allowOrigins[0]"]
    );
    assert_eq!(
        e(json!({"allowOrigins": [{"regex": "(("}]})),
        ["http[0].corsPolicy.allowOrigins[0].regex"]
    );
    assert_eq!(
        e(json!({"allowMethods": ["get"]})),
        ["http[0].corsPolicy.allowMethods[0]"]
    );
    assert_eq!(
        e(json!({"exposeHeaders": ["bad header"]})),
        ["http[0].corsPolicy.exposeHeaders[0]"]
    );
    assert_eq!(
        e(json!({"maxAge": "1500ms"})),
        ["http[0].corsPolicy.maxAge"]
    );
    let w = c(json!({"allowOrigin": ["*"]}));
    assert_eq!((w.len(), w[0].code), (1, Code::Deprecated));
}

#[test]
fn timeouts() {
    assert_eq!(
        errors(http(json!({"timeout": "0.5ms"}))),
        ["http[0].timeout"]
    );
    assert!(errors(http(json!({"timeout": "1.5s"}))).is_empty());
}
