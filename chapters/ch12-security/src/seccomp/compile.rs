//! The compiler: a profile, for one machine and one container, becomes a
//! classic BPF program, and the program is installed with `seccomp(2)`.
//!
//! The program reads `struct seccomp_data` (the call's number, the
//! architecture, six arguments) and returns a verdict. Its shape:
//!
//! ```text
//! architecture is not this machine's?   → kill the process
//! number above any the profile names?   → ENOSYS      (the errno rule)
//! number is read?                       → its rules, else the default
//! number is write?                      → ...
//! anything else                         → the default action (EPERM)
//! ```
//!
//! seccompiler (the rust-vmm crate Firecracker uses) compiles the argument
//! comparisons: a 64-bit comparison in a machine that loads 32 bits at a
//! time is the fiddly part. minibox lays out the rest itself, because a
//! seccompiler filter has one action for every match, and a Docker profile
//! has several (ALLOW for most calls, ENOSYS for `clone3`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{Result, bail};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule,
    sock_filter,
};

use super::profile::{Action, Arg, Op, Profile, Target, running_kernel};
use super::syscalls::Arch;

/// A profile compiled for this machine's architecture and a container's
/// capabilities, ready to install.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The architecture it checks for (and whose numbers it compares).
    pub arch: Arch,
    /// The BPF program, one `sock_filter` per instruction. Empty for a
    /// profile that asks for no filter (`{}`): nothing is installed then.
    pub program: BpfProgram,
}

/// A rule of the profile, for one system call: a condition on the
/// arguments (`None`: always), and the verdict when it holds.
#[derive(Debug, Clone)]
struct Branch {
    condition: Option<SeccompRule>,
    action: Action,
}

impl Filter {
    /// Compiles `profile` for this machine and for a container holding the
    /// capabilities `caps` (Docker's names, `CAP_SYS_ADMIN`): rules
    /// `includes`/`excludes` by capability, architecture and kernel are
    /// decided now, as Docker decides them before handing the profile to runc.
    pub fn compile(profile: &Profile, caps: &BTreeSet<String>) -> Result<Filter> {
        let target = Target {
            arch: Arch::this_machine()?,
            kernel: running_kernel()?,
            caps,
        };
        Filter::compile_for(profile, &target)
    }

    // ANCHOR: compile
    /// Compiles `profile` for `target`, which need not be this machine.
    pub fn compile_for(profile: &Profile, target: &Target) -> Result<Filter> {
        let arch = target.arch;
        let Some(default) = profile.default_action else {
            return Ok(Filter {
                arch,
                program: Vec::new(),
            });
        };
        let calls = by_number(profile, target)?;
        let mut program = check_architecture(arch);
        if let Some(&highest) = calls.keys().last()
            && refuses_newer_calls(default)
        {
            program.extend(newer_calls(highest));
        }
        let mut numbers = calls.iter().peekable();
        while let Some((&number, branches)) = numbers.next() {
            let Some(action) = unconditional(branches) else {
                program.extend(syscall_block(number, branches, default));
                continue;
            };
            // Calls numbered one after the other with the same verdict
            // make one range: three instructions instead of two each.
            let mut last = number;
            while let Some(&(&next, more)) = numbers.peek()
                && next == last + 1
                && unconditional(more) == Some(action)
            {
                last = next;
                numbers.next();
            }
            program.extend(range_block(number, last, action));
        }
        program.push(ret(default)); // a call the profile does not name
        if program.len() > libc::BPF_MAXINSNS as usize {
            bail!(
                "the seccomp filter is {} instructions long, the kernel takes at most {}",
                program.len(),
                libc::BPF_MAXINSNS
            );
        }
        Ok(Filter { arch, program })
    }
    // ANCHOR_END: compile

    /// Installs the filter on the calling thread, for it and every program
    /// it execs. The kernel allows that with no_new_privs set, or with
    /// CAP_SYS_ADMIN; setting no_new_privs is the caller's choice (as in
    /// runc), so this does not, unlike seccompiler's `apply_filter`.
    /// Allocates nothing on success: safe in a forked child.
    pub fn install(&self) -> Result<()> {
        if self.program.is_empty() {
            return Ok(()); // the profile asked for no filter
        }
        let program = libc::sock_fprog {
            len: self.program.len() as u16,
            filter: self.program.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: seccomp(2) reads `program` and the instructions it points
        // to (seccompiler's sock_filter has libc's layout, checked below)
        // while the call runs; both outlive it.
        let done = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &program as *const libc::sock_fprog,
            )
        };
        if done != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EACCES) {
                bail!(
                    "seccomp(SECCOMP_SET_MODE_FILTER): {err} (needs no_new_privs or CAP_SYS_ADMIN)"
                );
            }
            bail!("seccomp(SECCOMP_SET_MODE_FILTER): {err}");
        }
        Ok(())
    }

    /// The program, readable: see [`super::disassemble`].
    pub fn disassemble(&self) -> String {
        super::disassemble(&self.program, self.arch)
    }
}

// The kernel reads seccompiler's instructions as its own `struct sock_filter`.
const _: () = assert!(size_of::<sock_filter>() == size_of::<libc::sock_filter>());

/// The profile's rules that count for `target`, by system call number.
/// A name this architecture lacks is skipped, as libseccomp skips it: one
/// profile serves every architecture.
fn by_number(profile: &Profile, target: &Target) -> Result<BTreeMap<u32, Vec<Branch>>> {
    let numbers: HashMap<&str, u32> = target.arch.calls().map(|(n, name)| (name, n)).collect();
    let mut calls: BTreeMap<u32, Vec<Branch>> = BTreeMap::new();
    for rule in profile.rules_for(target) {
        let conditions = conditions(&rule.args)?;
        for name in &rule.names {
            let Some(&number) = numbers.get(name.as_str()) else {
                continue;
            };
            calls
                .entry(number)
                .or_default()
                .extend(conditions.iter().map(|condition| Branch {
                    condition: condition.clone(),
                    action: rule.action,
                }));
        }
    }
    Ok(calls)
}

/// A rule's `args` as seccompiler rules. All must hold, except that two
/// conditions on one argument are alternatives, each its own rule: runc's
/// reading (libseccomp cannot AND two comparisons of one argument).
fn conditions(args: &[Arg]) -> Result<Vec<Option<SeccompRule>>> {
    if args.is_empty() {
        return Ok(vec![None]);
    }
    let conditions = args
        .iter()
        .map(|arg| {
            let (op, value) = match arg.op {
                Op::Eq => (SeccompCmpOp::Eq, arg.value),
                Op::Ne => (SeccompCmpOp::Ne, arg.value),
                Op::Lt => (SeccompCmpOp::Lt, arg.value),
                Op::Le => (SeccompCmpOp::Le, arg.value),
                Op::Gt => (SeccompCmpOp::Gt, arg.value),
                Op::Ge => (SeccompCmpOp::Ge, arg.value),
                Op::MaskedEq => (SeccompCmpOp::MaskedEq(arg.value), arg.value_two),
            };
            // Arguments are compared as the 64-bit registers they are.
            SeccompCondition::new(arg.index, SeccompCmpArgLen::Qword, op, value)
                .map_err(|e| anyhow::anyhow!("argument {}: {e}", arg.index))
        })
        .collect::<Result<Vec<_>>>()?;
    let one_argument_twice = (0..6).any(|i| args.iter().filter(|a| a.index == i).count() > 1);
    let rules = match one_argument_twice {
        false => vec![conditions],
        true => conditions.into_iter().map(|c| vec![c]).collect(),
    };
    rules
        .into_iter()
        .map(|rule| {
            SeccompRule::new(rule)
                .map(Some)
                .map_err(|e| anyhow::anyhow!("{e}"))
        })
        .collect()
}

/// The first instructions: a call made with another architecture's
/// convention (a 32-bit `int 0x80` on x86_64) has other numbers, and is
/// killed before any number is compared, as seccompiler's filters do.
fn check_architecture(arch: Arch) -> Vec<sock_filter> {
    vec![
        stmt(BPF_LD_W_ABS, ARCH_OFFSET),
        jump(libc::BPF_JEQ, arch.audit(), 1, 0),
        ret_raw(libc::SECCOMP_RET_KILL_PROCESS),
        stmt(BPF_LD_W_ABS, NR_OFFSET),
    ]
}

// ANCHOR: errno_rule
/// Whether calls newer than the profile get ENOSYS rather than the default
/// action. Not when the default lets them run anyway, nor when it already
/// is ENOSYS (runc's `generatePatch`).
fn refuses_newer_calls(default: Action) -> bool {
    !matches!(default, Action::Allow | Action::Log | Action::Errno(ENOSYS))
}

/// The errno rule: a number above the highest the profile names is a call
/// newer than the profile. It gets ENOSYS, "no such call", so that a
/// program (or libc) falls back to an older call, as it would on an older
/// kernel; EPERM would tell it that the call exists and is refused, and it
/// would give up. A call the profile knows of, or any below the highest
/// (ones the profile leaves out on purpose), gets the default action: EPERM.
/// runc prepends the same check to libseccomp's filter.
fn newer_calls(highest: u32) -> Vec<sock_filter> {
    vec![
        jump(libc::BPF_JGT, highest, 0, 1),
        ret(Action::Errno(ENOSYS)),
    ]
}
// ANCHOR_END: errno_rule

// ANCHOR: syscall_block
/// The instructions for one system call: compare the number, then try its
/// rules in the profile's order; the first that holds gives the verdict,
/// and when none holds, the default action does.
// SIMPLIFICATION: libseccomp merges the rules of one call into a tree and
// can sort the numbers into a binary search; minibox compares one number
// after another (some 300 comparisons for the last), and where two rules of
// one call could both hold, the first in the profile wins.
fn syscall_block(number: u32, branches: &[Branch], default: Action) -> Vec<sock_filter> {
    let mut body = Vec::new();
    let mut always = false;
    for branch in branches {
        match &branch.condition {
            // seccompiler's comparisons jump just past the `ret` that
            // follows them when one fails, to the next rule.
            Some(rule) => body.extend(BpfProgram::from(rule.clone())),
            None => always = true,
        }
        body.push(ret(branch.action));
        if always {
            break; // the rules after this one are never reached
        }
    }
    if !always {
        body.push(ret(default));
    }
    // The comparisons loaded arguments: once in, every path ends in a `ret`,
    // as the next block's comparison needs the number.
    let mut block = match u8::try_from(body.len()) {
        Ok(skip) => vec![jump(libc::BPF_JEQ, number, 0, skip)],
        // A conditional jump reaches 255 instructions ahead at most.
        Err(_) => vec![
            jump(libc::BPF_JEQ, number, 1, 0),
            stmt((libc::BPF_JMP | libc::BPF_JA) as u16, body.len() as u32),
        ],
    };
    block.extend(body);
    block
}
// ANCHOR_END: syscall_block

/// The verdict of a call whose first rule holds whatever the arguments,
/// which is then its only verdict.
fn unconditional(branches: &[Branch]) -> Option<Action> {
    match branches.first() {
        Some(Branch {
            condition: None,
            action,
        }) => Some(*action),
        _ => None,
    }
}

// ANCHOR: range_block
/// The instructions for the calls `first` to `last`, which all get
/// `action` whatever their arguments: one comparison for a single call, a
/// range for several (the default profile's 300 calls make some 50 ranges,
/// and a program a quarter as long, which the kernel checks and compiles
/// faster at every container's start).
fn range_block(first: u32, last: u32, action: Action) -> Vec<sock_filter> {
    if first == last {
        return vec![jump(libc::BPF_JEQ, first, 0, 1), ret(action)];
    }
    vec![
        jump(libc::BPF_JGT, last, 2, 0),  // above: the next block
        jump(libc::BPF_JGE, first, 0, 1), // below: the next block
        ret(action),
    ]
}
// ANCHOR_END: range_block

const ENOSYS: u32 = libc::ENOSYS as u32;
const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
/// Offsets in `struct seccomp_data`: `int nr; __u32 arch; ...`.
const NR_OFFSET: u32 = 0;
const ARCH_OFFSET: u32 = 4;

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// A conditional jump on the accumulator against `k`: `op` is `BPF_JEQ`,
/// `BPF_JGT`...; `jt` and `jf` count instructions to skip.
fn jump(op: u32, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter {
        code: (libc::BPF_JMP | op | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    }
}

fn ret(action: Action) -> sock_filter {
    ret_raw(u32::from(SeccompAction::from(action)))
}

fn ret_raw(verdict: u32) -> sock_filter {
    stmt((libc::BPF_RET | libc::BPF_K) as u16, verdict)
}

impl From<Action> for SeccompAction {
    fn from(action: Action) -> SeccompAction {
        match action {
            Action::Allow => SeccompAction::Allow,
            Action::Errno(errno) => SeccompAction::Errno(errno),
            Action::KillThread => SeccompAction::KillThread,
            Action::KillProcess => SeccompAction::KillProcess,
            Action::Trap => SeccompAction::Trap,
            Action::Log => SeccompAction::Log,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::seccomp::disassemble::run;

    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
    const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    const NOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    const CLONE_NEWNS: u64 = libc::CLONE_NEWNS as u64;
    const SIGCHLD: u64 = libc::SIGCHLD as u64;

    /// The compiled default for `arch` and `caps`, as a function from a call
    /// (its name and arguments) to the verdict.
    fn default_filter(arch: Arch, caps: &[&str]) -> impl Fn(&str, &[u64]) -> u32 {
        let caps: BTreeSet<String> = caps.iter().map(|c| c.to_string()).collect();
        let target = Target {
            arch,
            kernel: (6, 18),
            caps: &caps,
        };
        let filter = Filter::compile_for(&Profile::docker_default(), &target).unwrap();
        move |name, args| verdict(&filter, arch.number(name).expect(name), args)
    }

    fn verdict(filter: &Filter, nr: u32, args: &[u64]) -> u32 {
        let mut all = [0; 6];
        all[..args.len()].copy_from_slice(args);
        run(&filter.program, filter.arch.audit(), nr, all)
    }

    #[test]
    fn the_default_refuses_what_docker_refuses_on_both_architectures() {
        for arch in [Arch::X86_64, Arch::Aarch64] {
            let call = default_filter(arch, &[]);
            for name in [
                "mount",
                "umount2",
                "unshare",
                "setns",
                "pivot_root",
                "keyctl",
                "add_key",
                "request_key",
                "reboot",
                "kexec_load",
                "kexec_file_load",
                "init_module",
                "finit_module",
                "delete_module",
                "bpf",
                "perf_event_open",
                "userfaultfd",
                "open_by_handle_at",
                "clock_settime",
                "settimeofday",
                "swapon",
                "acct",
                "chroot",
                "sethostname",
                "io_uring_setup",
                "move_mount",
                "fsopen",
            ] {
                assert_eq!(call(name, &[]), EPERM, "{name} on {arch:?}");
            }
            for name in [
                "read", "openat", "execve", "getpid", "ptrace", "io_setup", "mseal",
            ] {
                assert_eq!(call(name, &[]), ALLOW, "{name} on {arch:?}");
            }
            assert_eq!(
                call("clone", &[CLONE_NEWNS | SIGCHLD]),
                EPERM,
                "a namespace"
            );
            assert_eq!(call("clone", &[SIGCHLD]), ALLOW, "a plain fork");
            assert_eq!(
                call("clone3", &[]),
                NOSYS,
                "so that libc falls back to clone"
            );
            assert_eq!(call("personality", &[0xffff_ffff]), ALLOW, "the query");
            assert_eq!(
                call("personality", &[0x040_0000]),
                EPERM,
                "READ_IMPLIES_EXEC"
            );
            let [alg, nfc, vsock] = [38, 39, 40].map(|family| call("socket", &[family]));
            assert_eq!((alg, nfc, vsock), (EPERM, ALLOW, EPERM));
            assert_eq!(call("socket", &[libc::AF_INET as u64]), ALLOW);
        }
    }

    #[test]
    fn capabilities_open_their_groups() {
        let admin = default_filter(Arch::X86_64, &["CAP_SYS_ADMIN"]);
        for name in ["mount", "unshare", "setns", "bpf", "clone3"] {
            assert_eq!(admin(name, &[]), ALLOW, "{name}");
        }
        assert_eq!(admin("clone", &[CLONE_NEWNS]), ALLOW);
        assert_eq!(
            admin("pivot_root", &[]),
            EPERM,
            "not even then, as in Docker"
        );
        let time = default_filter(Arch::X86_64, &["CAP_SYS_TIME"]);
        assert_eq!(time("clock_settime", &[]), ALLOW);
        assert_eq!(time("mount", &[]), EPERM);
    }

    // ANCHOR: errno_rule_test
    #[test]
    fn numbers_above_the_highest_named_get_enosys_the_others_eperm() {
        let filter =
            Filter::compile_for(&Profile::docker_default(), &target(Arch::X86_64)).unwrap();
        let highest = Arch::X86_64.number("removexattrat").unwrap();
        assert_eq!(verdict(&filter, highest, &[]), ALLOW);
        assert_eq!(
            verdict(&filter, highest + 1, &[]),
            NOSYS,
            "newer than the profile"
        );
        assert_eq!(verdict(&filter, 1000, &[]), NOSYS);
        assert_eq!(verdict(&filter, 0x4000_0000, &[]), NOSYS, "an x32 call");
        let kexec = Arch::X86_64.number("kexec_load").unwrap();
        assert_eq!(verdict(&filter, kexec, &[]), EPERM, "left out on purpose");
        assert_eq!(
            run(&filter.program, Arch::Aarch64.audit(), 0, [0; 6]),
            libc::SECCOMP_RET_KILL_PROCESS
        );
    }
    // ANCHOR_END: errno_rule_test

    #[test]
    fn the_default_allows_as_many_calls_as_dockers() {
        for (arch, expected) in [(Arch::X86_64, 308), (Arch::Aarch64, 266)] {
            let filter = Filter::compile_for(&Profile::docker_default(), &target(arch)).unwrap();
            let allowed = arch
                .calls()
                .filter(|&(nr, _)| verdict(&filter, nr, &[]) == ALLOW);
            assert_eq!(allowed.count(), expected, "{arch:?}");
        }
    }

    fn target(arch: Arch) -> Target<'static> {
        static NO_CAPS: BTreeSet<String> = BTreeSet::new();
        Target {
            arch,
            kernel: (6, 18),
            caps: &NO_CAPS,
        }
    }

    /// A profile that allows everything but `getppid` when its argument
    /// 0 compares with `value` by `op`: then EACCES.
    fn refuse_getppid_when(args: &str) -> Filter {
        let json = format!(
            r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{{"names": ["getppid"],
                "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "args": [{args}]}}]}}"#
        );
        Filter::compile_for(&Profile::parse(&json).unwrap(), &target(Arch::X86_64)).unwrap()
    }

    #[test]
    fn every_comparison_compares_all_64_bits() {
        let eacces = libc::SECCOMP_RET_ERRNO | libc::EACCES as u32;
        let big = 0x1_0000_0005_u64;
        let cases = [
            ("SCMP_CMP_EQ", [(big, true), (5, false), (big + 1, false)]),
            ("SCMP_CMP_NE", [(big, false), (5, true), (big + 1, true)]),
            (
                "SCMP_CMP_LT",
                [(big, false), (5, true), (0x2_0000_0000, false)],
            ),
            (
                "SCMP_CMP_LE",
                [(big, true), (big + 1, false), (0xffff_ffff, true)],
            ),
            (
                "SCMP_CMP_GT",
                [(big, false), (big + 1, true), (0x2_0000_0000, true)],
            ),
            ("SCMP_CMP_GE", [(big, true), (5, false), (big + 1, true)]),
        ];
        for (op, probes) in cases {
            let filter =
                refuse_getppid_when(&format!(r#"{{"index": 0, "value": {big}, "op": "{op}"}}"#));
            for (arg, refused) in probes {
                let expected = if refused { eacces } else { ALLOW };
                assert_eq!(verdict(&filter, 110, &[arg]), expected, "{op} {arg:#x}");
            }
        }
        let masked = refuse_getppid_when(
            r#"{"index": 0, "value": 4294967298, "valueTwo": 4294967296, "op": "SCMP_CMP_MASKED_EQ"}"#,
        );
        let probes = [
            (0x1_0000_0000, true),
            (0x1_0000_0001, true),
            (0x1_0000_0002, false),
            (2, false),
        ];
        for (arg, refused) in probes {
            let expected = if refused { eacces } else { ALLOW };
            assert_eq!(verdict(&masked, 110, &[arg]), expected, "masked {arg:#x}");
        }
        assert_eq!(
            verdict(&masked, 39, &[0x1_0000_0000]),
            ALLOW,
            "getpid is another call"
        );
    }

    #[test]
    fn conditions_on_two_arguments_are_both_needed_on_one_argument_either() {
        let both = refuse_getppid_when(
            r#"{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 2, "op": "SCMP_CMP_EQ"}"#,
        );
        let eacces = libc::SECCOMP_RET_ERRNO | libc::EACCES as u32;
        assert_eq!(verdict(&both, 110, &[1, 2]), eacces);
        assert_eq!(verdict(&both, 110, &[1, 3]), ALLOW);
        let either = refuse_getppid_when(
            r#"{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}"#,
        );
        assert_eq!(verdict(&either, 110, &[1]), eacces);
        assert_eq!(verdict(&either, 110, &[2]), eacces);
        assert_eq!(verdict(&either, 110, &[3]), ALLOW);
    }

    #[test]
    fn an_allowing_profile_adds_no_enosys_rule() {
        let filter = refuse_getppid_when(r#"{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}"#);
        assert_eq!(
            verdict(&filter, 1000, &[]),
            ALLOW,
            "the kernel answers ENOSYS itself"
        );
        let ops: Vec<u16> = filter.program.iter().map(|i| i.code).collect();
        assert!(!ops.contains(&((libc::BPF_JMP | libc::BPF_JGT) as u16)));
    }

    #[test]
    fn a_call_with_many_rules_is_jumped_over_and_a_filter_too_long_is_refused() {
        let values = |n: u64| -> String {
            let one = |v| format!(r#"{{"index": 0, "value": {v}, "op": "SCMP_CMP_EQ"}}"#);
            (0..n).map(one).collect::<Vec<_>>().join(", ")
        };
        let filter = refuse_getppid_when(&values(100)); // 100 alternatives
        assert!(filter.program.len() > 255 + 10, "{}", filter.program.len());
        assert_eq!(verdict(&filter, 110, &[99]), libc::SECCOMP_RET_ERRNO | 13);
        assert_eq!(verdict(&filter, 110, &[100]), ALLOW);
        assert_eq!(
            verdict(&filter, 111, &[99]),
            ALLOW,
            "getpgrp, past the long block"
        );
        let json = format!(
            r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{{"names": ["getppid"],
                "action": "SCMP_ACT_KILL", "args": [{}]}}]}}"#,
            values(1000)
        );
        let error = Filter::compile_for(&Profile::parse(&json).unwrap(), &target(Arch::X86_64));
        let message = format!("{:#}", error.unwrap_err());
        assert!(
            message.contains("the kernel takes at most 4096"),
            "{message}"
        );
    }

    #[test]
    fn a_profile_that_asks_for_no_filter_compiles_to_nothing_and_installs_nothing() {
        let filter =
            Filter::compile_for(&Profile::parse("{}").unwrap(), &target(Arch::X86_64)).unwrap();
        assert!(filter.program.is_empty());
        filter.install().unwrap(); // in the test process itself: nothing happens
    }
}
