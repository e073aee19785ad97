//! The query string of `…/records`: filters `field=op.value` over payload fields,
//! `order`, `select`, `limit`, `cursor`, `as_of`, `lineage`. Everything a client
//! names is checked here against the dataset's registered schema, and every value
//! against its field's type, so what reaches the SQL builder is a field of the
//! registry and a value that casts.

use crate::schema::{Field, FieldType, Schema};

use super::problem::Problem;

/// The query parameters that are not filters.
const RESERVED: [&str; 7] = [
    "order", "select", "limit", "cursor", "as_of", "lineage", "count",
];

/// A comparison, PostgREST's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Equal.
    Eq,
    /// Not equal (a missing value is not "not equal": it is null).
    Ne,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Gte,
    /// Less than.
    Lt,
    /// Less than or equal.
    Lte,
    /// One of a comma-separated list.
    In,
    /// SQL `LIKE` (`*` may stand for `%`), text fields only.
    Like,
    /// Case-insensitive `LIKE`, text fields only.
    Ilike,
    /// The field is null or absent.
    IsNull,
    /// The field has a value.
    IsNotNull,
}

impl Op {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "in" => Op::In,
            "like" => Op::Like,
            "ilike" => Op::Ilike,
            "is_null" => Op::IsNull,
            "is_not_null" => Op::IsNotNull,
            _ => return None,
        })
    }

    /// The SQL operator of a binary comparison.
    pub fn sql(self) -> &'static str {
        match self {
            Op::Eq | Op::In => "=",
            Op::Ne => "<>",
            Op::Gt => ">",
            Op::Gte => ">=",
            Op::Lt => "<",
            Op::Lte => "<=",
            Op::Like => "LIKE",
            Op::Ilike => "ILIKE",
            Op::IsNull => "IS NULL",
            Op::IsNotNull => "IS NOT NULL",
        }
    }
}

/// One checked filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The registered field.
    pub field: Field,
    /// The comparison.
    pub op: Op,
    /// The values as text, each one known to cast to the field's type (one, except
    /// for `in`; none for the null tests).
    pub values: Vec<String>,
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Smallest first.
    Asc,
    /// Largest first.
    Desc,
}

/// `order=field.asc|desc`: the field, then the record key as the tie-break.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    /// The registered field.
    pub field: Field,
    /// Which way.
    pub direction: Direction,
}

/// Everything `…/records` and its `count` and `stream` were asked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Params {
    /// Filters, all of which must hold.
    pub filters: Vec<Filter>,
    /// The order; `None` is by record key.
    pub order: Option<Order>,
    /// The fields to return; empty is the whole payload.
    pub select: Vec<String>,
    /// `limit`, when given.
    pub limit: Option<u32>,
    /// The opaque cursor of the previous page.
    pub cursor: Option<String>,
    /// `as_of`, an RFC 3339 instant known to parse.
    pub as_of: Option<String>,
    /// Whether each record carries its lineage.
    pub lineage: bool,
    /// Only these record keys (set by the endpoint of one record, never by the query).
    pub keys: Vec<String>,
    /// The dataset has a GIN index over its payload: `eq` on text and integers is
    /// also asked as containment, which that index serves (set from the dataset's
    /// indexes, never by the query).
    pub containment: bool,
}

impl Params {
    /// Reads and checks `query` (already split and percent-decoded) against `schema`.
    pub fn parse(query: &[(String, String)], schema: &Schema) -> Result<Self, Problem> {
        let mut params = Params::default();
        for (name, value) in query {
            match name.as_str() {
                "order" => params.order = Some(order(value, schema)?),
                "select" => {
                    params.select = value
                        .split(',')
                        .map(|f| known(f.trim(), schema).map(|f| f.name.clone()))
                        .collect::<Result<_, _>>()?;
                }
                "limit" => {
                    params.limit = Some(value.parse().map_err(|_| {
                        Problem::bad_request(
                            "limit",
                            format!("limit {value:?} is not a whole number"),
                        )
                    })?);
                }
                "cursor" => params.cursor = Some(value.clone()),
                "as_of" => {
                    if !is_timestamp(value, true) {
                        return Err(Problem::bad_request(
                            "as_of",
                            format!(
                                "as_of {value:?} is not an RFC 3339 instant (2026-11-30T12:00:00Z)"
                            ),
                        ));
                    }
                    params.as_of = Some(value.clone());
                }
                "lineage" => params.lineage = flag("lineage", value)?,
                // Read by the endpoints that use them.
                "count" => {}
                _ => params.filters.push(filter(name, value, schema)?),
            }
        }
        Ok(params)
    }
}

fn flag(name: &str, value: &str) -> Result<bool, Problem> {
    match value {
        "true" | "1" | "" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(Problem::bad_request(
            name,
            format!("{name} is true or false, not {value:?}"),
        )),
    }
}

/// The registered field `name`, or a 400 listing the known ones.
pub fn known<'a>(name: &str, schema: &'a Schema) -> Result<&'a Field, Problem> {
    schema.field(name).ok_or_else(|| {
        Problem::unknown_field(name, schema.fields.iter().map(|f| f.name.clone()).collect())
    })
}

fn order(value: &str, schema: &Schema) -> Result<Order, Problem> {
    let (name, direction) = match value.rsplit_once('.') {
        Some((name, "asc")) => (name, Direction::Asc),
        Some((name, "desc")) => (name, Direction::Desc),
        _ => (value, Direction::Asc),
    };
    Ok(Order {
        field: known(name, schema)?.clone(),
        direction,
    })
}

fn filter(name: &str, value: &str, schema: &Schema) -> Result<Filter, Problem> {
    if RESERVED.contains(&name) {
        return Err(Problem::bad_request(name, "a reserved parameter"));
    }
    let field = known(name, schema)?;
    let (op_name, operand) = value.split_once('.').unwrap_or((value, ""));
    let op = Op::parse(op_name).ok_or_else(|| {
        Problem::bad_request(
            name,
            format!(
                "{op_name:?} is no operator: use eq, ne, gt, gte, lt, lte, in, like, ilike, is_null or is_not_null (field=op.value)"
            ),
        )
    })?;
    let values = match op {
        Op::IsNull | Op::IsNotNull => Vec::new(),
        Op::In => {
            let list = operand
                .strip_prefix('(')
                .and_then(|l| l.strip_suffix(')'))
                .unwrap_or(operand);
            list.split(',').map(str::to_owned).collect()
        }
        Op::Like | Op::Ilike => {
            if !matches!(field.kind, FieldType::String | FieldType::Null) {
                return Err(Problem::bad_request(
                    name,
                    format!(
                        "{op_name} compares text; {name:?} is registered as {}",
                        field.kind.name()
                    ),
                ));
            }
            vec![operand.replace('*', "%")]
        }
        _ => vec![operand.to_owned()],
    };
    let ordered = matches!(op, Op::Gt | Op::Gte | Op::Lt | Op::Lte);
    if ordered
        && matches!(
            field.kind,
            FieldType::Object | FieldType::Array | FieldType::Mixed | FieldType::Boolean
        )
    {
        return Err(Problem::bad_request(
            name,
            format!(
                "{op_name} needs an ordered type; {name:?} is registered as {}",
                field.kind.name()
            ),
        ));
    }
    if let Some(bad) = values.iter().find(|v| !fits(field.kind, v)) {
        return Err(Problem::bad_request(
            name,
            format!(
                "{bad:?} is not a value of {name:?}, which is registered as {}",
                field.kind.name()
            ),
        ));
    }
    Ok(Filter {
        field: field.clone(),
        op,
        values,
    })
}

/// Whether `value` casts to what `kind` reads as (see [`crate::typed::cast`]), so the
/// query cannot fail on it: checked here to name the field in a 400.
pub fn fits(kind: FieldType, value: &str) -> bool {
    match kind {
        FieldType::Integer => value.parse::<i64>().is_ok(),
        FieldType::Number => {
            value.parse::<f64>().is_ok_and(f64::is_finite)
                && !value.contains(['x', 'X', 'i', 'I', 'n', 'N'])
        }
        FieldType::Boolean => matches!(value, "true" | "false"),
        FieldType::Date => is_date(value),
        FieldType::Time => is_time(value),
        FieldType::Timestamp => is_timestamp(value, false),
        FieldType::Object | FieldType::Array | FieldType::Mixed => {
            serde_json::from_str::<serde::de::IgnoredAny>(value).is_ok()
        }
        FieldType::String | FieldType::Null => true,
    }
}

fn digits(s: &[u8]) -> bool {
    s.iter().all(u8::is_ascii_digit)
}

/// `YYYY-MM-DD` with a month and day that exist in some year.
fn is_date(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && digits(&b[..4])
        && digits(&b[5..7])
        && digits(&b[8..])
        && (1..=12).contains(&v[5..7].parse::<u8>().unwrap_or(0))
        && (1..=31).contains(&v[8..].parse::<u8>().unwrap_or(0))
}

/// `HH:MM`, `HH:MM:SS` or `HH:MM:SS.fff`.
fn is_time(v: &str) -> bool {
    let b = v.as_bytes();
    let (hm, rest) = b.split_at(b.len().min(5));
    let base = hm.len() == 5
        && hm[2] == b':'
        && digits(&hm[..2])
        && digits(&hm[3..])
        && v[..2] < *"24"
        && v[3..5] < *"60";
    let seconds = match rest {
        [] => true,
        [b':', s @ ..] if s.len() >= 2 => {
            digits(&s[..2])
                && &s[..2] < b"60".as_slice()
                && (s.len() == 2 || (s[2] == b'.' && s.len() > 3 && digits(&s[3..])))
        }
        _ => false,
    };
    base && seconds
}

/// A date with a time (`T` or a space between) and, when `zoned` is required, a zone
/// (`Z` or `±HH:MM`); a plain date also passes when no zone is required.
fn is_timestamp(v: &str, zoned: bool) -> bool {
    if v.len() < 10 || !v.is_char_boundary(10) || !is_date(&v[..10]) {
        return false;
    }
    let rest = &v[10..];
    if rest.is_empty() {
        return !zoned;
    }
    let Some(rest) = rest.strip_prefix(['T', 't', ' ']) else {
        return false;
    };
    let (time, zone) = if let Some(t) = rest.strip_suffix(['Z', 'z']) {
        (t, true)
    } else if let Some(at) = rest.rfind(['+', '-']) {
        let zone = &rest[at + 1..];
        let ok = zone.len() == 5 && is_time(zone) || zone.len() == 2 && digits(zone.as_bytes());
        if !ok {
            return false;
        }
        (&rest[..at], true)
    } else {
        (rest, false)
    };
    is_time(time) && (zone || !zoned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        let field = Field::test;
        Schema {
            fields: vec![
                field("id", FieldType::Integer),
                field("amount", FieldType::Number),
                field("day", FieldType::Date),
                field("name", FieldType::String),
            ],
        }
    }

    fn parse(query: &[(&str, &str)]) -> Result<Params, Problem> {
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Params::parse(&query, &schema())
    }

    #[test]
    fn values_must_fit_their_field() {
        assert!(parse(&[("id", "eq.12")]).is_ok());
        let e = parse(&[("id", "eq.1.5")]).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("id"));
        assert!(parse(&[("amount", "gt.-1.5e3")]).is_ok());
        assert!(parse(&[("amount", "gt.NaN")]).is_err());
        assert!(
            parse(&[("day", "gte.2026-02-30")]).is_ok(),
            "PostgreSQL says no to the day, not the shape"
        );
        assert!(parse(&[("day", "gte.2026-13-01")]).is_err());
        assert!(parse(&[("day", "in.(2026-01-01,2026-01-02)")]).is_ok());
        assert!(parse(&[("name", "like.a*")]).is_ok());
        assert!(parse(&[("id", "like.1*")]).is_err());
        assert!(parse(&[("id", "between.1")]).is_err());
    }

    #[test]
    fn unknown_fields_are_named_with_the_known_ones() {
        let e = parse(&[("nope", "eq.1")]).unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.field.as_deref(), Some("nope"));
        assert_eq!(e.known_fields.unwrap(), ["id", "amount", "day", "name"]);
        assert!(parse(&[("select", "id,nope")]).is_err());
        assert!(parse(&[("order", "nope.desc")]).is_err());
    }

    #[test]
    fn timestamps() {
        assert!(is_timestamp("2026-11-30T12:00:00Z", true));
        assert!(is_timestamp("2026-11-30T12:00:00.123+02:00", true));
        assert!(is_timestamp("2026-11-30 12:00", false));
        assert!(!is_timestamp("2026-11-30 12:00", true));
        assert!(!is_timestamp("2026-11-30T25:00:00Z", true));
        assert!(!is_timestamp("yesterday", false));
    }
}
