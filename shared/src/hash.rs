//! Record identity: SHA-256 of the canonical JSON of the payload, and nothing else, so
//! the same record from two files has one hash. A file's records, in order, have a
//! digest of their keys and hashes.

use sha2::{Digest, Sha256};

/// The 32-byte SHA-256 of a record's canonical JSON.
pub fn record_hash(canonical_json: &[u8]) -> [u8; 32] {
    Sha256::digest(canonical_json).into()
}

/// SHA-256 over the (key, hash) of each record in turn, each key length-prefixed so
/// that no two sequences share a digest. Two files with one digest bring the same
/// records with the same keys in the same order.
#[derive(Default)]
pub struct RecordsDigest(Sha256);

impl RecordsDigest {
    /// Adds a good record's key and hash, in file order.
    pub fn add(&mut self, key: &[u8], hash: &[u8; 32]) {
        let len = u32::try_from(key.len()).unwrap_or(u32::MAX);
        self.0.update(len.to_be_bytes());
        self.0.update(key);
        self.0.update(hash);
    }

    /// The digest of the records added.
    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_plain_sha256() {
        assert_eq!(
            hex::encode(record_hash(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn digests_tell_where_one_key_ends() {
        let digest = |records: &[(&[u8], [u8; 32])]| {
            let mut d = RecordsDigest::default();
            for (key, hash) in records {
                d.add(key, hash);
            }
            d.finish()
        };
        let (a, b) = ([1; 32], [2; 32]);
        assert_eq!(
            digest(&[(b"k", a), (b"l", b)]),
            digest(&[(b"k", a), (b"l", b)])
        );
        assert_ne!(
            digest(&[(b"k", a), (b"l", b)]),
            digest(&[(b"l", b), (b"k", a)])
        );
        assert_ne!(digest(&[(b"k", a)]), digest(&[(b"k", b)]));
        assert_ne!(digest(&[(b"", a)]), digest(&[]));
    }
}
