//! Small static programs for the fixtures: each binary in `src/bin` is built by
//! `harness::fixtures` with `-C target-feature=+crt-static`, so it runs inside a
//! root filesystem that has no C library (the busybox root of chapter 4).
//!
//! - `chroot-escape`: the classic escape from a `chroot(2)` jail, for chapter 4's
//!   demonstration of why runtimes use `pivot_root(2)`.
//! - `hello`: the whole of the `hello-world` fixture image.
//! - `probe`: attempts privileged operations (mounts, namespaces, keys, reboot,
//!   modules, BPF, the clock, devices, ptrace...) and prints one line for each,
//!   `NAME: ok` or the errno's name, for chapter 12's `minibox/probe` image.
