//! Test plumbing for the draft (the workspace's `harness` crate takes this
//! role once the chapter is wired in): the root gate and the checks that a
//! test left nothing behind.

#![allow(dead_code)]

use std::os::fd::BorrowedFd;

use ch09_networking_draft::netlink::Netlink;

/// Returns true when the test may go on. Without root it prints `SKIP` and
/// returns false, or panics when `MINIBOX_REQUIRE_PRIVILEGED=1` forbids
/// skipping (the workspace harness's rule).
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    let forbidden =
        std::env::var("MINIBOX_REQUIRE_PRIVILEGED").is_ok_and(|v| !v.is_empty() && v != "0");
    assert!(
        !forbidden,
        "{test} needs root and MINIBOX_REQUIRE_PRIVILEGED forbids skipping"
    );
    eprintln!("SKIP {test}: needs root");
    false
}

/// The names of the links in namespace `netns`, sorted.
pub fn link_names(netns: BorrowedFd<'_>) -> Vec<String> {
    let mut names: Vec<String> = Netlink::open_in(netns)
        .unwrap()
        .links()
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect();
    names.sort();
    names
}

/// `ip -o link` run inside `netns`, one line per link: the independent view
/// of what is left.
pub fn ip_o_link(netns: BorrowedFd<'_>) -> String {
    let out = ch09_networking_draft::netns::command_in(netns, "ip")
        .unwrap()
        .args(["-o", "link"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ip -o link: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Asserts that the real host's namespace (the one the test process runs in)
/// has no link whose name starts with `prefix`: the test's links never
/// escaped the namespaces it made. Reading the host's links is read-only.
pub fn assert_host_has_no_link(prefix: &str) {
    let leaked: Vec<String> = Netlink::open()
        .unwrap()
        .links()
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .filter(|n| n.starts_with(prefix))
        .collect();
    assert!(leaked.is_empty(), "links on the real host: {leaked:?}");
}
