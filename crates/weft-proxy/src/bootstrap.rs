//! Envoy bootstrap files (YAML or JSON), read the way Envoy reads them: proto3 JSON against
//! `envoy.config.bootstrap.v3.Bootstrap`, unknown fields rejected, `typed_config` resolved
//! by its `@type`. Every problem is reported with file:line:column and field path, not only
//! the first.

use crate::{descriptors, pgv, proto_path};
use envoy_types::pb::envoy::config::bootstrap::v3::Bootstrap;
use prost::Message;
use prost_reflect::{DeserializeOptions, DynamicMessage, MessageDescriptor};
use std::fmt;
use weft_yaml::{FieldPath, MapKeys, Node, Pos, decode_with, yaml};

/// One problem with a configuration file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub file: String,
    pub pos: Pos,
    /// Where in the document (`static_resources.listeners[0].address`).
    pub path: FieldPath,
    pub message: String,
    pub suggestion: Option<String>,
}

impl fmt::Display for ConfigError {
    /// `file:line:col: path: message (suggestion)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file, self.pos)?;
        if !self.path.is_root() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some(s) = &self.suggestion {
            write!(f, " ({s})")?;
        }
        Ok(())
    }
}

const BOOTSTRAP: &str = "envoy.config.bootstrap.v3.Bootstrap";

/// Parses a bootstrap named `file` (used in messages) from YAML or JSON text.
pub fn parse_bootstrap(file: &str, text: &str) -> Result<Bootstrap, Vec<ConfigError>> {
    parse_bootstrap_located(file, text).map(|(b, _)| b)
}

/// [`parse_bootstrap`], also returning the document so later checks can point into it.
pub fn parse_bootstrap_located(
    file: &str,
    text: &str,
) -> Result<(Bootstrap, Node), Vec<ConfigError>> {
    match parse_with(file, text, &descriptors::pool()) {
        // A type outside the served set: read it against all of Envoy's messages, so the
        // error says what is there but unsupported rather than that it does not exist.
        Err(errs) if errs.iter().any(|e| e.message.ends_with("' not found")) => {
            parse_with(file, text, &descriptors::full_pool())
        }
        other => other,
    }
}

fn parse_with(
    file: &str,
    text: &str,
    pool: &prost_reflect::DescriptorPool,
) -> Result<(Bootstrap, Node), Vec<ConfigError>> {
    let err = |pos: Pos, path: FieldPath, message: String| ConfigError {
        file: file.to_string(),
        pos,
        path,
        message,
        suggestion: None,
    };
    let mut next_id = 0;
    let parsed = yaml::parse(text, &mut next_id);
    let mut errors: Vec<ConfigError> = parsed
        .errors
        .iter()
        .map(|e| {
            err(
                e.pos,
                FieldPath::root(),
                format!("YAML syntax error: {}", e.message),
            )
        })
        .collect();
    let mut roots = parsed.documents.into_iter().filter_map(|d| d.root);
    let Some(root) = roots.next() else {
        if errors.is_empty() {
            errors.push(err(
                Pos { line: 1, column: 1 },
                FieldPath::root(),
                "the bootstrap is empty".into(),
            ));
        }
        return Err(errors);
    };
    if let Some(extra) = roots.next() {
        errors.push(err(
            extra.pos,
            FieldPath::root(),
            "a bootstrap is one document; found another after `---`".into(),
        ));
    }
    let Some(desc) = pool.get_message_by_name(BOOTSTRAP) else {
        errors.push(err(
            root.pos,
            FieldPath::root(),
            format!("{BOOTSTRAP} is missing from the descriptors"),
        ));
        return Err(errors);
    };
    // Envoy rejects unknown fields in bootstraps (its strict proto validation).
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    let (message, issues) = decode_with(&root, &FieldPath::root(), MapKeys::Fields, |d| {
        DynamicMessage::deserialize_with_options(desc.clone(), d, &options)
    });
    errors.extend(issues.into_iter().map(|i| {
        let suggestion = i
            .suggestion
            .or_else(|| suggest(&desc, &root, &i.path, &i.message));
        ConfigError {
            file: file.to_string(),
            pos: i.pos,
            path: i.path,
            message: i.message,
            suggestion,
        }
    }));
    if !errors.is_empty() {
        return Err(errors);
    }
    let Some(message) = message else {
        return Err(vec![err(
            root.pos,
            FieldPath::root(),
            "the bootstrap could not be read".into(),
        )]);
    };
    // The rules Envoy checks after parsing (ports, required fields, non-empty names, …).
    let violations = pgv::check(&message, Some(&root));
    if !violations.is_empty() {
        return Err(violations
            .into_iter()
            .map(|v| err(root.locate(&v.path), v.path, v.message))
            .collect());
    }
    let bootstrap = Bootstrap::decode(message.encode_to_vec().as_slice()).map_err(|e| {
        vec![err(
            root.pos,
            FieldPath::root(),
            format!("internal: descriptors and prost types disagree: {e}"),
        )]
    })?;
    Ok((bootstrap, root))
}

/// Suggestions for the decoder's messages about unknown fields and enum values.
fn suggest(
    desc: &MessageDescriptor,
    root: &Node,
    path: &FieldPath,
    message: &str,
) -> Option<String> {
    let quoted = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .map(|rest| rest.trim_matches('\'').to_string())
    };
    if message.starts_with("failed to parse duration") {
        return Some("Envoy durations are seconds ending in `s`, e.g. `0.250s` for 250ms".into());
    }
    let parent = proto_path::parent_message(desc, root, path)?;
    if let Some(name) = quoted("unrecognized field name ") {
        return proto_path::suggest_field(&parent, &name);
    }
    if let Some(value) = quoted("unrecognized enum value ") {
        let field = match path.0.last()? {
            weft_yaml::Segment::Field(f) | weft_yaml::Segment::Key(f) => f,
            weft_yaml::Segment::Index(_) => match path.0.get(path.0.len().checked_sub(2)?)? {
                weft_yaml::Segment::Field(f) | weft_yaml::Segment::Key(f) => f,
                weft_yaml::Segment::Index(_) => return None,
            },
        };
        return proto_path::suggest_enum_value(&parent, field, &value);
    }
    match path.0.last()? {
        weft_yaml::Segment::Field(f) | weft_yaml::Segment::Key(f) => {
            proto_path::expected_type(&parent, f)
        }
        weft_yaml::Segment::Index(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATIC: &str = r#"
admin:
  address:
    socket_address: { address: 127.0.0.1, port_value: 9901 }
node: { id: sidecar~10.0.0.1~app.default~default.svc.cluster.local, cluster: app }
static_resources:
  listeners:
  - name: ingress
    address:
      socket_address: { address: 0.0.0.0, port_value: 10000 }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: backend, timeout: 1.5s }
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: backend
    type: STATIC
    connect_timeout: 0.25s
    load_assignment:
      cluster_name: backend
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: { address: 127.0.0.1, port_value: 8080 }
"#;

    #[test]
    fn reads_a_static_bootstrap_into_the_prost_types() {
        let b = parse_bootstrap("envoy.yaml", STATIC).expect("valid");
        let sr = b.static_resources.expect("static resources");
        assert_eq!(sr.listeners.len(), 1);
        let hcm = &sr.listeners[0].filter_chains[0].filters[0];
        assert_eq!(hcm.name, "envoy.filters.network.http_connection_manager");
        assert_eq!(sr.clusters[0].name, "backend");
        let timeout = sr.clusters[0].connect_timeout.expect("connect_timeout");
        assert_eq!((timeout.seconds, timeout.nanos), (0, 250_000_000));
        assert_eq!(b.node.expect("node").cluster, "app");
    }

    #[test]
    fn json_and_camel_case_are_accepted_as_envoy_does() {
        let json = r#"{"admin": {"address": {"socketAddress": {"address": "127.0.0.1", "portValue": 9901}}}}"#;
        assert!(parse_bootstrap("envoy.json", json).is_ok());
    }

    #[test]
    fn every_problem_is_reported_with_its_position() {
        let text = STATIC
            .replace("port_value: 9901", "port_valu: 9901")
            .replace("connect_timeout: 0.25s", "connect_timeout: 250ms")
            .replace("router.v3.Router", "router.v3.Routr");
        let errs = parse_bootstrap("envoy.yaml", &text).expect_err("invalid");
        let lines: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(errs.len(), 3, "{lines:#?}");
        assert!(lines[0].starts_with("envoy.yaml:4:"), "{lines:#?}");
        assert!(lines[0].contains("port_valu"), "{lines:#?}");
        assert!(
            lines[0].contains("did you mean `port_value`?"),
            "{lines:#?}"
        );
        assert!(lines.iter().any(|l| l.contains("Routr")), "{lines:#?}");
        assert!(
            lines
                .iter()
                .any(|l| l.contains("static_resources.clusters[0].connect_timeout")),
            "{lines:#?}"
        );
    }

    #[test]
    fn unknown_fields_inside_typed_config_are_pinned_and_explained() {
        let text = STATIC.replace("stat_prefix: ingress_http", "stat_prefx: ingress_http");
        let errs = parse_bootstrap("envoy.yaml", &text).expect_err("invalid");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(
            errs[0].path.to_string(),
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.stat_prefx"
        );
        assert_eq!(
            errs[0].suggestion.as_deref(),
            Some("did you mean `stat_prefix`?")
        );
        let text = STATIC.replace("port_value: 8080", "port_value: eighty");
        let errs = parse_bootstrap("envoy.yaml", &text).expect_err("invalid");
        assert_eq!(errs[0].suggestion.as_deref(), Some("expected uint32"));
    }

    #[test]
    fn envoy_constraint_rules_apply_after_parsing() {
        let text = STATIC
            .replace("port_value: 8080", "port_value: 70000")
            .replace("domains: [\"*\"]", "domains: []");
        let errs = parse_bootstrap("envoy.yaml", &text).expect_err("invalid");
        let lines: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(errs.len(), 2, "{lines:#?}");
        assert!(
            lines
                .iter()
                .any(|l| l.ends_with("virtual_hosts[0].domains: must not be empty")),
            "{lines:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.ends_with("port_value: must be at most 65535 (is 70000)")),
            "{lines:#?}"
        );
    }

    #[test]
    fn empty_and_multi_document_files_are_rejected() {
        assert!(parse_bootstrap("e.yaml", "").is_err());
        let two = format!("{STATIC}---\nadmin: {{}}\n");
        let errs = parse_bootstrap("e.yaml", &two).expect_err("two documents");
        assert!(errs[0].message.contains("one document"));
    }
}
