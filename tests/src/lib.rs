//! The test bench: a fresh database, bucket and queues per test, on the real
//! PostgreSQL and the S3/SQS endpoint the environment names (moto, then LocalStack,
//! under `infra/dev/test.sh`; or AWS).

pub mod cluster;
pub mod faults;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_sqs::types::QueueAttributeName;
use bronze::db::{Db, DbSource, LOCAL_URL};
use bronze::dispatch::Dispatcher;
use bronze::keys::Destination;
use bronze::load::Loader;
use bronze::pipeline::{self, LoadError, Loaded, Reopen};
use bronze::runner::{self, Queue, Queues, Settings, Stage};
use bronze::store::Lineage;
use futures_util::future::BoxFuture;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};
use tokio_postgres::{Client, NoTls};

pub type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}{}x{}x{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// `url` with its database replaced by `name`, for URL and key=value forms alike.
pub fn with_dbname(url: &str, name: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (rest, query) = rest
                .split_once('?')
                .map_or((rest, None), |(r, q)| (r, Some(q)));
            let authority = rest.split('/').next().unwrap_or(rest);
            let query = query.map(|q| format!("?{q}")).unwrap_or_default();
            format!("{scheme}://{authority}/{name}{query}")
        }
        None => format!("{url} dbname={name}"),
    }
}

/// `url` logged in as `role` (the test server trusts every local login): the test
/// databases' URLs name the `postgres` user.
pub fn as_role(url: &str, role: &str) -> String {
    url.replacen("postgres@", &format!("{role}@"), 1)
}

pub async fn connect(url: &str) -> Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// A database of the test's own on the real server, dropped by [`TestDb::finish`].
pub struct TestDb {
    pub url: String,
    pub name: String,
    /// A connection for the test's own assertions.
    pub pg: Client,
    admin_url: String,
}

impl TestDb {
    pub async fn new() -> Result<Self> {
        let admin_url = std::env::var("DATABASE_URL").unwrap_or_else(|_| LOCAL_URL.to_owned());
        let name = unique("bronze_test_");
        connect(&admin_url)
            .await?
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
        let url = with_dbname(&admin_url, &name);
        let pg = connect(&url).await?;
        Ok(Self {
            url,
            name,
            pg,
            admin_url,
        })
    }

    /// The server's own database, where databases and roles are made and dropped.
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    pub fn db(&self) -> Db {
        Db::new(DbSource::Url(self.url.clone()))
    }

    pub async fn count(&self, sql: &str) -> Result<i64> {
        Ok(self.pg.query_one(sql, &[]).await?.get(0))
    }

    pub async fn finish(self) -> Result {
        drop(self.pg);
        connect(&self.admin_url)
            .await?
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await?;
        Ok(())
    }
}

/// Sets `dataset` (of tenant `acme`) to load the good records of any file, however
/// many it refuses (`--on-error continue`), for tests of what happens to each record.
pub async fn tolerate(db: &TestDb, dataset: &str) -> Result {
    let mut client = connect(&db.url).await?;
    bronze::migrate::migrate(&mut client).await?;
    let settings = bronze::store::DatasetSettings {
        on_error: bronze::policy::OnError::Continue,
        ..Default::default()
    };
    bronze::store::set_dataset(&mut client, &Destination::new("acme", dataset)?, &settings).await?;
    Ok(())
}

/// Sets `dataset` (of tenant `acme`) to be keyed by `column`, with the default error
/// policy.
pub async fn configure_key(db: &TestDb, dataset: &str, column: &str) -> Result {
    let mut client = connect(&db.url).await?;
    bronze::migrate::migrate(&mut client).await?;
    let settings = bronze::store::DatasetSettings {
        key_columns: vec![column.to_owned()],
        ..Default::default()
    };
    bronze::store::set_dataset(&mut client, &Destination::new("acme", dataset)?, &settings).await?;
    Ok(())
}

/// A file held in memory, read again as often as a load asks.
pub struct InMemory(pub Vec<u8>);

impl Reopen for InMemory {
    fn reopen(
        &self,
    ) -> BoxFuture<'_, std::result::Result<Box<dyn std::io::Read + Send>, LoadError>> {
        let source: Box<dyn std::io::Read + Send> = Box::new(std::io::Cursor::new(self.0.clone()));
        Box::pin(std::future::ready(Ok(source)))
    }
}

/// Loads `bytes` as the file `acme/<dataset>/<name>`, last modified `source_ts`,
/// through the real pipeline in one committed transaction, as `bronze ingest` does.
/// The outer error is the bench's; the inner one is the pipeline's verdict.
pub async fn load_bytes(
    db: &TestDb,
    dataset: &str,
    name: &str,
    source_ts: std::time::SystemTime,
    bytes: &[u8],
) -> Result<std::result::Result<Loaded, LoadError>> {
    let again = InMemory(bytes.to_vec());
    load_reread(db, dataset, name, source_ts, bytes, &again).await
}

/// [`load_bytes`], with `again` giving the bytes of the load's second read.
pub async fn load_reread(
    db: &TestDb,
    dataset: &str,
    name: &str,
    source_ts: std::time::SystemTime,
    bytes: &[u8],
    again: &dyn Reopen,
) -> Result<std::result::Result<Loaded, LoadError>> {
    load_source(db, dataset, name, source_ts, bytes, Some(again)).await
}

/// [`load_bytes`] from a source that cannot be read twice, like a pipe.
pub async fn load_once(
    db: &TestDb,
    dataset: &str,
    name: &str,
    source_ts: std::time::SystemTime,
    bytes: &[u8],
) -> Result<std::result::Result<Loaded, LoadError>> {
    load_source(db, dataset, name, source_ts, bytes, None).await
}

async fn load_source(
    db: &TestDb,
    dataset: &str,
    name: &str,
    source_ts: std::time::SystemTime,
    bytes: &[u8],
    again: Option<&dyn Reopen>,
) -> Result<std::result::Result<Loaded, LoadError>> {
    load_into(db, "acme", dataset, name, source_ts, bytes, again).await
}

/// [`load_bytes`] into tenant `tenant`'s dataset.
pub async fn load_for(
    db: &TestDb,
    tenant: &str,
    dataset: &str,
    name: &str,
    source_ts: std::time::SystemTime,
    bytes: &[u8],
) -> Result<std::result::Result<Loaded, LoadError>> {
    let again = InMemory(bytes.to_vec());
    load_into(db, tenant, dataset, name, source_ts, bytes, Some(&again)).await
}

async fn load_into(
    db: &TestDb,
    tenant: &str,
    dataset: &str,
    name: &str,
    source_ts: std::time::SystemTime,
    bytes: &[u8],
    again: Option<&dyn Reopen>,
) -> Result<std::result::Result<Loaded, LoadError>> {
    let dest = Destination::new(tenant, dataset)?;
    let lineage = Lineage {
        bucket: Some("bucket".into()),
        key: format!("{tenant}/{dataset}/{name}"),
        version_id: None,
        etag: None,
        source_ts,
    };
    let mut client = connect(&db.url).await?;
    bronze::migrate::migrate(&mut client).await?;
    let tx = client.transaction().await?;
    let source = Box::new(std::io::Cursor::new(bytes.to_vec()));
    match pipeline::load(&tx, source, again, &dest, &lineage, None).await {
        Ok(loaded) => {
            tx.commit().await?;
            Ok(Ok(loaded))
        }
        Err(e) => Ok(Err(e)),
    }
}

/// One test's world: its own database, bucket and queues.
pub struct Bench {
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub settings: Settings,
    pub queues: Queues,
    pub test_db: TestDb,
}

impl std::ops::Deref for Bench {
    type Target = TestDb;
    fn deref(&self) -> &TestDb {
        &self.test_db
    }
}

impl Bench {
    /// A fresh world; `visibility_timeout` is short in tests that wait for redelivery.
    pub async fn new(visibility_timeout: u32) -> Result<Self> {
        assert!(
            std::env::var_os("AWS_ENDPOINT_URL").is_some()
                || std::env::var_os("BRONZE_USE_AWS").is_some(),
            "no S3/SQS endpoint: run the suite with `bash infra/dev/test.sh` (it starts moto, then LocalStack)"
        );
        let test_db = TestDb::new().await?;
        let config = bronze::aws::sdk_config().await;
        let (s3, sqs) = (bronze::aws::s3(&config), bronze::aws::sqs(&config));
        let name = unique("bronze-test-");
        let settings = Settings {
            bucket: name.clone(),
            queue_prefix: name,
            visibility_timeout,
            max_receive_count: 5,
        };
        let queues = runner::provision(&s3, &sqs, &settings).await?;
        Ok(Self {
            s3,
            sqs,
            settings,
            queues,
            test_db,
        })
    }

    pub fn dispatcher(&self) -> Dispatcher {
        Dispatcher {
            s3: self.s3.clone(),
            sqs: self.sqs.clone(),
            load_queue_url: self.queues.load.url.clone(),
            db: self.db(),
            metrics: bronze::metrics::Metrics::default(),
            admission: bronze::admission::Admission::default(),
        }
    }

    pub fn loader(&self) -> Loader {
        Loader {
            s3: self.s3.clone(),
            db: self.db(),
            limits: bronze::limits::Limits::default(),
            dead_letters: Some(bronze::load::DeadLetters {
                sqs: self.sqs.clone(),
                url: self.queues.load_dlq.url.clone(),
            }),
            metrics: bronze::metrics::Metrics::default(),
            unnoted: Default::default(),
        }
    }

    /// Uploads `body` to `key` and waits until the bucket's notification of it is in
    /// the landing queue; returns its ETag without quotes.
    ///
    /// S3 notifies after the PUT has returned: moto at once, LocalStack a moment later
    /// (from a thread pool), AWS within seconds. Waiting here lets a test poll the
    /// landing queue without a long poll. After 5 s the upload returns all the same,
    /// and the test's own checks say what is missing.
    pub async fn put(&self, key: &str, body: impl Into<Vec<u8>>) -> Result<String> {
        let before = self.landing_messages().await?;
        let out = self
            .s3
            .put_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .body(ByteStream::from(body.into()))
            .send()
            .await?;
        for _ in 0..100 {
            if self.landing_messages().await? > before {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Ok(out.e_tag().unwrap_or_default().trim_matches('"').to_owned())
    }

    /// The messages in the landing queue: visible, in flight or delayed.
    async fn landing_messages(&self) -> Result<u64> {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.queues.landing.url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await?;
        let attributes = out.attributes();
        let count = |name: QueueAttributeName| -> u64 {
            attributes
                .and_then(|a| a.get(&name))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        Ok(count(QueueAttributeName::ApproximateNumberOfMessages)
            + count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            + count(QueueAttributeName::ApproximateNumberOfMessagesDelayed))
    }

    /// Polls both queues with these handlers until neither has anything left.
    pub async fn drain(&self, dispatcher: &Dispatcher, loader: &Loader) -> Result<usize> {
        let mut handled = 0;
        let mut idle = 0;
        for _ in 0..50 {
            let n = runner::poll_once(
                &self.sqs,
                &self.queues.landing,
                Stage::Dispatch(dispatcher),
                0,
            )
            .await?
                + runner::poll_once(&self.sqs, &self.queues.load, Stage::Load(loader), 0).await?;
            handled += n;
            idle = if n == 0 { idle + 1 } else { 0 };
            if idle == 2 {
                return Ok(handled);
            }
        }
        Err("queues never went idle".into())
    }

    /// Receives (without deleting) what is visible on `queue` now.
    pub async fn visible(&self, queue: &Queue) -> Result<usize> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&queue.url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await?;
        Ok(out.messages().len())
    }

    /// A direct S3 notification for `key`, encoded as S3 encodes keys.
    pub fn notification(&self, key: &str, etag: &str) -> Value {
        json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": self.settings.bucket},
                   "object": {"key": s3_encode(key), "eTag": etag, "size": 1}}
        }]})
    }

    pub async fn finish(self) -> Result {
        self.test_db.finish().await
    }
}

/// S3's form encoding of keys: `/` kept, space as `+`, the rest percent-encoded.
pub fn s3_encode(key: &str) -> String {
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b' ');
    utf8_percent_encode(key, KEEP).to_string().replace(' ', "+")
}

/// An SQS batch of one message per body, as Lambda delivers it.
pub fn sqs_batch(bodies: &[&str]) -> aws_lambda_events::sqs::SqsEvent {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| json!({"messageId": format!("m{i}"), "body": body, "eventSource": "aws:sqs"}))
        .collect();
    serde_json::from_value(json!({"Records": records})).expect("a well-formed SQS event")
}
