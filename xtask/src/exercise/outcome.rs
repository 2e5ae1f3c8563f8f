//! What a run of checkers said, read from libtest's output: which checkers
//! passed, and for each one that failed, the sentence its assertion gave.
//!
//! Checkers write their assertion messages for learners ("expected ..., but
//! ..."), so that sentence is all a learner needs to see; the rest of the
//! output (the compiler, the test harness, the panic location) is for
//! `--verbose`.

use std::collections::BTreeMap;

/// How one checker ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It passed: the exercise is solved.
    Solved,
    /// It failed, saying this.
    NotYet(String),
    /// It could not run without root (`MINIBOX_REQUIRE_PRIVILEGED` made the
    /// skip a failure): nothing was checked.
    NeedsRoot,
    /// It needs a pure cgroup v2 host (the v2 VM): nothing was checked.
    NeedsV2,
    /// It could not run here for another reason, given: nothing was checked.
    NotChecked(String),
}

/// The end of the message `harness::privilege::skip` (and so `require_root`)
/// panics with when skipping is forbidden: `TEST cannot run here (REASON), and
/// MINIBOX_REQUIRE_PRIVILEGED=1 forbids skipping it`.
const FORBIDDEN_SKIP: &str = "MINIBOX_REQUIRE_PRIVILEGED=1 forbids skipping";

/// Each test libtest reported on, by name (`exercise_init`), with its outcome.
pub fn parse(output: &str) -> BTreeMap<String, Outcome> {
    let mut outcomes = BTreeMap::new();
    for line in output.lines() {
        // "test exercise_init ... ok" / "... FAILED" / "... ignored"
        let Some(rest) = line.strip_prefix("test ") else {
            continue;
        };
        let Some((name, result)) = rest.split_once(" ... ") else {
            continue;
        };
        match result.trim() {
            "ok" => {
                outcomes.insert(name.to_string(), Outcome::Solved);
            }
            "FAILED" => {
                let message = failure_message(output, name).unwrap_or_default();
                outcomes.insert(name.to_string(), classify(message));
            }
            _ => {}
        }
    }
    outcomes
}

fn classify(message: String) -> Outcome {
    if message.contains(FORBIDDEN_SKIP) {
        // The reason is what the skip gave, in the parentheses.
        let reason = message
            .split_once("cannot run here (")
            .and_then(|(_, rest)| rest.rsplit_once("), and "))
            .map_or(message.as_str(), |(reason, _)| reason);
        return if reason.contains("root") {
            Outcome::NeedsRoot
        } else if reason.contains("cgroup v2") {
            Outcome::NeedsV2
        } else {
            Outcome::NotChecked(reason.to_string())
        };
    }
    if message.is_empty() {
        Outcome::NotYet("the checker failed without saying why (see --verbose)".into())
    } else {
        Outcome::NotYet(message)
    }
}

/// The panic message of test `name`, from its `---- name stdout ----` section,
/// without the assertion's boilerplate (`assertion failed: ...`, `left:`, `right:`)
/// when the checker gave a message of its own.
pub fn failure_message(output: &str, name: &str) -> Option<String> {
    let header = format!("---- {name} stdout ----");
    let section = &output[output.find(&header)? + header.len()..];
    let section = section
        .split("\n---- ")
        .next()
        .unwrap_or(section)
        .split("\nfailures:")
        .next()
        .unwrap_or(section);
    let mut lines = section.lines().skip_while(|l| !l.contains("panicked at"));
    lines.next()?; // the "thread '...' panicked at FILE:LINE:COL:" line
    let mut message: Vec<&str> = lines
        .take_while(|l| {
            !l.starts_with("note: run with `RUST_BACKTRACE") && *l != "stack backtrace:"
        })
        .collect();
    while message.last().is_some_and(|l| l.trim().is_empty()) {
        message.pop();
    }
    let first = message.first().copied().unwrap_or_default();
    for prefix in [
        "assertion `left == right` failed: ",
        "assertion `left != right` failed: ",
    ] {
        if let Some(own) = first.strip_prefix(prefix) {
            // The checker's own words; `left:`/`right:` are for --verbose.
            message[0] = own;
            message.retain(|l| !l.starts_with("  left: ") && !l.starts_with(" right: "));
        }
    }
    Some(message.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "
running 2 tests
test exercise_init ... FAILED
test exercise_die_with_parent ... ok

failures:

---- exercise_init stdout ----

thread 'exercise_init' (4242) panicked at chapters/ch02-pid-namespace/tests/exercises.rs:190:5:
expected `minibox run --init sh -c 'echo $$'` to print 2, but it printed \"1\\n\"
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace


failures:
    exercise_init

test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out
";

    #[test]
    fn a_failure_is_its_assertion_message_and_a_pass_is_solved() {
        let outcomes = parse(OUTPUT);
        assert_eq!(outcomes["exercise_die_with_parent"], Outcome::Solved);
        assert_eq!(
            outcomes["exercise_init"],
            Outcome::NotYet(
                "expected `minibox run --init sh -c 'echo $$'` to print 2, but it printed \"1\\n\""
                    .into()
            )
        );
    }

    #[test]
    fn assert_eq_keeps_the_checkers_words_only() {
        let output = "test exercise_x ... FAILED\n---- exercise_x stdout ----\n\
            thread 'exercise_x' panicked at a.rs:1:1:\n\
            assertion `left == right` failed: expected 2, but saw 1\n  left: 1\n right: 2\n";
        assert_eq!(
            parse(output)["exercise_x"],
            Outcome::NotYet("expected 2, but saw 1".into())
        );
    }

    #[test]
    fn a_checker_without_root_is_not_checked() {
        let output = "test exercise_x ... FAILED\n---- exercise_x stdout ----\n\
            thread 'exercise_x' panicked at crates/harness/src/privilege.rs:95:5:\n\
            ch02 exercise init cannot run here (needs root (run as root, or through sudo: see \
            README)), and MINIBOX_REQUIRE_PRIVILEGED=1 forbids skipping it\n";
        assert_eq!(parse(output)["exercise_x"], Outcome::NeedsRoot);
        let output = output.replace(
            "needs root (run as root, or through sudo: see README)",
            "no busybox",
        );
        assert_eq!(
            parse(&output)["exercise_x"],
            Outcome::NotChecked("no busybox".into())
        );
    }
}
