//! An ONNX file without the bytes of its large weights, read as a stream.
//!
//! The protobuf wire format is walked field by field, `ModelProto` → `graph` → `initializer` →
//! `raw_data`, and every field is copied except the `raw_data` of an initializer of at least
//! the given size, whose place in the file is recorded instead ([`Span`]).
//!
//! Why by hand: the `protobuf` crate decodes a message from one buffer that holds all of it,
//! so a 528 MB VGG16 sat in memory beside its decoded weights, twice the weights at load. The
//! walk keeps only the file's small parts (graph, shapes, small constants) in memory, and the
//! weights are then read from their spans one at a time (see `weights`).

use std::io::{self, Read, Seek};

/// `ModelProto.graph`.
const MODEL_GRAPH: u64 = 7;
/// `GraphProto.initializer`.
const GRAPH_INITIALIZER: u64 = 5;
/// `TensorProto.raw_data`.
const TENSOR_RAW_DATA: u64 = 9;
/// The length-delimited wire type.
const LEN: u8 = 2;

/// The file's bytes without the large weights', and where those are.
#[derive(Debug)]
pub(crate) struct Skeleton {
    /// A valid `ModelProto` whose large initializers have no `raw_data`.
    pub bytes: Vec<u8>,
    /// The `raw_data` left out, in initializer order.
    pub spans: Vec<Span>,
}

/// Where the `raw_data` of one initializer lies in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    /// The initializer's index in `GraphProto.initializer`.
    pub initializer: usize,
    /// The first byte of its `raw_data`.
    pub offset: u64,
    /// The number of bytes.
    pub len: usize,
}

/// Walks the `len` bytes that `reader` yields (a whole ONNX file) and leaves out the `raw_data`
/// of every initializer of at least `large` bytes. Fails on anything but a well-formed stream
/// with one `graph` (the caller then hands the whole file to the parser, which says what is
/// wrong with it).
pub(crate) fn read<R: Read + Seek>(reader: R, len: u64, large: usize) -> io::Result<Skeleton> {
    let mut walker = Walker {
        reader,
        pos: 0,
        large,
        spans: Vec::new(),
    };
    let mut bytes = Vec::new();
    let mut graphs = 0;
    while walker.pos < len {
        let tag = walker.varint()?;
        if tag >> 3 == MODEL_GRAPH && wire(tag) == LEN {
            graphs += 1;
            if graphs > 1 {
                return Err(malformed("more than one graph"));
            }
            let end = walker.end_of_message(len)?;
            let graph = walker.graph(end)?;
            put_message(&mut bytes, tag, &graph);
        } else {
            walker.copy_field(tag, len, &mut bytes)?;
        }
    }
    Ok(Skeleton {
        bytes,
        spans: walker.spans,
    })
}

/// A position in the stream, and the spans found so far.
struct Walker<R> {
    reader: R,
    pos: u64,
    large: usize,
    spans: Vec<Span>,
}

impl<R: Read + Seek> Walker<R> {
    /// A `GraphProto` ending at `end`, its large initializers' `raw_data` left out.
    fn graph(&mut self, end: u64) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut index = 0;
        while self.pos < end {
            let tag = self.varint()?;
            if tag >> 3 == GRAPH_INITIALIZER && wire(tag) == LEN {
                let tensor_end = self.end_of_message(end)?;
                let tensor = self.tensor(tensor_end, index)?;
                put_message(&mut out, tag, &tensor);
                index += 1;
            } else {
                self.copy_field(tag, end, &mut out)?;
            }
        }
        self.at(end)?;
        Ok(out)
    }

    /// A `TensorProto` ending at `end` (initializer `index`), without a large `raw_data`.
    fn tensor(&mut self, end: u64, index: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut left_out = false;
        while self.pos < end {
            let tag = self.varint()?;
            if tag >> 3 == TENSOR_RAW_DATA && wire(tag) == LEN {
                let data_end = self.end_of_message(end)?;
                let len = usize::try_from(data_end - self.pos).map_err(|_| malformed("size"))?;
                if len >= self.large {
                    if left_out {
                        return Err(malformed("raw_data given twice"));
                    }
                    left_out = true;
                    self.spans.push(Span {
                        initializer: index,
                        offset: self.pos,
                        len,
                    });
                    self.skip(data_end)?;
                    continue;
                }
                let data = self.take(data_end)?;
                put_message(&mut out, tag, &data);
            } else {
                self.copy_field(tag, end, &mut out)?;
            }
        }
        self.at(end)?;
        Ok(out)
    }

    /// Copies the field of `tag` (already read) whole, value included, into `out`; its value
    /// must end by `limit`.
    fn copy_field(&mut self, tag: u64, limit: u64, out: &mut Vec<u8>) -> io::Result<()> {
        put_varint(out, tag);
        match wire(tag) {
            0 => {
                let value = self.varint()?;
                put_varint(out, value);
            }
            1 => out.extend(self.take(self.pos + 8)?),
            5 => out.extend(self.take(self.pos + 4)?),
            LEN => {
                let end = self.end_of_message(limit)?;
                put_varint(out, end - self.pos);
                out.extend(self.take(end)?);
            }
            _ => return Err(malformed("a group or unknown wire type")),
        }
        if self.pos > limit {
            return Err(malformed("a field runs past its message"));
        }
        Ok(())
    }

    /// Reads a length prefix; the position where that many bytes end, which must be by `limit`.
    fn end_of_message(&mut self, limit: u64) -> io::Result<u64> {
        let len = self.varint()?;
        let end = self.pos.checked_add(len).ok_or_else(|| malformed("size"))?;
        if end > limit {
            return Err(malformed("a length runs past its message"));
        }
        Ok(end)
    }

    /// A base-128 varint.
    fn varint(&mut self) -> io::Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let mut byte = [0u8; 1];
            self.reader.read_exact(&mut byte)?;
            self.pos += 1;
            value |= u64::from(byte[0] & 0x7f) << shift;
            if byte[0] & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed("a varint longer than 10 bytes"))
    }

    /// The bytes from here to `end`.
    fn take(&mut self, end: u64) -> io::Result<Vec<u8>> {
        let len = usize::try_from(end.saturating_sub(self.pos)).map_err(|_| malformed("size"))?;
        let mut bytes = vec![0u8; len];
        self.reader.read_exact(&mut bytes)?;
        self.pos = end;
        Ok(bytes)
    }

    /// Moves to `end` without reading.
    fn skip(&mut self, end: u64) -> io::Result<()> {
        let by = i64::try_from(end - self.pos).map_err(|_| malformed("size"))?;
        self.reader.seek_relative(by)?;
        self.pos = end;
        Ok(())
    }

    /// Checks that a message ended exactly at `end`.
    fn at(&self, end: u64) -> io::Result<()> {
        if self.pos == end {
            Ok(())
        } else {
            Err(malformed("a message does not end at its length"))
        }
    }
}

/// The wire type of `tag`.
fn wire(tag: u64) -> u8 {
    (tag & 7) as u8
}

/// Writes a length-delimited field: `tag`, the length, `value`.
fn put_message(out: &mut Vec<u8>, tag: u64, value: &[u8]) {
    put_varint(out, tag);
    put_varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

/// Writes a base-128 varint.
fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn malformed(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("not a well-formed ONNX file: {what}"),
    )
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use onnx_ir::{Message, ModelProto};

    use super::*;

    fn squeezenet() -> Vec<u8> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/models/squeezenet1.1.onnx"
        );
        std::fs::read(path).expect("the shared SqueezeNet")
    }

    #[test]
    fn the_skeleton_is_the_model_less_the_large_raw_data_found_at_its_spans() {
        let file = squeezenet();
        let large = 64 * 1024;
        let skeleton = read(Cursor::new(&file), file.len() as u64, large).expect("walks");
        let original = ModelProto::parse_from_bytes(&file).expect("a model");
        let mut expected = original.clone();
        let graph = expected.graph.as_mut().expect("a graph");
        let mut spans = skeleton.spans.iter();
        for (index, tensor) in graph.initializer.iter_mut().enumerate() {
            if tensor.raw_data.len() < large {
                continue;
            }
            let span = spans.next().expect("a span per large initializer");
            assert_eq!(span.initializer, index);
            let at = span.offset as usize;
            assert_eq!(&file[at..at + span.len], &tensor.raw_data[..]);
            tensor.raw_data = Default::default();
        }
        assert!(spans.next().is_none());
        assert!(!skeleton.spans.is_empty());
        let parsed = ModelProto::parse_from_bytes(&skeleton.bytes).expect("a valid model");
        assert_eq!(parsed, expected);
        assert!(skeleton.bytes.len() < file.len() / 10);
    }

    #[test]
    fn a_cut_or_garbled_file_is_refused() {
        let file = squeezenet();
        let cut = &file[..file.len() / 3];
        assert!(read(Cursor::new(cut), cut.len() as u64, 1024).is_err());
        let mut garbled = file.clone();
        garbled.iter_mut().take(16).for_each(|b| *b = 0xff);
        assert!(read(Cursor::new(&garbled), garbled.len() as u64, 1024).is_err());
    }
}
