-- What a dataset does with a partly bad file (see `bronze datasets set --on-error`):
-- continue, skip_file, skip_file:N or skip_file:P%. The default skips a file of which
-- more than a tenth was refused, counted by lines, so a stray quote that swallowed the
-- rest of a file can never leave it `loaded`.
ALTER TABLE bronze.datasets ADD COLUMN on_error text NOT NULL DEFAULT 'skip_file:10%';
-- The encoding of the dataset's files, whatever detection says (WHATWG names).
ALTER TABLE bronze.datasets ADD COLUMN encoding text;

-- How the encoding of a load's file was known: certain (BOM, valid UTF-8, pinned),
-- confident (the detector's robust guess) or unsure (loaded under on_error continue).
ALTER TABLE bronze.loads ADD COLUMN encoding_certainty text;

-- A reject keeps at most 4 KiB of its record's text; this is the record's whole size.
ALTER TABLE bronze.rejects ADD COLUMN raw_bytes bigint;

-- Attempts at an object that died before they finished (killed, out of memory, timed
-- out): after three the object is `failed` for a human instead of looping into the
-- dead-letter queue unseen. A transient failure now leaves the object `pending` (with
-- its error) for the retry; `failed` means a human must look.
ALTER TABLE bronze.objects ADD COLUMN deaths integer NOT NULL DEFAULT 0;
UPDATE bronze.objects SET status = 'pending' WHERE status = 'failed';
