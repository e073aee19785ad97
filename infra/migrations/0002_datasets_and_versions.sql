-- Per-dataset settings: the business key, snapshot semantics, and (later) contracts.
CREATE TABLE bronze.datasets (
    tenant      text        NOT NULL,
    dataset     text        NOT NULL,
    key_columns text[]      NOT NULL DEFAULT '{}',
    snapshot    boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, dataset)
);

ALTER TABLE bronze.loads ADD COLUMN deleted bigint NOT NULL DEFAULT 0;
-- The source order of the load: the object's last-modified time (a local file's mtime).
ALTER TABLE bronze.loads ADD COLUMN source_ts timestamptz;
