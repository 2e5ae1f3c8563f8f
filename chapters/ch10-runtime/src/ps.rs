//! `minibox ps`: the containers on disk, chosen and printed as `docker ps`
//! chooses and prints them.
//!
//! `docker ps` is two programs. The daemon *chooses*: it walks its containers
//! newest first, keeps the running ones (or all, with `-a`), applies
//! `--filter` and stops after `-n N`. The CLI *prints*: it runs each chosen
//! container through a Go template, `table {{.ID}}\t{{.Image}}\t…` unless
//! `--format` says otherwise, shortening IDs and commands on the way, and
//! lines the columns up with a tab writer. minibox has no daemon, so one
//! process does both, but keeps them apart as Docker does ([`Ps::select`],
//! then [`Ps::write`]), in Docker's order, so the same mistakes give the same
//! messages: a bad `--filter` flag first, then a bad template, then a bad
//! filter key or value.
//!
//! What a reader of the book should take from this file:
//!
//! - `ps` is a *read* of state that other processes write: a second terminal
//!   can list what the first started because everything `ps` prints comes
//!   from a [`Row`] per container, built from the records on disk.
//! - Docker's columns are rules, not decoration: IDs are 12 characters,
//!   commands are quoted and cut to 20 characters with `…`, ports are grouped
//!   into ranges, times are words ([`crate::human`]), and the columns are
//!   padded to at least 10 characters with 3 spaces between.
//! - `--filter` keys combine as Docker's do: values of one key are
//!   alternatives (OR), different keys must all hold (AND); `name=` is a
//!   regular expression searched anywhere in the name.
//! - `--format` is a Go template. minibox understands the part of the
//!   language `ps` is used with (fields, `json`, `table`), and refuses the rest
//!   by name rather than printing something else.
//!
//! Nothing here touches the kernel or the disk: rows come in, text goes out.
//!
//! # Layout
//!
//! - *What a container is, for `ps`*: [`Row`], [`State`], [`Port`], [`Mount`],
//!   [`Size`].
//! - *The command line*: [`Options`], [`parse_filter`], [`Ps`].
//! - *Choosing*: `Selection`, the daemon's half (filters, order, limit).
//! - *Columns*: the CLI's `ContainerContext`, one function per field.
//! - *Templates*: the `--format` language, parsed and run.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};
use ch07_image_pull::digest;
use ch07_image_pull::reference::Reference;
use regex::Regex;
use tabwriter::TabWriter;

use crate::human;

/// TCP or UDP: chapter 9's protocol, as `-p` parsed it.
pub use ch09_networking::publish::Protocol;

// ---------------------------------------------------------------------------
// What a container is, for `ps`

/// One container, as `ps` needs it: everything a column or a filter reads.
///
/// The state module builds these from the records on disk; `ps` never looks
/// anywhere else, so a table can be tested from rows written by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The full ID, 64 hex digits; CONTAINER ID shows the first 12 unless
    /// `--no-trunc`.
    pub id: String,
    /// The container's name, `--name`'s or a generated one, without the
    /// leading `/` Docker's API puts on names.
    pub name: String,
    /// The image as the user named it on `run` or `create` (`busybox`,
    /// `redis:7`, `localhost:5000/app@sha256:…`, or an image ID). When that
    /// name has since come to mean another image (a newer pull, a `tag`) or
    /// nothing, Docker shows the image ID instead; the caller does the same
    /// by putting [`Row::image_id`] here.
    pub image: String,
    /// The image's ID (its config's digest, `sha256:…`) when the container
    /// was created: what `ancestor=` compares, and what IMAGE shows when the
    /// container was made from an ID.
    pub image_id: String,
    /// The command the container runs, entrypoint and arguments as the
    /// process received them (`["sh", "-c", "echo hi"]`).
    pub command: Vec<String>,
    /// When the container was created: CREATED, `.CreatedAt`, and the order
    /// of the list (newest first).
    pub created: SystemTime,
    /// Where the container is in its life.
    pub state: State,
    /// Its exposed and published ports.
    pub ports: Vec<Port>,
    /// The networks it is attached to (`bridge`, `none`, `host`), for
    /// `.Networks`.
    pub networks: Vec<String>,
    /// Its volumes and bind mounts, for `.Mounts` and `.LocalVolumes`.
    pub mounts: Vec<Mount>,
    /// Its sizes on disk, when asked for ([`Ps::wants_size`]): measuring a
    /// writable layer walks it, so Docker does it only for `-s` or a template
    /// that shows `.Size`.
    pub size: Option<Size>,
}

/// Where a container is in its life: Docker's states, with the times and
/// exit codes the STATUS column words need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Made by `create`, never started: `Created`.
    Created,
    /// Its process runs: `Up 5 seconds`, counted from `started`.
    Running {
        /// When the process started (the latest start, after a restart).
        started: SystemTime,
    },
    /// Running but frozen (the cgroup freezer): `Up 5 seconds (Paused)`.
    Paused {
        /// When the process started.
        started: SystemTime,
    },
    /// Exited, and about to start again by its `--restart` policy:
    /// `Restarting (1) 2 seconds ago`.
    Restarting {
        /// The status it last exited with.
        exit_code: i32,
        /// When it last exited.
        finished: SystemTime,
    },
    /// `rm` is taking it apart: `Removal In Progress`.
    Removing,
    /// Its process ended: `Exited (0) 3 minutes ago`.
    Exited {
        /// The exit status, Docker's way (128 + N for a signal N).
        exit_code: i32,
        /// When it ended.
        finished: SystemTime,
    },
    /// Its monitor is gone and its end unknown, or removing it failed:
    /// `Dead`. Only `rm` helps.
    Dead,
}

impl State {
    /// The state's name, as `.State` prints it and `status=` matches it.
    pub fn name(&self) -> &'static str {
        match self {
            State::Created => "created",
            State::Running { .. } => "running",
            State::Paused { .. } => "paused",
            State::Restarting { .. } => "restarting",
            State::Removing => "removing",
            State::Exited { .. } => "exited",
            State::Dead => "dead",
        }
    }

    /// Whether plain `ps` (without `-a`) lists it. Docker counts a paused and
    /// a restarting container as running: both still have a live process as
    /// far as the daemon's `State.Running` is concerned.
    pub fn is_running(&self) -> bool {
        matches!(
            self,
            State::Running { .. } | State::Paused { .. } | State::Restarting { .. }
        )
    }
}

/// One container port, exposed or published: a line of `docker port`, or an
/// `EXPOSE` of the image with no host side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Port {
    /// The port inside the container.
    pub container_port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The host address and port it is published on; `None` for a port that
    /// is only exposed (PORTS shows `80/tcp`).
    pub host: Option<(IpAddr, u16)>,
}

/// A volume or bind mount of the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The named volume (`-v data:/var/lib/data`); `None` for a bind mount.
    pub volume: Option<String>,
    /// The host path of a bind mount (`-v /srv/data:/data`), or the volume's
    /// directory.
    pub source: String,
}

/// A container's sizes on disk, for `ps -s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// What the container wrote: its writable layer.
    pub rw: u64,
    /// Everything it sees: the image's layers and the writable layer
    /// (Docker's "virtual" size). Zero when unknown, and then not shown.
    pub root_fs: u64,
}

// ---------------------------------------------------------------------------
// The command line

/// `ps`'s options, as the command line gave them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `-a`: every container, not only running ones.
    pub all: bool,
    /// `-q`: IDs only.
    pub quiet: bool,
    /// `-n N`: the N newest containers, in any state. `Some(0)` is no limit,
    /// as Docker's `-n 0` is.
    pub last: Option<usize>,
    /// `-l`: the newest container, in any state (`-n 1`, unless `-n` is
    /// given).
    pub latest: bool,
    /// `--no-trunc`: full IDs and commands.
    pub no_trunc: bool,
    /// `-s`: the SIZE column.
    pub size: bool,
    /// `--filter`/`-f` values, `KEY=VALUE` each, as typed.
    pub filters: Vec<String>,
    /// `--format`: `table`, `json`, `table TEMPLATE` or `TEMPLATE`.
    pub format: Option<String>,
}

/// Docker's warning when `-q` makes `--format` pointless; printed to stderr.
pub const QUIET_WARNING: &str =
    "WARNING: Ignoring custom format, because both --format and --quiet are set.";

/// Splits one `--filter` value into its key (lowercased, as Docker's CLI
/// does) and value, both trimmed. Usable as a clap value parser, so a value
/// without `=` is refused while the flags are read, as Docker refuses it.
pub fn parse_filter(arg: &str) -> Result<(String, String)> {
    let Some((key, value)) = arg.split_once('=') else {
        // Docker's cobra flag parser wraps this as
        // `invalid argument "…" for "-f, --filter" flag: …`.
        bail!("bad format of filter (expected name=value)");
    };
    Ok((key.trim().to_lowercase(), value.trim().to_string()))
}

/// A `ps` invocation, checked: which containers to choose and how to print
/// them. Made by [`Ps::new`]; then [`Ps::select`] chooses and [`Ps::write`]
/// prints.
#[derive(Debug, Clone)]
pub struct Ps {
    selection: Selection,
    template: Template,
    trunc: bool,
    wants_size: bool,
    warning: Option<&'static str>,
}

impl Ps {
    // ANCHOR: new
    /// Checks the options in Docker's order, with Docker's messages: the
    /// `--filter` flags' shape (the CLI's flag parser), the `--format`
    /// template (the CLI, before asking the daemon), then the filters' keys
    /// and values (the daemon).
    pub fn new(options: &Options) -> Result<Ps> {
        let mut filters: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for arg in options.filters.iter().filter(|arg| !arg.is_empty()) {
            let (key, value) = parse_filter(arg)?;
            filters.entry(key).or_default().insert(value);
        }
        let format = options.format.as_deref().unwrap_or("");
        // Docker checks any given template against an empty container
        // before listing, and notes whether it shows `.Size`.
        let shows_size = if format.is_empty() {
            false
        } else {
            Template::check(format)?
        };
        let wants_size = options.size || (shows_size && !options.quiet);
        let template = Template::for_ps(format, options.quiet, wants_size)?;
        let selection = Selection::new(&filters, options)?;
        Ok(Ps {
            selection,
            template,
            trunc: !options.no_trunc,
            wants_size,
            warning: (options.quiet && !format.is_empty()).then_some(QUIET_WARNING),
        })
    }
    // ANCHOR_END: new

    /// Whether the rows need their [`Row::size`]: `-s`, or a template that
    /// shows `.Size` (even through `{{json .}}`). Without it SIZE reads `0B`.
    pub fn wants_size(&self) -> bool {
        self.wants_size
    }

    /// A warning for stderr, if Docker would print one.
    pub fn warning(&self) -> Option<&'static str> {
        self.warning
    }

    /// Chooses the rows to print, newest first: running ones unless `-a`,
    /// `-n` or a `status=` filter says otherwise, those the filters keep, at
    /// most `-n` of them.
    ///
    /// `ancestor=` names images; `ancestors` says which image IDs a name
    /// means: the image it names (by name, tag, digest or ID prefix) and
    /// every image built on it. An image that does not exist means none.
    pub fn select(&self, rows: Vec<Row>, ancestors: impl Fn(&str) -> Vec<String>) -> Vec<Row> {
        self.selection.select(rows, ancestors)
    }

    /// Prints `rows`, in their order, as the template says: a table with a
    /// header row, or a line per container. `now` is when `ps` runs, for
    /// CREATED and STATUS.
    pub fn write(&self, rows: &[Row], now: SystemTime, mut out: impl Write) -> io::Result<()> {
        let columns = Columns {
            trunc: self.trunc,
            now,
        };
        if !self.template.table {
            for row in rows {
                writeln!(out, "{}", self.template.render(row, &columns))?;
            }
            return out.flush();
        }
        // Docker's table writer is Go's tabwriter with minwidth 10 and
        // padding 3: a column is as wide as its widest cell plus 3, and at
        // least 10. The Rust crate pads after taking the minimum, so its
        // minimum is 10 - 3.
        let mut table = TabWriter::new(out).minwidth(10 - 3).padding(3);
        writeln!(table, "{}", self.template.header())?;
        for row in rows {
            writeln!(table, "{}", self.template.render(row, &columns))?;
        }
        table.flush()
    }
}

// ---------------------------------------------------------------------------
// Choosing: the daemon's half

/// The filter keys Docker's daemon knows (`acceptedPsFilterTags` in moby's
/// `daemon/list.go`); any other is `invalid filter 'KEY'`.
const DOCKER_FILTERS: [&str; 15] = [
    "ancestor",
    "before",
    "exited",
    "id",
    "isolation",
    "label",
    "name",
    "status",
    "health",
    "since",
    "volume",
    "network",
    "is-task",
    "publish",
    "expose",
];

/// The ones minibox implements.
const MINIBOX_FILTERS: [&str; 5] = ["ancestor", "exited", "id", "name", "status"];

/// The values `status=` takes, in the order Docker's message lists them.
const STATES: [&str; 7] = [
    "created",
    "running",
    "paused",
    "restarting",
    "removing",
    "exited",
    "dead",
];

/// A `name=` or `id=` value: Docker's `filters.Args.Match`, the value
/// itself or a regular expression found anywhere in the name. A value that
/// is not a valid expression matches only itself.
#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    regex: Option<Regex>,
}

impl Pattern {
    fn new(text: &str) -> Pattern {
        Pattern {
            text: text.to_string(),
            regex: Regex::new(text).ok(),
        }
    }

    fn matches(&self, subject: &str) -> bool {
        self.text == subject || self.regex.as_ref().is_some_and(|r| r.is_match(subject))
    }
}

/// Which containers to list: the filters, checked, and the options that
/// choose (`-a`, `-n`, `-l`).
#[derive(Debug, Clone)]
struct Selection {
    all: bool,
    /// At most this many; 0 is no limit.
    limit: usize,
    names: Vec<Pattern>,
    ids: Vec<Pattern>,
    exited: Vec<i64>,
    states: Vec<String>,
    ancestors: Vec<String>,
}

impl Selection {
    /// Checks the filters as the daemon does (`Containers` and `foldFilter`
    /// in moby's `daemon/list.go`): unknown keys first, then `exited=`
    /// values, then `status=` values.
    fn new(filters: &BTreeMap<String, BTreeSet<String>>, options: &Options) -> Result<Selection> {
        if let Some(key) = filters
            .keys()
            .find(|k| !DOCKER_FILTERS.contains(&k.as_str()))
        {
            bail!("invalid filter '{key}'");
        }
        // SIMPLIFICATION: Docker also filters by label, health, volume,
        // network, published or exposed port, before/since another container,
        // and (for Swarm) is-task and isolation.
        if let Some(key) = filters
            .keys()
            .find(|k| !MINIBOX_FILTERS.contains(&k.as_str()))
        {
            bail!(
                "filter '{key}' is not supported by minibox (it knows ancestor, exited, id, name and status)"
            );
        }
        let values = |key: &str| filters.get(key).into_iter().flatten();
        let exited = values("exited")
            .map(|v| go_atoi(v).map_err(|e| anyhow::anyhow!("invalid filter 'exited={v}': {e}")))
            .collect::<Result<Vec<_>>>()?;
        let states: Vec<String> = values("status").cloned().collect();
        if let Some(bad) = states.iter().find(|s| !STATES.contains(&s.as_str())) {
            bail!(
                "invalid filter 'status={bad}': invalid value for state ({bad}): must be one of {}",
                STATES.join(", ")
            );
        }
        let limit = match (options.last, options.latest) {
            (Some(n), _) => n,
            (None, true) => 1,
            (None, false) => 0,
        };
        Ok(Selection {
            // Asking for a state is asking to see containers in it.
            all: options.all || !states.is_empty(),
            limit,
            names: values("name").map(|v| Pattern::new(v)).collect(),
            ids: values("id").map(|v| Pattern::new(v)).collect(),
            exited,
            states,
            ancestors: values("ancestor").cloned().collect(),
        })
    }

    fn select(&self, rows: Vec<Row>, ancestors: impl Fn(&str) -> Vec<String>) -> Vec<Row> {
        let images: Option<BTreeSet<String>> = (!self.ancestors.is_empty())
            .then(|| self.ancestors.iter().flat_map(|a| ancestors(a)).collect());
        let mut rows = self.candidates(rows);
        // Newest first; the ID breaks ties so that the order is the same
        // every time.
        rows.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        let mut chosen = Vec::new();
        for row in rows {
            if self.limit > 0 && chosen.len() == self.limit {
                break;
            }
            if self.keeps(&row, images.as_ref()) {
                chosen.push(row);
            }
        }
        chosen
    }

    /// With `id=` or `name=`, the daemon starts from the containers they
    /// name (`filterByNameIDMatches`): an `id=` value is an ID prefix that
    /// must name exactly one container (an ambiguous prefix names none), and
    /// when `id=` is given, `name=` only looks among those.
    fn candidates(&self, mut rows: Vec<Row>) -> Vec<Row> {
        if self.ids.is_empty() && self.names.is_empty() {
            return rows;
        }
        let mut matches: BTreeSet<String> = BTreeSet::new();
        for id in &self.ids {
            let mut hits = rows
                .iter()
                .filter(|r| !id.text.is_empty() && r.id.starts_with(&id.text));
            if let (Some(hit), None) = (hits.next(), hits.next()) {
                matches.insert(hit.id.clone());
            }
        }
        if !self.names.is_empty() {
            let by_id = !self.ids.is_empty();
            let named: Vec<String> = rows
                .iter()
                .filter(|r| (!by_id || matches.contains(&r.id)) && self.name_matches(r))
                .map(|r| r.id.clone())
                .collect();
            matches.extend(named);
        }
        rows.retain(|r| matches.contains(&r.id));
        rows
    }

    /// Docker matches a name with and without the `/` its API puts in front.
    fn name_matches(&self, row: &Row) -> bool {
        let slashed = format!("/{}", row.name);
        self.names
            .iter()
            .any(|p| p.matches(&row.name) || p.matches(&slashed))
    }

    // ANCHOR: keeps
    /// Whether the row passes: every key must hold (AND), any value of a key
    /// will do (OR). `includeContainerInList` in moby's `daemon/list.go`.
    fn keeps(&self, row: &Row, images: Option<&BTreeSet<String>>) -> bool {
        let listed = row.state.is_running() || self.all || self.limit > 0;
        let named = self.names.is_empty() || self.name_matches(row);
        let id = self.ids.is_empty() || self.ids.iter().any(|p| p.matches(&row.id));
        // SIMPLIFICATION: Docker also lets `exited=` match a dead or
        // removing container that once ran, by the code it exited with;
        // minibox keeps exit codes on exited containers only.
        let exited = self.exited.is_empty()
            || matches!(row.state, State::Exited { exit_code, .. }
                if self.exited.contains(&i64::from(exit_code)));
        let state = self.states.is_empty() || self.states.iter().any(|s| s == row.state.name());
        let ancestor = images.is_none_or(|images| images.contains(&row.image_id));
        listed && named && id && exited && state && ancestor
    }
    // ANCHOR_END: keeps
}

/// Go's `strconv.Atoi`, with its error messages: `exited=` values are read
/// with it.
fn go_atoi(text: &str) -> Result<i64, String> {
    text.parse::<i64>().map_err(|e| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        format!("strconv.Atoi: parsing {}: {why}", go_quote(text))
    })
}

// ---------------------------------------------------------------------------
// Columns: the CLI's half

/// What every column needs besides the row: whether to shorten, and when
/// "now" is.
struct Columns {
    trunc: bool,
    now: SystemTime,
}

/// The fields a template may name: the methods of Docker's
/// `ContainerContext` (`cli/command/formatter/container.go`), with their
/// table headers. Sorted by name, the order `{{json .}}` prints them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Command,
    CreatedAt,
    Id,
    Image,
    Labels,
    LocalVolumes,
    Mounts,
    Names,
    Networks,
    Ports,
    RunningFor,
    Size,
    State,
    Status,
}

const FIELDS: [(Field, &str, &str); 14] = [
    (Field::Command, "Command", "COMMAND"),
    (Field::CreatedAt, "CreatedAt", "CREATED AT"),
    (Field::Id, "ID", "CONTAINER ID"),
    (Field::Image, "Image", "IMAGE"),
    (Field::Labels, "Labels", "LABELS"),
    (Field::LocalVolumes, "LocalVolumes", "LOCAL VOLUMES"),
    (Field::Mounts, "Mounts", "MOUNTS"),
    (Field::Names, "Names", "NAMES"),
    (Field::Networks, "Networks", "NETWORKS"),
    (Field::Ports, "Ports", "PORTS"),
    (Field::RunningFor, "RunningFor", "CREATED"),
    (Field::Size, "Size", "SIZE"),
    (Field::State, "State", "STATE"),
    (Field::Status, "Status", "STATUS"),
];

impl Field {
    fn named(name: &str) -> Option<Field> {
        FIELDS
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(f, _, _)| *f)
    }

    fn header(self) -> &'static str {
        FIELDS
            .iter()
            .find(|(f, _, _)| *f == self)
            .map_or("", |e| e.2)
    }
}

impl Columns {
    /// One field of one row, as Docker's CLI prints it.
    fn value(&self, field: Field, row: &Row) -> String {
        match field {
            Field::Id if self.trunc => digest::short(&row.id).to_string(),
            Field::Id => row.id.clone(),
            Field::Image => self.image(row),
            Field::Command => {
                let command = command_line(&row.command);
                go_quote(&if self.trunc {
                    ellipsis(&command, 20)
                } else {
                    command
                })
            }
            Field::CreatedAt => go_time_utc(unix_seconds(row.created)),
            // Docker's API gives the creation time in whole seconds, so
            // CREATED can be a second ahead of STATUS.
            Field::RunningFor => human::ago(whole_seconds(row.created), self.now),
            Field::Status => human::status(&row.state, self.now),
            Field::State => row.state.name().to_string(),
            Field::Ports => ports(&row.ports),
            Field::Names => row.name.clone(),
            Field::Size => size(row.size),
            // SIMPLIFICATION: minibox containers have no labels (`--label`).
            Field::Labels => String::new(),
            Field::Mounts => self.mounts(&row.mounts),
            Field::LocalVolumes => row
                .mounts
                .iter()
                .filter(|m| m.volume.is_some())
                .count()
                .to_string(),
            Field::Networks => row.networks.join(","),
        }
    }

    /// IMAGE: the name the user gave, in its short ("familiar") form
    /// (`docker.io/library/busybox` is `busybox`), without a digest; an image
    /// ID shortened to 12 digits. Docker's `ContainerContext.Image`.
    fn image(&self, row: &Row) -> String {
        let image = &row.image;
        if image.is_empty() {
            return "<no image>".to_string();
        }
        if !self.trunc {
            return image.clone();
        }
        let short_id = digest::short(&row.image_id);
        if image.is_ascii() && digest::short(image) == short_id {
            return short_id.to_string();
        }
        let Ok(reference) = Reference::parse(image) else {
            return image.clone();
        };
        // Chapter 7's parse fills in `latest`; Docker shows a tag only when
        // the user typed one.
        let name_part = image.split('@').next().unwrap_or(image);
        let typed_tag = name_part
            .rsplit('/')
            .next()
            .is_some_and(|l| l.contains(':'));
        match (&reference.tag, typed_tag) {
            (Some(tag), true) => format!("{}:{tag}", reference.familiar_name()),
            _ => reference.familiar_name(),
        }
    }

    /// MOUNTS: volume names, or the source of a bind mount, each cut to 15
    /// characters.
    fn mounts(&self, mounts: &[Mount]) -> String {
        let names: Vec<String> = mounts
            .iter()
            .map(|m| m.volume.as_deref().unwrap_or(&m.source))
            .map(|n| {
                if self.trunc {
                    ellipsis(n, 15)
                } else {
                    n.to_string()
                }
            })
            .collect();
        names.join(",")
    }
}

/// The command as Docker's daemon joins it (`daemon/container/view.go`):
/// the program, then its arguments, an argument that holds a space in single
/// quotes. `["sh", "-c", "echo hi"]` is `sh -c 'echo hi'`.
fn command_line(argv: &[String]) -> String {
    let mut words = Vec::with_capacity(argv.len());
    for (i, arg) in argv.iter().enumerate() {
        if i > 0 && arg.contains(' ') {
            words.push(format!("'{arg}'"));
        } else {
            words.push(arg.clone());
        }
    }
    words.join(" ")
}

/// Docker's `Ellipsis`: at most `max` characters, the last one `…` when the
/// text was cut.
///
/// SIMPLIFICATION: Docker counts display columns, two for East Asian wide
/// characters; minibox counts characters.
fn ellipsis(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Go's `strconv.Quote`: double quotes, backslash escapes for quotes,
/// backslashes and control characters.
///
/// SIMPLIFICATION: Go also escapes invisible format characters (such as a
/// zero-width space); minibox escapes control characters and spaces other
/// than ` `.
fn go_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() || (c.is_whitespace() && c != ' ') => {
                let code = c as u32;
                if code <= 0xffff {
                    out.push_str(&format!("\\u{code:04x}"));
                } else {
                    out.push_str(&format!("\\U{code:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Seconds since the epoch, rounded down (a time before the epoch is
/// negative).
fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            -secs - i64::from(d.subsec_nanos() > 0)
        }
    }
}

/// `t` without its fraction of a second.
fn whole_seconds(t: SystemTime) -> SystemTime {
    let secs = unix_seconds(t);
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

/// `.CreatedAt`: Go's `time.Time.String()`, `2024-05-01 10:00:00 +0000 UTC`.
///
/// SIMPLIFICATION: Docker prints the local time and zone (`+0100 CET`);
/// minibox prints UTC, which is what Docker prints on a machine set to UTC.
fn go_time_utc(secs: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} +0000 UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => secs.to_string(),
    }
}

/// SIZE: `2B (virtual 21.5MB)`, the writable layer and everything the
/// container sees; `0B` when sizes were not measured.
fn size(size: Option<Size>) -> String {
    match size {
        None => "0B".to_string(),
        Some(Size { rw, root_fs: 0 }) => human::size(rw),
        Some(Size { rw, root_fs }) => {
            format!("{} (virtual {})", human::size(rw), human::size(root_fs))
        }
    }
}

// ANCHOR: ports
/// PORTS, as Docker's `DisplayablePorts` writes it: sorted, consecutive
/// ports on the same address and protocol grouped into ranges
/// (`80-82/tcp`, `0.0.0.0:80-81->80-81/tcp`), then the ports published on a
/// different host port (`0.0.0.0:8080->80/tcp`).
fn ports(ports: &[Port]) -> String {
    // A group: an address (None for exposed only) and protocol, first and
    // last port of the run.
    type Group = ((Option<IpAddr>, Protocol), u16, u16);
    let mut sorted = ports.to_vec();
    sorted.sort_by(|a, b| {
        let address = |p: &Port| p.host.map(|(ip, _)| (u8::from(ip.is_ipv6()), ip));
        (
            a.container_port,
            address(a),
            a.host.map(|h| h.1),
            a.protocol.to_string(),
        )
            .cmp(&(
                b.container_port,
                address(b),
                b.host.map(|h| h.1),
                b.protocol.to_string(),
            ))
    });
    let mut groups: Vec<Group> = Vec::new();
    let mut done = Vec::new();
    let mut remapped = Vec::new();
    for port in sorted {
        let current = port.container_port;
        if let Some((ip, public)) = port.host
            && public != current
        {
            let host = join_host_port(ip, &public.to_string());
            remapped.push(format!("{host}->{current}/{}", port.protocol));
            continue;
        }
        let key = (port.host.map(|(ip, _)| ip), port.protocol);
        match groups.iter_mut().find(|g| g.0 == key) {
            None => groups.push((key, current, current)),
            Some(group) if group.2.checked_add(1) == Some(current) => group.2 = current,
            Some(group) => {
                done.push(port_group(group));
                *group = (key, current, current);
            }
        }
    }
    done.extend(groups.iter().map(port_group));
    done.extend(remapped);
    done.join(", ")
}
// ANCHOR_END: ports

fn port_group(((ip, protocol), first, last): &((Option<IpAddr>, Protocol), u16, u16)) -> String {
    let range = if first == last {
        first.to_string()
    } else {
        format!("{first}-{last}")
    };
    match ip {
        Some(ip) => format!("{}->{range}/{protocol}", join_host_port(*ip, &range)),
        None => format!("{range}/{protocol}"),
    }
}

/// Go's `net.JoinHostPort`: an IPv6 address goes in brackets.
fn join_host_port(ip: IpAddr, port: &str) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

// ---------------------------------------------------------------------------
// Templates

/// The type Docker's error messages name when a template asks for a field
/// a container does not have.
const CONTEXT_TYPE: &str = "*formatter.ContainerContext";

/// Docker's default table, `defaultContainerTableFormat`.
const DEFAULT_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/// Functions Go's templates and Docker's CLI define, and template keywords:
/// minibox knows them by name, to say it does not support them rather than
/// Go's `function "…" not defined`.
const KNOWN_WORDS: [&str; 40] = [
    "and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf",
    "println", "urlquery", "eq", "ge", "gt", "le", "lt", "ne", "if", "else", "end", "range",
    "with", "define", "template", "block", "break", "continue", "nil", "true", "false", "json",
    "split", "join", "title", "lower", "upper", "pad", "truncate",
];

/// One piece of a `--format` template.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    /// Text printed as it is.
    Text(String),
    /// `{{.Field}}`.
    Field(Field),
    /// `{{json .}}` (`None`) or `{{json .Field}}`.
    Json(Option<Field>),
    /// `{{.Label "key"}}`: empty, minibox has no labels.
    Label(String),
}

/// A parsed `--format`: its parts, and whether it is a table.
#[derive(Debug, Clone, PartialEq)]
struct Template {
    table: bool,
    parts: Vec<Part>,
}

/// An action's source and where it starts, for error messages.
#[derive(Debug, Clone)]
struct Token {
    pos: usize,
    text: String,
}

/// A template as Go's parser leaves it: text, and actions split into words.
#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action { source: String, words: Vec<Token> },
}

impl Template {
    /// Docker's check of a `--format` before listing (in
    /// `buildContainerListOptions`): the template as typed, `table` and all,
    /// is parsed, then run once; errors come back as Docker words them.
    /// Returns whether the template shows `.Size`.
    fn check(format: &str) -> Result<bool> {
        let nodes = parse(format).map_err(|e| anyhow::anyhow!("failed to parse template: {e}"))?;
        let parts =
            compile(format, &nodes).map_err(|e| e.into_error("failed to execute template"))?;
        Ok(parts.iter().any(|p| {
            matches!(
                p,
                Part::Field(Field::Size) | Part::Json(None | Some(Field::Size))
            )
        }))
    }

    /// The template `ps` prints with (`NewContainerFormat` and
    /// `Format.templateString` in Docker's CLI): `-q` is the ID alone;
    /// `table` or nothing is the default table, with SIZE when sizes are
    /// measured; `json` is `{{json .}}`; `table TEMPLATE` a table with its
    /// header, where `\t` and `\n` written out become a tab and a newline.
    fn for_ps(format: &str, quiet: bool, size: bool) -> Result<Template> {
        let text = match format {
            _ if quiet => "{{.ID}}".to_string(),
            "" | "table" if size => format!("{DEFAULT_TABLE}\\t{{{{.Size}}}}"),
            "" | "table" => DEFAULT_TABLE.to_string(),
            // SIMPLIFICATION: Docker's `raw` format, a block of `key: value`
            // lines per container, is not implemented.
            "raw" => bail!("minibox does not support the raw format"),
            other => other.to_string(),
        };
        let table = text.starts_with("table");
        let body = match text.as_str() {
            "json" => "{{json .}}".to_string(),
            _ => text
                .strip_prefix("table")
                .unwrap_or(&text)
                .trim_matches(' ')
                .replace("\\t", "\t")
                .replace("\\n", "\n"),
        };
        let nodes = parse(&body).map_err(|e| anyhow::anyhow!("template parsing error: {e}"))?;
        let parts = compile(&body, &nodes).map_err(|e| e.into_error("template parsing error"))?;
        Ok(Template { table, parts })
    }

    /// One row, as the template says.
    fn render(&self, row: &Row, columns: &Columns) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field(field) => out.push_str(&columns.value(*field, row)),
                Part::Json(None) => out.push_str(&json_row(row, columns)),
                Part::Json(Some(field)) => out.push_str(&json_string(&columns.value(*field, row))),
                Part::Label(_) => {}
            }
        }
        out
    }

    /// The header row: the template run on the headers (Docker's
    /// `SubHeaderContext`), so literal text stays and each field is its
    /// column's name.
    fn header(&self) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field(field) | Part::Json(Some(field)) => out.push_str(field.header()),
                // Docker's header for `{{json .}}` fails there and prints
                // what came before it.
                Part::Json(None) => break,
                // `SubHeaderContext.Label`: the key's last dotted part.
                Part::Label(key) => {
                    let last = key.rsplit('.').next().unwrap_or(key);
                    out.push_str(&last.replace(['-', '_'], " "));
                }
            }
        }
        out
    }
}

/// Go's template parser, for the part of the language minibox runs: text,
/// and actions between `{{` and `}}` (with `{{-`/`-}}` trimming the space
/// around them, and `{{/* comments */}}`). Errors are Go's,
/// `template: :LINE: MESSAGE`.
fn parse(src: &str) -> Result<Vec<Node>, String> {
    let mut nodes = Vec::new();
    let mut rest = 0;
    while let Some(open) = src[rest..].find("{{").map(|i| rest + i) {
        let mut text = &src[rest..open];
        let mut start = open + 2;
        if src[start..].starts_with('-') && src[start + 1..].starts_with(is_go_space) {
            text = text.trim_end_matches(is_go_space);
            start += 1;
        }
        nodes.push(Node::Text(text.to_string()));
        let Some(close) = src[start..].find("}}").map(|i| start + i) else {
            return Err(format!(
                "template: :{}: unclosed action",
                1 + src.matches('\n').count()
            ));
        };
        let mut end = close;
        rest = close + 2;
        if src[start..close].ends_with('-') && src[start..close - 1].ends_with(is_go_space) {
            end = close - 1;
            let after = &src[rest..];
            rest += after.len() - after.trim_start_matches(is_go_space).len();
        }
        let body = src[start..end].trim_matches(is_go_space);
        if body.starts_with("/*") && body.ends_with("*/") {
            continue;
        }
        let words = words(src, start, end);
        let line = 1 + src[..open].matches('\n').count();
        match words.first() {
            None => return Err(format!("template: :{line}: missing value for command")),
            Some(w) if is_identifier(&w.text) && !KNOWN_WORDS.contains(&w.text.as_str()) => {
                return Err(format!(
                    "template: :{line}: function \"{}\" not defined",
                    w.text
                ));
            }
            _ => {}
        }
        nodes.push(Node::Action {
            source: src[open..close + 2].to_string(),
            words,
        });
    }
    nodes.push(Node::Text(src[rest..].to_string()));
    Ok(nodes)
}

/// The words of the action between `start` and `end`, with their positions;
/// a double-quoted string is one word.
fn words(src: &str, start: usize, end: usize) -> Vec<Token> {
    let mut words = Vec::new();
    let mut current: Option<usize> = None;
    let mut quoted = false;
    for (i, c) in src[start..end].char_indices().map(|(i, c)| (start + i, c)) {
        match current {
            None if is_go_space(c) => {}
            None => {
                current = Some(i);
                quoted = c == '"';
            }
            Some(_) if quoted => quoted = c != '"' || src[..i].ends_with('\\'),
            Some(from) if is_go_space(c) => {
                words.push(Token {
                    pos: from,
                    text: src[from..i].to_string(),
                });
                current = None;
            }
            Some(_) => quoted = c == '"',
        }
    }
    if let Some(from) = current {
        words.push(Token {
            pos: from,
            text: src[from..end].to_string(),
        });
    }
    words
}

fn is_go_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_identifier(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

/// Runs the parsed template once, as Docker does against an empty
/// container, turning each action into a [`Part`]; the first field a
/// container does not have is Go's execution error,
/// `template: :LINE:COL: executing "" at <.Foo>: can't evaluate field Foo in type *formatter.ContainerContext`.
fn compile(src: &str, nodes: &[Node]) -> Result<Vec<Part>, Refusal> {
    let mut parts = Vec::new();
    for node in nodes {
        match node {
            Node::Text(text) if text.is_empty() => {}
            Node::Text(text) => parts.push(Part::Text(text.clone())),
            Node::Action { source, words } => parts.push(action(src, source, words)?),
        }
    }
    Ok(parts)
}

fn action(src: &str, source: &str, words: &[Token]) -> Result<Part, Refusal> {
    let unsupported = || {
        Refusal::Unsupported(format!(
            "minibox's --format does not support {source}: it knows {{{{.Field}}}}, {{{{json .}}}}, {{{{json .Field}}}} and {{{{.Label \"key\"}}}}"
        ))
    };
    let first = &words[0];
    if first.text == "json" {
        if words.len() != 2 {
            let got = words.len() - 1;
            return Err(exec_error(
                src,
                first,
                &format!("wrong number of args for json: want 1 got {got}"),
            ));
        }
        return match words[1].text.as_str() {
            "." => Ok(Part::Json(None)),
            _ => field(src, &words[1])?
                .map(|f| Part::Json(Some(f)))
                .ok_or_else(unsupported),
        };
    }
    if source.contains('|')
        || source.contains('(')
        || !first.text.starts_with('.')
        || first.text == "."
    {
        return Err(unsupported());
    }
    if first.text == ".Label" {
        return match words {
            [_, key]
                if key.text.len() >= 2 && key.text.starts_with('"') && key.text.ends_with('"') =>
            {
                Ok(Part::Label(key.text[1..key.text.len() - 1].to_string()))
            }
            _ => Err(unsupported()),
        };
    }
    match field(src, first)? {
        Some(f) if words.len() == 1 => Ok(Part::Field(f)),
        _ => Err(unsupported()),
    }
}

/// The field a word like `.Names` names. An unknown first name is Go's
/// error; a chain (`.Names.Foo`) is `None`, not supported.
fn field(src: &str, word: &Token) -> Result<Option<Field>, Refusal> {
    let Some(path) = word.text.strip_prefix('.') else {
        return Ok(None);
    };
    let (name, chained) = match path.split_once('.') {
        Some((name, _)) => (name, true),
        None => (path, false),
    };
    match Field::named(name) {
        // `Label` is a method that takes a key: valid, but not alone.
        None if name == "Label" => Ok(None),
        None => Err(exec_error(
            src,
            word,
            &format!("can't evaluate field {name} in type {CONTEXT_TYPE}"),
        )),
        Some(_) if chained => Ok(None),
        Some(f) => Ok(Some(f)),
    }
}

/// Go's execution error: where (line, and byte in the line), which node, why.
fn exec_error(src: &str, word: &Token, why: &str) -> Refusal {
    let before = &src[..word.pos];
    let line = 1 + before.matches('\n').count();
    let column = before.rfind('\n').map_or(word.pos, |nl| word.pos - nl - 1);
    Refusal::Go(format!(
        "template: :{line}:{column}: executing \"\" at <{}>: {why}",
        word.text
    ))
}

/// Why a template cannot run.
enum Refusal {
    /// Go's own error, which Docker prints after a prefix of its own.
    Go(String),
    /// A part of the language minibox leaves out, said as it is.
    Unsupported(String),
}

impl Refusal {
    fn into_error(self, docker_prefix: &str) -> anyhow::Error {
        match self {
            Refusal::Go(why) => anyhow::anyhow!("{docker_prefix}: {why}"),
            Refusal::Unsupported(why) => anyhow::anyhow!(why),
        }
    }
}

/// `{{json .}}`: every field, keys sorted, as Go's `json.Marshal` writes a
/// map, which escapes `<`, `>` and `&` (so PORTS' `->` reads `-\u003e`).
fn json_row(row: &Row, columns: &Columns) -> String {
    let object: serde_json::Map<String, serde_json::Value> = FIELDS
        .iter()
        .map(|(f, name, _)| (name.to_string(), columns.value(*f, row).into()))
        .collect();
    let text = serde_json::Value::Object(object).to_string();
    go_json_escapes(&text)
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// `{{json .Field}}`: one string, through Docker's encoder, which leaves
/// `<`, `>` and `&` alone.
fn json_string(value: &str) -> String {
    go_json_escapes(&serde_json::Value::from(value).to_string())
}

/// Go's encoder also escapes the two Unicode line separators, which
/// serde_json leaves as they are.
fn go_json_escapes(json: &str) -> String {
    json.replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn at(seconds_ago: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW - seconds_ago)
    }

    fn now() -> SystemTime {
        at(0)
    }

    fn row(id_digit: char, name: &str, state: State) -> Row {
        Row {
            id: id_digit.to_string().repeat(64),
            name: name.to_string(),
            image: "busybox".to_string(),
            image_id: format!("sha256:{}", "b".repeat(64)),
            command: vec!["top".to_string()],
            created: at(60),
            state,
            ports: Vec::new(),
            networks: vec!["bridge".to_string()],
            mounts: Vec::new(),
            size: None,
        }
    }

    fn running() -> State {
        State::Running { started: at(60) }
    }

    fn exited(code: i32) -> State {
        State::Exited {
            exit_code: code,
            finished: at(30),
        }
    }

    fn ps(options: Options) -> Ps {
        Ps::new(&options).expect("valid options")
    }

    fn error(options: Options) -> String {
        Ps::new(&options).expect_err("invalid options").to_string()
    }

    fn with_filters(filters: &[&str]) -> Options {
        Options {
            filters: filters.iter().map(|f| f.to_string()).collect(),
            ..Options::default()
        }
    }

    fn names(rows: Vec<Row>) -> Vec<String> {
        rows.into_iter().map(|r| r.name).collect()
    }

    fn no_images(_: &str) -> Vec<String> {
        Vec::new()
    }

    fn value(field: Field, row: &Row, trunc: bool) -> String {
        Columns { trunc, now: now() }.value(field, row)
    }

    fn output(ps: &Ps, rows: &[Row]) -> String {
        let mut out = Vec::new();
        ps.write(rows, now(), &mut out).expect("writes to a Vec");
        String::from_utf8(out).expect("UTF-8")
    }

    // --- choosing -----------------------------------------------------

    /// `docker ps` lists running (and paused, and restarting) containers,
    /// `-a` all of them, newest first (`byCreatedDescending`).
    #[test]
    fn running_only_unless_all_and_newest_first() {
        let mut old = row('1', "old", running());
        old.created = at(500);
        let paused = row('2', "paused", State::Paused { started: at(60) });
        let mut new = row('3', "new", exited(0));
        new.created = at(5);
        let mut created = row('4', "created", State::Created);
        created.created = at(30);
        let rows = vec![old, paused, new, created];
        let plain = ps(Options::default()).select(rows.clone(), no_images);
        assert_eq!(names(plain), ["paused", "old"]);
        let all = ps(Options {
            all: true,
            ..Options::default()
        })
        .select(rows, no_images);
        assert_eq!(names(all), ["new", "created", "paused", "old"]);
    }

    /// `-n N` and `-l` show the newest containers in any state; `-n 0` is
    /// no limit (and running only), as Docker's `Limit <= 0`.
    #[test]
    fn last_and_latest() {
        let mut rows = Vec::new();
        for (i, digit) in ['1', '2', '3'].into_iter().enumerate() {
            let mut r = row(digit, &format!("c{i}"), exited(0));
            r.created = at(100 - i as u64);
            rows.push(r);
        }
        let select =
            |options: Options| names(ps(options).select(rows.clone(), no_images)).join(" ");
        let last = |n| Options {
            last: Some(n),
            ..Options::default()
        };
        assert_eq!(select(last(2)), "c2 c1");
        assert_eq!(select(last(0)), "");
        let latest = Options {
            latest: true,
            ..Options::default()
        };
        assert_eq!(select(latest.clone()), "c2");
        // `-n` wins over `-l`.
        assert_eq!(
            select(Options {
                last: Some(3),
                ..latest
            }),
            "c2 c1 c0"
        );
    }

    /// `status=` names a state, and implies `-a` (moby's `foldFilter` sets
    /// `All`); two values of one key are alternatives.
    #[test]
    fn status_filter() {
        let rows = vec![
            row('1', "up", running()),
            row('2', "done", exited(0)),
            row('3', "new", State::Created),
            row('4', "frozen", State::Paused { started: at(9) }),
        ];
        let select = |f: &[&str]| {
            let mut n = names(ps(with_filters(f)).select(rows.clone(), no_images));
            n.sort();
            n.join(" ")
        };
        assert_eq!(select(&["status=exited"]), "done");
        assert_eq!(select(&["status=created", "status=exited"]), "done new");
        assert_eq!(select(&["status=paused"]), "frozen");
        assert_eq!(select(&["status=running"]), "up");
    }

    /// `name=` is a regular expression searched anywhere in the name, with
    /// or without the leading `/` (the reference page's `name=nostalgic`
    /// finds `i_am_nostalgic` and `nostalgic_stallman`).
    #[test]
    fn name_filter_is_a_search() {
        let rows = vec![
            row('1', "i_am_nostalgic", running()),
            row('2', "nostalgic_stallman", running()),
            row('3', "high_albattani", running()),
        ];
        let select = |f: &[&str]| {
            let mut n = names(ps(with_filters(f)).select(rows.clone(), no_images));
            n.sort();
            n.join(" ")
        };
        assert_eq!(
            select(&["name=nostalgic"]),
            "i_am_nostalgic nostalgic_stallman"
        );
        assert_eq!(select(&["name=^nostalgic"]), "nostalgic_stallman");
        assert_eq!(select(&["name=^/nostalgic"]), "nostalgic_stallman");
        assert_eq!(select(&["name=alb.ttani$"]), "high_albattani");
        assert_eq!(
            select(&["name=stallman", "name=high"]),
            "high_albattani nostalgic_stallman"
        );
        // Not a valid expression: only the name itself would match.
        assert_eq!(select(&["name=nostalgic("]), "");
    }

    /// `id=` is a prefix naming one container; an ambiguous one names none
    /// (moby's `GetByPrefix` refuses it, and the error is dropped).
    #[test]
    fn id_filter_is_a_unique_prefix() {
        let mut a = row('a', "a", running());
        a.id = format!("abc1{}", "0".repeat(60));
        let mut b = row('b', "b", running());
        b.id = format!("abc2{}", "0".repeat(60));
        let rows = vec![a, b];
        let select =
            |f: &[&str]| names(ps(with_filters(f)).select(rows.clone(), no_images)).join(" ");
        assert_eq!(select(&["id=abc1"]), "a");
        assert_eq!(select(&["id=abc"]), "");
        assert_eq!(select(&["id=abc1", "id=abc2"]), "a b");
        // Different keys: both must hold.
        assert_eq!(select(&["id=abc1", "name=b"]), "");
        assert_eq!(select(&["id=abc1", "name=a"]), "a");
    }

    /// `exited=CODE` keeps exited containers with that code; it does not
    /// imply `-a` (the reference page uses `ps -a --filter exited=0`).
    #[test]
    fn exited_filter() {
        let rows = vec![
            row('1', "ok", exited(0)),
            row('2', "killed", exited(137)),
            row('3', "up", running()),
        ];
        let select = |all: bool, f: &[&str]| {
            let options = Options {
                all,
                ..with_filters(f)
            };
            let mut n = names(ps(options).select(rows.clone(), no_images));
            n.sort();
            n.join(" ")
        };
        assert_eq!(select(true, &["exited=137"]), "killed");
        assert_eq!(select(true, &["exited=0", "exited=137"]), "killed ok");
        assert_eq!(select(false, &["exited=0"]), "");
        assert_eq!(select(true, &["exited=0", "status=exited"]), "ok");
    }

    /// `ancestor=` compares image IDs: whatever the name resolves to (and
    /// images built on it). A name that resolves to nothing keeps nothing.
    #[test]
    fn ancestor_filter() {
        let mut ubuntu = row('1', "sleepy_bose", running());
        ubuntu.image = "ubuntu:24.04".to_string();
        ubuntu.image_id = "sha256:u".to_string();
        let mut child = row('2', "admiring_lovelace", running());
        child.image = "ubuntu-c1".to_string();
        child.image_id = "sha256:c".to_string();
        let other = row('3', "busy", running());
        let rows = vec![ubuntu, child, other];
        let images = |name: &str| match name {
            "ubuntu" => vec!["sha256:u".to_string(), "sha256:c".to_string()],
            "ubuntu-c1" => vec!["sha256:c".to_string()],
            _ => Vec::new(),
        };
        let select = |f: &[&str]| {
            let mut n = names(ps(with_filters(f)).select(rows.clone(), images));
            n.sort();
            n.join(" ")
        };
        assert_eq!(
            select(&["ancestor=ubuntu"]),
            "admiring_lovelace sleepy_bose"
        );
        assert_eq!(select(&["ancestor=ubuntu-c1"]), "admiring_lovelace");
        assert_eq!(select(&["ancestor=nothing"]), "");
    }

    /// The messages of Docker's CLI (`opts.FilterOpt.Set`) and daemon
    /// (`filters.invalidFilter`, `foldFilter`), checked in Docker's order.
    #[test]
    fn filter_errors_are_dockers() {
        assert_eq!(
            error(with_filters(&["status"])),
            "bad format of filter (expected name=value)"
        );
        assert_eq!(error(with_filters(&["foo=bar"])), "invalid filter 'foo'");
        // Keys are lowercased and trimmed by the CLI.
        assert_eq!(error(with_filters(&[" Foo =bar"])), "invalid filter 'foo'");
        assert_eq!(
            error(with_filters(&["status=up"])),
            "invalid filter 'status=up': invalid value for state (up): must be one of created, running, paused, restarting, removing, exited, dead"
        );
        assert_eq!(
            error(with_filters(&["exited=zero"])),
            "invalid filter 'exited=zero': strconv.Atoi: parsing \"zero\": invalid syntax"
        );
        assert_eq!(
            error(with_filters(&["exited=99999999999999999999"])),
            "invalid filter 'exited=99999999999999999999': strconv.Atoi: parsing \"99999999999999999999\": value out of range"
        );
        // Unknown keys are found before bad values.
        assert_eq!(
            error(with_filters(&["status=up", "zzz=1"])),
            "invalid filter 'zzz'"
        );
        // A key Docker knows and minibox does not is said so.
        assert!(error(with_filters(&["label=a"])).starts_with("filter 'label' is not supported"));
        // An empty --filter is ignored, as Docker ignores it.
        assert!(Ps::new(&with_filters(&[""])).is_ok());
    }

    // --- columns ------------------------------------------------------

    /// COMMAND is quoted and cut to 20 characters, the 20th being `…`
    /// (Docker's `Ellipsis` then `strconv.Quote`); arguments with a space
    /// are single-quoted by the daemon. `"docker-entrypoint.s…"` is what
    /// `docker ps` shows for redis.
    #[test]
    fn command_column() {
        let mut r = row('1', "x", running());
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        r.command = words(&["docker-entrypoint.sh", "redis-server"]);
        assert_eq!(value(Field::Command, &r, true), "\"docker-entrypoint.s…\"");
        assert_eq!(
            value(Field::Command, &r, false),
            "\"docker-entrypoint.sh redis-server\""
        );
        r.command = words(&["sh", "-c", "echo hi"]);
        assert_eq!(value(Field::Command, &r, true), "\"sh -c 'echo hi'\"");
        r.command = words(&["/bin/sh", "-c", "echo \"a\tb\""]);
        assert_eq!(
            value(Field::Command, &r, false),
            r#""/bin/sh -c 'echo \"a\tb\"'""#
        );
        r.command = words(&["12345678901234567890"]);
        assert_eq!(value(Field::Command, &r, true), "\"12345678901234567890\"");
        r.command = words(&["123456789012345678901"]);
        assert_eq!(value(Field::Command, &r, true), "\"1234567890123456789…\"");
        r.command = Vec::new();
        assert_eq!(value(Field::Command, &r, true), "\"\"");
    }

    #[test]
    fn go_quote_escapes_like_strconv_quote() {
        assert_eq!(go_quote("a\\b"), r#""a\\b""#);
        assert_eq!(go_quote("\x1b[0m"), r#""\x1b[0m""#);
        assert_eq!(go_quote("bell\x07"), r#""bell\a""#);
        assert_eq!(go_quote("\u{85}"), r#""\u0085""#);
        assert_eq!(go_quote("\u{a0}"), r#""\u00a0""#);
        assert_eq!(go_quote("héllo…"), "\"héllo…\"");
    }

    /// CONTAINER ID is 12 digits unless `--no-trunc`; IMAGE is the familiar
    /// name without a digest, an ID shortened (Docker's
    /// `ContainerContext.Image`).
    #[test]
    fn id_and_image_columns() {
        let mut r = row('c', "x", running());
        assert_eq!(value(Field::Id, &r, true), "cccccccccccc");
        assert_eq!(value(Field::Id, &r, false), "c".repeat(64));
        let image = |r: &mut Row, image: &str| {
            r.image = image.to_string();
            value(Field::Image, r, true)
        };
        assert_eq!(image(&mut r, "busybox"), "busybox");
        assert_eq!(image(&mut r, "busybox:latest"), "busybox:latest");
        assert_eq!(
            image(&mut r, "docker.io/library/busybox:1.36"),
            "busybox:1.36"
        );
        assert_eq!(image(&mut r, "localhost:5000/app"), "localhost:5000/app");
        let digest = format!("sha256:{}", "d".repeat(64));
        assert_eq!(image(&mut r, &format!("busybox@{digest}")), "busybox");
        assert_eq!(
            image(&mut r, &format!("busybox:1.36@{digest}")),
            "busybox:1.36"
        );
        // Run by ID: the short ID.
        let image_id = r.image_id.clone();
        assert_eq!(image(&mut r, &image_id), "bbbbbbbbbbbb");
        assert_eq!(image(&mut r, "bbbbbbbbbbbb"), "bbbbbbbbbbbb");
        assert_eq!(image(&mut r, ""), "<no image>");
        r.image = "docker.io/library/busybox".to_string();
        assert_eq!(value(Field::Image, &r, false), "docker.io/library/busybox");
    }

    /// PORTS groups consecutive ports (the reference page: "a container that
    /// exposes TCP ports 100, 101, 102 displays 100-102/tcp"; Docker's
    /// `container-list-without-format.golden`: `80-82/tcp`, `81/udp`,
    /// `8.8.8.8:82->82/tcp`), and puts ports published elsewhere last.
    #[test]
    fn ports_column() {
        let exposed = |port, protocol| Port {
            container_port: port,
            protocol,
            host: None,
        };
        let published = |ip: &str, host, port| Port {
            container_port: port,
            protocol: Protocol::Tcp,
            host: Some((ip.parse().expect("an address"), host)),
        };
        use Protocol::{Tcp, Udp};
        assert_eq!(ports(&[]), "");
        assert_eq!(
            ports(&[exposed(82, Tcp), exposed(80, Tcp), exposed(81, Tcp)]),
            "80-82/tcp"
        );
        assert_eq!(ports(&[exposed(81, Udp)]), "81/udp");
        assert_eq!(ports(&[published("8.8.8.8", 82, 82)]), "8.8.8.8:82->82/tcp");
        assert_eq!(
            ports(&[published("0.0.0.0", 32768, 80)]),
            "0.0.0.0:32768->80/tcp"
        );
        assert_eq!(
            ports(&[
                published("0.0.0.0", 8080, 80),
                published("0.0.0.0", 443, 443),
                published("0.0.0.0", 444, 444),
                exposed(53, Udp),
                exposed(53, Tcp),
                published("::", 8080, 80),
            ]),
            "53/tcp, 53/udp, 0.0.0.0:443-444->443-444/tcp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"
        );
        // A gap ends a range.
        assert_eq!(
            ports(&[exposed(80, Tcp), exposed(81, Tcp), exposed(83, Tcp)]),
            "80-81/tcp, 83/tcp"
        );
    }

    /// CREATED counts from the creation time in whole seconds (the API's
    /// `Created`), STATUS from the exact start: Docker's json example on the
    /// reference page shows `4 seconds ago` beside `Up 3 seconds`.
    #[test]
    fn created_and_status_columns() {
        let mut r = row('1', "x", running());
        // Created 3.9 seconds ago, started 3.8 seconds ago.
        r.created = at(4) + Duration::from_millis(100);
        r.state = State::Running {
            started: at(4) + Duration::from_millis(200),
        };
        assert_eq!(value(Field::RunningFor, &r, true), "4 seconds ago");
        assert_eq!(value(Field::Status, &r, true), "Up 3 seconds");
        assert_eq!(value(Field::State, &r, true), "running");
        // 2023-11-14 22:13:20 UTC is 1 700 000 000 seconds after the epoch.
        r.created = at(0);
        assert_eq!(
            value(Field::CreatedAt, &r, true),
            "2023-11-14 22:13:20 +0000 UTC"
        );
    }

    /// SIZE is `0B` when not measured, and `2B (virtual 21.5MB)` when it is
    /// (Docker's `ContainerContext.Size`; `container_test.go` expects
    /// `123B (virtual 12.3kB)`).
    #[test]
    fn size_mounts_and_networks_columns() {
        let mut r = row('1', "x", running());
        assert_eq!(value(Field::Size, &r, true), "0B");
        r.size = Some(Size {
            rw: 123,
            root_fs: 12_345,
        });
        assert_eq!(value(Field::Size, &r, true), "123B (virtual 12.3kB)");
        r.size = Some(Size { rw: 2, root_fs: 0 });
        assert_eq!(value(Field::Size, &r, true), "2B");
        r.mounts = vec![
            Mount {
                volume: Some("remote-volume".to_string()),
                source: "/var/lib/minibox/volumes/remote-volume".to_string(),
            },
            Mount {
                volume: None,
                source: "/srv/some/long/path".to_string(),
            },
        ];
        assert_eq!(
            value(Field::Mounts, &r, true),
            "remote-volume,/srv/some/long…"
        );
        assert_eq!(value(Field::LocalVolumes, &r, true), "1");
        assert_eq!(value(Field::Networks, &r, true), "bridge");
        assert_eq!(value(Field::Labels, &r, true), "");
    }

    // --- templates ----------------------------------------------------

    /// Docker's error messages for templates: an unknown field (text/template's
    /// execution error, column = byte offset in the `--format` as typed), an
    /// undefined function and an unclosed action (parse errors, line only).
    /// `container_test.go` in Docker's CLI has `function "InvalidFunction"
    /// not defined` and `template: :1:2: executing "" at <nil>: …`.
    #[test]
    fn template_errors_are_dockers() {
        let format = |f: &str| Options {
            format: Some(f.to_string()),
            ..Options::default()
        };
        assert_eq!(
            error(format("{{.Foo}}")),
            "failed to execute template: template: :1:2: executing \"\" at <.Foo>: can't evaluate field Foo in type *formatter.ContainerContext"
        );
        assert_eq!(
            error(format("table {{.ID}}\\t{{ .id }}")),
            "failed to execute template: template: :1:18: executing \"\" at <.id>: can't evaluate field id in type *formatter.ContainerContext"
        );
        assert_eq!(
            error(format("{{json .Nope}}")),
            "failed to execute template: template: :1:7: executing \"\" at <.Nope>: can't evaluate field Nope in type *formatter.ContainerContext"
        );
        assert_eq!(
            error(format("{{json}}")),
            "failed to execute template: template: :1:2: executing \"\" at <json>: wrong number of args for json: want 1 got 0"
        );
        assert_eq!(
            error(format("{{InvalidFunction}}")),
            "failed to parse template: template: :1: function \"InvalidFunction\" not defined"
        );
        assert_eq!(
            error(format("{{.ID}} {{.Names")),
            "failed to parse template: template: :1: unclosed action"
        );
        assert_eq!(
            error(format("{{}}")),
            "failed to parse template: template: :1: missing value for command"
        );
        // Parse errors come before execution errors, wherever they are.
        assert_eq!(
            error(format("{{.Foo}} {{nope}}")),
            "failed to parse template: template: :1: function \"nope\" not defined"
        );
        // Docker checks the template even with -q.
        assert!(
            error(Options {
                quiet: true,
                ..format("{{.Foo}}")
            })
            .contains("can't evaluate field Foo")
        );
        // What minibox does not run, it names.
        assert!(
            error(format("{{.Names | upper}}"))
                .starts_with("minibox's --format does not support {{.Names | upper}}")
        );
        assert!(
            error(format("{{range .}}{{end}}"))
                .starts_with("minibox's --format does not support {{range .}}")
        );
    }

    /// `-q` prints IDs, full with `--no-trunc`, and warns when a format was
    /// given too (Docker's `runPs`).
    #[test]
    fn quiet() {
        let rows = vec![row('1', "a", running()), row('2', "b", running())];
        let quiet = ps(Options {
            quiet: true,
            ..Options::default()
        });
        assert_eq!(output(&quiet, &rows), "111111111111\n222222222222\n");
        assert_eq!(quiet.warning(), None);
        let full = ps(Options {
            quiet: true,
            no_trunc: true,
            format: Some("{{.Names}}".to_string()),
            ..Options::default()
        });
        assert_eq!(output(&full, &rows[..1]), format!("{}\n", "1".repeat(64)));
        assert_eq!(full.warning(), Some(QUIET_WARNING));
    }

    /// A template without `table` prints a line per container, `\t` written
    /// out becoming a tab; `{{- ` and ` -}}` trim the spaces beside them.
    #[test]
    fn plain_templates() {
        let rows = vec![row('1', "web", running())];
        let format = |f: &str| {
            output(
                &ps(Options {
                    format: Some(f.to_string()),
                    ..Options::default()
                }),
                &rows,
            )
        };
        assert_eq!(format("{{.ID}}: {{.Command}}"), "111111111111: \"top\"\n");
        assert_eq!(format("{{.Names}}\\t{{.State}}"), "web\trunning\n");
        assert_eq!(format("  {{.Names}}  "), "web\n");
        assert_eq!(format("<{{- \t.Names -}}  >"), "<web>\n");
        assert_eq!(format("{{/* a comment */}}{{.Names}}"), "web\n");
        assert_eq!(format("{{json .Names}}"), "\"web\"\n");
        assert_eq!(format("{{.Label \"com.example\"}}|"), "|\n");
    }

    /// `{{json .}}` and `--format json`: every field, keys sorted, and Go's
    /// HTML escapes in the whole-object form (the reference page's example
    /// has `\u003cdocker-maint@nginx.com\u003e`); `{{json .Ports}}` goes
    /// through Docker's encoder, which does not escape.
    #[test]
    fn json() {
        let mut r = row('1', "boring_keldysh", running());
        r.image = "nginx".to_string();
        r.command = vec!["/docker-entrypoint.sh".to_string(), "nginx".to_string()];
        r.created = at(4);
        r.state = State::Running { started: at(3) };
        r.ports = vec![Port {
            container_port: 80,
            protocol: Protocol::Tcp,
            host: Some(("0.0.0.0".parse().expect("an address"), 8080)),
        }];
        let format = |f: &str| {
            output(
                &ps(Options {
                    format: Some(f.to_string()),
                    ..Options::default()
                }),
                std::slice::from_ref(&r),
            )
        };
        let expected = concat!(
            r#"{"Command":"\"/docker-entrypoint.…\"","CreatedAt":"2023-11-14 22:13:16 +0000 UTC","#,
            r#""ID":"111111111111","Image":"nginx","Labels":"","LocalVolumes":"0","Mounts":"","#,
            r#""Names":"boring_keldysh","Networks":"bridge","Ports":"0.0.0.0:8080-\u003e80/tcp","#,
            r#""RunningFor":"4 seconds ago","Size":"0B","State":"running","Status":"Up 3 seconds"}"#,
            "\n"
        );
        assert_eq!(format("json"), expected);
        assert_eq!(format("{{json .}}"), expected);
        assert_eq!(format("{{json .Ports}}"), "\"0.0.0.0:8080->80/tcp\"\n");
    }

    /// Sizes are measured for `-s`, and for a template that shows `.Size`
    /// (Docker's `FieldsUsed`), `{{json .}}` included, but not with `-q`, and
    /// not for `--format json`, which Docker checks as the plain text `json`.
    #[test]
    fn when_sizes_are_wanted() {
        let wants = |size: bool, quiet: bool, format: &str| {
            ps(Options {
                size,
                quiet,
                format: (!format.is_empty()).then(|| format.to_string()),
                ..Options::default()
            })
            .wants_size()
        };
        assert!(!wants(false, false, ""));
        assert!(wants(true, false, ""));
        assert!(wants(false, false, "{{.Names}} {{.Size}}"));
        assert!(wants(false, false, "{{json .}}"));
        assert!(!wants(false, false, "json"));
        assert!(!wants(false, true, "{{.Size}}"));
        assert!(!wants(false, false, "{{.Names}}"));
    }

    /// The header of a custom table is the template run on column names,
    /// literal text kept (Docker's `TestContainerContextWrite`:
    /// `table {{.Image}}` prints `IMAGE` then `ubuntu` per row).
    #[test]
    fn custom_table() {
        let mut r = row('1', "foobar_baz", running());
        r.image = "ubuntu".to_string();
        let table = |f: &str| {
            output(
                &ps(Options {
                    format: Some(f.to_string()),
                    ..Options::default()
                }),
                std::slice::from_ref(&r),
            )
        };
        assert_eq!(table("table {{.Image}}"), "IMAGE\nubuntu\n");
        assert_eq!(table("table {{.State}}"), "STATE\nrunning\n");
        assert_eq!(
            table("table {{.ID}}\\t{{.Names}}: {{.Status}}"),
            "CONTAINER ID   NAMES: STATUS\n111111111111   foobar_baz: Up About a minute\n"
        );
        assert_eq!(
            table("table {{.Names}}\\t{{.CreatedAt}}\\t{{.Label \"com.docker.swarm.node_name\"}}"),
            "NAMES        CREATED AT                      node name\nfoobar_baz   2023-11-14 22:12:20 +0000 UTC   \n"
        );
    }
}
