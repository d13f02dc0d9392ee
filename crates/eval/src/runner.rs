//! Running an [`Explainer`] over a [`Dataset`] into a resumable results file.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::time::Instant;

use crate::dataset::{Dataset, Sample, Shard};
use crate::decode::{Decoded, spawn_decoders};
use crate::error::{EvalError, Result, invalid};
use crate::explainer::{ExplainError, Explainer, Explanation, score_explanation};
use crate::image_file::DecodeOptions;
use crate::jsonl::{ResultsWriter, merge, read_records};
use crate::metrics::{ImageRecord, MeasureConfig, Summary};

/// What to do with a results file that already holds records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResumePolicy {
    /// Start a new file; refuse ([`EvalError::ResultsExist`]) if the file
    /// already holds data, so no results are lost by mistake. The default.
    #[default]
    Fresh,
    /// Start a new file, discarding what it held.
    Overwrite,
    /// Keep the file's records, skip their images, append the others. The
    /// file does not store the measuring configuration: resume with the
    /// same one (a different sweep length is caught as
    /// [`EvalError::SweepMismatch`], other changes are not).
    Resume,
}

/// Reported to the progress callback after each image.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// Images of this run's data set (or shard) that have a record, including
    /// those done before a resume.
    pub done: usize,
    /// Images in this run's data set (or shard).
    pub total: usize,
    /// The record just written.
    pub last: &'a ImageRecord,
}

/// What [`Runner::run`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// Metrics over every record in the results file (earlier and new).
    pub summary: Summary,
    /// Records in the results file.
    pub records: usize,
    /// Images evaluated by this run.
    pub evaluated: usize,
    /// Of those, images that failed (unreadable, explainer error).
    pub failed: usize,
    /// Images skipped because the file already had them.
    pub skipped: usize,
    /// Whether a truncated last line (from a crash) was removed from the file.
    pub dropped_partial_line: bool,
}

/// Evaluates an [`Explainer`] on a [`Dataset`], one JSONL record per image.
///
/// Defaults: [`MeasureConfig::default`], 1 decoding thread, 4 images
/// decoded ahead, 1 worker, 1 image per explainer call, [`ResumePolicy::Fresh`], no shard, no limit, a map
/// for the top-1 class (`top_maps = 1`).
///
/// Images are decoded on worker threads while the explainer runs on the
/// calling thread. An image that cannot be decoded, or that the explainer
/// fails on, does not stop the run: it gets a record with
/// [`ImageRecord::error`] set and counts as wrong in every metric (resuming
/// does not retry it). Images are decoded under [`DecodeOptions`] (by default
/// a damaged file fails; accepted, its record carries
/// [`ImageRecord::warnings`]). Errors that stop the run are configuration
/// errors and failures to read or write the results file.
#[derive(Debug, Clone)]
pub struct Runner {
    results: PathBuf,
    measure: MeasureConfig,
    decode_threads: usize,
    prefetch: usize,
    workers: usize,
    batch: usize,
    policy: ResumePolicy,
    shard: Option<Shard>,
    limit: Option<usize>,
    top_maps: usize,
    decode_options: DecodeOptions,
}

impl Runner {
    /// A runner writing its records to `results` (a `.jsonl` file).
    pub fn new(results: impl Into<PathBuf>) -> Self {
        Self {
            results: results.into(),
            measure: MeasureConfig::default(),
            decode_threads: 1,
            prefetch: 4,
            workers: 1,
            batch: 1,
            policy: ResumePolicy::default(),
            shard: None,
            limit: None,
            top_maps: 1,
            decode_options: DecodeOptions::default(),
        }
    }

    /// Sets how maps are measured.
    pub fn measure(mut self, config: MeasureConfig) -> Self {
        self.measure = config;
        self
    }

    /// Sets the number of image decoding threads (at least 1).
    pub fn decode_threads(mut self, threads: usize) -> Self {
        self.decode_threads = threads;
        self
    }

    /// Sets how many images are decoded ahead of the explainer (at least 1).
    pub fn prefetch(mut self, images: usize) -> Self {
        self.prefetch = images;
        self
    }

    /// Sets the number of images explained at the same time, each on its own thread (at least
    /// 1). With `n` workers, records reach the file in the order they finish, and a crash loses
    /// at most the `n` images in flight.
    ///
    /// With more than one worker, each worker runs in a thread pool of its own (rayon's, which
    /// the CPU backend splits its kernels over) with an equal share of the cores, at least one
    /// thread: one image per core, which keeps every core busy with no hand-over between them
    /// (SqueezeNet's soft feedback on 2 cores: ~0.85 s per image on one thread against
    /// ~0.65 s on two, so two one-thread workers do ~2.3 images/s against ~1.5).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Sets the number of images each worker hands the explainer in one call
    /// ([`Explainer::explain_batch`], at least 1): an explainer that batches them runs the
    /// network on all their samples at once, which keeps a GPU busy. Records are written as
    /// today, one per image as soon as its call is done (with one worker, in data set order), so
    /// a crash loses at most `workers × batch` images in flight. An image's `time_ms` is its
    /// share of the call (the call's time over its images) plus its own scoring. The decoders
    /// keep at least `workers × batch` images decoded ahead (more than
    /// [`Runner::prefetch`] when that is smaller).
    pub fn batch(mut self, images: usize) -> Self {
        self.batch = images;
        self
    }

    /// Sets what happens to an existing results file.
    pub fn resume_policy(mut self, policy: ResumePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Evaluates only one shard of the data set.
    pub fn shard(mut self, shard: Shard) -> Self {
        self.shard = Some(shard);
        self
    }

    /// Stops after evaluating `images` new images.
    pub fn limit(mut self, images: usize) -> Self {
        self.limit = Some(images);
        self
    }

    /// Sets `k`, the number of top predicted classes the explainer is asked
    /// to give maps for.
    pub fn top_maps(mut self, k: usize) -> Self {
        self.top_maps = k;
        self
    }

    /// Sets the decoder limits and the damaged-image policy (default:
    /// [`DecodeOptions::default`]).
    pub fn decode_options(mut self, options: DecodeOptions) -> Self {
        self.decode_options = options;
        self
    }

    /// The results file.
    pub fn results_path(&self) -> &Path {
        &self.results
    }

    /// The measuring configuration.
    pub fn measure_config(&self) -> &MeasureConfig {
        &self.measure
    }

    /// Runs the explainer on every image of `dataset` (or of the shard) that
    /// has no record yet, appending each record to the results file and
    /// calling `progress` after each one. Returns the summary of all records
    /// in the file.
    pub fn run<E: Explainer + ?Sized>(
        &self,
        dataset: &Dataset,
        explainer: &E,
        mut progress: impl FnMut(Progress<'_>),
    ) -> Result<RunOutcome> {
        self.validate()?;
        let samples: Vec<&Sample> = dataset
            .samples
            .iter()
            .filter(|s| self.in_shard(s))
            .collect();
        let (mut writer, done) = self.open_results(&samples)?;
        let mut pending: Vec<&Sample> = samples
            .iter()
            .filter(|s| !done.contains(&s.index))
            .copied()
            .collect();
        let skipped = samples.len() - pending.len();
        pending.truncate(self.limit.unwrap_or(usize::MAX));
        let todo = pending.as_slice();
        let mut failed = 0;
        let mut report = |record: &ImageRecord, i: usize| {
            failed += usize::from(record.is_failed());
            progress(Progress {
                done: skipped + i + 1,
                total: samples.len(),
                last: record,
            });
        };
        std::thread::scope(|scope| {
            let decoded = spawn_decoders(
                scope,
                todo,
                self.decode_threads,
                // A call takes `batch` images at once: decode at least every worker's next call
                // ahead, or each call would wait for most of its images to be decoded.
                self.prefetch.max(self.batch.saturating_mul(self.workers)),
                self.decode_options,
            );
            if self.workers > 1 {
                self.evaluate_parallel(todo, decoded, explainer, &mut writer, &mut report)
            } else {
                self.evaluate_all(todo, &decoded, explainer, &mut writer, &mut report)
            }
        })?;
        let records = merge(&[&self.results])?;
        Ok(RunOutcome {
            summary: Summary::from_records(&records, &self.measure.sweep)?,
            records: records.len(),
            evaluated: todo.len(),
            failed,
            skipped,
            dropped_partial_line: writer.dropped_partial_line(),
        })
    }

    fn validate(&self) -> Result<()> {
        self.measure.validate()?;
        if self.decode_threads == 0 {
            return Err(invalid(
                "decode_threads",
                self.decode_threads,
                "must be at least 1",
            ));
        }
        if self.workers == 0 {
            return Err(invalid("workers", self.workers, "must be at least 1"));
        }
        if self.batch == 0 {
            return Err(invalid("batch", self.batch, "must be at least 1"));
        }
        if self.prefetch == 0 {
            return Err(invalid("prefetch", self.prefetch, "must be at least 1"));
        }
        Ok(())
    }

    fn in_shard(&self, sample: &Sample) -> bool {
        self.shard.is_none_or(|s| s.contains(sample.index))
    }

    /// Opens the results file as the policy says; returns the indices it
    /// already holds.
    fn open_results(&self, samples: &[&Sample]) -> Result<(ResultsWriter, HashSet<usize>)> {
        let path = self.results.as_path();
        match self.policy {
            ResumePolicy::Fresh if holds_data(path) => Err(EvalError::ResultsExist {
                path: path.to_path_buf(),
            }),
            ResumePolicy::Fresh | ResumePolicy::Overwrite => {
                Ok((ResultsWriter::create(path)?, HashSet::new()))
            }
            ResumePolicy::Resume => {
                let writer = ResultsWriter::open(path)?;
                Ok((writer, done_indices(path, samples)?))
            }
        }
    }

    /// Evaluates `todo` in order, [`Runner::batch`] images per call, the images coming from
    /// the decoders.
    fn evaluate_all<E: Explainer + ?Sized>(
        &self,
        todo: &[&Sample],
        decoded: &[Receiver<Decoded>],
        explainer: &E,
        writer: &mut ResultsWriter,
        report: &mut impl FnMut(&ImageRecord, usize),
    ) -> Result<()> {
        let mut done = 0;
        for (c, chunk) in todo.chunks(self.batch).enumerate() {
            let first = c * self.batch;
            let images = (first..)
                .zip(chunk)
                .map(|(i, &sample)| Ok((sample, receive(decoded, i, sample)?)))
                .collect::<Result<Vec<_>>>()?;
            for record in self.evaluate_batch(images, explainer) {
                writer.write(&record)?;
                report(&record, done);
                done += 1;
            }
        }
        Ok(())
    }

    /// Evaluates `todo` on [`Runner::workers`] threads; the calling thread writes the records
    /// as they come. Images are taken from the decoders in order.
    fn evaluate_parallel<E: Explainer + ?Sized>(
        &self,
        todo: &[&Sample],
        decoded: Vec<Receiver<Decoded>>,
        explainer: &E,
        writer: &mut ResultsWriter,
        report: &mut impl FnMut(&ImageRecord, usize),
    ) -> Result<()> {
        let queue = Mutex::new((0usize, decoded));
        let stop = AtomicBool::new(false);
        // A job: the next (up to) `batch` images' samples and images, or why the decoders
        // stopped.
        let next_job = || -> Option<Result<Vec<(&Sample, Decoded)>>> {
            let mut guard = queue.lock().ok()?;
            let (next, decoded) = &mut *guard;
            if *next >= todo.len() || stop.load(Ordering::Relaxed) {
                return None;
            }
            let first = *next;
            let chunk = todo.get(first..todo.len().min(first + self.batch))?;
            *next += chunk.len();
            let images = (first..)
                .zip(chunk)
                .map(|(i, &sample)| Ok((sample, receive(decoded, i, sample)?)))
                .collect();
            Some(images)
        };
        let threads = worker_threads(self.workers);
        std::thread::scope(|scope| {
            let (tx, rx) = channel::<Result<Vec<ImageRecord>>>();
            for _ in 0..self.workers {
                let tx = tx.clone();
                let next_job = &next_job;
                let work = move || {
                    while let Some(images) = next_job() {
                        let records = images.map(|images| self.evaluate_batch(images, explainer));
                        if tx.send(records).is_err() {
                            return;
                        }
                    }
                };
                scope.spawn(move || {
                    // Without a pool of its own (the system refused a thread) the worker shares
                    // the global one.
                    match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
                        Ok(pool) => pool.install(work),
                        Err(_) => work(),
                    }
                });
            }
            drop(tx);
            let mut done = 0;
            for records in rx.iter() {
                let written = records.and_then(|records| {
                    for record in records {
                        writer.write(&record)?;
                        report(&record, done);
                        done += 1;
                    }
                    Ok(())
                });
                if let Err(e) = written {
                    stop.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
            Ok(())
        })
    }

    /// Explains the images in one explainer call and measures each; failures (an image that
    /// did not decode, an explainer error, a scoring error) become failed records. One record
    /// per image, in order.
    fn evaluate_batch<E: Explainer + ?Sized>(
        &self,
        images: Vec<(&Sample, Decoded)>,
        explainer: &E,
    ) -> Vec<ImageRecord> {
        let start = Instant::now();
        let items: Vec<(&image::DynamicImage, usize)> = images
            .iter()
            .filter_map(|(sample, decoded)| Some((&decoded.as_ref().ok()?.image, sample.class)))
            .collect();
        let mut explained = if items.is_empty() {
            Vec::new()
        } else {
            explainer.explain_batch(&items, self.top_maps)
        }
        .into_iter();
        // The call's time, shared equally by the images it explained.
        let share_ms = ms(start) / items.len().max(1) as f64;
        images
            .into_iter()
            .map(|(sample, decoded)| {
                let start = Instant::now();
                let explanation = decoded.is_ok().then(|| {
                    explained
                        .next()
                        .unwrap_or_else(|| Err("returned fewer explanations than images".into()))
                });
                let shared_ms = if explanation.is_some() { share_ms } else { 0.0 };
                let record = self.record(sample, decoded, explanation);
                let time_ms = shared_ms + ms(start);
                ImageRecord { time_ms, ..record }
            })
            .collect()
    }

    /// The record of one image (`time_ms` 0) from its decoding and its explanation (`None`
    /// when it did not decode).
    fn record(
        &self,
        sample: &Sample,
        decoded: Decoded,
        explanation: Option<std::result::Result<Explanation, ExplainError>>,
    ) -> ImageRecord {
        let mut warnings = Vec::new();
        let result = decoded
            .map_err(|e| e.to_string())
            .and_then(|loaded| {
                warnings = loaded.warnings;
                explanation
                    .unwrap_or_else(|| Err("no explanation".into()))
                    .map_err(|e| format!("explainer: {e}"))
            })
            .and_then(|explanation| {
                score_explanation(sample, &explanation, &self.measure).map_err(|e| e.to_string())
            });
        match result {
            Ok(record) => ImageRecord { warnings, ..record },
            Err(message) => ImageRecord::failed(sample, message, 0.0),
        }
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// Threads for each of `workers` workers: an equal share of the cores, at least 1.
fn worker_threads(workers: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / workers.max(1)).max(1)
}

/// Image `i` of `todo` from its decoder ([`EvalError::DecoderStopped`] if that decoder is gone).
fn receive(decoded: &[Receiver<Decoded>], i: usize, sample: &Sample) -> Result<Decoded> {
    let stopped = || EvalError::DecoderStopped {
        id: sample.id.clone(),
    };
    let decoder = decoded.get(i % decoded.len().max(1)).ok_or_else(stopped)?;
    decoder.recv().map_err(|_| stopped())
}

/// Whether the file exists and is not empty.
fn holds_data(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() > 0)
}

/// Indices already in the results file, after checking that each record of
/// one of `samples` names the same image.
fn done_indices(path: &Path, samples: &[&Sample]) -> Result<HashSet<usize>> {
    let ids: HashMap<usize, &str> = samples.iter().map(|s| (s.index, s.id.as_str())).collect();
    let mut done = HashSet::new();
    for record in read_records(path)?.records {
        if let Some(&expected) = ids.get(&record.index).filter(|&&id| id != record.id) {
            let (index, found) = (record.index, record.id);
            return Err(EvalError::DatasetMismatch {
                path: path.to_path_buf(),
                index,
                expected: expected.to_string(),
                found,
            });
        }
        done.insert(record.index);
    }
    Ok(done)
}
