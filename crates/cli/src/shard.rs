//! `--shard auto`: the shard from the scheduler's environment.
//!
//! Read in this order (the first source whose index variable is set wins; its other
//! variables must then be right, there is no falling through to the next source):
//!
//! 1. generic: `FEEDBACKNET_SHARD_INDEX` (1-based, like `--shard I/N`) and
//!    `FEEDBACKNET_SHARD_COUNT`;
//! 2. Slurm job arrays: `SLURM_ARRAY_TASK_ID` with `SLURM_ARRAY_TASK_MIN` and either
//!    `SLURM_ARRAY_TASK_COUNT` or `SLURM_ARRAY_TASK_MAX`. Array IDs may start anywhere
//!    (`--array=0-7`, `--array=1-8`, `--array=100-107`): task `ID` is shard `ID - MIN + 1` of
//!    `MAX - MIN + 1` (or of `COUNT`). Without `SLURM_ARRAY_TASK_MIN` the IDs are taken to
//!    start at 0. Only contiguous arrays work: a `SLURM_ARRAY_TASK_STEP` other than 1, or a
//!    `COUNT` that is not `MAX - MIN + 1` (a list such as `--array=1,3,7`), is refused;
//! 3. Kubernetes Indexed Jobs: `JOB_COMPLETION_INDEX` (0-based, so shard `INDEX + 1`) with
//!    `FEEDBACKNET_SHARD_COUNT`, which the pod must be given (it does not see the Job's
//!    `.spec.completions`): `env: [{name: FEEDBACKNET_SHARD_COUNT, value: "<completions>"}]`.

use std::fmt;

use feedbacknet_eval::Shard;
use thiserror::Error;

const GENERIC_INDEX: &str = "FEEDBACKNET_SHARD_INDEX";
const GENERIC_COUNT: &str = "FEEDBACKNET_SHARD_COUNT";
const SLURM_ID: &str = "SLURM_ARRAY_TASK_ID";
const SLURM_COUNT: &str = "SLURM_ARRAY_TASK_COUNT";
const SLURM_MIN: &str = "SLURM_ARRAY_TASK_MIN";
const SLURM_MAX: &str = "SLURM_ARRAY_TASK_MAX";
const SLURM_STEP: &str = "SLURM_ARRAY_TASK_STEP";
const K8S_INDEX: &str = "JOB_COMPLETION_INDEX";

/// Where a `--shard auto` shard came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `FEEDBACKNET_SHARD_INDEX` / `FEEDBACKNET_SHARD_COUNT`.
    Generic,
    /// A Slurm job array.
    Slurm,
    /// A Kubernetes Indexed Job.
    Kubernetes,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Generic => "generic",
            Source::Slurm => "slurm",
            Source::Kubernetes => "kubernetes",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Generic => "FEEDBACKNET_SHARD_*",
            Source::Slurm => "Slurm job array",
            Source::Kubernetes => "Kubernetes Indexed Job",
        })
    }
}

/// The variables read, with their values (`None`: unset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read(pub Vec<(&'static str, Option<String>)>);

impl fmt::Display for Read {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, value)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match value {
                Some(v) => write!(f, "{name}={v:?}")?,
                None => write!(f, "{name} unset")?,
            }
        }
        Ok(())
    }
}

/// Why `--shard auto` found no shard.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AutoShardError {
    /// None of the index variables is set.
    #[error(
        "--shard auto: no scheduler shard in the environment (read {read}); run in a Slurm \
         array, a Kubernetes Indexed Job with FEEDBACKNET_SHARD_COUNT, or set \
         FEEDBACKNET_SHARD_INDEX (1-based) and FEEDBACKNET_SHARD_COUNT"
    )]
    NotFound { read: Read },
    /// The source's variables are missing, not numbers or inconsistent.
    #[error("--shard auto ({scheduler}): {reason} (read {read})")]
    Invalid {
        scheduler: Source,
        reason: String,
        read: Read,
    },
}

/// A shard chosen by `--shard auto`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoShard {
    pub shard: Shard,
    pub source: Source,
    /// The variables read (set ones only).
    pub read: Read,
}

impl AutoShard {
    /// How it is recorded in the run's configuration.
    pub fn to_json(&self) -> serde_json::Value {
        let variables: serde_json::Map<String, serde_json::Value> = self
            .read
            .0
            .iter()
            .filter_map(|(k, v)| Some((k.to_string(), v.clone()?.into())))
            .collect();
        serde_json::json!({
            "source": self.source.name(),
            "variables": variables,
        })
    }
}

impl fmt::Display for AutoShard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "shard {} from the {} ({})",
            self.shard, self.source, self.read
        )
    }
}

/// The shard of `--shard auto`, from the variables `lookup` gives (the process environment
/// in the CLI: `|name| std::env::var(name).ok()`). Empty values count as unset.
pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<AutoShard, AutoShardError> {
    let get = |name: &'static str| {
        let value = lookup(name).filter(|v| !v.trim().is_empty());
        (name, value)
    };
    if get(GENERIC_INDEX).1.is_some() {
        let read = Read(vec![get(GENERIC_INDEX), get(GENERIC_COUNT)]);
        return resolve(Source::Generic, read, |v| {
            let index = number(v, GENERIC_INDEX)?.expect("set");
            let count = required(number(v, GENERIC_COUNT)?, GENERIC_COUNT)?;
            if index == 0 {
                return Err(format!("{GENERIC_INDEX} is 1-based: 0 is no shard"));
            }
            Ok((index, count))
        });
    }
    if get(SLURM_ID).1.is_some() {
        let read = Read(vec![
            get(SLURM_ID),
            get(SLURM_COUNT),
            get(SLURM_MIN),
            get(SLURM_MAX),
            get(SLURM_STEP),
        ]);
        return resolve(Source::Slurm, read, slurm);
    }
    if get(K8S_INDEX).1.is_some() {
        let read = Read(vec![get(K8S_INDEX), get(GENERIC_COUNT)]);
        return resolve(Source::Kubernetes, read, |v| {
            let index = number(v, K8S_INDEX)?.expect("set");
            let count = number(v, GENERIC_COUNT)?.ok_or_else(|| {
                format!(
                    "{GENERIC_COUNT} is unset: give the pod the Job's completions, \
                     env: [{{name: {GENERIC_COUNT}, value: \"<completions>\"}}]"
                )
            })?;
            Ok((index.saturating_add(1), count))
        });
    }
    Err(AutoShardError::NotFound {
        read: Read(vec![
            get(GENERIC_INDEX),
            get(GENERIC_COUNT),
            get(SLURM_ID),
            get(K8S_INDEX),
        ]),
    })
}

/// Slurm's `(1-based index, count)`: `ID - MIN + 1` of `MAX - MIN + 1` (or `COUNT`).
fn slurm(v: &Read) -> Result<(usize, usize), String> {
    let id = number(v, SLURM_ID)?.expect("set");
    if let Some(step) = number(v, SLURM_STEP)?
        && step != 1
    {
        return Err(format!(
            "{SLURM_STEP} is {step}: only contiguous arrays (step 1, e.g. --array=1-8) map \
             onto shards"
        ));
    }
    let min = number(v, SLURM_MIN)?.unwrap_or(0);
    let max = number(v, SLURM_MAX)?;
    let count = match (number(v, SLURM_COUNT)?, max) {
        (Some(count), Some(max)) => {
            let span = max.checked_sub(min).map(|d| d.saturating_add(1));
            if span != Some(count) {
                return Err(format!(
                    "{SLURM_COUNT} is {count} but {SLURM_MIN}..={SLURM_MAX} spans \
                     {min}..={max}: only contiguous arrays (e.g. --array=1-8) map onto shards"
                ));
            }
            count
        }
        (Some(count), None) => count,
        (None, Some(max)) => max
            .checked_sub(min)
            .map(|d| d.saturating_add(1))
            .ok_or_else(|| format!("{SLURM_MAX} {max} is below {SLURM_MIN} {min}"))?,
        (None, None) => {
            return Err(format!(
                "the count is missing: need {SLURM_COUNT} or {SLURM_MAX}"
            ));
        }
    };
    let offset = id
        .checked_sub(min)
        .ok_or_else(|| format!("{SLURM_ID} {id} is below {SLURM_MIN} {min}"))?;
    Ok((offset.saturating_add(1), count))
}

/// Checks `(index, count)` (1-based) and builds the shard.
fn resolve(
    source: Source,
    read: Read,
    parse: impl FnOnce(&Read) -> Result<(usize, usize), String>,
) -> Result<AutoShard, AutoShardError> {
    let checked = parse(&read).and_then(|(index, count)| {
        if count == 0 {
            return Err("the shard count is 0".to_string());
        }
        if index > count {
            return Err(format!(
                "index out of range: shard {index} (1-based) of {count}"
            ));
        }
        Shard::new(index, count).map_err(|e| e.to_string())
    });
    match checked {
        Ok(shard) => Ok(AutoShard {
            shard,
            source,
            read: Read(read.0.into_iter().filter(|(_, v)| v.is_some()).collect()),
        }),
        Err(reason) => Err(AutoShardError::Invalid {
            scheduler: source,
            reason,
            read,
        }),
    }
}

/// The value of `name` among those read, as a whole number (`None`: unset).
fn number(read: &Read, name: &str) -> Result<Option<usize>, String> {
    let value = read
        .0
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.as_deref());
    value
        .map(|v| {
            v.trim()
                .parse::<usize>()
                .map_err(|_| format!("{name}={v:?} is not a whole number"))
        })
        .transpose()
}

fn required(value: Option<usize>, name: &str) -> Result<usize, String> {
    value.ok_or_else(|| format!("{name} is unset"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn shard(vars: &[(&str, &str)]) -> (usize, usize, Source) {
        let auto = from_env(env(vars)).unwrap();
        (auto.shard.index, auto.shard.count, auto.source)
    }

    fn reason(vars: &[(&str, &str)]) -> String {
        match from_env(env(vars)).unwrap_err() {
            AutoShardError::Invalid { reason, .. } => reason,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn generic_is_one_based() {
        let vars = [(GENERIC_INDEX, "3"), (GENERIC_COUNT, "8")];
        assert_eq!(shard(&vars), (3, 8, Source::Generic));
        let auto = from_env(env(&vars)).unwrap();
        assert_eq!(
            auto.to_string(),
            "shard 3/8 from the FEEDBACKNET_SHARD_* (FEEDBACKNET_SHARD_INDEX=\"3\", \
             FEEDBACKNET_SHARD_COUNT=\"8\")"
        );
        assert_eq!(auto.to_json()["variables"][GENERIC_INDEX], "3");
        assert!(reason(&[(GENERIC_INDEX, "0"), (GENERIC_COUNT, "8")]).contains("1-based"));
        assert!(reason(&[(GENERIC_INDEX, "3")]).contains("FEEDBACKNET_SHARD_COUNT is unset"));
    }

    #[test]
    fn slurm_arrays_from_one_and_from_zero() {
        let one = [
            (SLURM_ID, "1"),
            (SLURM_COUNT, "8"),
            (SLURM_MIN, "1"),
            (SLURM_MAX, "8"),
            (SLURM_STEP, "1"),
        ];
        assert_eq!(shard(&one), (1, 8, Source::Slurm));
        let last = [(SLURM_ID, "8"), (SLURM_MIN, "1"), (SLURM_MAX, "8")];
        assert_eq!(shard(&last), (8, 8, Source::Slurm));
        let zero = [(SLURM_ID, "0"), (SLURM_MIN, "0"), (SLURM_MAX, "7")];
        assert_eq!(shard(&zero), (1, 8, Source::Slurm));
        let zero_last = [(SLURM_ID, "7"), (SLURM_COUNT, "8"), (SLURM_MIN, "0")];
        assert_eq!(shard(&zero_last), (8, 8, Source::Slurm));
        let anywhere = [(SLURM_ID, "102"), (SLURM_MIN, "100"), (SLURM_MAX, "103")];
        assert_eq!(shard(&anywhere), (3, 4, Source::Slurm));
        // COUNT without MIN: IDs from 0.
        assert_eq!(
            shard(&[(SLURM_ID, "2"), (SLURM_COUNT, "4")]),
            (3, 4, Source::Slurm)
        );
    }

    #[test]
    fn slurm_needs_a_count_and_a_contiguous_array() {
        let missing = reason(&[(SLURM_ID, "2"), (SLURM_MIN, "1")]);
        assert!(missing.contains("count is missing"), "{missing}");
        let step = reason(&[
            (SLURM_ID, "3"),
            (SLURM_MIN, "1"),
            (SLURM_MAX, "9"),
            (SLURM_STEP, "2"),
        ]);
        assert!(step.contains("SLURM_ARRAY_TASK_STEP is 2"), "{step}");
        let list = reason(&[
            (SLURM_ID, "3"),
            (SLURM_COUNT, "3"),
            (SLURM_MIN, "1"),
            (SLURM_MAX, "7"),
        ]);
        assert!(list.contains("contiguous"), "{list}");
        let below = reason(&[(SLURM_ID, "0"), (SLURM_MIN, "1"), (SLURM_MAX, "8")]);
        assert!(below.contains("below"), "{below}");
        let err = from_env(env(&[(SLURM_ID, "x"), (SLURM_COUNT, "8")])).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("SLURM_ARRAY_TASK_ID=\"x\" is not a whole number")
                && text.contains("SLURM_ARRAY_TASK_COUNT=\"8\"")
                && text.contains("SLURM_ARRAY_TASK_STEP unset"),
            "{text}"
        );
    }

    #[test]
    fn kubernetes_is_zero_based_with_the_count_given() {
        let vars = [(K8S_INDEX, "0"), (GENERIC_COUNT, "4")];
        assert_eq!(shard(&vars), (1, 4, Source::Kubernetes));
        assert_eq!(
            shard(&[(K8S_INDEX, "3"), (GENERIC_COUNT, "4")]),
            (4, 4, Source::Kubernetes)
        );
        let missing = reason(&[(K8S_INDEX, "3")]);
        assert!(
            missing.contains("FEEDBACKNET_SHARD_COUNT is unset"),
            "{missing}"
        );
    }

    #[test]
    fn an_index_out_of_range_is_refused() {
        let k8s = reason(&[(K8S_INDEX, "4"), (GENERIC_COUNT, "4")]);
        assert!(
            k8s.contains("out of range: shard 5 (1-based) of 4"),
            "{k8s}"
        );
        let generic = reason(&[(GENERIC_INDEX, "9"), (GENERIC_COUNT, "8")]);
        assert!(generic.contains("out of range"), "{generic}");
        let slurm = reason(&[(SLURM_ID, "8"), (SLURM_COUNT, "8")]);
        assert!(slurm.contains("out of range"), "{slurm}");
        assert!(reason(&[(GENERIC_INDEX, "1"), (GENERIC_COUNT, "0")]).contains("count is 0"));
    }

    #[test]
    fn generic_before_slurm_before_kubernetes() {
        let all = [
            (GENERIC_INDEX, "2"),
            (GENERIC_COUNT, "3"),
            (SLURM_ID, "5"),
            (SLURM_MIN, "1"),
            (SLURM_MAX, "8"),
            (K8S_INDEX, "0"),
        ];
        assert_eq!(shard(&all), (2, 3, Source::Generic));
        assert_eq!(shard(&all[2..]), (5, 8, Source::Slurm));
        let k8s = [(K8S_INDEX, "0"), (GENERIC_COUNT, "3")];
        assert_eq!(shard(&k8s), (1, 3, Source::Kubernetes));
        // An empty value is unset.
        let empty = [(GENERIC_INDEX, ""), (K8S_INDEX, "1"), (GENERIC_COUNT, "3")];
        assert_eq!(shard(&empty), (2, 3, Source::Kubernetes));
    }

    #[test]
    fn nothing_set_says_what_was_read() {
        let err = from_env(env(&[])).unwrap_err();
        assert!(matches!(err, AutoShardError::NotFound { .. }));
        let text = err.to_string();
        for name in [GENERIC_INDEX, SLURM_ID, K8S_INDEX] {
            assert!(text.contains(&format!("{name} unset")), "{text}");
        }
    }
}
