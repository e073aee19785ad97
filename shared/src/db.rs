//! The PostgreSQL connection: one per process, opened on first use and reopened after
//! it drops, so that a database outage fails the messages in hand (to be retried)
//! instead of the function's start-up.
//!
//! How it authenticates and what it checks of the server are settled once, at
//! start-up, from the connection settings and the environment (see [`Settings`] and
//! `docs/security.md`):
//!
//! - `sslmode` (in `DATABASE_URL`, else `DATABASE_SSLMODE`) has libpq's meaning, see
//!   [`crate::tls`]; root certificates come from `sslrootcert` or
//!   `DATABASE_SSL_ROOT_CERT` (a PEM file, or `system`).
//! - `DATABASE_AUTH=iam` signs an RDS IAM auth token as the password for every connect
//!   (see [`crate::iam`]); `password` (the default) uses the URL's or the secret's.
//! - A secret is read at the first connect and kept; a connect refused for its
//!   password (SQLSTATE 28P01 or 28000) reads it again once and retries, which is what
//!   a rotation needs.

use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use percent_encoding::percent_decode_str;
use serde_json::Value;
use tokio::sync::{Mutex, MutexGuard, OnceCell};

use tokio_postgres::config::{Host, SslMode as PgSslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};
use tracing::{error, info, warn};

use crate::iam::{self, TokenFor};
use crate::migrate::migrate;
use crate::tls::{self, Check, RootCert, SslMode};

/// Where the connection settings come from.
pub enum DbSource {
    /// A `postgres://` URL or a `key=value` connection string.
    Url(String),
    /// A Secrets Manager secret in the layout RDS writes (see [`parse_secret`] for the
    /// keys read). Read at the first connect, and again when the server refuses its
    /// password, so rotation is picked up.
    Secret {
        /// The secret's ARN (or name).
        arn: String,
        /// Reads it.
        client: aws_sdk_secretsmanager::Client,
    },
}

/// Why no connection could be had. Always transient from a message's point of view.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The settings cannot work (bad URL, unknown `sslmode`, missing roots): fixed by
    /// a deploy, reported at start-up and by every connect.
    #[error("invalid database settings: {0}")]
    Config(String),
    /// The secret could not be read, or is not in the layout bronze reads.
    #[error("reading database secret {arn} failed: {reason}")]
    Secret {
        /// The secret's ARN.
        arn: String,
        /// What went wrong, naming a key but never quoting a value.
        reason: String,
    },
    /// The message carries the server's reason (`database "x" does not exist`), which
    /// tokio-postgres keeps in the error's source, behind a bare "db error".
    #[error("database: {}", crate::aws::describe(.0))]
    Postgres(tokio_postgres::Error),
    /// TLS could not be set up (root certificates unreadable).
    #[error("database: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// Said apart from other connection failures because the fix is in the settings:
    /// the roots given do not sign the server's certificate, or it names another host.
    #[error(
        "database: the server's certificate failed sslmode={mode} against {roots} ({reason}){hint}"
    )]
    Certificate {
        /// The `sslmode` in force.
        mode: SslMode,
        /// The roots the chain was checked against.
        roots: RootCert,
        /// rustls's verdict (`UnknownIssuer`, `certificate not valid for name …`).
        reason: String,
        /// What to change, when the roots are the system's: empty otherwise.
        hint: &'static str,
    },
    /// The IAM auth token could not be signed.
    #[error("database: {0}")]
    Iam(#[from] crate::iam::IamError),
    /// IAM auth lacks what a token needs (host, user, region, credentials).
    #[error("database: DATABASE_AUTH=iam: {0}")]
    IamSetup(String),
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        DbError::Postgres(e)
    }
}

impl DbError {
    /// The server refused the credentials (wrong password, or no such user/role):
    /// what a rotated secret looks like with the old password.
    fn is_auth_failure(&self) -> bool {
        matches!(self, DbError::Postgres(e) if e.code().is_some_and(|code| {
            *code == SqlState::INVALID_PASSWORD
                || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        }))
    }
}

/// How the functions prove who they are to the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// The password of the URL or the secret.
    Password,
    /// An RDS IAM auth token, signed with the function's AWS credentials.
    Iam,
}

/// The connection settings a secret holds.
#[derive(PartialEq, Clone)]
struct SecretValue {
    username: String,
    /// Absent only where `DATABASE_AUTH=iam` makes it unneeded.
    password: Option<String>,
    host: String,
    port: u16,
    dbname: String,
}

/// Written by hand so that no `{:?}` can print the password.
impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValue")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("dbname", &self.dbname)
            .finish()
    }
}

/// Reads a secret's JSON: `username`, `password` (unless `password_needed` is false,
/// as with IAM auth) and `host` are required, `port` (a number, or a string as
/// hand-written secrets often have it) defaults to 5432 and `dbname` to `postgres`;
/// every other key is ignored (RDS adds `engine` and `dbInstanceIdentifier`).
/// docs/deploy.md and the template's DatabaseSecretArn description say the same: keep
/// the three in step.
///
/// The errors name the key at fault but never quote a value, nor let serde quote one:
/// the text holds the password, and the error ends up in the logs and the ledger.
fn parse_secret(text: &str, password_needed: bool) -> Result<SecretValue, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("the secret is not JSON ({e})"))?;
    let Value::Object(fields) = value else {
        return Err("the secret is not a JSON object".into());
    };
    let text_field = |key: &str| -> Result<Option<String>, String> {
        match fields.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(format!("key `{key}` must be a string")),
        }
    };
    let required = |key: &str| -> Result<String, String> {
        text_field(key)?.ok_or_else(|| format!("missing key `{key}`"))
    };
    let username = required("username")?;
    let password = if password_needed {
        Some(required("password")?)
    } else {
        text_field("password")?
    };
    // The secret RDS manages for a master user holds only username and password: say
    // so, since that is the secret people point at first.
    let host = text_field("host")?
        .filter(|host| !host.trim().is_empty())
        .ok_or_else(|| {
            "missing key `host` (a secret RDS manages for a master user has none: \
             make a secret for bronze with host, port and dbname, see docs/deploy.md)"
                .to_owned()
        })?;
    let port = match fields.get("port") {
        None | Some(Value::Null) => Some(5432),
        Some(Value::Number(number)) => number.as_u64().and_then(|n| u16::try_from(n).ok()),
        Some(Value::String(text)) => text.trim().parse::<u16>().ok(),
        Some(_) => None,
    }
    .filter(|&port| port != 0)
    .ok_or("key `port` must be a port number (1-65535), as a number or a string")?;
    // An empty dbname is an unfilled field, as good as absent.
    let dbname = text_field("dbname")?
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "postgres".to_owned());
    Ok(SecretValue {
        username,
        password,
        host: host.trim().to_owned(),
        port,
        dbname,
    })
}

/// A connection string with the TLS keys taken out: tokio-postgres refuses
/// `sslrootcert` and the `verify-*` modes, which bronze handles itself.
#[derive(Debug, PartialEq)]
struct TlsKeys {
    conn: String,
    sslmode: Option<String>,
    sslrootcert: Option<String>,
}

/// Takes `sslmode` and `sslrootcert` out of a `postgres://` URL's query or a
/// `key=value` connection string, leaving the rest for tokio-postgres.
fn split_tls_keys(conn: &str) -> Result<TlsKeys, String> {
    let mut sslmode = None;
    let mut sslrootcert = None;
    let mut take = |key: &str, value: String| match key {
        "sslmode" => {
            sslmode = Some(value);
            true
        }
        "sslrootcert" => {
            sslrootcert = Some(value);
            true
        }
        _ => false,
    };
    let is_url = conn.starts_with("postgres://") || conn.starts_with("postgresql://");
    let conn = if is_url {
        match conn.split_once('?') {
            None => conn.to_owned(),
            Some((head, query)) => {
                let decode = |text: &str| {
                    percent_decode_str(text)
                        .decode_utf8()
                        .map(|t| t.into_owned())
                        .map_err(|e| format!("the URL's query is not UTF-8 ({e})"))
                };
                let mut kept = Vec::new();
                for pair in query.split('&') {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    if !take(&decode(key)?, decode(value)?) {
                        kept.push(pair);
                    }
                }
                if kept.is_empty() {
                    head.to_owned()
                } else {
                    format!("{head}?{}", kept.join("&"))
                }
            }
        }
    } else {
        let mut kept = Vec::new();
        for (key, value) in key_values(conn)? {
            if !take(&key, value.clone()) {
                let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
                kept.push(format!("{key}='{quoted}'"));
            }
        }
        kept.join(" ")
    };
    Ok(TlsKeys {
        conn,
        sslmode,
        sslrootcert,
    })
}

/// The pairs of a libpq `key = value` string: values bare or single-quoted, with
/// backslash escapes in both.
fn key_values(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!("`{key}` in the connection string has no `=`"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => return Err(format!("the value of `{key}` has no closing quote")),
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
}

/// How to connect, settled once from the connection settings and the environment.
#[derive(Debug, PartialEq)]
struct Settings {
    /// For [`DbSource::Url`]: the string without its TLS keys.
    conn: Option<String>,
    auth: Auth,
    mode: SslMode,
    roots: Option<RootCert>,
    /// What is checked of the server; `None` for plain text.
    check: Option<Check>,
}

impl Settings {
    /// Reads `DATABASE_AUTH`, `DATABASE_SSLMODE` and `DATABASE_SSL_ROOT_CERT` through
    /// `env`, and the URL's own `sslmode`/`sslrootcert`, which win over the variables.
    ///
    /// Without any `sslmode`: `verify-full` when root certificates are given (giving
    /// them asks for a checked server), else `require` for a secret or IAM auth (a
    /// server across the network, and RDS takes IAM tokens over TLS only), else no TLS
    /// (a URL, as for the local server).
    fn resolve(source: &DbSource, env: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let env = |key: &str| env(key).filter(|value| !value.trim().is_empty());
        let auth = match env("DATABASE_AUTH").as_deref().map(str::trim) {
            None | Some("password") => Auth::Password,
            Some("iam") => Auth::Iam,
            Some(other) => {
                return Err(format!(
                    "DATABASE_AUTH={other:?}: use `password` (the default) or `iam`"
                ))
            }
        };
        let (conn, url_mode, url_roots) = match source {
            DbSource::Url(url) => {
                let keys = split_tls_keys(url)?;
                (Some(keys.conn), keys.sslmode, keys.sslrootcert)
            }
            DbSource::Secret { .. } => (None, None, None),
        };
        let roots = url_roots
            .or_else(|| env("DATABASE_SSL_ROOT_CERT"))
            .map(|text| RootCert::parse(&text));
        let mode = match url_mode.or_else(|| env("DATABASE_SSLMODE")) {
            Some(text) => text.parse::<SslMode>().map_err(|e| e.to_string())?,
            None if roots.is_some() => SslMode::VerifyFull,
            None if matches!(source, DbSource::Secret { .. }) || auth == Auth::Iam => {
                SslMode::Require
            }
            None => SslMode::Disable,
        };
        if auth == Auth::Iam && mode == SslMode::Disable {
            return Err(
                "DATABASE_AUTH=iam sends its token as the password, which RDS takes over TLS \
                 only: sslmode=disable cannot be used with it"
                    .into(),
            );
        }
        let check = match mode {
            SslMode::Disable => None,
            _ => Some(tls::check(mode, roots.as_ref()).map_err(|e| e.to_string())?),
        };
        if let (Some(RootCert::File(path)), Some(_)) = (&roots, check) {
            tls::check_root_file(path).map_err(|e| e.to_string())?;
        }
        Ok(Self {
            conn,
            auth,
            mode,
            roots,
            check,
        })
    }

    /// Says at start-up what the connection will check, loudly when it checks nothing.
    fn report(&self) {
        match self.check {
            Some(Check::Nothing) => warn!(
                sslmode = %self.mode,
                "The database connection is encrypted but the server's certificate is not \
                 checked: anyone on the path can pose as the database. Set sslmode \
                 (DATABASE_SSLMODE) to verify-full and DATABASE_SSL_ROOT_CERT to the RDS CA \
                 bundle or `system`."
            ),
            Some(Check::Chain) if self.mode != SslMode::VerifyCa => info!(
                sslmode = %self.mode,
                "A root certificate is given: the server's chain is checked (verify-ca), its \
                 host name is not."
            ),
            _ => {}
        }
    }
}

/// The connection, opened lazily and migrated once per process.
pub struct Db {
    source: DbSource,
    settings: Result<Settings, String>,
    /// The secret as last read: reused by reconnects, read again on an authentication
    /// failure (rotation) and after any failed connect (a moved host).
    secret: Mutex<Option<SecretValue>>,
    /// For IAM auth: credentials and region, loaded at the first connect that needs
    /// them.
    aws: OnceCell<SdkConfig>,
    client: Mutex<Option<Conn>>,
    /// What connecting does about the migrations.
    migrations: Migrations,
}

/// What a connection does about bronze's migrations when it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrations {
    /// Applies those not yet applied: the `bronze` command, run by the owner role, and
    /// a single-role set-up that opts in (`BRONZE_MIGRATE=apply`).
    Apply,
    /// Requires the database to be at least at this build's migration, and changes
    /// nothing: the functions, which connect as a loader role that may not migrate.
    /// Migrations are a deploy step (`bronze migrate`), never a cold start's.
    Require,
    /// Requires only that bronze's tables exist: commands that only read, which never
    /// change the database they are pointed at.
    Exist,
}

impl Migrations {
    /// `BRONZE_MIGRATE` (`apply` or `require`), else `default`.
    pub fn from_env(default: Migrations) -> Result<Self, String> {
        match std::env::var("BRONZE_MIGRATE").as_deref() {
            Err(_) | Ok("") => Ok(default),
            Ok("apply") => Ok(Self::Apply),
            Ok("require") => Ok(Self::Require),
            Ok(other) => Err(format!(
                "BRONZE_MIGRATE={other:?}: expected \"apply\" or \"require\""
            )),
        }
    }
}

/// A client and the task that drives its connection.
struct Conn {
    client: Client,
    task: tokio::task::JoinHandle<()>,
    session: Option<Session>,
}

/// A server session, as `pg_stat_activity` knows it: its process and when it began
/// (a process id alone may have been reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pid: i32,
    started: std::time::SystemTime,
}

/// The default for local development: the machine's own PostgreSQL.
pub const LOCAL_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

impl Db {
    /// A connection that never migrates, for commands that only read: pointed at the
    /// wrong database, they say so instead of creating bronze's tables in it.
    pub fn read_only(self) -> Self {
        self.migrations(Migrations::Exist)
    }

    /// What connecting does about the migrations (by default, [`Migrations::Apply`]).
    pub fn migrations(self, migrations: Migrations) -> Self {
        Self { migrations, ..self }
    }

    /// Which database this is, without its password: `host:port/dbname`, or the
    /// secret it is read from.
    pub fn describe(&self) -> String {
        match &self.source {
            // Parsed without its TLS keys, which tokio-postgres would refuse.
            DbSource::Url(url) => match self
                .settings
                .as_ref()
                .ok()
                .and_then(|settings| settings.conn.as_deref())
                .unwrap_or(url)
                .parse::<Config>()
            {
                Ok(config) => {
                    let host = config
                        .get_hosts()
                        .first()
                        .map_or_else(String::new, |h| match h {
                            Host::Tcp(h) => h.clone(),
                            Host::Unix(p) => p.display().to_string(),
                        });
                    let port = config.get_ports().first().copied().unwrap_or(5432);
                    format!(
                        "database {} at {host}:{port}",
                        config.get_dbname().unwrap_or("?")
                    )
                }
                Err(_) => "the database of DATABASE_URL".to_owned(),
            },
            DbSource::Secret { arn, .. } => format!("the database of secret {arn}"),
        }
    }

    /// Settles the TLS and auth settings now, so that start-up logs say what will be
    /// checked and a bad setting is reported at once (and again by every connect).
    pub fn new(source: DbSource) -> Self {
        let settings = Settings::resolve(&source, |key| std::env::var(key).ok());
        match &settings {
            Ok(settings) => settings.report(),
            Err(e) => error!(error = %e, "Invalid database settings: no connection can be made."),
        }
        Self {
            source,
            settings,
            secret: Mutex::new(None),
            aws: OnceCell::new(),
            client: Mutex::new(None),
            migrations: Migrations::Apply,
        }
    }

    /// `DATABASE_URL`, else `DATABASE_SECRET_ARN`, else the local server.
    pub fn from_env(secrets: Option<aws_sdk_secretsmanager::Client>) -> Self {
        let source = match (
            std::env::var("DATABASE_URL"),
            std::env::var("DATABASE_SECRET_ARN"),
        ) {
            (Ok(url), _) => DbSource::Url(url),
            (Err(_), Ok(arn)) => match secrets {
                Some(client) => DbSource::Secret { arn, client },
                None => DbSource::Url(LOCAL_URL.to_owned()),
            },
            _ => DbSource::Url(LOCAL_URL.to_owned()),
        };
        Self::new(source)
    }

    /// The connection, (re)opened and migrated if needed. Held for the caller's unit
    /// of work; messages are handled one after another on it.
    pub async fn client(&self) -> Result<ConnGuard<'_>, DbError> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(|conn| conn.client.is_closed()) {
            // Boxed: connecting (TLS set-up, IAM's AWS credential chain) is a deep
            // future, and unboxed its layout would sit in every caller's future.
            let mut conn = Box::pin(self.connect()).await?;
            conn.session = conn
                .client
                .query_opt(
                    "SELECT pg_backend_pid(), backend_start FROM pg_stat_activity
                     WHERE pid = pg_backend_pid()",
                    &[],
                )
                .await?
                .map(|row| Session {
                    pid: row.get(0),
                    started: row.get(1),
                });
            self.settle_migrations(&mut conn.client).await?;
            *guard = Some(conn);
        }
        Ok(ConnGuard(guard))
    }

    async fn settle_migrations(&self, client: &mut Client) -> Result<(), DbError> {
        if self.migrations == Migrations::Apply {
            let applied = migrate(client).await?;
            if !applied.is_empty() {
                info!(?applied, "Applied database migrations.");
            }
            return Ok(());
        }
        if !has_bronze_tables(client).await? {
            return Err(DbError::Config(format!(
                "{} has no bronze tables: `bronze migrate` creates them",
                self.describe()
            )));
        }
        if self.migrations == Migrations::Require {
            let at = crate::migrate::applied_version(client).await?;
            if at < crate::migrate::LATEST {
                return Err(DbError::Config(format!(
                    "{} is at migration {at}, this build needs {}: run `bronze migrate` \
                     as the owner role before deploying it (docs/deploy.md)",
                    self.describe(),
                    crate::migrate::LATEST
                )));
            }
        }
        Ok(())
    }

    /// Closes the connection (the next [`Db::client`] opens a new one): for a caller
    /// that gave up on it mid-request, when it stopped answering. Its socket is closed
    /// at once, so a server that still hears it rolls its transaction back; one that
    /// does not (a stalled proxy in between) is told by [`Db::end`] with the session
    /// returned here.
    pub async fn discard(&self) -> Option<Session> {
        let conn = self.client.lock().await.take()?;
        conn.task.abort();
        conn.session
    }

    /// Ends `session` from a new connection (`pg_terminate_backend`, allowed on the
    /// sessions of one's own role): its transaction is rolled back and its locks let go,
    /// even when it waits for a client it no longer hears (in a COPY, which no
    /// statement timeout interrupts).
    pub async fn end(&self, session: Session) -> Result<(), DbError> {
        self.client()
            .await?
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE pid = $1 AND backend_start = $2",
                &[&session.pid, &session.started],
            )
            .await?;
        Ok(())
    }

    /// Connects; a secret's password refused by the server is read again and tried
    /// once more, since a rotation may have changed it since it was read.
    async fn connect(&self) -> Result<Conn, DbError> {
        let settings = self
            .settings
            .as_ref()
            .map_err(|e| DbError::Config(e.clone()))?;
        match self.connect_once(settings).await {
            Err(e)
                if e.is_auth_failure()
                    && settings.auth == Auth::Password
                    && matches!(self.source, DbSource::Secret { .. }) =>
            {
                warn!(error = %e, "The database refused the secret's password: reading the secret again (rotated?) and retrying once.");
                self.connect_once(settings).await
            }
            other => other,
        }
    }

    async fn connect_once(&self, settings: &Settings) -> Result<Conn, DbError> {
        let result = self.try_connect(settings).await;
        if result.is_err() {
            // The next connect reads the secret again, whatever went wrong.
            *self.secret.lock().await = None;
        }
        result
    }

    async fn try_connect(&self, settings: &Settings) -> Result<Conn, DbError> {
        let mut config = match (&self.source, &settings.conn) {
            (DbSource::Url(_), Some(conn)) => conn
                .parse::<Config>()
                .map_err(|e| DbError::Config(e.to_string()))?,
            (DbSource::Secret { arn, client }, _) => {
                let value = self.secret_value(arn, client, settings.auth).await?;
                secret_config(&value)
            }
            (DbSource::Url(_), None) => {
                return Err(DbError::Config("no connection string".into()));
            }
        };
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        // A peer that vanished (a failover, a NAT that dropped the flow) is noticed in
        // about a minute rather than the two hours of the system's keepalive default.
        if config.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
            config
                .keepalives_idle(Duration::from_secs(30))
                .keepalives_interval(Duration::from_secs(10))
                .keepalives_retries(3);
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(Duration::from_secs(60));
        }
        config.application_name("bronze");
        if settings.auth == Auth::Iam {
            let token = self.iam_token(&config).await?;
            config.password(token);
        }
        let Some(check) = settings.check else {
            config.ssl_mode(PgSslMode::Disable);
            let (client, connection) = config.connect(NoTls).await?;
            let task = tokio::spawn(watch(connection));
            return Ok(Conn {
                client,
                task,
                session: None,
            });
        };
        config.ssl_mode(if settings.mode == SslMode::Prefer {
            PgSslMode::Prefer
        } else {
            PgSslMode::Require
        });
        let tls = tls::connector(check, settings.roots.as_ref())?;
        let (client, connection) = config
            .connect(tls)
            .await
            .map_err(|e| certificate_error(e, settings))?;
        let task = tokio::spawn(watch(connection));
        Ok(Conn {
            client,
            task,
            session: None,
        })
    }

    /// The secret as last read, or read now.
    async fn secret_value(
        &self,
        arn: &str,
        client: &aws_sdk_secretsmanager::Client,
        auth: Auth,
    ) -> Result<SecretValue, DbError> {
        let mut cached = self.secret.lock().await;
        if let Some(value) = cached.as_ref() {
            return Ok(value.clone());
        }
        let value = read_secret(arn, client, auth).await?;
        *cached = Some(value.clone());
        Ok(value)
    }

    /// A fresh token for the host, port and user `config` names.
    async fn iam_token(&self, config: &Config) -> Result<String, DbError> {
        let (host, port, user) = token_endpoint(config)?;
        let aws = self.aws.get_or_init(crate::aws::sdk_config).await;
        let region = aws
            .region()
            .ok_or_else(|| DbError::IamSetup("no AWS region (AWS_REGION) to sign for".into()))?;
        let credentials = aws
            .credentials_provider()
            .ok_or_else(|| DbError::IamSetup("no AWS credentials provider".into()))?
            .provide_credentials()
            .await
            .map_err(|e| {
                DbError::IamSetup(format!("AWS credentials: {}", crate::aws::describe(&e)))
            })?;
        let target = TokenFor {
            host,
            port,
            user,
            region: region.as_ref(),
        };
        Ok(iam::auth_token(&target, credentials, SystemTime::now())?)
    }
}

/// The endpoint and user a token is signed for: the one TCP host the settings name (a
/// `hostaddr` only says where to connect, RDS checks the name), its port, the user.
fn token_endpoint(config: &Config) -> Result<(&str, u16, &str), DbError> {
    let setup = |reason: &str| DbError::IamSetup(reason.to_owned());
    let host = match config.get_hosts() {
        [Host::Tcp(host)] => host.as_str(),
        [] => return Err(setup("the connection settings name no host")),
        [_] => return Err(setup("a Unix socket takes no IAM token: name the RDS host")),
        _ => return Err(setup("a token is for one host: name only one")),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config
        .get_user()
        .ok_or_else(|| setup("the connection settings name no user"))?;
    Ok((host, port, user))
}

/// Names a certificate the roots do not vouch for as such, with what to change.
fn certificate_error(e: tokio_postgres::Error, settings: &Settings) -> DbError {
    let reason = crate::aws::describe(&e);
    match (&settings.roots, reason.find("invalid peer certificate")) {
        (Some(roots), Some(at)) => DbError::Certificate {
            mode: settings.mode,
            roots: roots.clone(),
            reason: reason[at..].to_owned(),
            hint: if *roots == RootCert::System {
                "; an RDS instance's certificate is signed by RDS's own CA, which is not in \
                 the system's store: ship RDS's global-bundle.pem and point \
                 DATABASE_SSL_ROOT_CERT at it (docs/security.md)"
            } else {
                ""
            },
        },
        _ => DbError::Postgres(e),
    }
}

async fn watch<F: std::future::Future<Output = Result<(), tokio_postgres::Error>>>(connection: F) {
    if let Err(e) = connection.await {
        warn!(error = %e, "Database connection closed.");
    }
}

async fn read_secret(
    arn: &str,
    client: &aws_sdk_secretsmanager::Client,
    auth: Auth,
) -> Result<SecretValue, DbError> {
    let fail = |reason: String| DbError::Secret {
        arn: arn.to_owned(),
        reason,
    };
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| fail(crate::aws::describe(&e)))?;
    let text = out
        .secret_string()
        .ok_or_else(|| fail("no SecretString".into()))?;
    parse_secret(text, auth == Auth::Password).map_err(fail)
}

fn secret_config(value: &SecretValue) -> Config {
    let mut config = Config::new();
    config
        .user(&value.username)
        .host(&value.host)
        .port(value.port)
        .dbname(&value.dbname);
    if let Some(password) = &value.password {
        config.password(password);
    }
    config
}

/// Exclusive use of the process's connection.
pub struct ConnGuard<'a>(MutexGuard<'a, Option<Conn>>);

impl std::ops::Deref for ConnGuard<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        // `Db::client` only hands out a guard after filling the slot.
        &self
            .0
            .as_ref()
            .expect("connection slot filled by Db::client")
            .client
    }
}

impl std::ops::DerefMut for ConnGuard<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self
            .0
            .as_mut()
            .expect("connection slot filled by Db::client")
            .client
    }
}

/// Whether bronze's meta tables exist here.
async fn has_bronze_tables(client: &Client) -> Result<bool, DbError> {
    let row = client
        .query_one("SELECT to_regclass('bronze.migrations') IS NOT NULL", &[])
        .await?;
    Ok(row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(json: serde_json::Value) -> Result<SecretValue, String> {
        parse_secret(&json.to_string(), true)
    }

    fn expected(port: u16, dbname: &str) -> SecretValue {
        SecretValue {
            username: "bronze".into(),
            password: Some("s3cret-pw".into()),
            host: "db.example.rds.amazonaws.com".into(),
            port,
            dbname: dbname.into(),
        }
    }

    fn base() -> serde_json::Value {
        serde_json::json!({
            "username": "bronze",
            "password": "s3cret-pw",
            "host": "db.example.rds.amazonaws.com",
        })
    }

    fn with(key: &str, value: serde_json::Value) -> serde_json::Value {
        let mut json = base();
        json[key] = value;
        json
    }

    fn without(key: &str) -> serde_json::Value {
        let mut json = base();
        json.as_object_mut().unwrap().remove(key);
        json
    }

    #[test]
    fn port_as_number_or_string() {
        let number = secret(with("port", 6543.into())).unwrap();
        assert_eq!(number, expected(6543, "postgres"));
        let string = secret(with("port", "6543".into())).unwrap();
        assert_eq!(string, expected(6543, "postgres"));
        let padded = secret(with("port", " 6543 ".into())).unwrap();
        assert_eq!(padded.port, 6543);
    }

    #[test]
    fn absent_or_null_port_and_dbname_take_the_defaults() {
        assert_eq!(secret(base()).unwrap(), expected(5432, "postgres"));
        assert_eq!(
            secret(with("port", serde_json::Value::Null)).unwrap(),
            expected(5432, "postgres")
        );
        assert_eq!(
            secret(with("dbname", "".into())).unwrap().dbname,
            "postgres"
        );
        assert_eq!(
            secret(with("dbname", "bronze".into())).unwrap().dbname,
            "bronze"
        );
    }

    #[test]
    fn the_rds_layout_is_read_and_its_other_keys_ignored() {
        let text = r#"{"username":"bronze","password":"s3cret-pw","engine":"postgres",
            "host":"db.example.rds.amazonaws.com","port":5432,
            "dbInstanceIdentifier":"bronze-db","dbname":"bronze"}"#;
        assert_eq!(parse_secret(text, true).unwrap(), expected(5432, "bronze"));
    }

    #[test]
    fn bad_ports_are_refused_with_the_key() {
        for port in [
            serde_json::json!("abc"),
            serde_json::json!(""),
            serde_json::json!(0),
            serde_json::json!("0"),
            serde_json::json!(70000),
            serde_json::json!("70000"),
            serde_json::json!(-1),
            serde_json::json!(5432.5),
            serde_json::json!(true),
            serde_json::json!([5432]),
        ] {
            let error = secret(with("port", port.clone())).unwrap_err();
            assert!(error.contains("key `port`"), "{port}: {error}");
        }
    }

    #[test]
    fn missing_keys_are_named() {
        for key in ["username", "password", "host"] {
            let error = secret(without(key)).unwrap_err();
            assert!(
                error.starts_with(&format!("missing key `{key}`")),
                "{error}"
            );
            let error = secret(with(key, serde_json::Value::Null)).unwrap_err();
            assert!(
                error.starts_with(&format!("missing key `{key}`")),
                "{error}"
            );
        }
        assert!(secret(with("host", " ".into()))
            .unwrap_err()
            .starts_with("missing key `host`"));
    }

    #[test]
    fn an_rds_managed_master_secret_says_what_is_missing() {
        let error =
            parse_secret(r#"{"username":"postgres","password":"s3cret-pw"}"#, true).unwrap_err();
        assert!(error.contains("missing key `host`"), "{error}");
        assert!(error.contains("master user"), "{error}");
    }

    #[test]
    fn errors_never_quote_a_value() {
        let cases = [
            r#"{"username":"bronze","password":987654321,"host":"h"}"#,
            r#""s3cret-pw""#,
            r#"["s3cret-pw"]"#,
            r#"{"username":"bronze","password":"s3cret-pw","host":"h","port":"s3cret-pw"}"#,
            r#"{"password":"s3cret-pw", oops}"#,
        ];
        for text in cases {
            let error = parse_secret(text, true).unwrap_err();
            assert!(
                !error.contains("s3cret-pw") && !error.contains("987654321"),
                "{text} -> {error}"
            );
        }
        let wrong_type = secret(with("username", 42.into())).unwrap_err();
        assert_eq!(wrong_type, "key `username` must be a string");
        let debug = format!("{:?}", secret(base()).unwrap());
        assert!(!debug.contains("s3cret-pw"), "{debug}");
    }

    fn url(text: &str) -> DbSource {
        DbSource::Url(text.to_owned())
    }

    fn resolve(source: &DbSource, vars: &[(&str, &str)]) -> Result<Settings, String> {
        Settings::resolve(source, |key| {
            vars.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn tls_keys_leave_the_url_for_tokio_postgres() {
        let keys = split_tls_keys(
            "postgres://u@db:5432/d?sslmode=verify-full&connect_timeout=3&sslrootcert=%2Fopt%2Fca.pem",
        )
        .unwrap();
        assert_eq!(keys.conn, "postgres://u@db:5432/d?connect_timeout=3");
        assert_eq!(keys.sslmode.as_deref(), Some("verify-full"));
        assert_eq!(keys.sslrootcert.as_deref(), Some("/opt/ca.pem"));
        let keys = split_tls_keys("postgresql://u@db/d?sslmode=verify-ca").unwrap();
        assert_eq!(keys.conn, "postgresql://u@db/d");
        assert_eq!(keys.sslmode.as_deref(), Some("verify-ca"));
        let plain = split_tls_keys(LOCAL_URL).unwrap();
        assert_eq!((plain.conn.as_str(), plain.sslmode), (LOCAL_URL, None));
    }

    #[test]
    fn tls_keys_leave_key_value_strings_for_tokio_postgres() {
        let keys = split_tls_keys(
            r"host=db  user = bronze password='it\'s a \\ secret' sslmode=verify-full sslrootcert='/opt/my ca.pem'",
        )
        .unwrap();
        assert_eq!(keys.sslmode.as_deref(), Some("verify-full"));
        assert_eq!(keys.sslrootcert.as_deref(), Some("/opt/my ca.pem"));
        let config: Config = keys.conn.parse().unwrap();
        assert_eq!(config.get_user(), Some("bronze"));
        assert_eq!(config.get_password(), Some(&br"it's a \ secret"[..]));
        assert!(split_tls_keys("host='db").is_err());
        assert!(split_tls_keys("host db").is_err());
    }

    #[test]
    fn sslmode_defaults_follow_what_is_given() {
        let local = resolve(&url(LOCAL_URL), &[]).unwrap();
        assert_eq!((local.mode, local.check), (SslMode::Disable, None));
        let required = resolve(&url(&format!("{LOCAL_URL}?sslmode=require")), &[]).unwrap();
        assert_eq!(
            (required.mode, required.check),
            (SslMode::Require, Some(Check::Nothing))
        );
        let system = [("DATABASE_SSL_ROOT_CERT", "system")];
        let rooted = resolve(&url(LOCAL_URL), &system).unwrap();
        assert_eq!(
            (rooted.mode, rooted.check),
            (SslMode::VerifyFull, Some(Check::Full)),
            "giving roots asks for a checked server"
        );
        let require_with_roots =
            resolve(&url(&format!("{LOCAL_URL}?sslmode=require")), &system).unwrap();
        assert_eq!(
            require_with_roots.check,
            Some(Check::Chain),
            "libpq: verify-ca"
        );
        let env_mode = resolve(
            &url(LOCAL_URL),
            &[("DATABASE_SSLMODE", "verify-ca"), system[0]],
        )
        .unwrap();
        assert_eq!(env_mode.check, Some(Check::Chain));
        let url_wins = resolve(
            &url(&format!("{LOCAL_URL}?sslmode=disable")),
            &[("DATABASE_SSLMODE", "verify-full")],
        )
        .unwrap();
        assert_eq!(url_wins.mode, SslMode::Disable);
    }

    #[test]
    fn verify_modes_without_roots_are_an_error_not_a_downgrade() {
        for mode in ["verify-ca", "verify-full"] {
            let err = resolve(&url(&format!("{LOCAL_URL}?sslmode={mode}")), &[]).unwrap_err();
            assert!(err.contains(&format!("sslmode={mode}")), "{err}");
            let err = resolve(&url(LOCAL_URL), &[("DATABASE_SSLMODE", mode)]).unwrap_err();
            assert!(err.contains("DATABASE_SSL_ROOT_CERT"), "{err}");
        }
        let err = resolve(&url(LOCAL_URL), &[("DATABASE_SSLMODE", "verify_full")]).unwrap_err();
        assert!(err.contains("unknown sslmode"), "{err}");
        let err = resolve(
            &url(LOCAL_URL),
            &[("DATABASE_SSL_ROOT_CERT", "/nonexistent/global-bundle.pem")],
        )
        .unwrap_err();
        assert!(err.contains("/nonexistent/global-bundle.pem"), "{err}");
    }

    #[test]
    fn iam_auth_is_chosen_by_name_and_needs_tls() {
        let iam = resolve(&url(LOCAL_URL), &[("DATABASE_AUTH", "iam")]).unwrap();
        assert_eq!((iam.auth, iam.mode), (Auth::Iam, SslMode::Require));
        let err = resolve(
            &url(&format!("{LOCAL_URL}?sslmode=disable")),
            &[("DATABASE_AUTH", "iam")],
        )
        .unwrap_err();
        assert!(err.contains("TLS"), "{err}");
        let err = resolve(&url(LOCAL_URL), &[("DATABASE_AUTH", "token")]).unwrap_err();
        assert!(err.contains("DATABASE_AUTH=\"token\""), "{err}");
        assert_eq!(
            resolve(&url(LOCAL_URL), &[("DATABASE_AUTH", "password")])
                .unwrap()
                .auth,
            Auth::Password
        );
    }

    #[test]
    fn an_iam_secret_needs_no_password() {
        let value = parse_secret(&without("password").to_string(), false).unwrap();
        assert_eq!(value.password, None);
        let config = secret_config(&value);
        assert_eq!(config.get_password(), None);
        assert_eq!(config.get_user(), Some("bronze"));
    }

    #[test]
    fn a_token_is_for_the_named_host_not_the_address() {
        let config: Config =
            "postgres://bronze_loader@db.example.rds.amazonaws.com:6543/bronze?hostaddr=10.0.0.5"
                .parse()
                .unwrap();
        let (host, port, user) = token_endpoint(&config).unwrap();
        assert_eq!(
            (host, port, user),
            ("db.example.rds.amazonaws.com", 6543, "bronze_loader")
        );
        let default_port: Config = "host=db user=u".parse().unwrap();
        assert_eq!(token_endpoint(&default_port).unwrap().1, 5432);
        for (conn, reason) in [
            ("host=a,b user=u", "one host"),
            ("host=/run/postgresql user=u", "Unix socket"),
            ("host=db", "no user"),
        ] {
            let config: Config = conn.parse().unwrap();
            let err = token_endpoint(&config).unwrap_err().to_string();
            assert!(err.contains(reason), "{conn}: {err}");
        }
    }

    #[test]
    fn a_url_with_tls_keys_is_described_by_its_database() {
        let db = Db::new(url(
            "postgres://u:pw@db.example:6543/bronze?sslmode=verify-full&sslrootcert=system",
        ));
        assert_eq!(db.describe(), "database bronze at db.example:6543");
    }
}
