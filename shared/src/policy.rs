//! What a dataset does with a file whose records are partly bad, in the spirit of
//! Snowflake's `ON_ERROR`: load the good ones (`continue`), or skip the whole file when
//! any, N or more, or more than P% of it was refused.
//!
//! The share is of the file, not only of its records: a quote left open can swallow
//! every line after it into one bad record, and counting that as "1 of 2 records"
//! would call a file loaded while almost all of it was thrown away. So a reject counts
//! by the lines it spans, and the larger of the line share and the record share decides.

use std::fmt;

/// A dataset's error policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OnError {
    /// Load every good record, whatever the share of bad ones.
    Continue,
    /// Skip the file when this many records or more are rejected (`skip_file` is 1).
    SkipFileAt(u64),
    /// Skip the file when more than this percentage of it is rejected.
    SkipFileOver(f64),
}

impl Default for OnError {
    /// A few bad records in a large file load; a file mostly thrown away does not.
    fn default() -> Self {
        OnError::SkipFileOver(10.0)
    }
}

/// What was refused of a file, and how much there was of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Records read, good and rejected.
    pub records: u64,
    /// Records rejected.
    pub rejected_records: u64,
    /// Lines of the file.
    pub lines: u64,
    /// Lines the rejected records span.
    pub rejected_lines: u64,
}

impl Tally {
    /// The share of the file refused, in percent: by lines or by records, the larger.
    pub fn rejected_percent(&self) -> f64 {
        let share = |part: u64, whole: u64| {
            if whole == 0 {
                0.0
            } else {
                100.0 * part as f64 / whole as f64
            }
        };
        share(self.rejected_lines, self.lines).max(share(self.rejected_records, self.records))
    }
}

impl OnError {
    /// Parses `continue`, `skip_file`, `skip_file:N` or `skip_file:P%`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "continue" => Some(OnError::Continue),
            "skip_file" => Some(OnError::SkipFileAt(1)),
            other => {
                let bound = other.strip_prefix("skip_file:")?;
                match bound.strip_suffix('%') {
                    Some(percent) => percent
                        .parse::<f64>()
                        .ok()
                        .filter(|p| (0.0..100.0).contains(p))
                        .map(OnError::SkipFileOver),
                    None => bound
                        .parse::<u64>()
                        .ok()
                        .filter(|&n| n > 0)
                        .map(OnError::SkipFileAt),
                }
            }
        }
    }

    /// Whether the file must be skipped already, before its end: only a count can
    /// tell that early.
    pub fn skip_early(&self, tally: &Tally) -> bool {
        matches!(*self, OnError::SkipFileAt(n) if tally.rejected_records >= n)
    }

    /// Why the whole file is skipped, if it is.
    pub fn verdict(&self, tally: &Tally) -> Option<String> {
        let skip = match *self {
            OnError::Continue => false,
            OnError::SkipFileAt(n) => tally.rejected_records >= n,
            OnError::SkipFileOver(p) => tally.rejected_percent() > p,
        };
        skip.then(|| {
            format!(
                "{} of {} records ({} of {} lines, {:.1}%) were rejected; \
                 the dataset's on-error policy {self} skips such a file",
                tally.rejected_records,
                tally.records,
                tally.rejected_lines,
                tally.lines,
                tally.rejected_percent()
            )
        })
    }
}

impl fmt::Display for OnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OnError::Continue => f.write_str("continue"),
            OnError::SkipFileAt(1) => f.write_str("skip_file"),
            OnError::SkipFileAt(n) => write!(f, "skip_file:{n}"),
            OnError::SkipFileOver(p) => write!(f, "skip_file:{p}%"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_print_as_written() {
        for text in [
            "continue",
            "skip_file",
            "skip_file:5",
            "skip_file:10%",
            "skip_file:0.5%",
        ] {
            assert_eq!(OnError::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(OnError::parse("skip_file:1"), Some(OnError::SkipFileAt(1)));
        for bad in [
            "skip",
            "skip_file:0",
            "skip_file:-1",
            "skip_file:100%",
            "skip_file:x%",
        ] {
            assert_eq!(OnError::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_record_that_swallowed_the_file_counts_by_its_lines() {
        let tally = Tally {
            records: 2,
            rejected_records: 1,
            lines: 200_001,
            rejected_lines: 199_999,
        };
        let verdict = OnError::default().verdict(&tally).unwrap();
        assert!(verdict.contains("199999 of 200001 lines"), "{verdict}");
        let few = Tally {
            records: 1000,
            rejected_records: 3,
            lines: 1001,
            rejected_lines: 3,
        };
        assert_eq!(OnError::default().verdict(&few), None);
        assert!(OnError::SkipFileAt(3).verdict(&few).is_some());
        assert!(OnError::SkipFileAt(3).skip_early(&few));
        assert!(!OnError::SkipFileOver(0.1).skip_early(&few));
        assert_eq!(OnError::Continue.verdict(&tally), None);
    }
}
