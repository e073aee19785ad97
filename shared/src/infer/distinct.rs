//! A distinct count: exact up to [`EXACT`] values (quality figures on small files are
//! then exact), a HyperLogLog estimate beyond: 4 KiB per column whatever the file
//! size, about 1.6% standard error. The registers are made only when the exact set
//! overflows, so a file of thousands of columns of few values stays small.

const P: u32 = 12;
const M: usize = 1 << P;
/// Distinct values counted exactly, by their 64-bit hashes, before only the estimate is kept.
const EXACT: usize = 1024;

#[derive(Default)]
pub struct Distinct {
    /// The hashes of the values seen, while there are at most [`EXACT`] of them.
    exact: HashSet,
    /// The estimate's registers, once there are more.
    registers: Option<Box<[u8; M]>>,
}

/// An open-addressing set of 64-bit hashes, at most half full: one probe or two per
/// value on the hot path, where a sorted vector's binary search was a tenth of
/// inference. It starts small, so a file of thousands of columns stays small.
struct HashSet {
    /// 0 marks an empty slot; a hash of 0 is stored as 1.
    slots: Vec<u64>,
    len: usize,
}

impl Default for HashSet {
    /// Empty until the first value: a column that is always null costs nothing.
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            len: 0,
        }
    }
}

impl HashSet {
    fn insert(&mut self, hash: u64) {
        if self.slots.is_empty() {
            self.slots = vec![0; 16];
        }
        let hash = hash.max(1);
        let mask = self.slots.len() - 1;
        // The high bits pick the HyperLogLog register; the low ones spread here.
        let mut i = (hash as usize) & mask;
        loop {
            match self.slots[i] {
                0 => break,
                seen if seen == hash => return,
                _ => i = (i + 1) & mask,
            }
        }
        self.slots[i] = hash;
        self.len += 1;
        if self.len * 2 > self.slots.len() {
            self.grow();
        }
    }

    fn grow(&mut self) {
        let doubled = vec![0; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, doubled);
        self.len = 0;
        for hash in old.into_iter().filter(|&h| h != 0) {
            self.insert(hash);
        }
    }
}

/// A fast 64-bit hash with a strong final mix (SplitMix64's): HyperLogLog needs well
/// spread bits, not resistance to chosen inputs, and it runs once per value. Fixed
/// constants, so the same file always gives the same estimate.
pub fn hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(word))
            .wrapping_mul(K)
            .rotate_left(31);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

impl Distinct {
    /// Adds the value of this [`hash`].
    pub fn add(&mut self, hash: u64) {
        match &mut self.registers {
            Some(registers) => register(registers, hash),
            None => {
                self.exact.insert(hash);
                if self.exact.len > EXACT {
                    let mut registers = Box::new([0; M]);
                    for &seen in self.exact.slots.iter().filter(|&&h| h != 0) {
                        register(&mut registers, seen);
                    }
                    register(&mut registers, hash);
                    self.registers = Some(registers);
                    self.exact = HashSet::default();
                }
            }
        }
    }

    pub fn estimate(&self) -> u64 {
        let Some(registers) = &self.registers else {
            return self.exact.len as u64;
        };
        let m = M as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let sum: f64 = registers.iter().map(|&r| 2f64.powi(-i32::from(r))).sum();
        let raw = alpha * m * m / sum;
        let zeros = registers.iter().filter(|&&r| r == 0).count();
        let estimate = if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        estimate.round() as u64
    }
}

/// Adds the value of this [`hash`] to the estimate's registers. (A hash of 0 is kept
/// as 1 in the exact set: one value in 2⁶⁴ lands in another register.)
fn register(registers: &mut [u8; M], hash: u64) {
    let index = (hash >> (64 - P)) as usize;
    let rank = ((hash << P) | (1 << (P - 1))).leading_zeros() as u8 + 1;
    if rank > registers[index] {
        registers[index] = rank;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_are_close() {
        for n in [0u64, 1, 10, 1000, 1024, 1025, 5000, 100_000] {
            let mut d = Distinct::default();
            for i in 0..n {
                d.add(hash(i.to_string().as_bytes()));
                d.add(hash(i.to_string().as_bytes()));
            }
            let e = d.estimate() as f64;
            if n <= EXACT as u64 {
                assert_eq!(e as u64, n);
            }
            assert!(
                (e - n as f64).abs() <= (n as f64 * 0.05).max(1.0),
                "{n}: {e}"
            );
        }
    }
}
