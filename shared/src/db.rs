//! The PostgreSQL connection: one per process, opened on first use and reopened after
//! it drops, so that a database outage fails the messages in hand (to be retried)
//! instead of the function's start-up.

use std::time::Duration;

use serde::Deserialize;
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
    /// A Secrets Manager secret in the layout RDS writes: `username`, `password`,
    /// `host`, `port`, `dbname`. Read on each (re)connect, so rotation is picked up.
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

#[derive(Deserialize)]
struct SecretValue {
    username: String,
    password: String,
    host: String,
    port: Option<u16>,
    dbname: Option<String>,
}

/// The connection, opened lazily and migrated once per process.
pub struct Db {
    source: DbSource,
    client: Mutex<Option<Client>>,
}

/// The default for local development: the machine's own PostgreSQL.
pub const LOCAL_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

impl Db {
    pub fn new(source: DbSource) -> Self {
        Self {
            source,
            client: Mutex::new(None),
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
        if guard.as_ref().is_none_or(Client::is_closed) {
            let mut client = self.connect().await?;
            let applied = migrate(&mut client).await?;
            if !applied.is_empty() {
                info!(?applied, "Applied database migrations.");
            }
            *guard = Some(client);
        }
        Ok(ConnGuard(guard))
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
        config.application_name("bronze");
        Ok(config)
    }

    /// Connects with TLS when `sslmode=require` or a root certificate asks for it.
    async fn connect(&self) -> Result<Client, DbError> {
        let mut config = self.config().await?;
        let root_cert = std::env::var_os("DATABASE_SSL_ROOT_CERT").map(PathBuf::from);
        if root_cert.is_some() {
            config.ssl_mode(SslMode::Require);
        }
        if config.get_ssl_mode() != SslMode::Require {
            let (client, connection) = config.connect(NoTls).await?;
            tokio::spawn(watch(connection));
            return Ok(client);
        }
        let tls = crate::tls::connector(root_cert.as_deref())?;
        let (client, connection) = config.connect(tls).await?;
        tokio::spawn(watch(connection));
        Ok(client)
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
    let value: SecretValue = serde_json::from_str(text).map_err(|e| fail(e.to_string()))?;
    let mut config = Config::new();
    config
        .user(&value.username)
        .password(&value.password)
        .host(&value.host)
        .port(value.port.unwrap_or(5432))
        .dbname(value.dbname.as_deref().unwrap_or("postgres"));
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
pub struct ConnGuard<'a>(MutexGuard<'a, Option<Client>>);

impl std::ops::Deref for ConnGuard<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        // `Db::client` only hands out a guard after filling the slot.
        self.0
            .as_ref()
            .expect("connection slot filled by Db::client")
    }
}

impl std::ops::DerefMut for ConnGuard<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.0
            .as_mut()
            .expect("connection slot filled by Db::client")
    }
}
