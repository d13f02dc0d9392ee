//! Errors of the command-line tool.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum CliError {
    #[error(transparent)]
    Feedbacknet(#[from] feedbacknet::Error),
    #[error(transparent)]
    Eval(#[from] feedbacknet_eval::EvalError),
    #[error(transparent)]
    AutoShard(#[from] crate::shard::AutoShardError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode {path}: {reason}")]
    Encode { path: PathBuf, reason: String },
    #[error("{0}")]
    Usage(String),
}

pub type Result<T> = std::result::Result<T, CliError>;
