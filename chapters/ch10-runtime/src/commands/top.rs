//! `minibox top`: a running container's processes, as the host's `ps` sees
//! them, the way `docker top` shows them.
//!
//! Which processes are the container's? Not "PID 1 and its children": a
//! process can be reparented, and `exec` starts processes that are no child
//! of PID 1 at all. The container's cgroup knows: its `cgroup.procs` lists
//! every process in it, by host PID, whoever forked it. So `top` is the
//! host's `ps -ef`, kept to the rows whose PID the cgroup lists, as Docker's
//! daemon does (`ContainerTop` in moby's `daemon/top_unix.go`).

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::process::Command;

use anyhow::{Context, Result, bail};
use ch01_fork_exec::exit::Exit;
use ch05_cgroups::cgroup;
use tabwriter::TabWriter;

use crate::container::Spec;
use crate::state::{Status, Store};

// ANCHOR: top
/// `docker top CONTAINER [ps OPTIONS]`: the host's `ps` (`-ef` unless
/// options are given), only the rows of the container's processes.
pub fn top(store: &Store, reference: &str, ps_options: &[String]) -> Result<Exit> {
    let container = store.get::<Spec>(reference)?;
    let state = &container.state;
    if state.status != Status::Running {
        bail!("Container {} is not running", container.record.id);
    }
    // Every v1 hierarchy's directory lists the same processes; v2 has one.
    let mut pids: BTreeSet<i32> = state
        .cgroups
        .iter()
        .flat_map(|dir| cgroup::procs(dir))
        .collect();
    if let (true, Some(first)) = (state.cgroups.is_empty(), &state.process) {
        // No cgroup of its own (chapter 13, rootless without a delegated
        // subtree): its processes are those of its PID namespace.
        pids = in_pid_namespace_of(first.pid);
    }
    print_processes(&pids, ps_options)?;
    Ok(Exit::Code(0))
}
// ANCHOR_END: top

/// Prints the host's `ps` (`-ef` unless options are given) kept to the
/// rows of `pids`, in Docker's table (chapter 14's `ps` prints it too).
pub fn print_processes(pids: &BTreeSet<i32>, ps_options: &[String]) -> Result<()> {
    let options = match ps_options {
        [] => vec!["-ef".to_string()],
        given => given.to_vec(),
    };
    let output = Command::new("ps")
        .args(&options)
        .output()
        .context("running ps")?;
    if !output.status.success() {
        let why = String::from_utf8_lossy(&output.stderr);
        bail!(
            "ps {}: {}",
            options.join(" "),
            why.lines().next().unwrap_or("")
        );
    }
    let table = processes(&String::from_utf8_lossy(&output.stdout), pids)?;
    match write_table(&table, io::stdout().lock()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        result => Ok(result?),
    }
}

/// The host PIDs of the processes in the PID namespace of process `pid`.
fn in_pid_namespace_of(pid: i32) -> BTreeSet<i32> {
    let namespace = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let Some(wanted) = namespace(&pid.to_string()) else {
        return BTreeSet::new();
    };
    let entries = std::fs::read_dir("/proc").into_iter().flatten().flatten();
    entries
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| namespace(&pid.to_string()).as_ref() == Some(&wanted))
        .collect()
}

/// `ps`'s header and the rows whose PID is in `pids`, each as cells. The
/// last title (`CMD`) takes the rest of a row: a command has spaces.
fn processes(ps: &str, pids: &BTreeSet<i32>) -> Result<Vec<Vec<String>>> {
    let mut lines = ps.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let column = titles
        .iter()
        .position(|t| t == "PID")
        .context("Couldn't find PID field in ps output")?;
    let mut table = vec![titles.clone()];
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let pid = fields.get(column).and_then(|p| p.parse().ok());
        if pid.is_some_and(|pid| pids.contains(&pid)) {
            let (cells, rest) = fields.split_at((titles.len() - 1).min(fields.len()));
            let mut row: Vec<String> = cells.iter().map(|c| c.to_string()).collect();
            row.push(rest.join(" "));
            table.push(row);
        }
    }
    Ok(table)
}

/// Docker's `top` table: Go's tabwriter with minwidth 20 and padding 3 (the
/// Rust crate pads after taking the minimum, so its minimum is 20 - 3).
fn write_table(table: &[Vec<String>], out: impl Write) -> io::Result<()> {
    let mut out = TabWriter::new(out).minwidth(20 - 3).padding(3);
    for row in table {
        writeln!(out, "{}", row.join("\t"))?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_kept_by_pid_and_a_command_keeps_its_spaces() {
        let ps = "UID   PID  PPID  C STIME TTY  TIME     CMD\n\
                  root  10   1     0 10:00 ?    00:00:00 sh -c sleep 1 & wait\n\
                  root  11   10    0 10:00 ?    00:00:00 sleep 1\n\
                  root  12   1     0 10:00 ?    00:00:00 sshd\n";
        let table = processes(ps, &BTreeSet::from([10, 11])).unwrap();
        assert_eq!(table.len(), 3);
        assert_eq!(table[0][1], "PID");
        assert_eq!(table[1][7], "sh -c sleep 1 & wait");
        assert_eq!(table[2][1], "11");
        let error = processes("UID CMD\nroot sh\n", &BTreeSet::new()).unwrap_err();
        assert_eq!(error.to_string(), "Couldn't find PID field in ps output");
    }
}
