//! Reports: a self-contained HTML page and a JSON summary.

mod grid;
mod html;
mod summary_file;
mod svg;

pub use grid::GridReport;
pub use html::{GalleryItem, Report, best_and_worst, config_table, encode_png};
pub use summary_file::{SummaryFile, Timings, sha256_file, summary_json};
