//! Text encodings: files arrive as UTF-8, UTF-16 or Windows-1252 (which covers
//! Latin-1's printable range); everything downstream reads UTF-8. Detection looks at the
//! first buffer: a BOM decides; else valid UTF-8 is UTF-8, and anything else is taken
//! as Windows-1252, every byte of which maps to a character, so nothing is lost.

use std::io::{self, BufRead, Read};

/// An encoding bronze transcodes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16Le,
    Utf16Be,
    Windows1252,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Utf16Le => "utf-16le",
            Encoding::Utf16Be => "utf-16be",
            Encoding::Windows1252 => "windows-1252",
        }
    }
}

/// Decides the encoding from the first bytes of a file.
pub fn detect(head: &[u8]) -> Encoding {
    if head.starts_with(&[0xff, 0xfe]) {
        return Encoding::Utf16Le;
    }
    if head.starts_with(&[0xfe, 0xff]) {
        return Encoding::Utf16Be;
    }
    // UTF-16 without a BOM: text that is mostly ASCII has a NUL in every other byte.
    let pairs = head.len() / 2;
    if pairs >= 8 {
        let zeros_at = |offset: usize| {
            head.iter()
                .skip(offset)
                .step_by(2)
                .filter(|&&b| b == 0)
                .count()
        };
        if zeros_at(1) * 10 >= pairs * 9 && zeros_at(0) == 0 {
            return Encoding::Utf16Le;
        }
        if zeros_at(0) * 10 >= pairs * 9 && zeros_at(1) == 0 {
            return Encoding::Utf16Be;
        }
    }
    if has_invalid_utf8_without_valid_multibyte(head) {
        Encoding::Windows1252
    } else {
        Encoding::Utf8
    }
}

/// Windows-1252 text has bytes above 0x7F that never form UTF-8 sequences. A buffer
/// that holds real multi-byte UTF-8 as well is UTF-8 with some bad bytes: reading it
/// as Windows-1252 would silently garble its good characters, so it stays UTF-8 and
/// its bad records are rejected.
fn has_invalid_utf8_without_valid_multibyte(mut bytes: &[u8]) -> bool {
    let mut invalid = false;
    loop {
        match std::str::from_utf8(bytes) {
            Ok(valid) => return invalid && valid.is_ascii(),
            Err(e) => {
                if !bytes[..e.valid_up_to()].is_ascii() {
                    return false;
                }
                // A character cut by the end of the buffer is not an error.
                let Some(len) = e.error_len() else {
                    return invalid;
                };
                invalid = true;
                bytes = &bytes[e.valid_up_to() + len..];
            }
        }
    }
}

/// Windows-1252's characters for 0x80..=0x9F; the five bytes it leaves undefined map
/// to the C1 controls of the same value, as the WHATWG encoding standard does.
const CP1252_HIGH: [char; 32] = [
    '\u{20AC}', '\u{81}', '\u{201A}', '\u{192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{2C6}', '\u{2030}', '\u{160}', '\u{2039}', '\u{152}', '\u{8D}', '\u{17D}', '\u{8F}',
    '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{2DC}', '\u{2122}', '\u{161}', '\u{203A}', '\u{153}', '\u{9D}', '\u{17E}', '\u{178}',
];

/// Reads `input` in `encoding` and yields UTF-8, a buffer at a time.
pub struct Transcode<R> {
    input: R,
    encoding: Encoding,
    out: Vec<u8>,
    pos: usize,
    /// A UTF-16 code unit split across input buffers, or a high surrogate awaiting
    /// its pair.
    pending: Vec<u8>,
    /// Bytes of input consumed, for error positions.
    offset: u64,
    started: bool,
}

impl<R: BufRead> Transcode<R> {
    pub fn new(input: R, encoding: Encoding) -> Self {
        Self {
            input,
            encoding,
            out: Vec::with_capacity(64 * 1024),
            pos: 0,
            pending: Vec::new(),
            offset: 0,
            started: false,
        }
    }

    fn refill(&mut self) -> io::Result<()> {
        self.out.clear();
        self.pos = 0;
        while self.out.is_empty() {
            let chunk = self.input.fill_buf()?;
            if chunk.is_empty() {
                if !self.pending.is_empty() {
                    return Err(invalid(
                        self.offset,
                        "the file ends inside a UTF-16 character",
                    ));
                }
                return Ok(());
            }
            let n = chunk.len();
            match self.encoding {
                Encoding::Windows1252 => decode_1252(chunk, &mut self.out),
                Encoding::Utf16Le | Encoding::Utf16Be => {
                    let mut bytes = std::mem::take(&mut self.pending);
                    // The file offset of `bytes[0]`: pending bytes came before the chunk.
                    let base = self.offset - bytes.len() as u64;
                    bytes.extend_from_slice(chunk);
                    let mut skip = 0;
                    if !self.started && bytes.len() >= 2 {
                        let bom: &[u8] = if self.encoding == Encoding::Utf16Le {
                            &[0xff, 0xfe]
                        } else {
                            &[0xfe, 0xff]
                        };
                        if bytes.starts_with(bom) {
                            skip = 2;
                        }
                        self.started = true;
                    }
                    let used = decode_utf16(
                        &bytes[skip..],
                        self.encoding == Encoding::Utf16Le,
                        &mut self.out,
                    )
                    .map_err(|at| {
                        invalid(
                            base + (skip + at) as u64,
                            "invalid UTF-16 (unpaired surrogate)",
                        )
                    })?;
                    self.pending = bytes[skip + used..].to_vec();
                }
                Encoding::Utf8 => self.out.extend_from_slice(chunk),
            }
            self.input.consume(n);
            self.offset += n as u64;
        }
        Ok(())
    }
}

fn invalid(offset: u64, reason: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{reason} at byte {offset}"),
    )
}

fn decode_1252(input: &[u8], out: &mut Vec<u8>) {
    let mut utf8 = [0u8; 4];
    for &b in input {
        match b {
            0x00..=0x7f => out.push(b),
            0x80..=0x9f => out.extend_from_slice(
                CP1252_HIGH[usize::from(b - 0x80)]
                    .encode_utf8(&mut utf8)
                    .as_bytes(),
            ),
            _ => out.extend_from_slice(char::from(b).encode_utf8(&mut utf8).as_bytes()),
        }
    }
}

/// Decodes whole UTF-16 characters from `input`; returns how many bytes it used (an odd
/// byte or a high surrogate at the end waits for the next buffer), or the offset of an
/// unpaired surrogate.
fn decode_utf16(input: &[u8], little: bool, out: &mut Vec<u8>) -> Result<usize, usize> {
    let unit = |i: usize| {
        let pair = [input[i], input[i + 1]];
        if little {
            u16::from_le_bytes(pair)
        } else {
            u16::from_be_bytes(pair)
        }
    };
    let mut i = 0;
    let mut utf8 = [0u8; 4];
    while i + 1 < input.len() {
        let first = unit(i);
        let (c, len) = match first {
            0xd800..=0xdbff => {
                if i + 3 >= input.len() {
                    break;
                }
                let second = unit(i + 2);
                if !(0xdc00..=0xdfff).contains(&second) {
                    return Err(i);
                }
                let code =
                    0x10000 + ((u32::from(first) - 0xd800) << 10) + (u32::from(second) - 0xdc00);
                (char::from_u32(code).ok_or(i)?, 4)
            }
            0xdc00..=0xdfff => return Err(i),
            c => (char::from_u32(u32::from(c)).ok_or(i)?, 2),
        };
        out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        i += len;
    }
    Ok(i)
}

impl<R: BufRead> Read for Transcode<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.out.len() {
            self.refill()?;
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcode(bytes: &[u8], buffer: usize) -> io::Result<String> {
        let encoding = detect(bytes);
        let input = io::BufReader::with_capacity(buffer, bytes);
        let mut text = String::new();
        Transcode::new(input, encoding).read_to_string(&mut text)?;
        Ok(text)
    }

    fn utf16(text: &str, little: bool, bom: bool) -> Vec<u8> {
        let mut bytes = Vec::new();
        if bom {
            bytes.extend_from_slice(if little { &[0xff, 0xfe] } else { &[0xfe, 0xff] });
        }
        for unit in text.encode_utf16() {
            bytes.extend_from_slice(&if little {
                unit.to_le_bytes()
            } else {
                unit.to_be_bytes()
            });
        }
        bytes
    }

    #[test]
    fn encodings_are_detected() {
        assert_eq!(detect(b"id,name\n1,caf\xc3\xa9\n"), Encoding::Utf8);
        assert_eq!(
            detect(b"id,name\n1,caf\xc3"),
            Encoding::Utf8,
            "a cut character is still UTF-8"
        );
        assert_eq!(detect(b"id,name\n1,caf\xe9\n"), Encoding::Windows1252);
        assert_eq!(
            detect(b"id,name\n1,caf\xc3\xa9\n2,caf\xe9\n"),
            Encoding::Utf8,
            "mixed stays UTF-8"
        );
        assert_eq!(
            detect(b"id,name\n1,caf\xe9\n2,caf\xc3\xa9\n"),
            Encoding::Utf8
        );
        assert_eq!(
            detect(&utf16("id,name\n1,x\n", true, true)),
            Encoding::Utf16Le
        );
        assert_eq!(
            detect(&utf16("id,name\n1,x\n", false, true)),
            Encoding::Utf16Be
        );
        assert_eq!(
            detect(&utf16("id,name\n1,x\n", true, false)),
            Encoding::Utf16Le
        );
        assert_eq!(
            detect(&utf16("id,name\n1,x\n", false, false)),
            Encoding::Utf16Be
        );
    }

    #[test]
    fn every_buffer_size_transcodes_the_same() {
        let text = "id,name\n1,café 😀 €\n2,\"naïve\"\n";
        for buffer in [1, 2, 3, 5, 64] {
            assert_eq!(
                transcode(&utf16(text, true, true), buffer).unwrap(),
                text,
                "{buffer}"
            );
            assert_eq!(
                transcode(&utf16(text, false, true), buffer).unwrap(),
                text,
                "{buffer}"
            );
        }
        assert_eq!(
            transcode(b"caf\xe9 \x80 \x93q\x94 \x81", 2).unwrap(),
            "café € “q” \u{81}"
        );
    }

    #[test]
    fn broken_utf16_is_an_error_with_its_offset() {
        let mut bytes = utf16("ab", true, true);
        bytes.extend_from_slice(&[0x00, 0xdc, b'c', 0]);
        let err = transcode(&bytes, 64).unwrap_err();
        assert!(
            err.to_string().contains("(unpaired surrogate) at byte 6"),
            "{err}"
        );
        let mut odd = utf16("ab", true, true);
        odd.push(b'c');
        assert!(transcode(&odd, 64)
            .unwrap_err()
            .to_string()
            .contains("ends inside"));
    }
}
