//! The PostgreSQL connection: one per process, opened on first use and reopened after
//! it drops, so that a database outage fails the messages in hand (to be retried)
//! instead of the function's start-up.

use std::time::Duration;

use serde_json::Value;
use std::path::PathBuf;
use tokio::sync::{Mutex, MutexGuard};

use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config, NoTls};
use tracing::{info, warn};

use crate::migrate::migrate;

/// Where the connection settings come from.
pub enum DbSource {
    /// A `postgres://` URL or a `key=value` connection string.
    Url(String),
    /// A Secrets Manager secret in the layout RDS writes (see [`parse_secret`] for the
    /// keys read). Read on each (re)connect, so rotation is picked up.
    Secret {
        arn: String,
        client: aws_sdk_secretsmanager::Client,
    },
}

/// Why no connection could be had. Always transient from a message's point of view.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("invalid database settings: {0}")]
    Config(String),
    #[error("reading database secret {arn} failed: {reason}")]
    Secret { arn: String, reason: String },
    /// The message carries the server's reason (`database "x" does not exist`), which
    /// tokio-postgres keeps in the error's source, behind a bare "db error".
    #[error("database: {}", crate::aws::describe(.0))]
    Postgres(tokio_postgres::Error),
    #[error("database: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        DbError::Postgres(e)
    }
}

/// The connection settings a secret holds.
#[derive(PartialEq)]
struct SecretValue {
    username: String,
    password: String,
    host: String,
    port: u16,
    dbname: String,
}

/// Written by hand so that no `{:?}` can print the password.
impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValue")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("dbname", &self.dbname)
            .finish()
    }
}

/// Reads a secret's JSON: `username`, `password` and `host` are required, `port` (a
/// number, or a string as hand-written secrets often have it) defaults to 5432 and
/// `dbname` to `postgres`; every other key is ignored (RDS adds `engine` and
/// `dbInstanceIdentifier`). docs/deploy.md and the template's DatabaseSecretArn
/// description say the same: keep the three in step.
///
/// The errors name the key at fault but never quote a value, nor let serde quote one:
/// the text holds the password, and the error ends up in the logs and the ledger.
fn parse_secret(text: &str) -> Result<SecretValue, String> {
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
    let password = required("password")?;
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

/// The connection, opened lazily and migrated once per process.
pub struct Db {
    source: DbSource,
    client: Mutex<Option<Conn>>,
    /// Whether connecting applies the migrations; operator commands that only read
    /// never change the database they are pointed at.
    migrates: bool,
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
        Self {
            migrates: false,
            ..self
        }
    }

    /// Which database this is, without its password: `host:port/dbname`, or the
    /// secret it is read from.
    pub fn describe(&self) -> String {
        match &self.source {
            DbSource::Url(url) => match url.parse::<Config>() {
                Ok(config) => {
                    let host = config
                        .get_hosts()
                        .first()
                        .map_or_else(String::new, |h| match h {
                            tokio_postgres::config::Host::Tcp(h) => h.clone(),
                            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
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

    pub fn new(source: DbSource) -> Self {
        Self {
            source,
            client: Mutex::new(None),
            migrates: true,
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
            let mut conn = self.connect().await?;
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
            if self.migrates {
                let applied = migrate(&mut conn.client).await?;
                if !applied.is_empty() {
                    info!(?applied, "Applied database migrations.");
                }
            } else if !has_bronze_tables(&conn.client).await? {
                return Err(DbError::Config(format!(
                    "{} has no bronze tables: `bronze migrate` creates them",
                    self.describe()
                )));
            }
            *guard = Some(conn);
        }
        Ok(ConnGuard(guard))
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

    async fn config(&self) -> Result<Config, DbError> {
        let mut config = match &self.source {
            DbSource::Url(url) => url
                .parse::<Config>()
                .map_err(|e| DbError::Config(e.to_string()))?,
            DbSource::Secret { arn, client } => secret_config(arn, client).await?,
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
        Ok(config)
    }

    /// Connects with TLS when `sslmode=require` or a root certificate asks for it.
    async fn connect(&self) -> Result<Conn, DbError> {
        let mut config = self.config().await?;
        let root_cert = std::env::var_os("DATABASE_SSL_ROOT_CERT").map(PathBuf::from);
        if root_cert.is_some() {
            config.ssl_mode(SslMode::Require);
        }
        if config.get_ssl_mode() != SslMode::Require {
            let (client, connection) = config.connect(NoTls).await?;
            let task = tokio::spawn(watch(connection));
            return Ok(Conn {
                client,
                task,
                session: None,
            });
        }
        let tls = crate::tls::connector(root_cert.as_deref())?;
        let (client, connection) = config.connect(tls).await?;
        let task = tokio::spawn(watch(connection));
        Ok(Conn {
            client,
            task,
            session: None,
        })
    }
}

async fn watch<F: std::future::Future<Output = Result<(), tokio_postgres::Error>>>(connection: F) {
    if let Err(e) = connection.await {
        warn!(error = %e, "Database connection closed.");
    }
}

async fn secret_config(
    arn: &str,
    client: &aws_sdk_secretsmanager::Client,
) -> Result<Config, DbError> {
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
    let value = parse_secret(text).map_err(fail)?;
    let mut config = Config::new();
    config
        .user(&value.username)
        .password(&value.password)
        .host(&value.host)
        .port(value.port)
        .dbname(&value.dbname);
    // A secret points at a server across the network: encrypt unless told otherwise.
    let sslmode = std::env::var("DATABASE_SSLMODE").unwrap_or_else(|_| "require".into());
    config.ssl_mode(match sslmode.as_str() {
        "disable" => SslMode::Disable,
        "prefer" => SslMode::Prefer,
        _ => SslMode::Require,
    });
    Ok(config)
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
        parse_secret(&json.to_string())
    }

    fn expected(port: u16, dbname: &str) -> SecretValue {
        SecretValue {
            username: "bronze".into(),
            password: "s3cret-pw".into(),
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
        assert_eq!(parse_secret(text).unwrap(), expected(5432, "bronze"));
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
        let error = parse_secret(r#"{"username":"postgres","password":"s3cret-pw"}"#).unwrap_err();
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
            let error = parse_secret(text).unwrap_err();
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
}
