//! A small HTTP front for the test registry, on 127.0.0.1, that misbehaves on
//! purpose the way networks and busy registries do: it drops or stalls a
//! connection in the middle of a layer, or answers `429 Too Many Requests`
//! with `Retry-After`, once each. Everything else it passes on to the
//! registry unchanged, one request per connection, and it records every
//! request it saw (method, path, `Range`, the status it answered), so a test
//! can count the manifest `GET`s a pull made.
//!
//! It also tunnels `CONNECT` requests to 127.0.0.1 (what a client behind a
//! company proxy sends), recording only that they were made.
//!
//! It can also play the OAuth2 half of a token server ([`OAuth`]), which the
//! harness's token server does not speak: the registry's challenges are
//! rewritten to name the proxy as their realm, and a `POST /token` with the
//! right refresh token (an *identity token*) is answered with a token the
//! real token server issued to the user it stands for.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A way to misbehave, applied once, to the first request it fits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Send half of the first blob of at least `min_size` bytes, then close
    /// the connection.
    DropMidBlob {
        /// Smaller blobs (configs) pass untouched.
        min_size: u64,
    },
    /// Send half of the first blob of at least `min_size` bytes, then send
    /// nothing for `stall`, then close.
    StallMidBlob {
        /// Smaller blobs (configs) pass untouched.
        min_size: u64,
        /// How long to go quiet.
        stall: Duration,
    },
    /// Answer the first `GET` of a manifest with 429 and `Retry-After:
    /// SECONDS`, Docker Hub's error body, and its `RateLimit` headers. (A
    /// `HEAD` passes: Docker Hub does not count those.)
    TooManyRequests {
        /// The `Retry-After` value; `None` leaves the header out (Docker
        /// Hub's pull limit).
        retry_after: Option<u64>,
    },
}

/// The OAuth2 refresh-token flow, played in front of a registry with token
/// authentication.
#[derive(Debug, Clone)]
pub struct OAuth {
    /// The real token server's endpoint (`http://127.0.0.1:PORT/token`).
    pub realm: String,
    /// The refresh token the proxy accepts.
    pub refresh_token: String,
    /// The user (name, password) that refresh token stands for.
    pub user: (String, String),
}

/// One request the proxy saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `GET`, `HEAD`...
    pub method: String,
    /// `/v2/library/busybox/manifests/latest`...
    pub path: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// What the proxy answered (the registry's status, or the fault's).
    pub status: u16,
}

/// A running proxy; stopped when dropped.
pub struct Proxy {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

struct Shared {
    upstream: String,
    faults: Mutex<Vec<Fault>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    oauth: Option<OAuth>,
    /// `http://127.0.0.1:PORT/token`: the proxy's own realm, for [`OAuth`].
    own_realm: String,
}

impl Proxy {
    /// Starts a proxy on a free port of 127.0.0.1 in front of `upstream`
    /// (`127.0.0.1:PORT`, a plain-HTTP registry) with `faults` to apply.
    pub fn start(upstream: &str, faults: Vec<Fault>) -> Proxy {
        Proxy::launch(upstream, faults, None)
    }

    /// Starts a proxy in front of `upstream` (a registry with token
    /// authentication) that also answers OAuth2 refresh-token requests.
    pub fn start_with_oauth(upstream: &str, oauth: OAuth) -> Proxy {
        Proxy::launch(upstream, vec![], Some(oauth))
    }

    fn launch(upstream: &str, faults: Vec<Fault>, oauth: Option<OAuth>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("its address").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            faults: Mutex::new(faults),
            seen: seen.clone(),
            oauth,
            own_realm: format!("http://127.0.0.1:{port}/token"),
        });
        let stopping = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &shared);
                });
            }
        });
        Proxy { port, seen, stop }
    }

    /// `127.0.0.1:PORT`, as an image reference's registry part.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One request: read it, pass it on (or misbehave), answer, close.
fn serve(client: TcpStream, shared: &Shared) -> std::io::Result<()> {
    // minibox tries HTTPS first on loopback: a TLS handshake record (0x16)
    // is no request of ours, and hanging up sends it on to plain HTTP.
    let mut first = [0u8; 1];
    if client.peek(&mut first)? == 0 || first[0] == 0x16 {
        return client.shutdown(Shutdown::Both);
    }
    let mut reader = BufReader::new(client.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = match (parts.next(), parts.next()) {
        (Some(m), Some(p)) => (m.to_string(), p.to_string()),
        _ => return Ok(()), // not HTTP (a TLS hello): hang up
    };
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end().to_string();
        if header.is_empty() {
            break;
        }
        headers.push(header);
    }
    let range = headers.iter().find_map(|h| {
        let (k, v) = h.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("range")
            .then(|| v.trim().to_string())
    });
    let record = |status: u16| {
        shared.seen.lock().expect("lock").push(Seen {
            method: method.clone(),
            path: path.clone(),
            range: range.clone(),
            status,
        });
    };
    let mut client = client;

    if method == "CONNECT" {
        // A forward proxy's tunnel (what a client named by HTTP_PROXY asks
        // for): to 127.0.0.1 only, bytes both ways, nothing read or changed.
        if !path.starts_with("127.0.0.1:") {
            record(403);
            write!(
                client,
                "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"
            )?;
            return client.shutdown(Shutdown::Both);
        }
        let upstream = TcpStream::connect(&path)?;
        record(200);
        write!(client, "HTTP/1.1 200 Connection established\r\n\r\n")?;
        let (mut up_read, mut client_write) = (upstream.try_clone()?, client.try_clone()?);
        let down = std::thread::spawn(move || {
            let _ = std::io::copy(&mut up_read, &mut client_write);
            let _ = client_write.shutdown(Shutdown::Write);
        });
        let mut upstream = upstream;
        let _ = std::io::copy(&mut reader, &mut upstream);
        let _ = upstream.shutdown(Shutdown::Write);
        let _ = down.join();
        return Ok(());
    }

    if let Some(oauth) = &shared.oauth
        && method == "POST"
        && path == "/token"
    {
        let length = headers
            .iter()
            .find_map(|h| {
                let (k, v) = h.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let (status, answer) = refresh(oauth, &String::from_utf8_lossy(&body))?;
        record(status);
        write!(
            client,
            "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{answer}",
            if status == 200 { "OK" } else { "Error" },
            answer.len()
        )?;
        return client.shutdown(Shutdown::Both);
    }

    if method == "GET" && path.contains("/manifests/") {
        let fault = take_fault(shared, |f| matches!(f, Fault::TooManyRequests { .. }));
        if let Some(Fault::TooManyRequests { retry_after }) = fault {
            record(429);
            let body = r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit"}]}"#;
            let retry = retry_after
                .map(|s| format!("Retry-After: {s}\r\n"))
                .unwrap_or_default();
            write!(
                client,
                "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n\
                 RateLimit-Limit: 100;w=21600\r\nRateLimit-Remaining: 0;w=21600\r\n\
                 {retry}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )?;
            return client.shutdown(Shutdown::Both);
        }
    }

    // Pass it on, asking the registry to close after its answer.
    let mut upstream = TcpStream::connect(&shared.upstream)?;
    write!(upstream, "{method} {path} HTTP/1.1\r\n")?;
    for header in &headers {
        let name = header.split(':').next().unwrap_or("").trim();
        if !name.eq_ignore_ascii_case("connection") {
            write!(upstream, "{header}\r\n")?;
        }
    }
    write!(upstream, "Connection: close\r\n\r\n")?;
    let mut answer = BufReader::new(upstream);
    let mut head = Vec::new();
    let mut status_line = String::new();
    answer.read_line(&mut status_line)?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = None;
    loop {
        let mut header = String::new();
        answer.read_line(&mut header)?;
        let trimmed = header.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((k, v)) = trimmed.split_once(':') {
            if k.trim().eq_ignore_ascii_case("connection") {
                continue;
            }
            if k.trim().eq_ignore_ascii_case("content-length") {
                length = v.trim().parse::<u64>().ok();
            }
            if let Some(oauth) = &shared.oauth
                && k.trim().eq_ignore_ascii_case("www-authenticate")
            {
                let rewritten = trimmed.replace(&oauth.realm, &shared.own_realm);
                head.extend_from_slice(rewritten.as_bytes());
                head.extend_from_slice(b"\r\n");
                continue;
            }
        }
        head.extend_from_slice(trimmed.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    record(status);
    client.write_all(status_line.as_bytes())?;
    client.write_all(&head)?;
    client.write_all(b"Connection: close\r\n\r\n")?;
    if method == "HEAD" {
        return client.shutdown(Shutdown::Both);
    }

    let blob = path.contains("/blobs/") && status == 200;
    let fault = length.filter(|_| blob).and_then(|length| {
        take_fault(shared, |f| match f {
            Fault::DropMidBlob { min_size } | Fault::StallMidBlob { min_size, .. } => {
                length >= *min_size
            }
            Fault::TooManyRequests { .. } => false,
        })
        .map(|f| (f, length))
    });
    match fault {
        Some((fault, length)) => {
            std::io::copy(&mut (&mut answer).take(length / 2), &mut client)?;
            client.flush()?;
            if let Fault::StallMidBlob { stall, .. } = fault {
                std::thread::sleep(stall);
            }
            client.shutdown(Shutdown::Both)
        }
        None => {
            std::io::copy(&mut answer, &mut client)?;
            client.shutdown(Shutdown::Both)
        }
    }
}

/// Answers an OAuth2 refresh-token request (`form`, url-encoded): with the
/// right refresh token, the real token server's answer for the user it stands
/// for; else 400 `invalid_grant`.
fn refresh(oauth: &OAuth, form: &str) -> std::io::Result<(u16, String)> {
    let field = |name: &str| {
        form.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == name).then(|| v.to_string())
        })
    };
    if field("grant_type").as_deref() != Some("refresh_token")
        || field("refresh_token").as_deref() != Some(oauth.refresh_token.as_str())
    {
        return Ok((400, r#"{"error":"invalid_grant"}"#.to_string()));
    }
    // The same question as a GET, as the user: the values stay url-encoded.
    let query: Vec<String> = ["service", "scope"]
        .iter()
        .filter_map(|name| Some(format!("{name}={}", field(name)?)))
        .collect();
    let (host, path) = oauth
        .realm
        .trim_start_matches("http://")
        .split_once('/')
        .expect("a realm URL with a path");
    let mut upstream = TcpStream::connect(host)?;
    let (user, password) = &oauth.user;
    write!(
        upstream,
        "GET /{path}?{}&account={user} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {}\r\n\
         Connection: close\r\n\r\n",
        query.join("&"),
        crate::registry_auth::basic(user, password)
    )?;
    let mut answer = String::new();
    upstream.read_to_string(&mut answer)?;
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(502);
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_string();
    Ok((status, body))
}

/// Removes and returns the first fault that `fits`, if any is left.
fn take_fault(shared: &Shared, fits: impl Fn(&Fault) -> bool) -> Option<Fault> {
    let mut faults = shared.faults.lock().expect("lock");
    let i = faults.iter().position(fits)?;
    Some(faults.remove(i))
}
