-- The records API's optional indexes of a dataset (`bronze datasets set … --api-index`):
-- 'payload' (GIN jsonb_path_ops over the current rows: eq filters as containment) and
-- field names (an expression index on the field's typed value, current rows).
ALTER TABLE bronze.datasets ADD COLUMN api_indexes text[] NOT NULL DEFAULT '{}';
