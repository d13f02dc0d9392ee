//! The `metadata_props` of an ONNX file (its top-level key/value strings), read without
//! parsing the graph.
//!
//! An ONNX file is a protobuf `ModelProto`. Its graph (field 7, most of a 500 MB file) is one
//! length-delimited field: [`read_metadata_props`] walks the top-level fields, steps over the
//! graph by its length and decodes only field 14, `metadata_props`, a repeated
//! `StringStringEntryProto { key = 1, value = 2 }`. Damaged bytes give an error, never a panic.
//!
//! feedbacknet reads the keys `feedbacknet.input_size`, `feedbacknet.normalize`,
//! `feedbacknet.resize`, `feedbacknet.class_offset` and `feedbacknet.labels` (see
//! `docs/models.md`); the facade interprets them.

use thiserror::Error;

/// The field number of `ModelProto.metadata_props`.
const METADATA_PROPS: u64 = 14;

/// Why the metadata of a file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("cannot read the ONNX metadata: {reason} at byte {offset}")]
pub struct MetadataError {
    /// Where the walk stopped.
    pub offset: usize,
    /// What was wrong there.
    pub reason: &'static str,
}

/// The `metadata_props` of a serialized `ModelProto`, in file order (a key may repeat).
///
/// ```
/// use feedbacknet_onnx::read_metadata_props;
/// // Field 14 (tag 0x72), an entry of key "k" (0x0a 0x01 'k') and value "v" (0x12 0x01 'v').
/// let bytes = [0x72, 0x06, 0x0a, 0x01, b'k', 0x12, 0x01, b'v'];
/// assert_eq!(read_metadata_props(&bytes)?, [("k".to_string(), "v".to_string())]);
/// assert!(read_metadata_props(&bytes[..5]).is_err());
/// # Ok::<(), feedbacknet_onnx::MetadataError>(())
/// ```
pub fn read_metadata_props(bytes: &[u8]) -> Result<Vec<(String, String)>, MetadataError> {
    let mut reader = Reader { bytes, pos: 0 };
    let mut props = Vec::new();
    while !reader.done() {
        let (field, wire) = reader.tag()?;
        if field == METADATA_PROPS && wire == LEN {
            let at = reader.pos;
            let entry = reader.length_delimited()?;
            props.push(read_entry(entry, at)?);
        } else {
            reader.skip(wire)?;
        }
    }
    Ok(props)
}

/// One `StringStringEntryProto`; `base` is its offset in the file (for errors).
fn read_entry(bytes: &[u8], base: usize) -> Result<(String, String), MetadataError> {
    let mut reader = Reader { bytes, pos: 0 };
    let (mut key, mut value) = (String::new(), String::new());
    while !reader.done() {
        let (field, wire) = reader.tag().map_err(|e| e.shifted(base))?;
        match (field, wire) {
            (1 | 2, LEN) => {
                let at = reader.pos;
                let text = reader.length_delimited().map_err(|e| e.shifted(base))?;
                let text = std::str::from_utf8(text).map_err(|_| MetadataError {
                    offset: base + at,
                    reason: "a metadata string is not UTF-8",
                })?;
                *(if field == 1 { &mut key } else { &mut value }) = text.to_string();
            }
            _ => reader.skip(wire).map_err(|e| e.shifted(base))?,
        }
    }
    Ok((key, value))
}

impl MetadataError {
    fn shifted(self, base: usize) -> Self {
        Self {
            offset: self.offset + base,
            ..self
        }
    }
}

/// Wire types.
const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LEN: u64 = 2;
const FIXED32: u64 = 5;

/// A cursor over protobuf wire bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn done(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn error(&self, reason: &'static str) -> MetadataError {
        MetadataError {
            offset: self.pos,
            reason,
        }
    }

    fn varint(&mut self) -> Result<u64, MetadataError> {
        let mut value = 0u64;
        for i in 0..10 {
            let byte = *self
                .bytes
                .get(self.pos)
                .ok_or_else(|| self.error("the file ends inside a number"))?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.error("a number longer than 10 bytes"))
    }

    /// A field's number and wire type.
    fn tag(&mut self) -> Result<(u64, u64), MetadataError> {
        let tag = self.varint()?;
        if tag >> 3 == 0 {
            return Err(self.error("field number 0"));
        }
        Ok((tag >> 3, tag & 7))
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], MetadataError> {
        let bytes = self.bytes;
        let taken = usize::try_from(len)
            .ok()
            .and_then(|len| bytes.get(self.pos..)?.get(..len))
            .ok_or_else(|| self.error("the file ends inside a field"))?;
        self.pos += taken.len();
        Ok(taken)
    }

    fn length_delimited(&mut self) -> Result<&'a [u8], MetadataError> {
        let len = self.varint()?;
        self.take(len)
    }

    /// Steps over a field's value.
    fn skip(&mut self, wire: u64) -> Result<(), MetadataError> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            LEN => self.length_delimited().map(drop),
            FIXED32 => self.take(4).map(drop),
            _ => Err(self.error("an unknown or group wire type (not an ONNX model)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use onnx_ir::{Message, ModelProto, TensorProto};

    use super::*;

    /// A model with a graph holding a 64 KiB initializer, and the given metadata.
    fn model(props: &[(&str, &str)]) -> Vec<u8> {
        let mut model = ModelProto::new();
        model.ir_version = 8;
        model.producer_name = "metadata test".into();
        let graph = model.graph.mut_or_insert_default();
        graph.name = "g".into();
        let mut weights = TensorProto::new();
        weights.name = "w".into();
        weights.dims = vec![16384];
        weights.data_type = 1;
        weights.raw_data = (0..65536u32).map(|i| (i % 251) as u8).collect();
        graph.initializer.push(weights);
        for (key, value) in props {
            model.metadata_props.push(Default::default());
            let entry = model.metadata_props.last_mut().expect("just pushed");
            entry.key = key.to_string();
            entry.value = value.to_string();
        }
        model.doc_string = "after the metadata".into();
        model.write_to_bytes().expect("the model serializes")
    }

    #[test]
    fn reads_the_metadata_of_a_built_model() {
        let props = [
            ("feedbacknet.normalize", "inception"),
            ("feedbacknet.labels", "background\ntench\ngoldfish"),
            ("author", "ünïcode ✓"),
        ];
        let bytes = model(&props);
        let read = read_metadata_props(&bytes).unwrap();
        let expected: Vec<(String, String)> = props
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(read, expected);
        // The same as protobuf's full parse.
        let parsed = ModelProto::parse_from_bytes(&bytes).unwrap();
        let full: Vec<(String, String)> = parsed
            .metadata_props
            .iter()
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect();
        assert_eq!(read, full);
    }

    #[test]
    fn a_model_without_metadata_has_none() {
        assert_eq!(read_metadata_props(&model(&[])).unwrap(), []);
        assert_eq!(read_metadata_props(&[]).unwrap(), []);
    }

    #[test]
    fn truncated_or_garbage_bytes_never_panic() {
        let bytes = model(&[("feedbacknet.input_size", "128"), ("k", "v")]);
        let full = read_metadata_props(&bytes).unwrap();
        // Every cut: an error, or a prefix of the entries (a cut between two fields).
        let step = 7;
        for len in (0..bytes.len())
            .step_by(step)
            .chain(bytes.len() - 64..bytes.len())
        {
            if let Ok(props) = read_metadata_props(&bytes[..len]) {
                assert!(full.starts_with(&props), "cut at {len}: {props:?}");
            }
        }
        // The graph's length field claiming more than there is.
        assert!(read_metadata_props(&[0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
        // A varint that never ends, a group wire type, field 0.
        let mut endless = vec![0x08];
        endless.extend([0xff; 11]);
        assert!(read_metadata_props(&endless).is_err());
        assert!(read_metadata_props(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(read_metadata_props(&[0x0b]).is_err());
        assert!(read_metadata_props(&[0x00, 0x00]).is_err());
        // Invalid UTF-8 in a key.
        assert!(read_metadata_props(&[0x72, 0x03, 0x0a, 0x01, 0xff]).is_err());
        // Pseudo-random bytes.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for len in [1, 2, 5, 17, 100, 1000] {
            for _ in 0..50 {
                let noise: Vec<u8> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        state as u8
                    })
                    .collect();
                let _ = read_metadata_props(&noise);
            }
        }
    }

    #[test]
    fn the_shared_models_are_read_without_error() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/models");
        for preset in crate::ModelPreset::all() {
            if let Ok(bytes) = std::fs::read(dir.join(preset.file)) {
                assert!(read_metadata_props(&bytes).is_ok(), "{}", preset.file);
            }
        }
    }
}
