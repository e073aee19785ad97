-- Where the scheduled reconcile of a bucket stopped: the next run lists from the key
-- after it, and from the start once a run reached the end of the bucket.
CREATE TABLE bronze.reconcile (
    bucket     text PRIMARY KEY,
    next_key   text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
