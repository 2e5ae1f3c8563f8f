//! runc's command line, as the engines call it: global flags before the
//! command, then the command with its flags and the container's ID.
//!
//! Engines parse nothing a runtime prints except `state`, `ps --format json`,
//! `list --format json` and `features`, and they read errors from `--log`
//! (containerd's shim, in JSON) or from stderr (conmon). So the flags and the
//! JSON must be runc's; the wording of other output is free.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Where runc keeps its state by default; minibox-runc keeps its own beside.
pub const DEFAULT_ROOT: &str = "/run/minibox-runc";

// ANCHOR: cli
/// minibox as an OCI runtime: runc's command line.
#[derive(Debug, Parser)]
#[command(name = "minibox-runc", version, about, long_about = None)]
pub struct Cli {
    /// Where the containers' state lives (one directory per container).
    #[arg(long, global = true, default_value = DEFAULT_ROOT)]
    pub root: PathBuf,
    /// Append errors and debug lines to this file (as well as stderr).
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// The format of `--log`: text, or JSON lines with level, msg and time.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log debug lines too.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Place cgroups through systemd (transient scopes) instead of cgroupfs.
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Ignored, as runc ignores it outside rootless mode's detection.
    #[arg(
        long = "rootless",
        id = "global_rootless",
        value_name = "true|false|auto"
    )]
    pub rootless: Option<String>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// runc's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container from a bundle: its init waits until `start`.
    Create(CreateArgs),
    /// Let a created container's process run.
    Start(IdArg),
    /// Create and start a container, and wait for it (unless --detach).
    Run(RunArgs),
    /// The container's state, as the runtime specification's JSON.
    State(IdArg),
    /// Send a signal to the container's init (or every process, --all).
    Kill(KillArgs),
    /// Remove a stopped container (or any, --force).
    Delete(DeleteArgs),
    /// Run one more process in a running container.
    Exec(ExecArgs),
    /// The container's processes.
    Ps(PsArgs),
    /// The containers under --root.
    #[command(alias = "ls")]
    List(ListArgs),
    /// Freeze every process of the container (the cgroup freezer).
    Pause(IdArg),
    /// Thaw a paused container.
    Resume(IdArg),
    /// Change a running container's resource limits.
    Update(UpdateArgs),
    /// What this runtime supports, as JSON.
    Features,
    /// Write a default config.json into the current directory.
    Spec(SpecArgs),
}

/// A container's ID.
#[derive(Debug, Args)]
pub struct IdArg {
    /// The container's ID.
    pub id: String,
}

/// `create`'s flags (runc's).
#[derive(Debug, Args, Clone)]
pub struct CreateArgs {
    /// The bundle: the directory holding config.json.
    #[arg(long, short, default_value = ".")]
    pub bundle: PathBuf,
    /// Write the init's PID here (atomically, digits only).
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// A unix socket to which the pty's master is sent (process.terminal).
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Enter the root with chroot-like MS_MOVE instead of pivot_root.
    #[arg(long)]
    pub no_pivot: bool,
    /// Keep the caller's session keyring instead of making the container one.
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass N descriptors after stdio (3 .. 3+N-1) to the process.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// The container's ID.
    pub id: String,
}

/// `run`'s flags: `create`'s, and `--detach`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Create's flags.
    #[command(flatten)]
    pub create: CreateArgs,
    /// Return once the process runs, instead of waiting for it.
    #[arg(long, short)]
    pub detach: bool,
    /// Keep the container's state when it ends (no delete).
    #[arg(long)]
    pub keep: bool,
}

/// `kill`'s flags.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal every process in the container's cgroup, not only its init.
    #[arg(long, short)]
    pub all: bool,
    /// The container's ID.
    pub id: String,
    /// The signal: a name (TERM, SIGKILL) or a number.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

/// `delete`'s flags.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Kill the container first if it still runs.
    #[arg(long, short)]
    pub force: bool,
    /// The container's ID.
    pub id: String,
}

/// `exec`'s flags (runc's).
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The process as the specification's JSON (config.json's `process`).
    #[arg(long, short)]
    pub process: Option<PathBuf>,
    /// Return once the process runs.
    #[arg(long, short)]
    pub detach: bool,
    /// Write the process's PID here.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// A unix socket to which the pty's master is sent.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Give the process a terminal.
    #[arg(long, short)]
    pub tty: bool,
    /// Working directory inside the container.
    #[arg(long)]
    pub cwd: Option<String>,
    /// Set an environment variable (KEY=VALUE).
    #[arg(long, short)]
    pub env: Vec<String>,
    /// The user: UID[:GID].
    #[arg(long, short)]
    pub user: Option<String>,
    /// Additional group IDs.
    #[arg(long, short = 'g')]
    pub additional_gids: Vec<u32>,
    /// Set no_new_privs for the process.
    #[arg(long)]
    pub no_new_privs: bool,
    /// Add a capability.
    #[arg(long, short)]
    pub cap: Vec<String>,
    /// Pass N descriptors after stdio to the process.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Ignored: minibox applies no AppArmor profile.
    #[arg(long)]
    pub apparmor: Option<String>,
    /// Ignored: minibox applies no SELinux label.
    #[arg(long)]
    pub process_label: Option<String>,
    /// The container's ID.
    pub id: String,
    /// The command and its arguments, without --process.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `ps`'s flags.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// table (runs ps(1) with the PIDs) or json (the PIDs).
    #[arg(long, short, default_value = "table")]
    pub format: String,
    /// The container's ID.
    pub id: String,
    /// Options passed to ps(1).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// `list`'s flags.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// table or json.
    #[arg(long, short, default_value = "table")]
    pub format: String,
    /// Only the IDs.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `update`'s flags: the specification's `linux.resources` as JSON.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// A file with the resources JSON, or `-` for stdin.
    #[arg(long, short)]
    pub resources: Option<PathBuf>,
    /// Memory limit in bytes.
    #[arg(long)]
    pub memory: Option<i64>,
    /// Maximum number of processes.
    #[arg(long)]
    pub pids_limit: Option<i64>,
    /// CPU quota in microseconds per period.
    #[arg(long)]
    pub cpu_quota: Option<i64>,
    /// CPU period in microseconds.
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// CPU shares (relative weight).
    #[arg(long)]
    pub cpu_share: Option<u64>,
    /// The container's ID.
    pub id: String,
}

/// `spec`'s flags.
#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Write config.json into this directory instead of the current one.
    #[arg(long, short)]
    pub bundle: Option<PathBuf>,
    /// A spec for a rootless container (a user namespace with the caller's ID).
    #[arg(long)]
    pub rootless: bool,
}

/// The command line of this process, parsed (clap exits with its message
/// on a bad one).
pub fn parse() -> Cli {
    Cli::parse()
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `time level message`.
    Text,
    /// `{"level":"error","msg":"...","time":"..."}`, one per line.
    Json,
}
// ANCHOR_END: cli
