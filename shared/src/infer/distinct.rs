//! A HyperLogLog distinct-count estimate: 4 KiB per column whatever the file size,
//! about 1.6% standard error, exact-ish for small counts through linear counting.

use std::hash::{DefaultHasher, Hash, Hasher};

const P: u32 = 12;
const M: usize = 1 << P;

pub struct Distinct {
    registers: Box<[u8; M]>,
}

impl Default for Distinct {
    fn default() -> Self {
        Self {
            registers: Box::new([0; M]),
        }
    }
}

impl Distinct {
    pub fn add(&mut self, value: &[u8]) {
        // SipHash with fixed keys: the same file always gives the same estimate.
        let mut hasher = DefaultHasher::new();
        value.hash(&mut hasher);
        let hash = hasher.finish();
        let index = (hash >> (64 - P)) as usize;
        let rank = ((hash << P) | (1 << (P - 1))).leading_zeros() as u8 + 1;
        if rank > self.registers[index] {
            self.registers[index] = rank;
        }
    }

    pub fn estimate(&self) -> u64 {
        let m = M as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let sum: f64 = self
            .registers
            .iter()
            .map(|&r| 2f64.powi(-i32::from(r)))
            .sum();
        let raw = alpha * m * m / sum;
        let zeros = self.registers.iter().filter(|&&r| r == 0).count();
        let estimate = if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        estimate.round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_are_close() {
        for n in [0u64, 1, 10, 1000, 100_000] {
            let mut d = Distinct::default();
            for i in 0..n {
                d.add(i.to_string().as_bytes());
                d.add(i.to_string().as_bytes());
            }
            let e = d.estimate() as f64;
            assert!(
                (e - n as f64).abs() <= (n as f64 * 0.05).max(1.0),
                "{n}: {e}"
            );
        }
    }
}
