-- Structured storage: a dataset's `_typed` relation is either a view over the bronze
-- table (`jsonb`, the default) or a table of the current rows kept by every load
-- (`structured`). `typed_version` is the schema version the typed table's columns
-- follow (behind the current one while a breaking change waits for
-- `bronze typed rebuild`, said in `typed_note`); `index_columns` are the typed columns
-- indexed beyond the key.
ALTER TABLE bronze.datasets
    ADD COLUMN storage text NOT NULL DEFAULT 'jsonb' CHECK (storage IN ('jsonb', 'structured')),
    ADD COLUMN index_columns text[] NOT NULL DEFAULT '{}',
    ADD COLUMN typed_version integer,
    ADD COLUMN typed_note text;

-- The casts of the typed views, again, as SQL functions the planner inlines: the view's
-- expression becomes plain operators on the payload (no function call, no PL/pgSQL
-- interpreter per value), and an expression index on it matches what a query through
-- the view asks. Same semantics as 0005's: a value that does not fit is NULL. Each body
-- is one expression without FROM and the functions are not STRICT, or PostgreSQL would
-- not inline them; a regex test guards every cast that could raise.
-- Most values are plain digits: `translate` (no regex) tells them, and the cast runs.
-- Otherwise an unbounded regex (bounded repetitions cost far more in PostgreSQL's
-- engine) and the digits counted: up to 18 always fit, 19 are checked.
CREATE OR REPLACE FUNCTION bronze.try_bigint(v text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN translate(v, '0123456789', '') = '' AND length(v) BETWEEN 1 AND 18 THEN v::bigint
        WHEN v !~ '^[ \t\r\n]*[+-]?[0-9]+[ \t\r\n]*$' THEN NULL
        WHEN length(ltrim(btrim(v, E' \t\r\n'), '+-')) <= 18 THEN v::bigint
        WHEN length(ltrim(btrim(v, E' \t\r\n'), '+-')) = 19
             AND btrim(v, E' \t\r\n')::numeric
                 BETWEEN -9223372036854775808 AND 9223372036854775807
            THEN v::bigint
    END
$$;

-- Plain decimals (digits and at most one point) take the cast at once, as above.
CREATE OR REPLACE FUNCTION bronze.try_numeric(v text) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN length(v) > 2000 THEN NULL
        WHEN translate(v, '0123456789', '') IN ('', '.') AND v NOT IN ('', '.') THEN v::numeric
        WHEN v ~ '^[ \t\r\n]*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,4})?[ \t\r\n]*$'
            THEN v::numeric
        ELSE CASE lower(btrim(v, E' \t\r\n'))
            WHEN 'nan' THEN 'NaN'::numeric WHEN '+nan' THEN 'NaN' WHEN '-nan' THEN 'NaN'
            WHEN 'inf' THEN 'Infinity' WHEN '+inf' THEN 'Infinity'
            WHEN 'infinity' THEN 'Infinity' WHEN '+infinity' THEN 'Infinity'
            WHEN '-inf' THEN '-Infinity' WHEN '-infinity' THEN '-Infinity'
        END
    END
$$;

-- The leading run of `s` made of `chars`.
CREATE FUNCTION bronze.leading(s text, chars text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT left(s, length(s) - length(ltrim(s, chars)))
$$;

-- The date of year `y`, month `m`, day `d` when there is one. Nested CASEs, not AND:
-- the order in which AND's operands run is not guaranteed, and make_date raises.
CREATE FUNCTION bronze.checked_date(y integer, m integer, d integer) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN y >= 1 AND m BETWEEN 1 AND 12 AND d >= 1 THEN
        CASE WHEN d <= CASE WHEN m IN (4, 6, 9, 11) THEN 30
                            WHEN m <> 2 THEN 31
                            WHEN y % 4 = 0 AND (y % 100 <> 0 OR y % 400 = 0) THEN 29
                            ELSE 28 END
             THEN make_date(y, m, d) END
    END
$$;

-- `n` is the date's three fields separated by '-' (the other separators translated);
-- `date_order` is a constant in every view, so the planner folds the field positions.
CREATE FUNCTION bronze.date_of_fields(n text, date_order text) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT bronze.checked_date(
        split_part(n, '-', CASE date_order WHEN 'ymd' THEN 1 ELSE 3 END)::integer,
        split_part(n, '-', CASE date_order WHEN 'mdy' THEN 1 ELSE 2 END)::integer,
        split_part(n, '-', CASE date_order WHEN 'ymd' THEN 3 WHEN 'dmy' THEN 1 ELSE 2 END)::integer)
$$;

CREATE OR REPLACE FUNCTION bronze.try_date(v text, date_order text) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN v ~ '^[ \t\r\n]*[0-9]{1,4}[-/.][0-9]{1,2}[-/.][0-9]{1,4}[ \t\r\n]*$'
        THEN bronze.date_of_fields(translate(btrim(v, E' \t\r\n'), '/.', '--'), date_order)
    END
$$;

-- `s` starts with `HH:MM[:SS[.fraction]]`, checked by the caller's regex; what follows
-- the time (a zone, blanks) is not read. A leap second (:60) is a time, as inference
-- says, and PostgreSQL rolls it over (past :60 is NULL, where 0005's raised).
CREATE FUNCTION bronze.seconds_of(s text) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN substr(s, 6, 1) = ':'
        THEN replace(bronze.leading(substr(s, 7), '0123456789.,'), ',', '.')::double precision
        ELSE 0 END
$$;

CREATE FUNCTION bronze.time_of_fields(s text) RETURNS time
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN substr(s, 1, 2)::integer <= 23 AND substr(s, 4, 2)::integer <= 59
                     AND bronze.seconds_of(s) <= 60
        THEN make_time(substr(s, 1, 2)::integer, substr(s, 4, 2)::integer, bronze.seconds_of(s))
    END
$$;

CREATE OR REPLACE FUNCTION bronze.try_time(v text) RETURNS time
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN v ~ '^[ \t\r\n]*[0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]{1,9})?)?[ \t\r\n]*$'
        THEN bronze.time_of_fields(btrim(v, E' \t\r\n'))
    END
$$;

-- What follows the date and its `T` or blank in `s`, a timestamp without leading blanks:
-- the time, then the zone if any.
CREATE FUNCTION bronze.after_date(s text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT substr(s, length(bronze.leading(s, '0123456789-/.')) + 2)
$$;

-- A timestamp without its zone; `bronze.try_timestamptz` reads the zone too. A date
-- alone is its midnight: a date column widened to timestamp keeps its old values.
-- Once the regex has checked the shape, the fields are cut out with string functions:
-- a regex with captures costs far more than one without, and each argument stays cheap
-- enough for the planner to inline the helpers.
CREATE OR REPLACE FUNCTION bronze.try_timestamp(v text, date_order text) RETURNS timestamp
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN v ~ ('^[ \t\r\n]*[0-9]{1,4}[-/.][0-9]{1,2}[-/.][0-9]{1,4}[T ]'
                  '[0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]{1,9})?)?[ \t\r\n]*'
                  '(Z|UTC|[+-][0-9]{2}(:?[0-9]{2})?)?[ \t\r\n]*$')
            THEN bronze.date_of_fields(translate(split_part(translate(ltrim(v, E' \t\r\n'),
                                                                    'T', ' '), ' ', 1), '/.', '--'),
                                       date_order)
                 + bronze.time_of_fields(split_part(translate(ltrim(v, E' \t\r\n'), 'T', ' '),
                                                    ' ', 2))
        ELSE bronze.try_date(v, date_order)::timestamp
    END
$$;

-- The offset `zone` names, in minutes east of UTC: 0 without one (read as UTC), NULL
-- when it is out of range.
CREATE FUNCTION bronze.offset_minutes(zone text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN left(zone, 1) NOT IN ('+', '-') THEN 0
        WHEN substr(zone, 2, 2)::integer > 14
             OR coalesce(nullif(substr(replace(zone, ':', ''), 4), ''), '0')::integer > 59
            THEN NULL
        ELSE (CASE left(zone, 1) WHEN '-' THEN -1 ELSE 1 END)
             * (substr(zone, 2, 2)::integer * 60
                + coalesce(nullif(substr(replace(zone, ':', ''), 4), ''), '0')::integer)
    END
$$;

-- Values without a zone, in a column where others have one, are read as UTC. The zone
-- follows the time after blanks or tabs (other blanks before it: no zone, as in 0005).
CREATE OR REPLACE FUNCTION bronze.try_timestamptz(v text, date_order text) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (bronze.try_timestamp(v, date_order)
            - make_interval(mins => bronze.offset_minutes(rtrim(ltrim(
                  ltrim(bronze.after_date(ltrim(v, E' \t\r\n')), '0123456789:.,'),
                  E' \t'), E' \t\r\n'))))
           AT TIME ZONE 'UTC'
$$;

-- The plpgsql helper of 0005 no longer used by any cast.
DROP FUNCTION bronze.days_in(integer, integer);
