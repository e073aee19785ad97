-- What inference found in the file of each load (the schema registry builds on it).
ALTER TABLE bronze.loads ADD COLUMN inference jsonb;
