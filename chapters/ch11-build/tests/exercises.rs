//! Checkers for chapter 11's exercises. They are ignored by plain `cargo test`:
//! run them with `cargo xtask exercise ch11` (or `cargo xtask exercise ch11
//! history`). The book's chapter 11 page describes each exercise; reference
//! solutions are in `book/exercises/ch11-build/`.
//!
//! Every checker starts the real registry with busybox, builds the chapter's
//! example context into a store of its own (`harness::env::Env`), with
//! `RUN`s on `--network none`, and reads what the build made.

use std::fs;
use std::process::Output;

use harness::env::Env;
use harness::images;
use harness::registry::Registry;
use serde_json::Value;

const MINIBOX: &str = env!("CARGO_BIN_EXE_ch11-build");

/// The example context of the chapter.
fn example() -> String {
    harness::transcript::workspace_root()
        .join("chapters/ch11-build/examples/greet")
        .display()
        .to_string()
}

/// A store and a registry of one checker's own.
struct Machine {
    env: Env,
    _registry: Registry,
}

impl Machine {
    fn new(exercise: &str) -> Machine {
        let registry = Registry::start();
        let busybox = images::busybox().expect("the busybox image");
        registry.push("library/busybox", "latest", &busybox);
        let env = Env::builder(MINIBOX, "ch11", &format!("exercise-{exercise}"))
            .mirror(&registry)
            .build();
        Machine {
            env,
            _registry: registry,
        }
    }

    fn minibox(&self, args: &[&str]) -> Output {
        self.env.command(args).output().expect("minibox runs")
    }

    /// `minibox ARGS`, which must succeed.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.minibox(args);
        assert!(
            out.status.success(),
            "expected `minibox {}` to work, but {}",
            args.join(" "),
            harness::transcript::seen(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The config of the image `name` (`docker.io/library/NAME:latest`).
    fn config(&self, name: &str) -> Value {
        let index: Value =
            serde_json::from_slice(&fs::read(self.env.root().join("images.json")).unwrap())
                .unwrap();
        let key = format!("docker.io/library/{name}:latest");
        let digest = index[&key]["config"]
            .as_str()
            .unwrap_or_else(|| panic!("no image {key} in the store"));
        let blob = self.env.root().join("blobs/sha256").join(&digest[7..]);
        serde_json::from_slice(&fs::read(blob).unwrap()).unwrap()
    }
}

#[test]
#[ignore = "exercise: run with `cargo xtask exercise ch11 build-label`"]
fn exercise_build_label() {
    if !harness::require_root("ch11 exercise build-label") {
        return;
    }
    let machine = Machine::new("build-label");
    let context = example();
    machine.ok(&[
        "build",
        "--network",
        "none",
        "-q",
        "-t",
        "labelled",
        "--label",
        "org.example.by=exercise",
        "--label",
        "version=2",
        &context,
    ]);
    let labels = &machine.config("labelled")["config"]["Labels"];
    assert_eq!(
        labels["org.example.by"], "exercise",
        "expected the label org.example.by=exercise on the image, but its labels are {labels}"
    );
    assert_eq!(
        labels["version"], "2",
        "expected version=2, but the labels are {labels}"
    );
    assert_eq!(
        labels["org.example.chapter"], "11",
        "expected the Dockerfile's own LABEL org.example.chapter=11 to stay, but the labels are {labels}"
    );
    // `--target` stops at the first stage: the label goes on that image.
    machine.ok(&[
        "build",
        "--network",
        "none",
        "-q",
        "-t",
        "first",
        "--target",
        "build",
        "--label",
        "stage=1",
        &context,
    ]);
    let labels = &machine.config("first")["config"]["Labels"];
    assert_eq!(
        labels["stage"], "1",
        "expected stage=1 on the --target image, but {labels}"
    );
}

#[test]
#[ignore = "exercise: run with `cargo xtask exercise ch11 history`"]
fn exercise_history() {
    if !harness::require_root("ch11 exercise history") {
        return;
    }
    let machine = Machine::new("history");
    machine.ok(&[
        "build",
        "--network",
        "none",
        "-q",
        "-t",
        "greet",
        &example(),
    ]);
    let out = machine.ok(&["history", "greet"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"CREATED BY"),
        "expected a CREATED BY header, but history printed:\n{out}"
    );
    let expected = [
        "CMD [\"world\"]",
        "ENTRYPOINT [\"/usr/local/bin/greet\"]",
        "LABEL org.example.chapter=11",
        "EXPOSE 8080",
        "USER 1000:1000",
        "WORKDIR /app",
        "COPY data/ /data/",
    ];
    assert!(
        lines.len() > expected.len() && lines[1..=expected.len()] == expected,
        "expected the last steps first:\n{}\nbut history printed:\n{out}",
        expected.join("\n")
    );
    assert_eq!(
        lines.last(),
        Some(&"COPY --from=build /greet /usr/local/bin/greet"),
        "expected the final stage's first step last, but history printed:\n{out}"
    );
    let by_id = machine.ok(&["history", machine.ok(&["images", "-q", "greet"]).trim()]);
    assert_eq!(
        by_id, out,
        "history by image ID differs from history by name"
    );
}
