//! A throwaway PostgreSQL cluster of the test's own: `initdb` into a temporary
//! directory, its own port on 127.0.0.1, to restart, stop and start at will (the fault
//! suite), or with TLS on, a certificate made here by `openssl` and signed by a CA made
//! here, and password (SCRAM) authentication for one role (the TLS tests). The shared
//! server's configuration is never touched; the cluster is stopped and removed when
//! the value is dropped, a failed test included.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::{connect, Result};

/// The role that must give a password; every other role is trusted.
pub const PASSWORD_ROLE: &str = "bronze_rotated";

/// A running cluster. With TLS, the server's certificate is for `localhost` only.
pub struct Cluster {
    pub port: u16,
    /// With TLS: the CA that signed the server's certificate (PEM).
    pub ca: PathBuf,
    /// With TLS: a CA that signed nothing the server has (PEM).
    pub other_ca: PathBuf,
    dir: PathBuf,
    bindir: PathBuf,
    as_postgres: bool,
}

impl Cluster {
    /// A cluster without TLS, every role trusted.
    pub fn start() -> Result<Self> {
        Self::make(false)
    }

    /// A cluster with TLS on and [`PASSWORD_ROLE`] asked for its password.
    pub fn start_tls() -> Result<Self> {
        Self::make(true)
    }

    fn make(tls: bool) -> Result<Self> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "bronze-pg-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        let bindir = bindir()?;
        // initdb and postgres refuse to run as root: run them as `postgres` then.
        let as_postgres = run(Command::new("id").arg("-u"))?.trim() == "0";
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut cluster = Self {
            port,
            ca: dir.join("ca.pem"),
            other_ca: dir.join("other-ca.pem"),
            dir,
            bindir,
            as_postgres,
        };
        if tls {
            cluster.make_certificates()?;
        }
        cluster.init(tls)?;
        Ok(cluster)
    }

    /// The URL of database `dbname`, as `postgres`, without TLS.
    pub fn database_url(&self, dbname: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{dbname}", self.port)
    }

    /// A new database on the cluster, its URL returned.
    pub async fn database(&self, name: &str) -> Result<String> {
        connect(&self.database_url("postgres"))
            .await?
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
        Ok(self.database_url(name))
    }

    /// `pg_ctl restart -m fast|immediate`: every connection is cut; back when it returns.
    pub fn restart(&self, mode: &str) -> Result {
        self.ctl(&["restart", "-m", mode])
    }

    /// `pg_ctl stop -m fast|immediate`: down until [`Cluster::start_again`].
    pub fn stop(&self, mode: &str) -> Result {
        self.ctl(&["stop", "-m", mode])
    }

    /// Starts a stopped cluster; back when it returns.
    pub fn start_again(&self) -> Result {
        self.ctl(&["start"])
    }

    /// `pg_ctl ACTION` on the cluster's data directory, waiting for it to be done.
    fn ctl(&self, action: &[&str]) -> Result {
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "60"])
            .args(action))
        .map(drop)
    }

    /// A URL that connects to 127.0.0.1 but checks the certificate against `host`.
    pub fn url(&self, user: &str, host: &str, query: &str) -> String {
        format!(
            "postgres://{user}@{host}:{}/postgres?hostaddr=127.0.0.1&{query}",
            self.port
        )
    }

    fn make_certificates(&mut self) -> Result {
        let dir = &self.dir;
        let ca_key = dir.join("ca.key");
        for (key, cert, name) in [
            (&ca_key, &self.ca, "bronze test CA"),
            (&dir.join("other-ca.key"), &self.other_ca, "bronze other CA"),
        ] {
            run(Command::new("openssl")
                .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
                .arg("ec_paramgen_curve:P-256")
                .args(["-nodes", "-days", "2", "-subj"])
                .arg(format!("/CN={name}"))
                .args(["-addext", "basicConstraints=critical,CA:TRUE"])
                .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
                .arg("-keyout")
                .arg(key)
                .arg("-out")
                .arg(cert))?;
        }
        let csr = dir.join("server.csr");
        run(Command::new("openssl")
            .args(["req", "-new", "-newkey", "ec", "-pkeyopt"])
            .arg("ec_paramgen_curve:P-256")
            .args(["-nodes", "-subj", "/CN=localhost", "-keyout"])
            .arg(dir.join("server.key"))
            .arg("-out")
            .arg(&csr))?;
        let ext = dir.join("server.ext");
        std::fs::write(
            &ext,
            "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )?;
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-in"])
            .arg(&csr)
            .arg("-CA")
            .arg(&self.ca)
            .arg("-CAkey")
            .arg(&ca_key)
            .args(["-CAcreateserial", "-extfile"])
            .arg(&ext)
            .arg("-out")
            .arg(dir.join("server.crt")))?;
        // The server refuses a key others may read.
        std::fs::set_permissions(
            dir.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )?;
        Ok(())
    }

    fn init(&mut self, tls: bool) -> Result {
        let data = self.dir.join("data");
        if self.as_postgres {
            run(Command::new("chown")
                .arg("-R")
                .arg("postgres:")
                .arg(&self.dir))?;
        }
        run(self.command("initdb").arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        ]))?;
        let dir = self.dir.display();
        let mut conf = std::fs::read_to_string(data.join("postgresql.conf"))?;
        conf.push_str(&format!(
            "\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{dir}'\n\
             fsync = off\nfull_page_writes = off\nmax_connections = 20\nshared_buffers = 16MB\n",
            self.port
        ));
        let mut hba = String::from("local all all trust\n");
        if tls {
            conf.push_str(&format!(
                "ssl = on\nssl_cert_file = '{dir}/server.crt'\nssl_key_file = '{dir}/server.key'\n"
            ));
            hba.push_str(&format!(
                "host all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n"
            ));
        }
        hba.push_str("host all all 127.0.0.1/32 trust\n");
        std::fs::write(data.join("postgresql.conf"), conf)?;
        std::fs::write(data.join("pg_hba.conf"), hba)?;
        self.start_again()
    }

    /// A command of the cluster's binaries, as `postgres` when we are root.
    fn command(&self, program: &str) -> Command {
        let binary = self.bindir.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(binary);
            command
        } else {
            Command::new(binary)
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Already stopped by the test, or stopped now.
        let _ = self.stop("immediate");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where `initdb` and `pg_ctl` are: `BRONZE_PG_BINDIR`, else `PATH`, else the newest
/// Debian cluster version's.
fn bindir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("BRONZE_PG_BINDIR") {
        return Ok(dir.into());
    }
    if let Some(dir) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
    {
        return Ok(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        "no initdb found: install PostgreSQL's server or set BRONZE_PG_BINDIR".into()
    })
}

/// Runs `command`, its stdout on success, its stderr as the error otherwise.
fn run(command: &mut Command) -> Result<String> {
    let output = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
