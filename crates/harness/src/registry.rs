//! The real registry server (Debian's `docker-registry`, the CNCF distribution
//! registry) on 127.0.0.1, with a configuration and a data directory of its own
//! on a free port, stopped and removed when the [`Registry`] is dropped; and a
//! minimal push over the registry API (monolithic blob uploads, then the
//! manifest), for the fixture images of [`crate::images`].

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::images::{Blob, Image};

/// Where Debian installs the registry.
pub const SERVER: &str = "/usr/bin/docker-registry";

/// A running registry of our own.
pub struct Registry {
    server: Child,
    /// Its configuration and storage; removed on drop.
    dir: tempfile::TempDir,
    port: u16,
    agent: ureq::Agent,
}

impl Registry {
    /// Starts a registry on a free port of 127.0.0.1 and waits until `/v2/`
    /// answers. Panics with what to install when the server is missing.
    pub fn start() -> Registry {
        // A free port: bind port 0, read what we got, let it go for the server.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        Registry::start_on("127.0.0.1", port)
    }

    /// Starts a registry listening on `address:port` (a classroom serves the
    /// fixtures on the network with `cargo xtask registry start --address`).
    pub fn start_on(address: &str, port: u16) -> Registry {
        assert!(
            std::path::Path::new(SERVER).is_file(),
            "{SERVER} is missing: install docker-registry (cargo xtask test does)"
        );
        let dir = tempfile::Builder::new()
            .prefix("minibox-registry-")
            .tempdir()
            .expect("tempdir");
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: {address}:{port}\n  secret: minibox-tests\n",
            dir.path().join("data").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write the registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log file");
        let server = Command::new(SERVER)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        let mut registry = Registry {
            server,
            dir,
            port,
            agent,
        };
        registry.wait_until_up();
        registry
    }

    fn wait_until_up(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(response) = self.agent.get(self.url("/v2/")).call()
                && response.status() == 200
            {
                return;
            }
            if let Ok(Some(status)) = self.server.try_wait() {
                panic!("docker-registry exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not answer:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:PORT`, as an image reference's registry part.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.host())
    }

    /// Where the registry keeps its blobs (to corrupt one, say).
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Pushes `image` as `repository:tag`; returns the manifest's digest.
    pub fn push(&self, repository: &str, tag: &str, image: &Image) -> String {
        let blobs = std::iter::once(&image.config).chain(image.layers.iter().map(|l| &l.blob));
        for blob in blobs {
            self.push_blob(repository, blob);
        }
        self.push_manifest(repository, tag, &image.manifest)
    }

    /// Pushes a multi-platform image: each image's manifest by its digest, then
    /// the index that lists them as `repository:tag`. Returns the index's digest.
    pub fn push_index(
        &self,
        repository: &str,
        tag: &str,
        index: &Blob,
        images: &[Image],
    ) -> String {
        for image in images {
            self.push(repository, &image.manifest.digest, image);
        }
        self.push_manifest(repository, tag, index)
    }

    /// A monolithic upload: POST opens an upload session, PUT with `?digest=`
    /// sends every byte and closes it; the registry checks the digest.
    pub fn push_blob(&self, repository: &str, blob: &Blob) {
        let response = self
            .agent
            .post(self.url(&format!("/v2/{repository}/blobs/uploads/")))
            .send_empty()
            .expect("POST blob upload");
        assert_eq!(response.status(), 202, "starting an upload");
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("Location header")
            .to_string();
        let location = if location.starts_with('/') {
            self.url(&location)
        } else {
            location
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{separator}digest={}", blob.digest);
        let mut response = self
            .agent
            .put(&url)
            .header("Content-Type", "application/octet-stream")
            .send(&blob.bytes[..])
            .expect("PUT blob");
        assert_eq!(
            response.status(),
            201,
            "uploading {}: {}",
            blob.digest,
            read_body(&mut response)
        );
    }

    /// PUTs a manifest under `reference` (a tag); returns its digest.
    pub fn push_manifest(&self, repository: &str, reference: &str, manifest: &Blob) -> String {
        let mut response = self
            .agent
            .put(self.url(&format!("/v2/{repository}/manifests/{reference}")))
            .header("Content-Type", &manifest.media_type)
            .send(&manifest.bytes[..])
            .expect("PUT manifest");
        assert_eq!(
            response.status(),
            201,
            "manifest: {}",
            read_body(&mut response)
        );
        manifest.digest.clone()
    }
}

fn read_body(response: &mut ureq::http::Response<ureq::Body>) -> String {
    let mut text = String::new();
    let _ = response.body_mut().as_reader().read_to_string(&mut text);
    text
}

impl Drop for Registry {
    fn drop(&mut self) {
        // Our own server, by PID; then its directory goes with `dir`.
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}
