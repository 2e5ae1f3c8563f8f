//! Checkers for chapter 8's exercises. They are ignored by plain `cargo test`: run
//! them with `cargo xtask exercise ch08` (or `cargo xtask exercise ch08 group-add`).
//! The book's chapter 8 page describes each exercise; reference solutions are in
//! `book/exercises/ch08-command-override/`.
//!
//! Every checker starts the real registry with the fixture images
//! (`harness::registry`), serves it as the Docker Hub mirror
//! (`MINIBOX_REGISTRY_MIRROR`), and runs the real binary in the harness's test
//! environment (`harness::env::Env`): a store of its own in a temporary
//! directory, removed at the end with whatever a half-done solution left in it;
//! no credentials file (`MINIBOX_CONFIG` and `DOCKER_CONFIG` point nowhere); and
//! a cgroup parent where the chapter's tests put theirs (below this process's own
//! cgroup on these machines), in which no cgroup may be left at the end. The images a checker needs beyond the fixtures
//! are built here, not taken from `tests/common`, so that the chapter's tests
//! can change without breaking the exercises.

use std::process::Output;
use std::time::Duration;

use harness::env::Env;
use harness::images::{self, LayerBuilder};
use harness::registry::Registry;

const MINIBOX: &str = env!("CARGO_BIN_EXE_ch08-command-override");

/// The image `minibox/groups`'s users: `minibox-app` (4321) and a `nobody`
/// whose numbers differ from the host's (65534), so a checker can tell whose
/// files were read.
const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                      nobody:x:4000:4000:nobody:/nonexistent:/bin/false\n\
                      minibox-app:x:4321:4321:app:/home/minibox-app:/bin/sh\n";
/// Its groups: `minibox-app` is also in `minibox-extra` (5555); `nogroup` is
/// 4000 here, not the host's 65534; root is in no group but its own.
const GROUP: &str = "root:x:0:\n\
                     nogroup:x:4000:\n\
                     minibox-app:x:4321:\n\
                     minibox-extra:x:5555:minibox-app\n";

/// The fixture registry, and the harness's test environment for one checker: a
/// store (`MINIBOX_ROOT`), no credentials, and a cgroup parent in which no
/// cgroup may be left at the end.
struct Store {
    registry: Registry,
    env: Env,
}

impl Store {
    fn new(exercise: &str) -> Store {
        let registry = Registry::start();
        registry
            .push_fixtures()
            .expect("pushing the fixture images");
        let env = Env::builder(MINIBOX, "ch08", &format!("exercise-{exercise}"))
            .mirror(&registry)
            .build();
        Store { registry, env }
    }

    /// Runs minibox with this store and the registry as Docker Hub's mirror.
    /// Every command below ends in a few seconds; one still running after 60 s
    /// has its container's PID 1 killed (by PID), then minibox itself, and fails
    /// the checker.
    fn minibox(&self, args: &[&str]) -> Output {
        let child = self.env.command(args).spawn().expect("run minibox");
        harness::process::wait_with_deadline(
            child,
            &format!("minibox {}", args.join(" ")),
            Duration::from_secs(60),
        )
    }

    /// `minibox pull -q IMAGE`, which must work.
    fn pull(&self, image: &str) {
        let out = self.minibox(&["pull", "-q", image]);
        assert!(
            out.status.success(),
            "expected `minibox pull {image}` to work, but {}",
            harness::transcript::seen(&out)
        );
    }

    /// Whether the store's index (images.json) names `reference` (canonical).
    fn has(&self, reference: &str) -> bool {
        let path = self.env.root().join("images.json");
        let index: serde_json::Value = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{} is not an index: {e}", path.display())),
            Err(_) => return false,
        };
        index.get(reference).is_some()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Fails the checker when clap refused the command line `command`: the
/// exercise's flag or subcommand is not there yet.
fn assert_parsed(out: &Output, command: &str) {
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains("unexpected argument") && !stderr.contains("unrecognized subcommand"),
        "expected `{command}` to be accepted, but minibox refused it: {}",
        stderr.trim_end()
    );
}

/// The groups `id -G` printed: the process's group, then its supplementary
/// groups.
fn groups(out: &Output) -> Vec<u32> {
    let stdout = text(&out.stdout);
    stdout
        .split_whitespace()
        .map(|g| {
            g.parse().unwrap_or_else(|_| {
                panic!("expected `id -G` to print group IDs, but it printed {stdout:?}")
            })
        })
        .collect()
}

/// `groups` as a sorted set, for comparing without caring about order.
fn sorted(mut groups: Vec<u32>) -> Vec<u32> {
    groups.sort_unstable();
    groups.dedup();
    groups
}

/// Exercise `group-add`: `minibox run --group-add GROUP` (repeatable) adds
/// supplementary groups to the container's process, as `docker run
/// --group-add` does: a name is looked up in the *image's* `/etc/group`, a
/// number is taken as it is (it need not be there). They come on top of the
/// user's own groups, with `-u` as without; an unknown name is minibox's error
/// (status 125, one line naming it) before the program starts.
#[test]
#[ignore = "exercise: cargo xtask exercise ch08 group-add"]
fn exercise_group_add() {
    if !harness::require_root("ch08 exercise group-add") {
        return;
    }
    let store = Store::new("group-add");
    let mut layers = images::busybox().expect("the busybox image").layers;
    layers.push(
        LayerBuilder::default()
            .dir("etc/")
            .file("etc/passwd", PASSWD)
            .file("etc/group", GROUP)
            .build(),
    );
    store
        .registry
        .push("minibox/groups", "latest", &images::image(layers, &["sh"]));
    store.pull("minibox/groups");

    // As root (the image names no user): group 0, plus a name and a number.
    let args = [
        "run",
        "--quiet",
        "--group-add",
        "minibox-extra",
        "--group-add",
        "777",
        "minibox/groups",
        "id",
        "-G",
    ];
    let out = store.minibox(&args);
    assert_parsed(&out, "minibox run --group-add ...");
    assert!(
        out.status.success(),
        "expected `minibox {}` to work, but {}",
        args.join(" "),
        harness::transcript::seen(&out)
    );
    let got = groups(&out);
    assert!(
        got.first() == Some(&0),
        "expected root's own group (0) to stay the process's group, first in `id -G`, but \
         `id -G` printed {got:?}"
    );
    assert!(
        sorted(got.clone()) == [0, 777, 5555],
        "expected `--group-add minibox-extra --group-add 777` as root to give the groups 0 \
         (root's), 5555 (minibox-extra in the image's /etc/group) and 777 (a number, though no \
         group has it), but `id -G` printed {got:?}"
    );

    // As a user with groups of its own: they stay, the added ones join them.
    // The name is the image's: nogroup is 4000 there (the host's is 65534).
    let args = [
        "run",
        "--quiet",
        "-u",
        "minibox-app",
        "--group-add",
        "nogroup",
        "--group-add",
        "777",
        "minibox/groups",
        "id",
        "-G",
    ];
    let out = store.minibox(&args);
    assert!(
        out.status.success(),
        "expected `minibox {}` to work, but {}",
        args.join(" "),
        harness::transcript::seen(&out)
    );
    let got = groups(&out);
    assert!(
        got.first() == Some(&4321),
        "expected minibox-app's own group (4321) to stay the process's group, first in \
         `id -G`, but `id -G` printed {got:?}"
    );
    assert!(
        sorted(got.clone()) == [777, 4000, 4321, 5555],
        "expected `-u minibox-app --group-add nogroup --group-add 777` to give the groups 4321 \
         (its own), 5555 (minibox-extra, which lists it), 4000 (nogroup in the image's \
         /etc/group, not the host's) and 777, but `id -G` printed {got:?}"
    );

    // A name the image's /etc/group lacks: one line naming it, status 125.
    let out = store.minibox(&[
        "run",
        "--quiet",
        "--group-add",
        "minibox-nope",
        "minibox/groups",
        "true",
    ]);
    let stderr = text(&out.stderr);
    assert!(
        out.status.code() == Some(125)
            && stderr.contains("minibox-nope")
            && stderr.lines().count() == 1,
        "expected `--group-add minibox-nope` (no such group in the image) to fail with status \
         125 and one line naming the group, but {}",
        harness::transcript::seen(&out)
    );
}

/// Exercise `image-config`: `minibox image-config IMAGE` prints the startup
/// fields of an image in the store, one `Name: JSON` line each, in this order:
/// `Entrypoint`, `Cmd`, `Env`, `WorkingDir`, `User` (`null` when the image
/// sets none). It reads the store only: an image not pulled is `No such image`
/// and status 1, and is not pulled.
#[test]
#[ignore = "exercise: cargo xtask exercise ch08 image-config"]
fn exercise_image_config() {
    if !harness::require_root("ch08 exercise image-config") {
        return;
    }
    let store = Store::new("image-config");
    store.pull("minibox/echo");
    store.pull("hello-world");

    let out = store.minibox(&["image-config", "minibox/echo"]);
    assert_parsed(&out, "minibox image-config minibox/echo");
    assert!(
        out.status.success(),
        "expected `minibox image-config minibox/echo` to work, but {}",
        harness::transcript::seen(&out)
    );
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l.split_once(": ").map_or(*l, |(name, _)| name))
        .collect();
    assert!(
        names == ["Entrypoint", "Cmd", "Env", "WorkingDir", "User"],
        "expected one `Name: JSON` line per field, Entrypoint, Cmd, Env, WorkingDir, User, \
         in this order, but `image-config minibox/echo` printed:\n{stdout}"
    );
    assert!(
        lines[0] == r#"Entrypoint: ["echo","hello"]"#,
        "expected minibox/echo's Entrypoint as compact JSON, `Entrypoint: [\"echo\",\"hello\"]`, \
         but the line is {:?}",
        lines[0]
    );
    assert!(
        lines[1] == r#"Cmd: ["world"]"#,
        "expected minibox/echo's Cmd as compact JSON, `Cmd: [\"world\"]`, but the line is {:?}",
        lines[1]
    );
    let env: Vec<String> = serde_json::from_str(&lines[2]["Env: ".len()..]).unwrap_or_else(|e| {
        panic!(
            "expected the Env line to be a JSON list of strings, but it is {:?} ({e})",
            lines[2]
        )
    });
    assert!(
        env.iter().any(|e| e.starts_with("PATH=/")),
        "expected minibox/echo's Env to set PATH, but the line is {:?}",
        lines[2]
    );
    assert!(
        lines[3..] == ["WorkingDir: null", "User: null"],
        "expected `WorkingDir: null` and `User: null` (minibox/echo sets neither: null, not an \
         empty string), but the lines are {:?}",
        &lines[3..]
    );

    let out = store.minibox(&["image-config", "hello-world"]);
    assert!(
        out.status.success(),
        "expected `minibox image-config hello-world` to work, but {}",
        harness::transcript::seen(&out)
    );
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines.get(..2) == Some(&["Entrypoint: null", r#"Cmd: ["/hello"]"#][..]),
        "expected hello-world's `Entrypoint: null` (it has none) and `Cmd: [\"/hello\"]`, \
         but `image-config hello-world` printed:\n{stdout}"
    );

    // In the registry, but not in the store: an error, and no pull.
    let out = store.minibox(&["image-config", "minibox/layered"]);
    let stderr = text(&out.stderr);
    assert!(
        out.status.code() == Some(1)
            && stderr.contains("No such image: minibox/layered")
            && stderr.lines().count() == 1,
        "expected `minibox image-config minibox/layered` (not pulled) to fail with status 1 \
         and one line `No such image: minibox/layered...`, but {}",
        harness::transcript::seen(&out)
    );
    assert!(
        !store.has("docker.io/minibox/layered:latest"),
        "expected image-config not to pull, but minibox/layered is in the store now"
    );
}
