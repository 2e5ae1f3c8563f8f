//! The device cgroup on cgroup v2: a BPF program.
//!
//! cgroup v2 has no `devices` controller. Instead, the kernel runs the
//! programs of type `BPF_PROG_TYPE_CGROUP_DEVICE` attached to a process's
//! cgroup (and to its ancestors) at every open(2) and mknod(2) of a device
//! node. A program gets one question, a `struct bpf_cgroup_dev_ctx`:
//!
//! ```c
//! struct bpf_cgroup_dev_ctx {
//!     __u32 access_type; /* (access << 16) | type */
//!     __u32 major;
//!     __u32 minor;
//! };
//! ```
//!
//! and answers 1 (allowed) or 0 (denied: the call fails with EPERM). With
//! `BPF_F_ALLOW_MULTI` every program from the cgroup up to the root must
//! allow: a container cannot get more than its parent cgroup lets it have.
//!
//! The program is compiled here from the [`Effective`] list, the v1
//! kernel's reading of the rules, as runc compiles it (its `devicefilter`,
//! after crun's `ebpf.c`): one block of instructions per exception, each
//! block a few "if this differs, go to the next block" tests and a return;
//! after the last block, the default. Every exception says the same (the
//! opposite of the default), so the first match decides and their order
//! does not matter. The instructions are written out in Rust, eight bytes
//! each (see [`Insn`]), and loaded with bpf(2) ([`attach`]): no libbpf, no
//! C compiler. See [bpf(2)] and the kernel's [BPF instruction set].
//!
//! [bpf(2)]: https://man7.org/linux/man-pages/man2/bpf.2.html
//! [BPF instruction set]: https://docs.kernel.org/bpf/standardization/instruction-set.html

use std::fmt::Write as _;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use anyhow::{Context, Result, bail};
use ch02_pid_namespace::namespace::denied;
use nix::errno::Errno;

use super::{Effective, MKNOD, READ, Rule, WRITE};

/// A BPF register: `r0` holds the answer, `r1` the context's address when
/// the program starts; the program keeps the question in `r2` to `r5`.
pub type Reg = u8;

/// One instruction, of the few a device program needs. The `w` registers
/// of the listing are the lower 32 bits of the `r` ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insn {
    /// `wDST = *(u32 *)(rSRC + OFF)`: a 32-bit load, here from the context.
    Load32(Reg, Reg, i16),
    /// `wDST &= IMM`.
    And(Reg, i32),
    /// `wDST >>= IMM`.
    Rsh(Reg, i32),
    /// `wDST = IMM`.
    Mov(Reg, i32),
    /// `wDST = wSRC`.
    MovReg(Reg, Reg),
    /// `if rDST != IMM goto +OFF`: skips OFF instructions when they differ.
    JneImm(Reg, i32, i16),
    /// `if rDST == IMM goto +OFF`.
    JeqImm(Reg, i32, i16),
    /// `if rDST != rSRC goto +OFF`.
    JneReg(Reg, Reg, i16),
    /// `exit`: the program ends, and `r0` is its answer.
    Exit,
}

/// An instruction as the kernel reads it (`struct bpf_insn`): an opcode
/// (class | operation | source), the two registers in one byte
/// (destination in the low four bits), an offset and an immediate.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoded {
    /// The opcode.
    pub code: u8,
    /// `dst | src << 4`.
    pub regs: u8,
    /// A jump's distance, or a load's offset.
    pub off: i16,
    /// The constant operand.
    pub imm: i32,
}

// The opcode's parts (linux/bpf_common.h, linux/bpf.h).
const LDX: u8 = 0x01; // class: load into a register
const ALU: u8 = 0x04; // class: 32-bit arithmetic
const JMP: u8 = 0x05; // class: jumps (64-bit compares) and exit
const MEM: u8 = 0x60; // mode of a load: from memory
const W: u8 = 0x00; // size of a load: a 32-bit word
const K: u8 = 0x00; // source: the immediate
const X: u8 = 0x08; // source: the src register
const AND: u8 = 0x50;
const RSH: u8 = 0x70;
const MOV: u8 = 0xb0;
const JEQ: u8 = 0x10;
const JNE: u8 = 0x50;
const EXIT: u8 = 0x90;

impl Insn {
    /// The eight bytes the kernel reads.
    pub fn encode(self) -> Encoded {
        let (code, dst, src, off, imm) = match self {
            Insn::Load32(dst, src, off) => (LDX | MEM | W, dst, src, off, 0),
            Insn::And(dst, imm) => (ALU | AND | K, dst, 0, 0, imm),
            Insn::Rsh(dst, imm) => (ALU | RSH | K, dst, 0, 0, imm),
            Insn::Mov(dst, imm) => (ALU | MOV | K, dst, 0, 0, imm),
            Insn::MovReg(dst, src) => (ALU | MOV | X, dst, src, 0, 0),
            Insn::JneImm(dst, imm, off) => (JMP | JNE | K, dst, 0, off, imm),
            Insn::JeqImm(dst, imm, off) => (JMP | JEQ | K, dst, 0, off, imm),
            Insn::JneReg(dst, src, off) => (JMP | JNE | X, dst, src, off, 0),
            Insn::Exit => (JMP | EXIT, 0, 0, 0, 0),
        };
        let regs = dst | (src << 4);
        Encoded {
            code,
            regs,
            off,
            imm,
        }
    }

    /// The same instruction, a jump with its distance set to `off`.
    fn jumping(self, off: i16) -> Insn {
        match self {
            Insn::JneImm(dst, imm, _) => Insn::JneImm(dst, imm, off),
            Insn::JeqImm(dst, imm, _) => Insn::JeqImm(dst, imm, off),
            Insn::JneReg(dst, src, _) => Insn::JneReg(dst, src, off),
            other => other,
        }
    }

    /// The instruction in the syntax of `bpftool prog dump xlated`, with
    /// the numbers compared in decimal, as device numbers are written.
    fn text(self) -> String {
        match self {
            Insn::Load32(dst, src, off) => format!("w{dst} = *(u32 *)(r{src} + {off})"),
            Insn::And(dst, imm) => format!("w{dst} &= {imm:#x}"),
            Insn::Rsh(dst, imm) => format!("w{dst} >>= {imm}"),
            Insn::Mov(dst, imm) => format!("w{dst} = {imm}"),
            Insn::MovReg(dst, src) => format!("w{dst} = w{src}"),
            Insn::JneImm(dst, imm, off) => format!("if r{dst} != {imm} goto pc+{off}"),
            Insn::JeqImm(dst, imm, off) => format!("if r{dst} == {imm} goto pc+{off}"),
            Insn::JneReg(dst, src, off) => format!("if r{dst} != r{src} goto pc+{off}"),
            Insn::Exit => "exit".to_string(),
        }
    }
}

/// A device program, with a note before the instructions of each rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// The instructions.
    pub insns: Vec<Insn>,
    /// `(index, text)`: a note to show before instruction `index`.
    pub notes: Vec<(usize, String)>,
}

// Where the program keeps the question: type, access, major, minor. Once
// they are loaded, r1 (the context's address) is free for a computation.
const TYPE: Reg = 2;
const ACCESS: Reg = 3;
const MAJOR: Reg = 4;
const MINOR: Reg = 5;
const TEMP: Reg = 1;

// ANCHOR: compile
impl Program {
    /// Compiles `effective` into a program: the question into registers,
    /// a block per exception, and the default.
    pub fn compile(effective: &Effective) -> Program {
        let mut program = Program {
            insns: vec![
                Insn::Load32(TYPE, 1, 0),
                Insn::And(TYPE, 0xffff),
                Insn::Load32(ACCESS, 1, 0),
                Insn::Rsh(ACCESS, 16),
                Insn::Load32(MAJOR, 1, 4),
                Insn::Load32(MINOR, 1, 8),
            ],
            notes: vec![(0, "the question: type, access, major, minor".into())],
        };
        for exception in &effective.exceptions {
            let note = format!("{exception}: {}", verdict(exception.allow));
            program.notes.push((program.insns.len(), note));
            program
                .insns
                .extend(block(exception, effective.default_allow));
        }
        let note = format!("anything else: {}", verdict(effective.default_allow));
        program.notes.push((program.insns.len(), note));
        program.insns.extend(answer(effective.default_allow));
        program
    }
}

/// One exception's block: tests that each jump past the block when the
/// question differs, then the exception's answer. On an allow list an
/// exception must allow all the access asked for (a subset of its own); on
/// a deny list it refuses when it shares any of it, as v1's check.
fn block(exception: &Rule, default_allow: bool) -> Vec<Insn> {
    let mut tests = Vec::new(); // their jumps are set below
    if exception.kind != 'a' {
        tests.push(Insn::JneImm(TYPE, exception.type_bits() as i32, 0));
    }
    let access = exception.access_bits();
    if access != READ | WRITE | MKNOD {
        tests.push(Insn::MovReg(TEMP, ACCESS));
        tests.push(Insn::And(TEMP, access as i32));
        tests.push(match default_allow {
            false => Insn::JneReg(TEMP, ACCESS, 0), // asks for more than it allows
            true => Insn::JeqImm(TEMP, 0, 0),       // asks for nothing it denies
        });
    }
    // Checked: majors have 12 bits, minors 20.
    if let Some(major) = exception.major {
        tests.push(Insn::JneImm(MAJOR, major as i32, 0));
    }
    if let Some(minor) = exception.minor {
        tests.push(Insn::JneImm(MINOR, minor as i32, 0));
    }
    // A jump counts from the next instruction: from test `i`, the end of
    // the block (tests and the two of the answer) is that far.
    let length = tests.len() + 2;
    let mut insns: Vec<Insn> = (tests.into_iter().enumerate())
        .map(|(i, test)| test.jumping((length - i - 1) as i16))
        .collect();
    insns.extend(answer(exception.allow));
    insns
}
// ANCHOR_END: compile

/// `r0 = 1` (allowed) or `0` (denied), and the program's end.
fn answer(allow: bool) -> [Insn; 2] {
    [Insn::Mov(0, allow as i32), Insn::Exit]
}

fn verdict(allow: bool) -> &'static str {
    match allow {
        true => "allow",
        false => "deny",
    }
}

impl Program {
    /// The program as a listing, one instruction a line with its number,
    /// each rule's block under a comment that names it:
    ///
    /// ```text
    ///     ; c 1:3 rwm: allow
    ///  6: if r2 != 2 goto pc+4
    /// ```
    pub fn describe(&self) -> String {
        let mut listing = String::new();
        for (index, insn) in self.insns.iter().enumerate() {
            for (_, note) in self.notes.iter().filter(|(at, _)| *at == index) {
                let _ = writeln!(listing, "    ; {note}");
            }
            let _ = writeln!(listing, "{index:>2}: {}", insn.text());
        }
        listing
    }

    /// The instructions as the kernel reads them.
    pub fn encode(&self) -> Vec<Encoded> {
        self.insns.iter().map(|insn| insn.encode()).collect()
    }
}

// The bpf(2) commands, program type, attach type and flag used here
// (linux/bpf.h).
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// `union bpf_attr` for `BPF_PROG_LOAD`, up to the fields used here: the
/// kernel takes a shorter union and reads the rest as zeros.
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` for `BPF_PROG_ATTACH`.
#[repr(C)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// Calls bpf(2) with `attr`, whose size it passes.
fn bpf<T>(command: libc::c_long, attr: &mut T) -> Result<libc::c_long, Errno> {
    let size = std::mem::size_of::<T>();
    // SAFETY: `attr` is a repr(C) prefix of `union bpf_attr` for `command`,
    // valid for `size` bytes; every address inside it points to memory the
    // caller keeps alive for the call.
    let result = unsafe { libc::syscall(libc::SYS_bpf, command, attr as *mut T, size) };
    Errno::result(result)
}

// ANCHOR: attach
/// Loads `program` into the kernel and attaches it to the v2 cgroup at
/// `dir`. Both file descriptors are closed on return: the attachment holds
/// the program until the cgroup is removed.
// SIMPLIFICATION: runc first looks for programs already attached to the
// cgroup (BPF_PROG_QUERY) and replaces them (BPF_F_REPLACE), which `docker
// update` needs, and raises RLIMIT_MEMLOCK, which kernels before 5.11
// charged a program's memory to; minibox attaches once, to a new cgroup,
// and leaves the limit alone (before Linux 5.11 a low one can make the
// load fail with EPERM).
pub fn attach(dir: &Path, program: &Program) -> Result<()> {
    let program = load(program)?;
    let cgroup = std::fs::File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let mut attr = ProgAttach {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: program.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(|errno| {
        let what = format!(
            "bpf(BPF_PROG_ATTACH) of the device program to {}",
            dir.display()
        );
        denied(errno, what, NEEDS)
    })?;
    Ok(())
}

/// Loads a program: the kernel's verifier checks it first (every path ends
/// in `exit` with `r0` set, every read of the context is in bounds). On
/// failure, once more with the verifier's log, which the error then shows.
fn load(program: &Program) -> Result<OwnedFd> {
    let insns = program.encode();
    // The license matters only to helpers reserved for GPL programs; this
    // program calls none. runc's says "Apache".
    let license = c"Apache";
    let mut attr = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: *b"minibox_devices\0", // as `bpftool prog list` shows it
        ..ProgLoad::default()
    };
    let mut log = vec![0u8; 64 * 1024];
    let mut loaded = bpf(BPF_PROG_LOAD, &mut attr);
    if loaded.is_err_and(|errno| errno != Errno::EPERM) {
        (attr.log_level, attr.log_size) = (1, log.len() as u32);
        attr.log_buf = log.as_mut_ptr() as u64;
        loaded = bpf(BPF_PROG_LOAD, &mut attr);
    }
    let errno = match loaded {
        // SAFETY: bpf(2) returned a new file descriptor, which nothing else
        // owns.
        Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        Err(errno) => errno,
    };
    let log = String::from_utf8_lossy(&log);
    let log = log.trim_end_matches('\0').trim();
    if log.is_empty() {
        let what = "bpf(BPF_PROG_LOAD) of the device program".to_string();
        return Err(denied(errno, what, NEEDS));
    }
    bail!("bpf(BPF_PROG_LOAD) of the device program: {errno}; the verifier says:\n{log}")
}
// ANCHOR_END: attach

/// What loading and attaching a device program need, for EPERM.
const NEEDS: &str = "this needs root (CAP_SYS_ADMIN, or CAP_BPF and CAP_NET_ADMIN); run minibox as root or with sudo";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::{BLOCK, CHAR, docker_default, privileged};

    /// A rule's parts: allow, type, major, minor, access.
    type Parts<'a> = (bool, char, Option<u32>, Option<u32>, &'a str);

    fn effective(rules: &[Parts]) -> Effective {
        let rules: Vec<Rule> = rules
            .iter()
            .map(|&(allow, kind, major, minor, access)| {
                Rule::new(allow, kind, major, minor, access)
            })
            .collect();
        Effective::of(&rules)
    }

    #[test]
    fn a_small_list_compiles_to_a_block_per_exception() {
        let list = effective(&[
            (false, 'a', None, None, "rwm"),
            (true, 'c', Some(1), Some(3), "rwm"),
            (true, 'b', None, None, "m"),
        ]);
        let program = Program::compile(&list);
        assert_eq!(
            program.describe(),
            "    ; the question: type, access, major, minor
 0: w2 = *(u32 *)(r1 + 0)
 1: w2 &= 0xffff
 2: w3 = *(u32 *)(r1 + 0)
 3: w3 >>= 16
 4: w4 = *(u32 *)(r1 + 4)
 5: w5 = *(u32 *)(r1 + 8)
    ; c 1:3 rwm: allow
 6: if r2 != 2 goto pc+4
 7: if r4 != 1 goto pc+3
 8: if r5 != 3 goto pc+2
 9: w0 = 1
10: exit
    ; b *:* m: allow
11: if r2 != 1 goto pc+5
12: w1 = w3
13: w1 &= 0x1
14: if r1 != r3 goto pc+2
15: w0 = 1
16: exit
    ; anything else: deny
17: w0 = 0
18: exit
"
        );
        // The bytes of a load, a test and the end, as the kernel reads them.
        let bytes = program.encode();
        let load = Encoded {
            code: 0x61,
            regs: 0x12,
            off: 0,
            imm: 0,
        };
        assert_eq!(bytes[0], load);
        let test = Encoded {
            code: 0x55,
            regs: 0x02,
            off: 4,
            imm: 2,
        };
        assert_eq!(bytes[6], test);
        assert_eq!(
            bytes[14],
            Encoded {
                code: 0x5d,
                regs: 0x31,
                off: 2,
                imm: 0
            }
        );
        assert_eq!(
            bytes[18],
            Encoded {
                code: 0x95,
                regs: 0,
                off: 0,
                imm: 0
            }
        );
    }

    /// Runs encoded instructions as the kernel would, on one question.
    fn run(program: &[Encoded], kind: u32, major: u32, minor: u32, access: u32) -> u64 {
        let context = [access << 16 | kind, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0;
        loop {
            let Encoded {
                code,
                regs,
                off,
                imm,
            } = program[pc];
            let (dst, src) = ((regs & 0xf) as usize, (regs >> 4) as usize);
            let k = imm as i64 as u64;
            pc += 1;
            match code {
                0x61 => r[dst] = u64::from(context[(r[src] + off as u64) as usize / 4]),
                0x54 => r[dst] = (r[dst] as u32 & imm as u32) as u64,
                0x74 => r[dst] = (r[dst] as u32 >> imm) as u64,
                0xb4 => r[dst] = imm as u32 as u64,
                0xbc => r[dst] = r[src] as u32 as u64,
                0x55 if r[dst] != k => pc += off as usize,
                0x15 if r[dst] == k => pc += off as usize,
                0x5d if r[dst] != r[src] => pc += off as usize,
                0x55 | 0x15 | 0x5d => {}
                0x95 => return r[0],
                _ => panic!("unknown opcode {code:#x}"),
            }
        }
    }

    #[test]
    fn the_program_answers_as_the_v1_kernel_would() {
        let deny_list = effective(&[
            (true, 'a', None, None, "rwm"),
            (false, 'c', Some(1), Some(3), "w"),
            (false, 'b', Some(8), None, "rwm"),
        ]);
        for list in [
            Effective::of(&docker_default()),
            Effective::of(&privileged()),
            deny_list,
        ] {
            let program = Program::compile(&list).encode();
            for kind in [BLOCK, CHAR] {
                for (major, minor) in [(1, 3), (1, 7), (5, 2), (8, 0), (10, 229), (136, 4)] {
                    for access in 1..=7 {
                        let answer = run(&program, kind, major, minor, access) == 1;
                        let expected = list.allows(kind, major, minor, access);
                        assert_eq!(
                            answer, expected,
                            "{kind} {major}:{minor} {access}: {list:?}"
                        );
                    }
                }
            }
        }
    }
}
