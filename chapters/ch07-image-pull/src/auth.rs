//! Who we are to a registry: the challenge a registry answers `401` with,
//! the two schemes it can name, and the credentials we answer with.
//!
//! - **Bearer** (Docker Hub, most public registries): the registry names a
//!   token server (`realm`), a `service`, and what we tried to do (`scope`,
//!   `repository:library/busybox:pull`). We ask the token server for a token
//!   for that scope, anonymously or with a user name and password, and send it
//!   as `Authorization: Bearer TOKEN` until it expires.
//! - **Basic** (a registry with an htpasswd file): every request carries the
//!   user name and password, base64-encoded.
//!
//! Credentials come from `minibox login` (`~/.minibox/config.json`) or, as a
//! fallback, from Docker's own `~/.docker/config.json`: both keep
//! `{"auths": {"SERVER": {"auth": base64("user:password")}}}`. Docker's may
//! instead name a *credential helper*, a program that keeps the secrets
//! elsewhere (the OS keychain, `pass`, a cloud's short-lived tokens):
//! `"credsStore": "NAME"` for every registry, `"credHelpers": {"SERVER":
//! "NAME"}` for one. minibox asks it as Docker does, by running
//! `docker-credential-NAME get` with the server on its standard input. A
//! helper (or `docker login` to some registries) may hand out an *identity
//! token* instead of a password: a refresh token that the token server
//! trades for access tokens (OAuth2), never sent to the registry itself.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::reference::DOCKER_HUB;

// ANCHOR: challenge
/// What a registry's `Www-Authenticate` header asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Get a token from `realm` for `service` (and the scope we need).
    Bearer {
        /// The token server's URL.
        realm: String,
        /// The registry's name at the token server.
        service: Option<String>,
        /// The scope the registry says the request needed, if it says.
        scope: Option<String>,
    },
    /// Send the user name and password with every request.
    Basic,
}

/// Parses `Bearer realm="https://auth.docker.io/token",service="registry.docker.io"`
/// or `Basic realm="Registry"`. Values are quoted and may hold commas
/// (`scope="repository:a:pull,push"`), so this is a small tokenizer, not a split.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ',' || c.is_whitespace()).is_some() {}
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        if key.is_empty() || chars.next() != Some('=') {
            break;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect();
        }
        params.insert(key.trim().to_ascii_lowercase(), value);
    }
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" => Some(Challenge::Bearer {
            realm: params.remove("realm")?,
            service: params.remove("service"),
            scope: params.remove("scope"),
        }),
        "basic" => Some(Challenge::Basic),
        _ => None,
    }
}
// ANCHOR_END: challenge

/// A user name and password for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user.
    pub username: String,
    /// The password (or an access token used as one); the identity token
    /// when `username` is [`IDENTITY_TOKEN_USER`].
    pub password: String,
}

/// The user name that marks `password` as an identity token, as credential
/// helpers and Docker write it.
pub const IDENTITY_TOKEN_USER: &str = "<token>";

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ***)", self.username) // never print a password
    }
}

impl Credentials {
    /// The identity token (an OAuth2 refresh token), if that is what these are.
    pub fn identity_token(&self) -> Option<&str> {
        (self.username == IDENTITY_TOKEN_USER).then_some(self.password.as_str())
    }

    /// `Basic base64(user:password)`, the value of an `Authorization` header.
    pub fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            BASE64.encode(format!("{}:{}", self.username, self.password))
        )
    }
}

/// minibox's own credentials file: `$MINIBOX_CONFIG/config.json`, default
/// `~/.minibox/config.json`.
pub fn minibox_config() -> Option<PathBuf> {
    match std::env::var_os("MINIBOX_CONFIG") {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => home().map(|h| h.join(".minibox/config.json")),
    }
}

/// Docker's: `$DOCKER_CONFIG/config.json`, default `~/.docker/config.json`
/// in the home of the user who ran minibox ([`invoking_home`]).
fn docker_config() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => invoking_home().map(|h| h.join(".docker/config.json")),
    }
}

/// The home of whoever ran minibox. Under `sudo` (root, with `SUDO_USER`
/// set), that is the invoking user's home from the password database, where
/// `docker login` wrote, not root's (sudo may have set HOME to /root).
fn invoking_home() -> Option<PathBuf> {
    let sudo_user = std::env::var("SUDO_USER").ok();
    if nix::unistd::geteuid().is_root()
        && let Some(name) = sudo_user.filter(|n| !n.is_empty() && n != "root")
        && let Ok(Some(user)) = nix::unistd::User::from_name(&name)
    {
        return Some(user.dir);
    }
    home()
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// The key a registry's credentials are kept under. Docker Hub's is a URL for
/// historical reasons; every other registry's is its host (and port).
pub fn config_key(registry: &str) -> String {
    if registry == DOCKER_HUB {
        "https://index.docker.io/v1/".to_string()
    } else {
        registry.to_string()
    }
}

/// A key as written by any tool, reduced to host[:port]: `https://ghcr.io/v2/`
/// and `ghcr.io` are the same registry.
fn normalize_key(key: &str) -> String {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = host.split('/').next().unwrap_or(host);
    match host {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        other => other.to_string(),
    }
}

// ANCHOR: lookup
/// The credentials stored for `registry`, from minibox's file first, then
/// Docker's. In each, the helper named for this registry (`credHelpers`) or
/// for all (`credsStore`) is asked first, then the file's own `auths`.
pub fn lookup(registry: &str) -> Result<Option<Credentials>> {
    for path in [minibox_config(), docker_config()].into_iter().flatten() {
        let Ok(text) = fs::read_to_string(&path) else {
            continue; // no such file: nobody logged in with that tool
        };
        let config: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("reading credentials from {}", path.display()))?;
        if let Some(helper) = helper_for(&config, registry)
            && let Some(credentials) = ask_helper(&helper, registry)?
        {
            return Ok(Some(credentials));
        }
        let Some(auths) = config.get("auths").and_then(|a| a.as_object()) else {
            continue;
        };
        for (key, entry) in auths {
            if normalize_key(key) != normalize_key(registry) {
                continue;
            }
            if let Some(credentials) = decode_entry(entry) {
                return Ok(Some(credentials));
            }
        }
    }
    Ok(None)
}

/// The credential helper `config` names for `registry`: its own in
/// `credHelpers`, else the `credsStore` for all.
fn helper_for(config: &serde_json::Value, registry: &str) -> Option<String> {
    let own = config
        .get("credHelpers")
        .and_then(|h| h.as_object())
        .and_then(|helpers| {
            helpers
                .iter()
                .find(|(key, _)| normalize_key(key) == normalize_key(registry))
        })
        .and_then(|(_, name)| name.as_str());
    own.or_else(|| config.get("credsStore").and_then(|s| s.as_str()))
        .filter(|name| !name.is_empty())
        .map(str::to_string)
}

/// Runs `docker-credential-NAME get`, the server's key on its standard input,
/// and reads `{"ServerURL": ..., "Username": ..., "Secret": ...}` from its
/// output. A helper that has nothing for this server says "credentials not
/// found": no credentials, not an error. A helper that is not installed (a
/// config copied from Docker Desktop) is skipped with a warning, so public
/// images still pull.
fn ask_helper(name: &str, registry: &str) -> Result<Option<Credentials>> {
    let program = format!("docker-credential-{name}");
    let child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "WARNING: the credential helper {program} is not installed: pulling without its credentials"
            );
            return Ok(None);
        }
        Err(e) => return Err(e).with_context(|| format!("running {program}")),
    };
    let sent = child
        .stdin
        .take()
        .expect("piped")
        .write_all(config_key(registry).as_bytes());
    let output = child
        .wait_with_output()
        .with_context(|| format!("running {program}"))?;
    sent.with_context(|| format!("asking {program} for {registry}"))?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(if output.stdout.is_empty() {
            &output.stderr
        } else {
            &output.stdout
        })
        .trim()
        .to_string();
        if said.contains("credentials not found") {
            return Ok(None);
        }
        anyhow::bail!("{program} get ({registry}): {said}");
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    let answer: Answer = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("reading what {program} answered"))?;
    Ok((!answer.secret.is_empty()).then_some(Credentials {
        username: answer.username,
        password: answer.secret,
    }))
}

fn decode_entry(entry: &serde_json::Value) -> Option<Credentials> {
    if let Some(token) = entry
        .get("identitytoken")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
    {
        return Some(Credentials {
            username: IDENTITY_TOKEN_USER.into(),
            password: token.into(),
        });
    }
    if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
        let decoded = String::from_utf8(BASE64.decode(auth.trim()).ok()?).ok()?;
        let (username, password) = decoded.split_once(':')?;
        return Some(Credentials {
            username: username.into(),
            password: password.into(),
        });
    }
    Some(Credentials {
        username: entry.get("username")?.as_str()?.into(),
        password: entry.get("password")?.as_str()?.into(),
    })
}
// ANCHOR_END: lookup

/// Keeps `credentials` for `registry` in minibox's config file (replacing
/// any it had), for later pulls: `minibox login`. Returns the file's path.
pub fn save(registry: &str, credentials: &Credentials) -> Result<PathBuf> {
    update(registry, Some(credentials))
}

/// Removes the credentials for `registry` from minibox's config file:
/// `minibox logout`. Returns the file's path.
pub fn forget(registry: &str) -> Result<PathBuf> {
    update(registry, None)
}

/// Writes (or, with `None`, removes) `registry`'s entry in minibox's file,
/// readable by its owner only, replaced atomically (temp file + rename).
fn update(registry: &str, credentials: Option<&Credentials>) -> Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = minibox_config().context("neither MINIBOX_CONFIG nor HOME is set")?;
    let mut config: serde_json::Value = match fs::read_to_string(&path) {
        Ok(text) => {
            serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?
        }
        Err(_) => serde_json::json!({}),
    };
    if !config.get("auths").is_some_and(|a| a.is_object()) {
        config["auths"] = serde_json::json!({});
    }
    let auths = config["auths"].as_object_mut().expect("an object");
    auths.retain(|key, _| normalize_key(key) != normalize_key(registry));
    if let Some(c) = credentials {
        let auth = BASE64.encode(format!("{}:{}", c.username, c.password));
        auths.insert(config_key(registry), serde_json::json!({ "auth": auth }));
    }
    let dir = path.parent().expect("a file in a directory");
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let temp = dir.join(format!(".config.json.{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(serde_json::to_string_pretty(&config)?.as_bytes())?;
        file.sync_all()?;
        fs::rename(&temp, &path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&temp);
        anyhow::anyhow!("writing {}: {e}", path.display())
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_parsed_with_quoted_commas() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge("bearer realm=http://127.0.0.1:1/token"),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:1/token".into(),
                service: None,
                scope: None
            })
        );
        assert_eq!(
            parse_challenge("Bearer service=x"),
            None,
            "a realm is required"
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn keys_written_by_any_tool_name_the_same_registry() {
        assert_eq!(normalize_key("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize_key("https://ghcr.io/v2/"), "ghcr.io");
        assert_eq!(normalize_key("localhost:5000"), "localhost:5000");
        let c = Credentials {
            username: "aladdin".into(),
            password: "opensesame".into(),
        };
        assert_eq!(c.basic_header(), "Basic YWxhZGRpbjpvcGVuc2VzYW1l");
        assert!(!format!("{c:?}").contains("opensesame"));
        let entry = serde_json::json!({ "auth": "YWxhZGRpbjpvcGVuc2VzYW1l" });
        assert_eq!(decode_entry(&entry), Some(c));
        let entry = serde_json::json!({ "auth": "", "identitytoken": "refresh-me" });
        let token = decode_entry(&entry).unwrap();
        assert_eq!(token.identity_token(), Some("refresh-me"));
    }

    #[test]
    fn helpers_are_named_per_registry_or_for_all() {
        let config = serde_json::json!({
            "auths": { "ghcr.io": {} },
            "credsStore": "desktop",
            "credHelpers": { "https://index.docker.io/v1/": "pass", "gcr.io": "gcloud" },
        });
        assert_eq!(helper_for(&config, "gcr.io").as_deref(), Some("gcloud"));
        assert_eq!(helper_for(&config, DOCKER_HUB).as_deref(), Some("pass"));
        assert_eq!(helper_for(&config, "ghcr.io").as_deref(), Some("desktop"));
        assert_eq!(
            helper_for(&serde_json::json!({"auths": {}}), "ghcr.io"),
            None
        );
    }
}
