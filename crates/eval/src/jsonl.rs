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
        if bytes.is_empty() || bytes.ends_with(b"\n") {
            return Ok(false);
        }
        let cut = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if serde_json::from_slice::<ImageRecord>(&bytes[cut..]).is_ok() {
            self.append(b"\n")?;
            return Ok(false);
        }
        self.file
            .set_len(cut as u64)
            .map_err(io_error(&self.path))?;
        self.file.sync_data().map_err(io_error(&self.path))?;
        Ok(true)
    }
}

/// What [`read_records`] found in a results file.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadRecords {
    /// The records, in file order.
    pub records: Vec<ImageRecord>,
    /// 1 if the last line was cut short (a crash while writing) and skipped, else 0.
    pub truncated_lines: usize,
}

/// Reads a results file. Blank lines are skipped; an unparsable last line
/// is skipped and counted in [`ReadRecords::truncated_lines`].
///
/// Errors: [`EvalError::Io`], or [`EvalError::Parse`] (with the line) for
/// an unparsable line that is not the last.
pub fn read_records(path: &Path) -> Result<ReadRecords> {
    let text = std::fs::read_to_string(path).map_err(io_error(path))?;
    let lines: Vec<(usize, &str)> = crate::text::lines(&text).collect();
    let mut out = ReadRecords {
        records: Vec::with_capacity(lines.len()),
        truncated_lines: 0,
    };
    for (k, &(line, json)) in lines.iter().enumerate() {
        match serde_json::from_str::<ImageRecord>(json) {
            Ok(record) => out.records.push(record),
            Err(_) if k + 1 == lines.len() => out.truncated_lines = 1,
            Err(e) => return Err(parse_error(path, line, format!("not a record: {e}"))),
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
