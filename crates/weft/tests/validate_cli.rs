//! `weft validate` end to end through the real binary: output lines, JSON, exit statuses,
//! stdin, directories and Kubernetes Lists.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn weft(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn weft");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const GOOD: &str = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
";

const BAD: &str = "\
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  trafficPolicy:
    connectionPool:
      http:
        connectTimeout: 30s
    loadBalancer:
      simple: ROUND_ROBN
";

#[test]
fn valid_input_exits_zero_and_prints_nothing() {
    let out = weft(&["validate", "-f", "-"], Some(GOOD));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    assert!(text(&out.stderr).contains("1 resource checked: 0 errors"));
}

#[test]
fn errors_exit_one_with_one_line_per_finding() {
    let out = weft(&["validate", "-f", "-"], Some(BAD));
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].starts_with("<stdin>:10:9: error[unknown-field]: DestinationRule default/reviews: spec.trafficPolicy.connectionPool.http.connectTimeout: unknown field `connectTimeout`"), "{}", lines[0]);
    assert!(
        lines[0].contains("did you mean `spec.trafficPolicy.connectionPool.tcp.connectTimeout`?")
    );
    assert!(lines[1].starts_with("<stdin>:12:15: error[invalid-value]: DestinationRule default/reviews: spec.trafficPolicy.loadBalancer.simple: unknown value `ROUND_ROBN`"), "{}", lines[1]);
    assert!(lines[1].contains("did you mean `ROUND_ROBIN`?"));
}

#[test]
fn json_output_carries_every_field() {
    let out = weft(&["validate", "-o", "json", "-f", "-"], Some(BAD));
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["summary"]["errors"], 2);
    assert_eq!(doc["summary"]["resources"], 1);
    let f = &doc["findings"][0];
    assert_eq!(f["severity"], "error");
    assert_eq!(f["code"], "unknown-field");
    assert_eq!(
        f["path"],
        "spec.trafficPolicy.connectionPool.http.connectTimeout"
    );
    assert_eq!(f["location"]["line"], 10);
    assert_eq!(f["object"]["kind"], "DestinationRule");
    assert_eq!(f["object"]["namespace"], "default");
}

#[test]
fn usage_and_io_problems_exit_two() {
    let out = weft(&["validate", "-f", "/nonexistent/weft.yaml"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent/weft.yaml"));
    let out = weft(&["validate"], None);
    assert_eq!(out.status.code(), Some(2), "missing -f is a usage error");
    let out = weft(&["validate", "-f", "-", "-o", "xml"], None);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn directories_are_read_recursively_and_lists_unpacked() {
    let dir = std::env::temp_dir().join(format!("weft-validate-{}", std::process::id()));
    let sub = dir.join("nested/deeper");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(dir.join("good.yaml"), GOOD).unwrap();
    std::fs::write(sub.join("bad.yml"), BAD).unwrap();
    std::fs::write(dir.join("notes.txt"), "not config").unwrap();
    let list = serde_json::json!({
        "apiVersion": "v1", "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"istio-injection": "enabled"}}},
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"}}
        ]
    });
    std::fs::write(
        dir.join("list.json"),
        serde_json::to_string_pretty(&list).unwrap(),
    )
    .unwrap();
    let out = weft(&["validate", "-f", dir.to_str().unwrap()], None);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("nested/deeper/bad.yml:10:9: error[unknown-field]"),
        "{stdout}"
    );
    assert!(stdout.contains("list.json:"), "{stdout}");
    assert!(
        stdout.contains("warning[unknown-kind]: StatefulSet"),
        "{stdout}"
    );
    assert!(stdout.contains("items[1].kind"), "{stdout}");
    assert!(!stdout.contains("notes.txt"));
    assert!(
        text(&out.stderr).contains("3 resources checked"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn misspelt_kinds_and_versions_are_errors() {
    let out = weft(
        &["validate", "-f", "-"],
        Some(
            "apiVersion: networking.istio.io/v1\nkind: VirtualServce\nmetadata: {name: a}\n---\napiVersion: networking.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: b}\n---\napiVersion: networking.istio.io/v2\nkind: Gateway\nmetadata: {name: c}\n",
        ),
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains("<stdin>:2:7: error[unknown-kind]")
            && stdout.contains("did you mean VirtualService?"),
        "{stdout}"
    );
    assert!(
        stdout.contains("did you mean apiVersion: security.istio.io/v1?"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Gateway is not served at apiVersion networking.istio.io/v2"),
        "{stdout}"
    );
}

#[test]
fn the_bundled_example_mesh_is_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/mesh");
    let out = weft(&["validate", "-f", dir], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(text(&out.stdout), "", "README promises a clean example");
}
