//! Text encodings: everything downstream reads UTF-8, so a file in another encoding is
//! decoded while it streams, with the library browsers use (`encoding_rs`), after its
//! encoding is found with the detector browsers use (`chardetng`).
//!
//! Detection looks at the first buffer. A BOM decides; valid UTF-8 (ASCII included) is
//! UTF-8; UTF-16 without a BOM shows as a NUL in every other byte. Anything else is a
//! legacy encoding, and the detector guesses which from the text's statistics and says
//! whether its guess is robust. A guess it is unsure of is reported as such, and the
//! load refuses to guess (see [`Certainty`]): loading Shift_JIS as Windows-1252 stores
//! mojibake that no later step can tell from data.

use std::fmt;
use std::io::{self, BufRead, Read};

use encoding_rs::{DecoderResult, UTF_16BE, UTF_16LE, UTF_8};

/// A text encoding bronze decodes from, by its WHATWG name (`windows-1252`,
/// `shift_jis`, `utf-16le`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Encoding(&'static encoding_rs::Encoding);

impl Encoding {
    /// UTF-8, read as it is.
    pub const UTF_8: Encoding = Encoding(UTF_8);
    /// UTF-16, little-endian.
    pub const UTF_16LE: Encoding = Encoding(UTF_16LE);
    /// UTF-16, big-endian.
    pub const UTF_16BE: Encoding = Encoding(UTF_16BE);

    /// The encoding a label names, as browsers read labels (`latin1` is
    /// `windows-1252`, `sjis` is `shift_jis`).
    pub fn parse(label: &str) -> Option<Self> {
        encoding_rs::Encoding::for_label(label.trim().as_bytes()).map(Encoding)
    }

    /// The canonical name, lower-cased: what loads record and `--encoding` takes.
    pub fn name(self) -> String {
        self.0.name().to_ascii_lowercase()
    }

    fn is_utf16(self) -> bool {
        self.0 == UTF_16LE || self.0 == UTF_16BE
    }

    /// Whether bytes must be decoded at all: UTF-8 is read as it is, and its bad
    /// bytes are bad records, never replaced.
    pub fn needs_decoding(self) -> bool {
        self.0 != UTF_8
    }

    /// Whether the file's raw bytes are text that may be checked for NULs: UTF-16's
    /// ASCII has one in every other byte.
    pub fn is_byte_text(self) -> bool {
        !self.is_utf16()
    }
}

impl fmt::Debug for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// How an encoding was known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Certainty {
    /// A BOM, valid UTF-8, or the dataset's pinned encoding.
    Certain,
    /// The detector's guess, which it calls robust.
    Confident,
    /// The detector's best guess, which it is unsure of.
    Unsure,
}

impl Certainty {
    /// The name stored in `bronze.loads.encoding_certainty`.
    pub fn name(self) -> &'static str {
        match self {
            Certainty::Certain => "certain",
            Certainty::Confident => "confident",
            Certainty::Unsure => "unsure",
        }
    }
}

/// Decides the encoding from the first bytes of a file; `whole` says they are all of
/// it, so a character cut at their end is a fault and not the buffer's edge.
pub fn detect(head: &[u8], whole: bool) -> (Encoding, Certainty) {
    if let Some((encoding, _)) = encoding_rs::Encoding::for_bom(head) {
        return (Encoding(encoding), Certainty::Certain);
    }
    if let Some(utf16) = utf16_without_bom(head) {
        return (utf16, Certainty::Certain);
    }
    if !has_invalid_utf8_without_valid_multibyte(head) {
        return (Encoding::UTF_8, Certainty::Certain);
    }
    let mut detector = chardetng::EncodingDetector::new();
    detector.feed(head, whole);
    let (guess, robust) = detector.guess_assess(None, false);
    // The detector calls most guesses robust, even on a byte or two, where any legacy
    // encoding fits (`caf\xe9` is café in Windows-1252 and cafщ in Windows-1251):
    // a guess needs some text outside ASCII to stand on.
    let evidence = head.iter().filter(|b| !b.is_ascii()).count();
    let certainty = if robust && evidence >= EVIDENCE {
        Certainty::Confident
    } else {
        Certainty::Unsure
    };
    (Encoding(guess), certainty)
}

/// Bytes outside ASCII a legacy encoding's guess must see to be trusted.
const EVIDENCE: usize = 16;

/// UTF-16 without a BOM: text that is mostly ASCII has a NUL in every other byte.
fn utf16_without_bom(head: &[u8]) -> Option<Encoding> {
    let pairs = head.len() / 2;
    if pairs < 8 {
        return None;
    }
    let zeros_at = |offset: usize| {
        head.iter()
            .skip(offset)
            .step_by(2)
            .filter(|&&b| b == 0)
            .count()
    };
    if zeros_at(1) * 10 >= pairs * 9 && zeros_at(0) == 0 {
        return Some(Encoding::UTF_16LE);
    }
    if zeros_at(0) * 10 >= pairs * 9 && zeros_at(1) == 0 {
        return Some(Encoding::UTF_16BE);
    }
    None
}

/// Legacy text has bytes above 0x7F that mostly never form UTF-8 sequences (a few
/// pairs of a double-byte encoding can, by chance). A buffer that holds more real
/// multi-byte UTF-8 than invalid bytes is UTF-8 with some bad bytes: decoding it as a
/// legacy encoding would silently garble its good characters, so it stays UTF-8 and
/// its bad records are rejected.
fn has_invalid_utf8_without_valid_multibyte(mut bytes: &[u8]) -> bool {
    let (mut invalid, mut multibyte) = (0usize, 0usize);
    let multibytes = |text: &str| text.chars().filter(|c| !c.is_ascii()).count();
    loop {
        match std::str::from_utf8(bytes) {
            Ok(valid) => return invalid > multibyte + multibytes(valid),
            Err(e) => {
                // Valid up to here, so this is `str` already.
                let valid = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
                multibyte += multibytes(valid);
                // A character cut by the end of the buffer is not an error.
                let Some(len) = e.error_len() else {
                    return invalid > multibyte;
                };
                invalid += 1;
                bytes = &bytes[e.valid_up_to() + len..];
            }
        }
    }
}

/// Reads `input` in `encoding` and yields UTF-8, a buffer at a time. A byte sequence
/// the encoding does not define is an error with its offset, never a replacement
/// character: a file that is not what it was taken for must not load as something else.
pub struct Decode<R> {
    input: R,
    decoder: encoding_rs::Decoder,
    name: String,
    out: Vec<u8>,
    pos: usize,
    /// Bytes of input consumed, for error positions.
    offset: u64,
    done: bool,
}

impl<R: BufRead> Decode<R> {
    /// Decodes `input`, which is in `encoding`.
    pub fn new(input: R, encoding: Encoding) -> Self {
        Self {
            input,
            decoder: encoding.0.new_decoder_with_bom_removal(),
            name: encoding.name(),
            out: Vec::with_capacity(64 * 1024),
            pos: 0,
            offset: 0,
            done: false,
        }
    }

    fn refill(&mut self) -> io::Result<()> {
        self.out.clear();
        self.pos = 0;
        while self.out.is_empty() && !self.done {
            let chunk = self.input.fill_buf()?;
            let last = chunk.is_empty();
            self.out.resize(self.out.capacity().max(4096), 0);
            let (result, read, written) =
                self.decoder
                    .decode_to_utf8_without_replacement(chunk, &mut self.out, last);
            self.out.truncate(written);
            self.input.consume(read);
            self.offset += read as u64;
            match result {
                DecoderResult::InputEmpty => self.done = last,
                DecoderResult::OutputFull => {}
                DecoderResult::Malformed(bad, after) => {
                    let at = self.offset - u64::from(bad) - u64::from(after);
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("byte {at} is not valid {} text", self.name),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl<R: BufRead> Read for Decode<R> {
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

    fn decode(bytes: &[u8], buffer: usize) -> io::Result<String> {
        let (encoding, _) = detect(bytes, true);
        let input = io::BufReader::with_capacity(buffer, bytes);
        let mut text = String::new();
        Decode::new(input, encoding).read_to_string(&mut text)?;
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
    fn unicode_is_known_for_certain() {
        let certain = |bytes: &[u8]| {
            let (encoding, certainty) = detect(bytes, true);
            assert_eq!(certainty, Certainty::Certain);
            encoding
        };
        assert_eq!(certain(b"id,name\n1,caf\xc3\xa9\n"), Encoding::UTF_8);
        assert_eq!(
            certain(b"id,name\n1,caf\xc3"),
            Encoding::UTF_8,
            "a cut character"
        );
        assert_eq!(
            certain(b"id,name\n1,caf\xc3\xa9\n2,caf\xe9\n"),
            Encoding::UTF_8,
            "mixed stays UTF-8, its bad records are rejected"
        );
        for (little, bom) in [(true, true), (false, true), (true, false), (false, false)] {
            let expected = if little {
                Encoding::UTF_16LE
            } else {
                Encoding::UTF_16BE
            };
            assert_eq!(certain(&utf16("id,name\n1,x\n", little, bom)), expected);
        }
    }

    #[test]
    fn every_buffer_size_decodes_the_same() {
        let text = "id,name\n1,café 😀 €\n2,\"naïve\"\n";
        for buffer in [1, 2, 3, 5, 64] {
            for little in [true, false] {
                assert_eq!(
                    decode(&utf16(text, little, true), buffer).unwrap(),
                    text,
                    "{buffer}"
                );
            }
        }
    }

    #[test]
    fn broken_text_is_an_error_with_its_offset() {
        let mut bytes = utf16("ab", true, true);
        bytes.extend_from_slice(&[0x00, 0xdc, b'c', 0]);
        let err = decode(&bytes, 64).unwrap_err();
        assert!(
            err.to_string()
                .contains("byte 6 is not valid utf-16le text"),
            "{err}"
        );
        let mut odd = utf16("ab", true, true);
        odd.push(b'c');
        assert!(
            decode(&odd, 64).is_err(),
            "a file ending inside a character"
        );
    }

    #[test]
    fn labels_name_encodings_as_browsers_read_them() {
        assert_eq!(Encoding::parse("latin1").unwrap().name(), "windows-1252");
        assert_eq!(Encoding::parse("SJIS").unwrap().name(), "shift_jis");
        assert_eq!(Encoding::parse("iso-8859-2").unwrap().name(), "iso-8859-2");
        assert_eq!(Encoding::parse("klingon"), None);
    }

    /// Real text in legacy encodings, as a CSV of a few rows: detected, and decoded to
    /// the characters written, never read as Windows-1252.
    #[test]
    fn legacy_encodings_are_detected_and_decoded_not_garbled() {
        let cases: [(&str, &str); 4] = [
            (
                "ISO-8859-2",
                "miasto,opis\nŁódź,Miasto włókniarzy w środkowej Polsce\nKraków,Dawna stolica \
                 Polski nad Wisłą\nGdańsk,Port nad Bałtykiem, Żuraw i Długi Targ\nWrocław,\
                 Miasto stu mostów nad Odrą\nPoznań,Koziołki na ratuszu, rogale świętomarcińskie\n",
            ),
            (
                "Shift_JIS",
                "都市,説明\n東京,日本の首都であり、世界最大の都市圏の一つです。\n大阪,\
                 食い倒れの街として知られる商業の中心地です。\n京都,千年の都、寺院と神社が\
                 数多く残る古都です。\n札幌,北海道の中心都市で、雪まつりが有名です。\n",
            ),
            (
                "GBK",
                "城市,说明\n北京,中华人民共和国的首都，历史悠久的文化名城。\n上海,中国最大的\
                 经济中心和国际化大都市。\n广州,华南地区的商业中心，以美食闻名。\n成都,四川省\
                 会，以熊猫和火锅闻名于世。\n",
            ),
            (
                "EUC-KR",
                "도시,설명\n서울,대한민국의 수도이며 가장 큰 도시입니다.\n부산,대한민국 제2의 \
                 도시이자 최대의 항구 도시입니다.\n대구,경상북도의 중심 도시로 사과가 유명합니다.\n\
                 인천,국제공항과 항구가 있는 관문 도시입니다.\n",
            ),
        ];
        for (label, text) in cases {
            let encoding = encoding_rs::Encoding::for_label(label.as_bytes()).unwrap();
            let (bytes, _, lossy) = encoding.encode(text);
            assert!(!lossy, "{label}");
            let (found, certainty) = detect(&bytes, true);
            assert_ne!(certainty, Certainty::Unsure, "{label}: {found:?}");
            assert_eq!(
                decode(&bytes, 7).unwrap(),
                text,
                "{label} read as {found:?}"
            );
        }
    }

    #[test]
    fn a_guess_the_detector_is_unsure_of_is_said_to_be_one() {
        for few in [&b"\xff"[..], b"\x81\x81", b"id,name\n1,caf\xe9\n"] {
            assert_eq!(detect(few, true).1, Certainty::Unsure, "{few:?}");
        }
        let french = "nom,ville\nCafé de Flore,Paris\nLa Mère Brazier,Lyon\nChez Hélène,\
                      Genève\nL'Été indien,Sète\nCrème brûlée,Nîmes\nÉcole française,Créteil\nPâtisserie Ladurée,\
                      Orléans\nThéâtre de l'Odéon,Besançon\n";
        let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(french);
        assert_eq!(
            detect(&bytes, true),
            (
                Encoding::parse("windows-1252").unwrap(),
                Certainty::Confident
            )
        );
    }
}
