//! Every chapter crate and its demos, in the order the story tells them. The tour
//! (`cargo xtask tour`) runs these demos, the workspace suite (`tests/demos.rs`)
//! records each as a snapshot, and `cargo xtask codegen` copies the snapshots into
//! the book. One table, so the three cannot drift apart.
//!
//! Each chapter also does its concept *by hand* first, with standard tools
//! (`unshare`, `nsenter`, `mount`, a `mkdir` in `/sys/fs/cgroup`, `curl`), before
//! the book shows the Rust code: [`ByHand`]. `tests/demos.rs` runs those commands
//! too and records their transcripts the same way.

/// One chapter crate.
#[derive(Debug)]
pub struct Chapter {
    /// The Cargo package, also its directory under `chapters/` and its binary.
    pub package: &'static str,
    /// The concept in a few words, for banners.
    pub title: &'static str,
    /// What the chapter's demos show, for the tour's banner.
    pub shows: &'static str,
    /// Whether running it here needs root: its binary does (namespaces,
    /// mounts, cgroups do), or, for a chapter whose demos run as an
    /// ordinary user ([`RunsAs::User`]), the harness does, to make that
    /// user. Without root, its demos and its exercises' checkers are
    /// skipped, saying so.
    pub needs_root: bool,
    /// Whether its demos pull images: they then run against the fixture
    /// registry (as `MINIBOX_REGISTRY_MIRROR`) with a store of their own,
    /// emptied first, so the first pull really downloads.
    pub needs_registry: bool,
    /// Who runs its demos: root, or an ordinary user (chapter 13).
    pub runs_as: RunsAs,
    /// Where the demos (and the by-hand session) run, network-wise.
    pub network: Network,
    /// The demos, in order.
    pub demos: &'static [Demo],
    /// The chapter's concept done with standard tools, before the Rust code.
    pub by_hand: ByHand,
}

/// A chapter's concept done by hand: commands a reader types into one shell
/// session, as root (chapter 13's become an ordinary user with `setpriv`),
/// in an empty scratch directory. `tests/demos.rs` runs them
/// with `/bin/sh` in that directory, inside a private mount namespace of their
/// own (so no mount outlives them, whatever happens), and, for a chapter whose
/// demos run in a network namespace of their own ([`Network::Namespace`]), in
/// a fresh one of those too; it records the session as the transcript
/// `<package>-by-hand`. The commands may use:
///
/// - `$ROOTFS`: the busybox root filesystem (read only: never write into it);
/// - `$CG`: a cgroup directory that does not exist yet, in the `pids` hierarchy
///   on cgroup v1, below the test's own cgroup (chapter 5);
/// - `$REGISTRY`: the fixture registry's `host:port`, for chapters that pull.
#[derive(Debug)]
pub struct ByHand {
    /// The commands, in order; one may span lines (shown with `> `).
    pub commands: &'static [&'static str],
    /// Runs at the end on every path, unshown: undoes whatever the commands
    /// may have left (a cgroup, a process) if one of them failed half-way.
    pub cleanup: &'static str,
}

/// Who runs a chapter's demos.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunsAs {
    /// root, as every chapter before 13 needs: the demos run the chapter's
    /// binary as the session does (the tour through the privileged runner).
    Root,
    /// An ordinary user, as a reader without sudo: the session makes one,
    /// [`DEMO_USER`], with a store of its own in its home, and runs every
    /// `minibox` of the demos as that user (the host's commands of a demo
    /// with a host side still run as the session does). Making the user
    /// takes root, so the chapter [`Chapter::needs_root`] all the same.
    User,
}

/// The ordinary user of a [`RunsAs::User`] chapter's demos: fixed IDs and a
/// fixed name, so that transcripts read the same on every run, unlike the
/// users chapter 13's tests make in parallel. Its passwd, group, subuid and
/// subgid entries exist only for its own commands
/// ([`crate::rootless::TestUser`]); the UID must be unused on the machine.
#[derive(Debug)]
pub struct DemoUser {
    /// Its name.
    pub name: &'static str,
    /// Its UID, and its GID.
    pub uid: u32,
    /// Its subordinate IDs in `/etc/subuid` and `/etc/subgid`: the first,
    /// and how many, as a distribution's `useradd` grants them.
    pub range: (u32, u32),
}

/// The demos' ordinary user: `learner`, with UID 1001 (a desktop's first
/// user is 1000, often taken already) and the range `useradd` gives a
/// first user.
pub const DEMO_USER: DemoUser = DemoUser {
    name: "learner",
    uid: 1001,
    range: (100_000, 65_536),
};

/// Where a chapter's demos run, network-wise.
#[derive(Debug)]
pub enum Network {
    /// In the machine's own network namespace: the chapter's containers have
    /// no network of their own, so nothing is made there (chapters 1 to 8).
    Machine,
    /// In a network namespace made for the session to play "the host", with
    /// `lo` up, as DESIGN.md's networking rules ask of tests and of the tour:
    /// the bridge, veths, NAT rules and published ports the demos make exist
    /// only there, and vanish with it. The fixture registry listens on the
    /// machine's 127.0.0.1, out of reach from inside, so the images the demos
    /// run are pulled first, from the machine's namespace, into the demos'
    /// emptied store (their pull output is not shown).
    Namespace {
        /// The images to pull first (`busybox`, `redis`).
        pulled: &'static [&'static str],
    },
}

/// In a demo's arguments, the container the chapter's demos created last
/// (chapter 10 on): its short ID, as `minibox ps -l -q` prints it, which is
/// what a reader copies from the line `run -d` printed. Transcripts show it
/// as `[ID]`, as they show every ID.
pub const LATEST: &str = "{latest}";

/// In a demo's arguments (chapter 11 on), the fixture registry's
/// `host:port`, where a demo pushes. Transcripts show it as
/// `127.0.0.1:[PORT]`.
pub const REGISTRY: &str = "{registry}";

/// One demo: a `minibox` command line and what it shows.
#[derive(Debug)]
pub struct Demo {
    /// Short name; the snapshot is `<package>-<name>`.
    pub name: &'static str,
    /// One line for the tour: what to look at.
    pub about: &'static str,
    /// The arguments after `minibox` ([`LATEST`] stands for a container's ID).
    pub args: &'static [&'static str],
    /// The exit status minibox must end with; the tour and the tests check it.
    pub status: i32,
    /// Whether the transcript ends with `$ echo $?` and the status.
    pub show_status: bool,
    /// For a demo with a host side (a server in a container, a client on the
    /// host): what runs beside minibox, which then runs in the background.
    pub alongside: Option<Alongside>,
}

/// The host's side of a demo whose container serves something: minibox runs
/// in the background, its own output going to `<demo>.log` (not shown: a
/// server's log has times and PIDs), while these commands run on the host (in
/// the session's network namespace, for a networking chapter). Then minibox
/// gets SIGTERM, by its PID, and is waited for; its exit status is the demo's.
/// The transcript reads as the shell session that does the same:
///
/// ```text
/// $ minibox run --quiet -p 6379:6379 redis > redis.log 2>&1 &
/// $ redis-cli -p 6379 ping
/// PONG
/// $ kill $!; wait $!
/// ```
///
/// A `run -d` ([`Alongside::detached`]) puts the container in the background
/// itself: minibox runs in the foreground, prints the ID and returns, then the
/// host's commands run, and the container serves on.
#[derive(Debug)]
pub struct Alongside {
    /// Whether minibox detaches the container itself (`run -d`, chapter 10
    /// on): it is shown and waited for as any demo, and the container is left
    /// running for the chapter's later demos (the session removes what still
    /// runs at its end).
    pub detached: bool,
    /// A shell command that succeeds once the container is ready, retried
    /// (unshown) until it does; after a deadline, or if minibox ends first,
    /// the demo fails.
    pub ready: &'static str,
    /// The host's commands, in order, each run with `sh -c` and shown as
    /// `$ command` followed by its output.
    pub commands: &'static [&'static str],
}

impl Chapter {
    /// The chapter's number, from its package name (`ch05-cgroups` → 5).
    pub fn number(&self) -> u32 {
        self.package[2..4]
            .parse()
            .expect("chapter packages start with chNN-")
    }

    /// The snapshot name of one of its demos.
    pub fn snapshot_name(&self, demo: &Demo) -> String {
        format!("{}-{}", self.package, demo.name)
    }

    /// The name of its binary: the package's, except for the product,
    /// the last chapter, whose binary is `minibox` (`cargo install --path
    /// chapters/ch14-oci-runtime`).
    pub fn binary(&self) -> &'static str {
        if self.package == PRODUCT {
            "minibox"
        } else {
            self.package
        }
    }

    /// Its second program, beside [`Chapter::binary`]: chapter 14's
    /// `minibox-runc`, runc's command line.
    pub fn second_binary(&self) -> Option<&'static str> {
        (self.package == "ch14-oci-runtime").then_some("minibox-runc")
    }

    /// Whether its containers outlive the command that started them (chapter
    /// 10 on: `run -d`, then `ps`, `stop`, `rm`). Its demos then act on the
    /// containers earlier demos left ([`LATEST`]), and the session removes
    /// whatever still runs when it ends.
    pub fn keeps_containers(&self) -> bool {
        self.number() >= 10
    }
}

/// The chapter whose binary is the product, `minibox`.
pub const PRODUCT: &str = "ch14-oci-runtime";

/// All chapters, in story order.
pub const CHAPTERS: &[Chapter] = &[
    Chapter {
        package: "ch01-fork-exec",
        title: "fork, exec, wait",
        shows: "minibox runs a host command as a child process and exits with its status",
        needs_root: false,
        needs_registry: false,
        runs_as: RunsAs::Root,
        network: Network::Machine,
        demos: &[
            Demo {
                name: "echo",
                about: "the parent forks, the child execs echo, the parent waits and reaps it",
                args: &["run", "echo", "hello from a child process"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "exit-code",
                about: "the child's exit code becomes minibox's exit code",
                args: &["run", "sh", "-c", "exit 3"],
                status: 3,
                show_status: true,
                alongside: None,
            },
            Demo {
                name: "killed",
                about: "a child killed by SIGKILL (signal 9): minibox exits with 128 + 9 = 137",
                args: &["run", "sh", "-c", "kill -9 $$"],
                status: 137,
                show_status: true,
                alongside: None,
            },
            Demo {
                name: "not-found",
                about: "no such command: one line, exit status 127",
                args: &["run", "no-such-command"],
                status: 127,
                show_status: true,
                alongside: None,
            },
            Demo {
                name: "not-executable",
                about: "a file that is not executable: exit status 126 (quiet: no narration)",
                args: &["run", "--quiet", "/etc/passwd"],
                status: 126,
                show_status: true,
                alongside: None,
            },
        ],
        by_hand: ByHand {
            commands: &[
                "sh -c 'exit 3'; echo \"exit status $?\"",
                "sh -c 'kill -9 $$'; echo \"exit status $?\"",
                "sh -c no-such-command; echo \"exit status $?\"",
                "sh -c /etc/passwd; echo \"exit status $?\"",
            ],
            cleanup: "",
        },
    },
    Chapter {
        package: "ch02-pid-namespace",
        title: "the PID namespace",
        shows: "the child is PID 1 of a new PID namespace, with PID 1's special rules; /proc is still the host's",
        needs_root: true,
        needs_registry: false,
        runs_as: RunsAs::Root,
        network: Network::Machine,
        demos: &[
            Demo {
                name: "pid-1",
                about: "clone(CLONE_NEWPID): inside, the command is PID 1; the host knows it by another PID",
                args: &["run", "sh", "-c", "echo \"my PID is $$\""],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "proc-is-the-hosts",
                about: "but /proc is still the host's, so it answers with host PIDs (chapter 4 fixes this)",
                args: &[
                    "run",
                    "--quiet",
                    "sh",
                    "-c",
                    "echo \"I am PID $$, but /proc/self says PID $(readlink /proc/self)\"",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "signals",
                about: "PID 1 ignores signals it has no handler for, even SIGKILL, when sent from inside",
                args: &[
                    "run",
                    "--quiet",
                    "sh",
                    "-c",
                    "kill -TERM $$; kill -KILL $$; echo \"PID 1 is still alive\"",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "orphans",
                about: "an orphan is re-parented to PID 1 of its namespace, which must reap it",
                args: &[
                    "run",
                    "--quiet",
                    "sh",
                    "-c",
                    "( (sleep 0.1; exec sh -c \"echo orphan: my parent is now PID \\$PPID\") & ); sleep 1",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "not-found",
                about: "exec fails in the child; the reason travels back through the sync pipe",
                args: &["run", "no-such-command"],
                status: 127,
                show_status: true,
                alongside: None,
            },
        ],
        by_hand: ByHand {
            commands: &[
                "unshare --pid --fork sh -c 'echo \"inside, my PID is $$\"'",
                "unshare --pid --fork --mount-proc ps -o pid,ppid,comm",
                "unshare --pid sh -c '/bin/echo one; /bin/echo two; true'; echo \"exit status $?\"",
            ],
            cleanup: "",
        },
    },
    Chapter {
        package: "ch03-uts-namespace",
        title: "UTS and IPC namespaces",
        shows: "the child gets its own hostname and its own System V IPC objects; the host keeps its own",
        needs_root: true,
        needs_registry: false,
        runs_as: RunsAs::Root,
        network: Network::Machine,
        demos: &[
            Demo {
                name: "hostname",
                about: "clone(CLONE_NEWUTS), then sethostname in the child: the name changes inside only",
                args: &["run", "--hostname", "box", "--", "hostname"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "default-hostname",
                about: "without --hostname, the container is named after its ID, as Docker does",
                args: &[
                    "run",
                    "--quiet",
                    "sh",
                    "-c",
                    "echo \"my hostname is $(hostname)\"",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "ipc",
                about: "clone(CLONE_NEWIPC): a new IPC namespace starts empty, and its queues die with it",
                args: &[
                    "run",
                    "--quiet",
                    "sh",
                    "-c",
                    "echo \"queues: $(tail -n +2 /proc/sysvipc/msg | wc -l)\"; ipcmk -Q >/dev/null; echo \"queues after ipcmk -Q: $(tail -n +2 /proc/sysvipc/msg | wc -l)\"",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "bad-hostname",
                about: "a setup step that fails in the child (a hostname has 64 bytes at most) is reported by the parent",
                args: &[
                    "run",
                    "--quiet",
                    "--hostname",
                    "a-hostname-that-is-much-too-long-for-the-kernel-which-allows-64-bytes",
                    "true",
                ],
                status: 125,
                show_status: true,
                alongside: None,
            },
        ],
        by_hand: ByHand {
            commands: &[
                "unshare --uts sh -c 'hostname box; hostname'",
                "[ \"$(hostname)\" != box ] && echo \"outside, the host kept its name\"",
                "unshare --uts sh -c 'hostname box; sleep 1' &",
                "sleep 0.3; nsenter --target $! --uts hostname; wait",
                "unshare --ipc sh -c 'ipcmk -Q >/dev/null; echo \"queues inside: $(tail -n +2 /proc/sysvipc/msg | wc -l)\"'",
            ],
            cleanup: "",
        },
    },
    Chapter {
        package: "ch04-mount-namespace",
        title: "the mount namespace",
        shows: "the child gets its own root filesystem (busybox), its own /proc, /dev and /sys; the host's files are out of reach",
        needs_root: true,
        needs_registry: false,
        runs_as: RunsAs::Root,
        network: Network::Machine,
        demos: &[
            Demo {
                name: "rootfs",
                about: "clone(CLONE_NEWNS), mounts, pivot_root: a busybox root, and ps sees only the container",
                args: &[
                    "run",
                    "--hostname",
                    "box",
                    "--",
                    "sh",
                    "-c",
                    "hostname; ps; ls /",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "dev",
                about: "a minimal /dev on a tmpfs: a few devices, pseudo-terminals, shared memory",
                args: &["run", "--quiet", "ls", "/dev"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "zombie",
                about: "with its own /proc, the container shows a zombie: an orphan that PID 1 never reaped",
                args: &[
                    "run",
                    "--quiet",
                    "sh",
                    "-c",
                    "sleep 0.1 & (sleep 0.5; ps -o pid,ppid,stat,comm) & exec sleep 1",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "pivot-root-holds",
                about: "after pivot_root, the classic chroot escape ends where it started",
                args: &[
                    "run",
                    "--quiet",
                    "chroot-escape",
                    "cat",
                    "/etc/minibox-release",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "chroot-escapes",
                about: "after chroot, a root process climbs out: /etc/minibox-release is gone, the host's / is its /",
                args: &[
                    "run",
                    "--quiet",
                    "--chroot",
                    "chroot-escape",
                    "cat",
                    "/etc/minibox-release",
                ],
                status: 1,
                show_status: true,
                alongside: None,
            },
            Demo {
                name: "not-found",
                about: "a command the root filesystem does not have: exit 127, and nothing stays mounted",
                args: &["run", "--quiet", "bash"],
                status: 127,
                show_status: true,
                alongside: None,
            },
            Demo {
                name: "bad-rootfs",
                about: "a root filesystem that does not exist: one line, exit 125, checked before anything is created",
                args: &["run", "--rootfs", "/no/such/rootfs", "sh"],
                status: 125,
                show_status: true,
                alongside: None,
            },
        ],
        by_hand: ByHand {
            commands: &[
                "unshare --mount --pid --fork sh -c '\n  mount --make-rprivate /\n  mount --bind \"$ROOTFS\" \"$ROOTFS\"\n  cd \"$ROOTFS\"\n  pivot_root . .\n  umount -l /\n  mount -t proc proc /proc\n  exec /bin/sh -c \"ps -o pid,comm; ls /\"\n'",
                "findmnt --noheadings --output TARGET \"$ROOTFS\" || echo \"the host never saw those mounts\"",
            ],
            cleanup: "",
        },
    },
    Chapter {
        package: "ch05-cgroups",
        title: "cgroups",
        shows: "the parent puts the child in a cgroup before it runs: memory, pids and CPU limits, enforced by the kernel",
        needs_root: true,
        needs_registry: false,
        runs_as: RunsAs::Root,
        network: Network::Machine,
        demos: &[
            Demo {
                name: "oom",
                about: "--memory 32m, and dd asks for 64 MiB at once: the kernel's OOM killer ends it, minibox says so",
                args: &[
                    "run",
                    "--memory",
                    "32m",
                    "--",
                    "dd",
                    "if=/dev/zero",
                    "of=/dev/null",
                    "bs=64M",
                    "count=1",
                ],
                status: 137,
                show_status: true,
                alongside: None,
            },
            Demo {
                name: "pids",
                about: "--pids-limit 10: fork fails past the limit, and the container carries on",
                args: &[
                    "run",
                    "--quiet",
                    "--pids-limit",
                    "10",
                    "--",
                    "sh",
                    "-c",
                    "sh -c \"for i in \\$(seq 20); do sleep 1 & done\" 2>&1 | tail -n 1; echo still running",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "cpus",
                about: "--cpus 0.2: a busy loop for 2 seconds gets about 0.4 s of CPU time",
                args: &[
                    "run",
                    "--quiet",
                    "--cpus",
                    "0.2",
                    "--stats",
                    "--",
                    "sh",
                    "-c",
                    "timeout 2 sh -c \"while :; do :; done\"; true",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "bad-memory",
                about: "Docker's rules for values: at least 6MB of memory; nothing is created",
                args: &["run", "--memory", "4m", "--", "true"],
                status: 125,
                show_status: true,
                alongside: None,
            },
        ],
        by_hand: ByHand {
            commands: &[
                "mkdir $CG",
                "echo 5 > $CG/pids.max",
                "sh -c \"echo \\$\\$ > $CG/cgroup.procs; for i in 1 2 3 4 5 6; do sleep 0.5 & done; wait\"",
                "cat $CG/pids.events",
                "sleep 1; rmdir $CG",
            ],
            cleanup: "[ -d \"$CG\" ] && { xargs -r kill -9 < \"$CG/cgroup.procs\"; sleep 0.2; rmdir \"$CG\"; }",
        },
    },
    Chapter {
        package: "ch06-rootfs-snapshot",
        title: "rootfs snapshots",
        shows: "an image is a read-only stack of layers; each container gets its own writable layer (overlayfs), and the image never changes",
        needs_root: true,
        needs_registry: false,
        runs_as: RunsAs::Root,
        network: Network::Machine,
        demos: &[
            Demo {
                name: "first-container",
                about: "a container writes /hello.txt into its own writable layer",
                args: &[
                    "run",
                    "--",
                    "sh",
                    "-c",
                    "echo hello > /hello.txt; cat /hello.txt",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "second-container",
                about: "a second container from the same image does not see it: the image never changed",
                args: &["run", "--quiet", "--", "cat", "/hello.txt"],
                status: 1,
                show_status: true,
                alongside: None,
            },
            Demo {
                name: "diff",
                about: "--diff: what the container added (A), changed (C) and deleted (D), read from its writable layer",
                args: &[
                    "run",
                    "--quiet",
                    "--diff",
                    "--",
                    "sh",
                    "-c",
                    "echo hi > /tmp/new; rm /etc/minibox-release; echo x >> /etc/group",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "copy",
                about: "--snapshotter copy: the same container from a full copy of the image (slow on purpose)",
                args: &[
                    "run",
                    "--snapshotter",
                    "copy",
                    "--",
                    "sh",
                    "-c",
                    "echo copied > /c.txt; cat /c.txt",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "bad-layer",
                about: "an image layer that does not exist: one line, exit 125, nothing created",
                args: &["run", "--layer", "/no/such/layer", "--", "true"],
                status: 125,
                show_status: true,
                alongside: None,
            },
        ],
        by_hand: ByHand {
            commands: &[
                "mkdir upper work merged",
                "mount -t overlay overlay -o lowerdir=$ROOTFS,upperdir=upper,workdir=work merged",
                "echo hello > merged/hello.txt; rm merged/etc/passwd; ls merged/etc",
                "find upper | sort",
                "stat -c '%n: %F' upper/etc/passwd",
                "ls $ROOTFS/etc; ls $ROOTFS/hello.txt 2>/dev/null || echo \"the image has no hello.txt\"",
                "umount merged",
            ],
            cleanup: "umount merged 2>/dev/null; true",
        },
    },
    Chapter {
        package: "ch07-image-pull",
        title: "image pull",
        shows: "images come from a registry: manifests, a config and layers, each checked against its sha256 digest, unpacked once into a shared store",
        needs_root: true,
        needs_registry: true,
        runs_as: RunsAs::Root,
        network: Network::Machine,
        demos: &[
            Demo {
                name: "pull",
                about: "minibox pull busybox: the manifest, the config, the layer (downloaded, verified, unpacked), then Docker's Digest and Status lines",
                args: &["pull", "busybox"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "run-pulls",
                about: "run an image the store lacks: Docker's 'Unable to find image' line, the pull, then the container",
                args: &["run", "hello-world", "/hello"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "cached",
                about: "the second time, the image is in the store: nothing is pulled",
                args: &[
                    "run",
                    "--quiet",
                    "busybox",
                    "echo",
                    "hi from a cached image",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "pull-again",
                about: "pulling what the store has asks the registry, downloads nothing, and says so",
                args: &["pull", "busybox"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "whiteouts",
                about: "a layer's whiteout deletes /etc/deleted and its opaque marker replaces /opaque: overlayfs shows the image's final state",
                args: &[
                    "run",
                    "--quiet",
                    "minibox/layered",
                    "sh",
                    "-c",
                    "cat /etc/kept; ls /etc/deleted; ls /opaque",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "platform",
                about: "a multi-platform image: the index lists one manifest per platform; --platform picks another than this machine's",
                args: &["pull", "--platform", "linux/arm64", "minibox/multi"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "images",
                about: "minibox images: Docker's table; busybox and minibox/layered share busybox's layer on disk, once",
                args: &["images"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "not-found",
                about: "a tag the registry does not have: the registry's answer in Docker's words, exit 125",
                args: &["run", "--quiet", "busybox:nosuch", "true"],
                status: 125,
                show_status: true,
                alongside: None,
            },
            Demo {
                name: "bad-reference",
                about: "a reference Docker would refuse: one line, exit status 1 as with docker pull, nothing contacted",
                args: &["pull", "Busybox"],
                status: 1,
                show_status: true,
                alongside: None,
            },
        ],
        by_hand: ByHand {
            commands: &[
                "curl -s http://$REGISTRY/v2/; echo",
                "curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' http://$REGISTRY/v2/library/hello-world/manifests/latest > manifest.json",
                "grep -o '\"\\(mediaType\\|digest\\)\":\"[^\"]*\"' manifest.json",
                "LAYER=$(grep -o 'sha256:[0-9a-f]*' manifest.json | tail -n 1)",
                "curl -s http://$REGISTRY/v2/library/hello-world/blobs/$LAYER > layer.tar.gz",
                "[ \"sha256:$(sha256sum < layer.tar.gz | cut -d ' ' -f 1)\" = \"$LAYER\" ] && echo \"the blob's sha256 is the digest the manifest named\"",
                "tar -tzf layer.tar.gz",
            ],
            cleanup: "",
        },
    },
    Chapter {
        package: "ch08-command-override",
        title: "the startup command",
        shows: "an image is a filesystem snapshot plus a startup command: the image's config says what to run, as whom, where, with which variables; the command line overrides it, by Docker's rules",
        needs_root: true,
        needs_registry: true,
        runs_as: RunsAs::Root,
        network: Network::Machine,
        demos: &[
            Demo {
                name: "hello-world",
                about: "minibox run hello-world: no command given, so the image's own (Cmd [\"/hello\"]) runs",
                args: &["run", "hello-world"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "default-command",
                about: "busybox's Cmd is sh; with no terminal on stdin, sh reads nothing and exits 0",
                args: &["run", "busybox"],
                status: 0,
                show_status: true,
                alongside: None,
            },
            Demo {
                name: "override",
                about: "arguments after the image replace its Cmd",
                args: &["run", "--quiet", "busybox", "echo", "hi"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "no-shell",
                about: "hello-world has no ls: looked up on the container's PATH, inside its root, and not found",
                args: &["run", "--quiet", "hello-world", "ls"],
                status: 127,
                show_status: true,
                alongside: None,
            },
            Demo {
                name: "entrypoint-and-cmd",
                about: "Entrypoint [\"echo\", \"hello\"] plus Cmd [\"world\"]; arguments replace only the Cmd",
                args: &["run", "--quiet", "minibox/echo", "there"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "entrypoint-flag",
                about: "--entrypoint replaces the Entrypoint and drops the image's Cmd",
                args: &[
                    "run",
                    "--quiet",
                    "--entrypoint",
                    "uname",
                    "minibox/echo",
                    "-s",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "env-user-workdir",
                about: "-e adds to the image's Env; -u resolves nobody through the image's /etc/passwd; -w is created if missing",
                args: &[
                    "run",
                    "--quiet",
                    "-e",
                    "GREETING=hello",
                    "-u",
                    "nobody",
                    "-w",
                    "/tmp/work",
                    "busybox",
                    "sh",
                    "-c",
                    "echo \"$GREETING from $(pwd) as $(id -un) ($(id -u)), PATH=$PATH\"",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "cannot-invoke",
                about: "a file that is not executable: Docker's message and exit status 126",
                args: &["run", "--quiet", "busybox", "/etc/passwd"],
                status: 126,
                show_status: true,
                alongside: None,
            },
        ],
        by_hand: ByHand {
            commands: &[
                "curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' http://$REGISTRY/v2/minibox/echo/manifests/latest > manifest.json",
                "CONFIG=$(grep -o 'sha256:[0-9a-f]*' manifest.json | head -n 1)",
                "curl -s http://$REGISTRY/v2/minibox/echo/blobs/$CONFIG | grep -o '\"\\(Entrypoint\\|Cmd\\|Env\\)\":\\[[^]]*\\]'",
                "chroot $ROOTFS echo hello world",
                "chroot $ROOTFS echo hello there",
            ],
            cleanup: "",
        },
    },
    Chapter {
        package: "ch09-networking",
        title: "networking",
        shows: "the child gets a network namespace of its own, wired to the host by a veth pair on the minibox0 bridge: an address, a default route, NAT on the way out, published ports on the way in (here, the host is a network namespace made for the tour)",
        needs_root: true,
        needs_registry: true,
        runs_as: RunsAs::Root,
        network: Network::Namespace {
            pulled: &["busybox", "redis"],
        },
        demos: &[
            Demo {
                name: "narration",
                about: "clone(CLONE_NEWNET), then, while the child waits, the parent wires its network: a veth pair, eth0 in the child's namespace, the other end on minibox0",
                args: &["run", "busybox", "ip", "-o", "-4", "addr", "show", "eth0"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "none",
                about: "--network none: a network namespace with nothing in it but lo, so no packet can leave",
                args: &[
                    "run",
                    "--quiet",
                    "--network",
                    "none",
                    "busybox",
                    "sh",
                    "-c",
                    "ip link; ping -c 1 172.29.0.1",
                ],
                status: 1,
                show_status: true,
                alongside: None,
            },
            Demo {
                name: "bridge",
                about: "the default network, bridge: eth0 with the first free address of 172.29.0.0/16, and a default route through the bridge",
                args: &[
                    "run",
                    "--quiet",
                    "busybox",
                    "sh",
                    "-c",
                    "ip -o -4 addr show eth0; ip route",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "etc-files",
                about: "--add-host and --dns: minibox writes the container's own /etc/hosts and /etc/resolv.conf and mounts them over the image's (the rest of resolv.conf is the host's)",
                args: &[
                    "run",
                    "--quiet",
                    "--add-host",
                    "db:10.0.0.5",
                    "--dns",
                    "9.9.9.9",
                    "busybox",
                    "sh",
                    "-c",
                    "cat /etc/hosts; grep nameserver /etc/resolv.conf",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "host",
                about: "--network host: no network namespace of its own; the container sees the host's links, minibox0 among them",
                args: &[
                    "run",
                    "--quiet",
                    "--network",
                    "host",
                    "busybox",
                    "ls",
                    "/sys/class/net",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "redis",
                about: "-p 6379:6379: minibox listens on the host's port 6379 and forwards each connection into the container; then minibox passes SIGTERM on to redis, which saves its data and exits 0",
                args: &["run", "--quiet", "-p", "6379:6379", "redis"],
                status: 0,
                show_status: true,
                alongside: Some(Alongside {
                    detached: false,
                    ready: "redis-cli -p 6379 ping",
                    commands: &[
                        "redis-cli -p 6379 ping",
                        "redis-cli -p 6379 set greeting hello",
                        "redis-cli -p 6379 get greeting",
                    ],
                }),
            },
            Demo {
                name: "port-taken",
                about: "one host port for two container ports: the second bind fails, in Docker's words, exit 125, before anything is created",
                args: &[
                    "run", "--quiet", "-p", "8080:80", "-p", "8080:81", "busybox", "true",
                ],
                status: 125,
                show_status: true,
                alongside: None,
            },
            Demo {
                name: "bad-port",
                about: "a port that is not a number: Docker's message, exit 125",
                args: &["run", "--quiet", "-p", "80:abc", "busybox", "true"],
                status: 125,
                show_status: true,
                alongside: None,
            },
            Demo {
                name: "unknown-network",
                about: "a network minibox does not have: one line, exit 125",
                args: &["run", "--quiet", "--network", "nope", "busybox", "true"],
                status: 125,
                show_status: true,
                alongside: None,
            },
        ],
        by_hand: ByHand {
            commands: &[
                "ip link add br-byhand type bridge",
                "ip addr add 10.200.0.1/24 dev br-byhand",
                "ip link set br-byhand up",
                "unshare --net sleep 60 &",
                "PID=$!; echo $PID > sleep.pid",
                "while [ \"$(readlink /proc/$PID/ns/net)\" = \"$(readlink /proc/$$/ns/net)\" ]; do sleep 0.1; done",
                "ip link add veth-byhand type veth peer name eth0 netns $PID",
                "ip link set veth-byhand master br-byhand",
                "ip link set veth-byhand up",
                "nsenter --net --target $PID ip addr add 10.200.0.2/24 dev eth0",
                "nsenter --net --target $PID ip link set eth0 up",
                "nsenter --net --target $PID ip link set lo up",
                "nsenter --net --target $PID ip route add default via 10.200.0.1",
                "nsenter -n -t $PID ping -c 1 -W 2 10.200.0.1 > /dev/null && echo \"the gateway answers\"",
                "nsenter -n -t $PID ip -o -4 addr",
                "nsenter -n -t $PID ip route",
                "kill $PID",
            ],
            cleanup: "P=$(cat sleep.pid 2>/dev/null) && grep -q \"^PPid:[[:space:]]*$$\\$\" /proc/$P/status 2>/dev/null && { kill $P; wait $P; } 2>/dev/null; true",
        },
    },
    Chapter {
        package: "ch10-runtime",
        title: "the runtime",
        shows: "containers outlive the command that started them: run -d hands the container to a monitor process and returns, and ps, logs, exec, stop and rm act on it later, from any terminal, through the state minibox keeps on disk; then a terminal (-t), an init (--init), a named volume (-v), create and start, a restart policy, tag and rmi, and redis in the background (here, the host is a network namespace made for the tour)",
        needs_root: true,
        needs_registry: true,
        runs_as: RunsAs::Root,
        network: Network::Namespace {
            pulled: &["busybox", "redis"],
        },
        demos: &[
            Demo {
                name: "run-detached",
                about: "run -d: a monitor process starts the container and stays as its parent; minibox prints the container's ID and returns (ping -i 60: one ping a minute, so its log stays short)",
                args: &["run", "-d", "busybox", "ping", "-i", "60", "172.29.0.1"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "ps",
                about: "ps, from any terminal: each container's record and state, read from disk and checked against the living processes; the name was generated",
                args: &["ps"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "logs",
                about: "logs: what the container wrote, which its monitor copied into a json-file log",
                args: &["logs", LATEST],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "exec-hostname",
                about: "exec: a new process joins the container's namespaces with setns(2); its hostname is the container's",
                args: &["exec", LATEST, "hostname"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "exec-ps",
                about: "inside, ps sees ping as PID 1, and itself: exec's second fork was born in the container's PID namespace",
                args: &["exec", LATEST, "ps"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "rm-running",
                about: "rm refuses a running container, in Docker's words, exit 1 (rm -f would kill it first)",
                args: &["rm", LATEST],
                status: 1,
                show_status: true,
                alongside: None,
            },
            Demo {
                name: "stop",
                about: "stop: SIGTERM, which ping ignores (it is PID 1 and has no handler for it), then, 2 seconds later (-t; 10 by default), SIGKILL",
                args: &["stop", "-t", "2", LATEST],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "ps-all",
                about: "ps -a: stopped containers too; its monitor recorded the exit status, 137 = 128 + 9 (SIGKILL)",
                args: &["ps", "-a"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "exec-stopped",
                about: "exec needs a running process to join: Docker's message, exit 1",
                args: &["exec", LATEST, "hostname"],
                status: 1,
                show_status: true,
                alongside: None,
            },
            Demo {
                name: "rm",
                about: "rm: the container's record, state, writable layer and log, gone",
                args: &["rm", LATEST],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "no-tty",
                about: "without -t the container's stdout is a pipe to its monitor: tty says so, and exits 1",
                args: &["run", "--rm", "busybox", "tty"],
                status: 1,
                show_status: true,
                alongside: None,
            },
            Demo {
                name: "tty",
                about: "-t: the container opens a pty in its own devpts, after pivot_root, and sends the master to its monitor over the console socket; the first one there is /dev/pts/0",
                args: &["run", "--rm", "-t", "busybox", "tty"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "zombie",
                about: "without an init: the subshell leaves sleep 0.1 an orphan, given to PID 1, which by then is sleep 1 and never waits; half a second later ps sees the zombie (Z), its parent 1",
                args: &[
                    "run",
                    "--rm",
                    "busybox",
                    "sh",
                    "-c",
                    "(sleep 0.1 &); (sleep 0.5; ps -o pid,ppid,stat,comm) & exec sleep 1",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "init",
                about: "--init: PID 1 is minibox's init, run from a sealed in-memory copy of minibox (memfd:minibox), the command its child; the orphan came to the init, which reaped it: no zombie",
                args: &[
                    "run",
                    "--rm",
                    "--init",
                    "busybox",
                    "sh",
                    "-c",
                    "(sleep 0.1 &); (sleep 0.5; ps -o pid,ppid,stat,comm) & exec sleep 1",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "init-detached",
                about: "a container with an init, in the background: sleep is the init's child",
                args: &["run", "-d", "--init", "busybox", "sleep", "600"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "exec-tty",
                about: "exec -t: a pty for the new process too, from the container's devpts, which has none in use yet",
                args: &["exec", "-t", LATEST, "tty"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "init-stop",
                about: "stop with an init: the init has SIGTERM blocked and takes it, passes it on to sleep, and exits as sleep did; stop returns at once, no SIGKILL needed",
                args: &["stop", LATEST],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "init-stopped",
                about: "ps -l: the latest container, ended by SIGTERM: 143 = 128 + 15",
                args: &["ps", "-l"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "volume-write",
                about: "-v notes:/srv: a named volume, made on first use; the container writes into it, and the volume outlives the container (--rm)",
                args: &[
                    "run",
                    "--rm",
                    "-v",
                    "notes:/srv",
                    "busybox",
                    "sh",
                    "-c",
                    "echo \"written by $(hostname)\" | tee /srv/note",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "volume-read-only",
                about: "a second container finds the first one's note in the volume; with :ro, the kernel refuses its write",
                args: &[
                    "run",
                    "--rm",
                    "-v",
                    "notes:/srv:ro",
                    "busybox",
                    "sh",
                    "-c",
                    "cat /srv/note; echo more >> /srv/note",
                ],
                status: 1,
                show_status: true,
                alongside: None,
            },
            Demo {
                name: "volume-ls",
                about: "volume ls: the named volume, still there with no container",
                args: &["volume", "ls"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "create",
                about: "create: the container on disk, its record and snapshot, and nothing running",
                args: &[
                    "create",
                    "--name",
                    "counter",
                    "busybox",
                    "sh",
                    "-c",
                    "echo started >> /starts; echo \"start number $(wc -l < /starts)\"",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "created",
                about: "ps -l: the latest container, Created",
                args: &["ps", "-l"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "start-attached",
                about: "start -a: the monitor starts it, attached, and minibox exits with its status",
                args: &["start", "-a", "counter"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "start-again",
                about: "start -a again: the same container, the same writable layer, so /starts has one more line",
                args: &["start", "-a", "counter"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "restart-policy",
                about: "--restart on-failure:2: the container exits 3, and its monitor schedules a start again, twice, 100 then 200 ms later (the demo waits, unshown, until the policy is done)",
                args: &[
                    "run",
                    "-d",
                    "--restart",
                    "on-failure:2",
                    "busybox",
                    "sh",
                    "-c",
                    "echo run >> /runs; echo \"run $(wc -l < /runs), exit 3\"; exit 3",
                ],
                status: 0,
                show_status: false,
                alongside: Some(Alongside {
                    detached: true,
                    // Unshown: the state file says exited, after two restarts.
                    ready: "grep -l '\"restart_count\": 2' \"$MINIBOX_RUN\"/*/state.json | xargs -r grep -l '\"status\": \"exited\"' | grep -q .",
                    commands: &[],
                }),
            },
            Demo {
                name: "restart-logs",
                about: "logs: one log for the three starts, each a run of the same writable layer",
                args: &["logs", LATEST],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "restart-ps",
                about: "ps -l: exited with 3 after its two restarts; the policy gave up",
                args: &["ps", "-l"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "rmi-used",
                about: "rmi refuses to take busybox's last name while containers were made from it, in Docker's words, exit 1",
                args: &["rmi", "busybox"],
                status: 1,
                show_status: true,
                alongside: None,
            },
            Demo {
                name: "tag",
                about: "tag: a second name for redis's image, which no container uses yet",
                args: &["tag", "redis", "my-redis"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "rmi-name",
                about: "rmi of a name that is not the last: only the name goes, the image stays",
                args: &["rmi", "my-redis"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "redis",
                about: "the seed's redis, detached and named: the container's monitor holds the published port, and redis-cli on the host gets PONG after minibox has returned",
                args: &["run", "-d", "--name", "cache", "-p", "6379:6379", "redis"],
                status: 0,
                show_status: false,
                alongside: Some(Alongside {
                    detached: true,
                    ready: "redis-cli -p 6379 ping",
                    commands: &["redis-cli -p 6379 ping"],
                }),
            },
        ],
        by_hand: ByHand {
            commands: &[
                "setsid -f sh -c 'echo $$ > unshare.pid; exec unshare --uts --pid --fork --mount-proc sh -c \"hostname byhand; echo hello from the box; exec sleep 600\"' < /dev/null > box.log 2>&1",
                "sleep 1; PID=$(pgrep -P \"$(cat unshare.pid)\"); echo $PID > box.pid",
                "[ \"$(ps -o ppid= -p \"$(cat unshare.pid)\")\" -ne $$ ] && echo \"unshare is not this shell's child: setsid -f forked it, and exited\"",
                "[ \"$(ps -o sid= -p $PID)\" -eq \"$(cat unshare.pid)\" ] && echo \"sleep is in unshare's session, which has no terminal: $(ps -o tty= -p $PID)\"",
                "cat box.log",
                "nsenter --target $PID --all hostname",
                "nsenter --target $PID --all ps -o pid,comm",
                "kill $PID; sleep 1; kill -0 $PID && echo \"still running: as PID 1, sleep has no handler for SIGTERM\"",
                "kill -KILL $PID 2>/dev/null; sleep 0.2; kill -0 $PID 2>/dev/null || echo \"gone: SIGKILL from the host is never ignored\"",
            ],
            cleanup: "P=$(cat box.pid 2>/dev/null) && [ \"$(cat /proc/$P/comm 2>/dev/null)\" = sleep ] && kill -KILL $P; true",
        },
    },
    Chapter {
        package: "ch11-build",
        title: "building images",
        shows: "a Dockerfile becomes an image: each RUN is a container whose writable layer becomes a layer, COPY goes through an overlay of the image so far, every step has a cache key, and a second build is all cache; the image runs, and save writes it in the OCI image layout",
        needs_root: true,
        needs_registry: true,
        runs_as: RunsAs::Root,
        network: Network::Machine,
        demos: &[
            Demo {
                name: "build",
                about: "build: two stages; busybox is pulled first, each RUN runs in a container (---> Running in ...), each step ends with the ID of the image so far",
                args: &[
                    "build",
                    "--network",
                    "none",
                    "-t",
                    "greet",
                    "chapters/ch11-build/examples/greet",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "build-again",
                about: "the same build again: every step's key is found in the cache, and the image is the same",
                args: &[
                    "build",
                    "--network",
                    "none",
                    "-t",
                    "greet",
                    "chapters/ch11-build/examples/greet",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "run",
                about: "the image runs with chapter 10: its ENTRYPOINT and CMD, its ENV, WORKDIR and USER",
                args: &["run", "--rm", "--network", "none", "greet"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "deleted",
                about: "a RUN deleted /bin/vi from busybox's layer: the layer holds a whiteout, and the file is gone",
                args: &[
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "--entrypoint",
                    "ls",
                    "greet",
                    "/bin/vi",
                ],
                status: 1,
                show_status: true,
                alongside: None,
            },
            Demo {
                name: "tag",
                about: "tag: a second name, in the fixture registry's namespace (its host:port first)",
                args: &["tag", "greet", "{registry}/me/greet:1"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "push",
                about: "push: each blob the repository does not have is uploaded (a HEAD asks first), busybox's layer mounted from library/busybox, which the same registry has, then the manifest",
                args: &["push", "{registry}/me/greet:1"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "run-pushed",
                about: "run --pull always: the image pulled back from the registry, as any machine would, and run",
                args: &[
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "--pull",
                    "always",
                    "{registry}/me/greet:1",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "ignored",
                about: ".dockerignore keeps secret.txt out of the context: a COPY of it fails as if it were not there, exit 1",
                args: &[
                    "build",
                    "--network",
                    "none",
                    "-f",
                    "chapters/ch11-build/examples/ignored.Dockerfile",
                    "chapters/ch11-build/examples/greet",
                ],
                status: 1,
                show_status: true,
                alongside: None,
            },
        ],
        by_hand: ByHand {
            commands: &[
                "mkdir lower upper work merged",
                "echo hello > lower/greeting; mkdir lower/app; echo v1 > lower/app/config",
                "mount -t overlay overlay -o lowerdir=lower,upperdir=upper,workdir=work merged",
                "rm merged/greeting; echo v2 > merged/app/config; echo new > merged/notes",
                "umount merged",
                "find upper -mindepth 1 | sort",
                "stat -c '%n: %F %t,%T' upper/greeting",
                "tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C upper -cf layer.tar .",
                "tar -tf layer.tar",
                "sha256sum layer.tar | cut -c1-64",
                "gzip -n -k layer.tar; sha256sum layer.tar.gz | cut -c1-64",
            ],
            cleanup: "umount merged 2>/dev/null; true",
        },
    },
    Chapter {
        package: "ch12-security",
        title: "security",
        shows: "a container's root loses most of root's power: Docker's 14 capabilities, a seccomp filter, masked and read-only paths, device rules; each attack that worked in chapter 11 fails, and --privileged gives it all back",
        needs_root: true,
        needs_registry: true,
        runs_as: RunsAs::Root,
        network: Network::Machine,
        demos: &[
            Demo {
                name: "status",
                about: "what the kernel says of a default container's process: Docker's 14 capabilities (a80425fb) in the bounding, permitted and effective sets, none inheritable or ambient, a seccomp filter (2)",
                args: &[
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "busybox",
                    "grep",
                    "-E",
                    "^(Cap|NoNewPrivs|Seccomp:)",
                    "/proc/self/status",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "attacks",
                about: "the probe tries what a container must not do: every attempt is refused (EPERM from seccomp or a missing capability, EROFS from a read-only path); ptrace of its own child Docker allows",
                args: &["run", "--rm", "--network", "none", "minibox/probe"],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "mount",
                about: "mount needs CAP_SYS_ADMIN, which is gone (and seccomp refuses the call before the kernel looks): EPERM, exit 1",
                args: &[
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "busybox",
                    "mount",
                    "-t",
                    "tmpfs",
                    "none",
                    "/mnt",
                ],
                status: 1,
                show_status: true,
                alongside: None,
            },
            Demo {
                name: "proc",
                about: "/proc/keys, the kernel's keyrings, is /dev/null now (0 bytes), and /proc/sys is read-only",
                args: &[
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "busybox",
                    "sh",
                    "-c",
                    "exec 2>&1; wc -c < /proc/keys; echo box > /proc/sys/kernel/hostname",
                ],
                status: 1,
                show_status: true,
                alongside: None,
            },
            Demo {
                name: "cap-drop",
                about: "--cap-drop CHOWN: root can no longer give a file away",
                args: &[
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "--cap-drop",
                    "CHOWN",
                    "busybox",
                    "chown",
                    "nobody",
                    "/tmp",
                ],
                status: 1,
                show_status: true,
                alongside: None,
            },
            Demo {
                name: "privileged",
                about: "--privileged gives it all back: every capability, no seccomp filter",
                args: &[
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "--privileged",
                    "busybox",
                    "grep",
                    "-E",
                    "^(CapEff|Seccomp:)",
                    "/proc/self/status",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "read-only",
                about: "--read-only: the root cannot be written, a --tmpfs can",
                args: &[
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "--read-only",
                    "--tmpfs",
                    "/tmp",
                    "busybox",
                    "sh",
                    "-c",
                    "exec 2>&1; touch /etc/x; touch /tmp/x && echo /tmp is writable",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "ulimit",
                about: "--ulimit nofile=64:128: the soft and hard limits on open files",
                args: &[
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "--ulimit",
                    "nofile=64:128",
                    "busybox",
                    "sh",
                    "-c",
                    "ulimit -n; ulimit -Hn",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "unknown-cap",
                about: "a capability Linux does not have: Docker's message, exit 125, nothing created",
                args: &["run", "--rm", "--cap-add", "FOO", "busybox", "true"],
                status: 125,
                show_status: true,
                alongside: None,
            },
        ],
        by_hand: ByHand {
            commands: &[
                "grep -E '^Cap(Prm|Eff|Bnd)' /proc/self/status",
                "capsh --decode=00000000a80425fb",
                "setpriv --bounding-set=-all -- grep -E '^Cap(Prm|Eff)' /proc/self/status",
                "setpriv --bounding-set=-sys_admin -- unshare --mount true",
                "setpriv --bounding-set=-all,+sys_admin -- unshare --mount true && echo unshare works with CAP_SYS_ADMIN alone",
                "setpriv --no-new-privs -- grep NoNewPrivs /proc/self/status",
                "unshare --mount --propagation private sh -c 'mount --bind /dev/null /proc/keys; wc -c /proc/keys'",
            ],
            cleanup: "true",
        },
    },
    Chapter {
        package: "ch13-rootless",
        title: "rootless containers",
        shows: "an ordinary user runs containers, no sudo: minibox joins a user namespace (held by a pause process) in which the user's own ID is root and a subordinate range, granted in /etc/subuid, stands for the image's other users; images live in the user's home; what only the host's root may do (a device, the clock, a limit without a delegated cgroup, a bridge) is still refused (here, the user is one the tour made, and the host is a network namespace made for the tour)",
        needs_root: true,
        needs_registry: true,
        runs_as: RunsAs::User,
        network: Network::Namespace {
            pulled: &["busybox", "minibox/multi-user", "minibox/probe", "redis"],
        },
        demos: &[
            Demo {
                name: "id",
                about: "as learner (UID 1001), the container's process is root: its user namespace maps ID 0 onto 1001, and IDs 1 to 65536 onto the subordinate range 100000-165535, which newuidmap wrote from /etc/subuid",
                args: &[
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "busybox",
                    "sh",
                    "-c",
                    "id; cat /proc/self/uid_map",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "owners",
                about: "an image with three owners keeps them: 1000 and 65534 inside are 100999 and 165533 on the host, and the set-user-ID bit of app's program stays",
                args: &[
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "minibox/multi-user",
                    "stat",
                    "-c",
                    "%u:%g %a %n",
                    "/home/app",
                    "/home/app/notes",
                    "/srv/nobody",
                    "/usr/local/bin/as-app",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "what-root-cannot",
                about: "--privileged: every capability, no seccomp filter, yet only within the user namespace: mount works (the container's own mount namespace), while BPF, file handles, the clock, a host sysctl and a block device stay the host's root's",
                args: &[
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "--privileged",
                    "minibox/probe",
                    "probe",
                    "mount",
                    "bpf",
                    "open_by_handle_at",
                    "settimeofday",
                    "sysctl",
                    "mknod-block",
                ],
                status: 0,
                show_status: false,
                alongside: None,
            },
            Demo {
                name: "limit-refused",
                about: "a limit needs a cgroup the user may write, a subtree delegated to them on cgroup v2; this host's cgroups are hybrid and delegate nothing: one line, exit 125",
                args: &[
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "--memory",
                    "32m",
                    "busybox",
                    "true",
                ],
                status: 125,
                show_status: true,
                alongside: None,
            },
            Demo {
                name: "bridge-refused",
                about: "a bridge and its veths live in the host's network namespace, which only the host's root may change: one line, exit 125",
                args: &["run", "--rm", "--network", "bridge", "busybox", "true"],
                status: 125,
                show_status: true,
                alongside: None,
            },
            Demo {
                name: "publish",
                about: "the default network, rootless: the container's own namespace, connected by slirp4netns (the demos' namespace has no uplink for pasta to copy), which listens on the host's port 6379 as the user and forwards into the container; redis-cli on the host's side answers, then SIGTERM reaches redis, which exits 0",
                args: &["run", "--quiet", "-p", "6379:6379", "redis"],
                status: 0,
                show_status: true,
                alongside: Some(Alongside {
                    detached: false,
                    ready: "redis-cli -p 6379 ping",
                    commands: &[
                        "redis-cli -p 6379 ping",
                        "redis-cli -p 6379 set greeting hello",
                        "redis-cli -p 6379 get greeting",
                    ],
                }),
            },
        ],
        by_hand: ByHand {
            commands: &[
                "nobody='setpriv --reuid=65534 --regid=65534 --clear-groups'; $nobody id",
                "$nobody unshare --user --map-root-user sh -c 'id; cat /proc/self/uid_map /proc/self/setgroups'",
                "mkdir shared; chown 65534:65534 shared; $nobody unshare --user --map-root-user sh -c 'touch shared/made; stat -c \"inside: %u:%g %n\" shared/made'",
                "stat -c 'outside: %u:%g %n' shared/made",
                "$nobody unshare --user --map-root-user --mount --net sh -c 'mount -t tmpfs tmpfs /mnt && echo a tmpfs on /mnt; ip link add v0 type veth peer name v1 && echo a veth pair in its own network namespace'",
                "$nobody unshare --user --map-root-user ip link add v0 type veth peer name v1; echo \"exit status $?\"",
            ],
            cleanup: "",
        },
    },
    Chapter {
        package: "ch14-oci-runtime",
        title: "the OCI runtime interface",
        shows: "minibox-runc, a second binary with runc's command line: a bundle (a root filesystem and config.json) is created, its init waiting on the exec FIFO, then started, killed and deleted, as podman, Docker and containerd drive a runtime",
        needs_root: true,
        needs_registry: false,
        runs_as: RunsAs::Root,
        network: Network::Machine,
        demos: &[],
        by_hand: ByHand {
            commands: &[
                "mkdir -p bundle/rootfs && cp -a $ROOTFS/. bundle/rootfs",
                "cd bundle && runc spec && ls",
                "sed -i -e 's/\"terminal\": true/\"terminal\": false/' \\\n  -e 's/^\\(\\s*\\)\"sh\"$/\\1\"sleep\", \"600\"/' \\\n  -e 's/\"linux\": {/&\\n\\t\\t\"cgroupsPath\": \"runc-by-hand\",/' config.json",
                "grep -E '\"terminal\"|\"sleep\"|\"cgroupsPath\"' config.json",
                "runc --root ../state create demo",
                "runc --root ../state state demo; echo",
                "stat -c '%F: %n' ../state/demo/*",
                "PID=$(runc --root ../state state demo | sed -n 's/.*\"pid\": \\([0-9]*\\),/\\1/p')",
                "echo \"PID $PID runs $(xargs -0 < /proc/$PID/cmdline) and sleeps in the kernel's $(cat /proc/$PID/wchan)\"",
                "runc --root ../state start demo",
                "runc --root ../state state demo | grep status; ls ../state/demo",
                "echo \"PID $PID runs $(xargs -0 < /proc/$PID/cmdline)\"",
                "runc --root ../state kill demo KILL; sleep 0.2; runc --root ../state state demo | grep status",
                "runc --root ../state delete demo; runc --root ../state list",
            ],
            cleanup: "runc --root \"$WORKDIR/state\" delete --force demo > /dev/null 2>&1; true",
        },
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chapters_are_numbered_in_order_and_match_their_directories() {
        let root = crate::transcript::workspace_root();
        for (i, chapter) in CHAPTERS.iter().enumerate() {
            assert_eq!(chapter.number() as usize, i + 1, "{}", chapter.package);
            assert!(
                root.join("chapters").join(chapter.package).is_dir(),
                "{} has no directory",
                chapter.package
            );
        }
        // And every chapter directory is in the table.
        let dirs = std::fs::read_dir(root.join("chapters")).unwrap().count();
        assert_eq!(dirs, CHAPTERS.len(), "chapters/ and CHAPTERS disagree");
    }

    #[test]
    fn a_chapter_whose_demos_run_as_a_user_needs_root_to_make_it() {
        for chapter in CHAPTERS.iter().filter(|c| c.runs_as == RunsAs::User) {
            assert!(chapter.needs_root, "{}", chapter.package);
        }
        assert!(CHAPTERS.iter().any(|c| c.runs_as == RunsAs::User));
    }
}
