//! The one insta filter table. It redacts only what varies from run to run and
//! machine to machine, never the value a chapter teaches: host PIDs (`PID 4711`)
//! become `PID [PID]`, but a one-digit PID, such as PID 1 inside a PID namespace,
//! stays as it is; random container IDs become `[ID]`, but a hostname given with
//! `--hostname` stays.
//!
//! One step is more than a regular expression can do: a `minibox ps` table
//! (chapter 10 on) has cells that vary (the ID, `2 seconds ago`, `Up Less
//! than a second`, a generated name) in the middle of lines whose columns are
//! padded to the widest cell. [`ps_tables`] redacts them cell by cell and
//! lines the columns up again, as `ps` would have.

/// `(regex, replacement)` pairs, applied in order.
pub const FILTERS: &[(&str, &str)] = &[
    // Host PIDs. Narration writes every host PID as `PID n`; real hosts have
    // thousands of processes, so a PID of two digits or more is the host's.
    (r"\bPID [0-9]{2,}\b", "PID [PID]"),
    // The same in a runtime's `state` JSON (chapter 14): `"pid": 4711`.
    (r#""pid": [0-9]{2,}\b"#, r#""pid": [PID]"#),
    // An RFC 3339 time (`"created": "2025-01-31T09:28:49.496368357Z"`).
    (
        r"\b[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})",
        "[TIME]",
    ),
    // Container IDs: random, 64 hex digits, or 12 when shortened (also the
    // default hostname).
    (r"\b[0-9a-f]{64}\b", "[ID]"),
    // An IMAGE ID in a table row (`busybox   latest   830fbc329b6f   N/A`)
    // keeps its width, so the columns after it still line up.
    (
        r"(?m)^(\S+ {3,}\S+ {3,})[0-9a-f]{12}( {3,})",
        "${1}[IMAGE ID]${2}  ",
    ),
    (r"\b[0-9a-f]{12}\b", "[ID]"),
    // The host end of a container's veth pair is named after the start of
    // its random ID (chapter 9); the addresses beside it are what the
    // chapter teaches, and stay.
    (r"\bveth[0-9a-f]{7}\b", "veth[ID]"),
    // The SIZE of an image in a table row: the fixture images are built from
    // the host's own busybox and libc, so their sizes differ from machine to
    // machine. Chapter 7's tests check the number against the image's layers
    // (`pull_stores_verified_blobs_and_the_unpacked_layer`).
    (
        r"(?m)^(\S+ {3,}\S+ {3,}\[IMAGE ID\] {3,}.*? {3,})[0-9.]+[kMGTP]?B$",
        "${1}[SIZE]",
    ),
    // What a container used varies a little from run to run; chapter 5's
    // tests check the numbers (`stats_report_the_containers_peak_memory`,
    // `cpus_hold_a_busy_loop_near_its_share`), the transcripts show the line.
    (r"peak memory [0-9.]+[KMGT]?i?B", "peak memory [BYTES]"),
    (r"CPU time [0-9.]+s", "CPU time [SECONDS]"),
    // The demos' cgroup parent is relative where it can be, absolute on some v2
    // hosts (see `cgroups`): show it one way.
    (r"/?minibox-demos/", "minibox-demos/"),
    // The fixture registry listens on a port of its own choosing.
    (r"\b127\.0\.0\.1:[0-9]{2,5}\b", "127.0.0.1:[PORT]"),
    // Temporary directories made by tests (tempfile's names).
    (r"/tmp/\.tmp[A-Za-z0-9]+", "[TMP]"),
    // A container name minibox generated (`quiet_ritchie`, chapter 10), in a
    // message; a name given with `--name` has no `_` in the demos, and stays.
    (r#"(container "/)[a-z]+_[a-z]+[0-9]?(")"#, "${1}[NAME]${2}"),
    // A ping's round-trip time (chapter 10's container pings its gateway).
    (r"(ttl=[0-9]+ time=)[0-9.]+ ms", "${1}[TIME] ms"),
];

/// A duration in Docker's words (go-units' `HumanDuration`, chapter 10's
/// `human::duration`): `Less than a second`, `1 second`, `About a minute`...
const DURATION: &str = r"(?:Less than a second|About an? (?:minute|hour)|[0-9]+ (?:second|minute|hour|day|week|month|year)s?)";

/// `text` with every `minibox ps` table (a `CONTAINER ID` header and the
/// rows below it) redacted cell by cell, with [`FILTERS`] (the IDs), times
/// (`[TIME] ago`, `Up [TIME]`) and generated names (`[NAME]`), then lined up
/// again as `ps` lines them up: each column but the last as wide as its
/// widest cell plus 3 spaces, and at least 10.
pub fn ps_tables(text: &str) -> String {
    let filters: Vec<(regex::Regex, &str)> = FILTERS
        .iter()
        .map(|(re, with)| (regex::Regex::new(re).expect("a valid filter"), *with))
        .collect();
    let ago = regex::Regex::new(&format!(r"\b{DURATION} ago\b")).expect("a valid regex");
    let up = regex::Regex::new(&format!(r"\bUp {DURATION}")).expect("a valid regex");
    let generated = regex::Regex::new(r"^[a-z]+_[a-z]+[0-9]?$").expect("a valid regex");
    let redact = |column: &str, cell: &str| -> String {
        let mut cell = cell.to_string();
        for (re, with) in &filters {
            cell = re.replace_all(&cell, *with).into_owned();
        }
        cell = ago.replace_all(&cell, "[TIME] ago").into_owned();
        cell = up.replace_all(&cell, "Up [TIME]").into_owned();
        if column == "NAMES" && generated.is_match(&cell) {
            cell = "[NAME]".to_string();
        }
        cell
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].starts_with("CONTAINER ID ") {
            out.push(lines[i].to_string());
            i += 1;
            continue;
        }
        let end = (i + 1..lines.len())
            .find(|&j| lines[j].is_empty() || lines[j].starts_with("$ "))
            .unwrap_or(lines.len());
        let header: Vec<char> = lines[i].chars().collect();
        // A column starts after two spaces or more: `CONTAINER ID` is one.
        let starts: Vec<usize> = (0..header.len())
            .filter(|&c| {
                c == 0
                    || (c >= 2 && header[c] != ' ' && header[c - 1] == ' ' && header[c - 2] == ' ')
            })
            .collect();
        let names: Vec<String> = cells(&header, &starts);
        let table: Vec<Vec<String>> = lines[i..end]
            .iter()
            .map(|line| {
                let line: Vec<char> = line.chars().collect();
                cells(&line, &starts)
                    .iter()
                    .zip(&names)
                    .map(|(cell, column)| redact(column, cell))
                    .collect()
            })
            .collect();
        let widths: Vec<usize> = (0..starts.len())
            .map(|c| {
                let widest = table
                    .iter()
                    .map(|row| row[c].chars().count())
                    .max()
                    .unwrap_or(0);
                (widest + 3).max(10)
            })
            .collect();
        for row in &table {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                line.push_str(cell);
                if c + 1 < row.len() {
                    let pad = widths[c] - cell.chars().count();
                    line.push_str(&" ".repeat(pad));
                }
            }
            out.push(line.trim_end().to_string());
        }
        i = end;
    }
    let mut joined = out.join("\n");
    if text.ends_with('\n') {
        joined.push('\n');
    }
    joined
}

/// The cells of a table line, cut where the header's columns start, trimmed.
fn cells(line: &[char], starts: &[usize]) -> Vec<String> {
    starts
        .iter()
        .enumerate()
        .map(|(c, &start)| {
            let end = starts
                .get(c + 1)
                .copied()
                .unwrap_or(line.len())
                .min(line.len());
            line.get(start.min(end)..end)
                .map(|cell| cell.iter().collect::<String>().trim().to_string())
                .unwrap_or_default()
        })
        .collect()
}

/// insta settings with [`FILTERS`] applied and snapshots kept beside the test file.
/// The checkout's own path (where the fixtures live) becomes `[WORKSPACE]`.
pub fn settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    let workspace = crate::transcript::workspace_root();
    settings.add_filter(&regex::escape(&workspace.to_string_lossy()), "[WORKSPACE]");
    for (regex, replacement) in FILTERS {
        settings.add_filter(regex, *replacement);
    }
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_pids_are_redacted_but_pid_1_is_not() {
        let settings = settings();
        settings.bind(|| {
            insta::assert_snapshot!(
                "[minibox] parent (PID 4711) calls fork()\nchild (host PID 52, PID 1 inside) in /tmp/.tmpAb12/x\ncontainer 4b4b782542cf is called box",
                @r"
            [minibox] parent (PID [PID]) calls fork()
            child (host PID [PID], PID 1 inside) in [TMP]/x
            container [ID] is called box
            "
            );
        });
    }

    #[test]
    fn a_runtimes_state_has_its_pid_and_time_redacted() {
        let settings = settings();
        settings.bind(|| {
            insta::assert_snapshot!(
                "\"pid\": 5328,\n\"created\": \"2025-01-31T09:28:49.496368357Z\",\n\"pid\": 1,",
                @r#"
            "pid": [PID],
            "created": "[TIME]",
            "pid": 1,
            "#
            );
        });
    }

    #[test]
    fn veth_names_are_redacted_but_addresses_are_not() {
        let settings = settings();
        settings.bind(|| {
            insta::assert_snapshot!(
                "its network: eth0 172.29.0.2/16 via vethf6ed6b1 on minibox0, default route via 172.29.0.1",
                @"its network: eth0 172.29.0.2/16 via veth[ID] on minibox0, default route via 172.29.0.1"
            );
        });
    }

    #[test]
    fn ps_tables_are_redacted_by_cell_and_lined_up_again() {
        let table = "$ minibox ps -a\n\
CONTAINER ID   IMAGE     COMMAND                  CREATED                  STATUS                                PORTS                    NAMES\n\
00955e10bf10   redis     \"redis-server --prot…\"   Less than a second ago   Up Less than a second                 0.0.0.0:6379->6379/tcp   cache\n\
1eaa34cd019a   busybox   \"ping -i 60 172.29.0…\"   3 seconds ago            Exited (137) Less than a second ago                            deferred_davies\n\
$ echo done\n";
        insta::assert_snapshot!(ps_tables(table), @r#"
        $ minibox ps -a
        CONTAINER ID   IMAGE     COMMAND                  CREATED      STATUS                    PORTS                    NAMES
        [ID]           redis     "redis-server --prot…"   [TIME] ago   Up [TIME]                 0.0.0.0:6379->6379/tcp   cache
        [ID]           busybox   "ping -i 60 172.29.0…"   [TIME] ago   Exited (137) [TIME] ago                            [NAME]
        $ echo done
        "#);
    }

    #[test]
    fn image_sizes_are_redacted_in_tables_only() {
        let settings = settings();
        settings.bind(|| {
            insta::assert_snapshot!(
                "REPOSITORY        TAG          IMAGE ID       CREATED      SIZE\nbusybox           latest       830fbc329b6f   N/A          3.45MB\nminibox/multi     latest       0123456789ab   2 days ago   12B\nminimum memory limit allowed is 6MB",
                @r"
            REPOSITORY        TAG          IMAGE ID       CREATED      SIZE
            busybox           latest       [IMAGE ID]     N/A          [SIZE]
            minibox/multi     latest       [IMAGE ID]     2 days ago   [SIZE]
            minimum memory limit allowed is 6MB
            "
            );
        });
    }
}
