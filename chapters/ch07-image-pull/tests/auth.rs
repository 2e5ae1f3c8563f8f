//! Logging in, for real: the registry server configured with token
//! authentication (the harness's token server signs ES256 JWTs, as Docker
//! Hub's auth.docker.io does) or with an htpasswd file (Basic), and the
//! chapter's binary pulling from it anonymously, without credentials, with
//! `minibox login`'s and with Docker's own config.json.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::Env;
use harness::images;
use harness::registry::Registry;

const USER: (&str, &str) = ("alice", "wonderland");

fn login(env: &Env, registry: &Registry, password: &str) -> harness::process::Run {
    let mut child = env
        .command(&["login", "-u", USER.0, "--password-stdin", &registry.host()])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    common::wait(child, &["login"])
}

/// Docker Hub's scheme: anonymous pulls of a public repository get a token,
/// a private repository refuses them with one "unauthorized" line, and after
/// `minibox login` the same pull works. A pull asks the token server once, not
/// once per request.
#[test]
fn token_auth_anonymous_public_private_and_logged_in() {
    if !harness::require_root("ch07 token auth") {
        return;
    }
    let registry = Registry::start_with_token_auth(&[USER], &["public/busybox"]);
    let image = images::busybox().unwrap();
    registry.push("public/busybox", "latest", &image);
    registry.push("private/busybox", "latest", &image);
    let env = common::env("token", None);

    let before = registry.token_requests();
    let public = format!("{}/public/busybox", registry.host());
    env.minibox(&["pull", &public]).expect(0);
    assert_eq!(
        registry.token_requests() - before,
        1,
        "one token for the manifest, the config and the layer"
    );

    let private = format!("{}/private/busybox", registry.host());
    let refused = env.minibox(&["pull", &private]).expect(1);
    assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
    assert!(
        refused.stderr.starts_with(&format!(
            "minibox: pull access denied for {}/private/busybox, repository does not exist or may require 'minibox login': unauthorized",
            registry.host()
        )),
        "{}",
        refused.stderr
    );

    let wrong = login(&env, &registry, "not-the-password").expect(1);
    assert!(
        wrong.stderr.contains("refused the credentials"),
        "{}",
        wrong.stderr
    );
    assert!(
        !env.config().unwrap().join("config.json").exists(),
        "nothing saved"
    );

    let ok = login(&env, &registry, USER.1).expect(0);
    assert_eq!(ok.stdout, "Login Succeeded\n");
    let saved = std::fs::read_to_string(env.config().unwrap().join("config.json")).unwrap();
    assert!(
        saved.contains(&registry.host()) && !saved.contains(USER.1),
        "base64, not plain: {saved}"
    );
    env.minibox(&["pull", &private]).expect(0);
    env.minibox(&["run", "--quiet", "--pull", "never", &private, "true"])
        .expect(0);

    let logout = env.minibox(&["logout", &registry.host()]).expect(0);
    assert!(logout.stdout.starts_with("Removing login credentials for"));
    let other = common::env("token-after-logout", None);
    std::fs::copy(
        env.config().unwrap().join("config.json"),
        other.config().unwrap().join("config.json"),
    )
    .unwrap();
    other.minibox(&["pull", &private]).expect(1);
}

/// An htpasswd registry asks for Basic credentials on every request: without
/// them the pull fails, and credentials from Docker's own
/// `~/.docker/config.json` are used as they are.
#[test]
fn basic_auth_with_docker_config_credentials() {
    if !harness::require_root("ch07 basic auth") {
        return;
    }
    let registry = Registry::start_with_basic_auth(&[USER]);
    registry.push("team/busybox", "v1", &images::busybox().unwrap());
    let env = common::env("basic", None);
    let reference = format!("{}/team/busybox:v1", registry.host());

    let refused = env.minibox(&["pull", &reference]).expect(1);
    assert!(
        refused.stderr.contains("unauthorized"),
        "{}",
        refused.stderr
    );
    assert_eq!(refused.stderr.lines().count(), 1);

    let docker = env.config().unwrap().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(
        docker.join("config.json"),
        format!(
            r#"{{"auths": {{"http://{}": {{"auth": "{}"}}}}}}"#,
            registry.host(),
            "YWxpY2U6d29uZGVybGFuZA==" // alice:wonderland
        ),
    )
    .unwrap();
    let pull = env.minibox(&["pull", &reference]).expect(0);
    assert!(
        pull.stdout.contains("Status: Downloaded newer image for"),
        "{}",
        pull.stdout
    );

    let wrong = login(&env, &registry, "nope").expect(1);
    assert!(
        wrong.stderr.contains("incorrect username or password"),
        "{}",
        wrong.stderr
    );
    login(&env, &registry, USER.1).expect(0);
}
