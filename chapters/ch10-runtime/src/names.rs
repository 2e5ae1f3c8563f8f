//! Generated container names: `docker run` without `--name` still gives the
//! container a name people can type, such as `quiet_ritchie`.
//!
//! A 64-digit ID is exact but hard to say out loud; a name is for people.
//! Docker makes one from two word lists, an adjective and the surname of
//! someone who mattered (`adjective_surname`), and so does minibox, with lists
//! of its own: friendly adjectives, many borrowed from the kernel's vocabulary,
//! and people who made Unix, the Internet's protocols and containers.
//!
//! Names must be unique, and two lists of about fifty words give only about
//! 2,500 pairs, so a name can be taken. The rule, Docker's: draw a pair; if it
//! is taken, draw again with a random digit appended (`quiet_ritchie7`), up to
//! six tries in all; after that, fall back to the container's short ID, which
//! is unique anyway. Whether a name is taken is the caller's business:
//! [`generate`] asks through a closure, and [`crate::state`] answers it under
//! the lock that makes the answer true until the name is written.
//!
//! The randomness comes in through [`RandomSource`], so the same source gives
//! the same names: tests and the book's examples are reproducible, and a test
//! can make many generators collide on purpose.
// SIMPLIFICATION: Docker draws with Go's math/rand and podman with its own
// copy of the same generator; both use far longer word lists (about 100
// adjectives and 240 people), so their names collide less often.

use std::fs::File;
use std::io::Read;

use anyhow::{Context, Result, bail};
use ch03_uts_namespace::id;

/// The adjectives: the first half of a generated name.
pub const ADJECTIVES: &[&str] = &[
    "atomic",
    "buffered",
    "cached",
    "canonical",
    "concurrent",
    "curious",
    "daring",
    "deferred",
    "detached",
    "diligent",
    "frugal",
    "gentle",
    "humble",
    "idempotent",
    "idle",
    "immutable",
    "isolated",
    "lockless",
    "nested",
    "nimble",
    "patient",
    "pinned",
    "plucky",
    "polite",
    "portable",
    "preemptive",
    "punctual",
    "quiet",
    "recursive",
    "reentrant",
    "resident",
    "restless",
    "sandboxed",
    "snappy",
    "sparse",
    "spry",
    "stateless",
    "steady",
    "sticky",
    "swift",
    "terse",
    "thrifty",
    "tickless",
    "tidy",
    "unbuffered",
    "unprivileged",
    "verbose",
    "virtual",
    "volatile",
    "wakeful",
    "witty",
    "zippy",
];

/// The people: the second half of a generated name. Each mattered to Unix,
/// to networking or to containers; the comment says what for.
pub const PEOPLE: &[&str] = &[
    // Unix at Bell Labs.
    "thompson",   // Ken Thompson: Unix, its first shell and file system
    "ritchie",    // Dennis Ritchie: C, and Unix rewritten in it
    "kernighan",  // Brian Kernighan: awk, and the books that taught C and Unix
    "mcilroy",    // Doug McIlroy: pipes, and the Unix philosophy
    "ossanna",    // Joe Ossanna: troff, and the case for building Unix
    "cherry",     // Lorinda Cherry: dc, bc, eqn and the Writer's Workbench
    "morris",     // Robert Morris: crypt and Unix's first password security
    "bourne",     // Stephen Bourne: the Bourne shell, /bin/sh
    "mashey",     // John Mashey: the PWB shell, shell programming
    "lesk",       // Mike Lesk: lex, uucp, tbl
    "johnson",    // Steve Johnson: yacc, lint, the portable C compiler
    "aho",        // Al Aho: egrep, awk, and the dragon book
    "weinberger", // Peter Weinberger: the W in awk
    "pike",       // Rob Pike: Plan 9 (where namespaces per process began), UTF-8
    "duff",       // Tom Duff: rc, Plan 9's shell
    "lions",      // John Lions: the commentary that taught Unix's source
    "bach",       // Maurice Bach: The Design of the UNIX Operating System
    // BSD.
    "joy",      // Bill Joy: vi, csh, BSD's TCP/IP
    "mckusick", // Kirk McKusick: the fast file system
    "karels",   // Mike Karels: BSD's networking code
    "fabry",    // Bob Fabry: started Berkeley's CSRG
    "babaoglu", // Ozalp Babaoglu: virtual memory for BSD
    // Free software and Linux.
    "stallman",  // Richard Stallman: GNU and its licence
    "torvalds",  // Linus Torvalds: Linux, and git
    "tanenbaum", // Andrew Tanenbaum: MINIX, which Linux answered
    "cox",       // Alan Cox: Linux's networking and SMP
    "morton",    // Andrew Morton: Linux's memory management, the -mm tree
    "kerrisk",   // Michael Kerrisk: the man pages this book links to
    "corbet",    // Jonathan Corbet: LWN, kernel news for everyone
    "tridgell",  // Andrew Tridgell: Samba, rsync
    // The Internet.
    "cerf",        // Vint Cerf: TCP/IP
    "kahn",        // Bob Kahn: TCP/IP
    "postel",      // Jon Postel: RFC editor, IANA
    "metcalfe",    // Bob Metcalfe: Ethernet
    "boggs",       // David Boggs: Ethernet
    "baran",       // Paul Baran: packet switching
    "davies",      // Donald Davies: packet switching, and the word "packet"
    "kleinrock",   // Leonard Kleinrock: queueing theory of packet networks
    "perlman",     // Radia Perlman: the spanning tree protocol bridges run
    "jacobson",    // Van Jacobson: TCP congestion control, traceroute, BPF
    "mccanne",     // Steven McCanne: BPF, libpcap
    "mockapetris", // Paul Mockapetris: DNS
    "floyd",       // Sally Floyd: RED queueing, TCP congestion research
    "clark",       // David Clark: the Internet's architecture
    "crocker",     // Steve Crocker: the first RFC
    "reynolds",    // Joyce Reynolds: RFC editor, IANA
    "feinler",     // Elizabeth Feinler: the ARPANET's host names, before DNS
    "vixie",       // Paul Vixie: BIND, and cron
    // Containers.
    "kamp",        // Poul-Henning Kamp: FreeBSD jails
    "biederman",   // Eric Biederman: Linux namespaces
    "menage",      // Paul Menage: control groups
    "emelyanov",   // Pavel Emelyanov: PID and network namespaces, CRIU
    "hallyn",      // Serge Hallyn: user namespaces, LXC
    "graber",      // Stephane Graber: LXC and LXD
    "hykes",       // Solomon Hykes: Docker
    "crosby",      // Michael Crosby: runc and containerd
    "walsh",       // Dan Walsh: SELinux for containers, podman
    "starovoitov", // Alexei Starovoitov: eBPF
];

/// How many names [`generate`] draws before it falls back to the short ID
/// (Docker's number).
pub const ATTEMPTS: u32 = 6;

/// The one pair never generated, our version of Docker's easter egg (Docker
/// skips `boring_wozniak`: "Steve Wozniak is not boring"). Asked what he would
/// change if he redid Unix, Ken Thompson is said to have answered "I'd spell
/// creat with an e": he is not verbose.
pub const NEVER: &str = "verbose_thompson";

/// Where the randomness comes from: a number below `n` (`n > 0`) per call.
pub trait RandomSource {
    /// A number in `0..n`.
    fn below(&mut self, n: usize) -> usize;
}

/// Any closure `FnMut(usize) -> usize` is a source, so a test can script the
/// exact draws it wants.
impl<F: FnMut(usize) -> usize> RandomSource for F {
    fn below(&mut self, n: usize) -> usize {
        self(n) % n
    }
}

/// A small, fast pseudo-random generator (Vigna's SplitMix64), seeded once.
/// Names need to be varied, not secret: seeded from `/dev/urandom` for real
/// use, from a fixed number for reproducible tests.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    /// The generator's whole state, advanced by a constant per draw.
    state: u64,
}

impl SplitMix64 {
    /// A generator that always draws the same sequence for the same `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator seeded with 8 bytes of `/dev/urandom`.
    pub fn from_urandom() -> Result<Self> {
        let mut seed = [0u8; 8];
        File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut seed))
            .context("reading /dev/urandom to seed the name generator")?;
        Ok(Self::new(u64::from_le_bytes(seed)))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl RandomSource for SplitMix64 {
    /// The remainder of 64 random bits: its bias towards small numbers is
    /// below one in 10^17 for lists this short.
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

// ANCHOR: random_name
/// One candidate name: `adjective_surname`, with a random digit appended when
/// `attempt` is not the first (`quiet_ritchie7`). Never [`NEVER`].
pub fn random_name(rng: &mut impl RandomSource, attempt: u32) -> String {
    let mut name = loop {
        let adjective = ADJECTIVES[rng.below(ADJECTIVES.len())];
        let person = PEOPLE[rng.below(PEOPLE.len())];
        let name = format!("{adjective}_{person}");
        if name != NEVER {
            break name;
        }
    };
    if attempt > 0 {
        name.push_str(&rng.below(10).to_string());
    }
    name
}

/// A name for the container `id` that `is_taken` says is free: up to
/// [`ATTEMPTS`] random names, then the short ID, as Docker does. The short ID
/// is returned without asking (the caller checks it, as Docker does).
pub fn generate(
    rng: &mut impl RandomSource,
    id: &str,
    mut is_taken: impl FnMut(&str) -> bool,
) -> String {
    for attempt in 0..ATTEMPTS {
        let name = random_name(rng, attempt);
        if !is_taken(&name) {
            return name;
        }
    }
    id::short(id).to_string()
}
// ANCHOR_END: random_name

/// Checks a name given with `--name` (or to `rename`) and returns it without
/// its optional leading `/` (Docker stores names as `/web`; people type
/// `web`). Docker's rule and message: a letter or digit, then at least one
/// more letter, digit, `_`, `.` or `-`.
pub fn validate(name: &str) -> Result<&str> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    if !is_valid(bare) {
        // Docker's wording, capital and all, as its users know it.
        bail!("Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
    }
    Ok(bare)
}

/// Docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, for container and volume names
/// alike: a letter or digit, then at least one more letter, digit, `_`, `.`
/// or `-`.
pub fn is_valid(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest: Vec<char> = chars.collect();
    first_ok
        && !rest.is_empty()
        && rest
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn the_lists_are_long_unique_and_make_valid_names() {
        for list in [ADJECTIVES, PEOPLE] {
            assert!(list.len() >= 50, "{} words", list.len());
            let unique: HashSet<_> = list.iter().collect();
            assert_eq!(unique.len(), list.len(), "a word is listed twice");
            for word in list {
                assert!(word.chars().all(|c| c.is_ascii_lowercase()), "{word}");
            }
        }
        for adjective in ADJECTIVES {
            for person in PEOPLE {
                let name = format!("{adjective}_{person}9");
                assert_eq!(validate(&name).unwrap(), name);
            }
        }
        let (adjective, person) = NEVER.split_once('_').unwrap();
        assert!(ADJECTIVES.contains(&adjective) && PEOPLE.contains(&person));
    }

    #[test]
    fn the_same_seed_gives_the_same_names() {
        let draw = |seed| {
            let mut rng = SplitMix64::new(seed);
            (0..20)
                .map(|_| random_name(&mut rng, 0))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        let distinct: HashSet<_> = draw(7).into_iter().collect();
        assert!(distinct.len() > 15, "{distinct:?}");
    }

    #[test]
    fn a_scripted_source_picks_the_words_and_the_digit() {
        let mut draws = [27, 1, 7].into_iter();
        let mut rng = |_n: usize| draws.next().unwrap();
        assert_eq!(random_name(&mut rng, 1), "quiet_ritchie7");
    }

    #[test]
    fn the_easter_egg_is_never_generated() {
        let verbose = ADJECTIVES.iter().position(|a| *a == "verbose").unwrap();
        let thompson = PEOPLE.iter().position(|p| *p == "thompson").unwrap();
        // The first pair drawn is the forbidden one: it is drawn again.
        let mut draws = [verbose, thompson, verbose, thompson + 1].into_iter();
        let mut rng = |_n: usize| draws.next().unwrap();
        assert_eq!(random_name(&mut rng, 0), "verbose_ritchie");
        let mut rng = SplitMix64::new(1);
        for _ in 0..100_000 {
            assert_ne!(random_name(&mut rng, 0), NEVER);
        }
    }

    #[test]
    fn taken_names_are_retried_with_a_digit_then_the_short_id() {
        let id = "0123456789abcdef".repeat(4);
        let mut asked = Vec::new();
        let mut rng = SplitMix64::new(3);
        let name = generate(&mut rng, &id, |n| {
            asked.push(n.to_string());
            asked.len() < 3
        });
        assert_eq!(asked.len(), 3);
        assert_eq!(name, asked[2]);
        assert!(!asked[0].ends_with(|c: char| c.is_ascii_digit()));
        assert!(asked[1].ends_with(|c: char| c.is_ascii_digit()));
        let mut asked = 0;
        let name = generate(&mut rng, &id, |_| {
            asked += 1;
            true
        });
        assert_eq!((asked, name.as_str()), (ATTEMPTS, "0123456789ab"));
    }

    #[test]
    fn names_are_checked_as_docker_checks_them() {
        assert_eq!(validate("web").unwrap(), "web");
        assert_eq!(validate("/web").unwrap(), "web");
        assert_eq!(validate("my-app_2.0").unwrap(), "my-app_2.0");
        for bad in ["", "/", "a", "-web", "_web", "we b", "web/1", "wéb"] {
            let message = validate(bad).unwrap_err().to_string();
            assert_eq!(
                message,
                format!(
                    "Invalid container name ({bad}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )
            );
        }
    }
}
