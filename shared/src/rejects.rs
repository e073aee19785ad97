//! The records a load refused: counted exactly, kept as a bounded sample.
//!
//! A file where no row has its key would otherwise be copied whole into
//! `bronze.rejects`, one oversized row per record. The count and the lines they span
//! stay exact (the error policy decides on them); only the first
//! [`crate::limits::Limits::stored_rejects`] are kept, each with its reason and at
//! most [`crate::format::MAX_RAW`] bytes of its text, so a load's rejects fit in a few
//! megabytes of memory before they are written, in one statement, after the load.

use crate::format::Raw;

/// Bytes of a reason kept: reasons quote values, and a value can be a record long.
const MAX_REASON: usize = 1024;

/// A load's rejected records.
#[derive(Debug, Default)]
pub struct Rejects {
    /// Every record refused.
    pub count: u64,
    /// The lines they span.
    pub lines: u64,
    limit: usize,
    /// The rejects kept, to be written.
    pub sample: Sample,
}

/// The rejects kept, column by column, as `bronze.rejects` takes them.
#[derive(Debug, Default)]
pub struct Sample {
    /// Each one's line; `None` for a file refused before any line.
    pub lines: Vec<Option<i64>>,
    /// Each one's reason, cut to 1 KiB.
    pub reasons: Vec<String>,
    /// Each one's text, cut to 4 KiB, when it had one.
    pub raws: Vec<Option<String>>,
    /// Each one's whole size in bytes, when it had text.
    pub raw_bytes: Vec<Option<i64>>,
}

impl Rejects {
    /// Keeps at most `limit` of them.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }

    /// Counts a record refused at `line`, spanning `lines` lines.
    pub fn add(&mut self, line: u64, lines: u64, reason: &str, raw: Option<&Raw>) {
        self.count += 1;
        self.lines += lines.max(1);
        if self.sample.lines.len() >= self.limit {
            return;
        }
        self.sample.lines.push(Some(line_number(line)));
        self.sample.reasons.push(cut(reason, MAX_REASON).to_owned());
        self.sample.raws.push(raw.map(|r| r.text.clone()));
        self.sample
            .raw_bytes
            .push(raw.map(|r| i64::try_from(r.len).unwrap_or(i64::MAX)));
    }

    /// The first reject, as `line N: reason`, to say why a file was skipped.
    pub fn first(&self) -> Option<String> {
        let line = self.sample.lines.first()?.unwrap_or_default();
        Some(format!("line {line}: {}", self.sample.reasons[0]))
    }
}

impl Sample {
    /// The one reject of a file refused whole, at the line that condemned it if any.
    pub fn file(line: Option<u64>, reason: &str) -> Self {
        Self {
            lines: vec![line.map(line_number)],
            reasons: vec![cut(reason, MAX_REASON).to_owned()],
            raws: vec![None],
            raw_bytes: vec![None],
        }
    }
}

fn line_number(line: u64) -> i64 {
    i64::try_from(line).unwrap_or(i64::MAX)
}

/// `text` cut to at most `max` bytes, on a character boundary.
pub fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_is_exact_and_the_sample_bounded() {
        let mut rejects = Rejects::new(2);
        let raw = Raw::cut(b"x", 10_000);
        for line in 1..=5 {
            rejects.add(line, 3, &"é".repeat(1000), Some(&raw));
        }
        assert_eq!((rejects.count, rejects.lines), (5, 15));
        assert_eq!(rejects.sample.lines, vec![Some(1), Some(2)]);
        assert_eq!(rejects.sample.reasons[0].len(), 1024);
        assert_eq!(rejects.sample.raw_bytes[1], Some(10_000));
        assert!(rejects.first().unwrap().starts_with("line 1: é"));
    }
}
