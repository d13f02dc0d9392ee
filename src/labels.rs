//! Class labels: index ↔ WordNet id ↔ human-readable names.

use std::path::Path;

use serde::Serialize;

use crate::{Error, Result};

/// One class: its WordNet id (if known) and its names (the first is the display name).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassLabel {
    /// WordNet id such as `n02108422`, empty when unknown.
    pub wnid: String,
    /// Names, most common first (`bull mastiff`).
    pub names: Vec<String>,
}

impl ClassLabel {
    /// The display name (first name, or the WordNet id).
    pub fn name(&self) -> &str {
        self.names.first().map(String::as_str).unwrap_or(&self.wnid)
    }
}

/// The labels of a classifier, line `i` = class `i`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Labels {
    classes: Vec<ClassLabel>,
}

/// How a caller names a class: by index or by label (a name, a synonym or a WordNet id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClassQuery {
    /// Class index (0-based, ImageNet order for the presets).
    Index(usize),
    /// A label, matched case-insensitively against names, synonyms and WordNet ids.
    Label(String),
}

impl From<usize> for ClassQuery {
    fn from(index: usize) -> Self {
        ClassQuery::Index(index)
    }
}

impl From<&str> for ClassQuery {
    fn from(label: &str) -> Self {
        ClassQuery::Label(label.to_string())
    }
}

impl From<String> for ClassQuery {
    fn from(label: String) -> Self {
        ClassQuery::Label(label)
    }
}

impl std::str::FromStr for ClassQuery {
    type Err = std::convert::Infallible;

    /// Digits give an index, anything else a label.
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(s.trim()
            .parse::<usize>()
            .map(ClassQuery::Index)
            .unwrap_or_else(|_| ClassQuery::Label(s.trim().to_string())))
    }
}

impl From<Vec<String>> for Labels {
    /// One label per string, each read as a line of a label file (`wnid name, synonyms` or
    /// `name`); empty strings are kept as empty labels so that indices do not shift.
    fn from(names: Vec<String>) -> Self {
        let classes = names.iter().map(|n| parse_line(n)).collect();
        Self { classes }
    }
}

impl Labels {
    /// Parses lines of the form `wnid name, synonym, ...` (as in ImageNet's `synset_words.txt`)
    /// or plain `name` lines.
    ///
    /// ```
    /// let labels = feedbacknet::Labels::parse("n01440764 tench, Tinca tinca\nn01443537 goldfish\n");
    /// assert_eq!(labels.len(), 2);
    /// assert_eq!(labels.get(1).unwrap().name(), "goldfish");
    /// assert_eq!(labels.find("Tinca tinca").unwrap(), 0);
    /// ```
    pub fn parse(text: &str) -> Self {
        let classes = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(parse_line)
            .collect();
        Self { classes }
    }

    /// Reads a label file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Labels {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let labels = Self::parse(&text);
        if labels.is_empty() {
            return Err(Error::Labels {
                path: path.to_path_buf(),
                reason: "no labels in the file".into(),
            });
        }
        Ok(labels)
    }

    /// Numbered placeholder labels (`class 0`, `class 1`, ...).
    pub fn numbered(count: usize) -> Self {
        let classes = (0..count)
            .map(|i| ClassLabel {
                wnid: String::new(),
                names: vec![format!("class {i}")],
            })
            .collect();
        Self { classes }
    }

    /// The labels without the first (a background label before the classes).
    pub(crate) fn without_first(mut self) -> Self {
        if !self.classes.is_empty() {
            self.classes.remove(0);
        }
        self
    }

    /// Number of classes.
    pub fn len(&self) -> usize {
        self.classes.len()
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// The label of class `index`.
    pub fn get(&self, index: usize) -> Option<&ClassLabel> {
        self.classes.get(index)
    }

    /// The index of the class named `label` (a name, synonym or WordNet id; case-insensitive).
    pub fn find(&self, label: &str) -> Result<usize> {
        let wanted = label.trim().to_lowercase();
        let exact = self.classes.iter().position(|c| {
            c.wnid.to_lowercase() == wanted || c.names.iter().any(|n| n.to_lowercase() == wanted)
        });
        exact.ok_or_else(|| Error::UnknownLabel {
            label: label.to_string(),
            suggestions: self
                .classes
                .iter()
                .filter(|c| c.names.iter().any(|n| n.to_lowercase().contains(&wanted)))
                .take(5)
                .map(|c| c.name().to_string())
                .collect(),
        })
    }

    /// Resolves a query to a class index, checking the range.
    pub fn resolve(&self, query: &ClassQuery) -> Result<usize> {
        match query {
            ClassQuery::Index(i) if *i < self.len() => Ok(*i),
            ClassQuery::Index(i) => Err(Error::ClassOutOfRange {
                class: *i,
                classes: self.len(),
            }),
            ClassQuery::Label(label) => self.find(label),
        }
    }
}

fn parse_line(line: &str) -> ClassLabel {
    let line = line.trim();
    let (wnid, rest) = match line.split_once(' ') {
        Some((first, rest)) if is_wnid(first) => (first.to_string(), rest),
        _ if is_wnid(line) => (line.to_string(), ""),
        _ => (String::new(), line),
    };
    let names = rest
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    ClassLabel { wnid, names }
}

fn is_wnid(s: &str) -> bool {
    s.len() == 9 && s.starts_with('n') && s[1..].bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_by_index_name_synonym_and_wnid() {
        let labels = Labels::parse("n01440764 tench, Tinca tinca\nn02123045 tabby, tabby cat\n");
        assert_eq!(labels.resolve(&ClassQuery::Index(1)).unwrap(), 1);
        assert_eq!(labels.find("TABBY CAT").unwrap(), 1);
        assert_eq!(labels.find("n01440764").unwrap(), 0);
        assert!(matches!(
            labels.resolve(&ClassQuery::Index(2)),
            Err(Error::ClassOutOfRange {
                class: 2,
                classes: 2
            })
        ));
        match labels.find("cat") {
            Err(Error::UnknownLabel { suggestions, .. }) => assert_eq!(suggestions, ["tabby"]),
            other => panic!("expected an unknown label, got {other:?}"),
        }
    }

    #[test]
    fn queries_parse_digits_as_indices() {
        assert_eq!("42".parse::<ClassQuery>().unwrap(), ClassQuery::Index(42));
        assert_eq!(
            "tiger cat".parse::<ClassQuery>().unwrap(),
            ClassQuery::Label("tiger cat".into())
        );
    }
}
