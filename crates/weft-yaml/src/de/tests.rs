//! Decoder tests: every problem reported once, with path and position.

use super::*;
use serde::Deserialize;
use std::collections::BTreeMap;

/// A duration in whole or fractional seconds (`1.5s`), presented under the duration newtype
/// name like the real duration types.
#[derive(Debug, PartialEq)]
struct Dur(std::time::Duration);

impl<'de> serde::Deserialize<'de> for Dur {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("seconds like 1.5s")
            }
            fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<Dur, D::Error> {
                let s = String::deserialize(d)?;
                s.strip_suffix('s')
                    .and_then(|n| n.parse::<f64>().ok())
                    .map(|secs| Dur(std::time::Duration::from_secs_f64(secs)))
                    .ok_or_else(|| de::Error::custom(format!("invalid duration {s:?}")))
            }
        }
        d.deserialize_newtype_struct(crate::DURATION_NEWTYPE, V)
    }
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
struct Inner {
    max_connections: u32,
    connect_timeout: Option<Dur>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum Mode {
    #[default]
    Unset,
    Strict,
    Permissive,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
struct Outer {
    name: String,
    mode: Mode,
    tcp: Option<Inner>,
    list: Vec<Inner>,
    labels: BTreeMap<String, String>,
    ports: BTreeMap<u32, Mode>,
    weight: i32,
    ratio: f64,
}

fn run(text: &str) -> (Option<Outer>, Vec<Issue>) {
    let mut id = 0;
    let p = crate::yaml::parse(text, &mut id);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let root = p.documents[0].root.clone().unwrap();
    decode::<Outer>(&root, &FieldPath::parse("spec"))
}

#[test]
fn decodes_valid_input() {
    let (v, issues) = run(
        "name: a\nmode: STRICT\ntcp: {maxConnections: 5, connectTimeout: 1.5s}\nlabels: {app: x}\nports: {'8080': PERMISSIVE}\nweight: 3\nratio: 1\n",
    );
    assert!(issues.is_empty(), "{issues:?}");
    let v = v.unwrap();
    assert_eq!(v.mode, Mode::Strict);
    assert_eq!(v.tcp.unwrap().connect_timeout.unwrap().0.as_millis(), 1500);
    assert_eq!(v.ports[&8080], Mode::Permissive);
    assert_eq!(v.ratio, 1.0);
}

#[test]
fn reports_every_problem_with_paths_and_positions() {
    let (v, issues) = run(concat!(
        "name: 5\n",                                        // string expected
        "mode: strict\n",                                   // enum case
        "tcp:\n  maxConections: 5\n  connectTimeout: 30\n", // unknown field + bad duration
        "list:\n- maxConnections: -1\n- maxConnections: 2\n",
        "labels: {version: 1}\n",
        "weight: '3'\n",
    ));
    let v = v.expect("document still decodes");
    assert_eq!(v.list.len(), 2, "only the bad value is skipped");
    assert_eq!(v.list[1].max_connections, 2);
    let got: Vec<(String, u32, Problem)> = issues
        .iter()
        .map(|i| (i.path.to_string(), i.pos.line, i.problem))
        .collect();
    assert!(
        got.contains(&("spec.name".into(), 1, Problem::InvalidType)),
        "{got:?}"
    );
    assert!(
        got.contains(&("spec.mode".into(), 2, Problem::InvalidValue)),
        "{got:?}"
    );
    assert!(
        got.contains(&("spec.tcp.maxConections".into(), 4, Problem::UnknownField)),
        "{got:?}"
    );
    assert!(
        got.contains(&("spec.tcp.connectTimeout".into(), 5, Problem::InvalidType)),
        "{got:?}"
    );
    assert!(
        got.contains(&(
            "spec.list[0].maxConnections".into(),
            7,
            Problem::InvalidValue
        )),
        "{got:?}"
    );
    let dur = issues
        .iter()
        .find(|i| i.path.to_string() == "spec.tcp.connectTimeout")
        .unwrap();
    assert_eq!(dur.suggestion.as_deref(), Some("add a unit: \"30s\""));
    assert!(
        got.contains(&("spec.labels[version]".into(), 9, Problem::InvalidType)),
        "{got:?}"
    );
    assert!(
        got.contains(&("spec.weight".into(), 10, Problem::InvalidType)),
        "{got:?}"
    );
    let mode = issues
        .iter()
        .find(|i| i.path.to_string() == "spec.mode")
        .unwrap();
    assert_eq!(mode.suggestion.as_deref(), Some("did you mean `STRICT`?"));
    let unk = issues
        .iter()
        .find(|i| i.problem == Problem::UnknownField)
        .unwrap();
    assert_eq!(
        unk.suggestion.as_deref(),
        Some("did you mean `maxConnections`?")
    );
    let name = issues
        .iter()
        .find(|i| i.path.to_string() == "spec.name")
        .unwrap();
    assert!(name.suggestion.as_deref().unwrap().contains("\"5\""));
}

#[test]
fn nulls_are_absent() {
    let (v, issues) = run("name: ~\ntcp:\nlist:\n");
    assert!(issues.is_empty(), "{issues:?}");
    assert_eq!(v.unwrap(), Outer::default());
}

#[test]
fn root_type_errors_are_fatal() {
    let mut id = 0;
    let p = crate::yaml::parse("- a\n- b\n", &mut id);
    let (v, issues) = decode::<Outer>(p.documents[0].root.as_ref().unwrap(), &FieldPath::root());
    assert!(v.is_none());
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].problem, Problem::InvalidType);
}
