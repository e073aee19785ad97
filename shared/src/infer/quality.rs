//! Quality figures per load and column, read off the counters inference keeps anyway:
//! no second pass over the file.
//!
//! Figures are measured against the schema version the load lands in, since that is
//! what consumers of the dataset were promised: completeness (share non-null),
//! validity (share fitting the version's type, and its semantic type if it has one),
//! uniqueness (distinct / non-null), consistency (share in the dominant layout, for
//! dates, times and timestamps).

use serde::Serialize;

use super::temporal::{self, Temporal, DATE_FORMATS};
use super::{
    is_boolean, number_shape, round, semantic, Column, Inferrer, Kind, NumberShape, ALMOST, KINDS,
};
use crate::schema::{field_order, Field, FieldType, Schema};

/// The quality of one column in one load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnQuality {
    /// The column's place in the schema version.
    pub position: i32,
    /// The column's name.
    pub name: String,
    #[serde(rename = "type")]
    /// Its type in the version.
    pub kind: FieldType,
    /// Its semantic type in the version, if any.
    pub semantic: Option<String>,
    /// Whether it is one of the dataset's key columns.
    pub is_key: bool,
    /// Records of the load.
    pub records: u64,
    /// Of them, records with a value in this column.
    pub non_null: u64,
    /// Values fitting the type (and semantic type); `None` where the type is untyped.
    pub valid: Option<u64>,
    /// Distinct values (exact up to 1,024, estimated beyond).
    pub distinct: u64,
    /// For key columns: records whose key an earlier record of the file had.
    pub duplicates: Option<u64>,
    /// Values in the dominant layout, for temporal columns.
    pub consistent: Option<u64>,
    /// Share of records with a value.
    pub completeness: f64,
    /// Share of values fitting the type (and semantic type); `None` where untyped.
    pub validity: Option<f64>,
    /// Share of distinct values among the values.
    pub uniqueness: Option<f64>,
    /// Share of values in the dominant layout, for temporal columns.
    pub consistency: Option<f64>,
    /// The mean of the figures that apply; uniqueness counts only for key columns.
    pub score: f64,
}

/// The quality of one load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quality {
    /// Each column of the version, in its order.
    pub columns: Vec<ColumnQuality>,
    /// The mean of the column scores; `None` for a file without records.
    pub score: Option<f64>,
}

impl Inferrer {
    /// The quality of the records loaded, against `version`. `keys` are the dataset's
    /// key columns; `key_duplicates` the records whose key repeated an earlier one.
    pub fn quality(&self, version: &Schema, keys: &[String], key_duplicates: u64) -> Quality {
        if self.records == 0 {
            return Quality {
                columns: Vec::new(),
                score: None,
            };
        }
        // Uniqueness of the key as a whole: a composite key's columns repeat on their
        // own, and that is no defect.
        let key_uniqueness = 1.0 - key_duplicates as f64 / self.records as f64;
        let mut scores = Vec::new();
        let columns: Vec<ColumnQuality> = version
            .fields
            .iter()
            .enumerate()
            .map(|(i, field)| {
                let column = self
                    .by_name
                    .get(field.name.as_bytes())
                    .map(|&at| &self.columns[at]);
                let key = keys
                    .contains(&field.name)
                    .then_some((key_duplicates, key_uniqueness));
                let position = i32::try_from(i).unwrap_or(i32::MAX);
                let (quality, score) = column_quality(position, field, column, self.records, key);
                scores.push(Some(score));
                quality
            })
            .collect();
        let score = mean(scores.into_iter()).map(round);
        Quality { columns, score }
    }
}

/// One column's figures, rounded for storage, and its unrounded score (so a load's
/// score is not rounded twice).
fn column_quality(
    position: i32,
    field: &Field,
    column: Option<&Column>,
    records: u64,
    key: Option<(u64, f64)>,
) -> (ColumnQuality, f64) {
    let non_null = column.map_or(0, |c| c.values);
    let share = |n: u64| (non_null > 0).then(|| n as f64 / non_null as f64);
    let valid = column.and_then(|c| valid_values(c, field));
    let consistent = column.and_then(|c| consistent_values(c, field));
    let distinct = column.map_or(0, |c| c.distinct.estimate()).min(non_null);
    let completeness = non_null as f64 / records as f64;
    let validity = valid.and_then(share);
    let consistency = consistent.and_then(share);
    let figures = [Some(completeness), validity, consistency, key.map(|k| k.1)];
    let score = mean(figures.into_iter()).unwrap_or(completeness);
    let quality = ColumnQuality {
        position,
        name: field.name.clone(),
        kind: field.kind,
        semantic: field.semantic.clone(),
        is_key: key.is_some(),
        records,
        non_null,
        valid,
        distinct,
        duplicates: key.map(|k| k.0),
        consistent,
        completeness: round(completeness),
        validity: validity.map(round),
        uniqueness: share(distinct).map(round),
        consistency: consistency.map(round),
        score: round(score),
    };
    (quality, score)
}

fn mean(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let (sum, n) = values
        .flatten()
        .fold((0.0, 0u32), |(sum, n), v| (sum + v, n + 1));
    (n > 0).then(|| sum / f64::from(n))
}

/// Values fitting the version's type and semantic type: what the typed view can cast.
/// A text column whose values almost all fit a narrower type is measured against that
/// type: a 95%-integer column is 95% valid, not 100%.
fn valid_values(column: &Column, field: &Field) -> Option<u64> {
    let kind = match field.kind {
        FieldType::String => column.almost_kind(None).map(|(kind, _)| kind),
        FieldType::Null | FieldType::Object | FieldType::Array | FieldType::Mixed => {
            return None;
        }
        other => KINDS.iter().copied().find(|k| FieldType::from(*k) == other),
    };
    let typed = match kind {
        None => column.values,
        // The view reads dates in the version's field order, with any separator.
        Some(Kind::Date | Kind::Timestamp) => {
            in_order(column, field, kind == Some(Kind::Timestamp))
        }
        Some(kind) => column.fits[kind],
    };
    let semantic = field.semantic.as_deref().and_then(|name| {
        semantic::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .map(|s| column.semantic[s])
    });
    Some(semantic.map_or(typed, |s| s.min(typed)))
}

/// Dates (and with `timestamps`, timestamps) whose fields are in the order of the
/// version's layout. One value matches at most one layout of an order: the layouts of
/// an order differ only in their separator.
fn in_order(column: &Column, field: &Field, timestamps: bool) -> u64 {
    let order = field.format.as_deref().map_or("ymd", field_order);
    let same = |i: usize| field_order(DATE_FORMATS[i]) == order;
    let dates: u64 = (0..DATE_FORMATS.len())
        .filter(|&i| same(i))
        .map(|i| column.date_formats[i])
        .sum();
    let stamps: u64 = column
        .timestamps
        .iter()
        .filter(|((date, ..), _)| same(*date))
        .map(|(_, n)| *n)
        .sum();
    dates + if timestamps { stamps } else { 0 }
}

fn consistent_values(column: &Column, field: &Field) -> Option<u64> {
    let dates = column.date_formats.iter().copied().max().unwrap_or(0);
    match field.kind {
        FieldType::Date => Some(dates),
        FieldType::Timestamp => {
            let stamps = column.timestamps.iter().map(|(_, n)| *n).max().unwrap_or(0);
            Some(stamps.max(dates))
        }
        FieldType::Time => column.times.seen().into_iter().map(|(_, n)| n).max(),
        _ => None,
    }
}

impl Column {
    /// The narrowest candidate type narrower than `below` (of all, with none) that
    /// most, but not all, values fit, and the share that fits.
    pub(super) fn almost_kind(&self, below: Option<Kind>) -> Option<(Kind, f64)> {
        if self.values == 0 {
            return None;
        }
        KINDS
            .into_iter()
            .filter(|&kind| below.is_none_or(|below| kind < below))
            .map(|kind| (kind, self.fits[kind] as f64 / self.values as f64))
            .filter(|(_, share)| *share >= ALMOST && *share < 1.0)
            // On a tie the narrower type, which comes first, wins.
            .reduce(|best, next| if next.1 > best.1 { next } else { best })
    }
}

/// Whether a text value (not a null marker) fits a column of `kind` laid out as
/// `format`: what a `discard_row` contract asks of every value of a delimited file.
pub fn text_fits(kind: FieldType, format: Option<&str>, text: &str) -> bool {
    match kind {
        FieldType::Null | FieldType::String | FieldType::Mixed => true,
        FieldType::Object | FieldType::Array => false,
        FieldType::Boolean => is_boolean(text),
        FieldType::Integer => matches!(number_shape(text), NumberShape::Integer(Some(_))),
        FieldType::Number => matches!(
            number_shape(text),
            NumberShape::Integer(_) | NumberShape::Decimal | NumberShape::Special
        ),
        FieldType::Date | FieldType::Time | FieldType::Timestamp => {
            temporal_fits(kind, format, text)
        }
    }
}

fn temporal_fits(kind: FieldType, format: Option<&str>, text: &str) -> bool {
    let layout = format.and_then(|f| DATE_FORMATS.iter().position(|d| f.starts_with(d)));
    let date_ok = |set: temporal::FormatSet| layout.is_none_or(|i| set & (1 << i) != 0);
    match (kind, temporal::classify(text.as_bytes())) {
        (FieldType::Date, Some(Temporal::Date(set))) => date_ok(set),
        (FieldType::Time, Some(Temporal::Time(_))) => true,
        (
            FieldType::Timestamp,
            Some(Temporal::Date(set) | Temporal::Timestamp { date: set, .. }),
        ) => date_ok(set),
        _ => false,
    }
}
