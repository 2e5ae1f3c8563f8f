//! The real registry behind authentication, as chapter 7's client will meet it:
//! token auth (a 401 challenge naming our token server, tokens that grant
//! exactly what the policy allows, signatures the registry really checks) and
//! htpasswd Basic auth. The harness's own push works in both modes, and dropping
//! the registry leaves no process, thread or file behind.

use std::io::Read;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use harness::images::{self, MANIFEST, sha256};
use harness::registry::Registry;
use harness::registry_auth::{self, SERVICE};

const ALICE: (&str, &str) = ("alice", "wonderland");

/// What a response said: its status, its `Www-Authenticate` header and body.
struct Answer {
    status: u16,
    challenge: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn get(url: &str, authorization: Option<&str>) -> Answer {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut request = agent.get(url).header("Accept", MANIFEST);
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    let mut response = request.call().expect("GET");
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut body = Vec::new();
    response
        .body_mut()
        .as_reader()
        .read_to_end(&mut body)
        .unwrap();
    Answer {
        status: response.status().as_u16(),
        challenge,
        body,
    }
}

/// Asks the token server for `scope`, anonymously or as `user`.
fn token_answer(registry: &Registry, scope: &str, user: Option<(&str, &str)>) -> Answer {
    let url = format!(
        "{}?service={SERVICE}&scope={scope}",
        registry.token_realm().expect("a token server")
    );
    let authorization = user.map(|(name, password)| registry_auth::basic(name, password));
    get(&url, authorization.as_deref())
}

/// A token for `scope`, which the token server must grant.
fn token(registry: &Registry, scope: &str, user: Option<(&str, &str)>) -> String {
    let answer = token_answer(registry, scope, user);
    assert_eq!(answer.status, 200, "{}", answer.text());
    let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    json["token"].as_str().unwrap().to_string()
}

/// The claims of a JWT, decoded (not verified: the registry does that).
fn claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[test]
fn the_token_registry_challenges_with_its_realm_and_service() {
    // A client that knows nothing learns where to log in from the 401 itself.
    let registry = Registry::start_with_token_auth(&[ALICE], &["library/busybox"]);
    let realm = registry.token_realm().unwrap();
    let answer = get(&registry.url("/v2/"), None);
    assert_eq!(answer.status, 401, "{}", answer.text());
    let challenge = answer.challenge.expect("a Www-Authenticate header");
    assert!(
        challenge.starts_with(&format!(r#"Bearer realm="{realm}",service="{SERVICE}""#)),
        "{challenge}"
    );
    // On a repository, the challenge also names the scope to ask for.
    let answer = get(&registry.url("/v2/library/busybox/manifests/latest"), None);
    assert_eq!(answer.status, 401);
    assert!(
        answer
            .challenge
            .unwrap()
            .contains(r#"scope="repository:library/busybox:pull""#)
    );
}

#[test]
fn the_token_server_answers_in_docker_hubs_format() {
    // What a client parses: token and access_token (the same), a lifetime, a
    // time of issue; and claims the registry checks (issuer, audience, access).
    let registry = Registry::start_with_token_auth(&[ALICE], &["library/busybox"]);
    let answer = token_answer(&registry, "repository:library/busybox:pull,push", None);
    assert_eq!(answer.status, 200, "{}", answer.text());
    let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(json["token"], json["access_token"]);
    assert_eq!(json["expires_in"], 300);
    let issued_at = json["issued_at"].as_str().unwrap();
    assert!(
        regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            .unwrap()
            .is_match(issued_at),
        "{issued_at}"
    );
    let token = json["token"].as_str().unwrap();
    let header: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["x5c"].as_array().unwrap().len(), 1);
    let claims = claims(token);
    assert_eq!(claims["iss"], registry_auth::ISSUER);
    assert_eq!(claims["aud"], SERVICE);
    assert_eq!(claims["sub"], "", "anonymous");
    // Anonymous asked for push as well, and got pull only.
    assert_eq!(
        claims["access"],
        serde_json::json!([{"type": "repository", "name": "library/busybox", "actions": ["pull"]}])
    );
    // A client that forgets the service its challenge named is refused.
    let url = format!(
        "{}?scope=repository:library/busybox:pull",
        registry.token_realm().unwrap()
    );
    assert_eq!(get(&url, None).status, 400);
}

#[test]
fn an_anonymous_token_pulls_a_public_repository_and_nothing_else() {
    // The Docker Hub story: anyone may pull library/busybox; a private
    // repository needs a login even though the anonymous token itself is granted.
    let image = images::hello_world().unwrap();
    let registry = Registry::start_with_token_auth(&[ALICE], &["library/busybox"]);
    let public = registry.push("library/busybox", "latest", &image);
    registry.push("private/secret", "latest", &image);

    let anonymous = token(&registry, "repository:library/busybox:pull", None);
    let answer = get(
        &registry.url("/v2/library/busybox/manifests/latest"),
        Some(&bearer(&anonymous)),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(sha256(&answer.body), public);

    let anonymous = token(&registry, "repository:private/secret:pull", None);
    assert_eq!(
        claims(&anonymous)["access"][0]["actions"],
        serde_json::json!([])
    );
    let answer = get(
        &registry.url("/v2/private/secret/manifests/latest"),
        Some(&bearer(&anonymous)),
    );
    assert_eq!(answer.status, 401);
    assert!(answer.text().contains("UNAUTHORIZED"), "{}", answer.text());
    assert!(
        answer.challenge.unwrap().contains("insufficient_scope"),
        "the registry says the token lacks the scope"
    );

    // A public repository's token opens that repository only.
    let public_token = token(&registry, "repository:library/busybox:pull", None);
    let answer = get(
        &registry.url("/v2/private/secret/manifests/latest"),
        Some(&bearer(&public_token)),
    );
    assert_eq!(answer.status, 401);
}

#[test]
fn a_user_token_pulls_a_private_repository() {
    // Logging in at the token server is what opens a private repository.
    let image = images::hello_world().unwrap();
    let registry = Registry::start_with_token_auth(&[("bob", "builder"), ALICE], &[]);
    let digest = registry.push("private/secret", "latest", &image);
    let alice = token(&registry, "repository:private/secret:pull", Some(ALICE));
    assert_eq!(claims(&alice)["sub"], "alice");
    let answer = get(
        &registry.url("/v2/private/secret/manifests/latest"),
        Some(&bearer(&alice)),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(sha256(&answer.body), digest);
}

#[test]
fn a_wrong_password_is_refused_by_the_token_server() {
    // A bad login fails at the token server, before the registry sees it.
    let registry = Registry::start_with_token_auth(&[ALICE], &["library/busybox"]);
    let scope = "repository:library/busybox:pull";
    let answer = token_answer(&registry, scope, Some(("alice", "looking-glass")));
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert!(answer.text().contains("incorrect username or password"));
    let answer = token_answer(&registry, scope, Some(("mallory", "wonderland")));
    assert_eq!(answer.status, 401, "an unknown user");
    assert_eq!(token_answer(&registry, scope, Some(ALICE)).status, 200);
}

#[test]
fn the_registry_checks_the_tokens_signature() {
    // A token whose claims were edited to grant more keeps its old signature:
    // the registry must refuse it, or the whole scheme is decoration.
    let image = images::hello_world().unwrap();
    let registry = Registry::start_with_token_auth(&[ALICE], &[]);
    registry.push("private/secret", "latest", &image);
    let anonymous = token(&registry, "repository:private/secret:pull", None);
    let mut claims = claims(&anonymous);
    claims["access"][0]["actions"] = serde_json::json!(["pull"]);
    let parts: Vec<&str> = anonymous.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    let answer = get(
        &registry.url("/v2/private/secret/manifests/latest"),
        Some(&bearer(&forged)),
    );
    assert_eq!(answer.status, 401, "{}", answer.text());
    // The same request with an honestly signed token succeeds.
    let alice = token(&registry, "repository:private/secret:pull", Some(ALICE));
    let answer = get(
        &registry.url("/v2/private/secret/manifests/latest"),
        Some(&bearer(&alice)),
    );
    assert_eq!(answer.status, 200);
}

#[test]
fn the_harness_pushes_in_token_mode_with_one_token_per_repository() {
    // The harness's own push logs in, and reuses its token for every blob and
    // the manifest, as chapter 7's client will be expected to.
    let image = images::busybox().unwrap();
    let registry = Registry::start_with_token_auth(&[ALICE], &["minibox/busybox"]);
    assert_eq!(registry.token_requests(), 0);
    let digest = registry.push("minibox/busybox", "latest", &image);
    assert_eq!(registry.token_requests(), 1, "one token for the whole push");
    registry.push("minibox/busybox", "again", &image);
    assert_eq!(registry.token_requests(), 1, "and reused for the next");

    let anonymous = token(&registry, "repository:minibox/busybox:pull", None);
    assert_eq!(registry.token_requests(), 2);
    let layer = &image.layers[0].blob.digest;
    let answer = get(
        &registry.url(&format!("/v2/minibox/busybox/blobs/{layer}")),
        Some(&bearer(&anonymous)),
    );
    assert_eq!(answer.status, 200);
    assert_eq!(&sha256(&answer.body), layer);
    let answer = get(
        &registry.url("/v2/minibox/busybox/manifests/again"),
        Some(&bearer(&anonymous)),
    );
    assert_eq!(sha256(&answer.body), digest);
    // An anonymous token cannot push, even to a public repository.
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let response = agent
        .post(registry.url("/v2/minibox/busybox/blobs/uploads/"))
        .header("Authorization", bearer(&anonymous))
        .send_empty()
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[test]
fn basic_auth_needs_a_user_on_every_request() {
    // htpasswd mode: no challenge dance, the password travels with every request.
    let image = images::hello_world().unwrap();
    let registry = Registry::start_with_basic_auth(&[ALICE, ("bob", "builder")]);
    assert_eq!(registry.token_realm(), None);
    assert_eq!(registry.token_requests(), 0);
    let digest = registry.push("library/hello-world", "latest", &image);
    let url = registry.url("/v2/library/hello-world/manifests/latest");

    let answer = get(&url, None);
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert_eq!(
        answer.challenge.as_deref(),
        Some(r#"Basic realm="minibox-registry""#)
    );
    for (name, password) in [ALICE, ("bob", "builder")] {
        let answer = get(&url, Some(&registry_auth::basic(name, password)));
        assert_eq!(answer.status, 200, "{name}: {}", answer.text());
        assert_eq!(sha256(&answer.body), digest);
    }
    let answer = get(&url, Some(&registry_auth::basic("alice", "looking-glass")));
    assert_eq!(answer.status, 401);
    let answer = get(&url, Some(&registry_auth::basic("mallory", "wonderland")));
    assert_eq!(answer.status, 401);
}

#[test]
fn dropping_an_authenticated_registry_leaves_nothing_behind() {
    // Both modes: the registry process is gone, the token server no longer
    // answers, and the certificate, htpasswd and storage are removed.
    for token_mode in [true, false] {
        let registry = if token_mode {
            Registry::start_with_token_auth(&[ALICE], &[])
        } else {
            Registry::start_with_basic_auth(&[ALICE])
        };
        registry.push("minibox/hello", "latest", &images::hello_world().unwrap());
        let (pid, dir, realm) = (registry.pid(), registry.dir(), registry.token_realm());
        let proc = std::path::PathBuf::from(format!("/proc/{pid}"));
        assert!(proc.exists());
        let file = dir.join(if token_mode { "token.crt" } else { "htpasswd" });
        assert!(file.is_file(), "{} is missing", file.display());
        drop(registry);
        assert!(!proc.exists(), "docker-registry {pid} still runs");
        assert!(!dir.exists(), "{} left behind", dir.display());
        if let Some(realm) = realm {
            let address = realm
                .trim_start_matches("http://")
                .trim_end_matches("/token");
            assert!(
                std::net::TcpStream::connect(address).is_err(),
                "the token server still listens on {address}"
            );
        }
    }
}
