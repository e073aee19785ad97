//! The SQL of `…/records`, its count and its stream. Identifiers come from a checked
//! [`Destination`] (quoted) and field names from the registry (escaped literals, as
//! the typed view writes them); every value a client sent is a bind parameter, sent
//! as text and cast to its field's type in SQL.

use crate::keys::Destination;
use crate::schema::{Field, FieldType};
use crate::store::dataset_table;
use crate::typed::{cast_of, literal, Cast};

use super::cursor::Cursor;
use super::filter::{Direction, Filter, Op, Params};

/// A field of the row aliased `t`, as its registered type.
fn cast(field: &Field) -> Cast {
    cast_of(field, "t.payload")
}

/// A statement and its parameters, all text.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sql {
    /// The statement.
    pub text: String,
    /// `$1`, `$2`, … in order.
    pub params: Vec<String>,
}

impl Sql {
    /// Adds `value` as the next parameter; returns its placeholder, typed as text so
    /// the server never guesses another type for it.
    fn bind(&mut self, value: &str) -> String {
        self.params.push(value.to_owned());
        format!("${}::text", self.params.len())
    }

    /// The parameters as tokio-postgres takes them.
    pub fn args(&self) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect()
    }
}

/// What the statement returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One JSON record per row (key, version, data, lineage on request), its sort value
    /// and its key, for a page and its cursor: `limit` rows.
    Page(u32),
    /// One JSON document per row: the data, or the whole record with lineage.
    Stream,
    /// `count(*)`.
    Count,
    /// Bare rows, for the planner's estimate of how many match.
    Rows,
}

/// The lineage of a row, as a JSON object.
pub const LINEAGE: &str = "jsonb_build_object('change_type', t.change_type,
    'valid_from', t.valid_from, 'valid_to', t.valid_to, 'schema_version', t.schema_version,
    'load_id', t.load_id, 'source_bucket', t.source_bucket, 'source_key', t.source_key,
    'source_version_id', t.source_version_id, 'source_line', t.source_line,
    'ingested_at', t.ingested_at)";

/// The record's data: the whole payload, or the selected fields.
pub fn data(select: &[String]) -> String {
    if select.is_empty() {
        return "t.payload".to_owned();
    }
    let pairs: Vec<String> = select
        .iter()
        .map(|f| {
            let name = literal(f);
            format!("{name}, t.payload -> {name}")
        })
        .collect();
    format!("jsonb_build_object({})", pairs.join(", "))
}

/// A record as the API shows it: key, version, data, and lineage when asked.
pub fn record(select: &[String], lineage: bool) -> String {
    let base = format!(
        "jsonb_build_object('key', t.record_key, 'version', t.version, 'data', {})",
        data(select)
    );
    if lineage {
        format!("({base} || jsonb_build_object('lineage', {LINEAGE}))")
    } else {
        base
    }
}

/// The statement for `params` over `dest`'s table, after `cursor`.
pub fn records(dest: &Destination, params: &Params, shape: Shape, cursor: Option<&Cursor>) -> Sql {
    let mut sql = Sql::default();
    let mut conditions = vec![match &params.as_of {
        None => "t.is_current AND t.change_type <> 'delete'".to_owned(),
        Some(at) => {
            let at = sql.bind(at);
            format!(
                "t.valid_from <= {at}::timestamptz
                 AND (t.valid_to IS NULL OR t.valid_to > {at}::timestamptz)
                 AND t.change_type <> 'delete'"
            )
        }
    }];
    if !params.keys.is_empty() {
        let keys: Vec<String> = params.keys.iter().map(|k| sql.bind(k)).collect();
        conditions.push(format!("t.record_key IN ({})", keys.join(", ")));
    }
    for filter in &params.filters {
        conditions.push(condition(&mut sql, filter, params.containment));
    }
    let sort = params.order.as_ref().map(|o| Sort {
        expr: cast(&o.field).expr,
        sql_type: compared_as(&o.field),
        direction: o.direction,
    });
    if let Some(cursor) = cursor {
        conditions.push(after(&mut sql, sort.as_ref(), cursor));
    }
    let table = dataset_table(dest);
    let filter = conditions.join("\n   AND ");
    let order_by = match &sort {
        Some(Sort {
            expr,
            direction: Direction::Asc,
            ..
        }) => format!("{expr} ASC NULLS LAST, t.record_key"),
        Some(Sort {
            expr,
            direction: Direction::Desc,
            ..
        }) => format!("{expr} DESC NULLS LAST, t.record_key"),
        None => "t.record_key".to_owned(),
    };
    sql.text = match shape {
        Shape::Count => format!("SELECT count(*) FROM {table} t WHERE {filter}"),
        Shape::Rows => format!("SELECT 1 FROM {table} t WHERE {filter}"),
        Shape::Stream => {
            let item = if params.lineage {
                record(&params.select, true)
            } else {
                data(&params.select)
            };
            // In storage order unless asked: a sequential scan, the fastest read.
            let order_by = sort
                .as_ref()
                .map(|_| format!(" ORDER BY {order_by}"))
                .unwrap_or_default();
            format!("SELECT ({item})::text FROM {table} t WHERE {filter}{order_by}")
        }
        Shape::Page(limit) => {
            let sort_value = sort
                .as_ref()
                .map_or_else(|| "NULL".to_owned(), |s| format!("({})::text", s.expr));
            format!(
                "SELECT ({})::text, {sort_value}, t.record_key FROM {table} t
                 WHERE {filter} ORDER BY {order_by} LIMIT {}",
                record(&params.select, params.lineage),
                u64::from(limit) + 1
            )
        }
    };
    sql
}

/// One filter as a condition; `containment`: the dataset has a GIN payload index.
fn condition(sql: &mut Sql, filter: &Filter, containment: bool) -> String {
    let containment = containment && containable(filter.field.kind);
    let name = literal(&filter.field.name);
    match filter.op {
        // Null or absent, whatever the type: what the payload holds, not what casts.
        Op::IsNull => return format!("(t.payload ->> {name}) IS NULL"),
        Op::IsNotNull => return format!("(t.payload ->> {name}) IS NOT NULL"),
        _ => {}
    }
    let typed = cast(&filter.field);
    let sql_type = compared_as(&filter.field);
    let mut value = |v: &str| typed_value(sql.bind(v), sql_type);
    match filter.op {
        Op::In => {
            let list: Vec<String> = filter.values.iter().map(|v| value(v)).collect();
            format!("{} IN ({})", typed.expr, list.join(", "))
        }
        op => {
            let raw = filter.values.first().map_or("", String::as_str);
            let v = value(raw);
            let exact = format!("{} {} {v}", typed.expr, op.sql());
            if op != Op::Eq || !containment {
                return exact;
            }
            // What the payload holds for this value: a string (CSV), or for an integer
            // also the JSON number. The typed comparison stays, so the answer is the
            // same with or without the index; containment only lets it be used.
            let mut shapes = vec![serde_json::json!({ &filter.field.name: raw })];
            if filter.field.kind == FieldType::Integer {
                if let Ok(n) = raw.parse::<i64>() {
                    shapes.push(serde_json::json!({ &filter.field.name: n }));
                }
            }
            let contained: Vec<String> = shapes
                .iter()
                .map(|s| format!("t.payload @> {}::jsonb", sql.bind(&s.to_string())))
                .collect();
            format!("({}) AND {exact}", contained.join(" OR "))
        }
    }
}

/// Whether an `eq` on a field of `kind` may be asked as containment: its values are
/// stored as the text the filter compares (a string, or an integer's digits), so
/// containment finds every row the typed comparison accepts. Numbers (`1.50`),
/// dates and booleans may be stored in other spellings.
fn containable(kind: FieldType) -> bool {
    matches!(
        kind,
        FieldType::String | FieldType::Null | FieldType::Integer
    )
}

/// Rows after the cursor's, in the order `ORDER BY <sort> NULLS LAST, record_key`
/// gives: a greater (or, descending, smaller) sort value, or the same one and a
/// greater key, or a null sort value (nulls come last, by key).
fn after(sql: &mut Sql, sort: Option<&Sort>, cursor: &Cursor) -> String {
    let key = sql.bind(&cursor.key);
    let Some(sort) = sort else {
        return format!("t.record_key > {key}");
    };
    let expr = &sort.expr;
    let Some(value) = &cursor.value else {
        return format!("({expr} IS NULL AND t.record_key > {key})");
    };
    let value = typed_value(sql.bind(value), sort.sql_type);
    let beyond = match sort.direction {
        Direction::Asc => ">",
        Direction::Desc => "<",
    };
    format!(
        "({expr} {beyond} {value} OR ({expr} = {value} AND t.record_key > {key}) OR {expr} IS NULL)"
    )
}

/// A text placeholder cast to the type its field compares as.
fn typed_value(placeholder: String, sql_type: Option<&'static str>) -> String {
    match sql_type {
        Some(t) => format!("{placeholder}::{t}"),
        None => placeholder,
    }
}

/// The type a field's values compare as: its cast's, and `jsonb` for JSON values.
fn compared_as(field: &Field) -> Option<&'static str> {
    match field.kind {
        FieldType::Object | FieldType::Array | FieldType::Mixed => Some("jsonb"),
        _ => cast(field).sql_type,
    }
}

/// The order of a page: the field's typed expression and direction.
struct Sort {
    expr: String,
    sql_type: Option<&'static str>,
    direction: Direction,
}
