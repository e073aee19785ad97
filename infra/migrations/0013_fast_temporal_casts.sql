-- Dates and timestamps in ISO 8601 (`2024-01-02`, `2024-01-02T10:00:00.123Z`), nearly
-- every value a file brings, are read without a regex. 0010's casts are inlined SQL,
-- and the planner substitutes the argument (`payload ->> 'field'`) at every place the
-- body names it: about forty for a timestamp, each a JSON lookup, beside a regex that
-- PostgreSQL's engine runs at about 2 µs a value. Measured on 336,776 flight times:
-- 7.9 s for `try_timestamptz`, against 1.3 s read here. Here the value is read once
-- into PL/pgSQL's variable, its shape checked by `translate` (digits made zeros), and
-- the fields taken at fixed places by 0010's own helpers. Anything else takes 0010's
-- cast, so a value means what it meant. Those are copied here as `bronze.parse_*`, not
-- renamed: views and expression indexes name `bronze.try_*` by OID, and a rename would
-- leave them on the slow casts and out of step with new queries. The test
-- `fast_temporal_casts_equal_the_general_ones` compares both over every combination of
-- valid and invalid fields, fractions, separators and zones.

CREATE FUNCTION bronze.parse_date(v text, date_order text) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN v ~ '^[ \t\r\n]*[0-9]{1,4}[-/.][0-9]{1,2}[-/.][0-9]{1,4}[ \t\r\n]*$'
        THEN bronze.date_of_fields(translate(btrim(v, E' \t\r\n'), '/.', '--'), date_order)
    END
$$;

CREATE FUNCTION bronze.parse_timestamp(v text, date_order text) RETURNS timestamp
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
        ELSE bronze.parse_date(v, date_order)::timestamp
    END
$$;

CREATE FUNCTION bronze.parse_timestamptz(v text, date_order text) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (bronze.parse_timestamp(v, date_order)
            - make_interval(mins => bronze.offset_minutes(rtrim(ltrim(
                  ltrim(bronze.after_date(ltrim(v, E' \t\r\n')), '0123456789:.,'),
                  E' \t'), E' \t\r\n'))))
           AT TIME ZONE 'UTC'
$$;

-- Where the zone of `v` starts when `v` is an ISO timestamp the fast path reads, else
-- NULL: `YYYY-MM-DD`, `T` or a blank, `HH:MM:SS`, a fraction of 1 to 9 digits or none,
-- then no zone, `Z`, `UTC` or `±HH[[:]MM]`.
CREATE FUNCTION bronze.iso_zone_start(v text) RETURNS integer
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    zone integer := 20;
BEGIN
    IF length(v) NOT BETWEEN 19 AND 35
       OR translate(left(v, 19), '0123456789 ', '0000000000T') <> '0000-00-00T00:00:00' THEN
        RETURN NULL;
    END IF;
    IF substr(v, 20, 1) = '.' THEN
        zone := 21 + length(bronze.leading(substr(v, 21), '0123456789'));
        IF zone NOT BETWEEN 22 AND 30 THEN
            RETURN NULL;
        END IF;
    END IF;
    IF substr(v, zone) IN ('', 'Z', 'UTC')
       OR translate(substr(v, zone), '0123456789', '0000000000')
          IN ('+00', '-00', '+00:00', '-00:00', '+0000', '-0000') THEN
        RETURN zone;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION bronze.try_date(v text, date_order text) RETURNS date
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF date_order = 'ymd' AND length(v) = 10
       AND translate(v, '0123456789', '0000000000') = '0000-00-00' THEN
        RETURN bronze.checked_date(substr(v, 1, 4)::integer, substr(v, 6, 2)::integer,
                                   substr(v, 9, 2)::integer);
    END IF;
    RETURN bronze.parse_date(v, date_order);
END
$$;

-- The timestamp `v` holds, its zone starting at `zone` (from `bronze.iso_zone_start`).
-- The fields are read into variables: an inlined helper would read them again at every
-- place it names them. Seconds are read from the text 0010's `bronze.seconds_of` reads
-- (`SS` or `SS.fraction`), so they round alike.
CREATE FUNCTION bronze.iso_timestamp(v text, zone integer) RETURNS timestamp
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    y integer := substr(v, 1, 4);
    m integer := substr(v, 6, 2);
    d integer := substr(v, 9, 2);
    h integer := substr(v, 12, 2);
    mi integer := substr(v, 15, 2);
    s double precision := substr(v, 18, zone - 18);
BEGIN
    RETURN bronze.checked_date(y, m, d)
           + CASE WHEN h <= 23 AND mi <= 59 AND s <= 60 THEN make_time(h, mi, s) END;
END
$$;

CREATE OR REPLACE FUNCTION bronze.try_timestamp(v text, date_order text) RETURNS timestamp
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    zone integer := CASE WHEN date_order = 'ymd' THEN bronze.iso_zone_start(v) END;
BEGIN
    IF zone IS NULL THEN
        RETURN bronze.parse_timestamp(v, date_order);
    END IF;
    RETURN bronze.iso_timestamp(v, zone);
END
$$;

CREATE OR REPLACE FUNCTION bronze.try_timestamptz(v text, date_order text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    zone integer := CASE WHEN date_order = 'ymd' THEN bronze.iso_zone_start(v) END;
BEGIN
    IF zone IS NULL THEN
        RETURN bronze.parse_timestamptz(v, date_order);
    END IF;
    RETURN (bronze.iso_timestamp(v, zone)
            - make_interval(mins => bronze.offset_minutes(substr(v, zone))))
           AT TIME ZONE 'UTC';
END
$$;

-- Negative numbers, as common as positive ones in deltas and amounts, took the regex;
-- a minus sign before plain digits now takes the cast at once too.
CREATE OR REPLACE FUNCTION bronze.try_bigint(v text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN translate(v, '0123456789', '') = '' AND length(v) BETWEEN 1 AND 18 THEN v::bigint
        WHEN left(v, 1) = '-' AND translate(substr(v, 2), '0123456789', '') = ''
             AND length(v) BETWEEN 2 AND 19 THEN v::bigint
        WHEN v !~ '^[ \t\r\n]*[+-]?[0-9]+[ \t\r\n]*$' THEN NULL
        WHEN length(ltrim(btrim(v, E' \t\r\n'), '+-')) <= 18 THEN v::bigint
        WHEN length(ltrim(btrim(v, E' \t\r\n'), '+-')) = 19
             AND btrim(v, E' \t\r\n')::numeric
                 BETWEEN -9223372036854775808 AND 9223372036854775807
            THEN v::bigint
    END
$$;

CREATE OR REPLACE FUNCTION bronze.try_numeric(v text) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN length(v) > 2000 THEN NULL
        WHEN translate(v, '0123456789', '') IN ('', '.') AND v NOT IN ('', '.') THEN v::numeric
        WHEN left(v, 1) = '-' AND translate(substr(v, 2), '0123456789', '') IN ('', '.')
             AND v NOT IN ('-', '-.') THEN v::numeric
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
