//! The one insta filter table. It redacts only what varies from run to run and
//! machine to machine, never the value a chapter teaches: host PIDs (`PID 4711`)
//! become `PID [PID]`, but a one-digit PID, such as PID 1 inside a PID namespace,
//! stays as it is; random container IDs become `[ID]`, but a hostname given with
//! `--hostname` stays.

/// `(regex, replacement)` pairs, applied in order.
pub const FILTERS: &[(&str, &str)] = &[
    // Host PIDs. Narration writes every host PID as `PID n`; real hosts have
    // thousands of processes, so a PID of two digits or more is the host's.
    (r"\bPID [0-9]{2,}\b", "PID [PID]"),
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
    // Temporary directories made by tests (tempfile's names).
    (r"/tmp/\.tmp[A-Za-z0-9]+", "[TMP]"),
];

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
