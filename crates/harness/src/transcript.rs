//! Finding a chapter's binary, and recording a demo the way a terminal shows it:
//! the command line, then stdout and stderr interleaved as they were written,
//! then (for some demos) `$ echo $?` and the exit status. A demo with a host
//! side ([`Alongside`]) shows minibox started in the background, the host's
//! commands and their output, and minibox stopped.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::chapters::{Alongside, Chapter, DEMO_USER, Demo, LATEST, Network, REGISTRY, RunsAs};
use crate::netns::NetNs;
use crate::process::Background;
use crate::rootless::TestUser;

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
pub fn chapter_bin(chapter: &Chapter) -> PathBuf {
    chapter_bin_named(chapter, chapter.binary())
}

/// [`chapter_bin`] for another of the chapter's binaries
/// ([`Chapter::second_binary`]).
pub fn chapter_bin_named(chapter: &Chapter, binary: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let dir = bin_dir();
    let package = chapter.package;
    let key = format!("{package}/{binary}");
    if !built.contains(&key) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.current_dir(workspace_root()).args([
            "build",
            "--quiet",
            "--package",
            package,
            "--bin",
            binary,
        ]);
        if dir.file_name().is_some_and(|name| name == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "cargo build -p {package} failed");
        built.push(key);
    }
    dir.join(binary)
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
/// Docker Hub, and a store of its own, emptied first; a chapter whose
/// containers have a network runs its demos in a network namespace made for
/// the session ([`Network::Namespace`]); a chapter whose demos run as an
/// ordinary user ([`RunsAs::User`]) gets one, made for the session. The
/// demos of one chapter share all of it, so that a later demo sees what an
/// earlier one left: an image it pulled, or, from chapter 10 on, a
/// container it started ([`Chapter::keeps_containers`]), which the session
/// removes at its end if it still runs.
pub struct DemoSession {
    /// The fixture registry, for chapters that pull; stopped on drop.
    pub registry: Option<crate::registry::Registry>,
    /// The demos' `MINIBOX_ROOT`.
    pub store: PathBuf,
    /// The demos' `MINIBOX_RUN`, the runtime state of their containers
    /// (chapter 10 on), emptied with the store.
    pub run: PathBuf,
    /// The network namespace playing the host, for a chapter whose demos
    /// have one; dropped with the session, it vanishes with everything the
    /// demos made in it.
    pub netns: Option<NetNs>,
    /// The ordinary user every `minibox` of the demos runs as, for a
    /// chapter whose demos run as one ([`RunsAs::User`]): [`DEMO_USER`],
    /// with the fixture registry as its mirror, and its store (in place of
    /// [`DemoSession::store`] and [`DemoSession::run`]) in its own home, as
    /// rootless minibox keeps it. Dropped after the demos' containers are
    /// removed: its pause process is ended, by its PID, and its home goes.
    pub user: Option<TestUser>,
    /// The chapter's binary, for a chapter whose containers outlive `run`:
    /// it names [`LATEST`], and removes the demos' containers on drop.
    keeper: Option<PathBuf>,
}

impl DemoSession {
    /// Prepares what `chapter`'s demos need. Making a network namespace
    /// needs root.
    pub fn start(chapter: &Chapter) -> DemoSession {
        DemoSession::prepare(chapter, true)
    }

    /// Prepares what `chapter`'s by-hand session needs: the registry and
    /// the network namespace its demos would get, but not their store,
    /// which it leaves alone (the demos may be using it).
    pub fn by_hand(chapter: &Chapter) -> DemoSession {
        DemoSession::prepare(chapter, false)
    }

    /// [`DemoSession::start`], with the store emptied and filled only
    /// `for_demos`.
    fn prepare(chapter: &Chapter, for_demos: bool) -> DemoSession {
        let mut session = DemoSession {
            registry: None,
            store: workspace_root().join("target/demo-store"),
            run: workspace_root().join(format!("target/demo-run-{}", chapter.package)),
            netns: None,
            user: None,
            keeper: None,
        };
        if chapter.keeps_containers() && for_demos {
            session.keeper = Some(chapter_bin(chapter));
        }
        if chapter.needs_registry {
            session.store = workspace_root().join(format!("target/demo-store-{}", chapter.package));
        }
        // A user's store is new with the user, made below.
        let as_root = for_demos && chapter.runs_as == RunsAs::Root;
        if as_root {
            // Containers an interrupted session left running go first, by
            // the chapter's own `rm -f`, then their files.
            session
                .remove_containers()
                .unwrap_or_else(|e| panic!("{}: {e}", chapter.package));
        }
        if chapter.needs_registry {
            for dir in [&session.store, &session.run]
                .into_iter()
                .filter(|_| as_root)
            {
                if dir.exists() {
                    std::fs::remove_dir_all(dir)
                        .unwrap_or_else(|e| panic!("emptying {}: {e}", dir.display()));
                }
            }
            let registry = crate::registry::Registry::start();
            registry
                .push_fixtures()
                .unwrap_or_else(|e| panic!("pushing the fixture images: {e}"));
            session.registry = Some(registry);
        }
        if chapter.runs_as == RunsAs::User && for_demos {
            session.user = Some(session.demo_user(chapter));
        }
        if let Network::Namespace { pulled } = chapter.network {
            // Pulled here, in the machine's namespace, where the registry is.
            for image in pulled.iter().filter(|_| for_demos) {
                session.pull(chapter, image);
            }
            let netns = NetNs::new().unwrap_or_else(|e| {
                panic!("a network namespace for {}'s demos: {e}", chapter.package)
            });
            if let Some(user) = &mut session.user {
                // From now on its commands start there (joined while root).
                let fd = netns.descriptor().expect("a descriptor of the namespace");
                user.in_network_namespace(fd);
            }
            session.netns = Some(netns);
        }
        session
    }

    /// [`DEMO_USER`], made for `chapter`'s demos, with the fixture
    /// registry (if the chapter has one) as its mirror.
    fn demo_user(&self, chapter: &Chapter) -> TestUser {
        let mut user = TestUser::with_ids(
            &chapter_bin(chapter),
            DEMO_USER.name,
            DEMO_USER.uid,
            Some(DEMO_USER.range),
        );
        if let Some(registry) = &self.registry {
            user.set_env("MINIBOX_REGISTRY_MIRROR", &registry.host());
        }
        user
    }

    /// Pulls `image` into the demos' store with `chapter`'s binary, quietly,
    /// as the demos' user if they have one, from the machine's namespace
    /// (the session's network namespace is not entered yet).
    fn pull(&self, chapter: &Chapter, image: &str) {
        let args = ["pull", "--quiet", image];
        let (output, status) = match &self.user {
            Some(user) => {
                let run = user.minibox(&args);
                (run.stdout + &run.stderr, run.status)
            }
            None => run_merged_command(self.minibox(&chapter_bin(chapter), &args)),
        };
        assert_eq!(
            status, 0,
            "pulling {image} for {}'s demos:\n{output}",
            chapter.package
        );
    }

    /// `bin ARGS` (a chapter's `minibox`), not started yet, where and as
    /// whom the demos run it: in the session's network namespace, if it
    /// has one; as the session's user, with the user's environment, if it
    /// has one ([`TestUser::in_network_namespace`]: the namespace is joined
    /// while the child is still root), or else as this process, with the demos'
    /// environment ([`DemoSession::env`]). Its standard streams are this
    /// process's, as a new [`Command`]'s are.
    pub fn minibox(&self, bin: &Path, args: &[&str]) -> Command {
        let mut command = match &self.user {
            Some(user) => {
                let mut command = user.command(args);
                command
                    .stdin(Stdio::inherit())
                    .stdout(Stdio::inherit())
                    .stderr(Stdio::inherit());
                return command;
            }
            None => Command::new(bin),
        };
        command.args(args).envs(self.env());
        self.enter(&mut command);
        command
    }

    /// Makes `command` run where the demos run: inside the session's network
    /// namespace, if it has one.
    pub fn enter(&self, command: &mut Command) {
        if let Some(netns) = &self.netns {
            netns
                .enter(command)
                .expect("a descriptor of the session's network namespace");
        }
    }

    /// `sh -c SCRIPT` where the demos run, with their environment: a
    /// command on the host's side of a demo.
    pub fn shell(&self, script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]).envs(self.env());
        self.enter(&mut command);
        command
    }

    /// The environment the demos run with as root (a user's demos have
    /// the user's own: [`DemoSession::user`]).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            // Containers' cgroups go below the test's own cgroup (from chapter 5
            // on), their files into the workspace (from chapter 6 on).
            (
                "MINIBOX_CGROUP_PARENT",
                crate::cgroups::test_parent("minibox-demos"),
            ),
            ("MINIBOX_ROOT", self.store.display().to_string()),
            // Containers' runtime state (chapter 10 on), beside the store.
            ("MINIBOX_RUN", self.run.display().to_string()),
        ];
        if let Some(registry) = &self.registry {
            env.push(("MINIBOX_REGISTRY_MIRROR", registry.host()));
            // No credentials of the machine's user leak into a demo.
            env.push(("MINIBOX_CONFIG", "/nonexistent".into()));
            env.push(("DOCKER_CONFIG", "/nonexistent".into()));
        }
        env
    }

    /// `demo`'s arguments, with [`LATEST`] replaced by the short ID of the
    /// container the chapter's demos created last (`minibox ps -l -q`), and
    /// [`REGISTRY`] by the fixture registry's `host:port`.
    pub fn args(&self, demo: &Demo) -> Vec<String> {
        let latest = demo
            .args
            .contains(&LATEST)
            .then(|| {
                self.containers(&["-l", "-q"])
                    .map(|ids| ids.into_iter().next())
            })
            .map(|id| match id {
                Ok(Some(id)) => id,
                Ok(None) => panic!("{}: no container for {LATEST}", demo.name),
                Err(e) => panic!("{}: {e}", demo.name),
            });
        let registry = self.registry.as_ref().map(|r| r.host()).unwrap_or_default();
        demo.args
            .iter()
            .map(|arg| match (*arg == LATEST, &latest) {
                (true, Some(id)) => id.clone(),
                _ => arg.replace(REGISTRY, &registry),
            })
            .collect()
    }

    /// The IDs `minibox ps ARGS` lists (nothing for a chapter whose
    /// containers do not outlive `run`).
    fn containers(&self, args: &[&str]) -> Result<Vec<String>, String> {
        let Some(bin) = &self.keeper else {
            return Ok(Vec::new());
        };
        let ps = self.minibox(bin, &[&["ps"], args].concat());
        match run_merged_command(ps) {
            (output, 0) => Ok(output.lines().map(str::to_string).collect()),
            (output, status) => Err(format!("minibox ps {args:?} exited {status}:\n{output}")),
        }
    }

    /// Waits until the network namespace has no veth but those of running
    /// containers: the kernel removes a finished container's veth moments
    /// after its end (see [`NetNs::settle`]).
    pub fn settle(&self) -> Result<(), String> {
        let Some(netns) = &self.netns else {
            return Ok(());
        };
        // Chapter 9 names a container's host end `veth` + the ID's start.
        let running: Vec<String> = self
            .containers(&["-q", "--no-trunc"])?
            .iter()
            .map(|id| format!("veth{}", &id[..7]))
            .collect();
        netns.settle(&running).map_err(|e| e.to_string())
    }

    /// Removes every container of the demos' store, running or not, with
    /// the chapter's own `rm -f`, so that none outlives the session.
    fn remove_containers(&self) -> Result<(), String> {
        let ids = self.containers(&["-a", "-q", "--no-trunc"])?;
        let Some(bin) = self.keeper.as_ref().filter(|_| !ids.is_empty()) else {
            return Ok(());
        };
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let rm = self.minibox(bin, &[&["rm", "-f"], &ids[..]].concat());
        match run_merged_command(rm) {
            (_, 0) => Ok(()),
            (output, status) => Err(format!("minibox rm -f exited {status}:\n{output}")),
        }
    }
}

impl Drop for DemoSession {
    /// Before the namespace and the registry go: a container a demo started
    /// with `run -d` would otherwise run on.
    fn drop(&mut self) {
        if let Err(e) = self.remove_containers() {
            eprintln!("removing the demos' containers: {e}");
        }
    }
}

/// Runs `demo` of `chapter` with stdout and stderr on one pipe, as a terminal
/// would interleave them, and records the transcript. A demo with a host
/// side runs minibox in the background and records the host's commands (see
/// [`Alongside`]); its minibox output goes to a file that is not shown.
pub fn record(chapter: &Chapter, demo: &Demo, session: &DemoSession) -> Recorded {
    let name = chapter.snapshot_name(demo);
    let args = session.args(demo);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut minibox = session.minibox(&chapter_bin(chapter), &args);
    // Where a reader types the commands: a demo names files of the
    // repository (chapter 11's example context) from its root.
    minibox.current_dir(workspace_root());
    let (mut transcript, status) = match &demo.alongside {
        None => {
            let (output, status) = run_merged_command(minibox);
            (format!("$ {}\n{output}", display_command(&args)), status)
        }
        Some(alongside) if alongside.detached => {
            let (output, status) = run_merged_command(minibox);
            let mut transcript = format!("$ {}\n{output}", display_command(&args));
            if status == 0 {
                let show = |command: &str, shell: Command| {
                    let (output, _) = run_merged_command(shell);
                    transcript.push_str(&format!("$ {command}\n{output}"));
                };
                serve_detached(session, alongside, show).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            (transcript, status)
        }
        Some(alongside) => {
            let log_name = format!("{}.log", demo.name);
            let mut transcript = format!("$ {}\n", display_background(&args, &log_name));
            let logs = tempfile::tempdir().expect("a directory for minibox's log");
            let show = |command: &str, shell: Command| {
                let (output, _) = run_merged_command(shell);
                transcript.push_str(&format!("$ {command}\n{output}"));
            };
            let status = run_alongside(
                session,
                minibox,
                alongside,
                &logs.path().join(log_name),
                show,
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            transcript.push_str(&format!("$ {STOP_BACKGROUND}\n"));
            (transcript, status)
        }
    };
    if demo.show_status {
        transcript.push_str(&format!("$ echo $?\n{status}\n"));
    }
    session.settle().unwrap_or_else(|e| panic!("{name}: {e}"));
    Recorded { transcript, status }
}

/// `minibox run ... > redis.log 2>&1 &`: how a demo with a host side starts,
/// as shown, its output going to `log`.
pub fn display_background(args: &[&str], log: &str) -> String {
    format!("{} > {log} 2>&1 &", display_command(args))
}

/// How a demo with a host side ends, as shown: SIGTERM to minibox (the last
/// job started in the background, `$!`), then its exit status, which `echo
/// $?` shows after this.
pub const STOP_BACKGROUND: &str = "kill $!; wait $!";

/// How long a container with a host side has to become ready.
const READY_LIMIT: Duration = Duration::from_secs(60);

/// Runs a demo with a host side ([`Alongside`]): `minibox` (a command made
/// where the demos run, not started yet) in the background, its output in the
/// file `log`; `alongside.ready` retried until it succeeds; each of
/// `alongside.commands` handed to `show`, as written and as a `sh -c` command
/// where the demos run; then SIGTERM to minibox, by its PID. Returns minibox's
/// exit status; an error, with minibox's log, if the container never became
/// ready or minibox did not end. minibox is stopped on every path, a panic in
/// `show` included.
pub fn run_alongside(
    session: &DemoSession,
    mut minibox: Command,
    alongside: &Alongside,
    log: &Path,
    mut show: impl FnMut(&str, Command),
) -> Result<i32, String> {
    let with_log = |what: String| {
        let output = std::fs::read_to_string(log).unwrap_or_default();
        format!("{what}; minibox's output:\n{output}")
    };
    let file = std::fs::File::create(log).map_err(|e| format!("create {}: {e}", log.display()))?;
    let copy = file
        .try_clone()
        .map_err(|e| format!("dup {}: {e}", log.display()))?;
    minibox
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(copy)
        .stderr(file);
    let mut background =
        Background::spawn(&mut minibox).map_err(|e| format!("spawn minibox: {e}"))?;
    let ended = || {
        background
            .ended()
            .map(|status| format!("minibox ended ({status})"))
    };
    wait_ready(session, alongside, ended).map_err(with_log)?;
    for command in alongside.commands {
        show(command, session.shell(command));
    }
    background
        .terminate(Duration::from_secs(30))
        .map_err(with_log)
}

/// The host's side of a demo whose minibox detached the container
/// ([`Alongside::detached`]) and has returned: `alongside.ready` retried
/// until it succeeds, then each of `alongside.commands` handed to `show`, as
/// [`run_alongside`] does. The container runs on.
pub fn serve_detached(
    session: &DemoSession,
    alongside: &Alongside,
    mut show: impl FnMut(&str, Command),
) -> Result<(), String> {
    wait_ready(session, alongside, || None)?;
    for command in alongside.commands {
        show(command, session.shell(command));
    }
    Ok(())
}

/// Retries `alongside.ready` where the demos run until it succeeds, for
/// [`READY_LIMIT`] at most; fails at once when `ended` says (how) minibox
/// ended meanwhile.
fn wait_ready(
    session: &DemoSession,
    alongside: &Alongside,
    mut ended: impl FnMut() -> Option<String>,
) -> Result<(), String> {
    let deadline = Instant::now() + READY_LIMIT;
    loop {
        if let Some(how) = ended() {
            return Err(format!("{how} before `{}` succeeded", alongside.ready));
        }
        let mut ready = session.shell(alongside.ready);
        ready
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if ready.status().is_ok_and(|s| s.success()) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "`{}` still failed after {} s",
                alongside.ready,
                READY_LIMIT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `bin args...` with stdin from /dev/null and stdout and stderr on one pipe;
/// returns what it wrote and its exit status (128 + N if killed by signal N).
pub fn run_merged(bin: &Path, args: &[&str]) -> (String, i32) {
    let session = DemoSession {
        registry: None,
        store: workspace_root().join("target/demo-store"),
        run: workspace_root().join("target/demo-run"),
        netns: None,
        user: None,
        keeper: None,
    };
    run_merged_with(bin, args, &session.env())
}

/// [`run_merged`] with the environment `env` added.
pub fn run_merged_with(bin: &Path, args: &[&str], env: &[(&str, String)]) -> (String, i32) {
    let mut command = Command::new(bin);
    command.args(args).envs(env.iter().map(|(k, v)| (k, v)));
    run_merged_command(command)
}

/// Runs `command` (with `LC_ALL=C`) as [`run_merged`] does.
pub fn run_merged_command(mut command: Command) -> (String, i32) {
    let (mut reader, writer) = std::io::pipe().expect("pipe");
    command
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(writer.try_clone().expect("dup pipe"))
        .stderr(writer);
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", command.get_program()));
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
