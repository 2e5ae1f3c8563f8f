//! System calls by name: the table a profile's names are looked up in.
//!
//! A profile names system calls (`"mount"`); the kernel's filter sees only
//! numbers, and the numbers differ between architectures (`mount` is 165 on
//! x86_64, 40 on aarch64). libseccomp carries such a table for every
//! architecture; minibox carries the two it runs on, as the kernel lists
//! them (`tables/*.tbl`).

use anyhow::{Result, bail};

/// An architecture minibox compiles filters for: the machine's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// 64-bit x86 (`amd64` in Docker's profiles).
    X86_64,
    /// 64-bit Arm (`arm64` in Docker's profiles).
    Aarch64,
}

impl Arch {
    /// The architecture this program was built for, which is the one its
    /// system calls (and those of the container it starts) use.
    pub fn this_machine() -> Result<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Ok(Arch::X86_64),
            "aarch64" => Ok(Arch::Aarch64),
            other => {
                bail!("seccomp filters are not supported on {other} (only x86_64 and aarch64)")
            }
        }
    }

    /// The value the kernel puts in `seccomp_data.arch` for a system call
    /// made with this architecture's calling convention
    /// (`AUDIT_ARCH_X86_64`, `AUDIT_ARCH_AARCH64`): the ELF machine number,
    /// flagged 64-bit and little-endian.
    pub fn audit(self) -> u32 {
        const ARCH_64BIT: u32 = 0x8000_0000;
        const ARCH_LE: u32 = 0x4000_0000;
        match self {
            Arch::X86_64 => 62 | ARCH_64BIT | ARCH_LE,
            Arch::Aarch64 => 183 | ARCH_64BIT | ARCH_LE,
        }
    }

    /// The name Docker's profiles use for it in `includes`/`excludes`
    /// (`arches`), Go's names.
    pub fn docker_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
        }
    }

    /// The name libseccomp and `archMap` use (`SCMP_ARCH_X86_64`).
    pub fn scmp_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "SCMP_ARCH_X86_64",
            Arch::Aarch64 => "SCMP_ARCH_AARCH64",
        }
    }

    fn table(self) -> &'static str {
        match self {
            Arch::X86_64 => include_str!("tables/x86_64.tbl"),
            Arch::Aarch64 => include_str!("tables/aarch64.tbl"),
        }
    }

    /// The number of the system call `name` on this architecture, or `None`
    /// when it has no such call (`open` on aarch64, `chown32` on both).
    pub fn number(self, name: &str) -> Option<u32> {
        self.calls()
            .find(|&(_, call)| call == name)
            .map(|(number, _)| number)
    }

    /// The name of system call `number`, for the disassembly.
    pub fn name(self, number: u32) -> Option<&'static str> {
        self.calls()
            .find(|&(n, _)| n == number)
            .map(|(_, name)| name)
    }

    /// Every system call of the table, as (number, name).
    pub fn calls(self) -> impl Iterator<Item = (u32, &'static str)> {
        self.table().lines().filter_map(|line| {
            let line = line.split('#').next()?;
            let (number, name) = line.split_once('\t')?;
            Some((number.parse().ok()?, name.trim()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_give_each_architecture_its_numbers() {
        assert_eq!(Arch::X86_64.number("read"), Some(0));
        assert_eq!(Arch::X86_64.number("mount"), Some(165));
        assert_eq!(Arch::Aarch64.number("mount"), Some(40));
        assert_eq!(Arch::X86_64.number("clone3"), Some(435));
        assert_eq!(
            Arch::Aarch64.number("open"),
            None,
            "aarch64 has only openat"
        );
        assert_eq!(Arch::X86_64.number("chown32"), None, "a 32-bit call");
        assert_eq!(Arch::X86_64.name(39), Some("getpid"));
    }

    #[test]
    fn the_table_of_this_machine_agrees_with_libc() {
        let arch = Arch::this_machine().unwrap();
        for (name, number) in [
            ("getpid", libc::SYS_getpid),
            ("unshare", libc::SYS_unshare),
            ("keyctl", libc::SYS_keyctl),
            ("clone3", libc::SYS_clone3),
            ("mseal", libc::SYS_mseal),
        ] {
            assert_eq!(arch.number(name), Some(number as u32), "{name}");
        }
        let count = arch.calls().count();
        let unique: std::collections::BTreeSet<_> = arch.calls().map(|(n, _)| n).collect();
        assert_eq!(count, unique.len(), "one name per number");
        assert!(count > 300, "{count} calls");
    }
}
