//! Finding a chapter's binary, and recording a demo the way a terminal shows it:
//! the command line, then stdout and stderr interleaved as they were written,
//! then (for some demos) `$ echo $?` and the exit status.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use crate::chapters::{Chapter, Demo};

/// The workspace's root directory (this crate lives in `crates/harness`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/harness sits two levels below the workspace root")
        .to_path_buf()
}

/// The directory cargo put the current executable's sibling binaries in
/// (`target/debug`), whether we are a binary or a test in `target/debug/deps`.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current executable");
    let dir = exe.parent().expect("executable has a directory");
    if dir.file_name().is_some_and(|name| name == "deps") {
        dir.parent().expect("deps has a parent").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// The path of a chapter's binary, built first if needed. `cargo test -p
/// minibox-e2e` does not rebuild other packages' binaries by itself, so without
/// this a test could run a stale one.
pub fn chapter_bin(package: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let dir = bin_dir();
    if !built.iter().any(|p| p == package) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.current_dir(workspace_root()).args([
            "build",
            "--quiet",
            "--package",
            package,
            "--bin",
            package,
        ]);
        if dir.file_name().is_some_and(|name| name == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "cargo build -p {package} failed");
        built.push(package.to_string());
    }
    dir.join(package)
}

/// Quotes a word for a POSIX shell only when it needs it, so transcripts read
/// like what a person types.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./,:=@%+".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// `minibox run sh -c 'exit 3'`: the command line as shown in transcripts.
pub fn display_command(args: &[&str]) -> String {
    let words: Vec<String> = std::iter::once("minibox".to_string())
        .chain(args.iter().map(|a| shell_quote(a)))
        .collect();
    words.join(" ")
}

/// What a demo printed and how it ended.
#[derive(Debug)]
pub struct Recorded {
    /// The terminal transcript, starting with `$ minibox ...`.
    pub transcript: String,
    /// minibox's exit status.
    pub status: i32,
}

/// What a chapter's demos run with. Every chapter's containers get their
/// cgroups below the test's own cgroup and their files in the workspace; a
/// chapter that pulls images also gets the fixture registry, as the mirror of
/// Docker Hub, and a store of its own, emptied first.
pub struct DemoSession {
    /// The fixture registry, for chapters that pull; stopped on drop.
    pub registry: Option<crate::registry::Registry>,
    /// The demos' `MINIBOX_ROOT`.
    pub store: PathBuf,
}

impl DemoSession {
    /// Prepares what `chapter`'s demos need.
    pub fn start(chapter: &Chapter) -> DemoSession {
        if !chapter.needs_registry {
            return DemoSession {
                registry: None,
                store: workspace_root().join("target/demo-store"),
            };
        }
        let store = workspace_root().join(format!("target/demo-store-{}", chapter.package));
        if store.exists() {
            std::fs::remove_dir_all(&store)
                .unwrap_or_else(|e| panic!("emptying {}: {e}", store.display()));
        }
        let registry = crate::registry::Registry::start();
        registry
            .push_fixtures()
            .unwrap_or_else(|e| panic!("pushing the fixture images: {e}"));
        DemoSession {
            registry: Some(registry),
            store,
        }
    }

    /// The environment the demos run with.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            // Containers' cgroups go below the test's own cgroup (from chapter 5
            // on), their files into the workspace (from chapter 6 on).
            (
                "MINIBOX_CGROUP_PARENT",
                crate::cgroups::test_parent("minibox-demos"),
            ),
            ("MINIBOX_ROOT", self.store.display().to_string()),
        ];
        if let Some(registry) = &self.registry {
            env.push(("MINIBOX_REGISTRY_MIRROR", registry.host()));
            // No credentials of the machine's user leak into a demo.
            env.push(("MINIBOX_CONFIG", "/nonexistent".into()));
            env.push(("DOCKER_CONFIG", "/nonexistent".into()));
        }
        env
    }
}

/// Runs `demo` of `chapter` with stdout and stderr on one pipe, as a terminal
/// would interleave them, and records the transcript.
pub fn record(chapter: &Chapter, demo: &Demo, session: &DemoSession) -> Recorded {
    let (output, status) =
        run_merged_with(&chapter_bin(chapter.package), demo.args, &session.env());
    let mut transcript = format!("$ {}\n{output}", display_command(demo.args));
    if demo.show_status {
        transcript.push_str(&format!("$ echo $?\n{status}\n"));
    }
    Recorded { transcript, status }
}

/// Runs `bin args...` with stdin from /dev/null and stdout and stderr on one pipe;
/// returns what it wrote and its exit status (128 + N if killed by signal N).
pub fn run_merged(bin: &Path, args: &[&str]) -> (String, i32) {
    let session = DemoSession {
        registry: None,
        store: workspace_root().join("target/demo-store"),
    };
    run_merged_with(bin, args, &session.env())
}

/// [`run_merged`] with the environment `env` added.
pub fn run_merged_with(bin: &Path, args: &[&str], env: &[(&str, String)]) -> (String, i32) {
    let (mut reader, writer) = std::io::pipe().expect("pipe");
    let mut command = Command::new(bin);
    command
        .args(args)
        .env("LC_ALL", "C")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(writer.try_clone().expect("dup pipe"))
        .stderr(writer);
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
    // The Command holds copies of the pipe's write end: drop them, or the read
    // below never sees end-of-file.
    drop(command);
    let mut output = String::new();
    reader.read_to_string(&mut output).expect("read output");
    let status = child.wait().expect("wait");
    (output, exit_status(status))
}

/// What a run did, in a few words, for an exercise checker's message: "it
/// exited with 1 and printed \"\" on stdout and \"minibox: ...\" on stderr".
pub fn seen(out: &std::process::Output) -> String {
    seen_parts(
        out.status,
        &String::from_utf8_lossy(&out.stdout),
        &String::from_utf8_lossy(&out.stderr),
    )
}

/// [`seen`], for a run whose output was read piece by piece.
pub fn seen_parts(status: std::process::ExitStatus, stdout: &str, stderr: &str) -> String {
    format!(
        "it exited with {} and printed {stdout:?} on stdout and {stderr:?} on stderr",
        exit_status(status)
    )
}

/// The shell's view of an exit status: the code, or 128 + the signal number.
pub fn exit_status(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .expect("a process ends with a code or a signal")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_only_where_a_shell_needs_it() {
        assert_eq!(
            display_command(&["run", "sh", "-c", "exit 3"]),
            "minibox run sh -c 'exit 3'"
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("/etc/passwd"), "/etc/passwd");
    }
}
