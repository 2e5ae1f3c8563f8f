//! The Dockerfile parser: the text of a Dockerfile becomes stages of typed
//! instructions, with Docker's error messages and line numbers; and the
//! variable expansion (`$VAR`, `${VAR:-default}`) the build applies to them.
//!
//! `docker build` reads a Dockerfile in three passes, and so does this module:
//!
//! 1. **Lines.** Parser directives at the very top (``# escape=` ``,
//!    `# syntax=...`) are read first, because the escape character decides
//!    how everything after them is read. Then comments and blank lines are
//!    dropped, and a line ending in the escape character is joined with the
//!    next: one *logical line* per instruction.
//! 2. **Instructions.** A logical line is a keyword (any case), flags
//!    (`--from=build`), and arguments whose shape depends on the keyword: a
//!    JSON array or a shell command (`RUN`, `CMD`, `ENTRYPOINT`), words
//!    (`COPY`, `EXPOSE`), `key=value` pairs (`ENV`, `LABEL`), or the rest of
//!    the line (`USER`, `WORKDIR`). `FROM` starts a stage; the `ARG`s before
//!    the first `FROM` are global.
//! 3. **Expansion**, later. Variables are replaced while the image is built,
//!    with the environment and build arguments of that moment: an `ENV`
//!    changes what the instructions after it see. So the parser keeps every
//!    argument as written, quotes included, and [`expand`] is a separate, pure
//!    function that the build calls instruction by instruction.
//!
//! ## Which instructions expand variables
//!
//! As in Docker (BuildKit), where the build expands, and with what:
//!
//! | instruction | what the build expands | with |
//! |---|---|---|
//! | `FROM` | the image, `--platform` | the global `ARG`s only |
//! | `ADD`, `COPY` | each source, the destination, `--chown`, `--chmod` | the stage's `ENV` and `ARG`s |
//! | `ENV`, `LABEL` | each key and each value | the same |
//! | `ARG` | the name and the default | the same |
//! | `EXPOSE` | each port, split again into words ([`expand_words`]) | the same |
//! | `STOPSIGNAL`, `USER`, `VOLUME`, `WORKDIR` | the argument(s) | the same |
//! | `COPY --from` | nothing: Docker refuses a variable there | — |
//! | `RUN`, `CMD`, `ENTRYPOINT`, `SHELL` | nothing: the container's shell does it when the command runs | — |
//!
//! (`ONBUILD` expands like the instruction it wraps; minibox refuses it.)
//!
//! ## What minibox refuses
//!
//! Each with one line naming it, never silently: `ONBUILD`, `HEALTHCHECK`,
//! heredocs (`RUN <<EOF`), `RUN --mount`/`--network`/`--security`/`--device`,
//! `COPY --link`/`--parents`/`--exclude`, `ADD --checksum` and the other `ADD`
//! flags but `--chown`/`--chmod`, and `ADD` of a URL or a git repository. A
//! flag Docker does not know either is `unknown flag: --name`, as in Docker.
//! `MAINTAINER`, deprecated in Docker but still accepted there, is accepted.
//!
//! ## Layout
//!
//! - The types: [`Dockerfile`], [`Stage`], [`Located`], [`Instruction`],
//!   [`ParseError`].
//! - [`parse`]: directives, then logical lines, then one instruction per line,
//!   placed into its stage.
//! - One function per argument shape: exec or shell form, sources and
//!   destination, `key=value` pairs, words.
//! - [`expand`] and [`expand_words`]: a small shell lexer.

use std::fmt;
use std::iter::Peekable;
use std::str::Chars;

/// A parsed Dockerfile: what the build walks through, stage by stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The escape character: `\`, or `` ` `` if an ``# escape=` `` directive
    /// chose it (Windows paths are full of backslashes). [`expand`] needs it
    /// too, since it escapes `$` and quotes in arguments.
    pub escape: char,
    /// The `ARG`s before the first `FROM`: the only variables a `FROM` line
    /// can use. A stage sees one only if it declares the `ARG` again.
    pub global_args: Vec<Arg>,
    /// The stages, in order. Never empty: a Dockerfile without `FROM` is an
    /// error.
    pub stages: Vec<Stage>,
}

/// One stage: a base image and what is done on top of it. Only the last
/// stage becomes the image; earlier ones exist for `COPY --from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// The `FROM` line that starts the stage.
    pub from: Located<FromImage>,
    /// Every instruction after it, up to the next `FROM`.
    pub instructions: Vec<Located<Instruction>>,
}

/// What a `FROM` line says. (Not named `From`, which would hide the
/// standard library's conversion trait in this module.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromImage {
    /// The base image as written (`golang:${GO_VERSION}-alpine`), `scratch`,
    /// or the name of an earlier stage; the build expands it with the global
    /// `ARG`s.
    pub image: String,
    /// The stage's name from `AS name`, lower-cased as Docker does: stage
    /// names are case-insensitive. `COPY --from=name` refers to it.
    pub name: Option<String>,
    /// `--platform=linux/arm64`, as written.
    pub platform: Option<String>,
}

/// Something parsed, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    /// The 1-based line the instruction starts on.
    pub line: usize,
    /// The instruction's source, continuation lines joined and comments
    /// inside it dropped: what `docker history` shows, what the build cache
    /// key is made of, and what an error message can quote.
    pub text: String,
    /// The parsed value.
    pub value: T,
}

/// One instruction of a stage. Arguments are as written, quotes and escapes
/// included, until the build passes them through [`expand`] (see the table
/// in the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// `RUN`: a command run in a container of the image so far; what it
    /// changes becomes a layer.
    Run(Command),
    /// `CMD`: the image's default command (or default arguments of the
    /// entrypoint).
    Cmd(Command),
    /// `ENTRYPOINT`: the program the container always starts.
    Entrypoint(Command),
    /// `SHELL ["/bin/bash", "-c"]`: what runs shell-form commands from here
    /// on (`["/bin/sh", "-c"]` by default). JSON form only, as in Docker.
    Shell(Vec<String>),
    /// `COPY`: files from the build context or from another stage.
    Copy(CopyFiles),
    /// `ADD`: like `COPY`, but local tar archives are unpacked.
    Add(AddFiles),
    /// `ENV`: environment variables, as `(key, value)` in order.
    Env(Vec<(String, String)>),
    /// `ARG`: build arguments the following instructions may use. One line
    /// may declare several (`ARG A B=2`).
    Arg(Vec<Arg>),
    /// `WORKDIR`: the working directory, created if missing.
    Workdir(String),
    /// `USER`: `user`, `uid`, `user:group`.
    User(String),
    /// `EXPOSE`: ports (`80`, `53/udp`) recorded in the image config.
    Expose(Vec<String>),
    /// `LABEL`: metadata, as `(key, value)` in order.
    Label(Vec<(String, String)>),
    /// `STOPSIGNAL`: what `docker stop` sends first (`SIGTERM` by default).
    StopSignal(String),
    /// `VOLUME`: paths that are volumes in every container of the image.
    Volume(Vec<String>),
    /// `MAINTAINER`: the image's author. Deprecated in favour of a label,
    /// still accepted by Docker, so accepted here.
    Maintainer(String),
}

/// How `RUN`, `CMD` and `ENTRYPOINT` name their program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Exec form, `["nginx", "-g", "daemon off;"]`: the program and its
    /// arguments, run as they are, without a shell.
    Exec(Vec<String>),
    /// Shell form, `nginx -g 'daemon off;'`: the text, handed as one
    /// argument to the `SHELL` (`/bin/sh -c TEXT`).
    Shell(String),
}

/// The arguments of `COPY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyFiles {
    /// Paths in the build context (or in stage `from`), maybe with wildcards.
    pub sources: Vec<String>,
    /// Where they go in the image; a directory if it ends with `/` or if
    /// there are several sources.
    pub dest: String,
    /// `--from=stage`: copy from an earlier stage (a name or an index) or an
    /// image instead of the build context.
    pub from: Option<String>,
    /// `--chown=user:group` for the copied files.
    pub chown: Option<String>,
    /// `--chmod=755` for the copied files.
    pub chmod: Option<String>,
}

/// The arguments of `ADD`: `COPY`'s, without `--from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddFiles {
    /// Paths in the build context. Local only: see [`is_remote`].
    pub sources: Vec<String>,
    /// Where they go in the image.
    pub dest: String,
    /// `--chown=user:group` for the added files.
    pub chown: Option<String>,
    /// `--chmod=755` for the added files.
    pub chmod: Option<String>,
}

/// One build argument declared by `ARG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// Its name, `VERSION`.
    pub name: String,
    /// `ARG VERSION=1.0`: used when `--build-arg` does not set it.
    pub default: Option<String>,
}

/// A Dockerfile minibox cannot build, with where and Docker's words for why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The 1-based line of the instruction at fault; `None` when the fault is
    /// the file as a whole (an empty file has no line to point at).
    pub line: Option<usize>,
    /// Docker's message, `unknown instruction: FOO`.
    pub message: String,
}

impl ParseError {
    fn at(line: usize, message: impl Into<String>) -> Self {
        ParseError {
            line: Some(line),
            message: message.into(),
        }
    }

    fn whole_file(message: &str) -> Self {
        ParseError {
            line: None,
            message: message.to_string(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            // BuildKit's wording (the classic builder said "Dockerfile parse
            // error line 3: ...").
            Some(line) => write!(f, "dockerfile parse error on line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ParseError {}

/// A word [`expand`] could not expand: an unterminated quote or `${`, a
/// `${VAR?message}` whose variable is unset, or a substitution minibox does
/// not do (`${VAR%suffix}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandError {
    /// The word, as written.
    pub word: String,
    /// What is wrong with it, in the shell lexer's words.
    pub reason: String,
}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "failed to process {:?}: {}", self.word, self.reason)
    }
}

impl std::error::Error for ExpandError {}

/// Parses a whole Dockerfile.
///
/// Fails on the first instruction that is malformed, unknown, or something
/// minibox does not do, naming its line; and on a file with no `FROM`.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    if text.is_empty() {
        return Err(ParseError::whole_file("the Dockerfile cannot be empty"));
    }
    // A UTF-8 byte-order mark, as some Windows editors write, is not text.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let escape = read_directives(text)?;
    let lines = logical_lines(text, escape);
    if lines.is_empty() {
        let last = text.lines().count().max(1);
        return Err(ParseError::at(last, "file with no instructions"));
    }
    let mut dockerfile = Dockerfile {
        escape,
        global_args: Vec::new(),
        stages: Vec::new(),
    };
    for LogicalLine { line, text } in lines {
        let value = parse_line(&text, escape).map_err(|message| ParseError::at(line, message))?;
        place(&mut dockerfile, Located { line, text, value })?;
    }
    if dockerfile.stages.is_empty() {
        return Err(ParseError::whole_file(
            "dockerfile contains no stages to build",
        ));
    }
    Ok(dockerfile)
}

/// What one logical line is: the start of a stage, or an instruction.
#[derive(Debug)]
enum Line {
    From(FromImage),
    Instruction(Instruction),
}

/// Puts one parsed line where it belongs: a `FROM` opens a stage, an `ARG`
/// before any `FROM` is global, anything else joins the current stage.
fn place(dockerfile: &mut Dockerfile, line: Located<Line>) -> Result<(), ParseError> {
    let Located { line, text, value } = line;
    match value {
        Line::From(from) => dockerfile.stages.push(Stage {
            from: Located {
                line,
                text,
                value: from,
            },
            instructions: Vec::new(),
        }),
        Line::Instruction(Instruction::Arg(args)) if dockerfile.stages.is_empty() => {
            dockerfile.global_args.extend(args);
        }
        Line::Instruction(value) => {
            let stage = dockerfile
                .stages
                .last_mut()
                .ok_or_else(|| ParseError::at(line, "no build stage in current context"))?;
            stage.instructions.push(Located { line, text, value });
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Pass 1: directives and logical lines.

// ANCHOR: directives
/// The escape character the parser directives choose, `\` without one.
///
/// Directives are comments of the form `# key=value`, and only while every
/// line so far has been one: the first line that is not (an instruction, a
/// blank line, any other comment) ends them, and a directive after that is
/// an ordinary comment. Keys are case-insensitive. `escape` takes `\` or
/// `` ` ``. `syntax` (which frontend image BuildKit should run) and `check`
/// (lint settings) are accepted and ignored: minibox has one parser and no
/// linter.
fn read_directives(text: &str) -> Result<char, ParseError> {
    let mut escape = '\\';
    let mut seen: Vec<String> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let Some((key, value)) = directive(line) else {
            break;
        };
        let number = index + 1;
        if seen.contains(&key) {
            let message = format!("only one {key} parser directive can be used");
            return Err(ParseError::at(number, message));
        }
        if key == "escape" {
            escape = match value {
                "\\" => '\\',
                "`" => '`',
                _ => {
                    let message = format!("invalid escape token '{value}' does not match ` or \\");
                    return Err(ParseError::at(number, message));
                }
            };
        }
        seen.push(key);
    }
    Ok(escape)
}

/// `# key=value` with a key Docker knows, as (lower-case key, value).
fn directive(line: &str) -> Option<(String, &str)> {
    let comment = line.trim_start().strip_prefix('#')?.trim_start();
    let (key, value) = comment.split_once('=')?;
    let key = key.trim_end().to_ascii_lowercase();
    let value = value.trim();
    let known = matches!(key.as_str(), "escape" | "syntax" | "check");
    (known && !value.is_empty()).then_some((key, value))
}
// ANCHOR_END: directives

/// The source of one instruction: physical lines joined where they ended in
/// the escape character.
#[derive(Debug)]
struct LogicalLine {
    /// The 1-based line it starts on.
    line: usize,
    /// The joined text, without the escape characters that joined it.
    text: String,
}

// ANCHOR: logical_lines
/// The file's instructions, one logical line each.
///
/// A line ending in the escape character (spaces after it allowed) goes on
/// on the next line; the two are joined without a newline, so
/// `apt-get update && \` followed by `    apt-get install` reads
/// `apt-get update &&     apt-get install`. Comment lines and empty lines
/// inside a continued instruction are skipped, as Docker does (it warns about
/// the empty ones; they will become errors there one day).
fn logical_lines(text: &str, escape: char) -> Vec<LogicalLine> {
    let mut logical = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, first)) = lines.next() {
        let first = first.trim_start();
        if is_comment(first) {
            continue;
        }
        let mut joined = String::new();
        let mut more = append_line(&mut joined, first, escape);
        if !more && joined.is_empty() {
            continue; // a blank line
        }
        while more {
            let Some((_, next)) = lines.next() else {
                break; // the file ended in the middle of the instruction
            };
            if is_comment(next) || next.trim().is_empty() {
                continue;
            }
            more = append_line(&mut joined, next, escape);
        }
        let text = joined.trim_end().to_string();
        logical.push(LogicalLine {
            line: index + 1,
            text,
        });
    }
    logical
}

/// Appends `line` to `joined`, without its final escape character if it has
/// one; returns whether it had one, that is whether the instruction goes on.
/// An escaped escape character (`\\`) at the end of a line does not continue.
fn append_line(joined: &mut String, line: &str, escape: char) -> bool {
    let body = line.trim_end_matches([' ', '\t']);
    match body.strip_suffix(escape) {
        Some(head) if !head.ends_with(escape) => {
            joined.push_str(head);
            true
        }
        _ => {
            joined.push_str(line);
            false
        }
    }
}
// ANCHOR_END: logical_lines

/// Whether a line is a comment: `#` first, after optional whitespace. A `#`
/// anywhere else is an argument (`RUN echo '#1'`).
fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

// ---------------------------------------------------------------------------
// Pass 2: one logical line becomes one instruction.

// ANCHOR: dispatch
/// One logical line, parsed by its keyword's rules. Errors are Docker's
/// messages; the caller adds the line number.
fn parse_line(text: &str, escape: char) -> Result<Line, String> {
    let (keyword, flag_words, args) = split_line(text, escape);
    let name = keyword.to_ascii_uppercase();
    let mut flags = Flags {
        keyword: name.clone(),
        words: flag_words,
    };
    let instruction = match name.as_str() {
        "FROM" => {
            let flags = flags.take(&["platform"], &[])?;
            return from_image(args, flags).map(Line::From);
        }
        "RUN" => {
            let refused = ["mount", "network", "security", "device"];
            flags.take(&[], &refused)?;
            Instruction::Run(run_command(args)?)
        }
        "CMD" => Instruction::Cmd(command(&name, args)?),
        "ENTRYPOINT" => Instruction::Entrypoint(command(&name, args)?),
        "SHELL" => Instruction::Shell(shell(args)?),
        "COPY" => {
            let refused = ["link", "parents", "exclude"];
            let flags = flags.take(&["from", "chown", "chmod"], &refused)?;
            Instruction::Copy(copy_files(args, flags)?)
        }
        "ADD" => {
            let refused = ["link", "checksum", "keep-git-dir", "unpack", "exclude"];
            let flags = flags.take(&["chown", "chmod"], &refused)?;
            Instruction::Add(add_files(args, flags)?)
        }
        "ENV" => Instruction::Env(key_values(&name, args, escape)?),
        "LABEL" => Instruction::Label(key_values(&name, args, escape)?),
        "ARG" => Instruction::Arg(build_args(args, escape)?),
        "WORKDIR" => Instruction::Workdir(one_argument(&name, args)?),
        "USER" => Instruction::User(one_argument(&name, args)?),
        "STOPSIGNAL" => Instruction::StopSignal(one_argument(&name, args)?),
        "MAINTAINER" => Instruction::Maintainer(one_argument(&name, args)?),
        "EXPOSE" => Instruction::Expose(at_least_one(&name, whitespace_words(args))?),
        "VOLUME" => Instruction::Volume(volumes(args)?),
        // SIMPLIFICATION: BuildKit stores ONBUILD triggers for images built
        // FROM this one, and runs HEALTHCHECK probes; minibox does neither.
        "ONBUILD" | "HEALTHCHECK" => return Err(format!("minibox does not support {name}")),
        // SIMPLIFICATION: BuildKit adds "(did you mean copy?)" when a known
        // keyword is close; minibox names the word only.
        _ => return Err(format!("unknown instruction: {keyword}")),
    };
    // A flag the instruction did not take is one it does not have.
    flags.take(&[], &[])?;
    Ok(Line::Instruction(instruction))
}
// ANCHOR_END: dispatch

/// A logical line cut into its keyword, its flags and its arguments:
/// `COPY --from=build /app /app` is `COPY`, `["--from=build"]`, `/app /app`.
fn split_line(text: &str, escape: char) -> (&str, Vec<String>, &str) {
    let text = text.trim();
    let (keyword, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let mut flags = Vec::new();
    let mut rest = rest.trim_start();
    while rest.starts_with("--") {
        let (word, after) = flag_word(rest, escape);
        rest = after.trim_start();
        if word == "--" {
            break; // the end of the flags: the next word may start with `--`
        }
        flags.push(word);
    }
    (keyword, flags, rest.trim())
}

/// The flag at the start of `text`, up to unquoted whitespace, with quotes
/// and escape characters removed (`--chown="app user"` is
/// `--chown=app user`); and the text after it.
fn flag_word(text: &str, escape: char) -> (String, &str) {
    let mut word = String::new();
    let mut quote = None;
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        match quote {
            None if c.is_whitespace() => return (word, &text[at..]),
            _ if c == escape => word.extend(chars.next().map(|(_, next)| next)),
            None if c == '"' || c == '\'' => quote = Some(c),
            Some(open) if c == open => quote = None,
            _ => word.push(c),
        }
    }
    (word, "")
}

/// An instruction's flags as written, until its parser takes those it knows.
struct Flags {
    /// The instruction, for messages.
    keyword: String,
    /// `--name=value` or `--name`, quotes removed.
    words: Vec<String>,
}

/// The flags an instruction took, `(name, value)`.
struct FlagValues(Vec<(String, String)>);

impl FlagValues {
    /// The value of `--name=value`; an empty value counts as none, as in
    /// Docker.
    fn get(&self, name: &str) -> Option<String> {
        let (_, value) = self.0.iter().find(|(flag, _)| flag == name)?;
        (!value.is_empty()).then(|| value.clone())
    }
}

impl Flags {
    /// Takes every flag left. Each must be one of `accepted` (all of which
    /// take a value); one of `refused` (flags Docker has and minibox does
    /// not) is refused by name, any other is unknown, in Docker's words.
    fn take(&mut self, accepted: &[&str], refused: &[&str]) -> Result<FlagValues, String> {
        let mut taken: Vec<(String, String)> = Vec::new();
        for word in std::mem::take(&mut self.words) {
            let (flag, value) = match word.split_once('=') {
                Some((flag, value)) => (flag, Some(value)),
                None => (word.as_str(), None),
            };
            let name = flag.strip_prefix("--").unwrap_or(flag);
            if refused.contains(&name) {
                return Err(format!("minibox does not support {} {flag}", self.keyword));
            }
            if !accepted.contains(&name) {
                return Err(format!("unknown flag: {flag}"));
            }
            if taken.iter().any(|(seen, _)| seen == name) {
                return Err(format!("duplicate flag specified: {flag}"));
            }
            let Some(value) = value else {
                return Err(format!("missing a value on flag: {flag}"));
            };
            taken.push((name.to_string(), value.to_string()));
        }
        Ok(FlagValues(taken))
    }
}

// ---------------------------------------------------------------------------
// One function per argument shape.

/// `FROM [--platform=P] image [AS name]`.
fn from_image(args: &str, flags: FlagValues) -> Result<FromImage, String> {
    let words = whitespace_words(args);
    let (image, name) = match words.as_slice() {
        [image] => (image, None),
        [image, keyword, name] if keyword.eq_ignore_ascii_case("as") => {
            (image, Some(stage_name(name)?))
        }
        _ => return Err("FROM requires either one or three arguments".to_string()),
    };
    Ok(FromImage {
        image: image.clone(),
        name,
        platform: flags.get("platform"),
    })
}

/// A stage name, lower-cased, if it is one Docker accepts:
/// `[a-z][a-z0-9-_.]*` once lower-cased.
fn stage_name(name: &str) -> Result<String, String> {
    let lower = name.to_ascii_lowercase();
    let mut chars = lower.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
    if !(first_ok && rest_ok) {
        return Err(format!(
            "invalid name for build stage: {name:?}, name can't start with a number or contain symbols"
        ));
    }
    Ok(lower)
}

// ANCHOR: exec_or_shell
/// The arguments of `CMD` or `ENTRYPOINT`: exec form if they are a JSON
/// array of strings, shell form otherwise.
///
/// Docker's test is lenient, and so is this one: what does not parse as a
/// JSON array — `['sh', '-c']` with single quotes, a missing bracket — is a
/// shell command, which the shell will then run (and likely fail on). Only
/// a valid array holding something other than strings is an error.
fn command(keyword: &str, args: &str) -> Result<Command, String> {
    if let Some(words) = json_array(args)? {
        return Ok(Command::Exec(words));
    }
    if args.is_empty() {
        return Err(format!("{keyword} requires at least one argument"));
    }
    Ok(Command::Shell(args.to_string()))
}

/// `args` as a JSON array of strings, or `None` if it is not a JSON array.
fn json_array(args: &str) -> Result<Option<Vec<String>>, String> {
    if !args.starts_with('[') {
        return Ok(None);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(args) else {
        return Ok(None);
    };
    let strings = values.into_iter().map(|value| match value {
        serde_json::Value::String(text) => Ok(text),
        _ => Err(
            "when using JSON array syntax, arrays must be comprised of strings only".to_string(),
        ),
    });
    strings.collect::<Result<_, _>>().map(Some)
}
// ANCHOR_END: exec_or_shell

/// The arguments of `RUN`: a [`command`], unless the shell form holds a
/// heredoc.
fn run_command(args: &str) -> Result<Command, String> {
    let command = command("RUN", args)?;
    if let Command::Shell(text) = &command {
        refuse_heredoc("RUN", text)?;
    }
    Ok(command)
}

/// Refuses a heredoc (`RUN <<EOF`): its body would be the lines after the
/// instruction, which this parser reads as instructions of their own.
///
/// The test is BuildKit's: a word `<<EOF`, `<<-EOF` or `2<<EOF`, or `<<`
/// followed by the delimiter as the next word. Like BuildKit, it takes the
/// `<<` of `$((1 << 2))` for one too.
fn refuse_heredoc(keyword: &str, args: &str) -> Result<(), String> {
    let words: Vec<&str> = args.split_whitespace().collect();
    let heredoc = words.iter().enumerate().any(|(index, word)| {
        let digits_gone = word.trim_start_matches(|c: char| c.is_ascii_digit());
        let Some(rest) = digits_gone.strip_prefix("<<") else {
            return false;
        };
        let rest = rest.strip_prefix('-').unwrap_or(rest);
        let delimiter = match rest {
            "" => words.get(index + 1).copied().unwrap_or(""),
            _ => rest,
        };
        !delimiter.is_empty() && !delimiter.contains('<')
    });
    if heredoc {
        return Err(format!(
            "minibox does not support heredocs ({keyword} <<EOF)"
        ));
    }
    Ok(())
}

/// `SHELL`, which must be a non-empty JSON array.
fn shell(args: &str) -> Result<Vec<String>, String> {
    match json_array(args)? {
        Some(words) if !words.is_empty() => Ok(words),
        None if !args.is_empty() => {
            Err("SHELL requires the arguments to be in JSON form".to_string())
        }
        _ => Err("SHELL requires at least one argument".to_string()),
    }
}

/// `COPY [--from=S] [--chown=U] [--chmod=M] src... dest`.
fn copy_files(args: &str, flags: FlagValues) -> Result<CopyFiles, String> {
    let (sources, dest) = sources_and_dest("COPY", args)?;
    Ok(CopyFiles {
        sources,
        dest,
        from: flags.get("from"),
        chown: flags.get("chown"),
        chmod: flags.get("chmod"),
    })
}

/// `ADD [--chown=U] [--chmod=M] src... dest`, local sources only.
fn add_files(args: &str, flags: FlagValues) -> Result<AddFiles, String> {
    let (sources, dest) = sources_and_dest("ADD", args)?;
    if let Some(remote) = sources.iter().find(|source| is_remote(source)) {
        return Err(format!(
            "minibox does not support ADD from a URL or git repository: {remote}"
        ));
    }
    Ok(AddFiles {
        sources,
        dest,
        chown: flags.get("chown"),
        chmod: flags.get("chmod"),
    })
}

/// Whether an `ADD` source is remote: a URL (`https://...`, `git://...`) or
/// a git address (`git@github.com:org/repo.git`, `github.com/org/repo`).
/// The parser checks the sources as written; the build checks them again
/// once expanded, since `ADD $URL /` only shows its URL then.
pub fn is_remote(source: &str) -> bool {
    let url = source.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    url || source.starts_with("git@") || source.starts_with("github.com/")
}

/// The words of `COPY` or `ADD`: sources, then the destination.
fn sources_and_dest(keyword: &str, args: &str) -> Result<(Vec<String>, String), String> {
    let mut words = match json_array(args)? {
        Some(words) => words,
        None => {
            refuse_heredoc(keyword, args)?;
            whitespace_words(args)
        }
    };
    let dest = words.pop().filter(|_| !words.is_empty());
    let Some(dest) = dest else {
        return Err(format!(
            "{keyword} requires at least two arguments, but only one was provided. Destination could not be determined"
        ));
    };
    Ok((words, dest))
}

/// `ENV` and `LABEL` pairs, in either of Docker's two forms:
///
/// - `ENV KEY=value KEY2="value 2"`: words split at unquoted whitespace,
///   each split at its first `=`;
/// - `ENV KEY the rest of the line`: one pair, the first word and the rest.
///
/// The first word decides: with an `=` it is the first form. Values keep
/// their quotes and escapes, which [`expand`] removes.
fn key_values(keyword: &str, args: &str, escape: char) -> Result<Vec<(String, String)>, String> {
    let words = shell_words(args, escape);
    let Some(first) = words.first() else {
        return Err(format!("{keyword} requires at least one argument"));
    };
    if !first.contains('=') {
        let (key, value) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
        let value = value.trim_start();
        if value.is_empty() {
            return Err(format!("{keyword} must have two arguments"));
        }
        return Ok(vec![(key.to_string(), value.to_string())]);
    }
    let pair = |word: &String| match word.split_once('=') {
        Some(("", _)) => Err(format!("{keyword} names can not be blank")),
        Some((key, value)) => Ok((key.to_string(), value.to_string())),
        None => Err(format!(
            "Syntax error - can't find = in {word:?}. Must be of the form: name=value"
        )),
    };
    words.iter().map(pair).collect()
}

/// `ARG NAME`, `ARG NAME=default`, several per line; defaults as written.
fn build_args(args: &str, escape: char) -> Result<Vec<Arg>, String> {
    let words = shell_words(args, escape);
    if words.is_empty() {
        return Err("ARG requires at least one argument".to_string());
    }
    let arg = |word: String| match word.split_once('=') {
        Some(("", _)) => Err("ARG names can not be blank".to_string()),
        Some((name, default)) => Ok(Arg {
            name: name.to_string(),
            default: Some(default.to_string()),
        }),
        None => Ok(Arg {
            name: word,
            default: None,
        }),
    };
    words.into_iter().map(arg).collect()
}

/// Words split at whitespace outside quotes, each kept as written — quotes
/// and escape characters included — for [`expand`] to read later. An escape
/// character protects the next character (a space, a quote), except inside
/// single quotes, where nothing is special.
fn shell_words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == escape && quote != Some('\'') {
            if let Some(next) = chars.next() {
                word.push(c);
                word.push(next);
            }
            continue;
        }
        match quote {
            Some(open) if c == open => quote = None,
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                continue;
            }
            _ => {}
        }
        word.push(c);
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Words split at whitespace, nothing else: `FROM`, `EXPOSE`, and `COPY`,
/// `ADD`, `VOLUME` outside JSON form. Quotes are not special here: `COPY
/// "my file" /` is two words, `"my` and `file"`, as in Docker.
fn whitespace_words(args: &str) -> Vec<String> {
    args.split_whitespace().map(str::to_string).collect()
}

/// The rest of the line as one argument, spaces and all: `WORKDIR /my app`
/// is the directory `/my app`, as Docker reads it.
fn one_argument(keyword: &str, args: &str) -> Result<String, String> {
    match args {
        "" => Err(format!("{keyword} requires exactly one argument")),
        _ => Ok(args.to_string()),
    }
}

/// `words`, unless there are none.
fn at_least_one(keyword: &str, words: Vec<String>) -> Result<Vec<String>, String> {
    if words.is_empty() {
        return Err(format!("{keyword} requires at least one argument"));
    }
    Ok(words)
}

/// `VOLUME ["/data"]` or `VOLUME /data /cache`.
fn volumes(args: &str) -> Result<Vec<String>, String> {
    let words = json_array(args)?.unwrap_or_else(|| whitespace_words(args));
    let words = at_least_one("VOLUME", words)?;
    let trimmed = words.iter().map(|word| match word.trim() {
        "" => Err("VOLUME specified can not be an empty string".to_string()),
        path => Ok(path.to_string()),
    });
    trimmed.collect()
}

// ---------------------------------------------------------------------------
// Pass 3, at build time: variable expansion.

// ANCHOR: expand
/// `word` with its variables replaced and its quotes and escapes removed, as
/// BuildKit's shell lexer does for the instructions in the table above.
/// Spaces are kept: `WORKDIR "/my $APP"` is one path.
///
/// `lookup` gives a variable's value (`None`: unset, which expands to
/// nothing). Outside quotes and in double quotes:
///
/// | written | becomes |
/// |---|---|
/// | `$VAR`, `${VAR}` | its value |
/// | `${VAR:-word}` / `${VAR-word}` | its value, or `word` if unset or empty / unset |
/// | `${VAR:+word}` / `${VAR+word}` | `word` if set and not empty / set, else nothing |
/// | `${VAR:?msg}` / `${VAR?msg}` | its value; an error if unset or empty / unset |
/// | `\$VAR` (with the escape character) | `$VAR`, literally |
/// | `'$VAR'` | `$VAR`: nothing is special in single quotes |
///
/// `word` is itself expanded, so defaults nest: `${A:-${B:-none}}`.
pub fn expand(
    word: &str,
    lookup: impl Fn(&str) -> Option<String>,
    escape: char,
) -> Result<String, ExpandError> {
    let mut lexer = Lexer::new(word, &lookup, escape);
    lexer
        .read(None)
        .map(|expansion| expansion.text)
        .map_err(|reason| ExpandError {
            word: word.to_string(),
            reason,
        })
}
// ANCHOR_END: expand

/// Like [`expand`], then split into words at whitespace that was neither
/// quoted nor escaped, as a shell would: with `PORTS="80 443"`, `EXPOSE
/// $PORTS` is two ports, while `"$PORTS"` stays one word. The split comes
/// after expansion, so a variable's value can make several words.
pub fn expand_words(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
    escape: char,
) -> Result<Vec<String>, ExpandError> {
    let mut lexer = Lexer::new(text, &lookup, escape);
    lexer
        .read(None)
        .map(|expansion| expansion.words)
        .map_err(|reason| ExpandError {
            word: text.to_string(),
            reason,
        })
}

/// The message for a `${` that never closes.
const MISSING_BRACE: &str = "syntax error: missing '}'";

/// Reads one word the way BuildKit's `shell.Lex` does.
struct Lexer<'a> {
    chars: Peekable<Chars<'a>>,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    escape: char,
}

/// What the lexer made of its input: one string, spaces kept (what
/// [`expand`] returns), and the same split into words (what
/// [`expand_words`] returns).
#[derive(Default)]
struct Expansion {
    text: String,
    words: Vec<String>,
    /// The word being read.
    word: String,
}

impl Expansion {
    /// Text outside quotes, and variables' values: whitespace ends a word.
    fn push_unquoted(&mut self, text: &str) {
        for c in text.chars() {
            self.text.push(c);
            if c.is_whitespace() {
                self.end_word();
            } else {
                self.word.push(c);
            }
        }
    }

    /// Quoted text and escaped characters: part of the word, spaces too.
    fn push_quoted(&mut self, text: &str) {
        self.text.push_str(text);
        self.word.push_str(text);
    }

    fn end_word(&mut self) {
        if !self.word.is_empty() {
            self.words.push(std::mem::take(&mut self.word));
        }
    }
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str, lookup: &'a dyn Fn(&str) -> Option<String>, escape: char) -> Self {
        Lexer {
            chars: text.chars().peekable(),
            lookup,
            escape,
        }
    }

    /// Reads to the end, or to `stop` (the `}` that closes `${VAR:-word}`).
    fn read(&mut self, stop: Option<char>) -> Result<Expansion, String> {
        let mut out = Expansion::default();
        let mut buffer = [0; 4];
        while let Some(c) = self.chars.next() {
            match c {
                _ if Some(c) == stop => {
                    out.end_word();
                    return Ok(out);
                }
                '$' => out.push_unquoted(&self.dollar()?),
                '\'' => out.push_quoted(&self.single_quoted()?),
                '"' => out.push_quoted(&self.double_quoted()?),
                // The escape character makes the next one literal; at the
                // very end it is dropped.
                _ if c == self.escape => {
                    if let Some(next) = self.chars.next() {
                        out.push_quoted(next.encode_utf8(&mut buffer));
                    }
                }
                _ => out.push_unquoted(c.encode_utf8(&mut buffer)),
            }
        }
        if stop.is_some() {
            return Err(MISSING_BRACE.to_string());
        }
        out.end_word();
        Ok(out)
    }

    /// After `'`: everything up to the next `'`, literally. (So a single
    /// quote cannot be put inside single quotes, as in sh.)
    fn single_quoted(&mut self) -> Result<String, String> {
        let mut text = String::new();
        loop {
            match self.chars.next() {
                Some('\'') => return Ok(text),
                Some(c) => text.push(c),
                None => {
                    let message =
                        "unexpected end of statement while looking for matching single-quote";
                    return Err(message.to_string());
                }
            }
        }
    }

    /// After `"`: up to the next unescaped `"`, variables expanded. The
    /// escape character escapes only `"`, `$` and itself here; before
    /// anything else it stays, as a backslash does in sh.
    fn double_quoted(&mut self) -> Result<String, String> {
        let mut text = String::new();
        loop {
            match self.chars.next() {
                Some('"') => return Ok(text),
                Some('$') => text.push_str(&self.dollar()?),
                Some(c) if c == self.escape => {
                    let escape = self.escape;
                    match self
                        .chars
                        .next_if(|&next| next == '"' || next == '$' || next == escape)
                    {
                        Some(escaped) => text.push(escaped),
                        None => text.push(c),
                    }
                }
                Some(c) => text.push(c),
                None => {
                    let message =
                        "unexpected end of statement while looking for matching double-quote";
                    return Err(message.to_string());
                }
            }
        }
    }

    /// After `$`: a variable's value. A `$` that no name follows is a `$`.
    fn dollar(&mut self) -> Result<String, String> {
        if self.chars.next_if_eq(&'{').is_none() {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok((self.lookup)(&name).unwrap_or_default());
        }
        match self.chars.peek() {
            None => return Err(MISSING_BRACE.to_string()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".to_string()),
            Some(_) => {}
        }
        let name = self.name();
        match self.chars.next() {
            // BuildKit says "unsupported modifier" of the end of the text
            // here; the brace is what is missing.
            None => Err(MISSING_BRACE.to_string()),
            Some('}') => Ok((self.lookup)(&name).unwrap_or_default()),
            Some(':') => {
                let operator = self.chars.next().ok_or(MISSING_BRACE)?;
                self.modifier(&name, true, operator)
            }
            Some(operator) => self.modifier(&name, false, operator),
        }
    }

    /// The rest of `${NAME-word}`, `${NAME:+word}`...: the word, up to `}`,
    /// then the variable's value or the word. With the colon, a variable set
    /// to the empty string counts as unset.
    fn modifier(&mut self, name: &str, colon: bool, operator: char) -> Result<String, String> {
        let colon_text = if colon { ":" } else { "" };
        match (colon, operator) {
            (_, '-' | '+' | '?') => {}
            // SIMPLIFICATION: BuildKit also trims patterns (`${VAR%.*}`,
            // `${VAR#*/}`) and replaces (`${VAR/a/b}`); minibox refuses them.
            (false, '#' | '%' | '/') => {
                return Err(format!(
                    "minibox does not support the substitution ${{{name}{operator}...}}"
                ));
            }
            _ => {
                return Err(format!(
                    "unsupported modifier ({colon_text}{operator}) in substitution"
                ));
            }
        }
        let word = self.read(Some('}'))?.text;
        let value = (self.lookup)(name);
        let set = value
            .as_deref()
            .is_some_and(|value| !(colon && value.is_empty()));
        match operator {
            '-' if set => Ok(value.unwrap_or_default()),
            '-' => Ok(word),
            '+' if set => Ok(word),
            '+' => Ok(String::new()),
            _ if set => Ok(value.unwrap_or_default()),
            _ if !word.is_empty() => Err(format!("{name}: {word}")),
            _ if value.is_none() => Err(format!("{name}: is not allowed to be unset")),
            _ => Err(format!("{name}: is not allowed to be empty")),
        }
    }

    /// A variable's name: letters, digits and `_` (`$HOME`); digits only if
    /// it starts with one (`$1`); or one of sh's special parameters (`$@`,
    /// `$$`...). Positional and special parameters are never set in a build,
    /// so they expand to nothing, as in Docker.
    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.chars.peek() {
            Some(c) if c.is_ascii_digit() => {
                name.extend(std::iter::from_fn(|| {
                    self.chars.next_if(char::is_ascii_digit)
                }));
            }
            Some(&c) if "@*#?-$!".contains(c) => {
                self.chars.next();
                name.push(c);
            }
            _ => {
                let part_of_name = |c: &char| c.is_alphanumeric() || *c == '_';
                name.extend(std::iter::from_fn(|| self.chars.next_if(part_of_name)));
            }
        }
        name
    }
}

#[cfg(test)]
mod tests {
    //! The parser read against Docker's behaviour: a realistic multi-stage
    //! Dockerfile, every error message with its line, the directives, the
    //! two forms of commands, and the lexer against cases from BuildKit's own
    //! test tables (`frontend/dockerfile/shell/envVarTest`, `wordsTest`).

    use super::*;

    /// A Go program built in one stage and copied into a small final image:
    /// most instructions, both command forms, continuations with a comment
    /// inside, lower-case keywords.
    const MULTI_STAGE: &str = r#"# syntax=docker/dockerfile:1
ARG GO_VERSION=1.22
ARG BASE

FROM golang:${GO_VERSION}-alpine AS Build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# A static binary; the comment inside the instruction is dropped.
RUN CGO_ENABLED=0 \
    go build -o /out/app \
# -trimpath was here
      ./cmd/app && \
    rm -f /out/app.debug

from --platform=linux/amd64 alpine:3.20
ARG BASE
ENV APP_HOME=/app PATH="/app/bin:$PATH"
ENV GREETING hello world
LABEL org.opencontainers.image.title="demo app" version=1
COPY --from=build --chown=app:app --chmod=755 /out/app /app/bin/app
RUN rm /etc/motd
User app
WORKDIR $APP_HOME
EXPOSE 8080/tcp 9090
VOLUME ["/data", "/cache"]
STOPSIGNAL SIGINT
SHELL ["/bin/sh", "-eu", "-c"]
ENTRYPOINT ["/app/bin/app"]
CMD serve --port 8080
"#;

    fn strings(words: &[&str]) -> Vec<String> {
        words.iter().map(|word| word.to_string()).collect()
    }

    fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn arg(name: &str, default: Option<&str>) -> Arg {
        Arg {
            name: name.to_string(),
            default: default.map(str::to_string),
        }
    }

    /// The stage's instructions as (line, value), for comparing in one go.
    fn lines_and_values(stage: &Stage) -> Vec<(usize, Instruction)> {
        stage
            .instructions
            .iter()
            .map(|i| (i.line, i.value.clone()))
            .collect()
    }

    /// The instructions of a Dockerfile of one stage.
    fn instructions(text: &str) -> Vec<Instruction> {
        let dockerfile = parse(text).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(dockerfile.stages.len(), 1, "{text}");
        dockerfile.stages[0]
            .instructions
            .iter()
            .map(|i| i.value.clone())
            .collect()
    }

    /// The message `parse` fails with.
    fn error(text: &str) -> String {
        match parse(text) {
            Ok(dockerfile) => panic!("{text:?} parsed: {dockerfile:?}"),
            Err(error) => error.to_string(),
        }
    }

    fn copy(sources: &[&str], dest: &str) -> CopyFiles {
        CopyFiles {
            sources: strings(sources),
            dest: dest.to_string(),
            from: None,
            chown: None,
            chmod: None,
        }
    }

    fn shell_command(text: &str) -> Command {
        Command::Shell(text.to_string())
    }

    #[test]
    fn the_global_args_and_the_build_stage() {
        let dockerfile = parse(MULTI_STAGE).unwrap();
        assert_eq!(dockerfile.escape, '\\');
        let globals = vec![arg("GO_VERSION", Some("1.22")), arg("BASE", None)];
        assert_eq!(dockerfile.global_args, globals);
        assert_eq!(dockerfile.stages.len(), 2);

        let build = &dockerfile.stages[0];
        assert_eq!(build.from.line, 5);
        assert_eq!(build.from.text, "FROM golang:${GO_VERSION}-alpine AS Build");
        let from = FromImage {
            image: "golang:${GO_VERSION}-alpine".to_string(),
            name: Some("build".to_string()),
            platform: None,
        };
        assert_eq!(build.from.value, from);

        // The continued RUN: joined without newlines, each line's leading
        // spaces kept, the comment line gone.
        let joined = "CGO_ENABLED=0 ".to_string()
            + "    go build -o /out/app "
            + "      ./cmd/app && "
            + "    rm -f /out/app.debug";
        let expected = vec![
            (6, Instruction::Workdir("/src".to_string())),
            (7, Instruction::Copy(copy(&["go.mod", "go.sum"], "./"))),
            (8, Instruction::Run(shell_command("go mod download"))),
            (9, Instruction::Copy(copy(&["."], "."))),
            (11, Instruction::Run(Command::Shell(joined.clone()))),
        ];
        assert_eq!(lines_and_values(build), expected);
        assert_eq!(build.instructions[4].text, format!("RUN {joined}"));
    }

    #[test]
    fn the_final_stage() {
        let dockerfile = parse(MULTI_STAGE).unwrap();
        let last = &dockerfile.stages[1];
        assert_eq!(
            (last.from.line, last.from.text.as_str()),
            (17, "from --platform=linux/amd64 alpine:3.20")
        );
        assert_eq!(last.from.value.platform.as_deref(), Some("linux/amd64"));
        assert_eq!(last.from.value.name, None);

        let from_build = CopyFiles {
            from: Some("build".to_string()),
            chown: Some("app:app".to_string()),
            chmod: Some("755".to_string()),
            ..copy(&["/out/app"], "/app/bin/app")
        };
        let label = [
            ("org.opencontainers.image.title", "\"demo app\""),
            ("version", "1"),
        ];
        let expected = vec![
            (18, Instruction::Arg(vec![arg("BASE", None)])),
            (
                19,
                Instruction::Env(pairs(&[
                    ("APP_HOME", "/app"),
                    ("PATH", "\"/app/bin:$PATH\""),
                ])),
            ),
            (20, Instruction::Env(pairs(&[("GREETING", "hello world")]))),
            (21, Instruction::Label(pairs(&label))),
            (22, Instruction::Copy(from_build)),
            (23, Instruction::Run(shell_command("rm /etc/motd"))),
            (24, Instruction::User("app".to_string())),
            (25, Instruction::Workdir("$APP_HOME".to_string())),
            (26, Instruction::Expose(strings(&["8080/tcp", "9090"]))),
            (27, Instruction::Volume(strings(&["/data", "/cache"]))),
            (28, Instruction::StopSignal("SIGINT".to_string())),
            (29, Instruction::Shell(strings(&["/bin/sh", "-eu", "-c"]))),
            (
                30,
                Instruction::Entrypoint(Command::Exec(strings(&["/app/bin/app"]))),
            ),
            (31, Instruction::Cmd(shell_command("serve --port 8080"))),
        ];
        assert_eq!(lines_and_values(last), expected);

        // The build expands the ENV value with the environment of the moment.
        let path = |name: &str| (name == "PATH").then(|| "/usr/bin".to_string());
        assert_eq!(
            expand("\"/app/bin:$PATH\"", path, '\\').unwrap(),
            "/app/bin:/usr/bin"
        );
    }

    /// Dockerfiles Docker rejects, with where and the message it gives.
    const MALFORMED: &[(&str, &str)] = &[
        (
            "FROM busybox\nRUN true\nFOO bar\n",
            "line 3: unknown instruction: FOO",
        ),
        (
            "FROM busybox\nfoo bar\n",
            "line 2: unknown instruction: foo",
        ),
        (
            "FROM a b\n",
            "line 1: FROM requires either one or three arguments",
        ),
        (
            "FROM a AS b c\n",
            "line 1: FROM requires either one or three arguments",
        ),
        (
            "FROM busybox\n\nENV ONLY\n",
            "line 3: ENV must have two arguments",
        ),
        (
            "FROM busybox\nLABEL ONLY\n",
            "line 2: LABEL must have two arguments",
        ),
        (
            "FROM busybox\nLABEL\n",
            "line 2: LABEL requires at least one argument",
        ),
        (
            "FROM busybox\nENV\n",
            "line 2: ENV requires at least one argument",
        ),
        (
            "FROM busybox\nENV =1\n",
            "line 2: ENV names can not be blank",
        ),
        (
            "FROM busybox\nARG\n",
            "line 2: ARG requires at least one argument",
        ),
        (
            "FROM busybox\nARG =1\n",
            "line 2: ARG names can not be blank",
        ),
        (
            "FROM busybox\nUSER\n",
            "line 2: USER requires exactly one argument",
        ),
        (
            "FROM busybox\nWORKDIR\n",
            "line 2: WORKDIR requires exactly one argument",
        ),
        (
            "FROM busybox\nSTOPSIGNAL\n",
            "line 2: STOPSIGNAL requires exactly one argument",
        ),
        (
            "FROM busybox\nEXPOSE\n",
            "line 2: EXPOSE requires at least one argument",
        ),
        (
            "FROM busybox\nVOLUME\n",
            "line 2: VOLUME requires at least one argument",
        ),
        (
            "FROM busybox\nVOLUME [\" \"]\n",
            "line 2: VOLUME specified can not be an empty string",
        ),
        (
            "FROM busybox\nRUN\n",
            "line 2: RUN requires at least one argument",
        ),
        (
            "FROM busybox\nSHELL\n",
            "line 2: SHELL requires at least one argument",
        ),
        (
            "FROM busybox\nSHELL []\n",
            "line 2: SHELL requires at least one argument",
        ),
        (
            "FROM busybox\nSHELL bash -c\n",
            "line 2: SHELL requires the arguments to be in JSON form",
        ),
        (
            "FROM busybox\nENV A=1 B\n",
            "line 2: Syntax error - can't find = in \"B\". Must be of the form: name=value",
        ),
        (
            "FROM busybox\nCMD [\"sleep\", 5]\n",
            "line 2: when using JSON array syntax, arrays must be comprised of strings only",
        ),
        (
            "FROM busybox\nCOPY app\n",
            "line 2: COPY requires at least two arguments, but only one was provided. Destination could not be determined",
        ),
        (
            "FROM busybox AS 1st\n",
            "line 1: invalid name for build stage: \"1st\", name can't start with a number or contain symbols",
        ),
        // A continued instruction counts from its first line; the next
        // instruction from its own.
        (
            "FROM busybox\nRUN echo \\\n  one \\\n  two\nBAR x\n",
            "line 5: unknown instruction: BAR",
        ),
        (
            "FROM busybox\nEXPOSE \\\n  \\\n\n",
            "line 2: EXPOSE requires at least one argument",
        ),
    ];

    #[test]
    fn malformed_instructions_get_dockers_message_and_their_line() {
        for (text, expected) in MALFORMED {
            let expected = format!("dockerfile parse error on {expected}");
            let message = error(text);
            assert!(
                message.starts_with(&expected),
                "{text:?}: {message}, expected {expected}"
            );
        }
    }

    #[test]
    fn a_file_needs_an_instruction_and_a_stage() {
        assert_eq!(error(""), "the Dockerfile cannot be empty");
        assert_eq!(parse("").unwrap_err().line, None);
        let message = error("# only a comment\n\n");
        assert_eq!(
            message,
            "dockerfile parse error on line 2: file with no instructions"
        );
        assert_eq!(
            error("ARG VERSION=1\n"),
            "dockerfile contains no stages to build"
        );
        // Only ARG may come before the first FROM.
        let message = error("ARG VERSION=1\nENV A=1\nFROM busybox\n");
        assert_eq!(
            message,
            "dockerfile parse error on line 2: no build stage in current context"
        );
        assert_eq!(parse("ARG A\nENV B=1\n").unwrap_err().line, Some(2));
    }

    /// Instructions minibox refuses, each on line 2 after a `FROM`, with the message.
    const REFUSED: &[(&str, &str)] = &[
        ("ONBUILD RUN make", "minibox does not support ONBUILD"),
        (
            "healthcheck CMD curl -f http://localhost/",
            "minibox does not support HEALTHCHECK",
        ),
        (
            "RUN <<EOF\necho hi\nEOF",
            "minibox does not support heredocs (RUN <<EOF)",
        ),
        (
            "RUN cat <<- END > /etc/motd\nhi\nEND",
            "minibox does not support heredocs (RUN <<EOF)",
        ),
        (
            "COPY <<EOF /etc/motd\nhi\nEOF",
            "minibox does not support heredocs (COPY <<EOF)",
        ),
        (
            "RUN --mount=type=cache,target=/root/.cache go build",
            "minibox does not support RUN --mount",
        ),
        (
            "RUN --network=none make test",
            "minibox does not support RUN --network",
        ),
        (
            "RUN --security=insecure make",
            "minibox does not support RUN --security",
        ),
        ("COPY --link . /app", "minibox does not support COPY --link"),
        (
            "COPY --parents a/b /app",
            "minibox does not support COPY --parents",
        ),
        (
            "COPY --exclude=*.md . /app",
            "minibox does not support COPY --exclude",
        ),
        (
            "ADD --checksum=sha256:24454f8 app.tar /",
            "minibox does not support ADD --checksum",
        ),
        (
            "ADD https://example.com/app.tar.gz /",
            "minibox does not support ADD from a URL or git repository: https://example.com/app.tar.gz",
        ),
        (
            "ADD git@github.com:moby/buildkit.git /src",
            "minibox does not support ADD from a URL or git repository: git@github.com:moby/buildkit.git",
        ),
    ];

    #[test]
    fn what_minibox_does_not_do_is_refused_by_name() {
        for (instruction, expected) in REFUSED {
            let message = error(&format!("FROM busybox\n{instruction}\n"));
            assert_eq!(
                message,
                format!("dockerfile parse error on line 2: {expected}")
            );
        }
        // `<<` that starts no heredoc: a here-string, and a quoted word.
        let run = instructions("FROM busybox\nRUN cat <<< hi \"<<EOF\"\n");
        assert_eq!(
            run,
            vec![Instruction::Run(shell_command("cat <<< hi \"<<EOF\""))]
        );
        // ADD of local files and archives is the build's business.
        let add = instructions("FROM busybox\nADD --chown=1:1 rootfs.tar.gz app/ /\n");
        let expected = AddFiles {
            sources: strings(&["rootfs.tar.gz", "app/"]),
            dest: "/".to_string(),
            chown: Some("1:1".to_string()),
            chmod: None,
        };
        assert_eq!(add, vec![Instruction::Add(expected)]);
    }

    #[test]
    fn flags_are_read_as_docker_reads_them() {
        let cases = [
            ("COPY --foo=bar a /", "unknown flag: --foo"),
            ("ENV --foo A=1", "unknown flag: --foo"),
            ("CMD --port 8080", "unknown flag: --port"),
            (
                "COPY --from=a --from=b x /",
                "duplicate flag specified: --from",
            ),
            (
                "COPY --chown app:app x /",
                "missing a value on flag: --chown",
            ),
        ];
        for (instruction, expected) in cases {
            let message = error(&format!("FROM busybox\n{instruction}\n"));
            assert_eq!(
                message,
                format!("dockerfile parse error on line 2: {expected}")
            );
        }
        let message = error("FROM --platform linux/arm64 busybox\n");
        assert_eq!(
            message,
            "dockerfile parse error on line 1: missing a value on flag: --platform"
        );

        // Quotes and escapes inside a flag are removed; `--` ends the flags.
        let text =
            "FROM busybox\nCOPY --chown=\"app user\" --chmod=7\\55 a b\nCMD -- --port 8080\n";
        let expected = vec![
            Instruction::Copy(CopyFiles {
                chown: Some("app user".to_string()),
                chmod: Some("755".to_string()),
                ..copy(&["a"], "b")
            }),
            Instruction::Cmd(shell_command("--port 8080")),
        ];
        assert_eq!(instructions(text), expected);
    }

    #[test]
    fn exec_form_is_a_json_array_of_strings_and_anything_else_is_shell_form() {
        let text = r#"FROM busybox
CMD ['echo', 'single quotes are not JSON']
ENTRYPOINT ["echo", "missing bracket"
RUN ["sh", "-c", "echo $HOME"]
CMD []
RUN  [ "spaced" ,"out" ]  
COPY ["my file.txt", "/dest dir/"]
COPY "my file" /
VOLUME /data /cache
"#;
        let expected = vec![
            Instruction::Cmd(shell_command("['echo', 'single quotes are not JSON']")),
            Instruction::Entrypoint(shell_command("[\"echo\", \"missing bracket\"")),
            Instruction::Run(Command::Exec(strings(&["sh", "-c", "echo $HOME"]))),
            Instruction::Cmd(Command::Exec(Vec::new())),
            Instruction::Run(Command::Exec(strings(&["spaced", "out"]))),
            Instruction::Copy(copy(&["my file.txt"], "/dest dir/")),
            // Outside JSON, COPY splits at whitespace only, as Docker does.
            Instruction::Copy(copy(&["\"my", "file\""], "/")),
            Instruction::Volume(strings(&["/data", "/cache"])),
        ];
        assert_eq!(instructions(text), expected);
    }

    #[test]
    fn env_label_and_arg_keep_values_as_written_for_expand() {
        let text = r#"FROM busybox
ENV A=1 B="two words" C=three\ words D='$NOT' EMPTY=
ENV OLD the rest   of the line
LABEL "com.example.vendor"="ACME Inc"
ARG A B=2 C="x y"
"#;
        let env = pairs(&[
            ("A", "1"),
            ("B", "\"two words\""),
            ("C", "three\\ words"),
            ("D", "'$NOT'"),
            ("EMPTY", ""),
        ]);
        let expected = vec![
            Instruction::Env(env),
            Instruction::Env(pairs(&[("OLD", "the rest   of the line")])),
            Instruction::Label(pairs(&[("\"com.example.vendor\"", "\"ACME Inc\"")])),
            Instruction::Arg(vec![
                arg("A", None),
                arg("B", Some("2")),
                arg("C", Some("\"x y\"")),
            ]),
        ];
        let parsed = instructions(text);
        assert_eq!(parsed, expected);

        // What the build makes of them: quotes and escapes gone, '$NOT' kept.
        let unset = |_: &str| None;
        let values = [
            "1",
            "\"two words\"",
            "three\\ words",
            "'$NOT'",
            "\"ACME Inc\"",
        ];
        let expanded: Vec<String> = values
            .iter()
            .map(|v| expand(v, unset, '\\').unwrap())
            .collect();
        assert_eq!(
            expanded,
            strings(&["1", "two words", "three words", "$NOT", "ACME Inc"])
        );
    }

    #[test]
    fn keywords_ignore_case_and_arguments_keep_it() {
        let dockerfile = parse("from Alpine AS Base\nworkdir /App\nExpose 80/TCP\n").unwrap();
        let stage = &dockerfile.stages[0];
        assert_eq!(stage.from.value.image, "Alpine");
        assert_eq!(stage.from.value.name.as_deref(), Some("base"));
        let values: Vec<_> = stage.instructions.iter().map(|i| i.value.clone()).collect();
        let expected = vec![
            Instruction::Workdir("/App".to_string()),
            Instruction::Expose(strings(&["80/TCP"])),
        ];
        assert_eq!(values, expected);
        // Everything after USER, WORKDIR, STOPSIGNAL is one argument.
        let spaced =
            instructions("FROM busybox\nWORKDIR /my app\nMAINTAINER Jane Doe <jane@example.com>\n");
        let expected = vec![
            Instruction::Workdir("/my app".to_string()),
            Instruction::Maintainer("Jane Doe <jane@example.com>".to_string()),
        ];
        assert_eq!(spaced, expected);
    }

    #[test]
    fn a_backtick_escape_directive_makes_backslashes_plain() {
        // Docker's documentation example: with `\` as the escape character,
        // `c:\` would continue onto the next line.
        let text = "# escape=`\n\nFROM mcr.microsoft.com/windows/servercore\nCOPY testfile.txt c:\\\nRUN dir c:\\ `\n    /s\n";
        let dockerfile = parse(text).unwrap();
        assert_eq!(dockerfile.escape, '`');
        let values: Vec<_> = dockerfile.stages[0]
            .instructions
            .iter()
            .map(|i| (i.line, i.value.clone()))
            .collect();
        let expected = vec![
            (4, Instruction::Copy(copy(&["testfile.txt"], "c:\\"))),
            (5, Instruction::Run(shell_command("dir c:\\     /s"))),
        ];
        assert_eq!(values, expected);
        // The build expands with the same escape character.
        let name = |_: &str| Some("app".to_string());
        assert_eq!(
            expand("c:\\$NAME\\`$NAME", name, '`').unwrap(),
            "c:\\app\\$NAME"
        );
    }

    #[test]
    fn directives_are_read_only_at_the_top() {
        // Keys are case-insensitive, spaces around `=` allowed; `syntax` and
        // `check` are accepted and ignored.
        let text = "# syntax=docker/dockerfile:1\n#  ESCAPE = `\n# check=skip=all\nFROM busybox\n";
        assert_eq!(parse(text).unwrap().escape, '`');
        // Too late (after an instruction, a blank line, another comment),
        // a directive is a comment: the backtick stays an argument.
        for before in ["FROM busybox\n", "\n", "# a comment\n"] {
            let text = format!("{before}# escape=`\nFROM busybox\nRUN echo a `\nCMD b\n");
            let dockerfile = parse(&text).unwrap();
            assert_eq!(dockerfile.escape, '\\', "{text:?}");
            let last = dockerfile.stages.last().unwrap();
            let values: Vec<_> = last.instructions.iter().map(|i| i.value.clone()).collect();
            let expected = vec![
                Instruction::Run(shell_command("echo a `")),
                Instruction::Cmd(shell_command("b")),
            ];
            assert_eq!(values, expected, "{text:?}");
        }
        let twice = error("# escape=`\n# escape=\\\nFROM busybox\n");
        assert_eq!(
            twice,
            "dockerfile parse error on line 2: only one escape parser directive can be used"
        );
        let bad = error("# escape=x\nFROM busybox\n");
        assert_eq!(
            bad,
            "dockerfile parse error on line 1: invalid escape token 'x' does not match ` or \\"
        );
    }

    #[test]
    fn continuation_lines_join_and_skip_comments_and_empty_lines() {
        let text = "\u{feff}FROM busybox\r\n  RUN echo a \\  \r\n\n   # a comment\n\tb\nCMD c\\\\\nUSER d\nRUN e \\";
        let dockerfile = parse(text).unwrap();
        let stage = &dockerfile.stages[0];
        let located: Vec<_> = stage
            .instructions
            .iter()
            .map(|i| (i.line, i.text.as_str()))
            .collect();
        let expected = vec![
            // A byte-order mark, CRLF line ends, leading whitespace, spaces
            // after the escape character, an empty line and a comment inside.
            (2, "RUN echo a \tb"),
            // An escaped escape character does not continue the line.
            (6, "CMD c\\\\"),
            (7, "USER d"),
            // The file may end in the middle of an instruction.
            (8, "RUN e"),
        ];
        assert_eq!(located, expected);
        assert_eq!(
            stage.instructions[0].value,
            Instruction::Run(shell_command("echo a \tb"))
        );
    }

    #[test]
    fn remote_sources_are_told_from_local_ones() {
        let remote = [
            "https://example.com/app.tar.gz",
            "http://example.com/a",
            "git://example.com/repo.git",
            "ssh://git@example.com/repo.git",
            "git@github.com:moby/buildkit.git",
            "github.com/moby/buildkit",
        ];
        let local = [
            "app.tar.gz",
            "./src",
            "c:\\data",
            "dir/a:b",
            "://x",
            "a b://c",
        ];
        for source in remote {
            assert!(is_remote(source), "{source}");
        }
        for source in local {
            assert!(!is_remote(source), "{source}");
        }
    }

    /// The environment of BuildKit's `envVarTest`.
    fn test_env(name: &str) -> Option<String> {
        let value = match name {
            "PWD" => "/home",
            "SHELL" => "bash",
            "NULL" => "",
            "KOREAN" => "한국어",
            _ => return None,
        };
        Some(value.to_string())
    }

    /// Words and what [`expand`] makes of them with [`test_env`]; `None`:
    /// an error. Taken from BuildKit's `envVarTest`, plus the forms without
    /// the colon.
    const EXPANSIONS: &[(&str, Option<&str>)] = &[
        ("hello", Some("hello")),
        ("he'll'o", Some("hello")),
        ("he'llo", None),
        (r"he\'llo", Some("he'llo")),
        (r"he\\'llo", None),
        (r"abc\tdef", Some("abctdef")),
        (r#""abc\tdef""#, Some(r"abc\tdef")),
        (r#""abc\\tdef""#, Some(r"abc\tdef")),
        (r"'abc\tdef'", Some(r"abc\tdef")),
        (r"hello\", Some("hello")),
        (r"hello\\", Some(r"hello\")),
        (r#""hello\""#, None),
        (r#""''""#, Some("''")),
        ("$.", Some("$.")),
        ("he$1x", Some("hex")),
        ("he$.x", Some("he$.x")),
        ("he$pwd.", Some("he.")),
        ("he$PWD", Some("he/home")),
        (r"he\$PWD", Some("he$PWD")),
        (r"he\\$PWD", Some(r"he\/home")),
        (r#""he\$PWD""#, Some("he$PWD")),
        (r"\${}", Some("${}")),
        ("${}", None),
        ("he${hi}xx", Some("hexx")),
        ("he${.}", None),
        ("he${XXX:-000}xx", Some("he000xx")),
        ("he${PWD:-000}xx", Some("he/homexx")),
        ("he${XXX:-$PWD}xx", Some("he/homexx")),
        ("he${XXX:-${PWD:-yyy}}xx", Some("he/homexx")),
        ("he${XXX:-${YYY:-yyy}}xx", Some("heyyyxx")),
        ("he${XXX:YYY}", None),
        ("he${XXX?}", None),
        ("he${XXX:?}", None),
        ("he${PWD?}", Some("he/home")),
        ("he${NULL?}", Some("he")),
        ("he${NULL:?}", None),
        ("he${XXX:+${PWD}}xx", Some("hexx")),
        ("he${PWD:+${SHELL}}xx", Some("hebashxx")),
        ("he${PWD:+000}xx", Some("he000xx")),
        ("'he${XX}'", Some("he${XX}")),
        (r#""he'$PWD'""#, Some("he'/home'")),
        ("'$PWD'", Some("$PWD")),
        (r"'\$PWD'", Some(r"\$PWD")),
        ("he${PWD", None),
        ("he${PWD:=000}xx", None),
        ("he${PWD:+${PWD}:}xx", Some("he/home:xx")),
        (r"he${XXX:-\$PWD:}xx", Some("he$PWD:xx")),
        (r"he${XXX:-\${PWD}z}xx", Some("he${PWDz}xx")),
        ("안녕$KOREAN", Some("안녕한국어")),
        ("${aaa}}", Some("}")),
        ("${aaa:-bbb ${foo}", None),
        ("${aaa:-bbb {foo}", Some("bbb {foo")),
        ("${:}", None),
        ("${:-bbb}", None),
        ("$1", Some("")),
        ("${1:-bbb}", Some("bbb")),
        // Without the colon, only unset counts: NULL is set, to "".
        ("${NULL-default}", Some("")),
        ("${NULL:-default}", Some("default")),
        ("${NULL+alternate}", Some("alternate")),
        ("${NULL:+alternate}", Some("")),
        ("${XXX+alternate}", Some("")),
    ];

    #[test]
    fn expand_agrees_with_buildkits_table() {
        for (word, expected) in EXPANSIONS {
            let expanded = expand(word, test_env, '\\');
            match (expected, expanded) {
                (Some(expected), Ok(expanded)) => assert_eq!(&expanded, expected, "{word}"),
                (None, Err(_)) => {}
                (expected, got) => panic!("{word}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn expansion_errors_say_what_is_wrong() {
        let cases = [
            ("he${PWD", "syntax error: missing '}'"),
            ("${X:-abc", "syntax error: missing '}'"),
            ("${", "syntax error: missing '}'"),
            ("${}", "syntax error: bad substitution"),
            (
                "it's",
                "unexpected end of statement while looking for matching single-quote",
            ),
            (
                "\"open",
                "unexpected end of statement while looking for matching double-quote",
            ),
            ("${X?}", "X: is not allowed to be unset"),
            ("${NULL:?}", "NULL: is not allowed to be empty"),
            ("${X:?set X with --build-arg}", "X: set X with --build-arg"),
            ("${X:=1}", "unsupported modifier (:=) in substitution"),
            (
                "${PWD%/*}",
                "minibox does not support the substitution ${PWD%...}",
            ),
            (
                "${PWD/home/root}",
                "minibox does not support the substitution ${PWD/...}",
            ),
        ];
        for (word, reason) in cases {
            let error = expand(word, test_env, '\\').unwrap_err();
            assert_eq!(error.reason, reason, "{word}");
            assert_eq!(
                error.to_string(),
                format!("failed to process {word:?}: {reason}")
            );
        }
    }

    #[test]
    fn expand_words_splits_after_expansion() {
        let env = |name: &str| {
            let value = match name {
                "hi" => "hi",
                "space" => "abc  def",
                "leading" => "  ab c",
                "PORTS" => "80/tcp 443",
                _ => return None,
            };
            Some(value.to_string())
        };
        // From BuildKit's `wordsTest`.
        let cases: &[(&str, &[&str])] = &[
            ("hello${hi}bye", &["hellohibye"]),
            ("hello${space}bye", &["helloabc", "defbye"]),
            (r#"hello"${space}"bye"#, &["helloabc  defbye"]),
            (r#"hello "${space}"bye"#, &["hello", "abc  defbye"]),
            ("hello${leading}def", &["hello", "ab", "cdef"]),
            (r#"hello"${leading}" def"#, &["hello  ab c", "def"]),
            (r"hello\ there", &["hello there"]),
            (r#"hello\" there"#, &["hello\"", "there"]),
            ("hello'$there'", &["hello$there"]),
            (r#"hello "" there"#, &["hello", "there"]),
            ("$PORTS 8080", &["80/tcp", "443", "8080"]),
        ];
        for (text, expected) in cases {
            assert_eq!(
                expand_words(text, env, '\\').unwrap(),
                strings(expected),
                "{text}"
            );
        }
        // `expand` keeps the spaces that `expand_words` splits at.
        assert_eq!(
            expand("hello${space}bye", env, '\\').unwrap(),
            "helloabc  defbye"
        );
        assert!(expand_words("a 'b", env, '\\').is_err());
    }
}
