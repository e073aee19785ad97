//! Schema inference over every record of a file, in the same streaming pass that
//! loads it: per column the narrowest type that fits **every** non-null value, the
//! layouts of its dates, a semantic type with its confidence, nullability and null
//! markers, min and max, length, a distinct estimate, examples, and — when a few values
//! break the majority — what almost fit and where it broke.
//!
//! Nothing is sampled and nothing is coerced: a column is `integer` only if all of its
//! values are, `00501` keeps a column text, and a day above 12 decides `%d/%m/%Y`
//! against `%m/%d/%Y`; a column where nothing decides is reported as ambiguous.

mod background;
mod distinct;
mod quality;
mod recent;
mod report;
pub mod semantic;
pub mod temporal;

use std::cmp::Ordering as Order;
use std::collections::HashMap;
use std::ops::{Index, IndexMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::canonical::{skip_string, skip_value};
use crate::format::{Detected, Records};
use crate::json_tape::{Member, Node, Parsed};
use crate::rejects::cut;
use crate::schema::FieldType;
pub use background::{Background, Failed};
use distinct::Distinct;
pub use quality::{text_fits, ColumnQuality, Quality};
use recent::Recent;
pub use report::{Almost, ColumnReport, MapReport, Report, SemanticMatch, Zoned};
use semantic::{Matched, Semantic};
use temporal::{Temporal, TimeLayout, Zone, DATE_FORMATS};

/// Text values that stand for "no value" in delimited files.
pub const NULL_MARKERS: [&str; 6] = ["", "NA", "N/A", "null", "NULL", "-"];

/// Which null marker `text` is. Every marker is empty or starts with `N`, `n` or `-`,
/// so most values are told apart by one byte, without six string comparisons.
pub fn null_marker(text: &str) -> Option<usize> {
    match text.as_bytes().first() {
        None | Some(b'N' | b'n' | b'-') => NULL_MARKERS.iter().position(|m| *m == text),
        Some(_) => None,
    }
}

/// How delimited files write booleans, in any case.
const BOOLEAN_WORDS: [&str; 4] = ["true", "false", "yes", "no"];

fn is_boolean(text: &str) -> bool {
    BOOLEAN_WORDS.iter().any(|b| text.eq_ignore_ascii_case(b))
}

/// Bytes kept of a value shown (examples, min, max): memory per column stays small
/// whatever the values hold, and text ranges compare their first bytes.
const KEPT: usize = 256;

/// Keeps `text` (cut to [`KEPT`]) in `slot`, reusing its buffer: a column's minimum or
/// maximum may change with every value (ids, timestamps in file order), and a new
/// `String` each time would be an allocation per value.
fn keep(slot: &mut Option<String>, text: &str) {
    let text = cut(text, KEPT);
    match slot {
        Some(kept) => {
            kept.clear();
            kept.push_str(text);
        }
        None => *slot = Some(text.to_owned()),
    }
}

/// [`keep`] for a number and its text.
fn keep_number(slot: &mut Option<(Number, String)>, number: Number, text: &str) {
    match slot {
        Some((kept, kept_text)) => {
            *kept = number;
            kept_text.clear();
            kept_text.push_str(cut(text, KEPT));
        }
        None => *slot = Some((number, cut(text, KEPT).to_owned())),
    }
}

/// Keys an object needs, each rare, to be read as a map (see [`Inferrer::is_map`]).
const MAP_KEYS: u64 = 64;

/// Lines kept per failed type, for the "almost" report.
const FIRST_LINES: usize = 5;
const EXAMPLES: usize = 5;
/// Below this share, a type is not "almost" fitting.
const ALMOST: f64 = 0.9;
/// Nested objects are described this deep.
const MAX_NESTING: usize = 4;

/// Candidate types from narrowest to widest; the column's type is the first that fits
/// every non-null value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Boolean,
    Integer,
    Number,
    Date,
    Time,
    Timestamp,
}

const KINDS: [Kind; 6] = [
    Kind::Boolean,
    Kind::Integer,
    Kind::Number,
    Kind::Date,
    Kind::Time,
    Kind::Timestamp,
];

/// One `T` per candidate type, each under its type's name: counters are read and
/// written by the type (`fits[Kind::Integer]`), never by a position in [`KINDS`].
#[derive(Debug, Default, Clone)]
struct PerKind<T> {
    boolean: T,
    integer: T,
    number: T,
    date: T,
    time: T,
    timestamp: T,
}

impl<T> Index<Kind> for PerKind<T> {
    type Output = T;

    fn index(&self, kind: Kind) -> &T {
        match kind {
            Kind::Boolean => &self.boolean,
            Kind::Integer => &self.integer,
            Kind::Number => &self.number,
            Kind::Date => &self.date,
            Kind::Time => &self.time,
            Kind::Timestamp => &self.timestamp,
        }
    }
}

impl<T> IndexMut<Kind> for PerKind<T> {
    fn index_mut(&mut self, kind: Kind) -> &mut T {
        match kind {
            Kind::Boolean => &mut self.boolean,
            Kind::Integer => &mut self.integer,
            Kind::Number => &mut self.number,
            Kind::Date => &mut self.date,
            Kind::Time => &mut self.time,
            Kind::Timestamp => &mut self.timestamp,
        }
    }
}

impl From<Kind> for FieldType {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Boolean => FieldType::Boolean,
            Kind::Integer => FieldType::Integer,
            Kind::Number => FieldType::Number,
            Kind::Date => FieldType::Date,
            Kind::Time => FieldType::Time,
            Kind::Timestamp => FieldType::Timestamp,
        }
    }
}

/// What one value is: the candidate types it fits.
#[derive(Default, Clone, Copy)]
struct Fits {
    boolean: bool,
    integer: bool,
    number: bool,
    date: bool,
    time: bool,
    timestamp: bool,
    /// Its value, when it is a number: parsed once, where its shape was read.
    value: Option<Number>,
}

/// A number's value, as a column's min and max compare it: integers exactly, whatever
/// their size, other numbers by their nearest `f64`.
#[derive(Debug, Clone, Copy)]
enum Number {
    /// An integer of 64 bits.
    Integer(i64),
    /// An integer beyond 64 bits, of `digits` digits: compared by sign, length and
    /// digits (its text), or by its nearest `f64` against a decimal.
    Huge { nearest: f64, digits: u32 },
    /// A decimal, an exponent, NaN or an infinity.
    Float(f64),
}

/// The digits of an integer as a column keeps its text: without its sign, within
/// [`KEPT`] bytes.
fn kept_digits(text: &str) -> &str {
    cut(text, KEPT).trim_start_matches(['-', '+'])
}

impl Number {
    fn nearest(self) -> f64 {
        match self {
            Number::Integer(v) => v as f64,
            Number::Huge { nearest, .. } | Number::Float(nearest) => nearest,
        }
    }

    /// Orders `self` (written `text`) against `other` (written `other_text`); `None`
    /// against NaN. Huge integers of one length whose first [`KEPT`] bytes agree are
    /// equal: that is all a column keeps of them.
    #[inline(always)]
    fn cmp(self, text: &str, other: Number, other_text: &str) -> Option<Order> {
        // Numbers of one kind first, inline: min and max meet every number a column
        // has not seen lately.
        match (self, other) {
            (Number::Integer(a), Number::Integer(b)) => Some(a.cmp(&b)),
            (Number::Float(a), Number::Float(b)) => a.partial_cmp(&b),
            _ => self.cmp_mixed(text, other, other_text),
        }
    }

    /// [`Number::cmp`] where an integer beyond 64 bits or a decimal meets an integer.
    #[inline(never)]
    fn cmp_mixed(self, text: &str, other: Number, other_text: &str) -> Option<Order> {
        use Number::{Huge, Integer};
        match (self, other) {
            // Beyond 64 bits, an integer is further from zero than any 64-bit one.
            (Huge { nearest, .. }, Integer(_)) => nearest.partial_cmp(&0.0),
            (Integer(_), Huge { nearest, .. }) => 0.0.partial_cmp(&nearest),
            (
                Huge {
                    nearest: a,
                    digits: x,
                },
                Huge {
                    nearest: b,
                    digits: y,
                },
            ) if (a < 0.0) == (b < 0.0) => {
                let magnitude = x
                    .cmp(&y)
                    .then_with(|| kept_digits(text).cmp(kept_digits(other_text)));
                Some(if a < 0.0 {
                    magnitude.reverse()
                } else {
                    magnitude
                })
            }
            // Opposite signs, or a decimal and an integer.
            _ => self.nearest().partial_cmp(&other.nearest()),
        }
    }
}

/// The statistics of one column (for JSON: one field, nested fields below it).
#[derive(Default)]
struct Column {
    name: String,
    nulls: u64,
    null_markers: u8,
    values: u64,
    /// Values that fit each candidate type.
    fits: PerKind<u64>,
    /// The first lines whose value did not fit each candidate type.
    failed_at: PerKind<Vec<u64>>,
    objects: u64,
    arrays: u64,
    leading_zeros: u64,
    specials: u64,
    beyond_i64: u64,
    date_formats: [u64; 9],
    date_range: [Option<(u32, u32)>; 9],
    /// Timestamp layouts seen: (date format, separator, time layout, zone), count.
    timestamps: Vec<((usize, u8, TimeLayout, Zone), u64)>,
    /// Timestamps without a zone, and with one (`Z` or an offset).
    without_zone: u64,
    with_zone: u64,
    times: Times,
    semantic: semantic::Counts,
    min_number: Option<(Number, String)>,
    max_number: Option<(Number, String)>,
    min_text: Option<String>,
    max_text: Option<String>,
    max_length: usize,
    distinct: Distinct,
    examples: Vec<String>,
    fields: Option<Box<Inferrer>>,
    items: Option<Box<Column>>,
    depth: usize,
    /// Delimited values seen lately and what they counted.
    recent: Recent,
}

/// What a delimited value counted, besides the facts only its first sight changes
/// (range, length, distinct values, examples).
#[derive(Clone, Copy)]
enum Counted {
    Null(usize),
    Value {
        fits: Fits,
        shape: NumberShape,
        temporal: Option<Temporal>,
        semantic: Matched,
    },
}

/// A JSON value that is neither an object nor an array, however it was read.
#[derive(Clone, Copy)]
enum Scalar<'a> {
    Null,
    /// A string's text, decoded.
    String(&'a str),
    /// `true` or `false`.
    Boolean(&'a str),
    /// A number, as written.
    Number(&'a str),
}

impl Column {
    fn new(name: String, depth: usize) -> Self {
        Self {
            name,
            depth,
            ..Self::default()
        }
    }

    fn null(&mut self, marker: Option<usize>) {
        self.nulls += 1;
        if let Some(i) = marker {
            self.null_markers |= 1 << i;
        }
    }

    /// A value from a delimited file: everything is text, so the text decides.
    fn text(&mut self, line: u64, text: &str) {
        let hash = distinct::hash(text.as_bytes());
        if let Some(counted) = self.recent.get(hash, text) {
            return self.count(line, counted);
        }
        let counted = self.first_text(line, text, hash);
        self.recent.put(hash, text, counted);
    }

    fn first_text(&mut self, line: u64, text: &str, hash: u64) -> Counted {
        if let Some(i) = null_marker(text) {
            self.null(Some(i));
            return Counted::Null(i);
        }
        let shape = number_shape(text);
        let mut fits = number_fits(self, shape, text);
        fits.boolean = is_boolean(text);
        let temporal = if fits.number {
            None
        } else {
            self.temporal(text, &mut fits)
        };
        self.observed(line, fits, text);
        let semantic = self.string_facts(text, fits, hash);
        Counted::Value {
            fits,
            shape,
            temporal,
            semantic,
        }
    }

    /// Counts a value seen again, as `first_text` counted it.
    fn count(&mut self, line: u64, counted: Counted) {
        match counted {
            Counted::Null(i) => self.null(Some(i)),
            Counted::Value {
                fits,
                shape,
                temporal,
                semantic,
            } => {
                count_number(self, shape);
                if let Some(temporal) = temporal {
                    self.count_temporal(temporal);
                }
                self.count_fits(line, fits);
                self.semantic.add(semantic);
            }
        }
    }

    /// A JSON string: never a number or a boolean (the writer chose a string), but
    /// dates and semantic types live in strings. A string seen lately counts as it did
    /// then, as a delimited value does: only strings are remembered, so a JSON number
    /// never meets a string's count.
    fn json_string(&mut self, line: u64, text: &str) {
        let hash = distinct::hash(text.as_bytes());
        if let Some(counted) = self.recent.get(hash, text) {
            return self.count(line, counted);
        }
        let mut fits = Fits::default();
        let temporal = self.temporal(text, &mut fits);
        self.observed(line, fits, text);
        let semantic = self.string_facts(text, fits, hash);
        let counted = Counted::Value {
            fits,
            shape: NumberShape::NotNumber,
            temporal,
            semantic,
        };
        self.recent.put(hash, text, counted);
    }

    /// Counts a JSON scalar that is `fits`, with its text's facts. (A delimited value
    /// passes in the hash it already has: see [`Column::string_facts`].)
    fn json_value(&mut self, line: u64, fits: Fits, text: &str) {
        self.observed(line, fits, text);
        self.string_facts(text, fits, distinct::hash(text.as_bytes()));
    }

    /// Classifies a text as a date, time or timestamp, counts it, and returns what it is.
    fn temporal(&mut self, text: &str, fits: &mut Fits) -> Option<Temporal> {
        let temporal = temporal::classify(text.as_bytes())?;
        match temporal {
            Temporal::Date(set) => {
                fits.date = true;
                fits.timestamp = true;
                self.date_range(set, text);
            }
            Temporal::Time(_) => fits.time = true,
            Temporal::Timestamp { .. } => fits.timestamp = true,
        }
        self.count_temporal(temporal);
        Some(temporal)
    }

    fn count_temporal(&mut self, temporal: Temporal) {
        match temporal {
            Temporal::Date(set) => {
                for (i, n) in self.date_formats.iter_mut().enumerate() {
                    *n += u64::from(set >> i & 1);
                }
            }
            Temporal::Time(layout) => self.times.count(layout),
            Temporal::Timestamp {
                date,
                separator,
                time,
                zone,
            } => {
                match zone {
                    Zone::None => self.without_zone += 1,
                    Zone::Utc | Zone::Offset => self.with_zone += 1,
                }
                for i in 0..DATE_FORMATS.len() {
                    if date & (1 << i) != 0 {
                        let layout = (i, separator, time, zone);
                        let known = self.timestamps.iter().position(|(l, _)| *l == layout);
                        match known {
                            Some(at) => self.timestamps[at].1 += 1,
                            None if self.timestamps.len() < 16 => self.timestamps.push((layout, 1)),
                            None => {}
                        }
                    }
                }
            }
        }
    }

    /// Widens the date range of each layout the date fits.
    fn date_range(&mut self, set: temporal::FormatSet, text: &str) {
        let mut parts = [0u32; 3];
        let mut numbers = text
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|p| p.parse::<u32>().ok());
        for part in &mut parts {
            *part = numbers.next().unwrap_or(0);
        }
        for (i, format) in DATE_FORMATS.iter().enumerate() {
            if set & (1 << i) == 0 {
                continue;
            }
            let key = match &format[..2] {
                "%Y" => parts[0] * 10_000 + parts[1] * 100 + parts[2],
                "%d" => parts[2] * 10_000 + parts[1] * 100 + parts[0],
                _ => parts[2] * 10_000 + parts[0] * 100 + parts[1],
            };
            let range = self.date_range[i].get_or_insert((key, key));
            range.0 = range.0.min(key);
            range.1 = range.1.max(key);
        }
    }

    fn observed(&mut self, line: u64, fits: Fits, text: &str) {
        self.count_fits(line, fits);
        if let Some(n) = fits.value.filter(|n| !n.nearest().is_nan()) {
            let below = |(m, t): &(Number, String)| n.cmp(text, *m, t) == Some(Order::Less);
            let above = |(m, t): &(Number, String)| n.cmp(text, *m, t) == Some(Order::Greater);
            if self.min_number.as_ref().is_none_or(below) {
                keep_number(&mut self.min_number, n, text);
            }
            if self.max_number.as_ref().is_none_or(above) {
                keep_number(&mut self.max_number, n, text);
            }
        }
    }

    fn count_fits(&mut self, line: u64, fits: Fits) {
        self.values += 1;
        // Type by type, each spelled out: with the type a constant, every `[kind]` is
        // a field, and this runs for every value of the file.
        let mut count = |kind: Kind, fit: bool| {
            if fit {
                self.fits[kind] += 1;
            } else if self.failed_at[kind].len() < FIRST_LINES {
                self.failed_at[kind].push(line);
            }
        };
        count(Kind::Boolean, fits.boolean);
        count(Kind::Integer, fits.integer);
        count(Kind::Number, fits.number);
        count(Kind::Date, fits.date);
        count(Kind::Time, fits.time);
        count(Kind::Timestamp, fits.timestamp);
    }

    /// Length, distinct values, examples, text range and semantic types; returns the
    /// semantic types matched.
    ///
    /// Values that are numbers, dates or booleans are only checked for the semantic
    /// types written with digits alone (phones, ZIP codes): the others cannot match,
    /// and skipping them keeps inference cheap on numeric columns.
    fn string_facts(&mut self, text: &str, fits: Fits, hash: u64) -> Matched {
        let chars = if text.is_ascii() {
            text.len()
        } else {
            text.chars().count()
        };
        self.max_length = self.max_length.max(chars);
        self.distinct.add(hash);
        let text = cut(text, KEPT);
        if self.examples.len() < EXAMPLES && !self.examples.iter().any(|e| e == text) {
            self.examples.push(text.to_owned());
        }
        if self
            .min_text
            .as_deref()
            .is_none_or(|m| order(text, m).is_lt())
        {
            keep(&mut self.min_text, text);
        }
        if self
            .max_text
            .as_deref()
            .is_none_or(|m| order(text, m).is_gt())
        {
            keep(&mut self.max_text, text);
        }
        let mut matched = Matched::default();
        if text.len() > 320 {
            return matched;
        }
        let typed = fits.number || fits.boolean || fits.timestamp || fits.time;
        for s in semantic::ALL {
            let digits_only = matches!(s, Semantic::Phone | Semantic::Zip);
            if (!typed || digits_only) && s.matches(text) {
                matched.insert(s);
            }
        }
        self.semantic.add(matched);
        matched
    }

    /// Counts an object value; returns the inferrer of its fields, or `None` past the
    /// deepest level described, where an object counts but is not read into.
    fn object(&mut self, line: u64, keys: &KeyBudget) -> Option<&mut Inferrer> {
        self.values += 1;
        self.objects += 1;
        self.fail_all(line);
        if self.depth >= MAX_NESTING {
            return None;
        }
        let depth = self.depth + 1;
        let fields = self
            .fields
            .get_or_insert_with(|| Box::new(Inferrer::nested(depth, keys.clone())));
        Some(fields)
    }

    /// Counts an array value; returns the column of its items, or `None` past the
    /// deepest level described (where the column is made, but reads nothing).
    fn array(&mut self, line: u64) -> Option<&mut Column> {
        self.values += 1;
        self.arrays += 1;
        self.fail_all(line);
        let depth = self.depth + 1;
        let items = self
            .items
            .get_or_insert_with(|| Box::new(Column::new("items".into(), depth)));
        (depth <= MAX_NESTING).then_some(&mut **items)
    }

    /// The canonical JSON value that starts at `at` in `json`; returns the index just
    /// past it. Nested objects and arrays are observed as they are walked, so each
    /// byte of a record is read once, whatever its depth.
    fn json(
        &mut self,
        line: u64,
        json: &[u8],
        at: usize,
        scratch: &mut Vec<u8>,
        keys: &KeyBudget,
    ) -> usize {
        match json.get(at) {
            Some(b'{') => match self.object(line, keys) {
                Some(fields) => fields.observe_object(line, json, at),
                None => skip_value(json, at),
            },
            Some(b'[') => match self.array(line) {
                Some(items) => items.json_items(line, json, at, scratch, keys),
                None => skip_value(json, at),
            },
            _ => {
                let end = skip_value(json, at);
                let value = &json[at..end];
                let scalar = match value.first() {
                    None | Some(b'n') => Scalar::Null,
                    Some(b'"') => Scalar::String(
                        crate::canonical::string_text(value, scratch).unwrap_or_default(),
                    ),
                    Some(b't' | b'f') => {
                        Scalar::Boolean(std::str::from_utf8(value).unwrap_or_default())
                    }
                    Some(_) => Scalar::Number(std::str::from_utf8(value).unwrap_or_default()),
                };
                self.scalar(line, scalar);
                end
            }
        }
    }

    /// The items of the canonical array that opens at `at`, each observed by this
    /// column; returns the index just past the array.
    fn json_items(
        &mut self,
        line: u64,
        json: &[u8],
        at: usize,
        scratch: &mut Vec<u8>,
        keys: &KeyBudget,
    ) -> usize {
        let mut pos = at + 1;
        if json.get(pos) == Some(&b']') {
            return pos + 1;
        }
        while pos < json.len() {
            let end = self.json(line, json, pos, scratch, keys);
            // Canonical JSON: a `,` or the closing `]` follows each item.
            if json.get(end) != Some(&b',') {
                return end + 1;
            }
            pos = end + 1;
        }
        json.len()
    }

    /// The value at node `at` of a parsed record, as [`Column::json`] observes the
    /// same value in canonical JSON.
    fn parsed(&mut self, line: u64, record: &Parsed<'_>, at: usize, keys: &KeyBudget) {
        let scalar = match record.node(at) {
            Node::Object { first, len, .. } => {
                if let Some(fields) = self.object(line, keys) {
                    fields.observe_members(line, record, record.members(first, len));
                }
                return;
            }
            Node::Array { end } => {
                if let Some(items) = self.array(line) {
                    let mut item = at + 1;
                    while item < end {
                        items.parsed(line, record, item, keys);
                        item = record.end(item);
                    }
                }
                return;
            }
            Node::Null => Scalar::Null,
            Node::String(text) => Scalar::String(record.text(text)),
            Node::Number(text) => Scalar::Number(record.text(text)),
            Node::True => Scalar::Boolean("true"),
            Node::False => Scalar::Boolean("false"),
        };
        self.scalar(line, scalar);
    }

    /// A JSON scalar: a string, number or boolean by its text (a string's decoded).
    fn scalar(&mut self, line: u64, scalar: Scalar<'_>) {
        match scalar {
            Scalar::Null => self.null(None),
            Scalar::String(text) => self.json_string(line, text),
            Scalar::Boolean(text) => {
                let fits = Fits {
                    boolean: true,
                    ..Fits::default()
                };
                self.json_value(line, fits, text);
            }
            Scalar::Number(text) => {
                let fits = number_fits(self, number_shape(text), text);
                self.json_value(line, fits, text);
            }
        }
    }

    fn fail_all(&mut self, line: u64) {
        for kind in KINDS {
            let lines = &mut self.failed_at[kind];
            if lines.len() < FIRST_LINES {
                lines.push(line);
            }
        }
    }

    /// The first candidate type that every value fits.
    fn kind(&self) -> Option<Kind> {
        if self.values == 0 {
            return None;
        }
        KINDS.into_iter().find(|&k| self.fits[k] == self.values)
    }

    /// The column's type: the first candidate that fits every value, else what its
    /// JSON values are.
    fn field_type(&self) -> FieldType {
        if self.values == 0 {
            return FieldType::Null;
        }
        if let Some(kind) = self.kind() {
            return kind.into();
        }
        match (self.objects, self.arrays) {
            (o, 0) if o == self.values => FieldType::Object,
            (0, a) if a == self.values => FieldType::Array,
            (0, 0) => FieldType::String,
            _ => FieldType::Mixed,
        }
    }

    /// What the column's values are, `records` records (or objects, or items) having
    /// had the chance to hold one.
    fn report(&self, records: u64) -> ColumnReport {
        let kind = self.kind();
        let nulls = self.nulls + records.saturating_sub(self.values + self.nulls);
        let null_markers = (0..NULL_MARKERS.len())
            .filter(|i| self.null_markers & (1 << i) != 0)
            .map(|i| NULL_MARKERS[i])
            .collect();
        let (formats, ambiguous) = self.formats(kind);
        let (min, max) = self.range(kind, &formats);
        let zone =
            (kind == Some(Kind::Timestamp)).then_some(match (self.without_zone, self.with_zone) {
                (0, _) => Zoned::With,
                (_, 0) => Zoned::Without,
                _ => Zoned::Mixed,
            });
        let (fields, map) = match &self.fields {
            Some(fields) => match fields.map(self.objects) {
                Some(map) => (None, Some(map)),
                None => (Some(fields.column_reports(self.objects)), None),
            },
            None => (None, None),
        };
        ColumnReport {
            almost: self.almost(kind),
            ambiguous,
            beyond_i64: self.beyond_i64,
            count: self.values,
            distinct_estimate: self.distinct.estimate(),
            examples: self.examples.clone(),
            fields,
            formats,
            items: self
                .items
                .as_ref()
                .map(|items| Box::new(items.report(items.values + items.nulls))),
            leading_zeros: self.leading_zeros,
            map,
            max,
            max_length: self.max_length,
            min,
            name: self.name.clone(),
            null_markers,
            nullable: nulls > 0,
            nulls,
            semantic: self.semantic(kind),
            special_values: self.specials,
            kind: self.field_type(),
            zone,
        }
    }

    /// The layouts that fit every temporal value, and whether day and month first
    /// both do.
    fn formats(&self, kind: Option<Kind>) -> (Vec<String>, bool) {
        match kind {
            Some(Kind::Date) => {
                let all: Vec<usize> = (0..DATE_FORMATS.len())
                    .filter(|&i| self.date_formats[i] == self.values)
                    .collect();
                let ambiguous = all.iter().any(|&i| DATE_FORMATS[i].starts_with("%d"))
                    && all.iter().any(|&i| DATE_FORMATS[i].starts_with("%m"));
                if all.is_empty() {
                    // Mixed layouts: each that was seen, most used first.
                    let mut seen: Vec<usize> = (0..DATE_FORMATS.len())
                        .filter(|&i| self.date_formats[i] > 0)
                        .collect();
                    seen.sort_by_key(|&i| std::cmp::Reverse(self.date_formats[i]));
                    return (
                        seen.iter().map(|&i| DATE_FORMATS[i].to_owned()).collect(),
                        false,
                    );
                }
                (
                    all.iter().map(|&i| DATE_FORMATS[i].to_owned()).collect(),
                    ambiguous,
                )
            }
            Some(Kind::Timestamp) => {
                let mut seen: Vec<(String, u64)> = self
                    .timestamps
                    .iter()
                    .map(|&((date, sep, time, zone), n)| {
                        (temporal::timestamp_format(date, sep, time, zone), n)
                    })
                    .collect();
                seen.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
                let dates: Vec<String> = (0..DATE_FORMATS.len())
                    .filter(|&i| self.date_formats[i] > 0)
                    .map(|i| DATE_FORMATS[i].to_owned())
                    .collect();
                let all: Vec<String> = seen.iter().map(|(l, _)| l.clone()).chain(dates).collect();
                let ambiguous = all.iter().any(|f| f.starts_with("%d"))
                    && all.iter().any(|f| f.starts_with("%m"));
                (all, ambiguous)
            }
            Some(Kind::Time) => {
                let formats = self
                    .times
                    .seen()
                    .into_iter()
                    .filter(|&(_, n)| n > 0)
                    .map(|(layout, _)| temporal::time_format(layout).to_owned())
                    .collect();
                (formats, false)
            }
            _ => (Vec::new(), false),
        }
    }

    /// The smallest and largest value: numbers as written, dates in ISO form, text in
    /// byte order; none for booleans and JSON objects and arrays.
    fn range(&self, kind: Option<Kind>, formats: &[String]) -> (Option<String>, Option<String>) {
        let text = |n: &Option<(Number, String)>| n.as_ref().map(|(_, t)| t.clone());
        match kind {
            Some(Kind::Integer | Kind::Number) => (text(&self.min_number), text(&self.max_number)),
            Some(Kind::Date) => {
                let format = formats
                    .first()
                    .and_then(|f| DATE_FORMATS.iter().position(|d| d == f));
                match format.and_then(|i| self.date_range[i]) {
                    Some((lo, hi)) => (Some(iso_date(lo)), Some(iso_date(hi))),
                    None => (None, None),
                }
            }
            Some(Kind::Boolean) | None if self.field_type() != FieldType::String => (None, None),
            _ => (self.min_text.clone(), self.max_text.clone()),
        }
    }

    /// The semantic type most of a text column's values match, if at least half do.
    fn semantic(&self, kind: Option<Kind>) -> Option<SemanticMatch> {
        if kind.is_some() || self.values == 0 || self.objects + self.arrays > 0 {
            return None;
        }
        // On a tie the type tried last wins.
        let best = semantic::ALL
            .into_iter()
            .max_by_key(|&s| self.semantic[s])?;
        let confidence = self.semantic[best] as f64 / self.values as f64;
        (confidence >= 0.5).then(|| SemanticMatch {
            confidence: round(confidence),
            kind: best,
        })
    }

    /// The narrowest type that most, but not all, values fit, with where it broke.
    fn almost(&self, kind: Option<Kind>) -> Option<Almost> {
        let (almost, share) = self.almost_kind(kind)?;
        Some(Almost {
            first_offending_lines: self.failed_at[almost].clone(),
            share: round(share),
            kind: almost.into(),
        })
    }
}

fn round(share: f64) -> f64 {
    (share * 1_000_000.0).round() / 1_000_000.0
}

fn iso_date(key: u32) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        key / 10_000,
        key / 100 % 100,
        key % 100
    )
}

/// Byte order, decided on the first byte when it differs, as it mostly does: for
/// values a few bytes long, the call into `memcmp` costs more than the comparison.
fn order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.as_bytes().first(), b.as_bytes().first()) {
        (Some(x), Some(y)) if x != y => x.cmp(y),
        _ => a.cmp(b),
    }
}

/// Times of day seen, counted by how they were written.
#[derive(Debug, Default, Clone, Copy)]
struct Times {
    /// `09:15`
    minutes: u64,
    /// `09:15:00`
    seconds: u64,
    /// `09:15:00.250`
    fractions: u64,
}

impl Times {
    fn count(&mut self, layout: TimeLayout) {
        match (layout.seconds, layout.fraction) {
            (false, _) => self.minutes += 1,
            (true, false) => self.seconds += 1,
            (true, true) => self.fractions += 1,
        }
    }

    /// Each layout with its count, shortest first.
    fn seen(self) -> [(TimeLayout, u64); 3] {
        let layout = |seconds, fraction| TimeLayout { seconds, fraction };
        [
            (layout(false, false), self.minutes),
            (layout(true, false), self.seconds),
            (layout(true, true), self.fractions),
        ]
    }
}

/// What a text is, read as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumberShape {
    NotNumber,
    /// `007`: digits, but a code rather than a number.
    LeadingZeros,
    /// NaN or an infinity.
    Special,
    /// Its value, `None` beyond 64 bits.
    Integer(Option<i64>),
    Decimal,
}

fn number_shape(text: &str) -> NumberShape {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if matches!(
        unsigned,
        "NaN" | "nan" | "inf" | "Inf" | "Infinity" | "infinity"
    ) {
        return NumberShape::Special;
    }
    let b = unsigned.as_bytes();
    let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if int_len == 0 {
        return NumberShape::NotNumber;
    }
    if int_len > 1 && b[0] == b'0' {
        return NumberShape::LeadingZeros;
    }
    let mut i = int_len;
    let mut integral = true;
    if b.get(i) == Some(&b'.') {
        let frac = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if frac == 0 {
            return NumberShape::NotNumber;
        }
        i += 1 + frac;
        integral = false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp == 0 {
            return NumberShape::NotNumber;
        }
        i += exp;
        integral = false;
    }
    match (i == b.len(), integral) {
        (false, _) => NumberShape::NotNumber,
        (true, true) => NumberShape::Integer(text.parse().ok()),
        (true, false) => NumberShape::Decimal,
    }
}

/// Whether `text` (of `shape`) is an integer or a number; counts it.
fn number_fits(column: &mut Column, shape: NumberShape, text: &str) -> Fits {
    count_number(column, shape);
    let mut fits = Fits::default();
    match shape {
        NumberShape::NotNumber | NumberShape::LeadingZeros => {}
        NumberShape::Special | NumberShape::Decimal => {
            fits.number = true;
            fits.value = text.parse().ok().map(Number::Float);
        }
        // An integer column is one of 64-bit integers (`bigint`); larger ones are numbers.
        NumberShape::Integer(value) => {
            fits.number = true;
            fits.integer = value.is_some();
            fits.value = Some(match value {
                Some(v) => Number::Integer(v),
                // Digits alone, after an optional sign: always an `f64`, if infinite.
                None => Number::Huge {
                    nearest: text.parse().unwrap_or(f64::NAN),
                    digits: u32::try_from(text.trim_start_matches(['-', '+']).len())
                        .unwrap_or(u32::MAX),
                },
            });
        }
    }
    fits
}

/// Notes leading zeros, IEEE specials and integers beyond 64 bits on the column.
fn count_number(column: &mut Column, shape: NumberShape) {
    match shape {
        NumberShape::LeadingZeros => column.leading_zeros += 1,
        NumberShape::Special => column.specials += 1,
        NumberShape::Integer(None) => column.beyond_i64 += 1,
        NumberShape::NotNumber | NumberShape::Integer(Some(_)) | NumberShape::Decimal => {}
    }
}

/// What takes in records for inference: an [`Inferrer`], or a [`Background`] one on
/// its own thread.
pub trait Observe {
    /// A record of a delimited file: its fields in column order, end to end in `bytes`
    /// (each valid UTF-8), each ending where `ends` says.
    fn delimited(&mut self, line: u64, bytes: &[u8], ends: &[usize]);
    /// A JSON record, as canonical JSON.
    fn json(&mut self, line: u64, json: &[u8]);
    /// A record that could not be read.
    fn rejected(&mut self, line: u64);

    /// The record `records` returned last (on `line`, as canonical `json`), handed
    /// over the way its format reads best: a delimited record as the fields its reader
    /// split, which inference reads as text, a JSON record whole. The reader knows
    /// nothing of inference; inference knows the readers.
    fn record(&mut self, records: &Records, line: u64, json: &[u8]) {
        match records {
            Records::Csv(r) => {
                let (bytes, ends) = r.record();
                self.delimited(line, bytes, ends);
            }
            Records::Ndjson(_) | Records::Json(_) => self.json(line, json),
        }
    }
}

impl Observe for Inferrer {
    fn delimited(&mut self, line: u64, bytes: &[u8], ends: &[usize]) {
        self.observe_delimited(line, bytes, ends);
    }

    fn json(&mut self, line: u64, json: &[u8]) {
        self.observe_json(line, json);
    }

    fn rejected(&mut self, line: u64) {
        Inferrer::rejected(self, line);
    }
}

/// The inference of a whole file, column by column.
pub struct Inferrer {
    columns: Vec<Column>,
    by_name: HashMap<Vec<u8>, usize>,
    /// Each column's key, by the column's index.
    names: Vec<Vec<u8>>,
    /// The column of each place of the JSON record before: records mostly repeat their
    /// keys in order, so a key is first compared with the one at its place, and the
    /// hash of the map above is left for keys that moved.
    places: Vec<usize>,
    records: u64,
    rejected: u64,
    first_rejected_lines: Vec<u64>,
    depth: usize,
    scratch: Vec<u8>,
    keys: KeyBudget,
    /// Values met under keys past the budget, not described.
    other_keys: u64,
}

/// Columns the JSON keys of one file may still make, shared by every object of it,
/// nested ones included: keys that are data (`{"u123": …}`) would otherwise make a
/// column each, without end.
pub type KeyBudget = Arc<AtomicUsize>;

impl Default for Inferrer {
    fn default() -> Self {
        Self::with_key_budget(crate::limits::Limits::default().object_keys)
    }
}

impl Inferrer {
    /// For JSON files: at most `keys` distinct keys are described, all objects of the
    /// file together; values under keys past them are counted as `other_keys`.
    pub fn with_key_budget(keys: usize) -> Self {
        Self::nested(0, Arc::new(AtomicUsize::new(keys)))
    }

    fn nested(depth: usize, keys: KeyBudget) -> Self {
        Self {
            columns: Vec::new(),
            by_name: HashMap::new(),
            names: Vec::new(),
            places: Vec::new(),
            records: 0,
            rejected: 0,
            first_rejected_lines: Vec::new(),
            depth,
            scratch: Vec::new(),
            keys,
            other_keys: 0,
        }
    }

    /// For the file `records` reads: a delimited file's columns are known up front
    /// from its header, a JSON file's keys are bounded by its reader's budget.
    pub fn for_records(records: &Records) -> Self {
        match records {
            Records::Csv(r) => Self::with_columns(r.names()),
            Records::Ndjson(r) => Self::with_key_budget(r.object_keys()),
            Records::Json(r) => Self::with_key_budget(r.object_keys()),
        }
    }

    /// For delimited files: the columns, in file order, known from the header (whose
    /// width the reader bounds).
    pub fn with_columns(names: &[String]) -> Self {
        let mut inferrer = Self::with_key_budget(names.len());
        for name in names {
            inferrer.column(name.as_bytes());
        }
        inferrer
    }

    /// The column of key `name`, made if the file's budget of keys allows.
    fn column(&mut self, name: &[u8]) -> Option<usize> {
        if let Some(&i) = self.by_name.get(name) {
            return Some(i);
        }
        let granted = self
            .keys
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if !granted {
            self.other_keys += 1;
            return None;
        }
        let i = self.columns.len();
        let display = String::from_utf8_lossy(name).into_owned();
        self.columns.push(Column::new(display, self.depth));
        self.by_name.insert(name.to_vec(), i);
        self.names.push(name.to_vec());
        Some(i)
    }

    /// [`Inferrer::column`] for the key at `place` in its record.
    fn column_at(&mut self, place: usize, name: &[u8]) -> Option<usize> {
        if let Some(&i) = self.places.get(place) {
            if self.names[i] == name {
                return Some(i);
            }
        }
        let i = self.column(name)?;
        if place < self.places.len() {
            self.places[place] = i;
        } else if place == self.places.len() {
            self.places.push(i);
        }
        Some(i)
    }

    /// A record of a delimited file, as [`Observe::delimited`] hands it over.
    pub fn observe_delimited(&mut self, line: u64, bytes: &[u8], ends: &[usize]) {
        self.records += 1;
        // Readers hand over only fields that passed UTF-8 validation, so the record is
        // valid as a whole and every field end is a character boundary: one check.
        let text = std::str::from_utf8(bytes).unwrap_or_default();
        let mut start = 0;
        for (column, &end) in self.columns.iter_mut().zip(ends) {
            column.text(line, text.get(start..end).unwrap_or_default());
            start = end;
        }
    }

    /// A JSON record, as canonical JSON: columns are its top-level fields.
    pub fn observe_json(&mut self, line: u64, json: &[u8]) {
        self.observe_object(line, json, 0);
    }

    /// The canonical object that opens at `at` in `json`, one record of this
    /// inferrer; returns the index just past it.
    fn observe_object(&mut self, line: u64, json: &[u8], at: usize) -> usize {
        self.records += 1;
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut pos = at + 1;
        let mut end = pos + 1;
        let mut place = 0;
        while json.get(pos) == Some(&b'"') {
            let key_end = skip_string(json, pos);
            let key = &json[pos + 1..key_end - 1];
            // Columns are named by their text, as in the header of a delimited file.
            let i = if key.contains(&b'\\') {
                scratch.clear();
                crate::canonical::unescape_into(key, &mut scratch);
                let name = std::mem::take(&mut scratch);
                let i = self.column_at(place, &name);
                scratch = name;
                i
            } else {
                self.column_at(place, key)
            };
            let value_at = key_end + 1;
            let value_end = match i {
                Some(i) => self.columns[i].json(line, json, value_at, &mut scratch, &self.keys),
                None => skip_value(json, value_at),
            };
            end = value_end + 1;
            // Canonical JSON: a `,` or the closing `}` follows each member.
            if json.get(value_end) != Some(&b',') {
                break;
            }
            pos = end;
            place += 1;
        }
        self.scratch = scratch;
        end.min(json.len())
    }

    /// A record as [`Records::next_for_inference`] read it: a JSON record parsed, and
    /// its members read off the tape in canonical order, as [`Inferrer::observe_json`]
    /// reads them off its canonical JSON; a delimited record as its fields
    /// ([`Observe::record`]).
    pub fn observe_next(&mut self, records: &Records, line: u64, json: &[u8]) {
        match records.parsed() {
            Some(record) => self.observe_members(line, &record, record.fields()),
            None => self.record(records, line, json),
        }
    }

    /// The members of an object of a parsed record, one record of this inferrer, in
    /// canonical order.
    fn observe_members(&mut self, line: u64, record: &Parsed<'_>, members: &[Member]) {
        self.records += 1;
        for (place, member) in members.iter().enumerate() {
            let key = record.text(member.key);
            if let Some(i) = self.column_at(place, key.as_bytes()) {
                self.columns[i].parsed(line, record, member.value, &self.keys);
            }
        }
    }

    /// A record that could not be read.
    pub fn rejected(&mut self, line: u64) {
        self.rejected += 1;
        if self.first_rejected_lines.len() < FIRST_LINES {
            self.first_rejected_lines.push(line);
        }
    }

    /// Whether this object's keys are data (`{"u123": …}`, `{"2026-11-30": …}`): more
    /// than the file's budget of keys, or many keys each in few objects (at least
    /// [`MAP_KEYS`], present in under 1% of the objects on average). Such an object is
    /// described as a map of values, not as a column per key.
    fn is_map(&self, objects: u64) -> bool {
        if self.other_keys > 0 {
            return true;
        }
        let keys = self.columns.len() as u64;
        let present: u64 = self.columns.iter().map(|c| c.values + c.nulls).sum();
        keys >= MAP_KEYS && present.saturating_mul(100) < keys.saturating_mul(objects)
    }

    /// The description of a map-like object: its keys, and the one type that holds
    /// the values of all of them.
    fn map(&self, objects: u64) -> Option<MapReport> {
        if !self.is_map(objects) {
            return None;
        }
        let values = self
            .columns
            .iter()
            .filter(|c| c.values > 0)
            .map(Column::field_type)
            .reduce(FieldType::join)
            .unwrap_or(FieldType::Null);
        Some(MapReport {
            keys_described: self.columns.len(),
            values,
            values_under_other_keys: self.other_keys,
        })
    }

    fn column_reports(&self, records: u64) -> Vec<ColumnReport> {
        self.columns.iter().map(|c| c.report(records)).collect()
    }

    /// What the file holds, for `bronze infer` to print, a load to store
    /// (`bronze.loads.inference`) and the schema registry to read ([`Report::schema`]).
    pub fn report(&self, detected: &Detected) -> Report {
        let map = self.map(self.records);
        Report {
            // Records whose keys are data have no columns: the payload keeps them.
            columns: match map {
                Some(_) => Vec::new(),
                None => self.column_reports(self.records),
            },
            compression: detected.gzip.then_some("gzip"),
            delimiter: detected.dialect.map(|d| char::from(d.delimiter)),
            encoding: detected.encoding.name(),
            first_rejected_lines: self.first_rejected_lines.clone(),
            format: detected.format.name(),
            header: detected.dialect.map(|d| d.header),
            map,
            records: self.records,
            rejected: self.rejected,
        }
    }
}

#[cfg(test)]
mod tape_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod walk_tests;
