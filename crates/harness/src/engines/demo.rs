//! Chapter 14's demo: podman running a container with `minibox-runc` as its
//! OCI runtime, and the runtime's command lines podman and conmon used
//! (conmon runs `create`, podman the rest itself), as the tour
//! shows them and `tests/demos.rs` records them for the book. The podman is
//! a [`Podman`] sandbox's: its own directories, namespaces and registry.

use std::path::Path;

use super::{Engine, Podman, Run};

/// One demo through podman: `podman --runtime minibox-runc run --rm busybox
/// ARGS...`, then who asked what of the runtime.
#[derive(Debug)]
pub struct EngineDemo {
    /// Short name; the snapshot is `<package>-<name>`.
    pub name: &'static str,
    /// One line for the tour: what to look at.
    pub about: &'static str,
    /// The command in the busybox container.
    pub args: &'static [&'static str],
}

/// Chapter 14's demos through podman.
pub const PODMAN_DEMOS: &[EngineDemo] = &[EngineDemo {
    name: "podman",
    about: "podman runs busybox with minibox-runc as its OCI runtime: conmon calls create, podman start and delete",
    args: &["echo", "hello from podman, through minibox-runc"],
}];

/// A demo's transcript and podman's exit status.
#[derive(Debug)]
pub struct Recorded {
    /// What a reader's terminal would show.
    pub transcript: String,
    /// podman's exit status.
    pub status: i32,
}

/// Runs `demo` through a podman sandbox whose runtime is `runtime`.
pub fn run(runtime: &Path, demo: &EngineDemo) -> Result<Recorded, String> {
    let podman = Box::new(Podman::start(runtime)?);
    let run = Run {
        name: demo.name,
        remove: true,
        args: demo.args,
        ..Run::default()
    };
    let out = podman
        .run(&run)
        .output()
        .map_err(|e| format!("starting podman: {e}"))?;
    let mut transcript = format!(
        "$ podman --runtime minibox-runc run --rm busybox {}\n",
        demo.args
            .iter()
            .map(|a| crate::transcript::shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    );
    transcript.push_str(&String::from_utf8_lossy(&out.stdout));
    transcript.push_str(&String::from_utf8_lossy(&out.stderr));
    transcript.push_str("$ cat runtime-calls.log  # who called minibox-runc, and how\n");
    for call in podman.runtime().calls() {
        transcript.push_str(&shown_call(&call));
        transcript.push('\n');
    }
    let status = out.status.code().unwrap_or(-1);
    podman.shutdown()?;
    Ok(Recorded { transcript, status })
}

/// One runtime call as a reader can follow it: the caller, the program as
/// `minibox-runc`, and each path named by the flag before it.
fn shown_call(call: &[String]) -> String {
    let caller = call.first().map_or("?", String::as_str);
    let mut shown = vec![format!("{caller}: minibox-runc")];
    let mut previous = "";
    for arg in call.iter().skip(1) {
        let word = match previous {
            _ if !arg.starts_with('/') => arg.clone(),
            "--bundle" | "-b" => "[BUNDLE]".into(),
            "--pid-file" => "[PID_FILE]".into(),
            "--console-socket" => "[SOCKET]".into(),
            "--process" | "-p" => "[PROCESS]".into(),
            "--root" => "[ROOT]".into(),
            "--log" => "[LOG]".into(),
            _ => "[PATH]".into(),
        };
        shown.push(word);
        previous = arg;
    }
    shown.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_show_the_flags_and_hide_the_paths() {
        let call: Vec<String> = [
            "conmon",
            "create",
            "--bundle",
            "/a/b",
            "--pid-file",
            "/a/p",
            "abc",
        ]
        .map(String::from)
        .into();
        assert_eq!(
            shown_call(&call),
            "conmon: minibox-runc create --bundle [BUNDLE] --pid-file [PID_FILE] abc"
        );
    }
}
