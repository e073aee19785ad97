//! The set-based statements that turn the staged records into versions.

use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Transaction;

use super::plan::Versioning;
use super::stage::Staged;
use super::{payloads, LoadError, Reopen};
use crate::format::ReadSettings;
use crate::keys::Destination;
use crate::store::{self, Lineage, QuotedTable, Savepoint};

/// Versions of a key are ordered by source order, `(source_ts, load_id, source_line)`:
/// the object's last-modified time first, arrival only to break ties. A record is a
/// new version when its hash differs from the version before it in that order (the
/// one before it in the same file, or the table's latest older version); so files that
/// arrive late slot in behind newer ones and the current state is the same as if
/// they had arrived in order. Version numbers count arrivals and are never rewritten.
pub(super) struct Merge<'a> {
    pub tx: &'a Transaction<'a>,
    pub dest: &'a Destination,
    pub table: QuotedTable,
    pub lineage: &'a Lineage,
    pub load_id: i64,
    pub schema_version: i32,
    /// `Some(true)` when every loaded record passed the dataset's JSON Schema.
    pub validated: Option<bool>,
    /// Where the payloads of the new versions come from: staging, or a second read.
    pub reread: Option<Reread<'a>>,
}

/// How to read the file again for the payloads the first read did not stage.
pub(super) struct Reread<'a> {
    pub source: &'a dyn Reopen,
    pub name: String,
    pub read: ReadSettings,
}

/// What the merge did.
pub(super) struct Merged {
    pub inserted: i64,
    pub updated: i64,
    pub deleted: i64,
    /// Records whose key an earlier record of the file had.
    pub key_duplicates: i64,
    /// Whether the file was newer than every load before it: then its records are
    /// the current versions of their keys once it is loaded.
    pub in_order: bool,
}

impl Merged {
    /// What a load in order that made no version beyond the first wrote: a new
    /// table's `inserted` rows (a first fill), or nothing (a file seen before).
    pub fn unversioned(inserted: i64) -> Self {
        Self {
            inserted,
            updated: 0,
            deleted: 0,
            key_duplicates: 0,
            in_order: true,
        }
    }
}

/// The columns every new version row is written with, in the order the statements
/// below select them.
const VERSION_COLUMNS: &str = "record_key, version, record_hash, change_type, is_current,
    valid_from, valid_to, payload, source_bucket, source_key, source_version_id,
    source_etag, source_line, source_ts, load_id, schema_version, validated";

impl Merge<'_> {
    /// A new table: every record is version 1 of its key, inserted by one statement,
    /// and the indexes are built after. A key the file has twice fails the primary
    /// key; then none of it is kept (`None`) and the versioned merge runs. No key
    /// repeats in most files, and this is cheaper than looking for repeats first.
    pub async fn insert_first(&self) -> Result<Option<i64>, LoadError> {
        let savepoint = Savepoint::begin(self.tx, "bronze_insert_first").await?;
        let sql = format!(
            "INSERT INTO {} ({VERSION_COLUMNS})
             SELECT record_key, 1, record_hash, 'insert', true, $1, NULL, payload::jsonb,
                    $2, $3, $4, $5, source_line, $1, $6, $7, $8
             FROM pg_temp.bronze_staging",
            self.table
        );
        let filled = match self.execute_raw(&sql).await {
            Ok(n) => store::create_dataset_indexes(self.tx, self.dest)
                .await
                .map(|()| n),
            Err(e) => Err(e),
        };
        match filled {
            Ok(n) => {
                savepoint.release().await?;
                Ok(Some(i64::try_from(n).unwrap_or(i64::MAX)))
            }
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                savepoint.undo().await?;
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The indexes of a table this load made, before versions are planned in it.
    pub async fn index_new_table(&self) -> Result<(), LoadError> {
        Ok(store::create_dataset_indexes(self.tx, self.dest).await?)
    }

    /// Real row counts for the planner (temporary tables are never auto-analysed),
    /// and the bronze table's first statistics of its keys when it has none yet (no
    /// autovacuum since its first load, or none at all): without them the planner
    /// takes each key for one of 200 and joins a few changed keys by reading the whole
    /// table (3,367 keys of 336,776 kept in a structured table cost a full scan). A
    /// sample of 3,000 rows is enough to learn that keys are distinct; it is taken
    /// here, once, rather than in the first load, which joins nothing.
    pub async fn analyze_for_joins(&self) -> Result<(), LoadError> {
        self.tx
            .batch_execute(
                "SET LOCAL default_statistics_target = 10; ANALYZE pg_temp.bronze_staging",
            )
            .await?;
        let row = self
            .tx
            .query_one(
                "SELECT NOT EXISTS (SELECT 1 FROM pg_stats
                                    WHERE schemaname = $1 AND tablename = $2
                                      AND attname = 'record_key')",
                &[&self.dest.schema(), &self.dest.dataset.as_str()],
            )
            .await?;
        if row.get::<_, bool>(0) {
            self.tx
                .batch_execute(&format!(
                    "ANALYZE {} (record_key, is_current, change_type)",
                    self.table
                ))
                .await?;
        }
        Ok(())
    }

    /// The changed-keys path: in order, no key twice, one join with the current rows.
    pub async fn changed_keys(&self, whole: bool) -> Result<Merged, LoadError> {
        let planned = self.plan_changed().await?;
        self.write_versions(
            planned,
            Versioning {
                late: false,
                new_table: false,
                whole,
                key_duplicates: 0,
            },
        )
        .await
    }

    /// The versioned path: keys repeated in the file, or a file that arrived late.
    pub async fn versioning(&self, how: Versioning) -> Result<Merged, LoadError> {
        let planned = self.plan_versions(how.late).await?;
        self.write_versions(planned, how).await
    }

    /// Inserts the planned versions, deletes what a snapshot lacks, and ends the
    /// versions they superseded.
    async fn write_versions(&self, planned: u64, how: Versioning) -> Result<Merged, LoadError> {
        let (inserted, updated) = self.insert_planned(planned).await?;
        let deleted = if how.whole && !how.new_table {
            self.snapshot_deletes().await?
        } else {
            0
        };
        // A key can get a new current row as an `insert` too (after its `delete`).
        if (!how.new_table && inserted + updated + deleted > 0) || how.late {
            self.close_superseded(how.late).await?;
        }
        Ok(Merged {
            inserted,
            updated,
            deleted,
            key_duplicates: how.key_duplicates,
            in_order: !how.late,
        })
    }

    /// In order, no key twice: a record is new when its hash differs from the current
    /// row's, found by one join. Version numbers count arrivals: a key's top version
    /// may be a late one that is not current, so the number comes from the top.
    async fn plan_changed(&self) -> Result<u64, LoadError> {
        let table = &self.table;
        let sql = format!(
            "CREATE TEMP TABLE bronze_new ON COMMIT DROP AS
             SELECT s.ordinal, s.record_key, s.record_hash, s.source_line,
                    CASE WHEN c.record_key IS NULL THEN 1
                         ELSE (SELECT max(version) FROM {table} m
                               WHERE m.record_key = s.record_key) + 1 END AS version,
                    CASE WHEN c.record_hash IS NULL THEN 'insert' ELSE 'update' END AS change_type,
                    true AS is_current, false AS superseded
             FROM pg_temp.bronze_staging s
             LEFT JOIN {table} c ON c.record_key = s.record_key AND c.is_current
             WHERE c.record_hash IS DISTINCT FROM s.record_hash"
        );
        Ok(self.tx.execute(&sql, &[]).await?)
    }

    /// Inserts the planned versions with their payloads, and lists what it wrote in
    /// `pg_temp.bronze_touched`; returns (inserted, updated). Each payload is joined
    /// by ordinal *and* hash, so one that is not the record planned (a file that
    /// changed between two reads) is not inserted, and the count tells.
    async fn insert_planned(&self, planned: u64) -> Result<(i64, i64), LoadError> {
        if planned == 0 {
            self.tx
                .batch_execute(
                    "CREATE TEMP TABLE bronze_touched (record_key text COLLATE \"C\", version integer,
                         change_type text, is_current boolean, late boolean) ON COMMIT DROP",
                )
                .await?;
            return Ok((0, 0));
        }
        let payloads = match &self.reread {
            Some(reread) => {
                let source = reread.source.reopen().await?;
                let name = reread.name.clone();
                payloads::stage(self.tx, source, name, reread.read).await?;
                "pg_temp.bronze_payloads"
            }
            None => "pg_temp.bronze_staging",
        };
        let sql = format!(
            "CREATE TEMP TABLE bronze_touched ON COMMIT DROP AS
             WITH inserted AS (
                 INSERT INTO {} ({VERSION_COLUMNS})
                 SELECT n.record_key, n.version, n.record_hash, n.change_type, n.is_current, $1,
                        CASE WHEN n.superseded THEN $1::timestamptz END, p.payload::jsonb,
                        $2, $3, $4, $5, n.source_line, $1, $6, $7, $8
                 FROM pg_temp.bronze_new n
                 JOIN {payloads} p ON p.ordinal = n.ordinal AND p.record_hash = n.record_hash
                 RETURNING record_key, version, change_type, is_current,
                           NOT is_current AND valid_to IS NULL AS late
             )
             SELECT * FROM inserted",
            self.table
        );
        let inserted = self.execute(&sql).await?;
        if inserted != planned {
            return Err(LoadError::Transient(format!(
                "{} read differently the second time: {planned} new versions planned, \
                 {inserted} found",
                self.lineage.key
            )));
        }
        self.touched_counts().await
    }

    /// (inserted, updated) among the rows this load wrote.
    async fn touched_counts(&self) -> Result<(i64, i64), LoadError> {
        let row = self
            .tx
            .query_one(
                "SELECT count(*) FILTER (WHERE change_type = 'insert'),
                        count(*) FILTER (WHERE change_type = 'update')
                 FROM pg_temp.bronze_touched",
                &[],
            )
            .await?;
        Ok((row.get(0), row.get(1)))
    }
    /// Runs a statement whose parameters are the lineage of the new rows:
    /// `$1` source_ts, `$2` bucket, `$3` key, `$4` version id, `$5` etag, `$6` load id,
    /// `$7` schema version, `$8` validated.
    async fn execute(&self, sql: &str) -> Result<u64, LoadError> {
        Ok(self.execute_raw(sql).await?)
    }

    async fn execute_raw(&self, sql: &str) -> Result<u64, tokio_postgres::Error> {
        let l = self.lineage;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 8] = [
            &l.source_ts,
            &l.bucket,
            &l.key,
            &l.version_id,
            &l.etag,
            &self.load_id,
            &self.schema_version,
            &self.validated,
        ];
        self.tx.execute(sql, &params).await
    }

    /// Records whose key an earlier record of the same file had.
    pub async fn key_duplicates(&self) -> Result<i64, LoadError> {
        let row = self
            .tx
            .query_one(
                "SELECT coalesce(sum(n - 1), 0)::bigint FROM (
                     SELECT count(*) AS n FROM pg_temp.bronze_staging
                     GROUP BY record_key) k",
                &[],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Whether the file changes nothing, known without joining its records: an earlier
    /// load that arrived in order brought the same records (the same digest) into
    /// this same table, and no load since wrote anything. Its records were then the
    /// current versions of their keys, and still are, so every record of this file is
    /// unchanged. With `whole` (a complete snapshot) the table must also hold no other
    /// current keys, which would be deleted. Rows changed by hand, behind bronze's
    /// back, are not seen: bronze's tables are written by bronze only.
    pub async fn seen_before(&self, staged: &Staged, whole: bool) -> Result<bool, LoadError> {
        // Only loads since the last one that wrote can vouch, so the lookup stays one
        // step back through the dataset's loads however many files came before.
        let row = self
            .tx
            .query_one(
                "SELECT EXISTS (
                     SELECT 1 FROM bronze.loads p
                     WHERE p.tenant = $1 AND p.dataset = $2 AND p.records_digest = $3
                       AND p.status = 'loaded' AND p.id < $4
                       AND p.table_filenode = pg_relation_filenode(to_regclass($5))
                       AND p.id >= coalesce((
                           SELECT max(q.id) FROM bronze.loads q
                           WHERE q.tenant = $1 AND q.dataset = $2 AND q.status = 'loaded'
                             AND q.id < $4 AND q.inserted + q.updated + q.deleted > 0), 0))",
                &[
                    &self.dest.tenant.as_str(),
                    &self.dest.dataset.as_str(),
                    &&staged.digest[..],
                    &self.load_id,
                    &self.table.as_str(),
                ],
            )
            .await?;
        if !row.get::<_, bool>(0) {
            return Ok(false);
        }
        if !whole {
            return Ok(true);
        }
        let current = self
            .tx
            .query_one(
                &format!(
                    "SELECT count(*) FROM {} WHERE is_current AND change_type <> 'delete'",
                    self.table
                ),
                &[],
            )
            .await?;
        Ok(current.get::<_, i64>(0) == staged.records)
    }

    /// Whether an earlier load of the dataset came from a newer source than this one.
    /// Only then can a key have versions after this file's; most loads arrive in
    /// order and take the cheaper path.
    pub async fn arrived_late(&self) -> Result<bool, LoadError> {
        let row = self
            .tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM bronze.loads
                                WHERE tenant = $1 AND dataset = $2 AND status = 'loaded'
                                  AND id <> $3 AND source_ts > $4)",
                &[
                    &self.dest.tenant.as_str(),
                    &self.dest.dataset.as_str(),
                    &self.load_id,
                    &self.lineage.source_ts,
                ],
            )
            .await?;
        Ok(row.get(0))
    }

    /// The general path: keys repeated in the file, or a file older than loads already
    /// made. Plans a version for each record that differs from the one before it.
    async fn plan_versions(&self, late: bool) -> Result<u64, LoadError> {
        let table = &self.table;
        // In order, the version before a file's first record of a key is the current
        // one, found by one join; the top version number is looked up only for keys
        // that get a new version. Late, both neighbours in source order are needed.
        let (prior, top) = if late {
            (
                format!(
                    "SELECT k.record_key, k.last_nth, before.record_hash AS prior_hash,
                            (SELECT max(version) FROM {table} m
                             WHERE m.record_key = k.record_key) AS top,
                            after.found IS NOT NULL AS later, after.record_hash AS next_hash
                     FROM (SELECT record_key, n_in_file AS last_nth FROM staged WHERE nth = 1) k
                     LEFT JOIN LATERAL (
                         SELECT t.record_hash FROM {table} t
                         WHERE t.record_key = k.record_key AND t.source_ts <= $1
                         ORDER BY t.source_ts DESC, t.load_id DESC, t.source_line DESC NULLS FIRST,
                                  t.version DESC
                         LIMIT 1
                     ) before ON true
                     LEFT JOIN LATERAL (
                         SELECT true AS found, t.record_hash FROM {table} t
                         WHERE t.record_key = k.record_key AND t.source_ts > $1
                         ORDER BY t.source_ts, t.load_id, t.source_line NULLS FIRST, t.version
                         LIMIT 1
                     ) after ON true"
                ),
                "coalesce(top, 0)".to_owned(),
            )
        } else {
            (
                format!(
                    "SELECT k.record_key, k.last_nth, c.record_hash AS prior_hash,
                            c.record_key IS NOT NULL AS top, false AS later,
                            NULL::bytea AS next_hash
                     FROM (SELECT record_key, n_in_file AS last_nth FROM staged WHERE nth = 1) k
                     LEFT JOIN {table} c ON c.record_key = k.record_key AND c.is_current"
                ),
                format!(
                    "CASE WHEN top THEN (SELECT max(version) FROM {table} m
                                         WHERE m.record_key = kept.record_key) ELSE 0 END"
                ),
            )
        };
        let sql = format!(
            "CREATE TEMP TABLE bronze_new ON COMMIT DROP AS
             WITH staged AS (
                 SELECT record_key, record_hash, source_line, ordinal,
                        lag(record_hash) OVER w AS prev_in_file,
                        row_number() OVER w AS nth,
                        count(*) OVER (PARTITION BY record_key) AS n_in_file
                 FROM pg_temp.bronze_staging
                 WINDOW w AS (PARTITION BY record_key ORDER BY ordinal)
             ), prior AS (
                 {prior}
             ), changed AS (
                 SELECT s.*, p.top, p.later,
                        CASE WHEN s.nth = 1 THEN p.prior_hash ELSE s.prev_in_file END AS before_hash,
                        s.nth = p.last_nth AND s.record_hash = p.next_hash AS same_as_next
                 FROM staged s JOIN prior p USING (record_key)
             ), kept AS (
                 SELECT c.*, row_number() OVER k AS n, count(*) OVER (PARTITION BY record_key) AS n_kept
                 FROM changed c
                 WHERE c.before_hash IS DISTINCT FROM c.record_hash AND NOT coalesce(c.same_as_next, false)
                 WINDOW k AS (PARTITION BY record_key ORDER BY ordinal)
             )
             SELECT kept.ordinal, kept.record_key, kept.record_hash, kept.source_line,
                    {top} + n AS version,
                    CASE WHEN n = 1 AND before_hash IS NULL THEN 'insert' ELSE 'update' END
                        AS change_type,
                    n = n_kept AND NOT later AS is_current, n < n_kept AS superseded
             FROM kept"
        );
        let source_ts: [&(dyn ToSql + Sync); 1] = [&self.lineage.source_ts];
        let params: &[&(dyn ToSql + Sync)] = if late { &source_ts } else { &[] };
        Ok(self.tx.execute(&sql, params).await?)
    }

    /// For snapshot datasets: a `delete` version for every current key the file lacks,
    /// unless a newer file already spoke for it.
    async fn snapshot_deletes(&self) -> Result<i64, LoadError> {
        let table = &self.table;
        let sql = format!(
            "WITH gone AS (
                 SELECT c.record_key, (SELECT max(version) FROM {table} m
                                        WHERE m.record_key = c.record_key) AS top
                 FROM {table} c
                 WHERE c.is_current AND c.change_type <> 'delete' AND c.source_ts <= $1
                   AND c.load_id <> $6
                   AND NOT EXISTS (SELECT 1 FROM pg_temp.bronze_staging s
                                   WHERE s.record_key = c.record_key)
             ), deleted AS (
                 INSERT INTO {table} ({VERSION_COLUMNS})
                 SELECT record_key, top + 1, NULL, 'delete', true, $1, NULL, NULL, $2, $3, $4,
                        $5, NULL, $1, $6, $7, $8
                 FROM gone
                 RETURNING record_key, version, change_type, is_current, false AS late
             )
             INSERT INTO pg_temp.bronze_touched SELECT * FROM deleted"
        );
        let n = self.execute(&sql).await?;
        Ok(i64::try_from(n).unwrap_or(i64::MAX))
    }

    /// Ends the versions this load superseded: the previous current row of each key
    /// that got a new current one. When the file arrived late, keys whose new versions
    /// are older than the current get their validity chain recomputed in source order.
    async fn close_superseded(&self, late: bool) -> Result<(), LoadError> {
        let table = &self.table;
        // Its real size, so the planner looks up the touched keys by index instead of
        // scanning the whole dataset table.
        self.tx
            .batch_execute("ANALYZE pg_temp.bronze_touched")
            .await?;
        let close = format!(
            "UPDATE {table} t SET is_current = false, valid_to = $1
             FROM (SELECT DISTINCT record_key FROM pg_temp.bronze_touched
                   WHERE is_current AND version > 1) k
             WHERE t.record_key = k.record_key AND t.is_current AND t.load_id <> $2"
        );
        self.tx
            .execute(&close, &[&self.lineage.source_ts, &self.load_id])
            .await?;
        if !late {
            return Ok(());
        }
        let rechain = format!(
            "WITH ordered AS (
                 SELECT t.record_key, t.version,
                        lead(t.valid_from) OVER w AS next_from,
                        row_number() OVER w_desc = 1 AS last,
                        CASE WHEN t.change_type = 'delete' THEN 'delete'
                             WHEN coalesce(lag(t.change_type) OVER w, 'delete') = 'delete' THEN 'insert'
                             ELSE 'update' END AS change
                 FROM {table} t
                 JOIN (SELECT DISTINCT record_key FROM pg_temp.bronze_touched WHERE late) k
                   USING (record_key)
                 WINDOW w AS (PARTITION BY t.record_key
                              ORDER BY t.source_ts, t.load_id, t.source_line NULLS FIRST, t.version),
                        w_desc AS (PARTITION BY t.record_key
                              ORDER BY t.source_ts DESC, t.load_id DESC,
                                       t.source_line DESC NULLS LAST, t.version DESC)
             )
             UPDATE {table} t SET is_current = o.last, valid_to = o.next_from, change_type = o.change
             FROM ordered o
             WHERE t.record_key = o.record_key AND t.version = o.version
               AND (t.is_current, t.valid_to, t.change_type)
                   IS DISTINCT FROM (o.last, o.next_from, o.change)"
        );
        self.tx.execute(&rechain, &[]).await?;
        Ok(())
    }
}
