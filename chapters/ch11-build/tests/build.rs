//! Chapter 11 end to end, for real: root, the real kernel, a real registry
//! (with token authentication where pushing is tested), real tools reading
//! what minibox made (`skopeo`, `umoci`). Builds run their `RUN`s with
//! `--network none`, so nothing here touches the host's network; the
//! registry is on 127.0.0.1.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use harness::env::Env;
use harness::registry::Registry;
use serde_json::Value;

/// The chapter's binary.
const MINIBOX: &str = env!("CARGO_BIN_EXE_ch11-build");

/// A copy of the chapter's example context (tests change its files): a
/// multi-stage Dockerfile whose first stage makes a program (a script, from
/// a template, by `sed`) and whose second copies it onto busybox, deletes a
/// file of the base, and sets what a container of it starts as; a data
/// directory; and a secret that `.dockerignore` keeps out.
fn context() -> tempfile::TempDir {
    let example = harness::transcript::workspace_root().join("chapters/ch11-build/examples/greet");
    let dir = tempfile::tempdir().unwrap();
    let copied = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", example.display()))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(copied.success(), "copying {}", example.display());
    dir
}

/// `minibox run --rm --network none ARGS`, to its end.
fn run_image(env: &Env, args: &[&str]) -> harness::process::Run {
    let mut all = vec!["run", "--rm", "--network", "none"];
    all.extend_from_slice(args);
    env.minibox(&all)
}

/// `minibox login` to `host` as alice, the password on stdin.
fn login(env: &Env, host: &str) {
    let mut command = env.command(&["login", "-u", "alice", "--password-stdin", host]);
    command.stdin(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"wonderland\n")
        .unwrap();
    harness::process::wait(child, &["login"]).expect(0);
}

fn registry() -> Registry {
    let registry = Registry::start();
    registry.push_fixtures().expect("fixtures");
    registry
}

fn env(test: &str, registry: &Registry) -> Env {
    Env::builder(MINIBOX, "ch11", test).mirror(registry).build()
}

/// `minibox build --network none -t TAG CONTEXT`, to its end.
fn build(env: &Env, tag: &str, context: &Path) -> harness::process::Run {
    let context = context.to_str().unwrap();
    env.minibox(&["build", "--network", "none", "-t", tag, context])
}

/// The image `name`'s config, from the store's files.
fn config(env: &Env, name: &str) -> Value {
    let index: Value =
        serde_json::from_slice(&fs::read(env.root().join("images.json")).unwrap()).unwrap();
    let digest = index[name]["config"].as_str().expect("the image is named");
    let hex = digest.strip_prefix("sha256:").unwrap();
    serde_json::from_slice(&fs::read(env.root().join("blobs/sha256").join(hex)).unwrap()).unwrap()
}

/// The image ID `Successfully built` names.
fn built_id(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Successfully built "))
        .unwrap_or_else(|| panic!("no image ID in:\n{stdout}"))
        .to_string()
}

/// Nothing a build may leave: no container, no workspace, no half layer.
fn assert_clean(env: &Env) {
    let ps = env.minibox(&["ps", "-a", "-q"]).expect(0);
    assert_eq!(ps.stdout, "", "containers left behind");
    let workspaces: Vec<_> = fs::read_dir(env.root().join("build"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        workspaces.is_empty(),
        "build workspaces left: {workspaces:?}"
    );
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
}

#[test]
fn a_multi_stage_build_runs_and_a_second_build_is_all_cache() {
    if !harness::require_root("ch11 build") {
        return;
    }
    let registry = registry();
    let env = env("build", &registry);
    let context = context();
    let first = build(&env, "app", context.path()).expect(0);
    assert!(
        first.stdout.contains("Step 1/19 : ARG BASE=busybox") || first.stdout.contains("Step 1/"),
        "{}",
        first.stdout
    );
    assert!(
        first.stdout.contains(" ---> Running in "),
        "{}",
        first.stdout
    );
    assert!(
        first.stdout.ends_with("Successfully tagged app:latest\n"),
        "{}",
        first.stdout
    );
    let id = built_id(&first.stdout);

    let run = run_image(&env, &["app"]).expect(0);
    assert_eq!(run.stdout, "hello minibox world from /app as 1000\n");
    let deleted = run_image(&env, &["--entrypoint", "ls", "app", "/bin/vi"]);
    assert_ne!(
        deleted.status, 0,
        "the RUN's deletion did not reach the image"
    );
    let data = run_image(
        &env,
        &["--entrypoint", "cat", "app", "/data/note", "/data/file.txt"],
    )
    .expect(0);
    assert_eq!(data.stdout, "built\none\n");

    let config = config(&env, "docker.io/library/app:latest");
    let settings = &config["config"];
    assert_eq!(settings["User"], "1000:1000");
    assert_eq!(settings["WorkingDir"], "/app");
    assert_eq!(settings["Cmd"], serde_json::json!(["world"]));
    assert_eq!(settings["Labels"]["org.example.chapter"], "11");
    assert!(settings["ExposedPorts"]["8080/tcp"].is_object());
    assert!(
        settings["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "GREETING=hello")
    );
    // Four steps made layers (COPY --from, RUN, COPY, WORKDIR), on top of
    // busybox's, and the history says which.
    let layers = config["rootfs"]["diff_ids"].as_array().unwrap().len();
    let base = self::config(&env, "docker.io/library/busybox:latest")["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(layers, base + 4);
    let history = config["history"].as_array().unwrap();
    let with_layers = history.iter().filter(|h| h["empty_layer"] != true).count();
    assert_eq!(with_layers, 4, "{history:?}");

    // Again: every step from the cache, the same image.
    let second = build(&env, "app", context.path()).expect(0);
    assert!(!second.stdout.contains("Running in"), "{}", second.stdout);
    assert_eq!(built_id(&second.stdout), id);
    // A touched file (its time only) changes nothing; a changed one
    // rebuilds its step and every later one.
    let file = context.path().join("data/file.txt");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    let touched = build(&env, "app", context.path()).expect(0);
    assert_eq!(built_id(&touched.stdout), id);
    fs::write(&file, "two\n").unwrap();
    let changed = build(&env, "app", context.path()).expect(0);
    let cached = changed.stdout.matches("Using cache").count();
    let total = second.stdout.matches("Using cache").count();
    assert!(cached < total && cached > 0, "{}", changed.stdout);
    assert_ne!(built_id(&changed.stdout), id);
    let data = run_image(&env, &["--entrypoint", "cat", "app", "/data/file.txt"]).expect(0);
    assert_eq!(data.stdout, "two\n");
    assert_clean(&env);
}

#[test]
fn source_date_epoch_makes_two_builds_the_same_image() {
    if !harness::require_root("ch11 reproducible builds") {
        return;
    }
    let registry = registry();
    let ids: Vec<String> = (0..2)
        .map(|i| {
            let env = env(&format!("epoch{i}"), &registry);
            let context = context(); // another directory, other file times
            std::thread::sleep(std::time::Duration::from_millis(1100));
            let context_dir = context.path().to_str().unwrap();
            let mut command =
                env.command(&["build", "--network", "none", "-t", "app", context_dir]);
            command.env("SOURCE_DATE_EPOCH", "1700000000");
            let out = harness::process::wait(command.spawn().unwrap(), &["build"]).expect(0);
            let config = config(&env, "docker.io/library/app:latest");
            assert_eq!(config["created"], "2023-11-14T22:13:20Z");
            assert_clean(&env);
            built_id(&out.stdout)
        })
        .collect();
    assert_eq!(ids[0], ids[1]);
}

#[test]
fn bad_input_gets_one_line_and_leaves_nothing() {
    if !harness::require_root("ch11 bad input") {
        return;
    }
    let registry = registry();
    let env = env("bad", &registry);
    env.minibox(&["pull", "--quiet", "busybox"]).expect(0);
    let cases: [(&str, &str); 5] = [
        (
            "FROM busybox\nFOO bar\n",
            "dockerfile parse error on line 2: unknown instruction: FOO",
        ),
        (
            "FROM busybox\nCOPY ../outside /x\n",
            "outside the build context",
        ),
        ("FROM busybox\nCOPY missing.txt /x\n", "missing.txt"),
        ("FROM busybox\nCOPY secret.txt /x\n", "secret.txt"),
        (
            "FROM busybox\nRUN exit 3\n",
            "The command '/bin/sh -c exit 3' returned a non-zero code: 3",
        ),
    ];
    for (dockerfile, message) in cases {
        let context = context();
        fs::write(context.path().join("Dockerfile"), dockerfile).unwrap();
        let out = build(&env, "bad", context.path());
        assert_eq!(out.status, 1, "{dockerfile}: {}", out.stderr);
        assert!(out.stderr.contains(message), "{dockerfile}: {}", out.stderr);
        assert_eq!(
            out.stderr.lines().count(),
            1,
            "{dockerfile}: {}",
            out.stderr
        );
        let images = env.minibox(&["images", "-q", "bad"]).expect(0);
        assert_eq!(images.stdout, "", "{dockerfile}: an image was tagged");
        assert_clean(&env);
    }
    let context = context();
    let out = env.minibox(&[
        "build",
        "--build-arg",
        "=x",
        context.path().to_str().unwrap(),
    ]);
    assert_ne!(out.status, 0);
    assert!(out.stderr.contains("--build-arg"), "{}", out.stderr);
    assert_clean(&env);
}

#[test]
fn a_pushed_image_is_pulled_back_run_and_read_by_skopeo_and_umoci() {
    if !harness::require_root("ch11 push") {
        return;
    }
    let registry =
        Registry::start_with_token_auth(&[("alice", "wonderland")], &["library/busybox"]);
    registry.push_fixtures().expect("fixtures");
    let host = registry.host();
    let name = format!("{host}/alice/app:1");
    let builder = Env::builder(MINIBOX, "ch11", "push")
        .mirror(&registry)
        .credentials()
        .build();
    // Without logging in, the registry refuses the push.
    let context = context();
    build(&builder, &name, context.path()).expect(0);
    let refused = builder.minibox(&["push", &name]);
    assert_eq!(refused.status, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("denied"), "{}", refused.stderr);
    login(&builder, &host);
    let pushed = builder.minibox(&["push", &name]).expect(0);
    assert!(
        pushed.stdout.starts_with(&format!(
            "The push refers to repository [{host}/alice/app]\n"
        )),
        "{}",
        pushed.stdout
    );
    assert!(pushed.stdout.contains(": Pushed\n"), "{}", pushed.stdout);
    let last = pushed.stdout.lines().last().unwrap().to_string();
    assert!(
        last.starts_with("1: digest: sha256:") && last.contains(" size: "),
        "{last}"
    );
    let again = builder.minibox(&["push", &name]).expect(0);
    assert!(!again.stdout.contains(": Pushed\n"), "{}", again.stdout);
    assert!(
        again.stdout.contains(": Layer already exists\n"),
        "{}",
        again.stdout
    );

    // An empty store pulls it back and runs it.
    let fresh = Env::builder(MINIBOX, "ch11", "pulled")
        .mirror(&registry)
        .credentials()
        .build();
    login(&fresh, &host);
    let run = run_image(&fresh, &[&name]).expect(0);
    assert_eq!(run.stdout, "hello minibox world from /app as 1000\n");

    // skopeo sees our config and layers; umoci unpacks the same tree.
    let creds = "alice:wonderland";
    let inspect = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--creds", creds])
        .arg(format!("docker://{name}"))
        .output()
        .expect("skopeo");
    assert!(
        inspect.status.success(),
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    let seen: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let ours = config(&builder, &format!("{host}/alice/app:1"));
    assert_eq!(
        seen["Layers"].as_array().unwrap().len(),
        ours["rootfs"]["diff_ids"].as_array().unwrap().len()
    );
    assert_eq!(seen["Labels"]["org.example.chapter"], "11");
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("oci");
    let copied = Command::new("skopeo")
        .args([
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            creds,
            "--policy",
        ])
        .arg(policy(work.path()))
        .arg(format!("docker://{name}"))
        .arg(format!("oci:{}:app", layout.display()))
        .output()
        .expect("skopeo copy");
    assert!(
        copied.status.success(),
        "{}",
        String::from_utf8_lossy(&copied.stderr)
    );
    let bundle = work.path().join("bundle");
    let unpacked = Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:app", layout.display()))
        .arg(&bundle)
        .output()
        .expect("umoci");
    assert!(
        unpacked.status.success(),
        "{}",
        String::from_utf8_lossy(&unpacked.stderr)
    );
    let rootfs = bundle.join("rootfs");
    assert!(rootfs.join("usr/local/bin/greet").is_file());
    assert!(rootfs.join("bin/sh").exists());
    assert!(
        !rootfs.join("bin/vi").exists(),
        "the whiteout did not reach umoci"
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("data/note")).unwrap(),
        "built\n"
    );

    // podman pulls it and runs it, and it says the same.
    if harness::podman::installed() {
        let creds = format!("--creds {creds}");
        let podman = harness::podman::run(work.path(), &name, &[&creds], &[]);
        assert!(
            podman.status.success(),
            "podman: {}",
            String::from_utf8_lossy(&podman.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&podman.stdout),
            "hello minibox world from /app as 1000\n"
        );
    } else {
        harness::skip(
            "ch11 podman runs the pushed image",
            "podman is not installed",
        );
    }
    assert_clean(&builder);
    assert_clean(&fresh);
}

/// A signature policy that accepts anything, for `skopeo copy`.
fn policy(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("policy.json");
    fs::write(&path, r#"{"default":[{"type":"insecureAcceptAnything"}]}"#).unwrap();
    path
}

/// A layer larger than one chunk goes up in `PATCH`es, and a base layer the
/// registry has in another repository is mounted from there, not sent.
#[test]
fn a_large_layer_goes_up_in_chunks_and_the_base_layer_is_mounted() {
    if !harness::require_root("ch11 chunked push and mount") {
        return;
    }
    let registry =
        Registry::start_with_token_auth(&[("alice", "wonderland")], &["library/busybox"]);
    registry.push_fixtures().expect("fixtures");
    let host = registry.host();
    let builder = Env::builder(MINIBOX, "ch11", "chunks")
        .credentials()
        .build();
    login(&builder, &host);
    let base = format!("{host}/library/busybox");
    builder.minibox(&["pull", "--quiet", &base]).expect(0);
    let context = tempfile::tempdir().unwrap();
    fs::write(
        context.path().join("Dockerfile"),
        format!("FROM {base}\nRUN dd if=/dev/urandom of=/big bs=1M count=12 2>/dev/null && sha256sum /big > /big.sum\n"),
    )
    .unwrap();
    let name = format!("{host}/alice/big:1");
    build(&builder, &name, context.path()).expect(0);
    let pushed = builder.minibox(&["push", &name]).expect(0);
    let lines: Vec<&str> = pushed.stdout.lines().collect();
    assert!(
        lines[1].ends_with(": Pushed"),
        "the big layer: {}",
        pushed.stdout
    );
    assert!(
        lines[2].ends_with(": Mounted from library/busybox"),
        "the base layer: {}",
        pushed.stdout
    );

    let fresh = Env::builder(MINIBOX, "ch11", "chunks-pulled")
        .credentials()
        .build();
    login(&fresh, &host);
    let check = run_image(
        &fresh,
        &["--entrypoint", "sha256sum", &name, "-c", "/big.sum"],
    )
    .expect(0);
    assert_eq!(check.stdout, "/big: OK\n");
    assert_clean(&builder);
    assert_clean(&fresh);
}

/// `ADD` unpacks a local archive; `COPY --chown --chmod` sets owner and
/// mode; `ARG` takes `--build-arg`, and a `RUN` sees it; `SHELL`,
/// `STOPSIGNAL` and `VOLUME` reach the config.
#[test]
fn add_unpacks_archives_and_copy_sets_owners_and_modes() {
    if !harness::require_root("ch11 ADD and COPY flags") {
        return;
    }
    let registry = registry();
    let env = env("add", &registry);
    let context = tempfile::tempdir().unwrap();
    let dir = context.path();
    fs::create_dir_all(dir.join("tree/sub")).unwrap();
    fs::write(dir.join("tree/sub/inside.txt"), "from the archive\n").unwrap();
    let tar = Command::new("tar")
        .args(["-czf", "bundle.tar.gz", "-C", "tree", "."])
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(tar.success());
    fs::write(dir.join("script.sh"), "echo private\n").unwrap();
    fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\nARG FLAVOUR=plain\nADD bundle.tar.gz /opt/\n\
         COPY --chown=1000:1000 --chmod=700 script.sh /home/app/\n\
         SHELL [\"/bin/sh\", \"-ec\"]\nRUN echo \"$FLAVOUR\" > /flavour\n\
         STOPSIGNAL SIGQUIT\nVOLUME /data\n",
    )
    .unwrap();
    let context_dir = dir.to_str().unwrap();
    env.minibox(&[
        "build",
        "--network",
        "none",
        "-q",
        "--build-arg",
        "FLAVOUR=spicy",
        "-t",
        "add",
        context_dir,
    ])
    .expect(0);
    let shown = run_image(
        &env,
        &[
            "add",
            "sh",
            "-c",
            "cat /opt/sub/inside.txt /flavour; stat -c '%u:%g %a' /home/app/script.sh",
        ],
    )
    .expect(0);
    assert_eq!(shown.stdout, "from the archive\nspicy\n1000:1000 700\n");
    let config = config(&env, "docker.io/library/add:latest");
    assert_eq!(config["config"]["StopSignal"], "SIGQUIT");
    assert!(config["config"]["Volumes"]["/data"].is_object());
    assert_eq!(
        config["config"]["Shell"],
        serde_json::json!(["/bin/sh", "-ec"])
    );
    // A build argument is not part of the image's environment.
    let env_list = config["config"]["Env"].as_array().unwrap();
    assert!(
        !env_list
            .iter()
            .any(|e| e.as_str().unwrap().starts_with("FLAVOUR="))
    );
    assert_clean(&env);
}
