//! Reading files into records: format detection, decompression, and one reader per
//! format, each producing canonical JSON per record into a reused buffer.

pub mod csv;
pub mod ndjson;

use std::io::{self, BufRead, BufReader, Read};

use flate2::bufread::MultiGzDecoder;

/// A file format bronze reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Tsv,
    Ndjson,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Tsv => "tsv",
            Format::Ndjson => "ndjson",
        }
    }
}

/// Why a file, or a record in it, could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// This record is bad; the reader has moved past it and can go on.
    #[error("line {line}: {reason}")]
    Record {
        line: u64,
        reason: String,
        /// The record's text as far as it could be read, for `bronze.rejects`.
        raw: String,
    },
    /// The file cannot be read past this line: permanent, retrying cannot help.
    #[error("line {line}: {reason}")]
    Malformed { line: u64, reason: String },
    /// The file's name or content names no format bronze reads.
    #[error("{0}")]
    Unsupported(String),
    /// Reading the source failed (network, S3): transient.
    #[error("reading the source failed: {0}")]
    Source(io::Error),
}

impl ReadError {
    /// Classifies an I/O error met while reading line `line`: a fault of the source
    /// (tagged by [`SourceRead`]) is transient, anything else, such as a corrupt or
    /// truncated gzip stream, is a fault of the file.
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
pub struct SourceFault(io::Error);

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
    Csv(Box<csv::CsvRecords>),
    Ndjson(ndjson::NdjsonRecords),
}

/// What was detected about a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detected {
    pub format: Format,
    pub gzip: bool,
}

/// The raw text kept with a rejected record is cut to this many bytes.
pub const MAX_RAW: usize = 4096;

/// The text of a bad record as far as it can be shown, cut to [`MAX_RAW`].
pub fn raw_text(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(MAX_RAW)];
    String::from_utf8_lossy(cut).into_owned()
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];

/// Opens `source`, named `name` (a key or a path), as records.
///
/// gzip is recognised by its magic bytes, whatever the name says; the format comes
/// from the extension (under any `.gz`), and from the content when there is none.
pub fn open(source: Box<dyn Read + Send>, name: &str) -> Result<(Records, Detected), ReadError> {
    let mut raw = BufReader::with_capacity(64 * 1024, source);
    let gzip = raw
        .fill_buf()
        .map_err(|e| ReadError::from_io(e, 1))?
        .starts_with(GZIP_MAGIC);
    let mut text: Box<dyn BufRead + Send> = if gzip {
        Box::new(BufReader::with_capacity(
            64 * 1024,
            MultiGzDecoder::new(raw),
        ))
    } else {
        Box::new(raw)
    };
    let format = match format_from_name(name)? {
        Some(format) => format,
        None => sniff(text.fill_buf().map_err(|e| ReadError::from_io(e, 1))?),
    };
    let records = match format {
        Format::Csv => Records::Csv(Box::new(csv::CsvRecords::new(text, b',')?)),
        Format::Tsv => Records::Csv(Box::new(csv::CsvRecords::new(text, b'\t')?)),
        Format::Ndjson => Records::Ndjson(ndjson::NdjsonRecords::new(text)),
    };
    Ok((records, Detected { format, gzip }))
}

fn format_from_name(name: &str) -> Result<Option<Format>, ReadError> {
    let file = name.rsplit('/').next().unwrap_or(name).to_ascii_lowercase();
    let file = file.strip_suffix(".gz").unwrap_or(&file);
    let ext = file.rsplit_once('.').map(|(_, ext)| ext).unwrap_or("");
    Ok(match ext {
        "csv" => Some(Format::Csv),
        "tsv" | "tab" => Some(Format::Tsv),
        "ndjson" | "jsonl" => Some(Format::Ndjson),
        "json" => {
            return Err(ReadError::Unsupported(
                "JSON documents (.json) are not read yet; use NDJSON (.ndjson, .jsonl)".into(),
            ))
        }
        _ => None,
    })
}

/// Decides the format of a file with no telling extension from its first bytes.
fn sniff(head: &[u8]) -> Format {
    let first = head.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        Format::Ndjson
    } else if head
        .split(|&b| b == b'\n')
        .next()
        .is_some_and(|l| l.contains(&b'\t'))
    {
        Format::Tsv
    } else {
        Format::Csv
    }
}

impl Records {
    /// Reads the next record as canonical JSON into `out` (cleared first) and returns
    /// its line number, or `None` at the end of the file. After a
    /// [`ReadError::Record`] the next call reads the following record.
    pub fn next_into(&mut self, out: &mut Vec<u8>) -> Result<Option<u64>, ReadError> {
        out.clear();
        match self {
            Records::Csv(r) => r.next_into(out),
            Records::Ndjson(r) => r.next_into(out),
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
        assert!(format_from_name("x.json").is_err());
        assert_eq!(sniff(b"  {\"a\":1}\n"), Format::Ndjson);
        assert_eq!(sniff(b"a\tb\n1\t2\n"), Format::Tsv);
        assert_eq!(sniff(b"a,b\n"), Format::Csv);
    }

    #[test]
    fn source_faults_are_transient_and_content_faults_are_not() {
        let fault = io::Error::other(SourceFault(io::Error::other("reset")));
        assert!(ReadError::from_io(fault, 3).is_transient());
        let corrupt = io::Error::new(io::ErrorKind::InvalidInput, "corrupt deflate stream");
        assert!(!ReadError::from_io(corrupt, 3).is_transient());
    }
}
