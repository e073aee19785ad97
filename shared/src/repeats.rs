//! Whether a file may hold a key twice, found while it streams, in fixed memory.
//!
//! A file whose keys are all distinct (most files) can take the cheap merge and has no
//! duplicate keys to report; proving that on the server costs a GROUP BY over every
//! staged record. A Bloom filter proves it on the way instead: a key it has never
//! seen is certainly new, so a file with no hit certainly repeats no key. A hit may be
//! a false one, and then the server counts exactly, as it did before.
//!
//! The filter is split-block (as in Parquet): each key sets one bit in each of the
//! eight 32-bit words of one 256-bit block, so a key costs one cache line. 4 MiB keep
//! false hits improbable up to about half a million keys (at 336,776 keys the chance
//! a file sees one is under 1%); larger files mostly fall back to the exact count. Twice the size
//! would double that reach, and cost every file more cache and TLB misses.

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

const WORDS: usize = 4 * 1024 * 1024 / 4;
const SALT: [u32; 8] = [
    0x47b6_137b,
    0x4497_4d91,
    0x8824_ad5b,
    0xa2b7_289d,
    0x7054_95c7,
    0x2df1_424b,
    0x9efc_4947,
    0x5c6b_fb31,
];

/// Hashed keys applied to the filter at once.
const BATCH: usize = 64;

/// Keys seen so far.
pub struct Repeats {
    words: Vec<u32>,
    hits: u64,
    /// Hashes of keys noted and not yet applied, in order.
    pending: Vec<u64>,
}

impl Default for Repeats {
    fn default() -> Self {
        // Zeroed pages come from the allocator untouched: a small file costs a few.
        Self {
            words: vec![0; WORDS],
            hits: 0,
            pending: Vec::with_capacity(BATCH),
        }
    }
}

impl Repeats {
    /// Notes `key`; counts a hit when it may have been noted before.
    pub fn note(&mut self, key: &[u8]) {
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(key);
        self.pending.push(hash);
        if self.pending.len() == BATCH {
            self.apply();
        }
    }

    /// Whether some key may have come twice; `false` is certain.
    pub fn maybe(mut self) -> bool {
        self.apply();
        self.hits > 0
    }

    /// Applies the pending hashes in the order they came, so a key twice in one batch
    /// is still a hit.
    fn apply(&mut self) {
        let blocks = (WORDS / 8) as u64;
        for &hash in &self.pending {
            // The high half picks the block (scaled, not a modulo), the low half the bits.
            let block = usize::try_from(((hash >> 32) * blocks) >> 32).unwrap_or(0);
            let words = &mut self.words[block * 8..block * 8 + 8];
            let low = hash as u32;
            let mut seen = true;
            for (word, salt) in words.iter_mut().zip(SALT) {
                let bit = 1u32 << (low.wrapping_mul(salt) >> 27);
                seen &= *word & bit != 0;
                *word |= bit;
            }
            self.hits += u64::from(seen);
        }
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeat_after_many_keys_is_caught() {
        let mut repeats = Repeats::default();
        for i in 0..400_000u32 {
            repeats.note(format!("[{i},\"k\"]").as_bytes());
        }
        repeats.note(b"[123456,\"k\"]");
        assert!(repeats.maybe());
    }

    #[test]
    fn distinct_keys_give_no_false_hit_and_a_repeat_in_one_batch_is_caught() {
        let distinct = |n: u32| {
            let mut repeats = Repeats::default();
            for i in 0..n {
                repeats.note(format!("[{i},\"k\"]").as_bytes());
            }
            repeats
        };
        assert!(
            !distinct(400_000).maybe(),
            "400,000 distinct keys, no false hit"
        );
        let mut twice = distinct(3);
        twice.note(b"[1,\"k\"]");
        assert!(twice.maybe(), "a repeat before the batch is applied");
    }

    #[test]
    fn an_overfull_filter_errs_only_towards_counting() {
        let mut repeats = Repeats::default();
        for i in 0..5_000_000u32 {
            repeats.note(&i.to_le_bytes());
        }
        assert!(repeats.maybe(), "saturated, it must say maybe");
    }
}
