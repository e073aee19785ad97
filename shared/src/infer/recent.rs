//! The values a delimited column saw lately, each with what it counted: a value seen
//! again counts the same again without being read again. Data files repeat values — in
//! runs (a year, a date) and across records (a status, an airport, a carrier).

use super::Counted;

/// Remembered values per column, by the low bits of their hash (direct-mapped: a
/// collision only forgets the older value).
const SLOTS: usize = 64;
/// Bytes of the longest value remembered.
const LONGEST: usize = 64;

#[derive(Default)]
pub(super) struct Recent {
    /// Empty until the column's first value, so a file of thousands of columns that
    /// are mostly null stays small.
    slots: Vec<(String, Option<Counted>)>,
}

impl Recent {
    /// What `text` (of hash `hash`) counted when last seen, if it is remembered.
    pub fn get(&self, hash: u64, text: &str) -> Option<Counted> {
        let (seen, counted) = self.slots.get(slot(hash))?;
        counted.filter(|_| same(seen, text))
    }

    /// Remembers short values only: long ones rarely repeat, and memory per column
    /// must stay small whatever a file holds.
    pub fn put(&mut self, hash: u64, text: &str, counted: Counted) {
        if text.len() > LONGEST {
            return;
        }
        if self.slots.is_empty() {
            self.slots.resize_with(SLOTS, Default::default);
        }
        let (seen, remembered) = &mut self.slots[slot(hash)];
        seen.clear();
        seen.push_str(text);
        *remembered = Some(counted);
    }
}

fn slot(hash: u64) -> usize {
    (hash as usize) & (SLOTS - 1)
}

/// Equality, decided on the length and the last byte when they differ (neighbouring
/// values mostly differ at the end: 517, 518), before any call into `memcmp`.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.as_bytes().last() == b.as_bytes().last() && a == b
}
