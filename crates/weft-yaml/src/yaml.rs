//! YAML (and therefore JSON) text to positioned [`Node`] trees, one per document, with the
//! syntax rules Kubernetes applies: duplicate keys are errors, anchors and merge keys work.

use crate::node::{Node, NodeKind, Pos, Style};
use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span};
use std::collections::HashMap;

/// A syntax problem with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// One `---`-separated document; `root` is `None` for an empty document.
#[derive(Debug, Clone)]
pub struct Document {
    pub root: Option<Node>,
    pub pos: Pos,
}

/// Everything parsed from one text: the documents that parsed, and the problems found.
/// A fatal scan error ends parsing; documents before it are still returned.
#[derive(Debug, Default)]
pub struct Parsed {
    pub documents: Vec<Document>,
    pub errors: Vec<SyntaxError>,
}

fn pos(span: &Span) -> Pos {
    Pos {
        line: span.start.line() as u32,
        column: span.start.col() as u32 + 1,
    }
}

struct Builder<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    anchors: HashMap<usize, Node>,
    next_id: &'a mut u32,
    errors: Vec<SyntaxError>,
}

enum Step<'a> {
    Event(Event<'a>, Span),
    End,
    Fail(ScanError),
}

impl<'a> Builder<'a> {
    fn next(&mut self) -> Step<'a> {
        match self.parser.next_event() {
            Some(Ok((ev, span))) => Step::Event(ev, span),
            Some(Err(e)) => Step::Fail(e),
            None => Step::End,
        }
    }

    fn id(&mut self) -> u32 {
        *self.next_id += 1;
        *self.next_id
    }

    fn scan_error(&mut self, e: ScanError) {
        let m = e.marker();
        self.errors.push(SyntaxError {
            pos: Pos {
                line: m.line() as u32,
                column: m.col() as u32 + 1,
            },
            message: e.info().to_string(),
        });
    }

    /// Builds the node that starts with `ev`; `Err` means the stream is broken.
    fn node(&mut self, ev: Event<'a>, span: Span) -> Result<Node, ()> {
        let at = pos(&span);
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let quoted = !matches!(style, ScalarStyle::Plain)
                    || tag.as_ref().is_some_and(|t| t.suffix == "str");
                let node = Node {
                    id: self.id(),
                    pos: at,
                    kind: NodeKind::Scalar {
                        // The scanner over-allocates; trees are kept for the whole load.
                        text: String::from(text.as_ref()),
                        style: if quoted { Style::Quoted } else { Style::Plain },
                    },
                };
                self.anchor(anchor, &node);
                Ok(node)
            }
            Event::Alias(anchor) => match self.anchors.get(&anchor) {
                Some(n) => Ok(n.clone()),
                None => {
                    self.errors.push(SyntaxError {
                        pos: at,
                        message: "alias to an unknown anchor".into(),
                    });
                    Err(())
                }
            },
            Event::SequenceStart(anchor, _) => {
                let id = self.id();
                let mut items = Vec::new();
                loop {
                    match self.next() {
                        Step::Event(Event::SequenceEnd, _) => break,
                        Step::Event(ev, span) => items.push(self.node(ev, span)?),
                        Step::Fail(e) => {
                            self.scan_error(e);
                            return Err(());
                        }
                        Step::End => return Err(()),
                    }
                }
                items.shrink_to_fit();
                let node = Node {
                    id,
                    pos: at,
                    kind: NodeKind::Seq(items),
                };
                self.anchor(anchor, &node);
                Ok(node)
            }
            Event::MappingStart(anchor, _) => {
                let id = self.id();
                let mut entries: Vec<(Node, Node)> = Vec::new();
                let mut merges: Vec<Node> = Vec::new();
                loop {
                    let key = match self.next() {
                        Step::Event(Event::MappingEnd, _) => break,
                        Step::Event(ev, span) => self.node(ev, span)?,
                        Step::Fail(e) => {
                            self.scan_error(e);
                            return Err(());
                        }
                        Step::End => return Err(()),
                    };
                    let value = match self.next() {
                        Step::Event(ev, span) => self.node(ev, span)?,
                        Step::Fail(e) => {
                            self.scan_error(e);
                            return Err(());
                        }
                        Step::End => return Err(()),
                    };
                    if matches!(&key.kind, NodeKind::Scalar { text, style: Style::Plain } if text == "<<")
                    {
                        merges.push(value);
                        continue;
                    }
                    if let Some(k) = key.scalar()
                        && let Some((first, _)) =
                            entries.iter().find(|(e, _)| e.scalar() == Some(k))
                    {
                        self.errors.push(SyntaxError {
                            pos: key.pos,
                            message: format!(
                                "mapping key {k:?} already defined at line {}",
                                first.pos.line
                            ),
                        });
                        continue;
                    }
                    entries.push((key, value));
                }
                self.merge(&mut entries, merges);
                entries.shrink_to_fit();
                let node = Node {
                    id,
                    pos: at,
                    kind: NodeKind::Map(entries),
                };
                self.anchor(anchor, &node);
                Ok(node)
            }
            other => {
                self.errors.push(SyntaxError {
                    pos: at,
                    message: format!("unexpected YAML event {other:?}"),
                });
                Err(())
            }
        }
    }

    /// YAML merge keys (`<<: *base`): entries already present win, as in go-yaml.
    fn merge(&mut self, entries: &mut Vec<(Node, Node)>, merges: Vec<Node>) {
        for m in merges {
            let sources: Vec<Node> = match m.kind {
                NodeKind::Seq(items) => items,
                _ => vec![m],
            };
            for src in sources {
                match src.kind {
                    NodeKind::Map(more) => {
                        for (k, v) in more {
                            if !entries.iter().any(|(e, _)| e.scalar() == k.scalar()) {
                                entries.push((k, v));
                            }
                        }
                    }
                    _ => self.errors.push(SyntaxError {
                        pos: src.pos,
                        message: "merge key `<<` needs a mapping or a list of mappings".into(),
                    }),
                }
            }
        }
    }

    fn anchor(&mut self, anchor: usize, node: &Node) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
    }
}

/// Parses `text` into documents. `next_id` numbers nodes uniquely across a whole load.
pub fn parse(text: &str, next_id: &mut u32) -> Parsed {
    let mut b = Builder {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        next_id,
        errors: Vec::new(),
    };
    let mut documents = Vec::new();
    loop {
        match b.next() {
            Step::Event(Event::DocumentStart(_), span) => {
                let start = pos(&span);
                let root = match b.next() {
                    Step::Event(Event::DocumentEnd, _) => None,
                    Step::Event(ev, span) => match b.node(ev, span) {
                        Ok(n) => {
                            // Consume DocumentEnd.
                            if let Step::Fail(e) = b.next() {
                                b.scan_error(e);
                                documents.push(Document {
                                    root: Some(n),
                                    pos: start,
                                });
                                break;
                            }
                            // An empty document parses as a null scalar.
                            (!n.is_null()).then_some(n)
                        }
                        Err(()) => break,
                    },
                    Step::Fail(e) => {
                        b.scan_error(e);
                        break;
                    }
                    Step::End => break,
                };
                documents.push(Document { root, pos: start });
            }
            Step::Event(Event::StreamEnd, _) | Step::End => break,
            Step::Event(_, _) => {}
            Step::Fail(e) => {
                b.scan_error(e);
                break;
            }
        }
    }
    Parsed {
        documents,
        errors: b.errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Node {
        let mut id = 0;
        let p = parse(text, &mut id);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        p.documents.into_iter().next().unwrap().root.unwrap()
    }

    #[test]
    fn positions_are_one_based() {
        let n = one("a:\n  b: 1\n  c: [x, 'y']\n");
        let a = n.get("a").unwrap();
        assert_eq!(a.pos, Pos { line: 2, column: 3 });
        let c = a.get("c").unwrap();
        assert_eq!(
            c.as_seq().unwrap()[1].pos,
            Pos {
                line: 3,
                column: 10
            }
        );
        assert_eq!(
            c.as_seq().unwrap()[1].resolved(),
            Some(crate::node::Resolved::Str("y"))
        );
    }

    #[test]
    fn multi_document_and_empty_documents() {
        let mut id = 0;
        let p = parse("---\na: 1\n---\n---\nb: 2\n...\n", &mut id);
        assert!(p.errors.is_empty());
        assert_eq!(p.documents.len(), 3);
        assert!(p.documents[1].root.is_none());
        assert_eq!(p.documents[2].pos.line, 4);
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let mut id = 0;
        let p = parse("a: 1\nb: 2\na: 3\n", &mut id);
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].pos.line, 3);
        assert!(p.errors[0].message.contains("already defined at line 1"));
    }

    #[test]
    fn anchors_and_merge_keys() {
        let n = one("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\n");
        let u = n.get("use").unwrap();
        assert_eq!(u.get("x").unwrap().scalar(), Some("1"));
        assert_eq!(u.get("y").unwrap().scalar(), Some("3"));
    }

    #[test]
    fn json_with_tabs() {
        let n = one("{\n\t\"a\": {\"b\": [1, 2]},\n\t\"c\": \"d\"\n}\n");
        assert_eq!(n.get("c").unwrap().pos, Pos { line: 3, column: 7 });
    }

    #[test]
    fn syntax_errors_have_positions() {
        let mut id = 0;
        let p = parse("a: [1, 2\nb: 3\n", &mut id);
        assert_eq!(p.errors.len(), 1);
        assert!(p.errors[0].pos.line >= 2);
    }
}
