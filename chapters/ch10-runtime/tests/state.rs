//! The container store on real files in a temporary directory: records and
//! states on disk, Docker's messages, lookups, renames, liveness by PID and
//! start time, and removal. (Concurrency is in `state_concurrency.rs`.)

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use ch09_networking::ipam::Holder;
use ch10_runtime::state::{
    self, Keep, Removal, State, Status, Store, StoreError, UNKNOWN_EXIT_CODE, timestamp,
};
use serde::{Deserialize, Serialize};
use tempfile::TempDir;

/// What a chapter might keep in a record; the store only carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Config {
    image: String,
    command: Vec<String>,
}

fn config(command: &str) -> Config {
    Config {
        image: "busybox".into(),
        command: command.split(' ').map(String::from).collect(),
    }
}

fn store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(&dir.path().join("root"), &dir.path().join("run"));
    (dir, store)
}

/// Every entry of the two directories whose name starts with a dot: what a
/// half-done creation or removal would leave.
fn leftovers(dir: &TempDir) -> Vec<PathBuf> {
    ["root/containers", "run"]
        .iter()
        .flat_map(|d| fs::read_dir(dir.path().join(d)).into_iter().flatten())
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect()
}

fn entries(dir: &Path) -> usize {
    fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// The `StoreError` inside `err`, or a panic saying what came instead.
fn kind(err: &anyhow::Error) -> &StoreError {
    err.downcast_ref::<StoreError>()
        .unwrap_or_else(|| panic!("not a StoreError: {err:#}"))
}

#[test]
fn a_created_container_is_whole_on_disk() {
    let (dir, store) = store();
    let record = store.create(Some("web"), config("sleep 60")).unwrap();
    assert_eq!(record.id.len(), 64);
    assert!(
        record
            .id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(record.short_id(), &record.id[..12]);
    assert_eq!(record.name, "web");

    let container_dir = store.container_dir(&record.id);
    assert_eq!(
        container_dir,
        dir.path().join("root/containers").join(&record.id)
    );
    let mode = fs::metadata(&container_dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    let on_disk: serde_json::Value =
        serde_json::from_slice(&fs::read(container_dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(on_disk["name"], "web");
    assert_eq!(on_disk["config"]["command"][0], "sleep");
    let created = on_disk["created"].as_str().unwrap();
    assert!(created.ends_with('Z'), "{created}");
    assert_eq!(timestamp::parse(created).unwrap(), record.created);

    let runtime_dir = store.runtime_dir(&record.id);
    assert!(runtime_dir.join("lock").is_file());
    let state: serde_json::Value =
        serde_json::from_slice(&fs::read(runtime_dir.join("state.json")).unwrap()).unwrap();
    assert_eq!(state["status"], "created");
    assert_eq!(state["finished_at"], "0001-01-01T00:00:00Z");
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));

    for reference in ["web", "/web", record.id.as_str(), record.short_id()] {
        let found = store.get::<Config>(reference).unwrap();
        assert_eq!(found.record, record, "{reference}");
        assert_eq!(found.state, State::default());
    }
}

#[test]
fn a_taken_name_is_refused_with_dockers_message_and_nothing_changes() {
    let (dir, store) = store();
    let web = store.create(Some("web"), config("true")).unwrap();
    for name in ["web", "/web"] {
        let err = store.create(Some(name), config("false")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "Conflict. The container name \"/web\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                web.id
            )
        );
        assert_eq!(
            kind(&err),
            &StoreError::NameInUse {
                name: "web".into(),
                id: web.id.clone()
            }
        );
    }
    let err = store.create(Some("-web"), config("false")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Invalid container name (-web), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
    );
    assert_eq!(store.list::<Config>().unwrap().len(), 1);
    assert_eq!(entries(&dir.path().join("root/containers")), 1);
    assert_eq!(entries(&dir.path().join("run")), 1);
}

#[test]
fn generated_names_are_adjective_surname_and_distinct() {
    let (_dir, store) = store();
    let mut names = std::collections::HashSet::new();
    for _ in 0..20 {
        let record = store.create(None, config("true")).unwrap();
        let (adjective, person) = record.name.split_once('_').unwrap();
        assert!(ch10_runtime::names::ADJECTIVES.contains(&adjective));
        assert!(
            ch10_runtime::names::PEOPLE
                .contains(&person.trim_end_matches(|c: char| c.is_ascii_digit()))
        );
        assert!(names.insert(record.name.clone()), "{} twice", record.name);
        assert_eq!(store.resolve(&record.name).unwrap(), record.id);
    }
}

#[test]
fn lookups_by_prefix_are_unique_ambiguous_or_missing() {
    let (_dir, store) = store();
    // 17 IDs: two must share their first hex digit (pigeonhole).
    let ids: Vec<String> = (0..17)
        .map(|_| store.create(None, config("true")).unwrap().id)
        .collect();
    let shared = (0..16)
        .map(|d| format!("{d:x}"))
        .find(|d| ids.iter().filter(|id| id.starts_with(d.as_str())).count() > 1)
        .unwrap();
    let err = store.resolve(&shared).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("multiple IDs found with provided prefix: {shared}")
    );
    assert_eq!(kind(&err), &StoreError::AmbiguousPrefix(shared.clone()));

    for id in &ids {
        assert_eq!(&store.resolve(&id[..12]).unwrap(), id);
        assert_eq!(&store.resolve(id).unwrap(), id);
    }
    let unused = (0..256)
        .map(|n| format!("{n:02x}"))
        .find(|p| !ids.iter().any(|id| id.starts_with(p.as_str())))
        .unwrap();
    for missing in [
        unused.as_str(),
        "nosuch",
        "/nosuch",
        &format!("{}0", ids[0]),
    ] {
        let err = store.resolve(missing).unwrap_err();
        assert_eq!(err.to_string(), format!("No such container: {missing}"));
        let err = store.get::<Config>(missing).unwrap_err();
        assert_eq!(
            kind(&err),
            &StoreError::NoSuchContainer(missing.to_string())
        );
    }
    let err = store.resolve("").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid container name or ID: value is empty"
    );

    // A name wins over an ID prefix, and a full ID over a name, as in Docker.
    let a = ids[0].clone();
    let b = store.create(Some(&a[..12]), config("true")).unwrap();
    assert_eq!(store.resolve(&a[..12]).unwrap(), b.id);
    assert_eq!(store.resolve(&a).unwrap(), a);
}

#[test]
fn the_list_is_newest_first() {
    let (_dir, store) = store();
    let made: Vec<String> = (0..5)
        .map(|i| {
            store
                .create(Some(&format!("c{i}")), config("true"))
                .unwrap()
                .id
        })
        .collect();
    let listed = store.list::<Config>().unwrap();
    let ids: Vec<&str> = listed.iter().map(|c| c.record.id.as_str()).collect();
    let newest_first: Vec<&str> = made.iter().rev().map(String::as_str).collect();
    assert_eq!(ids, newest_first);
    assert!(
        listed
            .windows(2)
            .all(|w| w[0].record.created > w[1].record.created)
    );
}

#[test]
fn rename_moves_the_name_with_dockers_messages() {
    let (_dir, store) = store();
    let web = store.create(Some("web"), config("httpd")).unwrap();
    store.create(Some("api"), config("api")).unwrap();

    let err = store.rename("web", "api").unwrap_err();
    assert!(matches!(kind(&err), StoreError::NameInUse { name, .. } if name == "api"));
    assert!(
        format!("{err:#}").starts_with(
            "Error when allocating new name: Conflict. The container name \"/api\" is already in use by container"
        ),
        "{err:#}"
    );
    let err = store.rename("/web", "web").unwrap_err();
    assert_eq!(
        err.to_string(),
        "Renaming a container with the same name as its current name"
    );
    let err = store.rename("web", "").unwrap_err();
    assert_eq!(err.to_string(), "Neither old nor new names may be empty");
    let err = store.rename("web", "a b").unwrap_err();
    assert!(
        err.to_string().starts_with("Invalid container name (a b)"),
        "{err}"
    );
    let err = store.rename("nosuch", "other").unwrap_err();
    assert_eq!(err.to_string(), "No such container: nosuch");

    store.rename(web.short_id(), "/frontend").unwrap();
    let err = store.get::<Config>("web").unwrap_err();
    assert_eq!(kind(&err), &StoreError::NoSuchContainer("web".into()));
    let renamed = store.get::<Config>("frontend").unwrap().record;
    assert_eq!(renamed.id, web.id);
    assert_eq!(renamed.name, "frontend");
    assert_eq!((renamed.created, renamed.config), (web.created, web.config));
    // The old name is free again.
    store.create(Some("web"), config("httpd")).unwrap();
}

#[test]
fn an_update_changes_the_state_and_a_failed_one_writes_nothing() {
    let (_dir, store) = store();
    let id = store.create(None, config("sleep 60")).unwrap().id;
    let me = Holder::current().unwrap();
    let started = time::OffsetDateTime::now_utc();
    let old = store
        .update(&id, |s| {
            let old = s.status;
            s.status = Status::Running;
            s.process = Some(me);
            s.monitor = Some(me);
            s.started_at = Some(started);
            Ok(old)
        })
        .unwrap();
    assert_eq!(old, Status::Created);
    let state = store.state(&id).unwrap();
    assert_eq!(
        (state.status, state.process, state.started_at),
        (Status::Running, Some(me), Some(started))
    );
    assert_eq!(state.error, "");

    let err = store
        .update(&id, |s| -> anyhow::Result<()> {
            s.status = Status::Dead;
            anyhow::bail!("changed my mind")
        })
        .unwrap_err();
    assert_eq!(err.to_string(), "changed my mind");
    assert_eq!(store.state(&id).unwrap().status, Status::Running);

    let err = store.update(&"f".repeat(64), |_| Ok(())).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("No such container: {}", "f".repeat(64))
    );
    let err = store.update("../../etc", |_| Ok(())).unwrap_err();
    assert_eq!(kind(&err), &StoreError::NoSuchContainer("../../etc".into()));
}

/// A state that says running, with `process` and `monitor`.
fn running(process: Holder, monitor: Option<Holder>) -> State {
    State {
        status: Status::Running,
        process: Some(process),
        monitor,
        ..State::default()
    }
}

/// The PID of a process that has exited and been reaped.
fn dead_pid() -> i32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id() as i32;
    child.wait().unwrap();
    pid
}

#[test]
fn a_dead_process_is_not_taken_for_running() {
    // `true`, waited for: its PID names no process any more.
    let gone = Holder {
        pid: dead_pid(),
        start_time: 1,
    };
    let seen = state::observe(running(gone, None));
    assert_eq!(
        (seen.status, seen.exit_code),
        (Status::Exited, UNKNOWN_EXIT_CODE)
    );
    assert!(
        seen.error.contains(&format!("PID {}", gone.pid)),
        "{}",
        seen.error
    );

    // The very same holder, read while the process lived, then after it died.
    let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
    let holder = Holder::of(sleeper.id() as i32).unwrap().unwrap();
    assert_eq!(
        state::observe(running(holder, None)).status,
        Status::Running
    );
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    assert_eq!(state::observe(running(holder, None)).status, Status::Exited);
}

#[test]
fn a_reused_pid_is_not_taken_for_running() {
    // Our own PID, alive, but with another start time: a process that got the
    // PID of a dead container.
    let me = Holder::current().unwrap();
    let impostor = Holder {
        pid: me.pid,
        start_time: me.start_time + 1,
    };
    assert_eq!(state::observe(running(me, None)).status, Status::Running);
    let seen = state::observe(running(impostor, None));
    assert_eq!(
        (seen.status, seen.exit_code),
        (Status::Exited, UNKNOWN_EXIT_CODE)
    );
    let paused = State {
        status: Status::Paused,
        ..running(impostor, None)
    };
    assert_eq!(state::observe(paused).status, Status::Exited);
}

#[test]
fn a_dead_monitor_is_noticed() {
    let me = Holder::current().unwrap();
    let gone = Holder {
        pid: dead_pid(),
        start_time: 1,
    };
    let seen = state::observe(running(me, Some(gone)));
    assert_eq!(seen.status, Status::Dead);
    assert!(
        seen.error
            .contains(&format!("monitor PID {} is gone", gone.pid)),
        "{}",
        seen.error
    );

    let seen = state::observe(running(gone, Some(me)));
    assert_eq!(
        (seen.status, seen.exit_code),
        (Status::Exited, UNKNOWN_EXIT_CODE)
    );
    assert!(
        seen.error.contains("has not recorded its exit status yet"),
        "{}",
        seen.error
    );

    let seen = state::observe(running(gone, Some(gone)));
    assert_eq!(seen.status, Status::Dead);
    assert!(
        seen.error.contains("was the monitor killed?"),
        "{}",
        seen.error
    );

    let no_process = State {
        process: None,
        ..running(me, None)
    };
    assert_eq!(state::observe(no_process).status, Status::Dead);

    // A recorded exit is not second-guessed.
    let exited = State {
        status: Status::Exited,
        exit_code: 3,
        ..running(gone, Some(gone))
    };
    assert_eq!(state::observe(exited.clone()), exited);
}

#[test]
fn reads_through_the_store_check_liveness_too() {
    let (_dir, store) = store();
    let id = store.create(Some("web"), config("sleep 60")).unwrap().id;
    let gone = Holder {
        pid: dead_pid(),
        start_time: 1,
    };
    store
        .update(&id, |s| {
            *s = running(gone, Some(gone));
            Ok(())
        })
        .unwrap();
    assert_eq!(store.state(&id).unwrap().status, Status::Dead);
    assert_eq!(
        store.get::<Config>("web").unwrap().state.status,
        Status::Dead
    );
    assert_eq!(
        store.list::<Config>().unwrap()[0].state.status,
        Status::Dead
    );
    // The correction is what readers see; the file keeps what was written.
    let raw: State = store.update(&id, |s| Ok(s.clone())).unwrap();
    assert_eq!(raw.status, Status::Running);
}

#[test]
fn a_lost_runtime_state_reads_as_exited_and_comes_back_on_update() {
    let (dir, store) = store();
    let id = store.create(Some("web"), config("true")).unwrap().id;
    // A reboot empties the tmpfs.
    fs::remove_dir_all(dir.path().join("run")).unwrap();
    let state = store.state(&id).unwrap();
    assert_eq!(
        (state.status, state.exit_code),
        (Status::Exited, UNKNOWN_EXIT_CODE)
    );
    assert!(
        state.error.contains("the machine restarted"),
        "{}",
        state.error
    );
    assert_eq!(store.list::<Config>().unwrap()[0].state, state);
    store
        .update(&id, |s| {
            // The update starts from the lost state, as readers saw it.
            assert_eq!((s.status, s.exit_code), (Status::Exited, UNKNOWN_EXIT_CODE));
            *s = State::default();
            Ok(())
        })
        .unwrap();
    assert_eq!(store.state(&id).unwrap(), State::default());
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
}

#[test]
fn a_removed_container_leaves_nothing_and_a_second_removal_finds_it_gone() {
    let (dir, store) = store();
    let record = store.create(Some("web"), config("true")).unwrap();
    let id = record.id.clone();
    fs::create_dir_all(store.container_dir(&id).join("rootfs/etc")).unwrap();
    fs::write(
        store.container_dir(&id).join("rootfs/etc/hostname"),
        "web\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("/etc/passwd", store.runtime_dir(&id).join("link")).unwrap();

    assert_eq!(store.remove(&id).unwrap(), Removal::Removed);
    assert!(!store.container_dir(&id).exists());
    assert!(!store.runtime_dir(&id).exists());
    assert!(Path::new("/etc/passwd").exists(), "a symlink was followed");
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
    assert!(store.list::<Config>().unwrap().is_empty());

    assert_eq!(store.remove(&id).unwrap(), Removal::AlreadyGone);
    let err = store.get::<Config>(&id).unwrap_err();
    assert_eq!(err.to_string(), format!("No such container: {id}"));
    let err = store.state(&id).unwrap_err();
    assert_eq!(kind(&err), &StoreError::NoSuchContainer(id.clone()));
    let err = store.update(&id, |_| Ok(())).unwrap_err();
    assert_eq!(kind(&err), &StoreError::NoSuchContainer(id.clone()));
    assert!(
        !store.runtime_dir(&id).exists(),
        "an update brought it back"
    );
    // The name is free again.
    store.create(Some("web"), config("true")).unwrap();
}

#[test]
fn a_failed_fill_leaves_nothing_and_sweep_cleans_what_crashes_leave() {
    let (dir, store) = store();
    let mut rng = ch10_runtime::names::SplitMix64::new(1);
    let err = store
        .create_with(
            &new_id(),
            Some("web"),
            config("true"),
            Keep::UntilRemoved,
            &mut rng,
            |staged| {
                fs::write(staged.join("half"), "x")?;
                anyhow::bail!("snapshot failed")
            },
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "snapshot failed");
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
    assert_eq!(entries(&dir.path().join("run")), 0);
    assert!(store.list::<Config>().unwrap().is_empty());

    // What a creation by a dead process and an interrupted removal leave;
    // a creation in progress (a living PID) is left alone.
    let containers = dir.path().join("root/containers");
    let dead = containers.join(format!(".tmp-{}-{}", dead_pid(), "a".repeat(64)));
    let living = containers.join(format!(".tmp-{}-{}", std::process::id(), "b".repeat(64)));
    let removing = dir
        .path()
        .join("run")
        .join(format!(".rm-{}", "c".repeat(64)));
    for d in [&dead, &living, &removing] {
        fs::create_dir_all(d.join("sub")).unwrap();
    }
    store.sweep().unwrap();
    assert_eq!(leftovers(&dir), vec![living]);
}

/// A `--rm` container's record is not flushed, so a power cut can leave it
/// empty, or zeros where its data never reached the disk. Such a container
/// is invisible (no error for `ps`, its name free) and `sweep` removes it;
/// the others are untouched.
#[test]
fn a_record_a_power_cut_cut_short_reads_as_no_container_and_sweep_removes_it() {
    let (dir, store) = store();
    let mut rng = ch10_runtime::names::SplitMix64::new(7);
    let mut made = Vec::new();
    for (name, keep) in [("empty", Keep::WhileRunning), ("zeros", Keep::WhileRunning)] {
        let record = store
            .create_with(
                &new_id(),
                Some(name),
                config("true"),
                keep,
                &mut rng,
                |_| Ok(()),
            )
            .unwrap();
        made.push(record.id);
    }
    let kept = store.create(Some("kept"), config("sleep 1")).unwrap();
    let rm_kept = store
        .create_with(
            &new_id(),
            Some("rm-kept"),
            config("true"),
            Keep::WhileRunning,
            &mut rng,
            |_| Ok(()),
        )
        .unwrap();
    let record_of = |id: &str| {
        dir.path()
            .join("root/containers")
            .join(id)
            .join("config.json")
    };
    // Unflushed, the record is whole until the machine stops.
    assert_eq!(
        store.get::<Config>("rm-kept").unwrap().record.id,
        rm_kept.id
    );
    fs::write(record_of(&made[0]), b"").unwrap();
    let size = fs::metadata(record_of(&made[1])).unwrap().len() as usize;
    fs::write(record_of(&made[1]), vec![0u8; size]).unwrap();

    let listed: Vec<String> = store
        .list::<Config>()
        .unwrap()
        .into_iter()
        .map(|c| c.record.name)
        .collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.contains(&"kept".into()) && listed.contains(&"rm-kept".into()));
    for (id, name) in made.iter().zip(["empty", "zeros"]) {
        let err = store.get::<Config>(id).unwrap_err();
        assert!(
            matches!(kind(&err), StoreError::NoSuchContainer(_)),
            "{err:#}"
        );
        assert!(matches!(
            kind(&store.get::<Config>(name).unwrap_err()),
            StoreError::NoSuchContainer(_)
        ));
    }
    store.sweep().unwrap();
    for id in &made {
        assert!(!dir.path().join("root/containers").join(id).exists());
        assert!(!dir.path().join("run").join(id).exists());
    }
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
    assert_eq!(entries(&dir.path().join("root/containers")), 2);
    assert_eq!(store.get::<Config>(&kept.id).unwrap().record.name, "kept");
    // The names are free again.
    store.create(Some("empty"), config("true")).unwrap();
}

/// Root only, and in a mount namespace of its own: a tmpfs mounted inside a
/// container's directory stops its removal, and nothing in it is deleted.
#[test]
fn removal_refuses_while_something_is_mounted_below() {
    if !harness::require_root("ch10 state: removal refuses while something is mounted below") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new("unshare")
        .args(["--mount", "--propagation", "private"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "mount_helper",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("STATE_MOUNT_HELPER_DIR", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("MOUNT HELPER DONE"), "{stdout}");
    // The mount namespace died with the helper: nothing is left mounted.
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(&*dir.path().to_string_lossy()));
}

/// Run by `removal_refuses_while_something_is_mounted_below` in a private
/// mount namespace; does nothing when run any other way.
#[test]
#[ignore = "a helper, run in its own mount namespace by removal_refuses_while_something_is_mounted_below"]
fn mount_helper() {
    let Some(dir) = std::env::var_os("STATE_MOUNT_HELPER_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let store = Store::new(&dir.join("root"), &dir.join("run"));
    let id = store.create(Some("web"), config("true")).unwrap().id;
    let volume = store.container_dir(&id).join("rootfs/data");
    fs::create_dir_all(&volume).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "minibox-test", &volume.to_string_lossy()])
        .status()
        .unwrap();
    assert!(mounted.success());
    fs::write(volume.join("precious"), "the host's data").unwrap();

    let err = store.remove(&id).unwrap_err();
    assert!(
        format!("{err:#}").contains("is still mounted there (unmount it first)"),
        "{err:#}"
    );
    assert_eq!(
        fs::read_to_string(volume.join("precious")).unwrap(),
        "the host's data"
    );
    assert_eq!(store.resolve("web").unwrap(), id);

    assert!(
        Command::new("umount")
            .arg(&volume)
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(store.remove(&id).unwrap(), Removal::Removed);
    println!("MOUNT HELPER DONE");
}

/// A fresh container ID, as `minibox run` makes one.
fn new_id() -> String {
    ch03_uts_namespace::id::new_id().expect("an ID from /dev/urandom")
}
