//! A JSON record parsed once into a tape of nodes, each object's members in canonical
//! order, for reading without writing its canonical JSON.
//!
//! `bronze infer` reads each member of a record but never the record's canonical text:
//! writing that text (decoding and re-escaping keys, copying each object's values into
//! sorted order, level by level) was a third of inference's time on nested NDJSON. The
//! tape is the same parse without the writing: strings without escapes stay where they
//! are in the input, the others are decoded into one buffer; numbers stay as their text;
//! an object lists its members by index, sorted as canonical JSON sorts them (by the
//! key's code points, [`crate::canonical`]). All buffers are kept from record to
//! record, as rust-csv keeps a `ByteRecord`, so a record costs no allocation.
//!
//! The tape refuses exactly what canonicalising refuses, at the same byte with the same
//! words: both read through [`Scan`], and a duplicate key is found, as there, when its
//! object closes.

use crate::canonical::{check_utf8, duplicate_key, JsonError, Scan};

/// Where a string's text is: in the input when it holds no escape, else decoded into
/// the tape's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    start: usize,
    end: usize,
    decoded: bool,
}

impl Span {
    fn bytes<'a>(self, input: &'a [u8], decoded: &'a [u8]) -> &'a [u8] {
        let from = if self.decoded { decoded } else { input };
        &from[self.start..self.end]
    }
}

/// One value of a parsed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    /// An object: its members are `len` [`Member`]s from `first`, in canonical order;
    /// `end` is the node after its last value's.
    Object {
        /// Its first member in [`Parsed::members`].
        first: usize,
        /// How many members it has.
        len: usize,
        /// The node just past it and its values.
        end: usize,
    },
    /// An array: its items are the nodes from the next one up to `end`, each starting
    /// where the one before it ends ([`Parsed::end`]).
    Array {
        /// The node just past it and its items.
        end: usize,
    },
    /// A string, its text decoded.
    String(Span),
    /// A number, as its text.
    Number(Span),
    /// `true`.
    True,
    /// `false`.
    False,
    /// `null`.
    Null,
}

/// A member of an object: its key, decoded, and the node of its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// The key, as the text it stands for.
    pub key: Span,
    /// The node of its value.
    pub value: usize,
    /// The key's first 8 bytes, big-endian, zeros after a shorter key: keys mostly
    /// differ there, so sorting compares two integers instead of calling `memcmp`.
    /// (A key holds no NUL, so the zeros order a shorter key first, as bytes do.)
    prefix: u64,
}

/// See [`Member::prefix`].
fn prefix(key: &[u8]) -> u64 {
    let mut bytes = [0; 8];
    let n = key.len().min(8);
    bytes[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(bytes)
}

/// The reused buffers of the records parsed one after another.
#[derive(Default)]
pub struct Tape {
    nodes: Vec<Node>,
    /// The members of every closed object, each object's together and sorted.
    members: Vec<Member>,
    /// The members of the objects still open, in source order.
    open: Vec<Member>,
    /// Strings and keys that held escapes, decoded.
    decoded: Vec<u8>,
}

struct Parser<'a, 't> {
    s: Scan<'a>,
    depth: usize,
    t: &'t mut Tape,
}

impl Tape {
    /// Parses the single JSON value in `input`, refusing what
    /// [`crate::canonical::Canonicalizer::canonicalize`] refuses, with the same error.
    pub fn parse(&mut self, input: &[u8]) -> Result<(), JsonError> {
        check_utf8(input)?;
        self.nodes.clear();
        self.members.clear();
        self.open.clear();
        self.decoded.clear();
        let mut p = Parser {
            s: Scan::new(input),
            depth: 0,
            t: self,
        };
        p.s.skip_ws();
        p.value()?;
        p.s.end()
    }

    /// Whether the value parsed last is an object.
    pub fn is_object(&self) -> bool {
        matches!(self.nodes.first(), Some(Node::Object { .. }))
    }
}

impl Parser<'_, '_> {
    fn value(&mut self) -> Result<(), JsonError> {
        let node = match self.s.peek() {
            Some(b'{') => return self.nested(Self::object),
            Some(b'[') => return self.nested(Self::array),
            Some(b'"') => Node::String(self.string()?),
            Some(b'-' | b'0'..=b'9') => {
                let number = self.s.number()?;
                Node::Number(Span {
                    start: number.start,
                    end: number.end,
                    decoded: false,
                })
            }
            Some(b't') => self.literal(b"true", Node::True)?,
            Some(b'f') => self.literal(b"false", Node::False)?,
            Some(b'n') => self.literal(b"null", Node::Null)?,
            _ => return Err(self.s.unexpected("a JSON value")),
        };
        self.t.nodes.push(node);
        Ok(())
    }

    fn nested(&mut self, parse: fn(&mut Self) -> Result<(), JsonError>) -> Result<(), JsonError> {
        self.s.enter(self.depth)?;
        self.depth += 1;
        parse(self)?;
        self.depth -= 1;
        Ok(())
    }

    fn literal(&mut self, word: &[u8], node: Node) -> Result<Node, JsonError> {
        self.s.literal(word)?;
        Ok(node)
    }

    /// Reads the string whose opening quote is at `pos`. Most strings hold no escape:
    /// found by one scan, they stay in the input; the rest are decoded by the reader
    /// canonicalising uses, from the first byte that is not plain.
    fn string(&mut self) -> Result<Span, JsonError> {
        let input = self.s.input;
        let start = self.s.pos + 1;
        let plain = input[start..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
            .map_or(input.len(), |n| start + n);
        if input.get(plain) == Some(&b'"') {
            self.s.pos = plain + 1;
            return Ok(Span {
                start,
                end: plain,
                decoded: false,
            });
        }
        self.s.pos = plain;
        let from = self.t.decoded.len();
        self.s.string_from::<true>(start, &mut self.t.decoded)?;
        Ok(Span {
            start: from,
            end: self.t.decoded.len(),
            decoded: true,
        })
    }

    fn array(&mut self) -> Result<(), JsonError> {
        self.s.pos += 1;
        let node = self.t.nodes.len();
        self.t.nodes.push(Node::Array { end: node + 1 });
        self.s.skip_ws();
        if self.s.peek() == Some(b']') {
            self.s.pos += 1;
            return Ok(());
        }
        loop {
            self.s.skip_ws();
            self.value()?;
            self.s.skip_ws();
            if self.s.separator(b']')? {
                break;
            }
        }
        self.t.nodes[node] = Node::Array {
            end: self.t.nodes.len(),
        };
        Ok(())
    }

    fn object(&mut self) -> Result<(), JsonError> {
        let open = self.s.pos;
        self.s.pos += 1;
        let node = self.t.nodes.len();
        let first_open = self.t.open.len();
        // Its members are known when it closes.
        self.t.nodes.push(Node::Object {
            first: self.t.members.len(),
            len: 0,
            end: node + 1,
        });
        self.s.skip_ws();
        if self.s.peek() == Some(b'}') {
            self.s.pos += 1;
            return Ok(());
        }
        loop {
            self.s.skip_ws();
            if self.s.peek() != Some(b'"') {
                return Err(self.s.unexpected("a string key"));
            }
            let key = self.string()?;
            self.s.skip_ws();
            self.s.expect(b':')?;
            self.s.skip_ws();
            let value = self.t.nodes.len();
            self.value()?;
            let prefix = prefix(key.bytes(self.s.input, &self.t.decoded));
            self.t.open.push(Member { key, value, prefix });
            self.s.skip_ws();
            if self.s.separator(b'}')? {
                break;
            }
        }
        let input = self.s.input;
        let Tape {
            nodes,
            members,
            open: pending,
            decoded,
        } = &mut *self.t;
        let key = |m: &Member| m.key.bytes(input, decoded);
        let own = &mut pending[first_open..];
        own.sort_by(|a, b| a.prefix.cmp(&b.prefix).then_with(|| key(a).cmp(key(b))));
        let same = |a: &Member, b: &Member| a.prefix == b.prefix && key(a) == key(b);
        if let Some(pair) = own.windows(2).find(|w| same(&w[0], &w[1])) {
            return Err(duplicate_key(open, key(&pair[0])));
        }
        let first = members.len();
        members.extend_from_slice(own);
        pending.truncate(first_open);
        nodes[node] = Node::Object {
            first,
            len: members.len() - first,
            end: nodes.len(),
        };
        Ok(())
    }
}

/// A parsed record: the tape with the text it was parsed from, which its spans point
/// into.
#[derive(Clone, Copy)]
pub struct Parsed<'a> {
    tape: &'a Tape,
    input: &'a str,
    decoded: &'a str,
}

impl<'a> Parsed<'a> {
    /// `tape` with the `input` it parsed last.
    pub fn new(tape: &'a Tape, input: &'a [u8]) -> Self {
        // The tape parsed only UTF-8, and decoded whole characters of it: neither
        // check fails for the input it parsed.
        Self {
            tape,
            input: std::str::from_utf8(input).unwrap_or_default(),
            decoded: std::str::from_utf8(&tape.decoded).unwrap_or_default(),
        }
    }

    /// The members of the record's object, in canonical order: a reader returns
    /// objects alone (none for any other value).
    pub fn fields(&self) -> &'a [Member] {
        match self.node(0) {
            Node::Object { first, len, .. } => self.members(first, len),
            _ => &[],
        }
    }

    /// The node at `at`.
    pub fn node(&self, at: usize) -> Node {
        self.tape.nodes.get(at).copied().unwrap_or(Node::Null)
    }

    /// The node just past the one at `at` and what it holds.
    pub fn end(&self, at: usize) -> usize {
        match self.node(at) {
            Node::Object { end, .. } | Node::Array { end } => end,
            _ => at + 1,
        }
    }

    /// The members of an object, `len` from `first`, in canonical order.
    pub fn members(&self, first: usize, len: usize) -> &'a [Member] {
        self.tape
            .members
            .get(first..first + len)
            .unwrap_or_default()
    }

    /// The text of a string, number or key.
    pub fn text(&self, span: Span) -> &'a str {
        let from = if span.decoded {
            self.decoded
        } else {
            self.input
        };
        from.get(span.start..span.end).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
