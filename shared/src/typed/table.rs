//! Structured storage: `<dataset>_typed` as a table of the current rows, with native
//! columns and `_bronze_key` (the record key) as its primary key.
//!
//! The load keeps it in its own transaction from what the merge wrote: the keys listed
//! in `pg_temp.bronze_touched` are upserted from their current rows, or removed when
//! they have none; other keys are not touched. So the table is never stale, and a
//! rolled-back load leaves it as it was. The primary key is the record key rather
//! than the typed key columns: a cast may map two keys to one value ("7" and " 7") or
//! to NULL, and a load must never fail on that; the typed key columns get an index of
//! their own ([`super::index`]).

use std::collections::HashSet;

use tokio_postgres::Transaction;

use super::{attempt, column_list, columns, quote_ident, select_list, Column, CURRENT};
use crate::keys::Destination;
use crate::schema::{field_order, FieldType, Schema};
use crate::store::dataset_table;

/// The quoted name of the typed relation (view or table).
pub(super) fn name(dest: &Destination) -> String {
    super::view_name(dest)
}

/// What kind of relation holds the typed name now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Nothing.
    Missing,
    /// A view (jsonb storage).
    View,
    /// A table (structured storage).
    Table,
}

/// The kind of relation named `<dataset>_typed`.
pub(super) async fn kind(
    tx: &Transaction<'_>,
    dest: &Destination,
) -> Result<Kind, tokio_postgres::Error> {
    let row = tx
        .query_opt(
            "SELECT relkind::text FROM pg_class WHERE oid = to_regclass($1)",
            &[&name(dest)],
        )
        .await?;
    Ok(match row.as_ref().map(|r| r.get::<_, &str>(0)) {
        None => Kind::Missing,
        Some("r" | "p") => Kind::Table,
        Some(_) => Kind::View,
    })
}

/// The GRANT statements that give a new relation of the typed name the privileges the
/// present one has (those given by hand to analysts' roles too, not only the tenant
/// reader's default privilege), so replacing a view by a table, or a table by a
/// newer one, takes no reader's access away.
pub(super) async fn grants(
    tx: &Transaction<'_>,
    dest: &Destination,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = tx
        .query(
            "SELECT a.privilege_type,
                    CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END
             FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
             LEFT JOIN pg_roles r ON r.oid = a.grantee
             WHERE c.oid = to_regclass($1) AND a.grantee <> c.relowner",
            &[&name(dest)],
        )
        .await?;
    let relation = name(dest);
    Ok(rows
        .iter()
        .map(|row| {
            let privilege: &str = row.get(0);
            let grantee: &str = row.get(1);
            format!("GRANT {privilege} ON {relation} TO {grantee}")
        })
        .collect())
}

/// Makes the typed table from the bronze table's current rows, in place of whatever
/// holds the name (the view, or a table of an older shape), with the privileges it
/// had. When the old relation cannot go (views users built on it), it stays and the
/// reason is returned.
pub(super) async fn build(
    tx: &Transaction<'_>,
    dest: &Destination,
    schema: &Schema,
) -> Result<Option<String>, tokio_postgres::Error> {
    let typed = name(dest);
    let grants = grants(tx, dest).await?;
    let drop = match kind(tx, dest).await? {
        Kind::Missing => String::new(),
        Kind::View => format!("DROP VIEW {typed};"),
        Kind::Table => format!("DROP TABLE {typed};"),
    };
    let columns = columns(schema);
    let create = format!(
        "{drop}
         CREATE TABLE {typed} AS SELECT {} FROM {} t WHERE {CURRENT};
         ALTER TABLE {typed} ADD PRIMARY KEY (_bronze_key);",
        select_list(&columns),
        dataset_table(dest)
    );
    if let Err(e) = attempt(tx, &create).await? {
        return Ok(Some(format!(
            "typed table {typed} not built, the old relation left as it was: {}",
            crate::aws::describe(&e)
        )));
    }
    for grant in grants {
        tx.batch_execute(&grant).await?;
    }
    hand_over(tx, dest).await?;
    Ok(None)
}

/// Gives the typed relation to the bronze table's owner when someone else made it (the
/// owner role, in `bronze datasets set` or `bronze typed rebuild`): the loader role
/// owns a tenant's tables and must alter and write this one in its loads. The owner
/// may, being a member of every loader role (`bronze migrate --loader`).
pub(super) async fn hand_over(
    tx: &Transaction<'_>,
    dest: &Destination,
) -> Result<(), tokio_postgres::Error> {
    let row = tx
        .query_one(
            "SELECT quote_ident(pg_get_userbyid(b.relowner)), b.relowner <> t.relowner,
                    t.relkind::text
             FROM pg_class b, pg_class t
             WHERE b.oid = to_regclass($1) AND t.oid = to_regclass($2)",
            &[&dataset_table(dest).as_str(), &name(dest)],
        )
        .await?;
    let (owner, differs, relkind): (&str, bool, &str) = (row.get(0), row.get(1), row.get(2));
    if differs {
        let what = if relkind == "v" { "VIEW" } else { "TABLE" };
        tx.batch_execute(&format!("ALTER {what} {} OWNER TO {owner}", name(dest)))
            .await?;
    }
    Ok(())
}

/// Brings the table's rows in step with what the load wrote: each key the load touched
/// gets its current row (upserted) or loses its row (no current row, or a delete).
/// `schema` is the version the table's columns follow.
pub(super) async fn maintain(
    tx: &Transaction<'_>,
    dest: &Destination,
    schema: &Schema,
) -> Result<(), tokio_postgres::Error> {
    let typed = name(dest);
    let table = dataset_table(dest);
    let columns = columns(schema);
    let updates = columns
        .iter()
        .map(|c| quote_ident(&c.name))
        .chain(super::LINEAGE.iter().map(|(_, a)| (*a).to_owned()))
        .filter(|c| c != "_bronze_key")
        .map(|c| format!("{c} = excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    tx.batch_execute(&format!(
        "INSERT INTO {typed} ({})
         SELECT {} FROM {table} t
         JOIN (SELECT DISTINCT record_key FROM pg_temp.bronze_touched) k USING (record_key)
         WHERE {CURRENT}
         ON CONFLICT (_bronze_key) DO UPDATE SET {updates};
         DELETE FROM {typed} y
         USING (SELECT DISTINCT record_key FROM pg_temp.bronze_touched) k
         WHERE y._bronze_key = k.record_key
           AND NOT EXISTS (SELECT 1 FROM {table} t
                           WHERE t.record_key = k.record_key AND {CURRENT});",
        column_list(&columns),
        select_list(&columns),
    ))
    .await
}

/// One change to the table's columns that keeps its rows: what a non-breaking schema
/// version asks.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    /// A column the table lacks: added without a rewrite, NULL in the rows not
    /// written by this load (no earlier version had the field, so they lack it).
    Add {
        name: String,
        sql_type: &'static str,
    },
    /// A column whose type widened: converted in place by `using`, exactly what
    /// casting the payload to the wider type would give.
    Widen {
        name: String,
        sql_type: &'static str,
        using: String,
    },
}

/// The steps that take a table of `old` columns to `new` ones, or `None` when only a
/// rebuild can (a column gone or renamed, a type narrowed or changed, another date
/// layout, or an added field that an earlier version had: rows may hold it).
fn plan(old: &[Column], new: &[Column], earlier: &HashSet<&str>) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    for o in old {
        let n = new.iter().find(|n| n.name == o.name)?;
        if n.cast("p") == o.cast("p") {
            continue;
        }
        let same_layout = layout(o) == layout(n);
        let column = quote_ident(&o.name);
        let using = match (o.sql_type(), n.sql_type()) {
            // No value was seen: the rows hold none.
            _ if o.field.kind == FieldType::Null => format!("NULL::{}", n.sql_type()),
            ("bigint", "numeric") => format!("{column}::numeric"),
            ("date", "timestamp") if same_layout => format!("{column}::timestamp"),
            ("date", "timestamptz") if same_layout => {
                format!("{column}::timestamp AT TIME ZONE 'UTC'")
            }
            ("timestamp", "timestamptz") if same_layout => format!("{column} AT TIME ZONE 'UTC'"),
            _ => return None,
        };
        steps.push(Step::Widen {
            name: o.name.clone(),
            sql_type: n.sql_type(),
            using,
        });
    }
    for n in new.iter().filter(|n| !old.iter().any(|o| o.name == n.name)) {
        if earlier.contains(n.field.name.as_str()) {
            return None;
        }
        steps.push(Step::Add {
            name: n.name.clone(),
            sql_type: n.sql_type(),
        });
    }
    Some(steps)
}

/// The order of a date or timestamp field's date part.
fn layout(column: &Column) -> &'static str {
    match column.field.kind {
        FieldType::Date | FieldType::Timestamp => {
            column.field.format.as_deref().map_or("ymd", field_order)
        }
        _ => "",
    }
}

/// What a new schema version did to the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Evolved {
    /// Columns added or widened in place; the table follows the new version.
    Altered,
    /// Only a rebuild can follow the new version.
    Breaking,
}

/// Alters the table from `old` to `new` when the change keeps its rows; `earlier` are
/// the field names of every version before `new`.
pub(super) async fn evolve(
    tx: &Transaction<'_>,
    dest: &Destination,
    old: &Schema,
    new: &Schema,
    earlier: &HashSet<&str>,
) -> Result<Evolved, tokio_postgres::Error> {
    let Some(steps) = plan(&columns(old), &columns(new), earlier) else {
        return Ok(Evolved::Breaking);
    };
    let typed = name(dest);
    for step in steps {
        let sql = match step {
            Step::Add { name, sql_type } => {
                format!(
                    "ALTER TABLE {typed} ADD COLUMN {} {sql_type}",
                    quote_ident(&name)
                )
            }
            Step::Widen {
                name,
                sql_type,
                using,
            } => format!(
                "ALTER TABLE {typed} ALTER COLUMN {} TYPE {sql_type} USING {using}",
                quote_ident(&name)
            ),
        };
        tx.batch_execute(&sql).await?;
    }
    Ok(Evolved::Altered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Field;

    fn field(name: &str, kind: FieldType, format: Option<&str>) -> Field {
        Field {
            format: format.map(str::to_owned),
            ..Field::test(name, kind)
        }
    }

    fn schema(fields: Vec<Field>) -> Vec<Column> {
        columns(&Schema { fields })
    }

    #[test]
    fn added_and_widened_columns_keep_the_rows() {
        let old = schema(vec![
            field("id", FieldType::Integer, None),
            field("day", FieldType::Date, Some("%d/%m/%Y")),
        ]);
        let new = schema(vec![
            field("id", FieldType::Number, None),
            field("day", FieldType::Timestamp, Some("%d/%m/%Y %H:%M")),
            field("note", FieldType::String, None),
        ]);
        let steps = plan(&old, &new, &HashSet::from(["id", "day"])).expect("not breaking");
        assert_eq!(
            steps,
            [
                Step::Widen {
                    name: "id".into(),
                    sql_type: "numeric",
                    using: "\"id\"::numeric".into()
                },
                Step::Widen {
                    name: "day".into(),
                    sql_type: "timestamp",
                    using: "\"day\"::timestamp".into()
                },
                Step::Add {
                    name: "note".into(),
                    sql_type: "text"
                },
            ]
        );
    }

    #[test]
    fn what_only_a_rebuild_can_follow() {
        let old = schema(vec![
            field("id", FieldType::Integer, None),
            field("day", FieldType::Date, Some("%d/%m/%Y")),
        ]);
        let none = HashSet::new();
        let removed = schema(vec![field("id", FieldType::Integer, None)]);
        assert_eq!(plan(&old, &removed, &none), None);
        let to_text = schema(vec![
            field("id", FieldType::String, None),
            field("day", FieldType::Date, Some("%d/%m/%Y")),
        ]);
        assert_eq!(plan(&old, &to_text, &none), None);
        let relayout = schema(vec![
            field("id", FieldType::Integer, None),
            field("day", FieldType::Date, Some("%m/%d/%Y")),
        ]);
        assert_eq!(plan(&old, &relayout, &none), None);
        let mut back = old.clone();
        back.extend(schema(vec![field("gone", FieldType::String, None)]));
        assert_eq!(plan(&old, &back, &HashSet::from(["gone"])), None);
    }
}
