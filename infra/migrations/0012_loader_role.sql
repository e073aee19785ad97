-- Roles for the functions. The role that migrates (the owner) owns bronze's tables and
-- the functions below; the functions connect as a loader role (`bronze migrate --loader
-- ROLE`), which may do what loading needs and nothing more: it cannot create schemas,
-- roles or databases, alter or drop bronze's tables, or read the rejects' raw text.
-- What the loader needs on a tenant's schema it gets when the schema is made, through
-- bronze.open_tenant, which runs as the owner.

-- The roles `bronze migrate --loader` made loaders: each gets USAGE and CREATE on every
-- tenant schema, and its tables are readable by the tenant's reader role.
CREATE TABLE bronze.loaders (
    role       name PRIMARY KEY,
    granted_at timestamptz NOT NULL DEFAULT now()
);

-- Whether `member` loads: a member of a loader role. Security definer, so that the
-- policies below can ask without granting bronze.loaders to anyone.
CREATE FUNCTION bronze.is_loader(member name) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, bronze AS $$
    SELECT EXISTS (SELECT 1 FROM bronze.loaders l WHERE pg_has_role(member, l.role, 'MEMBER'))
$$;

-- Row-level security (migration 0009) applies to every role but the tables' owner: a
-- loader works on every tenant's rows, as far as its grants go.
CREATE POLICY loader ON bronze.objects USING (bronze.is_loader(current_user))
    WITH CHECK (bronze.is_loader(current_user));
CREATE POLICY loader ON bronze.loads USING (bronze.is_loader(current_user))
    WITH CHECK (bronze.is_loader(current_user));
CREATE POLICY loader ON bronze.schemas USING (bronze.is_loader(current_user))
    WITH CHECK (bronze.is_loader(current_user));
CREATE POLICY loader ON bronze.rejects USING (bronze.is_loader(current_user))
    WITH CHECK (bronze.is_loader(current_user));
CREATE POLICY loader ON bronze.quality USING (bronze.is_loader(current_user))
    WITH CHECK (bronze.is_loader(current_user));

-- Whether a tenant's first load makes its reader role (`bronze tenants auto-readers
-- on|off`). The owner decides, not the loader: making roles is the owner's right.
CREATE TABLE bronze.settings (
    one                         boolean PRIMARY KEY DEFAULT true CHECK (one),
    reader_roles_on_first_load  boolean NOT NULL DEFAULT false
);
INSERT INTO bronze.settings DEFAULT VALUES;

-- Makes tenant `t`'s schema if it is missing and, with `with_reader` (NULL: as
-- bronze.settings says), its reader role `bronze_reader_<t>` and the reader's grants
-- (idempotent). Security definer: a loader
-- opens a tenant's schema on its first load without the right to create schemas or
-- roles. The name is checked again here, whoever calls: one spelling, ASCII, and short
-- enough that `tenant_<t>` (and `bronze_reader_<t>`) are not truncated.
CREATE FUNCTION bronze.open_tenant(t text, with_reader boolean) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, bronze AS $$
DECLARE
    s text := 'tenant_' || t;
    r text := 'bronze_reader_' || t;
    l name;
BEGIN
    with_reader := coalesce(with_reader,
                            (SELECT reader_roles_on_first_load FROM bronze.settings));
    IF t IS NULL OR t !~ '^[a-z][a-z0-9_]*$' OR octet_length(t) > 56 THEN
        RAISE EXCEPTION 'tenant name % must match ^[a-z][a-z0-9_]*$ and be at most 56 bytes', t
            USING ERRCODE = 'invalid_name';
    END IF;
    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', s);
    FOR l IN SELECT role FROM bronze.loaders LOOP
        EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO %I', s, l);
    END LOOP;
    IF NOT with_reader THEN
        RETURN;
    END IF;
    IF octet_length(r) > 63 THEN
        RAISE EXCEPTION 'tenant name % is too long for a reader role (at most 49 bytes)', t
            USING ERRCODE = 'invalid_name';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
        EXECUTE format('CREATE ROLE %I NOLOGIN', r);
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', s, r);
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', s, r);
    -- Tables and typed views made later, by the owner (one role does all) or by a
    -- loader, are readable too: a view re-created after a breaking change keeps it.
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO %I', s, r);
    FOR l IN SELECT role FROM bronze.loaders LOOP
        EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT ON TABLES TO %I',
                       l, s, r);
    END LOOP;
    EXECUTE format('GRANT USAGE ON SCHEMA bronze TO %I', r);
    EXECUTE format('GRANT EXECUTE ON FUNCTION bronze.may_read(text, name) TO %I', r);
    EXECUTE format('GRANT SELECT ON bronze.objects, bronze.loads, bronze.schemas, '
                   'bronze.rejects, bronze.quality TO %I', r);
    INSERT INTO bronze.tenants (tenant, reader_role) VALUES (t, r)
        ON CONFLICT (tenant) DO NOTHING;
END
$$;
REVOKE ALL ON FUNCTION bronze.open_tenant(text, boolean) FROM PUBLIC;
