-- What a load's records were: SHA-256 over each good record's key and hash, in file
-- order, with the table they were compared with (its file node changes when it is
-- dropped, truncated or rewritten). Kept only for loads that arrived in order. A
-- later file with the same digest, after loads that wrote nothing, changes nothing,
-- and is known to without joining its records with the table's.
ALTER TABLE bronze.loads ADD COLUMN records_digest bytea;
ALTER TABLE bronze.loads ADD COLUMN table_filenode oid;
CREATE INDEX loads_digest_idx ON bronze.loads (tenant, dataset, records_digest)
    WHERE records_digest IS NOT NULL;
