//! Reading files into records: format detection, decompression, and one reader per
//! format, each producing canonical JSON per record into a reused buffer.

pub mod csv;
pub mod dialect;
pub mod encoding;
pub mod json;
pub mod ndjson;

use std::io::{self, BufRead, BufReader, Read};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use flate2::bufread::MultiGzDecoder;

pub use dialect::Dialect;

use crate::json_tape::Parsed;
use crate::jsonb_order::JsonbOrder;
use crate::limits::{Limits, Size};
pub use encoding::{Certainty, Decode, Encoding};

/// A file format bronze reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma- (or otherwise) separated values, dialect sniffed.
    Csv,
    /// Tab-separated values.
    Tsv,
    /// One JSON object per line.
    Ndjson,
    /// A JSON document: an array of objects, or one object.
    Json,
}

impl Format {
    /// The format a name (as in `bronze.datasets.format`) stands for.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "csv" => Some(Format::Csv),
            "tsv" => Some(Format::Tsv),
            "ndjson" | "jsonl" => Some(Format::Ndjson),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    /// The name stored in `bronze.datasets.format` and `bronze.loads.format`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Tsv => "tsv",
            Format::Ndjson => "ndjson",
            Format::Json => "json",
        }
    }
}

/// The text of a bad record as far as it is kept, and how long it really was.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Raw {
    /// At most [`MAX_RAW`] bytes of it, as UTF-8 (invalid bytes replaced).
    pub text: String,
    /// Its length in bytes, whole.
    pub len: u64,
}

impl Raw {
    /// Keeps the start of `bytes`, which are all of the record.
    pub fn of(bytes: &[u8]) -> Self {
        Self::cut(bytes, bytes.len() as u64)
    }

    /// Keeps the start of `bytes`, the first part of a record `len` bytes long.
    pub fn cut(bytes: &[u8], len: u64) -> Self {
        let kept = &bytes[..bytes.len().min(MAX_RAW)];
        Self {
            text: String::from_utf8_lossy(kept).into_owned(),
            len,
        }
    }
}

/// Why a file, or a record in it, could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// This record is bad; the reader has moved past it and can go on.
    #[error("line {line}: {reason}")]
    Record {
        /// The line the record starts on.
        line: u64,
        /// The lines it spans: a quote left open can swallow many.
        lines: u64,
        /// Why it is bad, for `bronze.rejects`.
        reason: String,
        /// The record's text as far as it could be read, for `bronze.rejects`.
        raw: Raw,
    },
    /// The file cannot be read past this line: permanent, retrying cannot help.
    #[error("line {line}: {reason}")]
    Malformed {
        /// The line the file breaks on.
        line: u64,
        /// Why, for the load's verdict.
        reason: String,
    },
    /// The file's name or content names no format bronze reads.
    #[error("{0}")]
    Unsupported(String),
    /// Reading the source failed (network, S3): transient.
    #[error("reading the source failed: {0}")]
    Source(#[source] io::Error),
}

impl ReadError {
    /// Classifies an I/O error met while reading line `line`: a fault of the source
    /// (tagged by [`SourceRead`]) is transient, anything else, such as a corrupt or
    /// truncated gzip stream or a bound passed, is a fault of the file.
    pub fn from_io(err: io::Error, line: u64) -> Self {
        if err.get_ref().is_some_and(|inner| inner.is::<SourceFault>()) {
            return ReadError::Source(err);
        }
        let reason = match err.kind() {
            io::ErrorKind::UnexpectedEof => "unexpected end of file (truncated?)".to_owned(),
            _ => err.to_string(),
        };
        ReadError::Malformed { line, reason }
    }

    /// Whether reading can go on past this error.
    pub fn is_record(&self) -> bool {
        matches!(self, ReadError::Record { .. })
    }

    /// Whether a retry could succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ReadError::Source(_))
    }
}

/// Marks an I/O error as the source's fault rather than the content's.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceFault(#[source] io::Error);

/// Wraps the raw object stream so that its own errors are told apart from decoding
/// errors raised above it.
pub struct SourceRead<R>(pub R);

impl<R: Read> Read for SourceRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|e| io::Error::new(e.kind(), SourceFault(e)))
    }
}

/// A reader for one file, whatever its format.
pub enum Records {
    /// CSV or TSV.
    Csv(Box<csv::CsvRecords>),
    /// NDJSON.
    Ndjson(ndjson::NdjsonRecords),
    /// A JSON document.
    Json(json::JsonRecords),
}

/// What was detected about a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detected {
    /// The format read.
    pub format: Format,
    /// Whether the bytes were gzip.
    pub gzip: bool,
    /// The encoding the text was decoded from.
    pub encoding: Encoding,
    /// How the encoding was known: a load refuses to guess one.
    pub certainty: Certainty,
    /// For CSV and TSV: the delimiter and whether the first row was a header.
    pub dialect: Option<Dialect>,
}

/// How to read a file: what its dataset pins, and the bounds of the process.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadSettings {
    /// The format, whatever the name says.
    pub format: Option<Format>,
    /// The encoding, whatever the bytes suggest.
    pub encoding: Option<Encoding>,
    /// The bounds every record and the file are read within.
    pub limits: Limits,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];

/// The raw text kept with a rejected record is cut to this many bytes.
pub const MAX_RAW: usize = 4096;

const BUFFER: usize = 64 * 1024;

/// Opens `source`, named `name` (a key or a path), as records.
///
/// gzip is recognised by its magic bytes, whatever the name says; then the encoding
/// from the text (decoded to UTF-8) unless pinned; the format from the extension
/// (under any `.gz`) unless pinned, and from the content when neither says; for CSV,
/// the dialect from the content. What the file inflates or decodes to is bounded.
pub fn open(
    source: Box<dyn Read + Send>,
    name: &str,
    settings: &ReadSettings,
) -> Result<(Records, Detected), ReadError> {
    let limits = settings.limits;
    let stored = Arc::new(AtomicU64::new(0));
    let counted = Stored {
        inner: ReadFull(source),
        bytes: Arc::clone(&stored),
    };
    let mut raw = BufReader::with_capacity(BUFFER, counted);
    let gzip = head(&mut raw)?.starts_with(GZIP_MAGIC);
    let inflated: Box<dyn Read + Send> = if gzip {
        Box::new(ReadFull(MultiGzDecoder::new(raw)))
    } else {
        Box::new(raw)
    };
    let bounded = Bounded {
        inner: inflated,
        read: 0,
        stored: gzip.then_some(stored),
        limits,
    };
    let mut text: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(BUFFER, bounded));
    let start = head(&mut text)?;
    let (encoding, certainty) = match settings.encoding {
        Some(pinned) => (pinned, Certainty::Certain),
        None => encoding::detect(start, start.len() < BUFFER),
    };
    if encoding.is_byte_text() {
        refuse_binary(start)?;
    }
    if encoding.needs_decoding() {
        text = Box::new(BufReader::with_capacity(
            BUFFER,
            ReadFull(Decode::new(text, encoding)),
        ));
    }
    let format = match settings
        .format
        .map_or_else(|| format_from_name(name), |f| Ok(Some(f)))?
    {
        Some(format) => format,
        None => sniff(head(&mut text)?),
    };
    let dialect = match format {
        Format::Csv => Some(dialect::sniff(head(&mut text)?, None)),
        Format::Tsv => Some(dialect::sniff(head(&mut text)?, Some(b'\t'))),
        Format::Ndjson | Format::Json => None,
    };
    let records = match (format, dialect) {
        (Format::Csv | Format::Tsv, Some(d)) => Records::Csv(Box::new(csv::CsvRecords::new(
            text,
            d.delimiter,
            d.header,
            &limits,
        )?)),
        (Format::Json, _) => Records::Json(json::JsonRecords::new(text, &limits)),
        _ => Records::Ndjson(ndjson::NdjsonRecords::new(text, &limits)),
    };
    let detected = Detected {
        format,
        gzip,
        encoding,
        certainty,
        dialect,
    };
    Ok((records, detected))
}

/// Counts the bytes read from the source as stored (compressed), for the gzip ratio.
struct Stored<R> {
    inner: R,
    bytes: Arc<AtomicU64>,
}

impl<R: Read> Read for Stored<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The file's text, refused past [`Limits::text_bytes`] or, for a compressed file,
/// past [`Limits::gzip_ratio`] times what was read of it: a small object that inflates
/// without end is a gzip bomb, stopped before the disk or the clock runs out.
struct Bounded {
    inner: Box<dyn Read + Send>,
    read: u64,
    /// Compressed bytes read so far, when the file is compressed.
    stored: Option<Arc<AtomicU64>>,
    limits: Limits,
}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        let limits = &self.limits;
        if self.read > limits.text_bytes {
            return Err(beyond(format!(
                "the file holds more than {} of text (BRONZE_MAX_TEXT_BYTES)",
                Size(limits.text_bytes)
            )));
        }
        if let Some(stored) = &self.stored {
            let stored = stored.load(Ordering::Relaxed);
            if self.read > Limits::RATIO_FLOOR
                && self.read > stored.saturating_mul(limits.gzip_ratio)
            {
                return Err(beyond(format!(
                    "gzip: {} compressed bytes inflate to more than {} times their size \
                     (a gzip bomb?; BRONZE_MAX_GZIP_RATIO raises the bound)",
                    stored, limits.gzip_ratio
                )));
            }
        }
        Ok(n)
    }
}

fn beyond(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason)
}

/// Line breaks in `bytes`, for the readers' line numbers.
fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Text has no NUL bytes (outside UTF-16): a file that does is binary, whatever its
/// name, and loading it as text would make garbage rows out of it.
fn refuse_binary(head: &[u8]) -> Result<(), ReadError> {
    const KNOWN: [(&[u8], &str); 3] = [
        (b"PK\x03\x04", "a zip archive"),
        (b"PAR1", "a Parquet file"),
        (b"\x89PNG", "a PNG image"),
    ];
    let what = KNOWN
        .iter()
        .find(|(magic, _)| head.starts_with(magic))
        .map(|(_, what)| *what);
    let what = match (what, head.contains(&0)) {
        (Some(what), _) => what,
        (None, true) => "binary data (it holds NUL bytes)",
        (None, false) => return Ok(()),
    };
    Err(ReadError::Malformed {
        line: 1,
        reason: format!(
            "{what}, not text: bronze reads CSV, TSV, JSON and NDJSON, optionally gzip-compressed"
        ),
    })
}

/// Fills each read as far as the stream allows: a network stream may hand over a few
/// bytes at a time, and detection (gzip magic, BOMs, encoding, dialect) looks at the
/// first buffer, which must then hold the start of the file, not its first packet.
struct ReadFull<R>(R);

impl<R: Read> Read for ReadFull<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.0.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Hand over what was read; the error comes back on the next read.
                Err(_) if filled > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(filled)
    }
}

/// The buffered start of the stream, a full buffer unless the file is shorter.
fn head<R: BufRead + ?Sized>(reader: &mut R) -> Result<&[u8], ReadError> {
    reader.fill_buf().map_err(|e| ReadError::from_io(e, 1))
}

fn format_from_name(name: &str) -> Result<Option<Format>, ReadError> {
    let file = name.rsplit('/').next().unwrap_or(name).to_ascii_lowercase();
    let file = file.strip_suffix(".gz").unwrap_or(&file);
    let ext = file.rsplit_once('.').map(|(_, ext)| ext).unwrap_or("");
    Ok(match ext {
        "csv" => Some(Format::Csv),
        "tsv" | "tab" => Some(Format::Tsv),
        "ndjson" | "jsonl" => Some(Format::Ndjson),
        "json" => Some(Format::Json),
        _ => None,
    })
}

/// Decides the format of a file with no telling extension from its first bytes: JSON
/// if it opens like JSON (NDJSON when its first line is a whole object), else
/// delimited text.
fn sniff(head: &[u8]) -> Format {
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let start = text
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(text.len());
    let text = &text[start..];
    match text.first() {
        Some(b'[') => Format::Json,
        // A first line longer than the head is read as NDJSON: one long line is one
        // record either way, and JSON is chosen only on a whole line that does not close.
        Some(b'{') => match text.iter().position(|&b| b == b'\n') {
            Some(end) if !text[..end].trim_ascii_end().ends_with(b"}") => Format::Json,
            _ => Format::Ndjson,
        },
        _ => Format::Csv,
    }
}

impl Records {
    /// A delimited file's column names, in file order.
    pub fn header(&self) -> Option<&[String]> {
        match self {
            Records::Csv(r) => Some(r.names()),
            Records::Ndjson(_) | Records::Json(_) => None,
        }
    }

    /// For a delimited file: where each column's value is in the canonical JSON of the
    /// record last returned, in file order.
    pub fn value_spans(&self) -> Option<&[Range<usize>]> {
        match self {
            Records::Csv(r) => Some(r.values()),
            Records::Ndjson(_) | Records::Json(_) => None,
        }
    }

    /// The text to send the server as the jsonb of the record last returned, whose
    /// canonical JSON is `json`: the same value, with keys in the order jsonb sorts
    /// them into (see [`crate::jsonb_order`]). A delimited file knows its columns'
    /// order once; a JSON record's members are found in its text.
    pub fn jsonb_text<'a>(&self, json: &'a [u8], order: &'a mut JsonbOrder) -> &'a [u8] {
        match self {
            Records::Csv(r) => {
                let text = order.text();
                r.write_jsonb_order(json, text);
                text
            }
            Records::Ndjson(_) | Records::Json(_) => order.reorder(json),
        }
    }

    /// The lines read so far: all of the file's, once it is read to its end.
    pub fn lines(&self) -> u64 {
        match self {
            Records::Csv(r) => r.lines(),
            Records::Ndjson(r) => r.lines(),
            Records::Json(r) => r.lines(),
        }
    }

    /// Reads the next record as canonical JSON into `out` (cleared first) and returns
    /// its line number, or `None` at the end of the file. After a
    /// [`ReadError::Record`] the next call reads the following record.
    pub fn next_into(&mut self, out: &mut Vec<u8>) -> Result<Option<u64>, ReadError> {
        out.clear();
        match self {
            Records::Csv(r) => r.next_into(out),
            Records::Ndjson(r) => r.next_into(out),
            Records::Json(r) => r.next_into(out),
        }
    }

    /// [`Records::next_into`] for inference alone, which reads a delimited record's
    /// fields and a JSON record's members ([`crate::infer::Inferrer::observe_next`]):
    /// no canonical JSON is written, except a delimited record's to name its fault, if
    /// it has one; a JSON record is parsed into a tape ([`Records::parsed`]). The same
    /// records, the same rejects.
    pub fn next_for_inference(&mut self, out: &mut Vec<u8>) -> Result<Option<u64>, ReadError> {
        out.clear();
        match self {
            Records::Csv(r) => r.next_fields(out),
            Records::Ndjson(r) => r.next_parsed(),
            Records::Json(r) => r.next_parsed(),
        }
    }

    /// The JSON record [`Records::next_for_inference`] read last, parsed; `None` for a
    /// delimited file, and after [`Records::next_into`].
    pub fn parsed(&self) -> Option<Parsed<'_>> {
        match self {
            Records::Csv(_) => None,
            Records::Ndjson(r) => r.parsed(),
            Records::Json(r) => r.parsed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_decide_the_format_and_content_decides_otherwise() {
        assert_eq!(format_from_name("a/b/x.CSV.gz").unwrap(), Some(Format::Csv));
        assert_eq!(format_from_name("x.tsv").unwrap(), Some(Format::Tsv));
        assert_eq!(format_from_name("x.jsonl").unwrap(), Some(Format::Ndjson));
        assert_eq!(format_from_name("dir.v2/data").unwrap(), None);
        assert_eq!(format_from_name("x.json.gz").unwrap(), Some(Format::Json));
        assert_eq!(sniff(b"  {\"a\":1}\n{\"a\":2}\n"), Format::Ndjson);
        assert_eq!(sniff(b"{\n  \"a\": 1\n}\n"), Format::Json);
        assert_eq!(sniff(b"\n[{\"a\":1}]"), Format::Json);
        assert_eq!(
            sniff(b"{\"a\":\"a very long first line cut by the end of the head"),
            Format::Ndjson
        );
        assert_eq!(
            sniff(b"a\tb\n1\t2\n"),
            Format::Csv,
            "the dialect sniffer finds the tab"
        );
        assert_eq!(sniff(b"a,b\n"), Format::Csv);
    }

    /// Hands over one byte per read, as a slow network stream may.
    struct Trickle(std::io::Cursor<Vec<u8>>);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let end = buf.len().min(1);
            self.0.read(&mut buf[..end])
        }
    }

    #[test]
    fn detection_sees_the_start_of_the_file_however_it_trickles_in() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, b"a;b\ncaf\xe9;2\n").unwrap();
        let bytes = gz.finish().unwrap();
        let (mut records, detected) = open(
            Box::new(Trickle(std::io::Cursor::new(bytes))),
            "x",
            &Default::default(),
        )
        .unwrap();
        assert!(detected.gzip);
        assert_eq!(detected.encoding.name(), "windows-1252");
        assert_eq!(detected.dialect.map(|d| d.delimiter), Some(b';'));
        let mut out = Vec::new();
        records.next_into(&mut out).unwrap();
        assert_eq!(out, r#"{"a":"café","b":"2"}"#.as_bytes());
    }

    #[test]
    fn source_faults_are_transient_and_content_faults_are_not() {
        let fault = io::Error::other(SourceFault(io::Error::other("reset")));
        assert!(ReadError::from_io(fault, 3).is_transient());
        let corrupt = io::Error::new(io::ErrorKind::InvalidInput, "corrupt deflate stream");
        assert!(!ReadError::from_io(corrupt, 3).is_transient());
    }
}
