-- Tenants and their reader roles: each tenant's reader sees its own schema and its own
-- rows of the shared tables, nothing of another tenant's. Roles are made by
-- `bronze tenants create`; this table says which role reads which tenant.
CREATE TABLE bronze.tenants (
    tenant      text PRIMARY KEY,
    reader_role text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Whether `member` may read tenant `t`'s rows: a member of its reader role. Security
-- definer, so that readers need no access to bronze.tenants itself.
CREATE FUNCTION bronze.may_read(t text, member name) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, bronze AS $$
    SELECT EXISTS (SELECT 1 FROM bronze.tenants r
                   WHERE r.tenant = t AND pg_has_role(member, r.reader_role, 'MEMBER'))
$$;
REVOKE ALL ON FUNCTION bronze.may_read(text, name) FROM PUBLIC;

-- Row-level security on the tables every tenant shares. Their owner (the role that
-- migrates and loads) is not subject to it; a tenant's reader sees its rows only.
ALTER TABLE bronze.objects ENABLE ROW LEVEL SECURITY;
ALTER TABLE bronze.loads ENABLE ROW LEVEL SECURITY;
ALTER TABLE bronze.schemas ENABLE ROW LEVEL SECURITY;
ALTER TABLE bronze.rejects ENABLE ROW LEVEL SECURITY;
ALTER TABLE bronze.quality ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_reader ON bronze.objects FOR SELECT
    USING (bronze.may_read(tenant, current_user));
CREATE POLICY tenant_reader ON bronze.loads FOR SELECT
    USING (bronze.may_read(tenant, current_user));
CREATE POLICY tenant_reader ON bronze.schemas FOR SELECT
    USING (bronze.may_read(tenant, current_user));
CREATE POLICY tenant_reader ON bronze.rejects FOR SELECT
    USING (EXISTS (SELECT 1 FROM bronze.loads l WHERE l.id = load_id
                   AND bronze.may_read(l.tenant, current_user)));
CREATE POLICY tenant_reader ON bronze.quality FOR SELECT
    USING (EXISTS (SELECT 1 FROM bronze.loads l WHERE l.id = load_id
                   AND bronze.may_read(l.tenant, current_user)));
