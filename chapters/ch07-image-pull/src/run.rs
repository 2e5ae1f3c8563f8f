//! The recipe of chapter 7: chapter 6's, with the image found in the store
//! (or pulled from its registry first) instead of given as layer directories;
//! and the other commands: `pull`, `images`, `login`, `logout`, `diff`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use ch01_fork_exec::exit::{Exit, FailsWith};
use ch01_fork_exec::narrate::{self, Narrator};
use ch01_fork_exec::process::Command;
use ch02_pid_namespace::{namespace, sync};
use ch03_uts_namespace::{id, uts};
use ch04_mount_namespace::mount::{self, Isolation};
use ch05_cgroups::cgroup;
use ch06_rootfs_snapshot::changes;
use ch06_rootfs_snapshot::snapshot::Snapshot;

use crate::auth::{self, Credentials};
use crate::cli::{Action, Config};
use crate::image;
use crate::images;
use crate::platform;
use crate::progress::{Output, say};
use crate::pull;
use crate::reference::Reference;
use crate::registry::Client;
use crate::store::Store;

/// Does what the command line asked for. Like Docker's, the commands other
/// than `run` exit with status 1 when they fail (125 is `run`'s "minibox itself
/// failed").
pub fn act(action: &Action) -> Result<Exit> {
    match action {
        Action::Run(config) => run(config),
        other => act_other(other).map_err(|error| FailsWith { status: 1, error }.into()),
    }
}

fn act_other(action: &Action) -> Result<Exit> {
    match action {
        Action::Run(config) => run(config),
        Action::Pull {
            root,
            image: typed,
            platform,
            quiet,
        } => {
            let image = &Reference::parse(typed)?;
            let wanted = platform::wanted(platform.as_deref())?;
            let output = if *quiet {
                Output::Quiet
            } else {
                Output::Stdout
            };
            let store = image::open_for_pull(root)?;
            if !crate::cli::names_tag(typed) {
                say(output, "Using default tag: latest");
            }
            let client = Client::new(None);
            pull::pull(&store, &client, image, &wanted, output)?;
            narrate::print(image.canonical())?;
            Ok(Exit::Code(0))
        }
        Action::Images {
            root,
            quiet,
            filter,
        } => {
            let rows = images::rows(&Store::existing(root), filter.as_deref())?;
            images::print(&rows, *quiet, std::io::stdout())?;
            Ok(Exit::Code(0))
        }
        Action::Login {
            registry,
            username,
            password,
            password_stdin,
        } => login(
            registry,
            username.clone(),
            password.clone(),
            *password_stdin,
        ),
        Action::Logout { registry } => {
            let path = auth::forget(registry)?;
            narrate::print(format_args!(
                "Removing login credentials for {registry} from {}",
                path.display()
            ))?;
            Ok(Exit::Code(0))
        }
        Action::Diff { root, id } => {
            changes::print(&Snapshot::open(root, id)?)?;
            Ok(Exit::Code(0))
        }
    }
}

// ANCHOR: run
/// Runs `config.command` in a new container made from the image
/// `options.image`, pulling it first if the store lacks it.
pub fn run(config: &Config) -> Result<Exit> {
    let options = &config.options;
    let narrator = Narrator::new(options.quiet);
    let command = Command::new(&config.command)?;

    // New in this chapter: the image's layers come from the store, which
    // pulls what it lacks from the registry.
    let store = Store::open(&options.root)?;
    let (reference, output) = (&options.image, Output::narration(options.quiet));
    let image = image::find_layers(
        &store,
        reference,
        options.pull,
        &options.platform,
        &narrator,
        output,
    )?;

    // From here on, chapter 6's recipe: a snapshot of those layers, a cgroup,
    // the container.
    let id = id::new_id()?;
    let hostname = uts::hostname_for(options.hostname.as_deref(), &id);
    let snapshotter = options.snapshot.snapshotter;
    let snapshot = Snapshot::prepare(&options.root, &id, &image.layers, snapshotter)?;
    let rootfs = snapshot.rootfs();
    snapshot.lifecycle(&options.snapshot, || {
        let cgroups = Path::new(cgroup::ROOT);
        cgroup::with_cgroup(cgroups, &options.resources, &id, |cgroup| {
            let (parent, child_end) = sync::channel()?;
            namespace::say_clone(&narrator, mount::NAMESPACES);
            let child = namespace::clone_child(mount::NAMESPACES, || {
                let setup = || {
                    uts::set_hostname(&hostname)?;
                    mount::make_private()?;
                    snapshot.mount()?; // the pulled layers, plus a writable layer of our own
                    mount::enter_root(&rootfs, Isolation::PivotRoot)
                };
                child_end.start(setup, |()| narrator.exec(&command))
            })?;
            drop(child_end);
            let program = command.program_name();
            let exit = cgroup::start(cgroup, child, parent, &program, &narrator, || Ok(()))?;
            cgroup::report(cgroup, &options.resources, exit)?;
            Ok(exit)
        })
    })
}
// ANCHOR_END: run

// ANCHOR: login
/// `minibox login`: checks the credentials with the registry (or its token
/// server), then keeps them for later pulls.
fn login(
    registry: &str,
    username: Option<String>,
    password: Option<String>,
    password_stdin: bool,
) -> Result<Exit> {
    let username = match username {
        Some(name) => name,
        None if password_stdin => bail!("Must provide --username with --password-stdin"),
        None => prompt("Username: ", false)?,
    };
    let password = match password {
        Some(password) => password,
        None if password_stdin => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\n', '\r']).to_string()
        }
        None => prompt("Password: ", true)?,
    };
    if username.is_empty() || password.is_empty() {
        bail!("a user name and a password are required");
    }
    let credentials = Credentials { username, password };
    let reference = Reference {
        registry: registry.to_string(),
        repository: "library/login".into(),
        tag: Some("latest".into()),
        digest: None,
    };
    // The registry itself, never a mirror: credentials are checked where they
    // belong.
    let endpoint = crate::registry::Endpoint {
        host: reference.api_host().to_string(),
        scheme: None,
        registry: registry.to_string(),
    };
    Client::new(Some(credentials.clone())).login(&endpoint, &credentials)?;
    auth::save(registry, &credentials)?;
    narrate::print("Login Succeeded")?;
    Ok(Exit::Code(0))
}

/// Asks on the terminal; with `hidden`, without echoing what is typed.
fn prompt(question: &str, hidden: bool) -> Result<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "cannot ask for {}: standard input is not a terminal (use --username and --password-stdin)",
            question.trim_end_matches([':', ' ']).to_lowercase()
        );
    }
    let _ = write!(std::io::stderr(), "{question}");
    let _ = std::io::stderr().flush();
    let saved = if hidden {
        let saved = tcgetattr(&stdin).context("reading the terminal's settings")?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        tcsetattr(&stdin, SetArg::TCSANOW, &quiet).context("turning echo off")?;
        Some(saved)
    } else {
        None
    };
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(saved) = saved {
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
        let _ = writeln!(std::io::stderr());
    }
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
// ANCHOR_END: login
