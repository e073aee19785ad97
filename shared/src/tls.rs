//! TLS to PostgreSQL, with libpq's meaning of `sslmode`, because that is what users
//! write in their connection strings and what RDS documents:
//!
//! | mode | encrypted | chain checked | host name checked |
//! |---|---|---|---|
//! | `disable` | no | – | – |
//! | `prefer` | if the server offers it | only with a root certificate | no |
//! | `require` | yes | only with a root certificate (then it is `verify-ca`, as in libpq) | no |
//! | `verify-ca` | yes | yes | no |
//! | `verify-full` | yes | yes | yes |
//!
//! The root certificates are a PEM file (`DATABASE_SSL_ROOT_CERT` or `sslrootcert`,
//! e.g. RDS's `global-bundle.pem`) or `system`, the operating system's store, as
//! libpq 16's `sslrootcert=system`. `verify-ca` and `verify-full` without either are
//! an error, as in libpq, never a quiet downgrade.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{VerifierBuilderError, WebPkiServerVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The root certificate file cannot be read, or holds no certificate.
    #[error("reading root certificate {path}: {reason}")]
    RootCert {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The system's store holds no usable certificate.
    #[error("reading the system's root certificates: {0}")]
    SystemRoots(String),
    /// An `sslmode` value libpq would not take, or `allow`.
    #[error("unknown sslmode {0:?}: use disable, prefer, require, verify-ca or verify-full")]
    Mode(String),
    /// `verify-ca` or `verify-full` with nothing to verify against.
    #[error("sslmode={0} checks the server's certificate, so it needs root certificates: set DATABASE_SSL_ROOT_CERT (or sslrootcert) to a PEM file such as RDS's global-bundle.pem, or to `system` for the system's store")]
    NoRoots(SslMode),
    /// rustls refused the configuration or a certificate in the roots.
    #[error("TLS set-up: {0}")]
    Rustls(#[from] rustls::Error),
    /// rustls could not build the certificate verifier from the roots.
    #[error("TLS set-up: {0}")]
    Verifier(#[from] VerifierBuilderError),
}

/// libpq's `sslmode` values that mean something to a client without client
/// certificates (`allow`, plain text first, is not offered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS if the server offers it.
    Prefer,
    /// TLS; the certificate checked only when roots are given.
    Require,
    /// TLS; the chain checked, not the host name.
    VerifyCa,
    /// TLS; the chain and the host name checked.
    VerifyFull,
}

impl SslMode {
    /// The value as libpq spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SslMode {
    type Err = TlsError;
    fn from_str(text: &str) -> Result<Self, TlsError> {
        Ok(match text.trim() {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => return Err(TlsError::Mode(other.to_owned())),
        })
    }
}

/// Where the certificates that may sign the server's chain come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file of one or more certificates.
    File(PathBuf),
    /// The operating system's store (`system`, as libpq 16 spells it). On Lambda that
    /// is Amazon Linux's public CAs: enough for RDS Proxy, whose certificates come from
    /// Amazon Trust Services, not for an RDS instance, whose CAs are RDS's own.
    System,
}

impl RootCert {
    /// `system`, or else a path.
    pub fn parse(text: &str) -> Self {
        match text.trim() {
            "system" => RootCert::System,
            path => RootCert::File(PathBuf::from(path)),
        }
    }
}

impl fmt::Display for RootCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootCert::File(path) => write!(f, "{}", path.display()),
            RootCert::System => f.write_str("the system's store"),
        }
    }
}

/// What a connection checks of the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Encrypted, signed handshake, but any certificate: libpq's `require` without a
    /// root certificate. Someone in the middle can read everything.
    Nothing,
    /// The chain up to a root, not the name: `verify-ca`.
    Chain,
    /// Chain and host name: `verify-full`.
    Full,
}

/// What `mode` with `root` checks, or why it cannot be had.
pub fn check(mode: SslMode, root: Option<&RootCert>) -> Result<Check, TlsError> {
    Ok(match (mode, root) {
        (SslMode::VerifyFull, Some(_)) => Check::Full,
        (SslMode::VerifyCa, Some(_)) => Check::Chain,
        (SslMode::VerifyCa | SslMode::VerifyFull, None) => return Err(TlsError::NoRoots(mode)),
        // libpq: "if a root CA file exists, the behavior of sslmode=require will be the
        // same as that of verify-ca".
        (SslMode::Disable | SslMode::Prefer | SslMode::Require, Some(_)) => Check::Chain,
        (SslMode::Disable | SslMode::Prefer | SslMode::Require, None) => Check::Nothing,
    })
}

/// A connector that checks what `check` says against `root`.
pub fn connector(check: Check, root: Option<&RootCert>) -> Result<MakeRustlsConnect, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?;
    let verifier: Arc<dyn ServerCertVerifier> = match (check, root) {
        (Check::Nothing, _) => Arc::new(EncryptOnly(provider)),
        (Check::Chain | Check::Full, None) => {
            return Err(TlsError::NoRoots(if check == Check::Full {
                SslMode::VerifyFull
            } else {
                SslMode::VerifyCa
            }))
        }
        (Check::Chain | Check::Full, Some(root)) => {
            let roots = Arc::new(root_store(root)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider).build()?;
            if check == Check::Full {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            }
        }
    };
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

fn root_store(root: &RootCert) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    match root {
        RootCert::File(path) => {
            let fail = |reason: String| TlsError::RootCert {
                path: path.display().to_string(),
                reason,
            };
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| fail(e.to_string()))?;
            for cert in certs {
                roots.add(cert.map_err(|e| fail(e.to_string()))?)?;
            }
            if roots.is_empty() {
                return Err(fail("no certificate in the file".into()));
            }
        }
        RootCert::System => {
            let found = rustls_native_certs::load_native_certs();
            // Unparsable entries are skipped, as every TLS client does with a system
            // store; the store is only refused when nothing in it can be used.
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
                return Err(TlsError::SystemRoots(if errors.is_empty() {
                    "no certificate found".into()
                } else {
                    errors.join("; ")
                }));
            }
        }
    }
    Ok(roots)
}

/// Reads a root certificate file now, so that a wrong path is reported at start-up and
/// by name, rather than at the first connection.
pub fn check_root_file(path: &Path) -> Result<(), TlsError> {
    root_store(&RootCert::File(path.to_owned())).map(drop)
}

/// `verify-ca`: the chain must lead to a trusted root, the name is not looked at.
///
/// rustls's verifier checks the chain before the name, so a name mismatch as its
/// verdict means the chain passed: that one verdict is overruled, every other stands.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            verdict => verdict,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `sslmode=require` (or `prefer`) without root certificates: the channel is
/// encrypted and the handshake signed, but the certificate is not checked, exactly as
/// libpq does. bronze warns at start-up when it runs so.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_as_libpq_spells_them() {
        for mode in ["disable", "prefer", "require", "verify-ca", "verify-full"] {
            assert_eq!(mode.parse::<SslMode>().unwrap().as_str(), mode);
        }
        let err = "verify_full".parse::<SslMode>().unwrap_err().to_string();
        assert!(err.contains("\"verify_full\""), "{err}");
        assert!("allow".parse::<SslMode>().is_err());
    }

    #[test]
    fn what_each_mode_checks() {
        let file = RootCert::parse("/opt/global-bundle.pem");
        assert_eq!(file, RootCert::File("/opt/global-bundle.pem".into()));
        assert_eq!(RootCert::parse("system"), RootCert::System);
        let with = Some(&file);
        assert_eq!(check(SslMode::VerifyFull, with).unwrap(), Check::Full);
        assert_eq!(check(SslMode::VerifyCa, with).unwrap(), Check::Chain);
        assert_eq!(check(SslMode::Require, with).unwrap(), Check::Chain);
        assert_eq!(check(SslMode::Require, None).unwrap(), Check::Nothing);
        assert_eq!(check(SslMode::Prefer, None).unwrap(), Check::Nothing);
        for mode in [SslMode::VerifyCa, SslMode::VerifyFull] {
            let err = check(mode, None).unwrap_err().to_string();
            assert!(err.contains(&format!("sslmode={mode}")), "{err}");
            assert!(err.contains("DATABASE_SSL_ROOT_CERT"), "{err}");
        }
    }

    #[test]
    fn a_root_file_without_certificates_is_refused() {
        let path = std::env::temp_dir().join(format!("bronze-empty-{}.pem", std::process::id()));
        std::fs::write(&path, "not a certificate\n").unwrap();
        let err = check_root_file(&path).unwrap_err().to_string();
        std::fs::remove_file(&path).unwrap();
        assert!(err.contains("no certificate in the file"), "{err}");
    }
}
