-- The object ledger: one row per object version, the heart of idempotency.
CREATE TABLE bronze.objects (
    id            bigserial PRIMARY KEY,
    bucket        text        NOT NULL,
    key           text        NOT NULL,
    -- the S3 version id, or 'etag:<etag>' on buckets without versioning
    version_key   text        NOT NULL,
    version_id    text,
    etag          text,
    size          bigint,
    sequencer     text,
    last_modified timestamptz,
    tenant        text,
    dataset       text,
    status        text        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'loading', 'loaded', 'rejected', 'skipped', 'failed')),
    attempts      integer     NOT NULL DEFAULT 0,
    error         text,
    load_id       bigint,
    received_at   timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (bucket, key, version_key)
);
CREATE INDEX objects_status_idx ON bronze.objects (status, updated_at);

-- One row per load attempt that reached a verdict: loaded or rejected.
CREATE TABLE bronze.loads (
    id                bigserial PRIMARY KEY,
    object_id         bigint REFERENCES bronze.objects (id),
    tenant            text        NOT NULL,
    dataset           text        NOT NULL,
    source_bucket     text,
    source_key        text        NOT NULL,
    source_version_id text,
    source_etag       text,
    status            text        NOT NULL CHECK (status IN ('loaded', 'rejected')),
    format            text,
    compression       text,
    records_in        bigint      NOT NULL DEFAULT 0,
    inserted          bigint      NOT NULL DEFAULT 0,
    updated           bigint      NOT NULL DEFAULT 0,
    unchanged         bigint      NOT NULL DEFAULT 0,
    rejected          bigint      NOT NULL DEFAULT 0,
    bytes             bigint,
    duration_ms       bigint,
    error             text,
    started_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz
);
CREATE INDEX loads_dataset_idx ON bronze.loads (tenant, dataset, id);
CREATE INDEX loads_object_idx ON bronze.loads (object_id);

-- What was refused, with the line and the reason.
CREATE TABLE bronze.rejects (
    id         bigserial PRIMARY KEY,
    load_id    bigint      NOT NULL REFERENCES bronze.loads (id),
    line       bigint,
    raw        text,
    reason     text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rejects_load_idx ON bronze.rejects (load_id);
