//! TLS to PostgreSQL with libpq's `sslmode` meaning, and a rotated secret read again:
//! against the local server (TLS on with its own self-signed certificate) and against
//! a throwaway cluster whose certificate and CA the test makes.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bronze::db::{Db, DbError, DbSource};
use bronze::tls::{Check, RootCert};
use bronze_tests::cluster::{Cluster, PASSWORD_ROLE};
use bronze_tests::{connect, Result, TestDb};

async fn uses_tls(db: &Db) -> Result<bool> {
    let client = db.client().await?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

#[tokio::test]
async fn sslmode_require_encrypts_and_the_default_does_not() -> Result {
    let test_db = TestDb::new().await?;
    let separator = if test_db.url.contains('?') { '&' } else { '?' };
    let required = Db::new(DbSource::Url(format!(
        "{}{separator}sslmode=require",
        test_db.url
    )));
    assert!(uses_tls(&required).await?, "sslmode=require must encrypt");
    let plain = Db::new(DbSource::Url(test_db.url.clone()));
    assert!(!uses_tls(&plain).await?);
    test_db.finish().await
}

#[test]
fn a_missing_root_certificate_is_named() {
    let path = RootCert::File("/nonexistent/rds-ca.pem".into());
    let err = bronze::tls::connector(Check::Full, Some(&path))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("/nonexistent/rds-ca.pem"), "{err}");
}

/// Connects with `query` (sslmode, sslrootcert) to `host`'s name on the cluster.
async fn connect_as(
    cluster: &Cluster,
    host: &str,
    query: &str,
) -> std::result::Result<bool, String> {
    let db = Db::new(DbSource::Url(cluster.url("postgres", host, query)));
    let client = db.client().await.map_err(|e| e.to_string())?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

#[tokio::test]
async fn verify_full_checks_chain_and_name_verify_ca_the_chain_only() -> Result {
    let cluster = Cluster::start_tls()?;
    let ca = format!("sslrootcert={}", cluster.ca.display());
    let other = format!("sslrootcert={}", cluster.other_ca.display());
    // The certificate is for `localhost`; `db.wrong.test` reaches the same server.
    let (right, wrong) = ("localhost", "db.wrong.test");

    assert_eq!(
        connect_as(&cluster, right, &format!("sslmode=verify-full&{ca}")).await,
        Ok(true)
    );
    let err = connect_as(&cluster, wrong, &format!("sslmode=verify-full&{ca}"))
        .await
        .expect_err("verify-full must refuse a certificate for another name");
    assert!(
        err.contains("failed sslmode=verify-full")
            && err.contains("not valid for name \"db.wrong.test\""),
        "{err}"
    );
    assert_eq!(
        connect_as(&cluster, wrong, &format!("sslmode=verify-ca&{ca}")).await,
        Ok(true),
        "verify-ca checks the chain, not the name"
    );
    for mode in ["verify-ca", "verify-full"] {
        let err = connect_as(&cluster, right, &format!("sslmode={mode}&{other}"))
            .await
            .expect_err("a chain to another CA must be refused");
        assert!(err.contains("UnknownIssuer"), "{mode}: {err}");
    }

    // libpq: with a root certificate, require behaves as verify-ca.
    assert_eq!(
        connect_as(&cluster, wrong, &format!("sslmode=require&{ca}")).await,
        Ok(true)
    );
    let err = connect_as(&cluster, right, &format!("sslmode=require&{other}"))
        .await
        .expect_err("require with a root certificate checks the chain");
    assert!(err.contains("UnknownIssuer"), "{err}");
    // Without one, require encrypts and checks nothing (and warns at start-up).
    assert_eq!(
        connect_as(&cluster, wrong, "sslmode=require").await,
        Ok(true)
    );
    // Roots given, no mode: verify-full.
    let err = connect_as(&cluster, wrong, &ca)
        .await
        .expect_err("roots ask for verify-full");
    assert!(err.contains("failed sslmode=verify-full"), "{err}");

    // verify-* without roots is refused before connecting, never downgraded.
    let err = connect_as(&cluster, right, "sslmode=verify-full")
        .await
        .expect_err("no roots");
    assert!(err.contains("needs root certificates"), "{err}");
    // The system's store does not know a private CA (nor RDS's): said with the fix.
    let err = connect_as(&cluster, right, "sslmode=verify-full&sslrootcert=system")
        .await
        .expect_err("the system's store does not know the test CA");
    assert!(
        err.contains("UnknownIssuer") && err.contains("global-bundle.pem"),
        "{err}"
    );
    Ok(())
}

/// Secrets Manager's `GetSecretValue`, served from memory on a port of the test's own,
/// so the rotation test needs no emulator (LocalStack runs here with S3 and SQS only)
/// and can count the reads.
struct FakeSecrets {
    url: String,
    value: Arc<Mutex<String>>,
    reads: Arc<AtomicUsize>,
}

impl FakeSecrets {
    fn start(value: String) -> Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let value = Arc::new(Mutex::new(value));
        let reads = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (Arc::clone(&value), Arc::clone(&reads));
        // Lives as long as the test process: one connection at a time, keep-alive.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = serve(stream, &served, &counted);
            }
        });
        Ok(Self { url, value, reads })
    }

    fn set(&self, value: String) {
        *self.value.lock().unwrap() = value;
    }

    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    fn client(&self) -> aws_sdk_secretsmanager::Client {
        use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .endpoint_url(&self.url)
            .build();
        aws_sdk_secretsmanager::Client::from_conf(config)
    }
}

/// Answers each request on `stream` with the secret's current value.
fn serve(
    stream: std::net::TcpStream,
    value: &Mutex<String>,
    reads: &AtomicUsize,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut length = 0;
        let mut target = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, field)) = line.split_once(':') {
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = field.trim().parse().unwrap_or(0),
                    "x-amz-target" => target = field.trim().to_owned(),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        assert_eq!(target, "secretsmanager.GetSecretValue");
        reads.fetch_add(1, Ordering::SeqCst);
        let answer = serde_json::json!({
            "ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bronze/db-AbCdEf",
            "Name": "bronze/db",
            "SecretString": *value.lock().unwrap(),
        })
        .to_string();
        write!(
            writer,
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        )?;
        writer.flush()?;
    }
}

/// A secret rotated under a running process: the reconnect tries the password it
/// read before, is refused (28P01), reads the secret again once and gets in.
#[tokio::test]
async fn a_rotated_secret_is_read_again_after_an_authentication_failure() -> Result {
    let cluster = Cluster::start_tls()?;
    let admin = connect(&cluster.url("postgres", "localhost", "sslmode=disable")).await?;
    admin
        .batch_execute(&format!(
            "CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD 'first-pw'"
        ))
        .await?;
    // Its own database: bronze migrates on connect, which takes CREATE.
    admin
        .batch_execute(&format!("CREATE DATABASE rotated OWNER {PASSWORD_ROLE}"))
        .await?;
    let secret = |password: &str| {
        serde_json::json!({
            "username": PASSWORD_ROLE,
            "password": password,
            "host": "127.0.0.1",
            "port": cluster.port,
            "dbname": "rotated",
        })
        .to_string()
    };
    let secrets = FakeSecrets::start(secret("first-pw"))?;
    let db = Db::new(DbSource::Secret {
        arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:bronze/db-AbCdEf".into(),
        client: secrets.client(),
    });

    // Rotation: the password changes in the database (and, if `in_secret`, in the
    // secret), and the connection the process holds drops.
    let rotate = |password: &'static str, in_secret: bool| {
        let (admin, secrets, db) = (&admin, &secrets, &db);
        let value = secret(password);
        async move {
            let client = db.client().await?;
            let pid: i32 = client
                .query_one("SELECT pg_backend_pid()", &[])
                .await?
                .get(0);
            admin
                .batch_execute(&format!("ALTER ROLE {PASSWORD_ROLE} PASSWORD '{password}'"))
                .await?;
            if in_secret {
                secrets.set(value);
            }
            admin
                .execute("SELECT pg_terminate_backend($1)", &[&pid])
                .await?;
            for _ in 0..100 {
                if client.is_closed() {
                    return Ok::<(), Box<dyn std::error::Error + Send + Sync>>(());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err("the terminated connection never closed".into())
        }
    };
    let current_user = || async {
        let user: String = db
            .client()
            .await?
            .query_one("SELECT current_user::text", &[])
            .await?
            .get(0);
        Ok::<String, Box<dyn std::error::Error + Send + Sync>>(user)
    };

    assert_eq!(current_user().await?, PASSWORD_ROLE);
    assert_eq!(secrets.reads(), 1);
    rotate("second-pw", true).await?;
    assert_eq!(
        current_user().await?,
        PASSWORD_ROLE,
        "the rotated secret was read again"
    );
    assert_eq!(
        secrets.reads(),
        2,
        "the reconnect used the secret as read before, then read it once more"
    );

    // A password the secret does not have: one more read, then the refusal is the error.
    rotate("third-pw", false).await?;
    let Err(err) = db.client().await else {
        return Err("a password nobody wrote down must not connect".into());
    };
    assert!(matches!(err, DbError::Postgres(_)), "{err}");
    assert!(
        err.to_string().contains("password authentication failed"),
        "{err}"
    );
    assert_eq!(secrets.reads(), 3, "read again once, not more");
    Ok(())
}
