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

use std::fs;
use std::io;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Go's `filepath.ErrBadPattern`, which Docker prints as it is.
const BAD_PATTERN: &str = "syntax error in pattern";

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

/// A `/`-separated path cleaned lexically, as Go's `filepath.Clean`: empty
/// and `.` elements dropped, `..` taking away the element before it (never
/// above `/`; kept at the front of a relative path), `.` for nothing left.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|&p| p != "..") => {
                parts.pop();
            }
            ".." if rooted => {}
            part => parts.push(part),
        }
    }
    match (rooted, parts.is_empty()) {
        (true, _) => format!("/{}", parts.join("/")),
        (false, true) => ".".to_string(),
        (false, false) => parts.join("/"),
    }
}

// ---------------------------------------------------------------------------
// .dockerignore

/// One pattern line of a `.dockerignore`.
#[derive(Debug, Clone)]
struct Rule {
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
        Ok(Rule { glob, exception })
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which of `paths` the `.dockerignore` text `rules` leaves out.
    fn ignored<'p>(rules: &str, paths: &[&'p str]) -> Vec<&'p str> {
        let ignore = Ignore::parse(rules).unwrap();
        paths
            .iter()
            .copied()
            .filter(|p| ignore.is_ignored(Path::new(p)))
            .collect()
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
}
