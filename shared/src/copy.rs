//! PostgreSQL's binary `COPY` format, written straight into reusable chunks.
//!
//! Rows are encoded by hand rather than through `BinaryCopyInWriter`, which builds a
//! boxed `ToSql` slice per row and was measured far slower on wide rows
//! (rust-postgres#1114). The format: a fixed header, then per row a field count and
//! length-prefixed fields, then a `-1` trailer.

use bytes::{BufMut, Bytes, BytesMut};
use tokio_postgres::types::{IsNull, ToSql, Type};

const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Chunks handed to the COPY stream are about this big: large enough to amortise the
/// channel and socket writes, small enough to keep memory flat.
pub const CHUNK: usize = 64 * 1024;

/// Encodes rows into a buffer that is split off in [`CHUNK`]-sized pieces.
pub struct CopyEncoder {
    buf: BytesMut,
}

impl Default for CopyEncoder {
    fn default() -> Self {
        let mut buf = BytesMut::with_capacity(CHUNK * 2);
        buf.put_slice(HEADER);
        Self { buf }
    }
}

impl CopyEncoder {
    /// Starts a row of `fields` columns.
    pub fn row(&mut self, fields: i16) {
        self.buf.put_i16(fields);
    }

    /// A `text` field: its UTF-8 bytes.
    pub fn text(&mut self, value: &[u8]) {
        self.bytes(value);
    }

    /// A `jsonb` field: the binary format is a version byte (1) and the JSON text.
    pub fn jsonb(&mut self, json: &[u8]) {
        self.buf.put_i32(len(json.len() + 1));
        self.buf.put_u8(1);
        self.buf.put_slice(json);
    }

    /// A `bytea` field: its bytes.
    pub fn bytea(&mut self, value: &[u8]) {
        self.bytes(value);
    }

    /// A `bigint` field.
    pub fn int8(&mut self, value: i64) {
        self.buf.put_i32(8);
        self.buf.put_i64(value);
    }

    /// A SQL NULL.
    pub fn null(&mut self) {
        self.buf.put_i32(-1);
    }

    /// Fields encoded once, written again.
    pub fn constant(&mut self, fields: &Constant) {
        self.buf.put_slice(&fields.bytes);
    }

    fn bytes(&mut self, value: &[u8]) {
        self.buf.put_i32(len(value.len()));
        self.buf.put_slice(value);
    }

    /// Splits off the encoded rows once a chunk is full.
    pub fn take_full(&mut self) -> Option<Bytes> {
        (self.buf.len() >= CHUNK).then(|| self.buf.split().freeze())
    }

    /// Ends the stream and returns what is left.
    pub fn finish(mut self) -> Bytes {
        self.buf.put_i16(-1);
        self.buf.freeze()
    }
}

/// Fields that are the same in every row of a load (its lineage, its schema version),
/// encoded once through their `ToSql` so that each row costs one copy.
#[derive(Debug, Default)]
pub struct Constant {
    bytes: BytesMut,
    count: i16,
}

impl Constant {
    /// Encodes `value` as a field of type `ty`, once for every row.
    pub fn push(
        &mut self,
        value: &(dyn ToSql + Sync),
        ty: &Type,
    ) -> Result<(), Box<dyn std::error::Error + Sync + Send>> {
        let at = self.bytes.len();
        self.bytes.put_i32(0);
        let length = match value.to_sql_checked(ty, &mut self.bytes)? {
            IsNull::Yes => {
                self.bytes.truncate(at + 4);
                -1
            }
            IsNull::No => len(self.bytes.len() - at - 4),
        };
        self.bytes[at..at + 4].copy_from_slice(&length.to_be_bytes());
        self.count += 1;
        Ok(())
    }

    /// How many fields: a row's field count includes them.
    pub fn count(&self) -> i16 {
        self.count
    }
}

/// Field lengths are `i32` on the wire; PostgreSQL refuses fields over 1 GB anyway,
/// so a larger one saturates and the server reports it.
fn len(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_follow_the_binary_copy_layout() {
        let mut enc = CopyEncoder::default();
        enc.row(2);
        enc.text(b"ab");
        enc.int8(7);
        let bytes = enc.finish();
        let mut want = HEADER.to_vec();
        want.extend_from_slice(&[
            0, 2, 0, 0, 0, 2, b'a', b'b', 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7,
        ]);
        want.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(&bytes[..], &want[..]);
    }

    #[test]
    fn constant_fields_are_length_prefixed_and_null_is_minus_one() {
        let mut fields = Constant::default();
        fields.push(&7i32, &Type::INT4).unwrap();
        fields.push(&None::<String>, &Type::TEXT).unwrap();
        fields.push(&"ab", &Type::TEXT).unwrap();
        assert_eq!(fields.count(), 3);
        let mut enc = CopyEncoder::default();
        enc.row(fields.count());
        enc.constant(&fields);
        let bytes = enc.finish();
        let mut want = HEADER.to_vec();
        want.extend_from_slice(&[0, 3, 0, 0, 0, 4, 0, 0, 0, 7, 0xff, 0xff, 0xff, 0xff]);
        want.extend_from_slice(&[0, 0, 0, 2, b'a', b'b', 0xff, 0xff]);
        assert_eq!(&bytes[..], &want[..]);
    }
}
