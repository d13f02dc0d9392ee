//! Splitting a data set into interleaved shards.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};

/// Shard `index` of `count` (1-based, written `I/N`): the images whose
/// data-set index `i` has `i % count == index - 1`. Interleaving keeps the
/// shards balanced when the data set is sorted by class or difficulty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// 1-based shard number, in `1..=count`.
    pub index: usize,
    /// Number of shards, at least 1.
    pub count: usize,
}

impl Shard {
    /// Builds a shard, checking `1 <= index <= count`.
    pub fn new(index: usize, count: usize) -> Result<Self> {
        if count == 0 || index == 0 || index > count {
            return Err(bad(&format!("{index}/{count}"), "need 1 <= I <= N"));
        }
        Ok(Self { index, count })
    }

    /// Parses `I/N`, e.g. `"2/3"`.
    ///
    /// ```
    /// use feedbacknet_eval::Shard;
    /// let s = Shard::parse("2/3")?;
    /// assert_eq!((s.index, s.count), (2, 3));
    /// assert!(s.contains(1) && s.contains(4) && !s.contains(2));
    /// assert!(Shard::parse("0/3").is_err() && Shard::parse("4/3").is_err() && Shard::parse("x").is_err());
    /// # Ok::<(), feedbacknet_eval::EvalError>(())
    /// ```
    pub fn parse(spec: &str) -> Result<Self> {
        let (i, n) = spec
            .split_once('/')
            .ok_or_else(|| bad(spec, "expected I/N"))?;
        let number = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| bad(spec, "I and N must be whole numbers"))
        };
        let (index, count) = (number(i)?, number(n)?);
        Self::new(index, count).map_err(|_| bad(spec, "need 1 <= I <= N"))
    }

    /// Whether the image at data-set index `index` belongs to this shard.
    pub fn contains(&self, index: usize) -> bool {
        self.count > 0 && index % self.count == self.index.wrapping_sub(1)
    }
}

impl FromStr for Shard {
    type Err = EvalError;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

fn bad(spec: &str, reason: &str) -> EvalError {
    EvalError::InvalidShard {
        spec: spec.to_string(),
        reason: reason.to_string(),
    }
}
