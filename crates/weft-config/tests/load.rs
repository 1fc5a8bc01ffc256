//! Loading behaviour: documents, Lists, JSON, positions, unknown kinds, duplicates and the
//! cross-resource findings.

use weft_config::{Code, FieldPath, Loader, Resource, Severity, validate_all};

fn load(text: &str) -> weft_config::LoadResult {
    let mut l = Loader::new();
    l.load_str("in.yaml", text);
    let mut r = l.finish();
    validate_all(&mut r);
    r
}

fn lines(r: &weft_config::LoadResult) -> String {
    r.findings.iter().map(|f| format!("{f}\n")).collect()
}

#[test]
fn json_documents_load_with_positions() {
    let r = load(
        r#"{
  "apiVersion": "networking.istio.io/v1",
  "kind": "Gateway",
  "metadata": {"name": "gw", "namespace": "edge"},
  "spec": {
    "selector": {"istio": "ingressgateway"},
    "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"], "bogus": 1}]
  }
}"#,
    );
    assert_eq!(r.resources.len(), 1);
    let f = r
        .findings
        .iter()
        .find(|f| f.code == Code::UnknownField)
        .unwrap_or_else(|| panic!("{}", lines(&r)));
    assert_eq!(f.path.to_string(), "spec.servers[0].bogus");
    let loc = f.location.as_ref().unwrap();
    assert_eq!((loc.line, loc.column), (7, 94));
    assert_eq!(f.object.as_ref().unwrap().to_string(), "Gateway edge/gw");
}

#[test]
fn lists_unpack_with_item_paths() {
    let r = load(
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: a}\n- apiVersion: security.istio.io/v1\n  kind: PeerAuthentication\n  metadata: {name: p, namespace: a}\n  spec: {mtls: {mode: STRIKT}}\n",
    );
    assert_eq!(r.resources.len(), 2, "{}", lines(&r));
    let f = &r.findings[0];
    assert_eq!(f.path.to_string(), "items[1].spec.mtls.mode");
    assert_eq!(f.location.as_ref().unwrap().line, 10);
    assert_eq!(f.suggestion.as_deref(), Some("did you mean `STRICT`?"));
}

#[test]
fn missing_fields_point_at_their_parent() {
    let r = load(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: x\nspec:\n  trafficPolicy: {}\n",
    );
    let f = r
        .findings
        .iter()
        .find(|f| f.path == FieldPath::parse("spec.host"))
        .unwrap_or_else(|| panic!("{}", lines(&r)));
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(f.location.as_ref().unwrap().line, 5, "points at `spec:`");
}

#[test]
fn not_objects_and_unknown_kinds_are_reported() {
    let r = load(
        "- a\n- b\n---\nkind: Service\n---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n---\napiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: {name: f}\n",
    );
    let codes: Vec<(Code, Severity, usize)> = r
        .findings
        .iter()
        .map(|f| (f.code, f.severity, f.location.as_ref().unwrap().line))
        .collect();
    assert_eq!(
        codes,
        vec![
            (Code::NotAnObject, Severity::Error, 1),
            (Code::NotAnObject, Severity::Error, 4),
            (Code::UnknownKind, Severity::Warning, 7),
            (Code::UnknownKind, Severity::Warning, 11),
        ],
        "{}",
        lines(&r)
    );
    assert!(r.findings[1].message.contains("apiVersion missing"));
}

#[test]
fn syntax_errors_and_duplicate_keys() {
    let r = load("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  name: b\n");
    assert_eq!(r.findings[0].code, Code::Syntax, "{}", lines(&r));
    assert!(r.findings[0].message.contains("already defined at line 4"));
    let r = load("a: [1\n");
    assert_eq!(r.findings[0].code, Code::Syntax);
}

#[test]
fn duplicates_and_missing_references_are_warnings() {
    let vs = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r, namespace: shop}\nspec:\n  hosts: [reviews]\n  gateways: [edge/public, mesh]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v3}\n";
    let dr = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r, namespace: shop}\nspec:\n  host: reviews.shop.svc.cluster.local\n  subsets:\n  - {name: v1, labels: {version: v1}}\n  - {name: v2, labels: {version: v2}}\n";
    let r = load(&format!("{vs}---\n{dr}---\n{vs}"));
    let warnings: Vec<String> = r
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .map(|f| format!("{} {}", f.code, f.path))
        .collect();
    assert!(!r.has_errors(), "{}", lines(&r));
    assert_eq!(
        warnings,
        vec![
            "reference-not-found spec.gateways[0]",
            "reference-not-found spec.http[0].route[0].destination.subset",
            "duplicate metadata.name",
            "reference-not-found spec.gateways[0]",
            "reference-not-found spec.http[0].route[0].destination.subset",
        ],
        "{}",
        lines(&r)
    );
    assert!(lines(&r).contains("defines subsets [v1, v2]"));
}

#[test]
fn kubernetes_kinds_decode_with_k8s_types() {
    let r = load(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: istio-system}\ndata:\n  ca.pem: LS0tLS1CRUdJTi...\n  ok: aGVsbG8=\n",
    );
    let f = r
        .findings
        .iter()
        .find(|f| f.is_error())
        .expect("bad base64 is an error");
    assert_eq!(f.path.to_string(), "data[\"ca.pem\"]");
    assert_eq!(f.location.as_ref().unwrap().line, 5);
    let r = load(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports:\n  - {port: 80, targetPort: http}\n  - {port: 70000}\n",
    );
    assert_eq!(r.resources.len(), 1);
    let Resource::Service(_) = &r.resources[0].resource else {
        panic!()
    };
    let errs: Vec<String> = r
        .findings
        .iter()
        .filter(|f| f.is_error())
        .map(|f| f.path.to_string())
        .collect();
    assert_eq!(
        errs,
        [
            "spec.ports[0].name",
            "spec.ports[1].name",
            "spec.ports[1].port"
        ],
        "{}",
        lines(&r)
    );
}

#[test]
fn mesh_config_inside_the_istio_config_map_is_validated_in_place() {
    let r = load(concat!(
        "apiVersion: v1\n",
        "kind: ConfigMap\n",
        "metadata: {name: istio, namespace: istio-system}\n",
        "data:\n",
        "  mesh: |\n",
        "    trustDomain: cluster.local\n",
        "    defaultConfig:\n",
        "      holdApplicationUntilProxyStarts: true\n",
        "      proxyStatsMatcher:\n",
        "        inclusionRegexps: [\".*_cx_(\"]\n",
        "    outboundTrafficPolicy: {mode: ALLOW_ALL}\n",
        "    enableTracng: true\n",
    ));
    assert_eq!(r.resources.len(), 1);
    let mesh = r.resources[0].embedded_mesh.as_ref().expect("mesh decoded");
    assert_eq!(mesh.config.trust_domain, "cluster.local");
    let got: Vec<(String, usize, usize)> = r
        .findings
        .iter()
        .map(|f| {
            let l = f.location.as_ref().unwrap();
            (f.path.to_string(), l.line, l.column)
        })
        .collect();
    assert!(
        got.contains(&("data[mesh].outboundTrafficPolicy.mode".into(), 11, 35)),
        "{}",
        lines(&r)
    );
    assert!(
        got.contains(&("data[mesh].enableTracng".into(), 12, 5)),
        "{}",
        lines(&r)
    );
    assert!(
        got.iter().any(|(p, l, _)| p
            .starts_with("data[mesh].defaultConfig.proxyStatsMatcher.inclusionRegexps")
            && *l == 10),
        "{}",
        lines(&r)
    );
    let typo = r
        .findings
        .iter()
        .find(|f| f.path.to_string() == "data[mesh].enableTracng")
        .unwrap();
    assert_eq!(
        typo.suggestion.as_deref(),
        Some("did you mean `enableTracing`?")
    );
    assert_eq!(
        typo.object.as_ref().unwrap().to_string(),
        "ConfigMap istio-system/istio"
    );
}

#[test]
fn providers_must_exist_in_the_loaded_mesh_config() {
    let mesh = "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nmetadata: {name: io, namespace: istio-system}\nspec:\n  meshConfig:\n    extensionProviders:\n    - name: jaeger\n      zipkin: {service: jaeger.obs.svc.cluster.local, port: 9411}\n";
    let tel = "apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: t, namespace: istio-system}\nspec:\n  tracing:\n  - providers: [{name: jeager}]\n  metrics:\n  - providers: [{name: prometheus}]\n";
    let alone = load(tel);
    assert!(
        alone.findings.is_empty(),
        "no mesh config loaded: nothing to check\n{}",
        lines(&alone)
    );
    let r = load(&format!("{mesh}---\n{tel}"));
    assert_eq!(r.findings.len(), 1, "{}", lines(&r));
    let f = &r.findings[0];
    assert_eq!(f.code, Code::ReferenceNotFound);
    assert_eq!(f.path.to_string(), "spec.tracing[0].providers[0].name");
    assert_eq!(f.suggestion.as_deref(), Some("did you mean \"jaeger\"?"));
}

#[test]
fn routing_analysis_follows_istio_analyzers() {
    let text = "\
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public, namespace: edge}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [\"shop/*.example.com\"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: front, namespace: shop}
spec:
  hosts: [shop.example.com, admin.internal]
  gateways: [edge/public]
  http:
  - route:
    - destination: {host: reviews}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: ratings}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b, namespace: shop}
spec:
  hosts: [reviews.shop.svc.cluster.local]
  http:
  - route:
    - destination: {host: reviews}
";
    let r = load(text);
    assert!(!r.has_errors(), "{}", lines(&r));
    let got: Vec<String> = r
        .findings
        .iter()
        .map(|f| format!("{} {} {}", f.object.as_ref().unwrap().name, f.code, f.path))
        .collect();
    assert_eq!(
        got,
        vec![
            "front reference-not-found spec.hosts[1]",
            "a conflict spec.hosts[0]",
            "a reference-not-found spec.http[0].route[0].destination.host",
            "b conflict spec.hosts[0]",
        ],
        "{}",
        lines(&r)
    );
    let text = lines(&r);
    assert!(text.contains("host \"admin.internal\" is not served by gateway edge/public"));
    assert!(text.contains("host ratings.shop.svc.cluster.local is not a loaded Service"));
    assert!(
        text.contains(
            "VirtualServices shop/a, shop/b all define host reviews.shop.svc.cluster.local"
        )
    );
}

#[test]
fn dry_run_annotation_follows_istio() {
    let ap = |action: &str, value: &str| {
        format!(
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: p\n  namespace: ns\n  annotations:\n    istio.io/dry-run: \"{value}\"\nspec:\n  action: {action}\n  rules: [{{}}]\n"
        )
    };
    let errors = |text: &str| -> Vec<String> {
        load(text)
            .findings
            .iter()
            .filter(|f| f.is_error())
            .map(|f| format!("{} {}", f.path, f.message))
            .collect()
    };
    assert!(errors(&ap("ALLOW", "true")).is_empty());
    assert!(errors(&ap("DENY", "False")).is_empty());
    let bad = errors(&ap("ALLOW", "foo"));
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(
        bad[0].starts_with("metadata.annotations[\"istio.io/dry-run\"] invalid"),
        "{bad:?}"
    );
    let audit = errors(&ap("AUDIT", "true"));
    assert!(
        audit
            .iter()
            .any(|e| e.contains("only supported on ALLOW and DENY")),
        "{audit:?}"
    );
    let ra = "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata:\n  name: r\n  namespace: ns\n  annotations: {istio.io/dry-run: \"true\"}\nspec:\n  jwtRules: [{issuer: https://example.com}]\n";
    let ra_errors = errors(ra);
    assert!(
        ra_errors
            .iter()
            .any(|e| e.contains("not supported on RequestAuthentication")),
        "{ra_errors:?}"
    );
}
