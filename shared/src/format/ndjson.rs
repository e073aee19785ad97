//! NDJSON / JSON Lines: one JSON object per line, blank lines ignored.

use std::io::BufRead;

use super::ReadError;
use crate::canonical::Canonicalizer;

pub struct NdjsonRecords {
    input: Box<dyn BufRead + Send>,
    line: Vec<u8>,
    line_no: u64,
    canon: Canonicalizer,
}

impl NdjsonRecords {
    pub fn new(input: Box<dyn BufRead + Send>) -> Self {
        Self {
            input,
            line: Vec::with_capacity(4096),
            line_no: 0,
            canon: Canonicalizer::default(),
        }
    }

    pub fn next_into(&mut self, out: &mut Vec<u8>) -> Result<Option<u64>, ReadError> {
        loop {
            self.line.clear();
            self.line_no += 1;
            let read = self
                .input
                .read_until(b'\n', &mut self.line)
                .map_err(|e| ReadError::from_io(e, self.line_no))?;
            if read == 0 {
                return Ok(None);
            }
            let text = self
                .line
                .strip_prefix(b"\xef\xbb\xbf")
                .unwrap_or(&self.line)
                .trim_ascii_end();
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let line = self.line_no;
            let bad = |reason: String| ReadError::Record {
                line,
                reason,
                raw: super::raw_text(text.trim_ascii_end()),
            };
            self.canon
                .canonicalize(text, out)
                .map_err(|e| bad(format!("column {}: {}", e.offset + 1, e.reason)))?;
            if out.first() != Some(&b'{') {
                return Err(bad("expected a JSON object".into()));
            }
            return Ok(Some(line));
        }
    }
}
