//! The fault bench (`docs/faults.md`): the real `bronze` process paused at a fault
//! point and killed, a TCP proxy that cuts or stalls connections (the throwaway
//! PostgreSQL cluster to restart is [`crate::cluster::Cluster`]), an HTTP proxy in front of S3 that answers with errors or
//! resets a stream halfway, and the invariants every fault test checks afterwards.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_postgres::Client;

use crate::{Bench, Result};

/// A `bronze` process (the local runner, usually), its stderr read line by line.
pub struct Process {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Process {
    pub fn spawn(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Result<Self> {
        let mut child = Command::new(bin)
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take();
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (sender, lines) = mpsc::unbounded_channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr)
                .lines()
                .map_while(std::io::Result::ok)
            {
                kept.lock().unwrap().push(line.clone());
                let _ = sender.send(line);
            }
        });
        Ok(Self {
            child,
            stdin,
            lines,
            log,
        })
    }

    /// The `bronze run` runner on the bench's bucket and queues, with `env` added.
    pub fn runner(bin: &str, bench: &Bench, db_url: &str, env: &[(&str, &str)]) -> Result<Self> {
        let visibility = bench.settings.visibility_timeout.to_string();
        let mut all = vec![("DATABASE_URL", db_url)];
        all.extend_from_slice(env);
        Self::spawn(
            bin,
            &[
                "run",
                "--bucket",
                &bench.settings.bucket,
                "--queue-prefix",
                &bench.settings.queue_prefix,
                "--visibility-timeout",
                &visibility,
            ],
            &all,
        )
    }

    /// Waits for a stderr line containing `needle`.
    pub async fn wait_for(&mut self, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) if line.contains(needle) => return Ok(line),
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Err(format!("process ended before {needle:?}:\n{}", self.log()).into())
                }
                Err(_) => {
                    return Err(format!("no {needle:?} within {timeout:?}:\n{}", self.log()).into())
                }
            }
        }
    }

    /// Waits until the process pauses at the fault point `point` (`BRONZE_FAULT`).
    pub async fn paused_at(&mut self, point: &str) -> Result {
        self.wait_for(
            &format!("bronze-fault: paused at {point}"),
            Duration::from_secs(60),
        )
        .await
        .map(drop)
    }

    /// Lets a paused process go on.
    pub fn resume(&mut self) -> Result {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        stdin.write_all(b"\n")?;
        stdin.flush()?;
        Ok(())
    }

    /// SIGKILL, and the exit reaped.
    pub fn kill(&mut self) -> Result {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Everything the process wrote on stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy (to PostgreSQL): passes bytes both ways until told to cut every open
/// connection, or to stall them (hold their bytes and answer nothing, as a dead NAT
/// mapping or a hung middlebox does), or to go down (cut, and close new connections
/// at once) until it is up again. Connections opened after a stall pass.
pub struct TcpProxy {
    pub port: u16,
    cut: watch::Sender<u64>,
    stalled_below: Arc<AtomicU64>,
    replies_stalled_below: Arc<AtomicU64>,
    opened: Arc<AtomicU64>,
    down: Arc<AtomicBool>,
    accept: tokio::task::JoinHandle<()>,
}

/// The receive buffer of [`TcpProxy::narrow`]'s sockets toward the client.
const NARROW_RECEIVE_BUFFER: u32 = 4 * 1024;

impl TcpProxy {
    pub async fn start(upstream: &str) -> Result<Self> {
        Self::listen(upstream, None).await
    }

    /// A proxy whose sockets toward the client take little before they stop reading:
    /// stalled, it leaves the client's kernel with its bytes unsent, probing a window
    /// that stays shut, which is what a TCP user timeout bounds (as it bounds data
    /// never acknowledged on a path that drops every packet).
    pub async fn narrow(upstream: &str) -> Result<Self> {
        Self::listen(upstream, Some(NARROW_RECEIVE_BUFFER)).await
    }

    async fn listen(upstream: &str, receive_buffer: Option<u32>) -> Result<Self> {
        let upstream = upstream.to_owned();
        let socket = TcpSocket::new_v4()?;
        if let Some(bytes) = receive_buffer {
            // Set on the listener, it is the accepted sockets' from their handshake on.
            socket.set_recv_buffer_size(bytes)?;
        }
        socket.bind("127.0.0.1:0".parse()?)?;
        let listener = socket.listen(64)?;
        let port = listener.local_addr()?.port();
        let (cut, _) = watch::channel(0u64);
        let stalled_below = Arc::new(AtomicU64::new(0));
        let replies_stalled_below = Arc::new(AtomicU64::new(0));
        let opened = Arc::new(AtomicU64::new(0));
        let down = Arc::new(AtomicBool::new(false));
        let replies = Arc::clone(&replies_stalled_below);
        let (cut_tx, stalled, count, refusing) = (
            cut.clone(),
            Arc::clone(&stalled_below),
            Arc::clone(&opened),
            Arc::clone(&down),
        );
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if refusing.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream.as_str()).await else {
                    continue;
                };
                let id = count.fetch_add(1, Ordering::SeqCst) + 1;
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                let directions = [
                    (client_read, server_write, Arc::clone(&stalled)),
                    (server_read, client_write, Arc::clone(&replies)),
                ];
                for (from, to, replies_too) in directions {
                    let stalled = [Arc::clone(&stalled), replies_too];
                    tokio::spawn(pump(from, to, id, cut_tx.subscribe(), stalled));
                }
            }
        });
        Ok(Self {
            port,
            cut,
            stalled_below,
            replies_stalled_below,
            opened,
            down,
            accept,
        })
    }

    /// The path to the server goes down: every open connection is closed, and new ones
    /// are closed as soon as they are made, until [`TcpProxy::up`].
    pub fn down(&self) {
        self.down.store(true, Ordering::SeqCst);
        self.cut();
    }

    /// The path is back: new connections pass again.
    pub fn up(&self) {
        self.down.store(false, Ordering::SeqCst);
    }

    /// Closes every connection open now.
    pub fn cut(&self) {
        self.cut.send_modify(|generation| *generation += 1);
    }

    /// Every connection open now stops passing bytes, and stays open.
    pub fn stall(&self) {
        self.stalled_below
            .store(self.opened.load(Ordering::SeqCst) + 1, Ordering::SeqCst);
    }

    /// Every connection open now still carries the client's bytes to the server, but
    /// none of the server's back: a request is done, its answer never arrives.
    pub fn stall_replies(&self) {
        self.replies_stalled_below
            .store(self.opened.load(Ordering::SeqCst) + 1, Ordering::SeqCst);
    }

    /// Connections opened so far.
    pub fn connections(&self) -> u64 {
        self.opened.load(Ordering::SeqCst)
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    id: u64,
    mut cut: watch::Receiver<u64>,
    stalled_below: [Arc<AtomicU64>; 2],
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            _ = cut.changed() => return,
            n = from.read(&mut buf) => match n {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
        };
        if stalled_below.iter().any(|s| id < s.load(Ordering::SeqCst)) {
            // Held: nothing more passes, the sockets stay open until a cut.
            let _ = cut.changed().await;
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// What the S3 proxy does to a request that matches a rule.
#[derive(Debug, Clone)]
pub enum S3Fault {
    /// Answers with this status and S3 error code, without asking S3.
    Status(u16, &'static str),
    /// Asks S3, then sends the response head and half its body, and closes.
    ResetHalfway,
    /// Reads the request and never answers, the connection left open.
    Stall,
}

#[derive(Debug, Clone)]
struct Rule {
    method: &'static str,
    path_contains: String,
    fault: S3Fault,
    /// Matching requests let through before the fault applies.
    skip: usize,
    remaining: usize,
}

/// One request the S3 proxy saw: method, path, and whether it injected a fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub faulted: bool,
}

/// An HTTP proxy in front of S3 (moto) that injects faults into chosen requests.
/// One request per connection: it asks for `Connection: close` upstream.
pub struct S3Proxy {
    pub url: String,
    rules: Arc<Mutex<Vec<Rule>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl S3Proxy {
    pub async fn start(upstream: &str) -> Result<Self> {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
        let rules: Arc<Mutex<Vec<Rule>>> = Arc::default();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (r, s) = (Arc::clone(&rules), Arc::clone(&seen));
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (r, s, upstream) = (Arc::clone(&r), Arc::clone(&s), upstream.clone());
                tokio::spawn(async move {
                    let _ = serve(client, &upstream, &r, &s).await;
                });
            }
        });
        Ok(Self {
            url,
            rules,
            seen,
            accept,
        })
    }

    /// The next `times` requests `method` whose path contains `path_contains` get `fault`.
    pub fn inject(&self, method: &'static str, path_contains: &str, fault: S3Fault, times: usize) {
        self.inject_after(method, path_contains, fault, 0, times);
    }

    /// [`S3Proxy::inject`], once `skip` matching requests have passed unharmed.
    pub fn inject_after(
        &self,
        method: &'static str,
        path_contains: &str,
        fault: S3Fault,
        skip: usize,
        times: usize,
    ) {
        self.rules.lock().unwrap().push(Rule {
            method,
            path_contains: path_contains.to_owned(),
            fault,
            skip,
            remaining: times,
        });
    }

    pub fn clear(&self) {
        self.rules.lock().unwrap().clear();
    }

    /// The requests seen so far with this method and path fragment.
    pub fn seen(&self, method: &str, path_contains: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.method == method && s.path.contains(path_contains))
            .cloned()
            .collect()
    }

    /// An S3 client that goes through this proxy.
    pub async fn s3_client(&self) -> aws_sdk_s3::Client {
        let config = bronze::aws::sdk_config().await;
        let s3 = aws_sdk_s3::config::Builder::from(&config)
            .endpoint_url(&self.url)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(s3)
    }
}

impl Drop for S3Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn serve(
    mut client: TcpStream,
    upstream: &str,
    rules: &Mutex<Vec<Rule>>,
    seen: &Mutex<Vec<Seen>>,
) -> Result {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 64 * 1024 || client.read(&mut byte).await? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut words = text.split_whitespace();
    let (method, path) = (
        words.next().unwrap_or_default().to_owned(),
        words.next().unwrap_or_default().to_owned(),
    );
    let fault = {
        let mut rules = rules.lock().unwrap();
        rules
            .iter_mut()
            .find(|r| r.remaining > 0 && r.method == method && path.contains(&r.path_contains))
            .and_then(|r| {
                if r.skip > 0 {
                    r.skip -= 1;
                    return None;
                }
                r.remaining -= 1;
                Some(r.fault.clone())
            })
    };
    seen.lock().unwrap().push(Seen {
        method: method.clone(),
        path: path.clone(),
        faulted: fault.is_some(),
    });
    if let Some(S3Fault::Stall) = fault {
        // The connection stays open, unanswered, until the proxy's runtime ends.
        std::future::pending::<()>().await;
        drop(client);
        return Ok(());
    }
    if let Some(S3Fault::Status(status, code)) = fault {
        let body = if method == "HEAD" {
            String::new()
        } else {
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
                 <Message>injected by the fault suite</Message><RequestId>fault</RequestId></Error>"
            )
        };
        let response = format!(
            "HTTP/1.1 {status} Injected\r\nContent-Type: application/xml\r\n\
             Content-Length: {}\r\nx-amz-request-id: fault\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        client.write_all(response.as_bytes()).await?;
        client.shutdown().await?;
        return Ok(());
    }
    // Forward the request with `Connection: close`, then whatever body follows.
    let mut forwarded = String::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            forwarded.push_str(line);
            forwarded.push_str("\r\n");
        }
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    let mut server = TcpStream::connect(upstream).await?;
    server.write_all(forwarded.as_bytes()).await?;
    if matches!(fault, Some(S3Fault::ResetHalfway)) {
        let mut response = Vec::new();
        server.read_to_end(&mut response).await?;
        let end = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(response.len(), |p| p + 4);
        let half = end + (response.len() - end) / 2;
        client.write_all(&response[..half]).await?;
        // Dropped with the rest of the body unsent: the reader sees the stream end early.
        return Ok(());
    }
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upload = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
    });
    tokio::io::copy(&mut server_read, &mut client_write).await?;
    upload.abort();
    client_write.shutdown().await?;
    Ok(())
}

/// A ledger row: key, status, attempts, deaths, error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRow {
    pub key: String,
    pub status: String,
    pub attempts: i32,
    pub deaths: i32,
    pub error: Option<String>,
}

pub async fn ledger(pg: &Client) -> Result<Vec<LedgerRow>> {
    let rows = pg
        .query(
            "SELECT key, status, attempts, deaths, error FROM bronze.objects ORDER BY key",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| LedgerRow {
            key: r.get(0),
            status: r.get(1),
            attempts: r.get(2),
            deaths: r.get(3),
            error: r.get(4),
        })
        .collect())
}

/// Waits until `objects` ledger rows exist and every one has a verdict; the ledger then.
pub async fn await_verdicts(
    pg: &Client,
    objects: usize,
    timeout: Duration,
) -> Result<Vec<LedgerRow>> {
    let started = Instant::now();
    loop {
        let rows = ledger(pg).await.unwrap_or_default();
        let done = |r: &LedgerRow| {
            matches!(
                r.status.as_str(),
                "loaded" | "rejected" | "skipped" | "failed"
            )
        };
        if rows.len() == objects && rows.iter().all(done) {
            return Ok(rows);
        }
        if started.elapsed() > timeout {
            return Err(format!(
                "no verdict for all {objects} objects within {timeout:?}: {rows:?}"
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the bench's load queue holds no message (visible or in flight).
pub async fn await_load_queue_empty(bench: &Bench, timeout: Duration) -> Result {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let started = Instant::now();
    loop {
        let out = bench
            .sqs
            .get_queue_attributes()
            .queue_url(&bench.queues.load.url)
            .attribute_names(A::All)
            .send()
            .await?;
        let count = |name: A| -> u64 {
            out.attributes()
                .and_then(|a| a.get(&name))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        let left =
            count(A::ApproximateNumberOfMessages) + count(A::ApproximateNumberOfMessagesNotVisible);
        if left == 0 {
            return Ok(());
        }
        if started.elapsed() > timeout {
            return Err(format!("{left} load messages still queued after {timeout:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The content of a bronze table as a clean run would leave it, without what differs
/// between runs (load ids, times, buckets, ETags): key, version, hash, change type,
/// current flag, payload, source key and line, ordered.
pub async fn table_snapshot(pg: &Client, table: &str) -> Result<Vec<String>> {
    let rows = pg
        .query(
            &format!(
                "SELECT concat_ws('|', record_key, version, encode(record_hash, 'hex'),
                     change_type, is_current, payload::text, source_key, source_line,
                     valid_to IS NULL)
                 FROM {table} ORDER BY record_key, version"
            ),
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Loads per object: each object's loads (`status` of each), by key.
pub async fn loads_by_key(pg: &Client) -> Result<Vec<(String, String)>> {
    let rows = pg
        .query(
            "SELECT o.key, l.status FROM bronze.loads l JOIN bronze.objects o ON o.id = l.object_id
             ORDER BY o.key, l.id",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The first file of the fault tests: `rows` orders, keyed by `order_id`.
pub fn orders_a(rows: usize) -> String {
    let mut text = String::from("order_id,customer,amount\n");
    for i in 1..=rows {
        text.push_str(&format!("{i},customer number {i},{i}.00\n"));
    }
    text
}

/// The second: the first half of [`orders_a`]'s orders changed, the second half as
/// they were, and a quarter more new.
pub fn orders_b(rows: usize) -> String {
    let mut text = String::from("order_id,customer,amount\n");
    for i in 1..=rows + rows / 4 {
        let cents = if i <= rows / 2 { 50 } else { 0 };
        text.push_str(&format!("{i},customer number {i},{i}.{cents:02}\n"));
    }
    text
}

/// A bench whose dataset `acme/orders` is keyed by `order_id`.
pub async fn orders_bench(visibility: u32) -> Result<Bench> {
    let bench = Bench::new(visibility).await?;
    crate::configure_key(&bench, "orders", "order_id").await?;
    bench
        .pg
        .batch_execute("SET statement_timeout = '20s'")
        .await?;
    Ok(bench)
}

/// What `table` holds after a clean run of `files` (key, body), one after the other,
/// through dispatch and load in process.
pub async fn clean_run(table: &str, files: &[(&str, String)]) -> Result<Vec<String>> {
    let bench = orders_bench(30).await?;
    for (key, body) in files {
        bench.put(key, body.clone()).await?;
        bench.drain(&bench.dispatcher(), &bench.loader()).await?;
    }
    let snapshot = table_snapshot(&bench.pg, table).await?;
    bench.finish().await?;
    Ok(snapshot)
}
