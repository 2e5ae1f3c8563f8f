//! The concept of this chapter: the registry protocol (the OCI distribution
//! spec), spoken by hand over HTTP.
//!
//! A registry is a web server with a small API under `/v2/`:
//!
//! | request | answer |
//! |---|---|
//! | `GET /v2/` | 200, or 401 with a challenge saying how to log in |
//! | `HEAD /v2/NAME/manifests/TAG` | only the digest the tag points at (`Docker-Content-Digest`) |
//! | `GET /v2/NAME/manifests/TAG-OR-DIGEST` | a manifest or an index (what `Accept` allows) |
//! | `GET /v2/NAME/blobs/DIGEST` | a config or a layer, often by a redirect to a CDN |
//!
//! Every request may come back `401 Unauthorized` with a `Www-Authenticate`
//! challenge; [`Client`] answers it (see [`crate::auth`]) and tries once more.
//! Tokens are kept per registry and scope until they expire, so a pull asks
//! the token server once, not once per layer. A request that fails for a
//! moment (a dropped connection, a 5xx, a 429 that says when to come back) is
//! sent again (see [`crate::retry`]); HTTPS trusts what Docker trusts (see
//! [`crate::tls`]).

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use thiserror::Error;
use ureq::http::Response;

use crate::auth::{self, Challenge, Credentials};
use crate::reference::{DOCKER_HUB, Reference};
use crate::{retry, tls};

/// A request of ours, before it is sent.
type Request = ureq::RequestBuilder<ureq::typestate::WithoutBody>;

/// One request to send (and maybe send again): what, where, with what.
#[derive(Clone, Copy)]
struct Call<'a> {
    method: &'a str,
    /// As the retry notice shows it: the API path, or the URL given.
    path: &'a str,
    url: &'a str,
    headers: &'a [(&'a str, String)],
    body: Option<&'a [u8]>,
}

/// What went wrong talking to a registry, where the caller cares which.
#[derive(Debug, Error)]
pub enum RegistryError {
    /// 401 after answering the challenge (or no way to answer it).
    #[error(
        "pull access denied for {repository}, repository does not exist or may require 'minibox login': {detail}"
    )]
    Unauthorized {
        /// The repository as the user named it.
        repository: String,
        /// What the registry said.
        detail: String,
    },
    /// 404 for a manifest.
    #[error("manifest for {reference} not found: {detail}")]
    ManifestUnknown {
        /// The reference as the user typed it.
        reference: String,
        /// What the registry said.
        detail: String,
    },
}

/// A registry connection: HTTP agent, credentials and tokens.
pub struct Client {
    agent: ureq::Agent,
    /// The API host and how to reach it (`https` or, for insecure registries
    /// that do not speak TLS, `http`), learned by the first ping.
    schemes: Mutex<HashMap<String, &'static str>>,
    /// Tokens by (token server, service, scope), with when they expire.
    tokens: Mutex<HashMap<String, (String, Instant)>>,
    /// What each API host's last challenge asked for.
    challenges: Mutex<HashMap<String, Challenge>>,
    /// Credentials given on the command line (`login`), else looked up.
    credentials: Option<Credentials>,
    /// What the lookup found per registry: the files are read once a pull.
    looked_up: Mutex<HashMap<String, Option<Credentials>>>,
    /// Whom to trust, per host.
    tls: tls::PerHost,
}

/// Where a reference's requests go: the mirror for Docker Hub, when set.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `registry-1.docker.io`, `127.0.0.1:5000`...
    pub host: String,
    /// `http` when the mirror was given as an `http://` URL.
    pub scheme: Option<&'static str>,
    /// Whose credentials apply: the registry the reference names, or, for a
    /// mirror, the mirror itself (a Docker Hub login is not the mirror's
    /// business).
    pub registry: String,
}

// ANCHOR: endpoint
/// The host to ask for `reference`. `MINIBOX_REGISTRY_MIRROR` (`host:port`, or
/// a URL) stands in for Docker Hub, as Docker's `registry-mirrors` setting
/// does: the repository keeps its name (`library/busybox`).
///
/// SIMPLIFICATION: Docker falls back to Docker Hub when a mirror fails; minibox
/// uses the mirror alone, so an offline classroom gets the mirror's error, not a
/// timeout reaching the internet.
pub fn endpoint(reference: &Reference) -> Endpoint {
    let mirror = std::env::var("MINIBOX_REGISTRY_MIRROR")
        .ok()
        .filter(|m| !m.is_empty());
    match mirror {
        Some(mirror) if reference.registry == DOCKER_HUB => {
            let (scheme, rest) = match mirror.split_once("://") {
                Some(("http", rest)) => (Some("http"), rest),
                Some((_, rest)) => (Some("https"), rest),
                None => (None, mirror.as_str()),
            };
            let host = rest.trim_end_matches('/').to_string();
            Endpoint {
                registry: host.clone(),
                host,
                scheme,
            }
        }
        _ => Endpoint {
            host: reference.api_host().to_string(),
            scheme: None,
            registry: reference.registry.clone(),
        },
    }
}
// ANCHOR_END: endpoint

/// Docker's rule for registries that may be reached without TLS: loopback
/// addresses, and those listed in `MINIBOX_INSECURE_REGISTRIES` (commas), like
/// dockerd's `--insecure-registry`.
pub fn insecure(host: &str) -> bool {
    let name = host
        .rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(name, _)| name);
    let listed = std::env::var("MINIBOX_INSECURE_REGISTRIES").unwrap_or_default();
    name == "localhost"
        || name.starts_with("127.")
        || name == "[::1]"
        || listed
            .split(',')
            .any(|entry| entry.trim() == host || entry.trim() == name)
}

impl Client {
    /// A client with credentials `credentials`, or those stored for each
    /// registry when `None`.
    pub fn new(credentials: Option<Credentials>) -> Client {
        let agent = ureq::Agent::config_builder()
            // 401 and 404 are answers we read, not failures.
            .http_status_as_error(false)
            // Follow a blob's redirect to its CDN. ureq never sends our
            // Authorization header on a redirect (redirect_auth_headers
            // defaults to Never): the CDN is another host and must not see the
            // registry's token. Said explicitly, because it is the point.
            .max_redirects(10)
            .redirect_auth_headers(ureq::config::RedirectAuthHeaders::Never)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            // A connection that goes quiet this long is given up (and the
            // request or download tried again): without it, a registry or a
            // Wi-Fi that stops sending mid-layer hangs the pull forever.
            .timeout_per_read(Some(retry::read_timeout()))
            .user_agent(concat!("minibox/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Client {
            agent,
            schemes: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            challenges: Mutex::new(HashMap::new()),
            credentials,
            looked_up: Mutex::new(HashMap::new()),
            tls: tls::PerHost::default(),
        }
    }

    /// `call`, tried again (telling `notice`) when the failure may pass
    /// ([`crate::retry`]).
    fn call_retrying(
        &self,
        request: &Call,
        authorization: Option<&str>,
        notice: &dyn Fn(&str),
    ) -> Result<Response<ureq::Body>> {
        let Call {
            method,
            path,
            url,
            headers,
            body,
        } = *request;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.call(method, url, headers, authorization, body);
            let (delay, why) = match &result {
                Ok(response) => (
                    retry::after_status(
                        response.status().as_u16(),
                        header(response, "retry-after").as_deref(),
                        attempt,
                    ),
                    response.status().to_string(),
                ),
                Err(
                    error @ (ureq::Error::Io(_)
                    | ureq::Error::Timeout(_)
                    | ureq::Error::ConnectionFailed),
                ) => (Some(retry::backoff(attempt)), error.to_string()),
                Err(_) => (None, String::new()),
            };
            match delay {
                Some(delay) if attempt < retry::ATTEMPTS => {
                    notice(&format!(
                        "{} ({method} {path}: {why})",
                        retry::message(delay)
                    ));
                    std::thread::sleep(delay);
                }
                _ => return result.with_context(|| format!("{method} {url}")),
            }
        }
    }

    /// One request: `method` to `url` with `headers`, the `Authorization`
    /// header if given, and `body` if any.
    fn call(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        authorization: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<Response<ureq::Body>, ureq::Error> {
        let mut all: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        all.extend(authorization.map(|a| ("Authorization", a)));
        let tls = match url.starts_with("https://") {
            true => Some(
                self.tls
                    .for_url(url)
                    .map_err(|e| ureq::Error::Other(e.into()))?,
            ),
            false => None,
        };
        let Some(body) = body else {
            let mut request = match method {
                "HEAD" => self.agent.head(url),
                _ => self.agent.get(url),
            };
            if let Some(tls) = tls {
                request = request.config().tls_config(tls).build();
            }
            for (name, value) in all {
                request = request.header(name, value);
            }
            return request.call();
        };
        let mut request = match method {
            "POST" => self.agent.post(url),
            "PATCH" => self.agent.patch(url),
            _ => self.agent.put(url),
        };
        if let Some(tls) = tls {
            request = request.config().tls_config(tls).build();
        }
        for (name, value) in all {
            request = request.header(name, value);
        }
        request.send(body)
    }

    /// A `GET` (or `HEAD`) of `url`, with the TLS settings of its host.
    fn request(&self, method: &str, url: &str) -> Result<Request> {
        let request = match method {
            "HEAD" => self.agent.head(url),
            _ => self.agent.get(url),
        };
        if !url.starts_with("https://") {
            return Ok(request);
        }
        Ok(request.config().tls_config(self.tls.for_url(url)?).build())
    }

    // ANCHOR: ping
    /// `GET /v2/`: is this a registry, over which scheme, and does it want us
    /// to log in? HTTPS first; plain HTTP only for insecure registries
    /// ([`insecure`]) that do not speak TLS.
    pub fn ping(&self, endpoint: &Endpoint) -> Result<()> {
        if self
            .schemes
            .lock()
            .expect("lock")
            .contains_key(&endpoint.host)
        {
            return Ok(());
        }
        let schemes: &[&'static str] = match endpoint.scheme {
            Some(scheme) => &[scheme][..1],
            None if insecure(&endpoint.host) => &["https", "http"],
            None => &["https"],
        };
        let mut last_error = None;
        for &scheme in schemes {
            let url = format!("{scheme}://{}/v2/", endpoint.host);
            match self.request("GET", &url)?.call() {
                Ok(response) => {
                    if response.status() == 401
                        && let Some(challenge) = challenge_of(&response)
                    {
                        self.challenges
                            .lock()
                            .expect("lock")
                            .insert(endpoint.host.clone(), challenge);
                    }
                    self.schemes
                        .lock()
                        .expect("lock")
                        .insert(endpoint.host.clone(), scheme);
                    return Ok(());
                }
                Err(error) => last_error = Some(error),
            }
        }
        let error = last_error.expect("at least one scheme was tried");
        Err(anyhow::anyhow!(error))
            .with_context(|| format!("cannot reach the registry at {}", endpoint.host))
    }
    // ANCHOR_END: ping

    // ANCHOR: get
    /// `GET` a path of the registry's API for `repository`, answering an auth
    /// challenge once if the registry sends one.
    pub fn get(
        &self,
        endpoint: &Endpoint,
        repository: &str,
        path: &str,
        accept: Option<&str>,
    ) -> Result<Response<ureq::Body>> {
        let headers: Vec<(&str, String)> = accept
            .map(|a| ("Accept", a.to_string()))
            .into_iter()
            .collect();
        self.send("GET", endpoint, repository, path, &headers, &|_| {})
    }

    /// Sends `method` (`GET` or `HEAD`) for a path of the registry's API for
    /// `repository`, with `headers`, answering an auth challenge once if the
    /// registry sends one, and trying again (telling `notice`) when the
    /// failure may pass ([`crate::retry`]).
    pub fn send(
        &self,
        method: &str,
        endpoint: &Endpoint,
        repository: &str,
        path: &str,
        headers: &[(&str, String)],
        notice: &dyn Fn(&str),
    ) -> Result<Response<ureq::Body>> {
        let scope = format!("repository:{repository}:pull");
        self.send_scoped(method, endpoint, &scope, path, headers, None, notice)
    }

    /// [`Client::send`] for any `scope` (chapter 11's push asks for
    /// `repository:NAME:pull,push`), with a `body` for `POST`, `PUT` and
    /// `PATCH`. `path` may also be a whole URL (a `Location` the registry
    /// gave).
    #[allow(clippy::too_many_arguments)]
    pub fn send_scoped(
        &self,
        method: &str,
        endpoint: &Endpoint,
        scope: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Option<&[u8]>,
        notice: &dyn Fn(&str),
    ) -> Result<Response<ureq::Body>> {
        self.ping(endpoint)?;
        let scheme = self.schemes.lock().expect("lock")[&endpoint.host];
        let url = match path.starts_with("http://") || path.starts_with("https://") {
            true => path.to_string(),
            false => format!("{scheme}://{}{path}", endpoint.host),
        };
        let scope = scope.to_string();
        let request = Call {
            method,
            path,
            url: &url,
            headers,
            body,
        };
        let send =
            |authorization: Option<&str>| self.call_retrying(&request, authorization, notice);
        // Answer the challenge the ping got, up front, rather than collect a
        // 401 for every request.
        let known = self
            .challenges
            .lock()
            .expect("lock")
            .get(&endpoint.host)
            .cloned();
        let authorization = match known {
            Some(challenge) => self.authorize(endpoint, &challenge, &scope)?,
            None => None,
        };
        let response = send(authorization.as_deref())?;
        if response.status() != 401 {
            return Ok(response);
        }
        // Unauthorized: a first challenge, or our token is not enough (expired,
        // or the registry wants a scope we did not ask for).
        let Some(challenge) = challenge_of(&response) else {
            return Ok(response);
        };
        self.forget_token(&challenge, &scope);
        self.challenges
            .lock()
            .expect("lock")
            .insert(endpoint.host.clone(), challenge.clone());
        match self.authorize(endpoint, &challenge, &scope)? {
            Some(authorization) => send(Some(&authorization)),
            None => Ok(response), // nothing to answer with: the 401 stands
        }
    }
    // ANCHOR_END: get

    // ANCHOR: authorize
    /// The `Authorization` header that answers `challenge` for `scope`, if we
    /// can answer it (Basic needs credentials; Bearer works anonymously too).
    fn authorize(
        &self,
        endpoint: &Endpoint,
        challenge: &Challenge,
        scope: &str,
    ) -> Result<Option<String>> {
        let credentials = match &self.credentials {
            Some(c) => Some(c.clone()),
            None => {
                let mut cache = self.looked_up.lock().expect("lock");
                match cache.get(&endpoint.registry) {
                    Some(found) => found.clone(),
                    None => {
                        let found = auth::lookup(&endpoint.registry)?;
                        cache.insert(endpoint.registry.clone(), found.clone());
                        found
                    }
                }
            }
        };
        match challenge {
            Challenge::Basic => Ok(credentials.map(|c| c.basic_header())),
            Challenge::Bearer { realm, service, .. } => {
                let key = format!("{realm} {service:?} {scope}");
                if let Some((token, expires)) = self.tokens.lock().expect("lock").get(&key)
                    && Instant::now() < *expires
                {
                    return Ok(Some(format!("Bearer {token}")));
                }
                let (token, lifetime) =
                    self.fetch_token(realm, service.as_deref(), Some(scope), credentials.as_ref())?;
                // Renew a little early, so a token does not expire mid-request.
                let expires = Instant::now() + lifetime.saturating_sub(Duration::from_secs(10));
                self.tokens
                    .lock()
                    .expect("lock")
                    .insert(key, (token.clone(), expires));
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// Asks the token server at `realm` for a token, with our credentials if we
    /// have them; returns it and how long it lives.
    pub fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
        credentials: Option<&Credentials>,
    ) -> Result<(String, Duration)> {
        if let Some(token) = credentials.and_then(Credentials::identity_token) {
            return self.refresh_token(realm, service, scope, token);
        }
        let mut request = self.request("GET", realm)?;
        if let Some(service) = service {
            request = request.query("service", service);
        }
        // Several scopes (chapter 11's cross-repository mount needs pull on
        // the source too) go as several `scope` parameters, one each, as
        // Docker sends them.
        for scope in scope.iter().flat_map(|s| s.split(' ')) {
            request = request.query("scope", scope);
        }
        if let Some(c) = credentials {
            request = request
                .query("account", &c.username)
                .header("Authorization", c.basic_header());
        }
        let response = request
            .call()
            .with_context(|| format!("asking {realm} for a token"))?;
        read_token(realm, response)
    }

    /// An identity token's way to an access token (OAuth2, distribution's
    /// `oauth.md`): `POST` the refresh token to the token server, which
    /// answers as it does a `GET`.
    fn refresh_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
        refresh_token: &str,
    ) -> Result<(String, Duration)> {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", "minibox"),
        ];
        form.extend(service.map(|s| ("service", s)));
        form.extend(
            scope
                .iter()
                .flat_map(|s| s.split(' '))
                .map(|s| ("scope", s)),
        );
        let mut request = self.agent.post(realm);
        if realm.starts_with("https://") {
            request = request
                .config()
                .tls_config(self.tls.for_url(realm)?)
                .build();
        }
        let response = request
            .send_form(form)
            .with_context(|| format!("trading an identity token at {realm}"))?;
        read_token(realm, response)
    }
    // ANCHOR_END: authorize

    /// `minibox login`: proves `credentials` work, by a token from the token
    /// server (Bearer) or an authorized `GET /v2/` (Basic).
    pub fn login(&self, endpoint: &Endpoint, credentials: &Credentials) -> Result<()> {
        self.ping(endpoint)?;
        let challenge = self
            .challenges
            .lock()
            .expect("lock")
            .get(&endpoint.host)
            .cloned();
        match challenge {
            None => Ok(()), // the registry asks nobody to log in
            Some(Challenge::Bearer { realm, service, .. }) => {
                self.fetch_token(&realm, service.as_deref(), None, Some(credentials))?;
                Ok(())
            }
            Some(Challenge::Basic) => {
                let scheme = self.schemes.lock().expect("lock")[&endpoint.host];
                let url = format!("{scheme}://{}/v2/", endpoint.host);
                let response = self
                    .request("GET", &url)?
                    .header("Authorization", credentials.basic_header())
                    .call()
                    .with_context(|| format!("GET {url}"))?;
                if response.status() != 200 {
                    bail!("unauthorized: incorrect username or password");
                }
                Ok(())
            }
        }
    }

    fn forget_token(&self, challenge: &Challenge, scope: &str) {
        if let Challenge::Bearer { realm, service, .. } = challenge {
            let key = format!("{realm} {service:?} {scope}");
            self.tokens.lock().expect("lock").remove(&key);
        }
    }

    /// `HEAD` of the manifest `reference`: the digest it names now, from the
    /// `Docker-Content-Digest` header, without its bytes. `None` when the
    /// registry does not say (then a `GET` will tell). A pull asks this first
    /// and skips the `GET`s when the store has that digest already: Docker
    /// Hub counts a `GET` of a manifest against its pull limit, a `HEAD` not.
    pub fn manifest_digest(
        &self,
        endpoint: &Endpoint,
        image: &Reference,
        reference: &str,
        notice: &dyn Fn(&str),
    ) -> Option<String> {
        let path = format!("/v2/{}/manifests/{reference}", image.repository);
        let accept = [("Accept", crate::oci::MANIFEST_ACCEPT.to_string())];
        let response = self
            .send("HEAD", endpoint, &image.repository, &path, &accept, notice)
            .ok()?;
        if response.status() != 200 {
            return None;
        }
        header(&response, "docker-content-digest").filter(|d| crate::digest::hex_part(d).is_ok())
    }

    // ANCHOR: manifest
    /// Fetches the manifest (or index) `reference` (a tag or a digest) of
    /// `repository`; returns its bytes, its media type and its digest,
    /// verified when we asked by digest.
    pub fn manifest(
        &self,
        endpoint: &Endpoint,
        image: &Reference,
        reference: &str,
        notice: &dyn Fn(&str),
    ) -> Result<(Vec<u8>, String, String)> {
        let path = format!("/v2/{}/manifests/{reference}", image.repository);
        let accept = [("Accept", crate::oci::MANIFEST_ACCEPT.to_string())];
        let mut response = self.send("GET", endpoint, &image.repository, &path, &accept, notice)?;
        let status = response.status().as_u16();
        let content_type = header(&response, "content-type").unwrap_or_default();
        let announced = header(&response, "docker-content-digest");
        let limits = rate_limits(&response);
        // Manifests are small; a registry that sends megabytes is broken.
        let bytes = read_limited(response.body_mut(), 4 << 20)?;
        self.check_status(status, &bytes, limits, endpoint, image, reference)?;
        let digest = crate::digest::sha256(&bytes);
        if reference.starts_with("sha256:") {
            crate::digest::verify(&format!("manifest {reference}"), reference, &digest)?;
        } else if let Some(announced) = announced
            && announced.starts_with("sha256:")
        {
            crate::digest::verify("the manifest the registry sent", &announced, &digest)?;
        }
        Ok((bytes, content_type, digest))
    }
    // ANCHOR_END: manifest

    /// `GET /v2/NAME/blobs/DIGEST`, following redirects; the body streams.
    /// From byte `from` on when it is not 0 (`Range: bytes=FROM-`, to resume
    /// a download): the answer is then 206 with the rest, or 200 with the
    /// whole blob when the registry does not do ranges. The caller verifies
    /// the digest while reading.
    pub fn blob(
        &self,
        endpoint: &Endpoint,
        image: &Reference,
        digest: &str,
        from: u64,
        notice: &dyn Fn(&str),
    ) -> Result<Response<ureq::Body>> {
        let path = format!("/v2/{}/blobs/{digest}", image.repository);
        let range: Vec<(&str, String)> = (from > 0)
            .then(|| ("Range", format!("bytes={from}-")))
            .into_iter()
            .collect();
        let mut response = self.send("GET", endpoint, &image.repository, &path, &range, notice)?;
        let status = response.status().as_u16();
        if status != 200 && !(status == 206 && from > 0) {
            let limits = rate_limits(&response);
            let body = read_limited(response.body_mut(), 64 << 10).unwrap_or_default();
            self.check_status(status, &body, limits, endpoint, image, digest)?;
            anyhow::bail!("fetching blob {digest}: the registry answered {status}");
        }
        if status == 206 {
            let range = header(&response, "content-range").unwrap_or_default();
            if !range.starts_with(&format!("bytes {from}-")) {
                bail!(
                    "fetching blob {digest} from byte {from}: the registry sent the range {range:?}"
                );
            }
        }
        Ok(response)
    }

    /// Turns an error answer into the error a user should read. `limits` are
    /// the `RateLimit` headers of a 429, if it had them.
    fn check_status(
        &self,
        status: u16,
        body: &[u8],
        limits: Option<String>,
        endpoint: &Endpoint,
        image: &Reference,
        reference: &str,
    ) -> Result<()> {
        if status != 429 {
            return check_status(status, body, image, reference);
        }
        // Docker Hub's pull limit: say what it said, what the limit is, and
        // that logging in raises it (as Docker's own message does).
        let detail =
            error_detail(body).unwrap_or_else(|| "toomanyrequests: Too Many Requests".into());
        let limits = limits.map(|l| format!(" ({l})")).unwrap_or_default();
        let logged_in =
            self.credentials.is_some() || matches!(auth::lookup(&endpoint.registry), Ok(Some(_)));
        let hint = if logged_in {
            String::new()
        } else {
            format!(
                "; log in with 'minibox login {}' for a higher limit",
                endpoint.registry
            )
        };
        bail!("{detail}{limits}{hint}")
    }
}

/// `ratelimit-limit=100;w=21600, ratelimit-remaining=0;w=21600`: what Docker
/// Hub says about its limit, when it says it.
fn rate_limits(response: &Response<ureq::Body>) -> Option<String> {
    let parts: Vec<String> = [
        "ratelimit-limit",
        "ratelimit-remaining",
        "docker-ratelimit-source",
    ]
    .iter()
    .filter_map(|name| header(response, name).map(|v| format!("{name}={v}")))
    .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// A token server's answer: the token, and how long it lives.
fn read_token(realm: &str, mut response: Response<ureq::Body>) -> Result<(String, Duration)> {
    let status = response.status();
    let body = read_limited(response.body_mut(), 1 << 20)?;
    if status == 401 || status == 403 {
        anyhow::bail!(
            "the token server {realm} refused the credentials: {}",
            error_detail(&body).unwrap_or_else(|| status.to_string())
        );
    }
    if !status.is_success() {
        anyhow::bail!("the token server {realm} answered {status}");
    }
    #[derive(serde::Deserialize)]
    struct TokenResponse {
        token: Option<String>,
        access_token: Option<String>,
        expires_in: Option<u64>,
    }
    let parsed: TokenResponse =
        serde_json::from_slice(&body).context("reading the token server's answer")?;
    let token = parsed
        .token
        .or(parsed.access_token)
        .context("the token server's answer has no token")?;
    // The spec: a token without `expires_in` lives 60 seconds.
    Ok((
        token,
        Duration::from_secs(parsed.expires_in.unwrap_or(60).max(60)),
    ))
}

/// Turns an error answer into the error a user should read.
fn check_status(status: u16, body: &[u8], image: &Reference, reference: &str) -> Result<()> {
    let detail = || error_detail(body).unwrap_or_else(|| format!("HTTP {status}"));
    match status {
        200..=299 => Ok(()),
        401 | 403 => Err(RegistryError::Unauthorized {
            repository: image.familiar_name(),
            detail: detail(),
        }
        .into()),
        404 if !reference.starts_with("sha256:") || body.starts_with(b"{") => {
            Err(RegistryError::ManifestUnknown {
                reference: image.to_string(),
                detail: detail(),
            }
            .into())
        }
        _ => anyhow::bail!(
            "the registry answered {status} for {reference}: {}",
            detail()
        ),
    }
}

/// `CODE: message` from a registry's `{"errors": [...]}` body.
fn error_detail(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let errors = value.get("errors")?.as_array()?;
    let parts: Vec<String> = errors
        .iter()
        .map(|e| {
            let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("ERROR");
            let message = e.get("message").and_then(|m| m.as_str()).unwrap_or("");
            format!("{}: {message}", code.to_lowercase().replace('_', " "))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn challenge_of(response: &Response<ureq::Body>) -> Option<Challenge> {
    response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(auth::parse_challenge)
        // Prefer Bearer when a registry offers both.
        .min_by_key(|c| matches!(c, Challenge::Basic))
}

fn header(response: &Response<ureq::Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Reads a whole body, refusing more than `limit` bytes.
pub fn read_limited(body: &mut ureq::Body, limit: u64) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    body.as_reader()
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .context("reading the registry's answer")?;
    if bytes.len() as u64 > limit {
        anyhow::bail!("the registry's answer is larger than {limit} bytes");
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_listed_registries_may_skip_tls() {
        assert!(insecure("127.0.0.1:5000"));
        assert!(insecure("localhost:5000"));
        assert!(insecure("localhost"));
        assert!(insecure("[::1]:5000"));
        assert!(!insecure("registry-1.docker.io"));
        assert!(!insecure("example.com:5000"));
    }

    #[test]
    fn registry_errors_read_like_dockers() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":"x"}]}"#;
        assert_eq!(
            error_detail(body).as_deref(),
            Some("manifest unknown: manifest unknown")
        );
        let image = Reference::parse("busybox:nosuch").unwrap();
        let error = check_status(404, body, &image, "nosuch").unwrap_err();
        assert_eq!(
            error.to_string(),
            "manifest for busybox:nosuch not found: manifest unknown: manifest unknown"
        );
    }
}
