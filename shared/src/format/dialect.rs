//! CSV dialect sniffing from the first buffer of a file: which delimiter, and whether
//! the first row is a header. Quotes are honoured (csv_core parses the sample), so a
//! comma inside a quoted field does not vote for the comma.

use csv_core::{ReadRecordResult, ReaderBuilder};

/// The delimiters bronze considers, in order of preference when they tie.
pub const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// What sniffing found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    /// The byte between fields: `,`, `;`, tab or `|`.
    pub delimiter: u8,
    /// Whether the first row names the columns.
    pub header: bool,
}

/// At most this many sample records vote.
const SAMPLE_RECORDS: usize = 100;

/// Sniffs `head` (the start of the file); `delimiter` pins it when the extension did.
pub fn sniff(head: &[u8], delimiter: Option<u8>) -> Dialect {
    let sample = complete_lines(head);
    let delimiter = delimiter.unwrap_or_else(|| best_delimiter(sample));
    let records = parse(sample, delimiter);
    Dialect {
        delimiter,
        header: looks_like_header(&records),
    }
}

/// The sample without its last, possibly cut, line (unless it is all there is).
fn complete_lines(head: &[u8]) -> &[u8] {
    match head.iter().rposition(|&b| b == b'\n') {
        Some(end) => &head[..=end],
        None => head,
    }
}

/// Parses up to [`SAMPLE_RECORDS`] records of the sample into owned fields.
fn parse(sample: &[u8], delimiter: u8) -> Vec<Vec<Vec<u8>>> {
    let mut reader = ReaderBuilder::new().delimiter(delimiter).build();
    let mut records = Vec::new();
    let mut input = sample;
    let mut out = vec![0u8; sample.len() + 1];
    let mut ends = vec![0usize; 1024];
    while records.len() < SAMPLE_RECORDS {
        let (result, read, _, ended) = reader.read_record(input, &mut out, &mut ends);
        input = &input[read..];
        match result {
            ReadRecordResult::Record => {
                let mut start = 0;
                let fields = ends[..ended]
                    .iter()
                    .map(|&end| {
                        let field = out[start..end].to_vec();
                        start = end;
                        field
                    })
                    .collect();
                records.push(fields);
            }
            ReadRecordResult::InputEmpty if input.is_empty() => {
                let (result, _, _, ended) = reader.read_record(&[], &mut out, &mut ends);
                if result == ReadRecordResult::Record && ended > 0 {
                    continue;
                }
                break;
            }
            ReadRecordResult::InputEmpty => {}
            // A record wider than 1024 fields or the sample: stop sampling there.
            ReadRecordResult::OutputFull | ReadRecordResult::OutputEndsFull => break,
            ReadRecordResult::End => break,
        }
    }
    records
}

/// The delimiter that splits the sample into the most rows of one width above 1.
fn best_delimiter(sample: &[u8]) -> u8 {
    let mut best = (b',', 0usize);
    for delimiter in DELIMITERS {
        let records = parse(sample, delimiter);
        let widths: Vec<usize> = records.iter().map(Vec::len).collect();
        let Some(mode) = mode(&widths).filter(|&w| w > 1) else {
            continue;
        };
        let agreeing = widths.iter().filter(|&&w| w == mode).count();
        // Consistent rows first, then more columns, to break ties between delimiters
        // that both split every row (a `;` file whose values hold commas).
        let score = agreeing * 1000 + mode.min(999);
        if score > best.1 {
            best = (delimiter, score);
        }
    }
    best.0
}

fn mode(values: &[usize]) -> Option<usize> {
    let mut counts: Vec<(usize, usize)> = Vec::new();
    for &v in values {
        match counts.iter_mut().find(|(value, _)| *value == v) {
            Some((_, n)) => *n += 1,
            None => counts.push((v, 1)),
        }
    }
    counts
        .into_iter()
        .max_by_key(|&(value, n)| (n, value))
        .map(|(value, _)| value)
}

/// A first row is data, not a header, when one of its values is a number while the
/// rows below have that column filled: header names are words. A file of words only
/// is taken to have a header, the common case.
fn looks_like_header(records: &[Vec<Vec<u8>>]) -> bool {
    let Some(first) = records.first() else {
        return true;
    };
    !first.iter().any(|field| is_number(field))
}

fn is_number(field: &[u8]) -> bool {
    let text = std::str::from_utf8(field).unwrap_or("").trim();
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    !digits.is_empty()
        && digits.bytes().any(|b| b.is_ascii_digit())
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|&b| b == b'.').count() <= 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters_are_found_and_quotes_respected() {
        let d = |text: &str| sniff(text.as_bytes(), None).delimiter;
        assert_eq!(d("a,b,c\n1,2,3\n4,5,6\n"), b',');
        assert_eq!(d("a;b;c\n1,5;2;3\n4;5,1;6\n"), b';');
        assert_eq!(d("a\tb\n1\t2\n"), b'\t');
        assert_eq!(d("a|b|c\n\"x|y\"|2|3\n"), b'|');
        assert_eq!(d("name;note\n\"Smith, J\";\"a, b, c\"\nx;y\n"), b';');
        assert_eq!(d("single\nvalue\n"), b',');
        assert_eq!(sniff(b"a;b\n1;2\n", Some(b'\t')).delimiter, b'\t');
    }

    #[test]
    fn headers_are_words_and_data_has_numbers() {
        assert!(sniff(b"id,name\n1,Ada\n", None).header);
        assert!(!sniff(b"1,Ada\n2,Grace\n", None).header);
        assert!(!sniff(b"x,-1.5\ny,2\n", None).header);
        assert!(sniff(b"name,city\nAda,London\n", None).header);
        assert!(
            sniff(b",a,b\n0,1,2\n", None).header,
            "pandas' unnamed index column"
        );
    }
}
