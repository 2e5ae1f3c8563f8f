//! Test and fixture plumbing shared by the chapters' tests, the workspace-wide
//! suite in `tests/` and `xtask`. Nothing here is part of a lesson: a learner never
//! needs to open it.
//!
//! ## Layout
//!
//! - [`privilege`]: the privilege probe, and the one way to skip a test. Root-only
//!   tests print `SKIP` without root, and fail instead under
//!   `MINIBOX_REQUIRE_PRIVILEGED=1` (set by CI); so does every other skip.
//! - [`engines`]: podman, Docker and containerd run by a test with the OCI
//!   runtime of its choice (chapter 14), each in a sandbox of its own.
//! - [`fixtures`]: the busybox root filesystem and the static fixture programs,
//!   built from what the host has.
//! - [`images`]: fixture images in the OCI format, built from what the host has.
//! - [`dynamic`]: a dynamically linked host program copied into a root
//!   filesystem with its loader and libraries (for the redis image).
//! - [`registry`]: the real registry server on 127.0.0.1, and pushing to it.
//! - [`gate`]: a front for it that holds each blob download until several
//!   clients ask for it at once, so concurrent pulls really overlap.
//! - [`registry_auth`]: the registry's two logins for tests: a token server
//!   signing ES256 JWTs (Docker Hub's scheme), and htpasswd files (Basic auth).
//! - [`http`]: one HTTP/1.1 request read, one response written, for the
//!   test servers in front of the registry.
//! - [`proxy`]: an HTTP front for the registry that drops, stalls or
//!   rate-limits once on purpose, and counts what it saw.
//! - [`tls`]: the registry over HTTPS with a CA of the test's own (and mutual
//!   TLS), laid out as Docker's certs.d.
//! - [`filters`]: the one insta filter table: it redacts only what varies between
//!   runs (host PIDs, temp dirs, the checkout's path).
//! - [`cgroups`]: where tests put their containers' cgroups (below their own), and
//!   the leak check that reads every mounted hierarchy from mountinfo.
//! - [`env`]: a minibox test environment (chapter 7 on): a store, credentials and
//!   a cgroup parent of the test's own, and the registry mirror.
//! - [`chapters`]: every chapter crate and its demos, in story order: what the tour
//!   runs, the demo snapshots record and the book shows.
//! - [`mount_ns`]: part of a test run in a forked child with a private mount
//!   namespace, so that what it mounts never reaches the host.
//! - [`rootless`]: an unprivileged user made for a test (chapter 13), whose
//!   passwd and subuid entries exist only in its commands' mount namespace.
//! - [`netns`]: a network namespace of the session's own, for a networking
//!   chapter's demos to play "the host" in.
//! - [`process`]: waiting for a binary a test started, with a deadline and a
//!   stop that lets minibox clean up; a minibox in the background, stopped on
//!   every path.
//! - [`transcript`]: find a chapter's binary, run a demo, and record what a
//!   terminal would have shown.

pub mod cgroups;
pub mod chapters;
pub mod dynamic;
pub mod engines;
pub mod env;
pub mod filters;
pub mod fixtures;
pub mod gate;
pub mod http;
pub mod images;
pub mod mount_ns;
pub mod netns;
pub mod podman;
pub mod privilege;
pub mod process;
pub mod proxy;
pub mod registry;
pub mod registry_auth;
pub mod rootless;
pub mod tls;
pub mod transcript;

pub use chapters::{Alongside, CHAPTERS, Chapter, Demo, Network};
pub use privilege::{require, require_root, skip};
