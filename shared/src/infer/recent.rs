//! The values a delimited column (or a JSON field's strings) saw lately, each with what
//! it counted: a value seen again counts the same again without being read again. Data
//! files repeat values — in runs (a year, a date) and across records (a status, an
//! airport, a carrier).

use super::Counted;

/// Remembered values per column, by the low bits of their hash (direct-mapped: a
/// collision only forgets the older value).
const SLOTS: usize = 64;
/// Bytes of the longest value remembered.
const LONGEST: usize = 64;
/// Values looked up in a trial of the cache, and how many it must find again to be
/// kept: an id, an email or a timestamp column finds next to nothing, and then the
/// copy of every value into a slot (and the slot's cache line) is pure cost.
const TRIAL: u32 = 1024;
const WORTH: u32 = TRIAL / 16;
/// Values read without the cache after a trial that found too few, before the next.
const REST: u32 = 16 * TRIAL;

#[derive(Default)]
pub(super) struct Recent {
    /// Empty until the column's first value, so a file of thousands of columns that
    /// are mostly null stays small.
    slots: Vec<Slot>,
    /// Lookups and finds of the current trial.
    looked: u32,
    found: u32,
    /// Values still to read without the cache.
    resting: u32,
}

/// One remembered value, its bytes in the slot itself: a value that is not there is
/// told by its hash, without a read of memory elsewhere, and one that is, by bytes
/// beside the hash. (Most values of an id or timestamp column are not there.)
struct Slot {
    hash: u64,
    counted: Option<Counted>,
    len: u8,
    bytes: [u8; LONGEST],
}

impl Default for Slot {
    fn default() -> Self {
        Self {
            hash: 0,
            counted: None,
            len: 0,
            bytes: [0; LONGEST],
        }
    }
}

impl Recent {
    /// What `text` (of hash `hash`) counted when last seen, if it is remembered. A
    /// cache that finds too few values rests for a while: it only ever saves work, so
    /// what a value counts is the same either way.
    pub fn get(&mut self, hash: u64, text: &str) -> Option<Counted> {
        if self.resting > 0 {
            self.resting -= 1;
            return None;
        }
        let found = self.slots.get(index(hash)).and_then(|slot| {
            let same = slot.hash == hash && &slot.bytes[..usize::from(slot.len)] == text.as_bytes();
            slot.counted.filter(|_| same)
        });
        self.looked += 1;
        self.found += u32::from(found.is_some());
        if self.looked == TRIAL {
            if self.found < WORTH {
                self.resting = REST;
            }
            (self.looked, self.found) = (0, 0);
        }
        found
    }

    /// Remembers short values only: long ones rarely repeat, and memory per column
    /// must stay small whatever a file holds.
    pub fn put(&mut self, hash: u64, text: &str, counted: Counted) {
        let Ok(len) = u8::try_from(text.len()) else {
            return;
        };
        if text.len() > LONGEST || self.resting > 0 {
            return;
        }
        if self.slots.is_empty() {
            self.slots.resize_with(SLOTS, Default::default);
        }
        let slot = &mut self.slots[index(hash)];
        slot.hash = hash;
        slot.len = len;
        slot.bytes[..text.len()].copy_from_slice(text.as_bytes());
        slot.counted = Some(counted);
    }
}

fn index(hash: u64) -> usize {
    (hash as usize) & (SLOTS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted() -> Counted {
        Counted::Null(0)
    }

    /// A cache that found too few values rests, and is tried again after its rest.
    #[test]
    fn a_cache_that_finds_nothing_rests_and_is_tried_again() {
        let mut recent = Recent::default();
        let value = |i: u32| (u64::from(i) * 0x9e37_79b9, i.to_string());
        for i in 0..TRIAL {
            let (hash, text) = value(i);
            assert!(recent.get(hash, &text).is_none());
            recent.put(hash, &text, counted());
        }
        assert_eq!(recent.resting, REST);
        // Resting, it neither finds nor keeps a value seen a moment ago.
        let (hash, text) = value(7);
        recent.put(hash, &text, counted());
        assert!(recent.get(hash, &text).is_none());
        for _ in 1..REST {
            assert!(recent.get(hash, &text).is_none());
        }
        assert_eq!(recent.resting, 0);
        recent.put(hash, &text, counted());
        assert!(recent.get(hash, &text).is_some());
        // A cache that finds its values keeps working.
        for _ in 0..2 * TRIAL {
            assert!(recent.get(hash, &text).is_some());
        }
        assert_eq!(recent.resting, 0);
    }
}
