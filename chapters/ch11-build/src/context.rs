//! The build context: the directory given to `minibox build`, and the only
//! files `COPY` and `ADD` may bring into an image.
//!
//! `docker build .` sends the directory `.` to the builder (the daemon, or
//! BuildKit) before the first instruction runs; a `COPY` reads from that copy,
//! never from the host. So a source is a path *in the context*: `/app.py`,
//! `./app.py` and `app.py` are the same file, and `../secret` is refused. This
//! module gives the builder four things, all plain file-system logic:
//!
//! - [`Ignore`]: the context's `.dockerignore`, with moby's rules exactly
//!   (its `patternmatcher` and `ignorefile` packages): Go's `filepath.Match`
//!   syntax plus `**`, `!` exceptions, and the last matching line deciding.
//!   What it ignores is not in the context at all: a `COPY` cannot see it.
//!   The `Dockerfile` and the `.dockerignore` may be ignored too; the builder
//!   still reads them (Docker does the same), it just cannot `COPY` them.
//! - [`Walk`]: the context as the builder sees it, ignored files left out.
//! - [`resolve`]: a `COPY`/`ADD` source, wildcards and symlinks included,
//!   turned into the [`Source`]s it names; and [`destination`], where they
//!   land in the image.
//! - [`fingerprint`]: a sha256 over everything a `COPY` brings in, the cache
//!   key's share of the context: a changed byte changes it, a `touch` does not.
//!
//! Where the two Docker builders disagree, the choice is written at the
//! function that makes it. In short: BuildKit's symlink following and content
//! hash; the classic builder's errors, which BuildKit does not give
//! (`../x` refused instead of read as `x`; several sources into a
//! destination without `/` refused instead of silently merged).

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use ch07_image_pull::digest::hex;
// Go's `filepath.Clean`, which Docker applies to every path it is given.
use ch10_runtime::volumes::clean;
use sha2::{Digest as _, Sha256};

/// Go's `filepath.ErrBadPattern`, which Docker prints as it is.
const BAD_PATTERN: &str = "syntax error in pattern";

/// How many symlinks one source may go through, as Linux's `MAXSYMLINKS`:
/// enough for any real tree, and a loop ends with an error.
const MAX_LINKS: usize = 40;

// ---------------------------------------------------------------------------
// Patterns

/// One piece of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A character that must be there as written.
    Char(char),
    /// `*`: any run of characters but `/`.
    Star,
    /// `?`: any one character but `/`.
    Any,
    /// `[a-z]`, `[^0-9]`: one character in (or not in) the ranges. As in Go,
    /// a class may match `/`.
    Class {
        /// `[^...]`.
        negated: bool,
        /// Inclusive ranges; a single character is a range of one.
        ranges: Vec<(char, char)>,
    },
    /// `**` inside a `.dockerignore` pattern: any number of whole
    /// directories, zero included (moby's regular expression `(.*/)?`).
    Dirs,
    /// `**` ending a `.dockerignore` pattern: anything at all (`.*`).
    Rest,
}

/// A pattern in Go's `filepath.Match` syntax, compiled once, matched often.
#[derive(Debug, Clone)]
struct Glob {
    tokens: Vec<Token>,
}

impl Glob {
    /// One path element of a `COPY` source, as `filepath.Match` reads it.
    fn element(pattern: &str) -> Result<Glob> {
        Glob::compile(pattern, false)
    }

    /// A `.dockerignore` pattern, as moby's `patternmatcher` reads it:
    /// `filepath.Match` plus `**`.
    fn dockerignore(pattern: &str) -> Result<Glob> {
        Glob::compile(pattern, true)
    }

    /// Go's syntax: `*`, `?`, `[...]` and `\` escapes; with `double_star`,
    /// `**` too. Errors where Go's `filepath.Match` reports a bad pattern.
    fn compile(pattern: &str, double_star: bool) -> Result<Glob> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut at = 0;
        while let Some(&c) = chars.get(at) {
            at += 1;
            match c {
                '*' if double_star && chars.get(at) == Some(&'*') => {
                    at += 1;
                    let slash = chars.get(at) == Some(&'/');
                    if slash {
                        at += 1;
                    }
                    // moby's quirk, kept: a leading `**` before plain text
                    // is a suffix test, so `**.go` matches `a/b.go`.
                    let suffix = tokens.is_empty() && !slash && is_plain(&chars[at..]);
                    let whole_rest = at == chars.len() || suffix;
                    tokens.push(if whole_rest { Token::Rest } else { Token::Dirs });
                }
                '*' => tokens.push(Token::Star),
                '?' => tokens.push(Token::Any),
                '[' => {
                    let (class, next) = class(&chars, at)?;
                    tokens.push(class);
                    at = next;
                }
                '\\' => {
                    let &escaped = chars.get(at).context(BAD_PATTERN)?;
                    tokens.push(Token::Char(escaped));
                    at += 1;
                }
                c => tokens.push(Token::Char(c)),
            }
        }
        Ok(Glob { tokens })
    }

    /// Whether the whole of `text` matches.
    fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        // One answer per (token, position): stars cannot make it exponential.
        let mut memo = vec![None; (self.tokens.len() + 1) * (text.len() + 1)];
        self.match_from(&text, 0, 0, &mut memo)
    }

    fn match_from(&self, text: &[char], t: usize, s: usize, memo: &mut [Option<bool>]) -> bool {
        let key = t * (text.len() + 1) + s;
        if let Some(known) = memo[key] {
            return known;
        }
        let rest = &text[s..];
        let one =
            |ok: bool, memo: &mut [Option<bool>]| ok && self.match_from(text, t + 1, s + 1, memo);
        let found = match self.tokens.get(t) {
            None => rest.is_empty(),
            Some(Token::Char(c)) => one(rest.first() == Some(c), memo),
            Some(Token::Any) => one(rest.first().is_some_and(|&c| c != '/'), memo),
            Some(Token::Class { negated, ranges }) => {
                let inside = |c: char| ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
                one(rest.first().is_some_and(|&c| inside(c) != *negated), memo)
            }
            Some(Token::Star) => (0..=rest.len())
                .take_while(|&n| n == 0 || rest[n - 1] != '/')
                .any(|n| self.match_from(text, t + 1, s + n, memo)),
            Some(Token::Dirs) => (0..=rest.len())
                .filter(|&n| n == 0 || rest[n - 1] == '/')
                .any(|n| self.match_from(text, t + 1, s + n, memo)),
            Some(Token::Rest) => {
                (0..=rest.len()).any(|n| self.match_from(text, t + 1, s + n, memo))
            }
        };
        memo[key] = Some(found);
        found
    }
}

/// No wildcard, class or escape: what moby compares as plain text.
fn is_plain(chars: &[char]) -> bool {
    !chars
        .iter()
        .any(|c| matches!(c, '*' | '?' | '[' | ']' | '\\'))
}

/// A `[...]` class read from just after its `[`: the token and where the
/// pattern goes on. Go's rules: `^` negates, `a-z` is a range, `\` escapes,
/// and a `-` or `]` where a character is due is an error.
fn class(chars: &[char], mut at: usize) -> Result<(Token, usize)> {
    let negated = chars.get(at) == Some(&'^');
    if negated {
        at += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if chars.get(at) == Some(&']') && !ranges.is_empty() {
            return Ok((Token::Class { negated, ranges }, at + 1));
        }
        let (lo, mut next) = class_char(chars, at)?;
        let mut hi = lo;
        if chars.get(next) == Some(&'-') {
            (hi, next) = class_char(chars, next + 1)?;
        }
        ranges.push((lo, hi));
        at = next;
    }
}

/// One character of a class (Go's `getEsc`), which must not end the pattern.
fn class_char(chars: &[char], mut at: usize) -> Result<(char, usize)> {
    match chars.get(at) {
        None | Some('-' | ']') => bail!(BAD_PATTERN),
        Some('\\') => at += 1,
        Some(_) => {}
    }
    let &c = chars.get(at).context(BAD_PATTERN)?;
    if at + 1 >= chars.len() {
        bail!(BAD_PATTERN);
    }
    Ok((c, at + 1))
}

/// Whether a `COPY` source has wildcards (the classic builder's test: `*`,
/// `?` or `[`, not escaped by `\`). Without any, the path is taken as it is,
/// backslashes included.
fn has_wildcards(source: &str) -> bool {
    let mut chars = source.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

// ---------------------------------------------------------------------------
// .dockerignore

/// One pattern line of a `.dockerignore`.
#[derive(Debug, Clone)]
struct Rule {
    /// The pattern as cleaned, without its `!`.
    text: String,
    glob: Glob,
    /// A `!` line: what it matches is put back into the context.
    exception: bool,
}

impl Rule {
    /// A line already trimmed and known not to be a comment, read as moby's
    /// `ignorefile.ReadAll` and `patternmatcher.New` read it.
    fn parse(line: &str) -> Result<Rule> {
        let (exception, pattern) = match line.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, line),
        };
        if exception && pattern.is_empty() {
            bail!("illegal exclusion pattern: \"!\"");
        }
        // The context is the root: `/foo/bar` and `./foo/bar` are `foo/bar`.
        let cleaned = clean(pattern);
        let text = match cleaned.strip_prefix('/') {
            Some(relative) if !relative.is_empty() => relative.to_string(),
            _ => cleaned,
        };
        let glob = Glob::dockerignore(&text)?;
        Ok(Rule {
            text,
            glob,
            exception,
        })
    }

    /// Whether the rule matches `path` or a directory above it: a pattern
    /// naming a directory names everything inside it.
    fn matches(&self, path: &str) -> bool {
        self.glob.matches(path)
            || path
                .match_indices('/')
                .any(|(at, _)| self.glob.matches(&path[..at]))
    }
}

/// A context's `.dockerignore`: the paths left out of the context.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    rules: Vec<Rule>,
}

impl Ignore {
    /// Reads `CONTEXT/.dockerignore`; no file means nothing is ignored.
    pub fn load(context: &Path) -> Result<Ignore> {
        let path = context.join(".dockerignore");
        match fs::read(&path) {
            Ok(bytes) => Ignore::parse(&String::from_utf8_lossy(&bytes))
                .with_context(|| format!("parsing {}", path.display())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Ignore::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Parses the text of a `.dockerignore`: one pattern a line, surrounding
    /// white space trimmed, blank lines skipped, and a `#` in the first
    /// column starting a comment (`  # x` is the pattern `# x`, as in
    /// Docker). A UTF-8 byte-order mark is skipped.
    pub fn parse(text: &str) -> Result<Ignore> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut rules = Vec::new();
        for (number, line) in text.lines().enumerate() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let line = line.trim();
            let rule =
                Rule::parse(line).with_context(|| format!("line {} {line:?}", number + 1))?;
            rules.push(rule);
        }
        Ok(Ignore { rules })
    }

    // ANCHOR: is_ignored
    /// Whether `path` (relative to the context) is left out of it. Each
    /// pattern is tried in order on the path and on the directories above
    /// it; the last one that matches decides, and a `!` pattern keeps what
    /// it matches. So `*.md` then `!README.md` keeps only the README.
    pub fn is_ignored(&self, path: &Path) -> bool {
        let path = path.to_string_lossy();
        if path.is_empty() {
            return false; // the context's root always stays
        }
        let mut ignored = false;
        for rule in &self.rules {
            // moby's shortcut: only a rule that could change the answer is
            // tried (an exception while ignored, a pattern while kept).
            if rule.exception == ignored && rule.matches(&path) {
                ignored = !rule.exception;
            }
        }
        ignored
    }
    // ANCHOR_END: is_ignored

    /// Whether a `!` pattern might put back something below the ignored
    /// directory `dir`, so that the walk must still go in. BuildKit's test:
    /// any exception with a wildcard might; otherwise only one that names a
    /// path inside `dir`.
    fn may_keep_below(&self, dir: &Path) -> bool {
        let dir = format!("{}/", dir.to_string_lossy());
        self.rules.iter().filter(|r| r.exception).any(|rule| {
            let text = rule.text.as_str();
            let text =
                (text.strip_suffix("/**").or_else(|| text.strip_suffix("/*"))).unwrap_or(text);
            text.contains(['*', '?', '[', ']', '^', '\\']) || format!("{text}/").starts_with(&dir)
        })
    }
}

// ---------------------------------------------------------------------------
// The walk

/// What a path in the context is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file: its contents are copied.
    File,
    /// A directory.
    Dir,
    /// A symlink, copied as a link (never followed inside a directory copy).
    Symlink,
    /// A FIFO, socket or device node. BuildKit sends them along; what a
    /// `COPY` does with them is the builder's call.
    Other,
}

impl Kind {
    /// The byte the fingerprint records: tar's type flags.
    fn code(self) -> u8 {
        match self {
            Kind::File => b'0',
            Kind::Symlink => b'2',
            Kind::Dir => b'5',
            Kind::Other => b'?',
        }
    }
}

/// One path of the context, as found (symlinks are not followed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the context's root; empty for the root itself.
    pub path: PathBuf,
    /// File, directory, symlink or other.
    pub kind: Kind,
    /// The permission bits with setuid, setgid and sticky (`st_mode &
    /// 0o7777`); always `0o777` for a symlink, as BuildKit records them.
    pub mode: u32,
}

/// One thing a `COPY` of a [`Source`] brings in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Its path below the destination: relative to a directory source (empty
    /// for the directory itself), or the source's name for a file.
    pub relative: PathBuf,
    /// Where it is in the context, and what it is.
    pub entry: Entry,
}

/// The context as a `COPY` sees it: the directory minus what `.dockerignore`
/// leaves out. Every listing is sorted by name, so whatever is built from a
/// walk comes out the same on every machine.
#[derive(Debug, Clone, Copy)]
pub struct Walk<'a> {
    context: &'a Path,
    ignore: &'a Ignore,
}

impl<'a> Walk<'a> {
    /// A walk of the directory `context` with its rules `ignore`.
    pub fn new(context: &'a Path, ignore: &'a Ignore) -> Walk<'a> {
        Walk { context, ignore }
    }

    /// The entry at `path` (relative to the context), not followed.
    pub fn entry(&self, path: &Path) -> Result<Entry> {
        let full = self.context.join(path);
        let meta =
            fs::symlink_metadata(&full).with_context(|| format!("reading {}", full.display()))?;
        let kind = match meta.file_type() {
            t if t.is_file() => Kind::File,
            t if t.is_dir() => Kind::Dir,
            t if t.is_symlink() => Kind::Symlink,
            _ => Kind::Other,
        };
        let mode = if kind == Kind::Symlink {
            0o777
        } else {
            meta.permissions().mode() & 0o7777
        };
        Ok(Entry {
            path: path.to_path_buf(),
            kind,
            mode,
        })
    }

    /// The names in the directory `dir`, sorted (bytewise, as Go sorts).
    fn names(&self, dir: &Path) -> Result<Vec<OsString>> {
        let full = self.context.join(dir);
        let read = || -> io::Result<Vec<OsString>> {
            let mut names = fs::read_dir(&full)?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<io::Result<Vec<_>>>()?;
            names.sort();
            Ok(names)
        };
        read().with_context(|| format!("reading directory {}", full.display()))
    }

    // ANCHOR: below
    /// Every entry below the directory `dir` (not `dir` itself) that is in
    /// the context, parents before their contents, sorted by path.
    pub fn below(&self, dir: &Path) -> Result<Vec<Entry>> {
        let mut found = Vec::new();
        for name in self.names(dir)? {
            let entry = self.entry(&dir.join(name))?;
            let ignored = self.ignore.is_ignored(&entry.path);
            if entry.kind != Kind::Dir {
                if !ignored {
                    found.push(entry);
                }
                continue;
            }
            // An ignored directory is still walked when a `!` pattern may
            // put something inside it back; it is then kept as the parent of
            // what was put back, and nothing else in it is.
            if ignored && !self.ignore.may_keep_below(&entry.path) {
                continue;
            }
            let inside = self.below(&entry.path)?;
            if !ignored || !inside.is_empty() {
                found.push(entry);
                found.extend(inside);
            }
        }
        Ok(found)
    }
    // ANCHOR_END: below

    /// The entries directly in the directory `dir` that are in the context.
    pub fn children(&self, dir: &Path) -> Result<Vec<Entry>> {
        let mut found = Vec::new();
        for name in self.names(dir)? {
            let entry = self.entry(&dir.join(name))?;
            if self.is_present(&entry)? {
                found.push(entry);
            }
        }
        Ok(found)
    }

    /// Whether `entry` is in the context as Docker sends it: not ignored, or
    /// an ignored directory with something put back inside.
    fn is_present(&self, entry: &Entry) -> Result<bool> {
        if !self.ignore.is_ignored(&entry.path) {
            return Ok(true);
        }
        Ok(entry.kind == Kind::Dir
            && self.ignore.may_keep_below(&entry.path)
            && !self.below(&entry.path)?.is_empty())
    }

    /// What a `COPY` of `source` brings in, in order: a file (or the target
    /// of a symlink named as the source) under the source's name; for a
    /// directory, the directory itself then everything in the context below
    /// it, symlinks as symlinks.
    pub fn copied(&self, source: &Source) -> Result<Vec<Item>> {
        let top = self.entry(&source.path)?;
        if !source.is_dir {
            let relative = PathBuf::from(&source.name);
            return Ok(vec![Item {
                relative,
                entry: top,
            }]);
        }
        let mut items = vec![Item {
            relative: PathBuf::new(),
            entry: top,
        }];
        for entry in self.below(&source.path)? {
            let relative = entry.path.strip_prefix(&source.path).unwrap_or(&entry.path);
            let relative = relative.to_path_buf();
            items.push(Item { relative, entry });
        }
        Ok(items)
    }

    /// Follows `written` element by element, symlinks included, as if the
    /// context were `/`: `..` stops at the root and an absolute link target
    /// starts from it, so no link leads out of the context (the classic
    /// builder's `FollowSymlinkInScope` and BuildKit do the same). `None`
    /// when something on the way is missing, not a directory, or ignored.
    fn follow(&self, written: &Path) -> Result<Option<Entry>> {
        let mut pending: VecDeque<OsString> = parts(written).collect();
        let mut at = PathBuf::new();
        let mut links = 0;
        while let Some(part) = pending.pop_front() {
            if part == ".." {
                at.pop();
                continue;
            }
            let path = at.join(&part);
            let entry = match self.entry(&path) {
                Ok(entry) => entry,
                Err(e) if is_missing(&e) => return Ok(None),
                Err(e) => return Err(e),
            };
            if entry.kind == Kind::Symlink {
                if self.ignore.is_ignored(&path) {
                    return Ok(None);
                }
                links += 1;
                if links > MAX_LINKS {
                    bail!("{}: too many levels of symbolic links", written.display());
                }
                let full = self.context.join(&path);
                let target = fs::read_link(&full)
                    .with_context(|| format!("reading link {}", full.display()))?;
                if target.is_absolute() {
                    at = PathBuf::new();
                }
                for part in parts(&target).collect::<Vec<_>>().into_iter().rev() {
                    pending.push_front(part);
                }
                continue;
            }
            if !pending.is_empty() && entry.kind != Kind::Dir {
                return Ok(None);
            }
            at = path;
        }
        let entry = self.entry(&at)?;
        Ok(self.is_present(&entry)?.then_some(entry))
    }

    /// The source `written` names, followed; `None` when missing or ignored.
    fn source(&self, written: &Path) -> Result<Option<Source>> {
        let Some(entry) = self.follow(written)? else {
            return Ok(None);
        };
        let name = written
            .file_name()
            .unwrap_or(OsStr::new("."))
            .to_os_string();
        Ok(Some(Source {
            is_dir: entry.kind == Kind::Dir,
            path: entry.path,
            name,
        }))
    }

    /// The paths a source with wildcards matches, as written: each element
    /// is matched (Go's `filepath.Match`) against the names present in the
    /// directories the elements before it matched.
    fn expand(&self, pattern: &str) -> Result<Vec<PathBuf>> {
        let mut matched = vec![PathBuf::new()];
        for element in pattern.split('/') {
            let glob = Glob::element(element)?;
            let mut next = Vec::new();
            for written in &matched {
                let Some(dir) = self.follow(written)? else {
                    continue;
                };
                if dir.kind != Kind::Dir {
                    continue;
                }
                for entry in self.children(&dir.path)? {
                    let name = entry.path.file_name().unwrap_or_default();
                    if glob.matches(&name.to_string_lossy()) {
                        next.push(written.join(name));
                    }
                }
            }
            matched = next;
        }
        Ok(matched)
    }
}

/// The elements of `path` to follow: names and `..`; the root and `.` are
/// nothing to follow.
fn parts(path: &Path) -> impl Iterator<Item = OsString> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(name) => Some(name.to_os_string()),
        Component::ParentDir => Some(OsString::from("..")),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    })
}

/// Whether `error` says the path is not there (or goes through a file).
fn is_missing(error: &anyhow::Error) -> bool {
    error.downcast_ref::<io::Error>().is_some_and(|e| {
        matches!(
            e.kind(),
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
        )
    })
}

// ---------------------------------------------------------------------------
// Sources and destinations

/// One source of a `COPY` or `ADD`, found in the context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Where to read it, relative to the context's root (empty for the root
    /// itself, `COPY . /app`). A symlink named as the source is already
    /// followed: this is its target.
    pub path: PathBuf,
    /// The name a file is copied under into a directory: the last element
    /// as written or matched, so a symlink's own name, not its target's.
    pub name: OsString,
    /// A directory: its *contents* are copied, not the directory itself
    /// (`COPY src /app` makes `/app/main.rs`, not `/app/src/main.rs`).
    pub is_dir: bool,
}

/// The sources one `COPY`/`ADD` source argument names, in the context.
///
/// - A leading `/` or `./` means the context's root, as in Docker.
/// - A path that leaves the context is refused with the classic builder's
///   error (BuildKit instead reads `../x` as `x`, which hides the mistake).
/// - Wildcards (`*`, `?`, `[...]`, per path element, Go's `filepath.Match`)
///   give every match, sorted; none is no error here, as in the classic
///   builder: [`destination`] fails when a whole instruction has nothing.
/// - A path without wildcards that is missing or ignored fails with the
///   classic builder's message; the builder adds `COPY failed: ` in front.
/// - A symlink named as the source (or matched by a wildcard) is followed,
///   as BuildKit does, within the context; inside a directory it is copied
///   as a link.
pub fn resolve(context: &Path, ignore: &Ignore, source: &str) -> Result<Vec<Source>> {
    let shown = source.strip_prefix('/').unwrap_or(source);
    let shown = shown.strip_prefix("./").unwrap_or(shown);
    let cleaned = clean(shown);
    if cleaned == ".." || cleaned.starts_with("../") {
        bail!("forbidden path outside the build context: {shown} ()");
    }
    let relative = cleaned.trim_start_matches('/');
    let relative = if relative == "." { "" } else { relative };
    let walk = Walk::new(context, ignore);
    if !has_wildcards(relative) {
        let found = walk.source(Path::new(relative))?.with_context(|| {
            format!(
                "file not found in build context or excluded by .dockerignore: \
                 stat {shown}: file does not exist"
            )
        })?;
        return Ok(vec![found]);
    }
    let mut sources = Vec::new();
    for written in walk
        .expand(relative)
        .with_context(|| format!("source {source:?}"))?
    {
        sources.extend(walk.source(&written)?);
    }
    Ok(sources)
}

/// Where a `COPY` or `ADD` puts what it copies, in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// Absolute and cleaned: a relative destination is relative to WORKDIR.
    pub path: PathBuf,
    /// Files go *into* it, under their own names. True when the destination
    /// ends with `/` (or is `.`, as BuildKit reads it); the builder also sets
    /// it when the path already is a directory in the image, where Docker
    /// copies a file into it too.
    pub is_dir: bool,
}

/// Checks a `COPY`/`ADD` destination against the instruction's sources (all
/// of them, wildcards expanded) and makes it absolute. The two errors are the
/// classic builder's, in its words: BuildKit gives neither, and silently
/// copies several files onto one path (moby/buildkit#1853).
pub fn destination(
    instruction: &str,
    dest: &str,
    workdir: &str,
    sources: &[Source],
) -> Result<Destination> {
    if sources.is_empty() {
        bail!("{instruction} failed: no source files were specified");
    }
    if sources.len() > 1 && !dest.ends_with('/') {
        bail!(
            "When using {instruction} with more than one source file, \
             the destination must be a directory and end with a /"
        );
    }
    let last = dest.rsplit('/').next().unwrap_or(dest);
    let is_dir = dest.ends_with('/') || matches!(last, "" | "." | "..");
    let path = if dest.starts_with('/') {
        clean(dest)
    } else {
        clean(&format!("/{workdir}/{dest}"))
    };
    Ok(Destination {
        path: PathBuf::from(path),
        is_dir,
    })
}

impl Destination {
    /// Where an [`Item`] of `source` lands: below the destination for a
    /// directory's contents; for a file, into the destination under its name
    /// when that is a directory, or at the destination itself.
    pub fn target(&self, source: &Source, relative: &Path) -> PathBuf {
        if source.is_dir {
            self.path.join(relative)
        } else if self.is_dir {
            self.path.join(&source.name)
        } else {
            self.path.clone()
        }
    }
}

// ---------------------------------------------------------------------------
// The fingerprint

// ANCHOR: fingerprint
/// The context's share of a `COPY`'s cache key: `sha256:` and the hash of
/// everything the sources bring in, in order. What counts is BuildKit's
/// choice: each item's path below the destination, its type, its permission
/// bits, a file's contents and a symlink's target. Not its times (a `touch`
/// keeps the cache), not its owner (BuildKit's client sends every file as
/// root, and `COPY` gives files to root or `--chown` anyway), not where the
/// context is on the host.
pub fn fingerprint(context: &Path, ignore: &Ignore, sources: &[Source]) -> Result<String> {
    let walk = Walk::new(context, ignore);
    let mut hasher = Sha256::new();
    for source in sources {
        field(&mut hasher, b"source");
        for item in walk.copied(source)? {
            field(&mut hasher, item.relative.as_os_str().as_bytes());
            field(&mut hasher, &[item.entry.kind.code()]);
            field(&mut hasher, &item.entry.mode.to_be_bytes());
            let full = context.join(&item.entry.path);
            match item.entry.kind {
                Kind::File => hash_contents(&mut hasher, &full)?,
                Kind::Symlink => {
                    let target = fs::read_link(&full)
                        .with_context(|| format!("reading link {}", full.display()))?;
                    field(&mut hasher, target.as_os_str().as_bytes());
                }
                // SIMPLIFICATION: BuildKit also hashes extended attributes
                // and a device's numbers; minibox hashes neither.
                Kind::Dir | Kind::Other => {}
            }
        }
    }
    Ok(format!("sha256:{}", hex(&hasher.finalize())))
}
// ANCHOR_END: fingerprint

/// Hashes `bytes` with its length in front, so that no two different
/// sequences of fields can hash alike.
fn field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_be_bytes());
    hasher.update(bytes);
}

/// Hashes a file's length and contents, read in pieces (sha2 0.11 has no
/// `io::Write`, so no `io::copy`).
fn hash_contents(hasher: &mut Sha256, path: &Path) -> Result<()> {
    let reading = || format!("reading {}", path.display());
    let mut file = File::open(path).with_context(reading)?;
    let length = file.metadata().with_context(reading)?.len();
    hasher.update(length.to_be_bytes());
    let mut buffer = vec![0; 64 * 1024];
    let mut count = 0;
    loop {
        let n = file.read(&mut buffer).with_context(reading)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        count += n as u64;
    }
    if count != length {
        bail!("reading {}: it changed while being read", path.display());
    }
    Ok(())
}

// Each test builds a small context in a temporary directory and holds one
// rule against what Docker does, with Docker's own examples and messages.
#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;
    use std::time::{Duration, SystemTime};

    use super::*;

    /// A context with `files` (`name` → contents; a name ending in `/` is a
    /// directory), parents made as needed.
    fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, contents) in files {
            let path = dir.path().join(name);
            if name.ends_with('/') {
                fs::create_dir_all(&path).unwrap();
            } else {
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(&path, contents).unwrap();
            }
        }
        dir
    }

    /// Which of `paths` the `.dockerignore` text `rules` leaves out.
    fn ignored<'p>(rules: &str, paths: &[&'p str]) -> Vec<&'p str> {
        let ignore = Ignore::parse(rules).unwrap();
        paths
            .iter()
            .copied()
            .filter(|p| ignore.is_ignored(Path::new(p)))
            .collect()
    }

    fn paths(entries: &[Entry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| e.path.display().to_string())
            .collect()
    }

    fn sources(context: &Path, ignore: &Ignore, source: &str) -> Vec<String> {
        let found = resolve(context, ignore, source).unwrap();
        found.iter().map(|s| s.path.display().to_string()).collect()
    }

    #[test]
    fn a_dockerignore_pattern_names_a_path_and_everything_below_it() {
        let all = [
            "secret",
            "secret/key",
            "a/secret",
            "secrets",
            "a.log",
            "sub/b.log",
        ];
        assert_eq!(ignored("secret", &all), ["secret", "secret/key"]);
        // `*` stops at `/`: unlike .gitignore, `*.log` is the root's only.
        assert_eq!(ignored("*.log", &all), ["a.log"]);
        let deep = ["a.tmp", "x/y/b.tmp", "c.tmpx", "x/tmp"];
        assert_eq!(ignored("**/*.tmp", &deep), ["a.tmp", "x/y/b.tmp"]);
        let dirs = ["dir", "dir/x/y", "dirx", "a/dir"];
        assert_eq!(ignored("dir/", &dirs), ["dir", "dir/x/y"]);
        assert_eq!(ignored("/dir", &dirs), ["dir", "dir/x/y"]);
        assert_eq!(ignored("./dir", &dirs), ["dir", "dir/x/y"]);
        assert_eq!(ignored("x/../dir", &dirs), ["dir", "dir/x/y"]);
        // Docker's own examples (the Dockerfile reference).
        let temp = [
            "somedir/temporary.txt",
            "somedir/temp",
            "a/b/temp",
            "tempa",
            "temp",
        ];
        assert_eq!(
            ignored("*/temp*", &temp),
            ["somedir/temporary.txt", "somedir/temp"]
        );
        assert_eq!(ignored("*/*/temp*", &temp), ["a/b/temp"]);
        assert_eq!(ignored("temp?", &temp), ["tempa"]);
        let chars = ["a.txt", "b.txt", "c.txt", "file*", "filex"];
        assert_eq!(ignored("[ab].txt", &chars), ["a.txt", "b.txt"]);
        assert_eq!(ignored("[^ab].txt", &chars), ["c.txt"]);
        assert_eq!(ignored("[a-b].txt", &chars), ["a.txt", "b.txt"]);
        assert_eq!(ignored("file\\*", &chars), ["file*"]);
        // `**` alone is everything; moby reads a leading `**` before plain
        // text as "ends with".
        assert_eq!(ignored("**", &chars), chars);
        assert_eq!(
            ignored("**.txt", &["a.txt", "d/b.txt", "txt"]),
            ["a.txt", "d/b.txt"]
        );
    }

    #[test]
    fn the_last_matching_line_wins_and_exceptions_put_paths_back() {
        let files = ["README.md", "README-secret.md", "notes.md", "main.rs"];
        let first = "*.md\n!README*.md\nREADME-secret.md\n";
        assert_eq!(ignored(first, &files), ["README-secret.md", "notes.md"]);
        let last = "*.md\nREADME-secret.md\n!README*.md\n";
        assert_eq!(ignored(last, &files), ["notes.md"]);
        let tree = ["dir", "dir/keep", "dir/keep/deep", "dir/other", "dirt"];
        assert_eq!(ignored("dir\n!dir/keep\n", &tree), ["dir", "dir/other"]);
        // Everything but what is named: `*` then exceptions.
        assert_eq!(ignored("*\n!main.rs\n", &files), &files[..3]);
    }

    #[test]
    fn comments_blank_lines_and_spaces_are_read_as_docker_reads_them() {
        let text = "\u{feff}# a comment\n\n   \n  a.txt  \r\n  # not a comment\n";
        let paths = ["# a comment", "a.txt", "# not a comment", "b.txt"];
        assert_eq!(ignored(text, &paths), ["a.txt", "# not a comment"]);
        let error = |text: &str| format!("{:#}", Ignore::parse(text).unwrap_err());
        assert_eq!(
            error("ok\n!\n"),
            "line 2 \"!\": illegal exclusion pattern: \"!\""
        );
        assert_eq!(error("[a"), "line 1 \"[a\": syntax error in pattern");
        for bad in ["[]", "[a-]", "x\\", "[-a]"] {
            assert!(Ignore::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_walk_enters_an_ignored_directory_only_for_an_exception() {
        let dir = context(&[
            ("dir/keep", "k"),
            ("dir/other", "o"),
            ("dir/sub/deep", "d"),
            ("top", "t"),
            ("empty/", ""),
        ]);
        let walk_with = |rules: &str| {
            let ignore = Ignore::parse(rules).unwrap();
            paths(&Walk::new(dir.path(), &ignore).below(Path::new("")).unwrap())
        };
        let all = [
            "dir",
            "dir/keep",
            "dir/other",
            "dir/sub",
            "dir/sub/deep",
            "empty",
            "top",
        ];
        assert_eq!(walk_with(""), all);
        assert_eq!(walk_with("dir"), ["empty", "top"]);
        // The directory comes back as the parent of what was put back.
        assert_eq!(
            walk_with("dir\n!dir/keep"),
            ["dir", "dir/keep", "empty", "top"]
        );
        assert_eq!(
            walk_with("dir\n!**/deep"),
            ["dir", "dir/sub", "dir/sub/deep", "empty", "top"]
        );
        assert_eq!(
            walk_with("dir/*\n!dir/sub"),
            ["dir", "dir/sub", "dir/sub/deep", "empty", "top"]
        );
        let ignore = Ignore::parse("dir\n!dir/keep").unwrap();
        assert!(ignore.may_keep_below(Path::new("dir")));
        assert!(!ignore.may_keep_below(Path::new("other")));
        assert!(
            Ignore::parse("x\n!*.md")
                .unwrap()
                .may_keep_below(Path::new("x"))
        );
    }

    #[test]
    fn wildcards_in_a_source_match_per_path_element() {
        let dir = context(&[
            ("a.txt", ""),
            ("b.txt", ""),
            ("c.md", ""),
            ("dir/x.txt", ""),
            ("dir/y.md", ""),
            ("[ab].txt", "a file with brackets in its name"),
        ]);
        let none = Ignore::default();
        let at = dir.path();
        assert_eq!(sources(at, &none, "*.txt"), ["[ab].txt", "a.txt", "b.txt"]);
        assert_eq!(sources(at, &none, "/dir/*"), ["dir/x.txt", "dir/y.md"]);
        assert_eq!(sources(at, &none, "*/*.md"), ["dir/y.md"]);
        assert_eq!(sources(at, &none, "[ab].txt"), ["a.txt", "b.txt"]);
        // Docker's way to name a `[`: a class. Escaped, `[` is no wildcard,
        // so the path is taken as written, backslash and all.
        assert_eq!(sources(at, &none, "[[]ab].txt"), ["[ab].txt"]);
        assert!(resolve(at, &none, "\\[ab].txt").is_err());
        assert_eq!(sources(at, &none, "?.md"), ["c.md"]);
        assert!(sources(at, &none, "*.nothing").is_empty());
        // What is ignored does not match either.
        let ignore = Ignore::parse("b.txt\ndir/x.txt").unwrap();
        assert_eq!(sources(at, &ignore, "[ab].txt"), ["a.txt"]);
        assert_eq!(sources(at, &ignore, "dir/*"), ["dir/y.md"]);
    }

    #[test]
    fn a_source_outside_the_context_is_refused() {
        let outer = context(&[("secret", "s"), ("ctx/a", "a")]);
        let ctx = outer.path().join("ctx");
        let none = Ignore::default();
        for (source, shown) in [
            ("../secret", "../secret"),
            ("a/../../secret", "a/../../secret"),
            ("/../secret", "../secret"),
            ("..", ".."),
        ] {
            let error = resolve(&ctx, &none, source).unwrap_err().to_string();
            assert_eq!(
                error,
                format!("forbidden path outside the build context: {shown} ()")
            );
        }
        assert_eq!(sources(&ctx, &none, "x/../a"), ["a"]);
        assert_eq!(sources(&ctx, &none, "/a"), ["a"]);
        assert_eq!(sources(&ctx, &none, "./a"), ["a"]);
        // A link cannot lead out either: it is read as if the context were `/`.
        symlink("../secret", ctx.join("up")).unwrap();
        symlink(outer.path().join("secret"), ctx.join("absolute")).unwrap();
        assert!(resolve(&ctx, &none, "up").is_err());
        assert!(resolve(&ctx, &none, "absolute").is_err());
        fs::write(ctx.join("secret"), "the context's own").unwrap();
        assert_eq!(sources(&ctx, &none, "up"), ["secret"]);
    }

    #[test]
    fn a_missing_or_ignored_source_gets_dockers_error() {
        let dir = context(&[("secret.txt", ""), ("logs/today", ""), ("app", "")]);
        let ignore = Ignore::parse("secret.txt\nlogs").unwrap();
        let error = |source: &str| {
            let e = resolve(dir.path(), &ignore, source).unwrap_err();
            format!("{:#}", e.context("COPY failed"))
        };
        let docker = "COPY failed: file not found in build context or excluded by .dockerignore";
        assert_eq!(
            error("nope"),
            format!("{docker}: stat nope: file does not exist")
        );
        assert_eq!(
            error("./secret.txt"),
            format!("{docker}: stat secret.txt: file does not exist")
        );
        assert_eq!(
            error("logs/today"),
            format!("{docker}: stat logs/today: file does not exist")
        );
        assert_eq!(
            error("logs"),
            format!("{docker}: stat logs: file does not exist")
        );
        assert_eq!(
            error("app/x"),
            format!("{docker}: stat app/x: file does not exist")
        );
        assert_eq!(sources(dir.path(), &ignore, "app"), ["app"]);
    }

    #[test]
    fn a_directory_source_copies_its_contents() {
        let dir = context(&[
            ("src/main.rs", "fn main() {}"),
            ("src/bin/tool.rs", ""),
            ("a.txt", ""),
        ]);
        let none = Ignore::default();
        let walk = Walk::new(dir.path(), &none);
        let src = resolve(dir.path(), &none, "src").unwrap().remove(0);
        assert!(src.is_dir);
        let to = destination("COPY", "/app", "/", std::slice::from_ref(&src)).unwrap();
        let targets: Vec<PathBuf> = walk
            .copied(&src)
            .unwrap()
            .iter()
            .map(|i| to.target(&src, &i.relative))
            .collect();
        let expected = ["/app", "/app/bin", "/app/bin/tool.rs", "/app/main.rs"];
        assert_eq!(targets, expected.map(PathBuf::from));
        // `COPY . /app/`: the whole context, its root included.
        let root = resolve(dir.path(), &none, ".").unwrap().remove(0);
        assert_eq!((root.path.as_os_str(), root.is_dir), (OsStr::new(""), true));
        assert_eq!(walk.copied(&root).unwrap().len(), 6);
    }

    #[test]
    fn destinations_follow_dockers_rules() {
        let dir = context(&[("a.txt", ""), ("b.txt", "")]);
        let none = Ignore::default();
        let a = resolve(dir.path(), &none, "a.txt").unwrap();
        let both = resolve(dir.path(), &none, "*.txt").unwrap();
        let target = |dest: &str, workdir: &str| {
            let to = destination("COPY", dest, workdir, &a).unwrap();
            to.target(&a[0], Path::new("a.txt"))
        };
        assert_eq!(target("/app/", "/"), Path::new("/app/a.txt"));
        assert_eq!(target("/app", "/"), Path::new("/app"));
        assert_eq!(target("rel/", "/w"), Path::new("/w/rel/a.txt"));
        assert_eq!(target("rel", "/w"), Path::new("/w/rel"));
        assert_eq!(target(".", "/w"), Path::new("/w/a.txt"));
        assert_eq!(target("../x/", "/w/v"), Path::new("/w/x/a.txt"));
        assert_eq!(target("/../../etc/", "/w"), Path::new("/etc/a.txt"));
        let error = destination("COPY", "/app", "/", &both)
            .unwrap_err()
            .to_string();
        let docker = "When using COPY with more than one source file, the destination must be a directory and end with a /";
        assert_eq!(error, docker);
        assert_eq!(
            destination("ADD", ".", "/", &both).unwrap_err().to_string(),
            docker.replace("COPY", "ADD")
        );
        assert!(destination("COPY", "/app/", "/", &both).unwrap().is_dir);
        let empty = destination("COPY", "/app/", "/", &[])
            .unwrap_err()
            .to_string();
        assert_eq!(empty, "COPY failed: no source files were specified");
    }

    #[test]
    fn a_symlink_named_as_the_source_is_followed_but_one_inside_is_kept() {
        let dir = context(&[("real.txt", "data"), ("realdir/f", ""), ("hidden.txt", "")]);
        let at = dir.path();
        symlink("real.txt", at.join("link")).unwrap();
        symlink("realdir", at.join("dirlink")).unwrap();
        symlink("../real.txt", at.join("realdir/inner")).unwrap();
        symlink("hidden.txt", at.join("to-hidden")).unwrap();
        symlink("loop", at.join("loop")).unwrap();
        let ignore = Ignore::parse("hidden.txt").unwrap();
        let link = resolve(at, &ignore, "link").unwrap().remove(0);
        let expected = Source {
            path: "real.txt".into(),
            name: "link".into(),
            is_dir: false,
        };
        assert_eq!(link, expected);
        let dirlink = resolve(at, &ignore, "dirlink").unwrap().remove(0);
        assert_eq!(
            (dirlink.path.as_path(), dirlink.is_dir),
            (Path::new("realdir"), true)
        );
        assert_eq!(sources(at, &ignore, "dirlink/f"), ["realdir/f"]);
        let walk = Walk::new(at, &ignore);
        let inner = walk.copied(&dirlink).unwrap();
        assert_eq!(
            (inner[2].relative.as_path(), inner[2].entry.kind),
            (Path::new("inner"), Kind::Symlink)
        );
        // A link to an ignored file finds nothing; a loop is an error.
        assert!(resolve(at, &ignore, "to-hidden").is_err());
        let error = resolve(at, &ignore, "loop").unwrap_err().to_string();
        assert_eq!(error, "loop: too many levels of symbolic links");
    }

    /// The fingerprint of `COPY <source>` in `dir`.
    fn fingerprint_of(dir: &Path, rules: &str, source: &str) -> String {
        let ignore = Ignore::parse(rules).unwrap();
        let found = resolve(dir, &ignore, source).unwrap();
        fingerprint(dir, &ignore, &found).unwrap()
    }

    #[test]
    fn the_fingerprint_ignores_times_place_and_ignored_files() {
        let files = [
            ("app/main.rs", "fn main() {}"),
            ("app/debug.log", "1"),
            ("app/sub/", ""),
        ];
        let (one, two) = (context(&files), context(&files));
        let before = fingerprint_of(one.path(), "**/*.log", "app");
        assert!(
            before.starts_with("sha256:") && before.len() == 71,
            "{before}"
        );
        // Another place on the host, the same files: the same fingerprint.
        assert_eq!(fingerprint_of(two.path(), "**/*.log", "app"), before);
        // `touch`: times are not part of it.
        let old = SystemTime::now() - Duration::from_secs(86_400);
        File::options()
            .write(true)
            .open(one.path().join("app/main.rs"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert_eq!(fingerprint_of(one.path(), "**/*.log", "app"), before);
        // An ignored file is not in the context at all.
        fs::write(one.path().join("app/debug.log"), "2").unwrap();
        assert_eq!(fingerprint_of(one.path(), "**/*.log", "app"), before);
        // Not ignored, the same change counts.
        assert_ne!(
            fingerprint_of(one.path(), "", "app"),
            fingerprint_of(two.path(), "", "app")
        );
    }

    #[test]
    fn the_fingerprint_changes_with_contents_modes_names_and_links() {
        let dir = context(&[("app/main.rs", "fn main() {}"), ("app/lib.rs", "")]);
        let at = dir.path();
        let mut seen = vec![fingerprint_of(at, "", "app")];
        let mut changed = |what: &str| {
            let now = fingerprint_of(at, "", "app");
            assert!(
                !seen.contains(&now),
                "{what} did not change the fingerprint"
            );
            seen.push(now);
        };
        fs::write(at.join("app/main.rs"), "fn main() {}\n").unwrap();
        changed("one byte more");
        fs::set_permissions(at.join("app/main.rs"), fs::Permissions::from_mode(0o755)).unwrap();
        changed("a mode");
        fs::rename(at.join("app/lib.rs"), at.join("app/mod.rs")).unwrap();
        changed("a name");
        symlink("main.rs", at.join("app/link")).unwrap();
        changed("a new symlink");
        fs::remove_file(at.join("app/link")).unwrap();
        symlink("mod.rs", at.join("app/link")).unwrap();
        changed("a symlink's target");
        fs::set_permissions(at.join("app"), fs::Permissions::from_mode(0o700)).unwrap();
        changed("the directory's own mode");
        // The same file copied under another name lands elsewhere.
        fs::write(at.join("one"), "x").unwrap();
        fs::write(at.join("two"), "x").unwrap();
        assert_ne!(fingerprint_of(at, "", "one"), fingerprint_of(at, "", "two"));
    }
}
