//! The recipe of chapter 7: chapter 6's, with the image found in the store
//! (or pulled from its registry first) instead of given as layer directories;
//! and the other commands: `pull`, `images`, `login`, `logout`, `diff`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use ch01_fork_exec::exit::Exit;
use ch01_fork_exec::narrate::Narrator;
use ch01_fork_exec::process::{self, Command};
use ch02_pid_namespace::{namespace, sync};
use ch03_uts_namespace::{id, uts};
use ch04_mount_namespace::{dev, mount};
use ch05_cgroups::cgroup::{self, Cgroup};
use ch05_cgroups::run::report;
use ch05_cgroups::signals;
use ch06_rootfs_snapshot::run::print_changes;
use ch06_rootfs_snapshot::snapshot::Snapshot;
use nix::sched::CloneFlags;
use nix::unistd::getpid;

use crate::auth::{self, Credentials};
use crate::cli::{Action, Config, PullPolicy};
use crate::images;
use crate::oci::Platform;
use crate::platform;
use crate::progress::{Output, say};
use crate::pull;
use crate::reference::Reference;
use crate::registry::Client;
use crate::store::{ImageRecord, Store};

/// Does what the command line asked for. Like Docker's, the commands other
/// than `run` exit with status 1 when they fail (125 is `run`'s "minibox itself
/// failed").
pub fn act(action: &Action) -> Result<Exit> {
    if let Action::Run(config) = action {
        return run(config);
    }
    match act_other(action) {
        Ok(exit) => Ok(exit),
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "minibox: {error:#}");
            Ok(Exit::Code(1))
        }
    }
}

fn act_other(action: &Action) -> Result<Exit> {
    match action {
        Action::Run(config) => run(config),
        Action::Pull {
            store,
            image: typed,
            platform,
            quiet,
        } => {
            let image = &Reference::parse(typed)?;
            let (wanted, given) = &crate::cli::chosen_platform(platform.as_deref())?;
            let output = if *quiet {
                Output::Quiet
            } else {
                Output::Stdout
            };
            let store = open_store_for_pull(store)?;
            if !crate::cli::names_tag(typed) {
                say(output, "Using default tag: latest");
            }
            pull::pull(&store, &Client::new(None), image, wanted, *given, output)?;
            println!("{}", image.canonical());
            Ok(Exit::Code(0))
        }
        Action::Images {
            store,
            quiet,
            filter,
        } => {
            let rows = images::rows(&Store::existing(store), filter.as_deref())?;
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
            let path = auth::store(registry, None)?;
            println!(
                "Removing login credentials for {registry} from {}",
                path.display()
            );
            Ok(Exit::Code(0))
        }
        Action::Diff { store, id } => {
            print_changes(&Snapshot::open(store, id)?)?;
            Ok(Exit::Code(0))
        }
    }
}

// ANCHOR: run
/// Runs `config.command` in a new container made from the image
/// `config.image`, pulling it first if the store lacks it.
pub fn run(config: &Config) -> Result<Exit> {
    let narrator = Narrator::new(config.quiet);
    let command = Command::new(&config.command)?;

    // New in this chapter: the image's layers come from the store, which
    // pulls what it lacks from the registry.
    let store = Store::open(&config.store)?;
    let image = find_or_pull(&store, config)?;
    let layers = image
        .diff_ids
        .iter()
        .map(|diff_id| store.layer_dir(diff_id))
        .collect::<Result<Vec<_>>>()?;
    narrator.say(format_args!(
        "image {} (ID {}) is {} layer(s) in {}",
        config.image,
        crate::digest::short(&image.config),
        layers.len(),
        store.root.display()
    ));

    // From here on, chapter 6's recipe: a snapshot of those layers, a cgroup,
    // the container.
    let id = id::new_id()?;
    let snapshot = Snapshot::prepare(&config.store, &id, &layers, config.snapshotter)?;
    let result = cgroup::create(
        Path::new(cgroup::ROOT),
        &config.cgroup_parent,
        &id,
        &config.limits,
    )
    .and_then(|cgroup| {
        let result = run_in(config, &narrator, &command, &id, &snapshot, cgroup.as_ref());
        let destroyed = cgroup.destroy();
        result.and_then(|exit| destroyed.map(|()| exit))
    });
    let result = result.and_then(|exit| {
        if config.diff {
            print_changes(&snapshot)?;
        }
        Ok(exit)
    });
    if config.keep && result.is_ok() {
        eprintln!(
            "minibox: kept container {}: {}",
            id::short(&id),
            snapshot.dir.display()
        );
        return result;
    }
    let removed = snapshot.remove();
    let exit = result?;
    removed?;
    Ok(exit)
}
// ANCHOR_END: run

// ANCHOR: find_or_pull
/// The image, from the store when it has it (and `--pull` allows), else
/// pulled, with Docker's line first: `Unable to find image 'busybox:latest'
/// locally`.
pub fn find_or_pull(store: &Store, config: &Config) -> Result<ImageRecord> {
    let (wanted, platform_given) = &config.platform;
    let local = store
        .image(&config.image.canonical())?
        .filter(|record| complete(store, record))
        .filter(|record| !platform_given || platform_matches(wanted, record));
    let output = if config.quiet {
        Output::Quiet
    } else {
        Output::Stderr
    };
    match (config.pull, local) {
        (PullPolicy::Never, None) => bail!("No such image: {}", config.image),
        (PullPolicy::Always, _) => {
            let store = open_store_for_pull(&store.root)?;
            Ok(pull::pull(
                &store,
                &Client::new(None),
                &config.image,
                wanted,
                *platform_given,
                output,
            )?
            .0)
        }
        (_, Some(record)) => Ok(record),
        (PullPolicy::Missing, None) => {
            eprintln!("Unable to find image '{}' locally", config.image);
            let store = open_store_for_pull(&store.root)?;
            let (record, _) = pull::pull(
                &store,
                &Client::new(None),
                &config.image,
                wanted,
                *platform_given,
                output,
            )?;
            Ok(record)
        }
    }
}
// ANCHOR_END: find_or_pull

/// Whether every layer of the image is unpacked in the store.
fn complete(store: &Store, record: &ImageRecord) -> bool {
    record
        .diff_ids
        .iter()
        .all(|d| store.has_layer(d).unwrap_or(false))
}

fn platform_matches(wanted: &Platform, record: &ImageRecord) -> bool {
    platform::parse(&record.platform).is_ok_and(|stored| platform::matches(wanted, &stored))
}

/// The store, for a pull: which needs root, because unpacking a layer sets
/// owners, creates device nodes and writes `trusted.overlay.*` attributes.
fn open_store_for_pull(root: &Path) -> Result<Store> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "pulling an image needs root: unpacking layers sets file owners, creates whiteouts (device nodes) and trusted.overlay attributes (run minibox as root, or through sudo)"
        );
    }
    Store::open(root)
}

// ANCHOR: run_in
/// Chapter 6's container, unchanged: the child mounts the snapshot as its root.
fn run_in(
    config: &Config,
    narrator: &Narrator,
    command: &Command,
    id: &str,
    snapshot: &Snapshot,
    cgroup: &dyn Cgroup,
) -> Result<Exit> {
    let hostname = config
        .hostname
        .clone()
        .unwrap_or_else(|| id::short(id).to_string());
    let rootfs = snapshot.rootfs();
    let (mut parent, child_end) = sync::channel()?;
    let flags = CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWNS;
    narrator.say(format_args!(
        "parent (PID {}) calls clone({})",
        getpid(),
        namespace::flag_names(flags)
    ));
    let child = namespace::clone_child(flags, || {
        let setup = || -> Result<()> {
            child_end.wait_for_release()?;
            uts::set_hostname(&hostname)?;
            mount::make_private()?;
            snapshot.mount()?; // the pulled layers, plus a writable layer of our own
            mount::mount_proc(&rootfs)?;
            mount::mount_sys_readonly(&rootfs)?;
            dev::mount_dev(&rootfs)?;
            mount::pivot_root(&rootfs)?;
            Ok(())
        };
        if let Err(error) = setup() {
            child_end.setup_failed(&error);
        }
        narrator.say(format_args!(
            "child (PID {}) calls execvp({:?}, {})",
            getpid(),
            command.program_name(),
            command.argv_for_display()
        ));
        let error = process::exec(command);
        child_end.exec_failed(&error)
    })?;
    drop(child_end);
    signals::forward_to(child)?;

    if let Err(error) = cgroup.join(child) {
        drop(parent);
        process::wait_for(child)?;
        return Err(error);
    }
    parent.release()?;
    if let Err(error) = parent.wait_for_exec(&command.program_name()) {
        process::wait_for(child)?;
        return Err(error);
    }
    let exit = process::wait_for(child)?;
    narrator.say(format_args!(
        "child (host PID {child}) {exit}; minibox exits with {}",
        exit.status()
    ));
    report(&config.limits, config.stats, cgroup, exit)?;
    Ok(exit)
}
// ANCHOR_END: run_in

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
    auth::store(registry, Some(&credentials))?;
    println!("Login Succeeded");
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
    eprint!("{question}");
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
        eprintln!();
    }
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
// ANCHOR_END: login
