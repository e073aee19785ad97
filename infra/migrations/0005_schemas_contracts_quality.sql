-- Contracts: what a dataset accepts when its files change shape.
ALTER TABLE bronze.datasets ADD COLUMN contract text NOT NULL DEFAULT 'evolve'
    CHECK (contract IN ('evolve', 'freeze', 'discard_row'));
ALTER TABLE bronze.datasets ADD COLUMN json_schema jsonb;

-- The schema registry: one row per version of a dataset's schema.
CREATE TABLE bronze.schemas (
    tenant      text        NOT NULL,
    dataset     text        NOT NULL,
    version     integer     NOT NULL,
    fingerprint text        NOT NULL,
    -- [{name, type, nullable, semantic?, format?, evidence}]
    fields      jsonb       NOT NULL,
    -- the classified changes from the previous version: [{change, column, from?, to?, breaking}]
    changes     jsonb       NOT NULL DEFAULT '[]',
    breaking    boolean     NOT NULL DEFAULT false,
    load_id     bigint      NOT NULL REFERENCES bronze.loads (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, dataset, version)
);

ALTER TABLE bronze.loads ADD COLUMN schema_version integer;
ALTER TABLE bronze.loads ADD COLUMN quality_score double precision;
ALTER TABLE bronze.loads ADD COLUMN key_duplicates bigint;
CREATE INDEX loads_status_idx ON bronze.loads (status, id);

-- Quality per load and column, from the same pass that read the file.
CREATE TABLE bronze.quality (
    load_id           bigint  NOT NULL REFERENCES bronze.loads (id),
    position          integer NOT NULL,
    column_name       text    NOT NULL,
    type              text    NOT NULL,
    semantic          text,
    is_key            boolean NOT NULL DEFAULT false,
    records           bigint  NOT NULL,
    non_null          bigint  NOT NULL,
    valid             bigint,
    distinct_estimate bigint  NOT NULL,
    duplicates        bigint,
    consistent        bigint,
    completeness      double precision NOT NULL,
    validity          double precision,
    uniqueness        double precision,
    consistency       double precision,
    score             double precision NOT NULL,
    PRIMARY KEY (load_id, position)
);

-- Existing dataset tables: rows carry whether they passed the dataset's JSON Schema
-- (NULL: none was set), and record_key compares bytewise (COLLATE "C"): keys are only
-- tested for equality, a locale's collation slows every sort and index step of the
-- merge, and loads stage keys as "C" (their indexes are rebuilt).
-- A table a user's view depends on keeps its collation (only slower; equality is
-- bytewise either way), rather than failing the migration at every start-up.
DO $$
DECLARE t record;
BEGIN
    FOR t IN SELECT n.nspname AS schema_name, c.relname AS table_name
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'record_key'
             WHERE n.nspname LIKE 'tenant\_%' AND c.relkind = 'r'
    LOOP
        EXECUTE format('ALTER TABLE %I.%I ADD COLUMN IF NOT EXISTS validated boolean',
                       t.schema_name, t.table_name);
        BEGIN
            EXECUTE format('ALTER TABLE %I.%I ALTER COLUMN record_key TYPE text COLLATE "C"',
                           t.schema_name, t.table_name);
        EXCEPTION WHEN feature_not_supported OR dependent_objects_still_exist THEN
            RAISE NOTICE 'left %.% with its collation: %', t.schema_name, t.table_name, SQLERRM;
        END;
    END LOOP;
END $$;

-- Casts for the typed views that cannot fail: a value that does not fit is NULL.
-- (PostgreSQL 16's pg_input_is_valid would do, but 15 is still common, RDS included.)
CREATE FUNCTION bronze.try_boolean(v text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE lower(btrim(v)) WHEN 'true' THEN true WHEN 'yes' THEN true
                                WHEN 'false' THEN false WHEN 'no' THEN false END
$$;

-- Only ASCII blanks around the number: `\s` would also match spaces the casts refuse.
CREATE FUNCTION bronze.try_bigint(v text) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE n text := substring(v FROM '^[ \t\r\n]*([+-]?[0-9]{1,19})[ \t\r\n]*$');
BEGIN
    IF n IS NULL THEN
        RETURN NULL;
    ELSIF length(ltrim(n, '+-')) < 19 THEN
        RETURN n::bigint;
    ELSIF n::numeric BETWEEN -9223372036854775808 AND 9223372036854775807 THEN
        RETURN n::numeric::bigint;
    END IF;
    RETURN NULL;
END $$;

-- Text is capped at 2000 characters and exponents at 4 digits, far below numeric's
-- limits (131072 digits before the point, 16383 after).
CREATE FUNCTION bronze.try_numeric(v text) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE n text := substring(v FROM
    '^[ \t\r\n]*([+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,4})?)[ \t\r\n]*$');
DECLARE special text := lower(btrim(v, E' \t\r\n'));
BEGIN
    IF length(v) > 2000 THEN
        RETURN NULL;
    ELSIF n IS NOT NULL THEN
        RETURN n::numeric;
    ELSIF special IN ('nan', '+nan', '-nan') THEN
        RETURN 'NaN'::numeric;
    ELSIF special IN ('inf', '+inf', 'infinity', '+infinity') THEN
        RETURN 'Infinity'::numeric;
    ELSIF special IN ('-inf', '-infinity') THEN
        RETURN '-Infinity'::numeric;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION bronze.days_in(y integer, m integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN m IN (4, 6, 9, 11) THEN 30
                WHEN m <> 2 THEN 31
                WHEN y % 4 = 0 AND (y % 100 <> 0 OR y % 400 = 0) THEN 29
                ELSE 28 END
$$;

-- `date_order` is the order of the date's fields: ymd, dmy or mdy; any of - / . separates.
CREATE FUNCTION bronze.try_date(v text, date_order text) RETURNS date
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE p text[]; y integer; m integer; d integer;
BEGIN
    p := regexp_match(v, '^[ \t\r\n]*([0-9]{1,4})[-/.]([0-9]{1,2})[-/.]([0-9]{1,4})[ \t\r\n]*$');
    IF p IS NULL THEN
        RETURN NULL;
    END IF;
    IF date_order = 'ymd' THEN
        y := p[1]; m := p[2]; d := p[3];
    ELSIF date_order = 'dmy' THEN
        d := p[1]; m := p[2]; y := p[3];
    ELSE
        m := p[1]; d := p[2]; y := p[3];
    END IF;
    IF y < 1 OR m < 1 OR m > 12 OR d < 1 OR d > bronze.days_in(y, m) THEN
        RETURN NULL;
    END IF;
    RETURN make_date(y, m, d);
END $$;

CREATE FUNCTION bronze.try_time(v text) RETURNS time
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE p text[];
BEGIN
    p := regexp_match(v, '^[ \t\r\n]*([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]{1,9}))?)?[ \t\r\n]*$');
    -- A leap second (:60) is a time, as inference says; PostgreSQL rolls it over.
    IF p IS NULL OR p[1]::int > 23 OR p[2]::int > 59 OR coalesce(p[3], '0')::int > 60 THEN
        RETURN NULL;
    END IF;
    RETURN make_time(p[1]::int, p[2]::int,
                     (coalesce(p[3], '0') || '.' || coalesce(p[4], '0'))::double precision);
END $$;

-- A timestamp without its zone; `bronze.try_timestamptz` reads the zone too. A date
-- alone is its midnight: a date column widened to timestamp keeps its old values.
CREATE FUNCTION bronze.try_timestamp(v text, date_order text) RETURNS timestamp
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE p text[]; d date; t time;
BEGIN
    p := regexp_match(v, '^[ \t\r\n]*([0-9]{1,4}[-/.][0-9]{1,2}[-/.][0-9]{1,4})[T ]'
                         '([0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]{1,9})?)?)[ \t\r\n]*'
                         '(Z|UTC|[+-][0-9]{2}(?::?[0-9]{2})?)?[ \t\r\n]*$');
    IF p IS NULL THEN
        RETURN bronze.try_date(v, date_order)::timestamp;
    END IF;
    d := bronze.try_date(p[1], date_order);
    t := bronze.try_time(p[2]);
    IF d IS NULL OR t IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN d + t;
END $$;

-- Values without a zone, in a column where others have one, are read as UTC.
CREATE FUNCTION bronze.try_timestamptz(v text, date_order text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE p text[]; local timestamp; zone text; sign integer; hh integer; mm integer;
BEGIN
    local := bronze.try_timestamp(v, date_order);
    IF local IS NULL THEN
        RETURN NULL;
    END IF;
    -- An offset follows the time's minutes or seconds; a date alone has none.
    zone := substring(v FROM ':[0-9]{2}(?:[.,][0-9]+)?[ \t]*([+-][0-9]{2}(?::?[0-9]{2})?)[ \t\r\n]*$');
    IF zone IS NULL THEN
        RETURN local AT TIME ZONE 'UTC';
    END IF;
    p := regexp_match(zone, '^([+-])(\d{2}):?(\d{2})?$');
    sign := CASE p[1] WHEN '-' THEN -1 ELSE 1 END;
    hh := p[2]::int;
    mm := coalesce(p[3], '0')::int;
    IF hh > 14 OR mm > 59 THEN
        RETURN NULL;
    END IF;
    RETURN (local - sign * make_interval(hours => hh, mins => mm)) AT TIME ZONE 'UTC';
END $$;
