//! The recipe of chapter 11: `minibox build`. The Dockerfile is parsed
//! ([`crate::dockerfile`]); each stage starts from its `FROM` image and
//! goes through its instructions in order. Each instruction is a **step**
//! with a cache key ([`crate::cache`]): a hit reuses what an earlier build
//! made; a miss runs the step. Instructions that only change the config
//! (`ENV`, `CMD`, `USER`, ...) change it; `RUN`, `COPY`, `ADD` and
//! `WORKDIR` change files, and what they change becomes a layer
//! ([`crate::steps`]). The last stage's image is committed and tagged.
//!
//! The output is Docker's classic builder's: `Step N/M : INSTRUCTION`, then
//! ` ---> Using cache` or the step's own output, then ` ---> ID`, the ID of
//! the image after the step.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use ch01_fork_exec::narrate;
use ch04_mount_namespace::in_root::{self, TargetKind};
use ch07_image_pull::digest;
use ch07_image_pull::image::{self as ch07_image, PullPolicy};
use ch07_image_pull::platform;
use ch07_image_pull::progress::Output;
use ch07_image_pull::reference::Reference;
use ch07_image_pull::store::{ImageRecord, Store as ImageStore};
use serde_json::{Value, json};

use crate::cache::{self, Cache, Entry};
use crate::context::{self, Ignore, Source, Walk};
use crate::copy::{self, Attributes};
use crate::dockerfile::{self, Command, CopyFiles, Dockerfile, Instruction, Located, Stage};
use crate::filesystem::ReadOnly;
use crate::image::{Image, Layer};
use crate::steps::{self, Build};

/// What `minibox build` was asked.
#[derive(Debug, Clone)]
pub struct Options {
    /// `MINIBOX_ROOT`.
    pub root: PathBuf,
    /// The build context: the directory `COPY` and `ADD` read from.
    pub context: PathBuf,
    /// `-f`: the Dockerfile (default: `CONTEXT/Dockerfile`).
    pub dockerfile: PathBuf,
    /// `-t`: the names to give the image.
    pub tags: Vec<String>,
    /// `--build-arg NAME=VALUE` (or `NAME`, from our environment).
    pub build_args: BTreeMap<String, String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--target`: the stage to stop at.
    pub target: Option<String>,
    /// `--network` for `RUN`.
    pub network: String,
    /// `-q`: print only the image ID.
    pub quiet: bool,
    /// `SOURCE_DATE_EPOCH`, when set: the time of every image and file.
    pub epoch: Option<i64>,
}

/// A stage being built: its image, the key of its last step, and what its
/// instructions see.
struct StageState {
    image: Image,
    /// Its ID so far: the digest of its config as last committed.
    id: String,
    key: String,
    /// `ARG`s declared in the stage, with their values (`None`: unset).
    args: BTreeMap<String, Option<String>>,
    /// The shell of shell-form commands (`SHELL`).
    shell: Vec<String>,
    /// Whether a `CMD` was set in this stage (an `ENTRYPOINT` resets an
    /// inherited one, not this one).
    cmd_set: bool,
}

/// A finished stage: its name (if any) and image.
struct Built {
    name: Option<String>,
    image: Image,
    /// Its ID: its config's digest as last committed.
    id: String,
}

// ANCHOR: build
/// `minibox build`: returns the image's ID.
pub fn build(options: &Options) -> Result<String> {
    let text = std::fs::read_to_string(&options.dockerfile).with_context(|| {
        format!(
            "unable to prepare context: unable to read the Dockerfile {}",
            options.dockerfile.display()
        )
    })?;
    let dockerfile = dockerfile::parse(&text)?;
    let images = ImageStore::open(&options.root)?;
    let build = Build {
        root: &options.root,
        images: &images,
        created: created(options.epoch)?,
        epoch: options.epoch,
        network: options.network.clone(),
        quiet: options.quiet,
    };
    let ignore = Ignore::load(&options.context)?;
    let stages = stages_to_build(&dockerfile, options.target.as_deref())?;
    let total: usize = stages.iter().map(|s| 1 + s.instructions.len()).sum();
    let mut builder = Builder {
        options,
        build: &build,
        ignore: &ignore,
        dockerfile: &dockerfile,
        global: global_args(&dockerfile, options),
        used_args: Default::default(),
        built: Vec::new(),
        step: 0,
        total,
    };
    for stage in stages {
        let (image, id) = builder.stage(stage)?;
        builder.built.push(Built {
            name: stage.from.value.name.clone(),
            image,
            id,
        });
    }
    let mut image = builder.built.pop().expect("at least one stage").image;
    let unused = builder.unused_args();
    let created = image.config["created"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let record = image.commit(&images, &created)?;
    if !unused.is_empty() {
        eprintln!(
            "[Warning] One or more build-args [{}] were not consumed",
            unused.join(" ")
        );
    }
    tag(&images, &record, options)?;
    Ok(record.config)
}
// ANCHOR_END: build

/// The stages up to `--target` (or all), refusing a target no stage has.
fn stages_to_build<'a>(dockerfile: &'a Dockerfile, target: Option<&str>) -> Result<&'a [Stage]> {
    let Some(target) = target else {
        return Ok(&dockerfile.stages);
    };
    let wanted = target.to_lowercase();
    let index = dockerfile
        .stages
        .iter()
        .position(|s| s.from.value.name.as_deref() == Some(wanted.as_str()))
        .ok_or_else(|| anyhow!("failed to reach build target {target} in Dockerfile"))?;
    Ok(&dockerfile.stages[..=index])
}

/// The arguments declared before the first `FROM`, with their values.
fn global_args(dockerfile: &Dockerfile, options: &Options) -> BTreeMap<String, Option<String>> {
    let mut values = BTreeMap::new();
    for arg in &dockerfile.global_args {
        let value = options
            .build_args
            .get(&arg.name)
            .cloned()
            .or_else(|| arg.default.clone());
        values.insert(arg.name.clone(), value);
    }
    values
}

/// The time the build's images are said to be made: `SOURCE_DATE_EPOCH`'s,
/// or now, in RFC 3339.
fn created(epoch: Option<i64>) -> Result<String> {
    let time = match epoch {
        Some(seconds) => time::OffsetDateTime::from_unix_timestamp(seconds)
            .map_err(|e| anyhow!("SOURCE_DATE_EPOCH={seconds}: {e}"))?,
        None => time::OffsetDateTime::now_utc(),
    };
    Ok(time.format(&time::format_description::well_known::Rfc3339)?)
}

/// Names the image with every `-t`, and says so as Docker does.
fn tag(images: &ImageStore, record: &ImageRecord, options: &Options) -> Result<()> {
    if !options.quiet {
        narrate::print(format_args!(
            "Successfully built {}",
            digest::short(&record.config)
        ))?;
    }
    for name in &options.tags {
        let reference = Reference::parse(name)?;
        images.tag(&reference.canonical(), record.clone())?;
        if !options.quiet {
            let (name, tag) = (reference.familiar_name(), reference.manifest_reference());
            narrate::print(format_args!("Successfully tagged {name}:{tag}"))?;
        }
    }
    if options.quiet {
        narrate::print(&record.config)?;
    }
    Ok(())
}

/// Everything the steps of one build share.
struct Builder<'a> {
    options: &'a Options,
    build: &'a Build<'a>,
    ignore: &'a Ignore,
    dockerfile: &'a Dockerfile,
    /// The global `ARG`s.
    global: BTreeMap<String, Option<String>>,
    /// The `--build-arg`s some `ARG` declared.
    used_args: std::collections::BTreeSet<String>,
    /// The stages built so far.
    built: Vec<Built>,
    /// The step being run, counted from 1, and how many there are.
    step: usize,
    total: usize,
}

impl Builder<'_> {
    /// Prints `Step N/M : TEXT`.
    fn announce(&mut self, text: &str) -> Result<()> {
        self.step += 1;
        self.say(format_args!("Step {}/{} : {text}", self.step, self.total))
    }

    /// Prints ` ---> ID`, the image after a step (its config's digest).
    fn done(&self, id: &str) -> Result<()> {
        self.say(format_args!(" ---> {}", digest::short(id)))
    }

    /// One line of the build's output, unless `-q`.
    fn say(&self, line: std::fmt::Arguments) -> Result<()> {
        if !self.options.quiet {
            narrate::print(line)?;
        }
        Ok(())
    }

    /// One stage: its `FROM`, then its instructions.
    fn stage(&mut self, stage: &Stage) -> Result<(Image, String)> {
        self.announce(&stage.from.text)?;
        let mut state = self.from(stage)?;
        self.done(&state.id)?;
        for instruction in &stage.instructions {
            self.announce(&instruction.text)?;
            self.instruction(&mut state, instruction)?;
            self.done(&state.id)?;
        }
        Ok((state.image, state.id))
    }

    /// `FROM`: an earlier stage by name, `scratch`, or an image (pulled when
    /// the store does not have it).
    fn from(&mut self, stage: &Stage) -> Result<StageState> {
        let global = &self.global;
        let lookup = |name: &str| global.get(name).cloned().flatten();
        let from = &stage.from.value;
        let name = dockerfile::expand(&from.image, lookup, self.dockerfile.escape)?;
        // Its ID is the base image's (its config's digest), as Docker shows it.
        let (image, id) = if let Some(built) = self.earlier_stage(&name) {
            (built.image.clone(), built.id.clone())
        } else if name == "scratch" {
            let image = Image::scratch();
            let id = digest::sha256(&serde_json::to_vec(&image.config)?);
            (image, id)
        } else {
            let record = self.find_image(&name, from.platform.as_deref())?;
            (
                Image::from_store(self.build.images, &record)?,
                record.config,
            )
        };
        let shell = match image.config["config"]["Shell"].as_array() {
            Some(words) => words
                .iter()
                .filter_map(|w| w.as_str().map(String::from))
                .collect(),
            None => vec!["/bin/sh".to_string(), "-c".to_string()],
        };
        Ok(StageState {
            key: cache::key("", &format!("FROM {id}")),
            id,
            image,
            args: BTreeMap::new(),
            shell,
            cmd_set: false,
        })
    }

    /// The stage called `name` (or numbered so), if it was built already.
    fn earlier_stage(&self, name: &str) -> Option<&Built> {
        let lower = name.to_lowercase();
        self.built
            .iter()
            .find(|b| b.name.as_deref() == Some(lower.as_str()))
            .or_else(|| name.parse::<usize>().ok().and_then(|i| self.built.get(i)))
    }

    /// An image from the store, pulled first if it is not there, as `run`
    /// pulls.
    fn find_image(&self, name: &str, platform: Option<&str>) -> Result<ImageRecord> {
        let reference = Reference::parse(name)?;
        let wanted = platform::wanted(platform)?;
        let output = Output::narration(self.options.quiet);
        ch07_image::find_or_pull(
            self.build.images,
            &reference,
            PullPolicy::Missing,
            &wanted,
            output,
        )
    }

    /// One instruction, from the cache or run.
    fn instruction(
        &mut self,
        state: &mut StageState,
        located: &Located<Instruction>,
    ) -> Result<()> {
        // Some instructions change only what later ones see, not the image.
        if let Instruction::Arg(args) = &located.value {
            for arg in args {
                self.arg(state, &arg.name, arg.default.as_deref())?;
            }
            return Ok(());
        }
        if let Instruction::Shell(words) = &located.value {
            state.shell = words.clone();
        }
        let step = self.describe(state, &located.value)?;
        let key = cache::key(&state.key, &step);
        let cache = Cache::of(self.build.images);
        if !self.options.no_cache
            && let Some(entry) = cache.get(self.build.images, &key)?
        {
            self.say(format_args!(" ---> Using cache"))?;
            state.image = self.cached(&entry)?;
            state.id = entry.config;
        } else {
            self.execute(state, located)?;
            let mut image = state.image.clone();
            let record = image.commit(self.build.images, &self.build.created)?;
            state.image = image;
            state.id = record.config.clone();
            cache.put(
                &key,
                Entry {
                    config: record.config,
                    layers: state.image.layers.clone(),
                },
            )?;
        }
        state.key = key;
        Ok(())
    }

    /// The image a cache entry names.
    fn cached(&self, entry: &Entry) -> Result<Image> {
        let bytes = self
            .build
            .images
            .read_blob(&entry.config)?
            .ok_or_else(|| anyhow!("the cached image {} is gone", entry.config))?;
        Ok(Image {
            config: serde_json::from_slice(&bytes).context("parsing a cached config")?,
            layers: entry.layers.clone(),
        })
    }

    /// `ARG NAME[=DEFAULT]`: declares a build argument for the rest of the
    /// stage; its value is `--build-arg`'s, else the default, else a global
    /// one's of the same name.
    fn arg(&mut self, state: &mut StageState, name: &str, default: Option<&str>) -> Result<()> {
        let default = match default {
            Some(text) => Some(self.expand(state, text)?),
            None => self.global.get(name).cloned().flatten(),
        };
        let value = self.options.build_args.get(name).cloned().or(default);
        if self.options.build_args.contains_key(name) {
            self.used_args.insert(name.to_string());
        }
        state.args.insert(name.to_string(), value);
        Ok(())
    }

    /// The `--build-arg`s no `ARG` declared.
    fn unused_args(&self) -> Vec<String> {
        let global: Vec<&String> = self.global.keys().collect();
        self.options
            .build_args
            .keys()
            .filter(|k| !self.used_args.contains(*k) && !global.contains(k))
            .cloned()
            .collect()
    }

    /// A word with `$VARIABLE`s replaced: the image's environment first,
    /// then the stage's build arguments, as Docker looks them up.
    fn expand(&self, state: &StageState, word: &str) -> Result<String> {
        let env = state.image.env();
        let lookup = |name: &str| lookup(&env, state, name);
        Ok(dockerfile::expand(word, lookup, self.dockerfile.escape)?)
    }

    /// Words expanded and split as a shell would (`EXPOSE $PORTS`).
    fn words(&self, state: &StageState, words: &[String]) -> Result<Vec<String>> {
        let env = state.image.env();
        let lookup = |name: &str| lookup(&env, state, name);
        let mut all = Vec::new();
        for word in words {
            all.extend(dockerfile::expand_words(
                word,
                lookup,
                self.dockerfile.escape,
            )?);
        }
        Ok(all)
    }

    /// `NAME=VALUE` of every build argument the stage has a value for: what
    /// a `RUN` sees in its environment (and so its cache key).
    fn run_env(&self, state: &StageState) -> Vec<String> {
        state
            .args
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect()
    }

    /// The argv of a `RUN`, `CMD` or `ENTRYPOINT`: the exec form as it is,
    /// the shell form as the stage's shell's words.
    fn argv(state: &StageState, command: &Command) -> Vec<String> {
        match command {
            Command::Exec(words) => words.clone(),
            Command::Shell(line) => {
                let mut words = state.shell.clone();
                words.push(line.clone());
                words
            }
        }
    }

    // ANCHOR: describe
    /// What decides a step's result, as text: its cache key's second half.
    /// Variables are expanded first, so `ARG V` then `ENV X=$V` with another
    /// `--build-arg V=...` is another step.
    fn describe(&self, state: &StageState, instruction: &Instruction) -> Result<String> {
        Ok(match instruction {
            Instruction::Run(command) => format!(
                "RUN {:?} with {:?}",
                Self::argv(state, command),
                self.run_env(state)
            ),
            Instruction::Copy(_) | Instruction::Add(_) => {
                let copy = copy_files(instruction);
                let (sources, fingerprint) = self.sources(state, &copy)?;
                format!(
                    "{} {:?} {} -> {} chown {:?} chmod {:?}",
                    if matches!(instruction, Instruction::Add(_)) {
                        "ADD"
                    } else {
                        "COPY"
                    },
                    sources,
                    fingerprint,
                    self.expand(state, &copy.dest)?,
                    copy.chown,
                    copy.chmod
                )
            }
            other => format!(
                "{:?} after {:?}",
                self.expanded(state, other)?,
                state.image.env()
            ),
        })
    }
    // ANCHOR_END: describe
}

/// The parts of the build that change the image.
impl Builder<'_> {
    /// Runs an instruction that missed the cache.
    fn execute(&mut self, state: &mut StageState, located: &Located<Instruction>) -> Result<()> {
        let created_by = located.text.clone();
        let created = self.build.created.clone();
        match &located.value {
            Instruction::Run(command) => {
                let argv = Self::argv(state, command);
                let env = self.run_env(state);
                let step = steps::Run {
                    command: &argv,
                    env: &env,
                };
                let layer = steps::run(self.build, &state.image, &step)?;
                self.add(state, layer, &created_by, &created);
            }
            Instruction::Copy(_) | Instruction::Add(_) => {
                let add = matches!(located.value, Instruction::Add(_));
                let layer = self.copy(state, &copy_files(&located.value), add)?;
                self.add(state, layer, &created_by, &created);
            }
            Instruction::Workdir(_) => {
                let Instruction::Workdir(dir) = self.expanded(state, &located.value)? else {
                    unreachable!("a WORKDIR stays a WORKDIR")
                };
                let dir = absolute(state, &dir);
                state
                    .image
                    .settings()
                    .insert("WorkingDir".into(), json!(dir));
                let layer = steps::change_files(self.build, &state.image, &[], |root, _| {
                    in_root::open_in_root(root, Path::new(&dir), TargetKind::Dir).map(drop)
                })?;
                self.add(state, layer, &created_by, &created);
            }
            other => {
                let expanded = self.expanded(state, other)?;
                self.configure(state, expanded)?;
                state.image.history(&created_by, &created, true);
            }
        }
        Ok(())
    }

    /// Adds a step's layer (or notes that it made none) to the history.
    fn add(&self, state: &mut StageState, layer: Option<Layer>, by: &str, at: &str) {
        match layer {
            Some(layer) => state.image.add_layer(layer, by, at),
            None => state.image.history(by, at, true),
        }
    }

    /// An instruction that changes only the config.
    fn configure(&self, state: &mut StageState, instruction: Instruction) -> Result<()> {
        let image = &mut state.image;
        match instruction {
            Instruction::Env(pairs) => {
                let mut env = image.env();
                for (key, value) in pairs {
                    env.retain(|e| e.split_once('=').map(|(k, _)| k) != Some(key.as_str()));
                    env.push(format!("{key}={value}"));
                }
                image.settings().insert("Env".into(), json!(env));
            }
            Instruction::Cmd(command) => {
                let argv = Self::argv(state, &command);
                state.image.settings().insert("Cmd".into(), json!(argv));
                state.cmd_set = true;
            }
            Instruction::Entrypoint(command) => {
                let argv = Self::argv(state, &command);
                let settings = state.image.settings();
                settings.insert("Entrypoint".into(), json!(argv));
                if !state.cmd_set {
                    settings.insert("Cmd".into(), Value::Null);
                }
            }
            Instruction::Shell(words) => {
                image.settings().insert("Shell".into(), json!(words));
            }
            Instruction::User(user) => {
                image.settings().insert("User".into(), json!(user));
            }
            Instruction::Expose(ports) => {
                let exposed = object(image.settings(), "ExposedPorts");
                for port in ports {
                    let port = if port.contains('/') {
                        port
                    } else {
                        format!("{port}/tcp")
                    };
                    exposed.insert(port, json!({}));
                }
            }
            Instruction::Label(pairs) => {
                let labels = object(image.settings(), "Labels");
                for (key, value) in pairs {
                    labels.insert(key, json!(value));
                }
            }
            Instruction::StopSignal(signal) => {
                image.settings().insert("StopSignal".into(), json!(signal));
            }
            Instruction::Volume(paths) => {
                let volumes = object(image.settings(), "Volumes");
                for path in paths {
                    volumes.insert(path, json!({}));
                }
            }
            Instruction::Maintainer(author) => {
                image.config["author"] = json!(author);
            }
            other => bail!("minibox cannot build {other:?} yet"),
        }
        Ok(())
    }

    /// The instruction with its variables expanded, where Docker expands
    /// them (not in `RUN`, `CMD`, `ENTRYPOINT` or `SHELL`: their shell does).
    fn expanded(&self, state: &StageState, instruction: &Instruction) -> Result<Instruction> {
        let x = |word: &String| self.expand(state, word);
        let pairs = |pairs: &Vec<(String, String)>| -> Result<Vec<(String, String)>> {
            pairs.iter().map(|(k, v)| Ok((x(k)?, x(v)?))).collect()
        };
        let words = |list: &Vec<String>| -> Result<Vec<String>> { list.iter().map(x).collect() };
        Ok(match instruction {
            Instruction::Env(p) => Instruction::Env(pairs(p)?),
            Instruction::Label(p) => Instruction::Label(pairs(p)?),
            Instruction::Workdir(dir) => Instruction::Workdir(x(dir)?),
            Instruction::User(user) => Instruction::User(x(user)?),
            Instruction::Expose(ports) => Instruction::Expose(self.words(state, ports)?),
            Instruction::StopSignal(signal) => Instruction::StopSignal(x(signal)?),
            Instruction::Volume(paths) => Instruction::Volume(words(paths)?),
            Instruction::Maintainer(author) => Instruction::Maintainer(x(author)?),
            other => other.clone(),
        })
    }
}

/// A variable's value: the image's environment first, then the stage's
/// build arguments.
fn lookup(env: &[String], state: &StageState, name: &str) -> Option<String> {
    env.iter()
        .find_map(|e| e.strip_prefix(name)?.strip_prefix('=').map(String::from))
        .or_else(|| state.args.get(name).cloned().flatten())
}

/// `COPY`'s arguments, or `ADD`'s, which are the same without `--from`.
fn copy_files(instruction: &Instruction) -> CopyFiles {
    match instruction {
        Instruction::Copy(copy) => copy.clone(),
        Instruction::Add(add) => CopyFiles {
            sources: add.sources.clone(),
            dest: add.dest.clone(),
            from: None,
            chown: add.chown.clone(),
            chmod: add.chmod.clone(),
        },
        _ => unreachable!("only COPY and ADD copy files"),
    }
}

/// The stage's working directory so far (`/` when none was set).
fn workdir(state: &StageState) -> String {
    state.image.config["config"]["WorkingDir"]
        .as_str()
        .filter(|w| !w.is_empty())
        .unwrap_or("/")
        .to_string()
}

/// `WORKDIR`'s path: absolute as it is, relative to the previous one.
fn absolute(state: &StageState, dir: &str) -> String {
    absolute_in(&workdir(state), dir)
}

/// `path` made absolute from `workdir`, keeping a trailing `/`.
fn absolute_in(workdir: &str, path: &str) -> String {
    if path.starts_with('/') {
        return path.to_string();
    }
    format!("{}/{path}", workdir.trim_end_matches('/'))
}

/// The JSON object at `key` in `settings`, made if missing.
fn object<'a>(
    settings: &'a mut serde_json::Map<String, Value>,
    key: &str,
) -> &'a mut serde_json::Map<String, Value> {
    let slot = settings.entry(key).or_insert_with(|| json!({}));
    if !slot.is_object() {
        *slot = json!({});
    }
    slot.as_object_mut().expect("made an object above")
}

/// `COPY` and `ADD`.
impl Builder<'_> {
    /// The sources of a `COPY` or `ADD` (in the context, or in the image of
    /// `--from`), and their fingerprint for the cache key.
    fn sources(&self, state: &StageState, copy: &CopyFiles) -> Result<(Vec<String>, String)> {
        let sources: Vec<String> = copy
            .sources
            .iter()
            .map(|s| self.expand(state, s))
            .collect::<Result<_>>()?;
        if let Some(from) = &copy.from {
            let image = self.image_of(&self.expand(state, from)?)?;
            let config = serde_json::to_vec(&image.config)?;
            return Ok((sources, digest::sha256(&config)));
        }
        let resolved = self.resolve(&sources, "COPY")?;
        let fingerprint = context::fingerprint(&self.options.context, self.ignore, &resolved)?;
        Ok((sources, fingerprint))
    }

    /// The image `COPY --from` names: an earlier stage, or an image.
    fn image_of(&self, from: &str) -> Result<Image> {
        if let Some(built) = self.earlier_stage(from) {
            return Ok(built.image.clone());
        }
        let record = self.find_image(from, None)?;
        Image::from_store(self.build.images, &record)
    }

    /// Runs a `COPY` or an `ADD`; returns its layer.
    fn copy(&self, state: &StageState, copy: &CopyFiles, add: bool) -> Result<Option<Layer>> {
        let (sources, _) = self.sources(state, copy)?;
        let workdir = workdir(state);
        let dest = self.expand(state, &copy.dest)?;
        let chmod = match &copy.chmod {
            Some(text) => Some(
                u32::from_str_radix(&self.expand(state, text)?, 8)
                    .map_err(|_| anyhow!("invalid --chmod={text}: not an octal mode"))?,
            ),
            None => None,
        };
        let chown = copy
            .chown
            .as_ref()
            .map(|c| self.expand(state, c))
            .transpose()?;
        let attributes = |root: &Path| -> Result<Attributes> {
            let (uid, gid) = match &chown {
                Some(spec) => copy::owner(root, spec)?,
                None => (0, 0),
            };
            Ok(Attributes {
                uid,
                gid,
                mode: chmod,
            })
        };
        if let Some(from) = &copy.from {
            let from = self.expand(state, from)?;
            let dest = absolute_in(&workdir, &dest);
            return self.copy_from(state, &from, &sources, &dest, &attributes);
        }
        let name = if add { "ADD" } else { "COPY" };
        let resolved = self.resolve(&sources, name)?;
        let mut destination = context::destination(name, &dest, &workdir, &resolved)?;
        let walk = Walk::new(&self.options.context, self.ignore);
        let mut items = Vec::new();
        for source in &resolved {
            for item in walk.copied(source)? {
                items.push((source.clone(), item));
            }
        }
        let context_dir = self.options.context.clone();
        steps::change_files(self.build, &state.image, &[], |root, _| {
            let attributes = attributes(root)?;
            if copy::is_dir_in_root(root, &destination.path)? {
                destination.is_dir = true; // Docker copies into a directory there
            }
            for (source, item) in &items {
                let host = context_dir.join(&item.entry.path);
                let target = destination.target(source, &item.relative);
                if add && !source.is_dir && copy::is_archive(&host) {
                    let into = if destination.is_dir {
                        &destination.path
                    } else {
                        &target
                    };
                    copy::unpack(&host, root, into)?;
                } else {
                    copy::copy_entry(&host, root, &target, attributes)?;
                }
            }
            Ok(())
        })
    }

    /// `COPY --from`: `sources` (paths in the image or stage `from`) to
    /// `dest`, through an overlay with `from`'s layers mounted read-only
    /// beside it.
    fn copy_from(
        &self,
        state: &StageState,
        from: &str,
        sources: &[String],
        dest: &str,
        attributes: &dyn Fn(&Path) -> Result<Attributes>,
    ) -> Result<Option<Layer>> {
        let image = self.image_of(from)?;
        let layers = image
            .layers
            .iter()
            .map(|l| self.build.images.layer_dir(&l.diff_id))
            .collect::<Result<_>>()?;
        let read_only = [ReadOnly { layers }];
        steps::change_files(self.build, &state.image, &read_only, |root, points| {
            let attributes = attributes(root)?;
            for source in sources {
                let Some(path) = copy::source_in_root(&points[0], &Path::new("/").join(source))?
                else {
                    bail!(
                        "COPY failed: stat {source}: file does not exist in the stage or image {from}"
                    );
                };
                let into = dest.ends_with('/')
                    || sources.len() > 1
                    || copy::is_dir_in_root(root, Path::new(dest))?;
                let target = match (path.is_dir(), into) {
                    (false, true) => Path::new(dest).join(path.file_name().unwrap_or_default()),
                    _ => PathBuf::from(dest),
                };
                copy::copy(&path, root, &target, attributes)?;
            }
            Ok(())
        })
    }

    /// The context's sources of a `COPY` or an `ADD`, wildcards expanded,
    /// with Docker's `COPY failed: ...` when one is missing.
    fn resolve(&self, sources: &[String], instruction: &str) -> Result<Vec<Source>> {
        let mut resolved = Vec::new();
        for source in sources {
            if dockerfile::is_remote(source) {
                bail!(
                    "{instruction} from a URL ({source}) is not supported by minibox: download it in a RUN, or into the context"
                );
            }
            let found = context::resolve(&self.options.context, self.ignore, source)
                .with_context(|| format!("{instruction} failed"))?;
            resolved.extend(found);
        }
        Ok(resolved)
    }
}
