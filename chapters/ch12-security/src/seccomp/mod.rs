//! seccomp: a filter on every system call the container makes.
//!
//! Capabilities decide what a process may do with the calls it makes;
//! seccomp ("secure computing", `seccomp(2)`) decides which calls it may
//! make at all. A process installs a small program, classic BPF, and from
//! then on the kernel runs it on every system call, before the call does
//! anything: the program sees the call's number, the architecture and the
//! six arguments (`struct seccomp_data`), never the memory they point to,
//! and answers ALLOW, ERRNO(n) (the call fails with that errno without
//! running), or kills the caller. The filter is inherited across fork and
//! exec and can never be removed, only made stricter by another: a
//! container cannot take it off.
//!
//! ## Why an allowlist
//!
//! The kernel has some 460 system calls. A container's programs use the
//! ordinary ones; a few others (`mount`, `unshare`, `keyctl`, `bpf`,
//! `kexec_load`, `init_module`...) reach beyond the container or into code
//! few programs exercise, where kernel bugs hide. Docker's default profile
//! therefore lists what is allowed (about 300 calls) and refuses the rest,
//! so a call added to the kernel next year is refused too until someone
//! decides otherwise. Some calls are allowed only for some arguments
//! (`clone` without namespace flags, `personality` with a few values), and
//! some only when the container has the capability they would need anyway
//! (`mount` with CAP_SYS_ADMIN): then the filter would only hide bugs.
//!
//! ## The errno rule
//!
//! A refused call fails with EPERM, "not permitted": the call exists, this
//! program may not make it. A call newer than the profile fails with
//! ENOSYS, "no such call", so that libc and programs fall back to the older
//! call they would use on an older kernel (`clone3` gets ENOSYS from the
//! profile itself for the same reason: libc then uses `clone`, whose flags
//! the filter can read). minibox tells the two apart as runc does: a number
//! above the highest the profile names is newer than the profile.
//!
//! ## Layout
//!
//! - `profile.rs`: Docker's JSON format, read and checked ([`Profile`]).
//! - `default.json`: minibox's default profile, in that format.
//! - `syscalls.rs`, `tables/`: system call names to numbers ([`Arch`]).
//! - `compile.rs`: the profile to a BPF program, and its installation
//!   ([`Filter`]).
//! - `disassemble.rs`: the program, readable ([`disassemble`]).
//!
//! SIMPLIFICATION: minibox filters the machine's own calling convention
//! only (see `compile.rs`); Docker's filter also covers the 32-bit ones, and
//! runc honours a profile's `flags` and `listenerPath`, which minibox ignores.

mod compile;
mod disassemble;
mod profile;
mod syscalls;

pub use compile::Filter;
pub use disassemble::disassemble;
pub use profile::{Action, Arg, Op, Profile, Rule, Target, When, running_kernel};
pub use syscalls::Arch;
