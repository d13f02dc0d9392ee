//! A minimal XML element reader, enough for PASCAL-VOC / ILSVRC annotations.
//!
//! It finds `<tag ...>body</tag>` by name (attributes are skipped,
//! `<tag/>` has an empty body), does not decode entities and does not
//! understand comments or CDATA. An element must not contain an element of
//! the same name, which holds for the annotation files.

/// The body of an element: the text between its opening and closing tag.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Node<'a> {
    /// Byte offset of `text` in the whole document.
    pub start: usize,
    /// The body.
    pub text: &'a str,
}

impl<'a> Node<'a> {
    /// The whole document as a node.
    pub fn document(xml: &'a str) -> Self {
        Node {
            start: 0,
            text: xml,
        }
    }

    /// Every `tag` element inside this node, in document order.
    pub fn children(&self, tag: &str) -> Vec<Node<'a>> {
        let mut found = Vec::new();
        let mut from = 0;
        while let Some((body, end)) = next_element(self.text, tag, from) {
            found.push(Node {
                start: self.start + body.0,
                text: &self.text[body.0..body.1],
            });
            from = end;
        }
        found
    }

    /// The first `tag` element inside this node.
    pub fn child(&self, tag: &str) -> Option<Node<'a>> {
        next_element(self.text, tag, 0).map(|(body, _)| Node {
            start: self.start + body.0,
            text: &self.text[body.0..body.1],
        })
    }

    /// The body without surrounding whitespace.
    pub fn trimmed(&self) -> &'a str {
        self.text.trim()
    }
}

/// 1-based line number of byte `offset` in `xml`.
pub(super) fn line_of(xml: &str, offset: usize) -> usize {
    let end = offset.min(xml.len());
    xml.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Finds the next `tag` element at or after `from`: the byte range of its
/// body and the offset just past its closing tag.
fn next_element(text: &str, tag: &str, from: usize) -> Option<((usize, usize), usize)> {
    let (open_end, self_closing) = find_open(text, tag, from)?;
    if self_closing {
        return Some(((open_end, open_end), open_end));
    }
    let close = format!("</{tag}>");
    let close_at = open_end + text.get(open_end..)?.find(&close)?;
    Some(((open_end, close_at), close_at + close.len()))
}

/// Offset just past the next opening tag `<tag>` / `<tag attr=..>` /
/// `<tag/>` at or after `from`, and whether it closes itself.
fn find_open(text: &str, tag: &str, from: usize) -> Option<(usize, bool)> {
    let pattern = format!("<{tag}");
    let mut at = from;
    loop {
        let start = at + text.get(at..)?.find(&pattern)?;
        let after = start + pattern.len();
        let next = text.get(after..)?.chars().next()?;
        if next == '>' || next == '/' || next.is_whitespace() {
            let gt = after + text.get(after..)?.find('>')?;
            return Some((gt + 1, text[..gt].ends_with('/')));
        }
        at = after;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "<annotation>\n <size><width>500</width>\n<height> 375 </height></size>\n\
        <object><name>n1</name><namespace>x</namespace></object>\n<object a=\"1\"><name>n2</name><empty/></object>\n</annotation>";

    #[test]
    fn finds_children_by_exact_name() {
        let doc = Node::document(DOC);
        let objects = doc.children("object");
        assert_eq!(objects.len(), 2);
        let names: Vec<_> = objects
            .iter()
            .map(|o| o.child("name").map(|n| n.trimmed()))
            .collect();
        assert_eq!(names, vec![Some("n1"), Some("n2")]);
        assert_eq!(objects[1].child("empty").map(|n| n.text), Some(""));
        let size = doc.child("size").unwrap();
        assert_eq!(size.child("height").unwrap().trimmed(), "375");
        assert!(doc.child("missing").is_none());
    }

    #[test]
    fn offsets_give_line_numbers() {
        let doc = Node::document(DOC);
        let height = doc.child("size").unwrap().child("height").unwrap();
        assert_eq!(line_of(DOC, height.start), 3);
        let second = doc.children("object")[1];
        assert_eq!(line_of(DOC, second.child("name").unwrap().start), 5);
    }

    #[test]
    fn unclosed_element_is_not_found() {
        let doc = Node::document("<a><b>1</a>");
        assert!(doc.child("b").is_none());
        assert_eq!(doc.child("a").unwrap().text, "<b>1");
    }
}
