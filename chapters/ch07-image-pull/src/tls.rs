//! Whom minibox trusts over HTTPS, as Docker decides it.
//!
//! - **The system's certificate store**: the bundle the distribution keeps
//!   (`/etc/ssl/certs/ca-certificates.crt` on Debian and Ubuntu,
//!   `/etc/pki/tls/certs/ca-bundle.crt` on Fedora...), or the file named by
//!   `SSL_CERT_FILE`, plus the certificates in the directories `SSL_CERT_DIR`
//!   lists. A company that inspects TLS adds its own CA there, and so must
//!   every tool that works behind it. (A machine with no store at all falls
//!   back to the Mozilla roots built into minibox.)
//! - **Docker's per-registry directory**, `/etc/docker/certs.d/HOST[:PORT]/`:
//!   every `*.crt` file in it is a CA trusted for that registry only (a
//!   Harbor or an Artifactory with an internal CA), and a `*.cert` file with
//!   the `*.key` of the same name is the client certificate minibox shows it
//!   (mutual TLS). `MINIBOX_CERTS_D` names another root for these
//!   directories.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use anyhow::{Context, Result, bail};
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

/// Docker's root for per-registry certificates.
pub const DEFAULT_CERTS_D: &str = "/etc/docker/certs.d";

/// Where distributions keep their CA bundle, the first that exists wins (the
/// list Go's crypto/x509 reads, which is what Docker reads).
const BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The root of the per-registry directories: `MINIBOX_CERTS_D`, else
/// Docker's `/etc/docker/certs.d`.
pub fn certs_d() -> PathBuf {
    std::env::var_os("MINIBOX_CERTS_D")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_CERTS_D), PathBuf::from)
}

/// The system's trusted CAs: `SSL_CERT_FILE` or the distribution's bundle,
/// and every certificate in the `SSL_CERT_DIR` directories (colon-separated).
/// Read once per process.
///
/// SIMPLIFICATION: Go (and so Docker) also reads `/etc/ssl/certs/` file by
/// file when `SSL_CERT_DIR` is unset; the bundle holds the same certificates.
pub fn system_roots() -> &'static [Certificate<'static>] {
    static ROOTS: OnceLock<Vec<Certificate<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = Vec::new();
        let file = std::env::var_os("SSL_CERT_FILE")
            .map(PathBuf::from)
            .or_else(|| BUNDLES.iter().map(PathBuf::from).find(|p| p.is_file()));
        if let Some(file) = file {
            roots.extend(read_certificates(&file).unwrap_or_default());
        }
        for dir in std::env::var("SSL_CERT_DIR").unwrap_or_default().split(':') {
            let Ok(entries) = fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                // Anything that is not PEM certificates (a README) is skipped.
                roots.extend(read_certificates(&entry.path()).unwrap_or_default());
            }
        }
        roots
    })
}

/// The certificates in a PEM file.
fn read_certificates(path: &Path) -> Result<Vec<Certificate<'static>>> {
    let pem = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut certificates = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let PemItem::Certificate(c) =
            item.with_context(|| format!("reading {}", path.display()))?
        {
            certificates.push(c);
        }
    }
    Ok(certificates)
}

/// The private key in a PEM file.
fn read_key(path: &Path) -> Result<PrivateKey<'static>> {
    let pem = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    for item in ureq::tls::parse_pem(&pem) {
        if let PemItem::PrivateKey(key) =
            item.with_context(|| format!("reading {}", path.display()))?
        {
            return Ok(key);
        }
    }
    bail!("{} holds no private key", path.display())
}

/// The TLS settings for talking to `host` (`registry.example.com`,
/// `127.0.0.1:5443`): the system's roots plus the CAs of its certs.d
/// directory, and its client certificate if it has one.
pub fn config_for(host: &str) -> Result<TlsConfig> {
    let dir = certs_d().join(host);
    let mut roots = system_roots().to_vec();
    let mut client = None;
    if let Ok(entries) = fs::read_dir(&dir) {
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            match path.extension().and_then(|e| e.to_str()) {
                Some("crt") => roots.extend(read_certificates(&path)?),
                Some("cert") => {
                    let key = path.with_extension("key");
                    if !key.is_file() {
                        bail!(
                            "missing key {} for client certificate {}",
                            key.display(),
                            path.display()
                        );
                    }
                    client = Some(ClientCert::new_with_certs(
                        &read_certificates(&path)?,
                        read_key(&key)?,
                    ));
                }
                _ => {}
            }
        }
    }
    let roots = if roots.is_empty() {
        RootCerts::WebPki // no system store at all: the built-in Mozilla list
    } else {
        RootCerts::new_with_certs(&roots)
    };
    Ok(TlsConfig::builder()
        .root_certs(roots)
        .client_cert(client)
        .build())
}

/// [`config_for`], remembered per host for the life of a client.
#[derive(Default)]
pub struct PerHost(Mutex<HashMap<String, TlsConfig>>);

impl PerHost {
    /// The settings for the host of `url` (`https://HOST[:PORT]/...`).
    pub fn for_url(&self, url: &str) -> Result<TlsConfig> {
        let host = url
            .split_once("://")
            .map_or(url, |(_, rest)| rest)
            .split(['/', '?'])
            .next()
            .unwrap_or_default()
            .to_string();
        if let Some(config) = self.0.lock().expect("lock").get(&host) {
            return Ok(config.clone());
        }
        let config = config_for(&host)
            .with_context(|| format!("the TLS settings for {host} in {}", certs_d().display()))?;
        self.0.lock().expect("lock").insert(host, config.clone());
        Ok(config)
    }
}
