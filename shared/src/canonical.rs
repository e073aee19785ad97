//! Canonical JSON: the one text a record hashes to, whatever its source layout.
//!
//! Object keys sorted by code point (byte order of UTF-8 is code point order), no
//! insignificant whitespace, numbers exactly as in the source text (so `1.0` and `1`
//! stay different values, and nothing is rounded through `f64`), strings escaped
//! minimally. Duplicate keys and `\u0000` are refused: the first has no single meaning,
//! and PostgreSQL's `jsonb` cannot store the second.

use std::ops::Range;

/// Nesting deeper than this is refused instead of overflowing the stack.
pub const MAX_DEPTH: usize = 128;

/// PostgreSQL's numeric (which jsonb numbers are) holds at most this many digits before
/// the decimal point and after it. A record with a larger number is refused here, with
/// its line, rather than failing the whole load in the database.
const NUMERIC_MAX_INTEGER_DIGITS: i64 = 131_072;
const NUMERIC_MAX_SCALE: i64 = 16_383;

/// Why a JSON text or value cannot be made canonical; `offset` is a byte offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} at byte {offset}")]
pub struct JsonError {
    /// Byte offset in the input where the fault is.
    pub offset: usize,
    /// What is wrong there, for the reject's reason.
    pub reason: String,
}

/// Why a text value cannot be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("invalid UTF-8 at byte {0} of the value")]
    /// Not UTF-8 from this byte of the value on.
    InvalidUtf8(usize),
    #[error("NUL character (U+0000), which PostgreSQL jsonb cannot store")]
    /// A NUL character, which PostgreSQL's text and jsonb cannot store.
    Nul,
}

/// Appends `text` as a JSON string, escaping only what JSON requires.
pub fn write_str(out: &mut Vec<u8>, text: &[u8]) -> Result<(), TextError> {
    if let Err(e) = std::str::from_utf8(text) {
        return Err(TextError::InvalidUtf8(e.valid_up_to()));
    }
    write_valid_str(out, text)
}

/// [`write_str`] for text already checked to be UTF-8 (a whole delimited record is
/// checked at once).
pub fn write_valid_str(out: &mut Vec<u8>, text: &[u8]) -> Result<(), TextError> {
    out.push(b'"');
    write_escaped(out, text)?;
    out.push(b'"');
    Ok(())
}

/// Escapes already-validated UTF-8, copying unescaped runs in one go.
fn write_escaped(out: &mut Vec<u8>, text: &[u8]) -> Result<(), TextError> {
    let mut run = 0;
    for (i, &b) in text.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0 => return Err(TextError::Nul),
            0x01..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&text[run..i]);
        if escape.is_empty() {
            out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
        } else {
            out.extend_from_slice(escape);
        }
        run = i + 1;
    }
    out.extend_from_slice(&text[run..]);
    Ok(())
}

struct Member {
    key: Range<usize>,
    value: Range<usize>,
}

/// `bytes` without the JSON whitespace at its end (space, tab, LF, CR: not the form
/// feed and vertical tab that [`u8::is_ascii_whitespace`] also takes).
pub fn trim_json_end(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|b| !is_json_space(*b))
        .map_or(0, |at| at + 1);
    &bytes[..end]
}

/// Whether `byte` is whitespace between JSON tokens.
pub fn is_json_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

/// Turns JSON text into canonical JSON. Keep one per reader: its buffers are reused
/// from record to record, so the hot loop does not allocate.
#[derive(Default)]
pub struct Canonicalizer {
    keys: Vec<u8>,
    members: Vec<Member>,
    tmp: Vec<u8>,
}

/// The reading both parsers share, this module's and [`crate::json_tape`]'s: the same
/// tokens refused at the same byte with the same words, so that a record the tape
/// takes is one canonicalising takes, and a record it refuses is refused alike.
pub(crate) struct Scan<'a> {
    pub(crate) input: &'a [u8],
    pub(crate) pos: usize,
}

/// Refuses `input` unless it is UTF-8, as both parsers do before reading it.
pub(crate) fn check_utf8(input: &[u8]) -> Result<(), JsonError> {
    match std::str::from_utf8(input) {
        Ok(_) => Ok(()),
        Err(e) => Err(JsonError {
            offset: e.valid_up_to(),
            reason: "invalid UTF-8".into(),
        }),
    }
}

impl<'a> Scan<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self { input, pos: 0 }
    }

    pub(crate) fn err(&self, reason: impl Into<String>) -> JsonError {
        JsonError {
            offset: self.pos,
            reason: reason.into(),
        }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    pub(crate) fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    pub(crate) fn expect(&mut self, byte: u8) -> Result<(), JsonError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(&format!("'{}'", byte as char)))
        }
    }

    /// After an item or a member: steps over the `,` before the next one (`false`) or
    /// the `close` that ends the array or object (`true`).
    pub(crate) fn separator(&mut self, close: u8) -> Result<bool, JsonError> {
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(false)
            }
            Some(b) if b == close => {
                self.pos += 1;
                Ok(true)
            }
            _ if close == b']' => Err(self.unexpected("',' or ']'")),
            _ => Err(self.unexpected("',' or '}'")),
        }
    }

    pub(crate) fn unexpected(&self, wanted: &str) -> JsonError {
        match self.peek() {
            None => self.err(format!("unexpected end of input, expected {wanted}")),
            Some(b) if b.is_ascii_graphic() => {
                self.err(format!("unexpected '{}', expected {wanted}", b as char))
            }
            Some(b) => self.err(format!("unexpected byte 0x{b:02x}, expected {wanted}")),
        }
    }

    /// Refuses to open one more level below `depth` levels.
    pub(crate) fn enter(&self, depth: usize) -> Result<(), JsonError> {
        if depth == MAX_DEPTH {
            return Err(self.err(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    /// Reads `word` (`true`, `false` or `null`) at `pos`.
    pub(crate) fn literal(&mut self, word: &[u8]) -> Result<(), JsonError> {
        if self.input[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.unexpected("a JSON value"))
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Reads the number at `pos`; returns where its text is, refused when PostgreSQL
    /// could not store it.
    pub(crate) fn number(&mut self) -> Result<Range<usize>, JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        let int_digits = self.digits();
        match int_digits {
            0 => return Err(self.unexpected("a digit")),
            n if n > 1 && self.input[int_start] == b'0' => {
                return Err(JsonError {
                    offset: int_start,
                    reason: "leading zero in a number".into(),
                })
            }
            _ => {}
        }
        let mut frac_digits = 0;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            frac_digits = self.digits();
            if frac_digits == 0 {
                return Err(self.unexpected("a digit after '.'"));
            }
        }
        let mut exponent: i64 = 0;
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            let negative = self.peek() == Some(b'-');
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            let exp_start = self.pos;
            if self.digits() == 0 {
                return Err(self.unexpected("a digit in the exponent"));
            }
            exponent = self.input[exp_start..self.pos].iter().fold(0i64, |e, d| {
                e.saturating_mul(10).saturating_add(i64::from(d - b'0'))
            });
            if negative {
                exponent = -exponent;
            }
        }
        // A zero integer part adds no digit; zero fits at any positive exponent (but
        // PostgreSQL still counts its scale: `0.0e-16383` overflows).
        let significant = if self.input[int_start] == b'0' {
            0
        } else {
            int_digits
        };
        let zero = self.input[int_start..self.pos]
            .iter()
            .take_while(|b| !matches!(b, b'e' | b'E'))
            .all(|b| matches!(b, b'0' | b'.'));
        let before_point = (significant as i64).saturating_add(exponent);
        let after_point = (frac_digits as i64).saturating_sub(exponent);
        if (!zero && before_point > NUMERIC_MAX_INTEGER_DIGITS) || after_point > NUMERIC_MAX_SCALE {
            return Err(JsonError {
                offset: start,
                reason: format!(
                    "number {} is beyond what PostgreSQL can store (jsonb holds up to \
                     {NUMERIC_MAX_INTEGER_DIGITS} digits before the point and \
                     {NUMERIC_MAX_SCALE} after)",
                    String::from_utf8_lossy(&self.input[start..self.pos.min(start + 40)])
                ),
            });
        }
        Ok(start..self.pos)
    }

    /// Reads the rest of a string whose content started at `run` (`pos` is at or past
    /// it, with nothing but plain bytes between) and appends its content to `out`:
    /// minimally escaped, or with `DECODED` as the text it stands for.
    pub(crate) fn string_from<const DECODED: bool>(
        &mut self,
        mut run: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), JsonError> {
        loop {
            let Some(b) = self.peek() else {
                return Err(self.err("unterminated string"));
            };
            match b {
                b'"' => {
                    out.extend_from_slice(&self.input[run..self.pos]);
                    self.pos += 1;
                    return Ok(());
                }
                b'\\' => {
                    out.extend_from_slice(&self.input[run..self.pos]);
                    let decoded = self.escape()?;
                    let mut utf8 = [0; 4];
                    let bytes = decoded.encode_utf8(&mut utf8).as_bytes();
                    if DECODED {
                        out.extend_from_slice(bytes);
                    } else {
                        // `escape` refused the NUL, the one character that cannot be written.
                        let _ = write_escaped(out, bytes);
                    }
                    run = self.pos;
                }
                0x00..=0x1f => return Err(self.err("control character in a string")),
                _ => self.pos += 1,
            }
        }
    }

    /// Reads the escape at `pos` (a backslash) and returns the character it stands for.
    fn escape(&mut self) -> Result<char, JsonError> {
        self.pos += 1;
        let Some(b) = self.peek() else {
            return Err(self.err("unterminated string"));
        };
        self.pos += 1;
        let decoded = match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => self.unicode_escape()?,
            _ => {
                self.pos -= 1;
                return Err(self.err(format!("invalid escape '\\{}'", b as char)));
            }
        };
        if decoded == '\0' {
            return Err(self.err("\\u0000, which PostgreSQL jsonb cannot store"));
        }
        Ok(decoded)
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self
            .input
            .get(self.pos..self.pos + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u32::from_str_radix(d, 16).ok())
            .ok_or_else(|| self.err("invalid \\u escape"))?;
        self.pos += 4;
        Ok(digits)
    }

    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let first = self.hex4()?;
        let code = match first {
            0xd800..=0xdbff => {
                if !self.input[self.pos..].starts_with(b"\\u") {
                    return Err(self.err("lone surrogate in \\u escape"));
                }
                self.pos += 2;
                let low = self.hex4()?;
                if !(0xdc00..=0xdfff).contains(&low) {
                    return Err(self.err("invalid low surrogate in \\u escape"));
                }
                0x10000 + ((first - 0xd800) << 10) + (low - 0xdc00)
            }
            0xdc00..=0xdfff => return Err(self.err("lone surrogate in \\u escape")),
            c => c,
        };
        char::from_u32(code).ok_or_else(|| self.err("invalid \\u escape"))
    }

    /// Refuses what follows the value, whitespace aside.
    pub(crate) fn end(&mut self) -> Result<(), JsonError> {
        self.skip_ws();
        if self.pos < self.input.len() {
            return Err(self.err("unexpected data after the JSON value"));
        }
        Ok(())
    }
}

struct Parser<'a, 'c> {
    s: Scan<'a>,
    depth: usize,
    c: &'c mut Canonicalizer,
}

impl Canonicalizer {
    /// Appends the canonical form of the single JSON value in `input` to `out`.
    pub fn canonicalize(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), JsonError> {
        check_utf8(input)?;
        self.keys.clear();
        self.members.clear();
        let mut p = Parser {
            s: Scan::new(input),
            depth: 0,
            c: self,
        };
        p.s.skip_ws();
        p.value(out)?;
        p.s.end()
    }
}

impl Parser<'_, '_> {
    fn value(&mut self, out: &mut Vec<u8>) -> Result<(), JsonError> {
        match self.s.peek() {
            Some(b'{') => self.nested(out, Self::object),
            Some(b'[') => self.nested(out, Self::array),
            Some(b'"') => {
                out.push(b'"');
                self.s.pos += 1;
                self.s.string_from::<false>(self.s.pos, out)?;
                out.push(b'"');
                Ok(())
            }
            Some(b'-' | b'0'..=b'9') => {
                let number = self.s.number()?;
                out.extend_from_slice(&self.s.input[number]);
                Ok(())
            }
            Some(b't') => self.literal(out, b"true"),
            Some(b'f') => self.literal(out, b"false"),
            Some(b'n') => self.literal(out, b"null"),
            _ => Err(self.s.unexpected("a JSON value")),
        }
    }

    fn nested(
        &mut self,
        out: &mut Vec<u8>,
        parse: fn(&mut Self, &mut Vec<u8>) -> Result<(), JsonError>,
    ) -> Result<(), JsonError> {
        self.s.enter(self.depth)?;
        self.depth += 1;
        parse(self, out)?;
        self.depth -= 1;
        Ok(())
    }

    fn literal(&mut self, out: &mut Vec<u8>, word: &[u8]) -> Result<(), JsonError> {
        self.s.literal(word)?;
        out.extend_from_slice(word);
        Ok(())
    }

    fn array(&mut self, out: &mut Vec<u8>) -> Result<(), JsonError> {
        self.s.pos += 1;
        out.push(b'[');
        self.s.skip_ws();
        if self.s.peek() == Some(b']') {
            self.s.pos += 1;
            out.push(b']');
            return Ok(());
        }
        loop {
            self.s.skip_ws();
            self.value(out)?;
            self.s.skip_ws();
            if self.s.separator(b']')? {
                out.push(b']');
                return Ok(());
            }
            out.push(b',');
        }
    }

    fn object(&mut self, out: &mut Vec<u8>) -> Result<(), JsonError> {
        let open = self.s.pos;
        self.s.pos += 1;
        let start = out.len();
        let first_member = self.c.members.len();
        let first_key = self.c.keys.len();
        self.s.skip_ws();
        if self.s.peek() == Some(b'}') {
            self.s.pos += 1;
            out.extend_from_slice(b"{}");
            return Ok(());
        }
        loop {
            self.s.skip_ws();
            if self.s.peek() != Some(b'"') {
                return Err(self.s.unexpected("a string key"));
            }
            // Keys are kept as the text they stand for: they sort by code point.
            let key_start = self.c.keys.len();
            self.s.pos += 1;
            self.s.string_from::<true>(self.s.pos, &mut self.c.keys)?;
            let key = key_start..self.c.keys.len();
            self.s.skip_ws();
            self.s.expect(b':')?;
            self.s.skip_ws();
            let value_start = out.len();
            self.value(out)?;
            let value = value_start..out.len();
            self.c.members.push(Member { key, value });
            self.s.skip_ws();
            if self.s.separator(b'}')? {
                break;
            }
        }
        self.sort_members(out, start, first_member, open)?;
        self.c.members.truncate(first_member);
        self.c.keys.truncate(first_key);
        Ok(())
    }

    /// Rewrites `out[start..]`, which holds the member values in source order, as the
    /// canonical object with its members sorted by key.
    fn sort_members(
        &mut self,
        out: &mut Vec<u8>,
        start: usize,
        first_member: usize,
        open: usize,
    ) -> Result<(), JsonError> {
        let c = &mut *self.c;
        let keys = &c.keys;
        let members = &mut c.members[first_member..];
        members.sort_by(|a, b| keys[a.key.clone()].cmp(&keys[b.key.clone()]));
        if let Some(pair) = members
            .windows(2)
            .find(|w| keys[w[0].key.clone()] == keys[w[1].key.clone()])
        {
            return Err(duplicate_key(open, &keys[pair[0].key.clone()]));
        }
        let tmp = &mut c.tmp;
        tmp.clear();
        tmp.push(b'{');
        for (i, m) in members.iter().enumerate() {
            if i > 0 {
                tmp.push(b',');
            }
            tmp.push(b'"');
            // Keys were decoded from valid JSON without NUL, so they re-escape without fault.
            let _ = write_escaped(tmp, &keys[m.key.clone()]);
            tmp.extend_from_slice(b"\":");
            tmp.extend_from_slice(&out[m.value.clone()]);
        }
        tmp.push(b'}');
        out.truncate(start);
        out.extend_from_slice(tmp);
        Ok(())
    }
}

/// The refusal of the object that opens at `open` for holding `key` twice.
pub(crate) fn duplicate_key(open: usize, key: &[u8]) -> JsonError {
    JsonError {
        offset: open,
        reason: format!(
            "duplicate key \"{}\" in object",
            String::from_utf8_lossy(key)
        ),
    }
}

/// Undoes [`write_escaped`] on its own output.
pub fn unescape_into(escaped: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < escaped.len() {
        let b = escaped[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let (byte, len) = match escaped.get(i + 1) {
            Some(b'n') => (b'\n', 2),
            Some(b'r') => (b'\r', 2),
            Some(b't') => (b'\t', 2),
            Some(b'b') => (0x08, 2),
            Some(b'f') => (0x0c, 2),
            Some(b'u') => {
                // Only control characters are written as \u00XX, so two hex digits hold them.
                let hex = escaped.get(i + 4..i + 6).unwrap_or(b"00");
                let digits = std::str::from_utf8(hex).unwrap_or("00");
                (u8::from_str_radix(digits, 16).unwrap_or(0), 6)
            }
            Some(&other) => (other, 2),
            None => (b'\\', 1),
        };
        out.push(byte);
        i += len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> Result<String, JsonError> {
        let mut out = Vec::new();
        Canonicalizer::default().canonicalize(text.as_bytes(), &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn keys_are_sorted_and_whitespace_dropped() {
        assert_eq!(
            canon(r#" { "b" : 1 , "a" : { "z" : [ 1 , 2.50 , -0.1e+3 ] , "y" : null } } "#)
                .unwrap(),
            r#"{"a":{"y":null,"z":[1,2.50,-0.1e+3]},"b":1}"#
        );
    }

    #[test]
    fn numbers_postgresql_cannot_store_are_refused() {
        for fits in [
            "1e-16383",
            "1e131071",
            "12345e131067",
            "0.5",
            "-1E+3",
            "0e999999",
            "0.5e131072",
        ] {
            assert_eq!(canon(fits).unwrap(), fits);
        }
        for overflows in [
            "1e-16384",
            "1e131072",
            "0.0e-16383",
            "0.5e-16383",
            "12345e131068",
            "1e99999999999999999999",
        ] {
            let e = canon(overflows).unwrap_err();
            assert!(
                e.reason.contains("beyond what PostgreSQL can store"),
                "{overflows}: {e:?}"
            );
        }
    }

    #[test]
    fn keys_sort_by_code_point_not_by_escape() {
        assert_eq!(
            canon(r#"{"\u00e9":1,"z":2,"\"":3}"#).unwrap(),
            r#"{"\"":3,"z":2,"é":1}"#
        );
    }

    #[test]
    fn strings_are_escaped_minimally() {
        assert_eq!(
            canon(r#"["\u0041\/\u00e9\n\u0001\ud83d\ude00"]"#).unwrap(),
            "[\"A/é\\n\\u0001😀\"]"
        );
        let mut out = Vec::new();
        write_str(&mut out, "a\"b\\c\td".as_bytes()).unwrap();
        assert_eq!(out, br#""a\"b\\c\td""#);
    }

    #[test]
    fn bad_json_is_refused_with_its_position() {
        let err = canon(r#"{"a":1,}"#).unwrap_err();
        assert_eq!(
            (err.offset, err.reason.as_str()),
            (7, "unexpected '}', expected a string key")
        );
        assert!(canon(r#"{"a":1,"a":2}"#)
            .unwrap_err()
            .reason
            .contains("duplicate key \"a\""));
        assert!(canon(r#"["\u0000"]"#).is_err());
        assert!(canon("[01]").is_err());
        assert!(canon("[1.]").is_err());
        assert!(canon(r#"["\ud800"]"#).is_err());
        assert!(canon("{\"a\":1} x").is_err());
        assert_eq!(
            canon("[\"a\u{1}\"]").unwrap_err().reason,
            "control character in a string"
        );
    }

    #[test]
    fn deep_nesting_is_refused_without_overflow() {
        let deep = "[".repeat(100_000);
        assert!(canon(&deep).unwrap_err().reason.contains("nesting deeper"));
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(canon(&ok).is_ok());
    }

    #[test]
    fn text_values_must_be_utf8_without_nul() {
        let mut out = Vec::new();
        assert_eq!(
            write_str(&mut out, b"ab\xffc"),
            Err(TextError::InvalidUtf8(2))
        );
        assert_eq!(write_str(&mut out, b"a\0"), Err(TextError::Nul));
    }
}

/// The top-level members of a canonical JSON object, as (escaped key, value text).
///
/// Only for text this module wrote: it is compact and valid, so members can be found
/// by skipping values without a full parse.
/// The text of a canonical JSON string value (quotes included), unescaped. Most strings
/// hold no escape: they are read in place, and only the others copied into `scratch`.
/// `None` when `value` is not a string.
pub fn string_text<'a>(value: &'a [u8], scratch: &'a mut Vec<u8>) -> Option<&'a str> {
    let content = value.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    let bytes = if content.contains(&b'\\') {
        scratch.clear();
        unescape_into(content, scratch);
        &scratch[..]
    } else {
        content
    };
    // Canonical JSON is UTF-8, and unescaping keeps it so.
    std::str::from_utf8(bytes).ok()
}

/// The members of a canonical JSON object, in order, without parsing it again: keys and values are read off it for record keys and checks.
pub fn members(json: &[u8]) -> Members<'_> {
    Members { json, pos: 1 }
}

/// Iterator over `(escaped key, value)` of a canonical JSON object.
pub struct Members<'a> {
    json: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Members<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.json.get(self.pos) != Some(&b'"') {
            return None;
        }
        let key_end = skip_string(self.json, self.pos);
        let key = &self.json[self.pos + 1..key_end - 1];
        let value_start = key_end + 1;
        let value_end = skip_value(self.json, value_start);
        self.pos = value_end + 1;
        Some((key, &self.json[value_start..value_end]))
    }
}

/// The index just past the string that opens at `at`.
pub(crate) fn skip_string(json: &[u8], at: usize) -> usize {
    let mut i = at + 1;
    while i < json.len() {
        match json[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    json.len()
}

/// The index just past the value that starts at `at`.
pub(crate) fn skip_value(json: &[u8], at: usize) -> usize {
    let mut depth = 0usize;
    let mut i = at;
    while i < json.len() {
        match json[i] {
            b'"' => {
                i = skip_string(json, i);
                if depth == 0 {
                    return i;
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth == 0 => return i,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            b',' if depth == 0 => return i,
            _ => {}
        }
        i += 1;
    }
    json.len()
}

/// The elements of a canonical JSON array.
pub fn array_items(json: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut pos = 1;
    std::iter::from_fn(move || {
        if pos >= json.len() || json[pos] == b']' {
            return None;
        }
        let end = skip_value(json, pos);
        let item = &json[pos..end];
        pos = end + 1;
        Some(item)
    })
}

/// Escapes `text` as it appears between the quotes of canonical JSON.
pub fn escaped(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    // A `&str` is UTF-8; only NUL can fail, and a NUL name can never match a key.
    let _ = write_escaped(&mut out, text.as_bytes());
    out
}

#[cfg(test)]
mod member_tests {
    use super::*;

    #[test]
    fn members_are_found_by_skipping_values() {
        let json = br#"{"a":{"x":[1,"]}"]},"b\"c":"v,}","d":[],"e":-1.5e3,"f":null}"#;
        let found: Vec<(String, String)> = members(json)
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).into(),
                    String::from_utf8_lossy(v).into(),
                )
            })
            .collect();
        let want = [
            ("a", r#"{"x":[1,"]}"]}"#),
            ("b\\\"c", r#""v,}""#),
            ("d", "[]"),
            ("e", "-1.5e3"),
            ("f", "null"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(found, want);
        assert_eq!(members(b"{}").count(), 0);
        let items: Vec<&[u8]> = array_items(br#"[1,"a,]",[2,3],{"x":[]}]"#).collect();
        assert_eq!(
            items,
            vec![&b"1"[..], br#""a,]""#, b"[2,3]", br#"{"x":[]}"#]
        );
        assert_eq!(array_items(b"[]").count(), 0);
        assert_eq!(escaped("b\"c"), b"b\\\"c");
    }
}
