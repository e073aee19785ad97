-- A dataset can pin the format of its files; a load records what it detected.
ALTER TABLE bronze.datasets ADD COLUMN format text
    CHECK (format IN ('csv', 'tsv', 'ndjson', 'json'));
ALTER TABLE bronze.loads ADD COLUMN encoding text;
ALTER TABLE bronze.loads ADD COLUMN delimiter text;
ALTER TABLE bronze.loads ADD COLUMN header boolean;
