//! A registry over HTTPS with a certificate authority of the test's own, as
//! a company's Harbor or Artifactory has: a second `docker-registry` process
//! serving the storage of a plain [`Registry`] (so the harness pushes over
//! HTTP as usual) with TLS on, its server certificate signed by a CA made here.
//! Optionally it asks for a client certificate signed by the same CA (mutual
//! TLS). [`TlsRegistry::certs_d`] lays the CA and the client's certificate out
//! as Docker's `/etc/docker/certs.d/HOST:PORT/` expects them.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

use crate::registry::Registry;

/// A running HTTPS registry; stopped when dropped.
pub struct TlsRegistry {
    server: Child,
    dir: tempfile::TempDir,
    port: u16,
    ca: String,
    /// The client certificate and its key (PEM), when the registry asks for one.
    client: Option<(String, String)>,
}

impl TlsRegistry {
    /// Serves `registry`'s storage over HTTPS on a free port of 127.0.0.1,
    /// asking clients for a certificate when `mutual` is set.
    pub fn start(registry: &Registry, mutual: bool) -> TlsRegistry {
        let dir = tempfile::Builder::new()
            .prefix("minibox-tls-registry-")
            .tempdir()
            .expect("tempdir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();

        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "minibox test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key"))
            .expect("the CA");
        let sign = |names: Vec<String>| {
            let key = KeyPair::generate().expect("key");
            let cert = CertificateParams::new(names)
                .expect("params")
                .signed_by(&key, &ca)
                .expect("sign");
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = sign(vec!["127.0.0.1".into(), "localhost".into()]);
        let client = mutual.then(|| sign(vec!["minibox-client".into()]));

        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write a certificate");
            path
        };
        let ca_path = write("ca.crt", &ca.pem());
        let cert = write("server.crt", &server_cert);
        let key = write("server.key", &server_key);
        let client_cas = if mutual {
            format!("    clientcas:\n      - {}\n", ca_path.display())
        } else {
            String::new()
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: minibox-tests\n  tls:\n    \
             certificate: {}\n    key: {}\n{client_cas}",
            registry.storage().display(),
            cert.display(),
            key.display()
        );
        let config_path = write("config.yml", &config);
        let server = crate::registry::serve(&config_path, dir.path());
        let mut registry = TlsRegistry {
            server,
            dir,
            port,
            ca: ca.pem(),
            client,
        };
        // Up when it accepts connections (the harness has no TLS client).
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = registry.server.try_wait() {
                panic!(
                    "docker-registry (TLS) exited ({status}):\n{}",
                    registry.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry (TLS) did not start:\n{}",
                registry.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// `127.0.0.1:PORT`, as an image reference's registry part.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Writes Docker's layout under `root`: `root/HOST:PORT/ca.crt`, and
    /// `client.cert` + `client.key` when the registry asks for a client
    /// certificate. Returns the registry's directory.
    pub fn certs_d(&self, root: &Path) -> PathBuf {
        let dir = root.join(self.host());
        std::fs::create_dir_all(&dir).expect("create the certs.d directory");
        std::fs::write(dir.join("ca.crt"), &self.ca).expect("write ca.crt");
        if let Some((cert, key)) = &self.client {
            std::fs::write(dir.join("client.cert"), cert).expect("write client.cert");
            std::fs::write(dir.join("client.key"), key).expect("write client.key");
        }
        dir
    }
}

impl Drop for TlsRegistry {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}
