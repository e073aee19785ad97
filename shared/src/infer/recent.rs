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

#[derive(Default)]
pub(super) struct Recent {
    /// Empty until the column's first value, so a file of thousands of columns that
    /// are mostly null stays small.
    slots: Vec<Slot>,
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
    /// What `text` (of hash `hash`) counted when last seen, if it is remembered.
    pub fn get(&self, hash: u64, text: &str) -> Option<Counted> {
        let slot = self.slots.get(index(hash))?;
        let same = slot.hash == hash && &slot.bytes[..usize::from(slot.len)] == text.as_bytes();
        slot.counted.filter(|_| same)
    }

    /// Remembers short values only: long ones rarely repeat, and memory per column
    /// must stay small whatever a file holds.
    pub fn put(&mut self, hash: u64, text: &str, counted: Counted) {
        let Ok(len) = u8::try_from(text.len()) else {
            return;
        };
        if text.len() > LONGEST {
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
