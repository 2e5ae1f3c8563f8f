//! The real registry server (Debian's `docker-registry`, the CNCF distribution
//! registry) on 127.0.0.1, with a configuration and a data directory of its own
//! on a free port, stopped and removed when the [`Registry`] is dropped; and a
//! minimal push over the registry API (monolithic blob uploads, then the
//! manifest), for the fixture images of [`crate::images`].
//!
//! The registry runs open ([`Registry::start`]) or behind one of distribution's
//! two authentication schemes ([`Registry::start_with_token_auth`],
//! [`Registry::start_with_basic_auth`], built from [`crate::registry_auth`]), so
//! chapter 7 can test a client's login against the real server. The push works in
//! every mode: with authentication on, the harness logs in as the first user.

use std::collections::HashMap;
use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::images::{Blob, Image};
use crate::registry_auth::{self, TokenServer};

/// Where Debian installs the registry.
pub const SERVER: &str = "/usr/bin/docker-registry";

/// Starts the registry server on `config`, its output going to
/// `registry.log` in `dir` (read it when a test fails).
pub(crate) fn serve(config: &std::path::Path, dir: &std::path::Path) -> Child {
    let log = std::fs::File::create(dir.join("registry.log")).expect("log file");
    Command::new(SERVER)
        .arg("serve")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup log"))
        .stderr(log)
        .spawn()
        .expect("start docker-registry")
}

/// A running registry of our own.
pub struct Registry {
    server: Child,
    /// Its configuration, storage, certificate or htpasswd file; removed on drop.
    dir: tempfile::TempDir,
    port: u16,
    agent: ureq::Agent,
    /// Who may come in, and how the harness's own pushes log in.
    auth: Auth,
}

/// A registry's authentication mode, with what the harness needs to push.
enum Auth {
    /// Anyone may pull and push.
    Open,
    /// Bearer tokens from our token server, which runs as long as the registry.
    Token {
        server: TokenServer,
        /// The first user: the harness pushes as them.
        user: Option<(String, String)>,
        /// Tokens the harness fetched, by repository, with when they were
        /// fetched: a push of one image is a dozen requests and needs one token,
        /// as a well-behaved client would.
        tokens: Mutex<HashMap<String, (String, Instant)>>,
    },
    /// htpasswd: every request carries a user's name and password.
    Basic {
        /// The first user: the harness pushes as them.
        user: Option<(String, String)>,
    },
}

/// A free port of 127.0.0.1: bind port 0, read what we got, and let it go for
/// the server. (Another process could take it in between; on a test machine
/// nothing does.)
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("minibox-registry-")
        .tempdir()
        .expect("tempdir")
}

fn first_user(users: &[(&str, &str)]) -> Option<(String, String)> {
    users
        .first()
        .map(|(name, password)| (name.to_string(), password.to_string()))
}

impl Registry {
    /// Starts a registry on a free port of 127.0.0.1 and waits until `/v2/`
    /// answers. Panics with what to install when the server is missing.
    pub fn start() -> Registry {
        Registry::start_on("127.0.0.1", free_port())
    }

    /// Starts a registry listening on `address:port` (a classroom serves the
    /// fixtures on the network with `cargo xtask registry start --address`).
    pub fn start_on(address: &str, port: u16) -> Registry {
        Registry::launch(address, port, temp_dir(), Auth::Open, "")
    }

    /// Starts a registry with token authentication, as Docker Hub's: `/v2/`
    /// answers 401 with `Www-Authenticate: Bearer realm="...",service="..."`, and
    /// a client fetches a token from the realm (our [`TokenServer`], on a port of
    /// its own) and sends it as `Authorization: Bearer TOKEN`.
    ///
    /// `users` are `(name, password)` pairs; each may pull and push everything.
    /// Anyone, logged in or not, may pull the repositories named in `public`
    /// (`library/busybox`); an anonymous token for any other repository grants
    /// nothing. The harness's own pushes log in as the first user.
    pub fn start_with_token_auth(users: &[(&str, &str)], public: &[&str]) -> Registry {
        let dir = temp_dir();
        let server = TokenServer::start(users, public);
        let bundle = dir.path().join("token.crt");
        std::fs::write(&bundle, server.certificate_pem()).expect("write the certificate");
        let config = format!(
            "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    \
             rootcertbundle: {}\n",
            server.realm(),
            registry_auth::SERVICE,
            registry_auth::ISSUER,
            bundle.display()
        );
        let auth = Auth::Token {
            server,
            user: first_user(users),
            tokens: Mutex::new(HashMap::new()),
        };
        Registry::launch("127.0.0.1", free_port(), dir, auth, &config)
    }

    /// Starts a registry with htpasswd authentication: every request needs
    /// `Authorization: Basic ...` with one of `users` (`(name, password)`
    /// pairs), and without it the registry answers 401 with
    /// `Www-Authenticate: Basic realm="minibox-registry"`. Distribution allows
    /// this over plain HTTP. The harness's own pushes log in as the first user.
    pub fn start_with_basic_auth(users: &[(&str, &str)]) -> Registry {
        let dir = temp_dir();
        let path = dir.path().join("htpasswd");
        std::fs::write(&path, registry_auth::htpasswd(users)).expect("write htpasswd");
        let config = format!(
            "auth:\n  htpasswd:\n    realm: {}\n    path: {}\n",
            registry_auth::BASIC_REALM,
            path.display()
        );
        let auth = Auth::Basic {
            user: first_user(users),
        };
        Registry::launch("127.0.0.1", free_port(), dir, auth, &config)
    }

    /// Writes the configuration (`auth_config` is its `auth:` section, or
    /// nothing), starts the server and waits for it.
    fn launch(
        address: &str,
        port: u16,
        dir: tempfile::TempDir,
        auth: Auth,
        auth_config: &str,
    ) -> Registry {
        assert!(
            std::path::Path::new(SERVER).is_file(),
            "{SERVER} is missing: install docker-registry (cargo xtask test does)"
        );
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: {address}:{port}\n  secret: minibox-tests\n{auth_config}",
            dir.path().join("data").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write the registry config");
        let server = serve(&config_path, dir.path());
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        let mut registry = Registry {
            server,
            dir,
            port,
            agent,
            auth,
        };
        registry.wait_until_up();
        registry
    }

    fn wait_until_up(&mut self) {
        // With authentication on, an anonymous `/v2/` is refused: a 401 is the
        // sign that the server is up (and that its auth section took effect).
        let up = match self.auth {
            Auth::Open => 200,
            Auth::Token { .. } | Auth::Basic { .. } => 401,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(response) = self.agent.get(self.url("/v2/")).call()
                && response.status() == up
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

    /// The registry's own directory (configuration, storage, certificate,
    /// htpasswd), to check that dropping the registry removes it.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// The PID of the registry process, to check that dropping it stops it.
    pub fn pid(&self) -> u32 {
        self.server.id()
    }

    /// The token server's endpoint (`http://127.0.0.1:PORT/token`) in token
    /// mode, the realm the registry's challenge names; `None` otherwise.
    pub fn token_realm(&self) -> Option<String> {
        match &self.auth {
            Auth::Token { server, .. } => Some(server.realm()),
            Auth::Open | Auth::Basic { .. } => None,
        }
    }

    /// How many requests the token server has answered, the harness's own
    /// (one per repository it pushes to) included; 0 when there is no token
    /// server. A test reads it before and after a pull to prove that the client
    /// fetched one token and reused it, instead of one per request.
    pub fn token_requests(&self) -> usize {
        match &self.auth {
            Auth::Token { server, .. } => server.token_requests(),
            Auth::Open | Auth::Basic { .. } => 0,
        }
    }

    /// Adds the harness's credentials for `repository` to `request`: nothing
    /// when the registry is open, the first user's name and password with Basic
    /// auth, a pull+push token for the repository with token auth.
    fn authorized<B>(
        &self,
        request: ureq::RequestBuilder<B>,
        repository: &str,
    ) -> ureq::RequestBuilder<B> {
        let no_user = "pushing to a registry with authentication needs a user";
        match &self.auth {
            Auth::Open => request,
            Auth::Basic { user } => {
                let (name, password) = user.as_ref().expect(no_user);
                request.header("Authorization", registry_auth::basic(name, password))
            }
            Auth::Token {
                server,
                user,
                tokens,
            } => {
                let (name, password) = user.as_ref().expect(no_user);
                let mut tokens = tokens.lock().expect("token cache");
                // Fetched again a minute before it expires, for a registry that
                // lives long (a classroom's).
                let fresh = Duration::from_secs(registry_auth::TOKEN_LIFETIME - 60);
                let token = match tokens.get(repository) {
                    Some((token, fetched)) if fetched.elapsed() < fresh => token.clone(),
                    _ => {
                        let token = self.fetch_token(server, name, password, repository);
                        tokens.insert(repository.to_string(), (token.clone(), Instant::now()));
                        token
                    }
                };
                request.header("Authorization", format!("Bearer {token}"))
            }
        }
    }

    /// Asks the token server for a pull+push token for `repository`, as `name`.
    fn fetch_token(
        &self,
        server: &TokenServer,
        name: &str,
        password: &str,
        repository: &str,
    ) -> String {
        let url = format!(
            "{}?service={}&scope=repository:{repository}:pull,push",
            server.realm(),
            registry_auth::SERVICE
        );
        let mut response = self
            .agent
            .get(&url)
            .header("Authorization", registry_auth::basic(name, password))
            .call()
            .expect("GET a token");
        let body = read_body(&mut response);
        assert_eq!(response.status(), 200, "fetching a token: {body}");
        let answer: serde_json::Value = serde_json::from_str(&body).expect("token JSON");
        answer["token"].as_str().expect("a token").to_string()
    }

    /// Pushes `image` as `repository:tag`; returns the manifest's digest.
    pub fn push(&self, repository: &str, tag: &str, image: &Image) -> String {
        let blobs = std::iter::once(&image.config).chain(image.layers.iter().map(|l| &l.blob));
        for blob in blobs {
            self.push_blob(repository, blob);
        }
        self.push_manifest(repository, tag, &image.manifest)
    }

    /// Pushes every fixture image, under the names a classroom mirror and the
    /// chapter 7 demos use (Docker Hub names, served through
    /// `MINIBOX_REGISTRY_MIRROR`): `library/busybox`, `library/hello-world`,
    /// `minibox/layered` (busybox plus a whiteout and an opaque directory) and
    /// `minibox/multi` (a multi-platform index), `minibox/echo` (an
    /// Entrypoint and a Cmd, for chapter 8), `library/redis` (a server
    /// built from the host's `redis-server`, for chapter 9's published
    /// ports), and chapter 12's `minibox/probe` (busybox and a program that
    /// tries privileged calls) and `minibox/evil-symlinks-abs` and
    /// `minibox/evil-symlinks-rel` (busybox with `/proc`, `/dev`, `/sys` and
    /// `/data` linked out of the root, see [`crate::images::EVIL_SYMLINKS`]),
    /// and chapter 13's `minibox/multi-user` (busybox with files of three
    /// owners, see [`crate::images::multi_user`]). Returns the names.
    pub fn push_fixtures(&self) -> Result<Vec<&'static str>, String> {
        let busybox = crate::images::busybox().map_err(|e| format!("busybox image: {e}"))?;
        self.push("library/busybox", "latest", &busybox);
        self.push(
            "library/hello-world",
            "latest",
            &crate::images::hello_world()?,
        );
        let layered =
            crate::images::layered_on_busybox().map_err(|e| format!("layered image: {e}"))?;
        self.push("minibox/layered", "latest", &layered);
        let (index, platforms) = crate::images::multi_platform();
        self.push_index("minibox/multi", "latest", &index, &platforms);
        let echo = crate::images::echo().map_err(|e| format!("echo image: {e}"))?;
        self.push("minibox/echo", "latest", &echo);
        self.push("library/redis", "latest", &crate::images::redis()?);
        self.push("minibox/probe", "latest", &crate::images::probe()?);
        let evil = |e: std::io::Error| format!("evil-symlinks image: {e}");
        let abs = crate::images::evil_symlinks_abs().map_err(evil)?;
        self.push("minibox/evil-symlinks-abs", "latest", &abs);
        let rel = crate::images::evil_symlinks_rel().map_err(evil)?;
        self.push("minibox/evil-symlinks-rel", "latest", &rel);
        let multi_user =
            crate::images::multi_user().map_err(|e| format!("multi-user image: {e}"))?;
        self.push("minibox/multi-user", "latest", &multi_user);
        Ok(vec![
            "busybox",
            "hello-world",
            "minibox/layered",
            "minibox/multi",
            "minibox/echo",
            "redis",
            "minibox/probe",
            "minibox/evil-symlinks-abs",
            "minibox/evil-symlinks-rel",
            "minibox/multi-user",
        ])
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
            .authorized(
                self.agent
                    .post(self.url(&format!("/v2/{repository}/blobs/uploads/"))),
                repository,
            )
            .send_empty()
            .expect("POST blob upload");
        assert_eq!(
            response.status(),
            202,
            "starting an upload of {}",
            blob.digest
        );
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
            .authorized(self.agent.put(&url), repository)
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
            .authorized(
                self.agent
                    .put(self.url(&format!("/v2/{repository}/manifests/{reference}"))),
                repository,
            )
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
        // Our own server, by PID; then the token server's thread, if any; then
        // the directory goes with `dir`.
        let _ = self.server.kill();
        let _ = self.server.wait();
        if let Auth::Token { server, .. } = &mut self.auth {
            server.stop();
        }
    }
}
