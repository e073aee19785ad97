//! Record identity: SHA-256 of the canonical JSON of the payload, and nothing else, so
//! the same record from two files has one hash.

use sha2::{Digest, Sha256};

/// The 32-byte SHA-256 of a record's canonical JSON.
pub fn record_hash(canonical_json: &[u8]) -> [u8; 32] {
    Sha256::digest(canonical_json).into()
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
}
