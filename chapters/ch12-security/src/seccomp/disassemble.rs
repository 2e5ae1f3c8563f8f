//! Reading a filter: the BPF program, one instruction a line, with what each
//! one looks at, as `seccomp-tools dump` or the kernel's `bpf_dbg` show it.
//!
//! ```text
//! 0000: ld   [4]                     ; architecture
//! 0001: jeq  #0xc000003e, 0003, 0002 ; x86_64
//! 0002: ret  KILL_PROCESS
//! 0003: ld   [0]                     ; system call number
//! ```
//!
//! Jumps show the lines they go to, when the comparison holds and when it
//! does not. A comparison is annotated with what the accumulator holds
//! there (a system call's name for its number), which is found by following
//! the jumps: classic BPF jumps only forward, so one pass in order suffices.

use std::fmt::Write;

use seccompiler::sock_filter;

use super::syscalls::Arch;

/// The program, readable: one line per instruction, numbered from 0000.
/// `arch` names the system call numbers it compares.
pub fn disassemble(program: &[sock_filter], arch: Arch) -> String {
    let holds = accumulator(program);
    let mut text = String::new();
    for (at, insn) in program.iter().enumerate() {
        let (code, note) = instruction(at, insn, holds[at], arch);
        let line = match note {
            Some(note) => format!("{at:04}: {code:<30} ; {note}"),
            None => format!("{at:04}: {code}"),
        };
        writeln!(text, "{}", line.trim_end()).expect("writing to a String");
    }
    text
}

/// What the accumulator holds on entering an instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holds {
    /// The 32-bit word at this offset of `struct seccomp_data`.
    Word(u32),
    /// That word, masked.
    Masked(u32),
    /// Different things on different paths, or nothing yet.
    Unknown,
}

/// For each instruction, what the accumulator holds on every path to it.
fn accumulator(program: &[sock_filter]) -> Vec<Holds> {
    let mut entry: Vec<Option<Holds>> = vec![None; program.len() + 1];
    entry[0] = Some(Holds::Unknown);
    for (at, insn) in program.iter().enumerate() {
        let Some(holds) = entry[at] else {
            continue; // no path reaches it
        };
        let class = u32::from(insn.code) & 0x07;
        let (after, targets) = match class {
            libc::BPF_LD => (Holds::Word(insn.k), vec![at + 1]),
            libc::BPF_ALU => match holds {
                Holds::Word(offset) => (Holds::Masked(offset), vec![at + 1]),
                _ => (Holds::Unknown, vec![at + 1]),
            },
            libc::BPF_JMP if u32::from(insn.code) & 0xf0 == libc::BPF_JA => {
                (holds, vec![at + 1 + insn.k as usize])
            }
            libc::BPF_JMP => (
                holds,
                vec![at + 1 + usize::from(insn.jt), at + 1 + usize::from(insn.jf)],
            ),
            _ => (holds, vec![]), // ret: the program ends here
        };
        let end = entry.len();
        for target in targets.into_iter().filter(|&t| t < end) {
            entry[target] = match entry[target] {
                None => Some(after),
                Some(seen) if seen == after => Some(seen),
                Some(_) => Some(Holds::Unknown),
            };
        }
    }
    entry
        .into_iter()
        .map(|holds| holds.unwrap_or(Holds::Unknown))
        .collect()
}

/// One instruction as text, and a note on what it is about.
fn instruction(
    at: usize,
    insn: &sock_filter,
    holds: Holds,
    arch: Arch,
) -> (String, Option<String>) {
    let code = u32::from(insn.code);
    let k = insn.k;
    let target = |skip: u8| at + 1 + usize::from(skip);
    match (code & 0x07, code & 0xf0) {
        (libc::BPF_LD, _) => (format!("ld   [{k}]"), Some(field(k))),
        (libc::BPF_ALU, _) => (format!("and  #{k:#x}"), None),
        (libc::BPF_JMP, libc::BPF_JA) => (format!("ja   {:04}", at + 1 + k as usize), None),
        (libc::BPF_JMP, op) => {
            let name = match op {
                libc::BPF_JEQ => "jeq",
                libc::BPF_JGT => "jgt",
                libc::BPF_JGE => "jge",
                _ => "jset",
            };
            let text = format!(
                "{name:<4} #{k:#x}, {:04}, {:04}",
                target(insn.jt),
                target(insn.jf)
            );
            (text, compared(op, k, holds, arch))
        }
        (libc::BPF_RET, _) => verdict(k),
        _ => (
            format!(".word {code:#06x} {} {} {k:#x}", insn.jt, insn.jf),
            None,
        ),
    }
}

/// The field of `struct seccomp_data` at `offset`.
fn field(offset: u32) -> String {
    match offset {
        0 => "system call number".into(),
        4 => "architecture".into(),
        8 | 12 => "instruction pointer".into(),
        16.. => {
            let half = if offset.is_multiple_of(8) {
                "low"
            } else {
                "high"
            };
            format!("args[{}], {half} half", (offset - 16) / 8)
        }
        _ => format!("offset {offset}"),
    }
}

/// What a comparison with `k` means, given what is compared.
fn compared(op: u32, k: u32, holds: Holds, arch: Arch) -> Option<String> {
    match holds {
        Holds::Word(0) => {
            let name = arch.name(k).map(str::to_string);
            let name = || name.clone().unwrap_or_else(|| k.to_string());
            match op {
                libc::BPF_JEQ => arch.name(k).map(str::to_string),
                libc::BPF_JGE => Some(format!("{} or above", name())),
                _ => Some(format!("above {}", name())),
            }
        }
        Holds::Word(4) if k == arch.audit() => Some(format!("{arch:?}").to_lowercase()),
        Holds::Masked(offset) => Some(format!("{} masked", field(offset))),
        _ => None,
    }
}

/// A `ret`: the verdict, as `SECCOMP_RET_*` names it.
fn verdict(k: u32) -> (String, Option<String>) {
    let data = k & libc::SECCOMP_RET_DATA;
    let text = match k & !libc::SECCOMP_RET_DATA {
        libc::SECCOMP_RET_ALLOW => "ret  ALLOW".to_string(),
        libc::SECCOMP_RET_ERRNO => format!("ret  ERRNO({data})"),
        libc::SECCOMP_RET_KILL_PROCESS => "ret  KILL_PROCESS".into(),
        libc::SECCOMP_RET_KILL_THREAD => "ret  KILL_THREAD".into(),
        libc::SECCOMP_RET_TRAP => "ret  TRAP".into(),
        libc::SECCOMP_RET_LOG => "ret  LOG".into(),
        libc::SECCOMP_RET_TRACE => format!("ret  TRACE({data})"),
        _ => format!("ret  #{k:#x}"),
    };
    let errno = match (k & !libc::SECCOMP_RET_DATA, data as i32) {
        (libc::SECCOMP_RET_ERRNO, libc::EPERM) => Some("EPERM".to_string()),
        (libc::SECCOMP_RET_ERRNO, libc::ENOSYS) => Some("ENOSYS".to_string()),
        (libc::SECCOMP_RET_ERRNO, libc::EACCES) => Some("EACCES".to_string()),
        _ => None,
    };
    (text, errno)
}

/// Runs `program` on one system call as the kernel would, and returns its
/// verdict: the tests ask a filter for another architecture what it does.
#[cfg(test)]
pub(crate) fn run(program: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let mut data = vec![nr, arch, 0, 0];
    data.extend(args.iter().flat_map(|&a| [a as u32, (a >> 32) as u32]));
    let (mut pc, mut a) = (0usize, 0u32);
    loop {
        let insn = &program[pc];
        let code = u32::from(insn.code);
        pc += 1;
        match (code & 0x07, code & 0xf0) {
            (libc::BPF_LD, _) => a = data[insn.k as usize / 4],
            (libc::BPF_ALU, _) => a &= insn.k,
            (libc::BPF_JMP, libc::BPF_JA) => pc += insn.k as usize,
            (libc::BPF_JMP, op) => {
                let holds = match op {
                    libc::BPF_JEQ => a == insn.k,
                    libc::BPF_JGT => a > insn.k,
                    libc::BPF_JGE => a >= insn.k,
                    _ => a & insn.k != 0,
                };
                pc += usize::from(if holds { insn.jt } else { insn.jf });
            }
            _ => return insn.k,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::seccomp::{Filter, Profile, Target};

    fn small_example(arch: Arch) -> Filter {
        let profile = Profile::parse(include_str!("../../examples/small-profile.json")).unwrap();
        let caps = BTreeSet::new();
        let target = Target {
            arch,
            kernel: (6, 18),
            caps: &caps,
        };
        Filter::compile_for(&profile, &target).unwrap()
    }

    // The book shows this disassembly: a change here is a change there.
    #[test]
    fn the_small_example_disassembles_as_the_book_shows() {
        let text = small_example(Arch::X86_64).disassemble();
        println!("{text}");
        assert_eq!(text, SMALL_EXAMPLE_X86_64);
    }

    #[test]
    fn on_aarch64_the_numbers_differ_and_open_is_skipped() {
        let text = small_example(Arch::Aarch64).disassemble();
        assert!(
            text.contains("jeq  #0xc00000b7, 0003, 0002   ; aarch64"),
            "{text}"
        );
        assert!(
            text.contains("jge  #0x3f, 0010, 0011         ; read or above"),
            "{text}"
        );
        assert!(!text.contains("open"), "{text}");
    }

    #[test]
    fn an_instruction_no_filter_uses_is_shown_raw() {
        let odd = sock_filter {
            code: 0x61, // ldx: seccomp filters never need it
            jt: 0,
            jf: 0,
            k: 7,
        };
        assert_eq!(
            disassemble(&[odd], Arch::X86_64),
            "0000: .word 0x0061 0 0 0x7\n"
        );
    }

    const SMALL_EXAMPLE_X86_64: &str = "\
0000: ld   [4]                       ; architecture
0001: jeq  #0xc000003e, 0003, 0002   ; x86_64
0002: ret  KILL_PROCESS
0003: ld   [0]                       ; system call number
0004: jgt  #0x1b3, 0005, 0006        ; above clone3
0005: ret  ERRNO(38)                 ; ENOSYS
0006: jgt  #0x3, 0009, 0007          ; above close
0007: jge  #0x0, 0008, 0009          ; read or above
0008: ret  ALLOW
0009: jeq  #0x38, 0010, 0020         ; clone
0010: ja   0012
0011: ja   0020
0012: ld   [20]                      ; args[0], high half
0013: and  #0x0
0014: jeq  #0x0, 0015, 0019          ; args[0], high half masked
0015: ld   [16]                      ; args[0], low half
0016: and  #0x7e020000
0017: jeq  #0x0, 0018, 0019          ; args[0], low half masked
0018: ret  ALLOW
0019: ret  ERRNO(1)                  ; EPERM
0020: jeq  #0xe7, 0021, 0022         ; exit_group
0021: ret  ALLOW
0022: jeq  #0x1b3, 0023, 0024        ; clone3
0023: ret  ERRNO(38)                 ; ENOSYS
0024: ret  ERRNO(1)                  ; EPERM
";
}
