//! The results file: one [`ImageRecord`] per line (JSON Lines), written so
//! that a crash loses at most the record being written.

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{EvalError, Result, io_error, parse_error};
use crate::metrics::ImageRecord;

/// Appends records to a results file, one line each, flushed and synced to
/// disk before [`ResultsWriter::write`] returns.
///
/// What a crash leaves: each line (record and newline) goes to the file in one `write_all` on
/// an unbuffered [`File`] opened for appending, so once `write` has handed the line to the
/// system a killed process cannot lose it (the flush has nothing to do; the sync guards
/// against a power cut). A process killed during the write leaves at most the start of that
/// one line, with no newline: [`ResultsWriter::open`] cuts it off and [`read_records`] skips
/// it, so its image has no record and a resumed run evaluates it once.
#[derive(Debug)]
pub struct ResultsWriter {
    file: File,
    path: PathBuf,
    dropped_partial_line: bool,
}

impl ResultsWriter {
    /// Opens `path` for appending, creating it if needed. A last line cut
    /// short by a crash is removed first (a complete record that only lacks
    /// its newline is kept), so new records start on a line of their own.
    pub fn open(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io_error(path))?;
        let mut writer = Self {
            file,
            path: path.to_path_buf(),
            dropped_partial_line: false,
        };
        writer.dropped_partial_line = writer.repair_tail()?;
        Ok(writer)
    }

    /// Creates `path` empty (discarding what it held) and opens it for appending.
    pub fn create(path: &Path) -> Result<Self> {
        File::create(path).map_err(io_error(path))?;
        Self::open(path)
    }

    /// Appends one record as a line, then flushes and syncs the file.
    pub fn write(&mut self, record: &ImageRecord) -> Result<()> {
        let mut line = serde_json::to_string(record).map_err(|source| EvalError::Json {
            what: "a record",
            source,
        })?;
        line.push('\n');
        self.append(line.as_bytes())
    }

    /// Whether [`ResultsWriter::open`] removed a truncated last line.
    pub fn dropped_partial_line(&self) -> bool {
        self.dropped_partial_line
    }

    /// The results file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        let path = &self.path;
        self.file.write_all(bytes).map_err(io_error(path))?;
        self.file.flush().map_err(io_error(path))?;
        self.file.sync_data().map_err(io_error(path))
    }

    /// Ends the file on a newline; returns whether an unparsable tail was cut.
    fn repair_tail(&mut self) -> Result<bool> {
        let bytes = std::fs::read(&self.path).map_err(io_error(&self.path))?;
        let (lines, tail) = split_tail(&bytes);
        if tail.is_empty() {
            return Ok(false);
        }
        if parse_record(tail).is_ok() {
            self.append(b"\n")?;
            return Ok(false);
        }
        self.file
            .set_len(lines.len() as u64)
            .map_err(io_error(&self.path))?;
        self.file.sync_data().map_err(io_error(&self.path))?;
        Ok(!tail.trim_ascii().is_empty())
    }
}

/// Splits a results file's bytes after its last newline: the complete lines, and the tail a
/// crash may have cut short (empty when the file ends on a newline).
fn split_tail(bytes: &[u8]) -> (&[u8], &[u8]) {
    let cut = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    bytes.split_at_checked(cut).unwrap_or((bytes, &[]))
}

/// Parses one line (bytes: a line cut inside a multi-byte character is an error like any other
/// bad line, not a failure to read the file).
fn parse_record(line: &[u8]) -> serde_json::Result<ImageRecord> {
    serde_json::from_slice(line.trim_ascii())
}

/// What [`read_records`] found in a results file.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadRecords {
    /// The records, in file order.
    pub records: Vec<ImageRecord>,
    /// 1 if the last line was cut short (a crash while writing) and skipped, else 0.
    pub truncated_lines: usize,
}

/// Reads a results file. Blank lines are skipped. A last line without its newline that does
/// not parse was cut short by a crash while it was written (each record is written with its
/// newline in one piece): it is skipped and counted in [`ReadRecords::truncated_lines`]. A
/// complete last line without its newline is a record.
///
/// Errors: [`EvalError::Io`], or [`EvalError::Parse`] (with the line) for an unparsable line
/// that ends with a newline, which no crash while writing leaves.
pub fn read_records(path: &Path) -> Result<ReadRecords> {
    let bytes = std::fs::read(path).map_err(io_error(path))?;
    let (lines, tail) = split_tail(&bytes);
    let mut out = ReadRecords {
        records: Vec::new(),
        truncated_lines: 0,
    };
    for (i, line) in lines.split(|&b| b == b'\n').enumerate() {
        if line.trim_ascii().is_empty() {
            continue;
        }
        let record = parse_record(line)
            .map_err(|e| parse_error(path, i + 1, format!("not a record: {e}")))?;
        out.records.push(record);
    }
    if !tail.trim_ascii().is_empty() {
        match parse_record(tail) {
            Ok(record) => out.records.push(record),
            Err(_) => out.truncated_lines = 1,
        }
    }
    Ok(out)
}

/// Indices of the images already in a results file (for resuming); empty
/// when the file does not exist yet.
pub fn done_ids(path: &Path) -> Result<HashSet<usize>> {
    if !path.exists() {
        return Ok(HashSet::new());
    }
    Ok(read_records(path)?
        .records
        .iter()
        .map(|r| r.index)
        .collect())
}

/// Combines results files (e.g. of shards) into one list sorted by index.
/// A record seen twice is kept once when both copies give the same result
/// ([`ImageRecord::same_result`], timings may differ); truncated last lines
/// are skipped as in [`read_records`].
///
/// Errors: [`EvalError::ConflictingRecords`] when two copies differ, and
/// the errors of [`read_records`].
pub fn merge<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<ImageRecord>> {
    let mut by_index: BTreeMap<usize, (ImageRecord, &Path)> = BTreeMap::new();
    for path in paths.iter().map(AsRef::as_ref) {
        for record in read_records(path)?.records {
            insert_unique(&mut by_index, record, path)?;
        }
    }
    Ok(by_index.into_values().map(|(r, _)| r).collect())
}

fn insert_unique<'a>(
    by_index: &mut BTreeMap<usize, (ImageRecord, &'a Path)>,
    record: ImageRecord,
    path: &'a Path,
) -> Result<()> {
    match by_index.get(&record.index) {
        Some((seen, _)) if seen.same_result(&record) => Ok(()),
        Some((seen, first)) => Err(EvalError::ConflictingRecords {
            index: record.index,
            id: seen.id.clone(),
            first: first.to_path_buf(),
            second: path.to_path_buf(),
        }),
        None => {
            by_index.insert(record.index, (record, path));
            Ok(())
        }
    }
}
