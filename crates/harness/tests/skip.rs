//! The one way a test skips (`harness::skip`), run for real in a child test
//! process: allowed, it prints one `SKIP` line that the test harness does not
//! capture (so `cargo test` and `.ci/run` see it) and passes; forbidden by
//! `MINIBOX_REQUIRE_PRIVILEGED=1`, it fails.

use std::process::{Command, Output};

/// Skips, when run as the child of the test below (otherwise does nothing).
#[test]
fn child_that_skips() {
    if std::env::var_os("HARNESS_SKIP_CHILD").is_some() {
        harness::skip("the child", "it was told to");
    }
}

fn run_child(require_privileged: &str) -> Output {
    Command::new(std::env::current_exe().expect("this test binary"))
        .args(["--exact", "child_that_skips", "--test-threads", "1"])
        .env("HARNESS_SKIP_CHILD", "1")
        .env(harness::privilege::REQUIRE_PRIVILEGED, require_privileged)
        .output()
        .expect("run the child")
}

#[test]
fn a_skip_is_one_visible_line_or_a_failure_when_forbidden() {
    let allowed = run_child("");
    let stderr = String::from_utf8_lossy(&allowed.stderr);
    assert!(allowed.status.success(), "{allowed:?}");
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.contains("SKIP"))
            .collect::<Vec<_>>(),
        ["SKIP the child: it was told to"],
        "{allowed:?}"
    );

    let forbidden = run_child("1");
    let stdout = String::from_utf8_lossy(&forbidden.stdout);
    assert!(!forbidden.status.success(), "{forbidden:?}");
    assert!(
        stdout.contains(
            "the child cannot run here: it was told to; MINIBOX_REQUIRE_PRIVILEGED=1 forbids skipping it"
        ),
        "{forbidden:?}"
    );
    assert!(
        !String::from_utf8_lossy(&forbidden.stderr).contains("SKIP"),
        "{forbidden:?}"
    );
}
