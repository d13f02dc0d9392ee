//! Reading the ILSVRC / PASCAL-VOC annotation XML, with `roxmltree`.
//!
//! A file must be well-formed XML (a malformed one is an
//! [`EvalError::Parse`](crate::EvalError::Parse) at the line `roxmltree`
//! reports); entities and CDATA are decoded, comments ignored, and a DTD is
//! allowed. Elements are found by name anywhere below a node, in document
//! order, as the annotation files need no more.

use std::path::Path;

pub(super) use roxmltree::Node;
use roxmltree::{Document, ParsingOptions};

use crate::error::{Result, parse_error};

/// Parses `xml`, naming `path` and the line of the first error.
pub(super) fn parse<'i>(path: &Path, xml: &'i str) -> Result<Document<'i>> {
    let options = ParsingOptions {
        allow_dtd: true,
        ..ParsingOptions::default()
    };
    Document::parse_with_options(xml, options).map_err(|e| {
        let line = usize::try_from(e.pos().row).unwrap_or(usize::MAX);
        parse_error(path, line, format!("malformed XML: {e}"))
    })
}

/// Every `tag` element below `node`, in document order.
pub(super) fn elements<'a, 'i: 'a>(
    node: Node<'a, 'i>,
    tag: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.descendants()
        .skip(1)
        .filter(move |n| n.has_tag_name(tag))
}

/// The first `tag` element below `node`.
pub(super) fn element<'a, 'i: 'a>(node: Node<'a, 'i>, tag: &'a str) -> Option<Node<'a, 'i>> {
    elements(node, tag).next()
}

/// The element's own text (its text children, joined) without surrounding
/// whitespace; empty for `<tag/>`.
pub(super) fn text(node: Node<'_, '_>) -> String {
    let text: String = node
        .children()
        .filter(Node::is_text)
        .filter_map(|c| c.text())
        .collect();
    text.trim().to_string()
}

/// 1-based line where the element's body starts (just after its opening
/// tag; the tag itself when the body is empty).
pub(super) fn line(node: Node<'_, '_>) -> usize {
    let start = node
        .first_child()
        .map_or(node.range().start, |c| c.range().start);
    let row = node.document().text_pos_at(start).row;
    usize::try_from(row).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "<annotation>\n <size><width>500</width>\n<height> 375 </height></size>\n\
        <object><name>n1</name><namespace>x</namespace></object>\n<object a=\"1\"><name>n2</name><empty/></object>\n</annotation>";

    fn doc(xml: &str) -> Document<'_> {
        parse(Path::new("a.xml"), xml).unwrap()
    }

    #[test]
    fn finds_elements_by_exact_name() {
        let doc = doc(DOC);
        let root = doc.root();
        let objects: Vec<_> = elements(root, "object").collect();
        assert_eq!(objects.len(), 2);
        let names: Vec<_> = objects
            .iter()
            .map(|o| element(*o, "name").map(text))
            .collect();
        assert_eq!(names, vec![Some("n1".into()), Some("n2".into())]);
        assert_eq!(element(objects[1], "empty").map(text), Some(String::new()));
        let size = element(root, "size").unwrap();
        assert_eq!(text(element(size, "height").unwrap()), "375");
        assert!(element(root, "missing").is_none());
    }

    #[test]
    fn lines_of_element_bodies() {
        let doc = doc(DOC);
        let root = doc.root();
        let height = element(element(root, "size").unwrap(), "height").unwrap();
        assert_eq!(line(height), 3);
        let second = elements(root, "object").nth(1).unwrap();
        assert_eq!(line(element(second, "name").unwrap()), 5);
        assert_eq!(line(element(second, "empty").unwrap()), 5);
    }

    #[test]
    fn decodes_entities_and_skips_comments() {
        let doc = doc("<a><!-- <b>no</b> -->\n<b>x&amp;<![CDATA[y]]><!-- c -->z</b></a>");
        let b: Vec<_> = elements(doc.root(), "b").map(text).collect();
        assert_eq!(b, vec!["x&yz".to_string()]);
    }

    #[test]
    fn malformed_xml_is_an_error_with_its_line() {
        match parse(Path::new("a.xml"), "<a>\n<b>1</a>") {
            Err(crate::EvalError::Parse {
                path,
                line,
                message,
            }) => {
                assert_eq!((path.to_str(), line), (Some("a.xml"), 2));
                assert!(message.contains("malformed XML"), "{message}");
            }
            other => panic!("expected a parse error, got {other:?}"),
        }
    }
}
