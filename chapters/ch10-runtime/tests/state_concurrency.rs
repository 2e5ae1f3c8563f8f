//! The container store under concurrency: many threads and many processes
//! creating at once, a name everyone wants, removals racing each other and
//! an update, and a `ps` reading all along.
//!
//! Processes matter as well as threads: a flock(2) belongs to an open file
//! description, and a store that only locked within one process (a mutex)
//! would pass the thread tests and fail the process one. The processes are
//! this test binary itself, run again with a helper test selected.

use std::collections::HashSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use ch10_runtime::names::SplitMix64;
use ch10_runtime::state::{Keep, Record, Removal, Status, Store, StoreError};
use nix::fcntl::{Flock, FlockArg};
use tempfile::TempDir;

/// The config the records carry: which creator made it.
type Config = String;

/// Every creator uses the same seed, so all draw the same names in the same
/// order: the names lock is all that keeps them apart.
const SEED: u64 = 42;

const CREATORS: usize = 16;

fn store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(&dir.path().join("root"), &dir.path().join("run"));
    (dir, store)
}

/// Entries whose name starts with a dot: what a half-done creation or
/// removal would leave.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    ["root/containers", "run"]
        .iter()
        .flat_map(|d| fs::read_dir(dir.join(d)).into_iter().flatten())
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect()
}

/// Checks that the store holds exactly `made`, each whole, and nothing else;
/// returns how many names fell back to the short ID.
fn check_consistent(dir: &Path, store: &Store, made: &[(String, String)]) -> usize {
    let ids: HashSet<&str> = made.iter().map(|(id, _)| id.as_str()).collect();
    let names: HashSet<&str> = made.iter().map(|(_, name)| name.as_str()).collect();
    assert_eq!(ids.len(), CREATORS, "IDs: {made:?}");
    assert_eq!(names.len(), CREATORS, "names: {made:?}");
    let listed = store.list::<Config>().unwrap();
    let listed: HashSet<(String, String)> = listed
        .into_iter()
        .inspect(|c| assert_eq!(c.state.status, Status::Created))
        .map(|c| (c.record.id, c.record.name))
        .collect();
    assert_eq!(listed, made.iter().cloned().collect());
    for (id, name) in made {
        assert_eq!(&store.resolve(name).unwrap(), id);
    }
    assert!(leftovers(dir).is_empty(), "{:?}", leftovers(dir));
    assert_eq!(fs::read_dir(dir.join("run")).unwrap().count(), CREATORS);
    made.iter().filter(|(id, name)| name == &id[..12]).count()
}

#[test]
fn sixteen_threads_create_at_once() {
    let (dir, store) = store();
    let barrier = Arc::new(Barrier::new(CREATORS));
    let threads: Vec<_> = (0..CREATORS)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            thread::spawn(move || {
                let mut rng = SplitMix64::new(SEED);
                let (id, keep) = (new_id(), Keep::UntilRemoved);
                barrier.wait();
                let record = store
                    .create_with(&id, None, format!("thread {i}"), keep, &mut rng, |_| Ok(()))
                    .unwrap();
                (record.id, record.name)
            })
        })
        .collect();
    let made: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    // Six names drawn, then the short ID: with sixteen identical generators,
    // at least nine fell back to it (fewer names differ than creators).
    let fallbacks = check_consistent(dir.path(), &store, &made);
    assert!(fallbacks >= CREATORS - 7, "{made:?}");
}

#[test]
fn sixteen_processes_create_at_once() {
    let (dir, store) = store();
    let ready = dir.path().join("ready");
    fs::create_dir(&ready).unwrap();
    // The gate: we hold it exclusively; each helper waits for a shared lock
    // on it, so all start creating the moment we let go.
    let gate_path = dir.path().join("gate");
    let gate = Flock::lock(File::create(&gate_path).unwrap(), FlockArg::LockExclusive).unwrap();
    let me = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..CREATORS)
        .map(|_| {
            Command::new(&me)
                .args([
                    "--exact",
                    "create_helper",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("STATE_HELPER_DIR", dir.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while fs::read_dir(&ready).unwrap().count() < CREATORS {
        assert!(Instant::now() < deadline, "the helpers did not get ready");
        thread::sleep(Duration::from_millis(10));
    }
    drop(gate);
    let mut made = Vec::new();
    for child in children {
        let output =
            harness::process::wait_with_deadline(child, "create_helper", Duration::from_secs(60));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // libtest may print `test create_helper ... ` on the same line.
        let line = stdout
            .lines()
            .find_map(|l| l.split_once("CREATED ").map(|(_, rest)| rest))
            .unwrap_or_else(|| panic!("no CREATED line in {stdout}"));
        let (id, name) = line.split_once(' ').unwrap();
        made.push((id.to_string(), name.to_string()));
    }
    let fallbacks = check_consistent(dir.path(), &store, &made);
    assert!(fallbacks >= CREATORS - 7, "{made:?}");
}

/// One creator of `sixteen_processes_create_at_once`: waits at the gate,
/// creates a container with a generated name, prints `CREATED ID NAME`.
#[test]
#[ignore = "a helper, run as a separate process by sixteen_processes_create_at_once"]
fn create_helper() {
    let Some(dir) = std::env::var_os("STATE_HELPER_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let store = Store::new(&dir.join("root"), &dir.join("run"));
    let mut rng = SplitMix64::new(SEED);
    let gate = File::open(dir.join("gate")).unwrap();
    File::create(dir.join("ready").join(std::process::id().to_string())).unwrap();
    drop(Flock::lock(gate, FlockArg::LockShared).unwrap());
    let pid = std::process::id();
    let record: Record<Config> = store
        .create_with(
            &new_id(),
            None,
            format!("process {pid}"),
            Keep::UntilRemoved,
            &mut rng,
            |_| Ok(()),
        )
        .unwrap();
    println!("CREATED {} {}", record.id, record.name);
}

#[test]
fn sixteen_creators_want_the_same_name_and_one_gets_it() {
    let (dir, store) = store();
    let barrier = Arc::new(Barrier::new(CREATORS));
    let threads: Vec<_> = (0..CREATORS)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                store.create(Some("web"), format!("thread {i}"))
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let winners: Vec<&Record<Config>> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1);
    let winner = &winners[0].id;
    for err in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(
            err.downcast_ref::<StoreError>(),
            Some(&StoreError::NameInUse {
                name: "web".into(),
                id: winner.clone()
            })
        );
    }
    assert_eq!(store.list::<Config>().unwrap().len(), 1);
    assert_eq!(fs::read_dir(dir.path().join("run")).unwrap().count(), 1);
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

#[test]
fn two_concurrent_removals_both_end_cleanly() {
    let (dir, store) = store();
    for round in 0..30 {
        let id = store
            .create(Some("web"), format!("round {round}"))
            .unwrap()
            .id;
        let barrier = Arc::new(Barrier::new(3));
        let removers: Vec<_> = (0..2)
            .map(|_| {
                let (store, barrier, id) = (store.clone(), barrier.clone(), id.clone());
                thread::spawn(move || {
                    barrier.wait();
                    store.remove(&id).unwrap()
                })
            })
            .collect();
        // A monitor recording the exit at the same moment: it either gets
        // there first or finds the container gone, and never brings it back.
        let updater = {
            let (store, barrier, id) = (store.clone(), barrier.clone(), id.clone());
            thread::spawn(move || {
                barrier.wait();
                store.update(&id, |s| {
                    s.status = Status::Exited;
                    Ok(())
                })
            })
        };
        let mut outcomes: Vec<Removal> = removers.into_iter().map(|t| t.join().unwrap()).collect();
        outcomes.sort_by_key(|r| *r != Removal::Removed);
        assert_eq!(
            outcomes,
            [Removal::Removed, Removal::AlreadyGone],
            "round {round}"
        );
        if let Err(err) = updater.join().unwrap() {
            assert_eq!(
                err.downcast_ref::<StoreError>(),
                Some(&StoreError::NoSuchContainer(id.clone())),
                "{err:#}"
            );
        }
        assert!(
            !store.runtime_dir(&id).exists(),
            "round {round}: an update brought it back"
        );
        assert!(!store.container_dir(&id).exists());
        assert!(
            leftovers(dir.path()).is_empty(),
            "{:?}",
            leftovers(dir.path())
        );
    }
}

#[test]
fn ps_never_sees_half_a_container() {
    let (dir, store) = store();
    let stop = Arc::new(AtomicBool::new(false));
    // How many lists the reader made, and how many containers it saw: the
    // writers go on until it made enough to mean something, however the
    // threads are scheduled.
    let reads = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (store, stop) = (store.clone(), stop.clone());
        let (reads, seen) = (reads.clone(), seen.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for container in store.list::<Config>().unwrap() {
                    // A whole container: its record and its state, as made.
                    assert_eq!(container.state.status, Status::Created, "{container:?}");
                    assert_eq!(container.state.error, "", "{container:?}");
                    assert!(container.record.config.starts_with("writer"));
                    seen.fetch_add(1, Ordering::Relaxed);
                }
                reads.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (store, reads, seen) = (store.clone(), reads.clone(), seen.clone());
            thread::spawn(move || {
                let enough =
                    || reads.load(Ordering::Relaxed) > 10 && seen.load(Ordering::Relaxed) > 0;
                let mut i = 0;
                while i < 40 || (!enough() && i < 100_000) {
                    let name = format!("w{w}-{i}");
                    let id = store.create(Some(&name), format!("writer {w}")).unwrap().id;
                    assert_eq!(store.remove(&id).unwrap(), Removal::Removed);
                    i += 1;
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    let (reads, seen) = (reads.load(Ordering::Relaxed), seen.load(Ordering::Relaxed));
    assert!(
        reads > 10 && seen > 0,
        "{reads} reads saw {seen} containers"
    );
    assert!(store.list::<Config>().unwrap().is_empty());
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

/// A fresh container ID, as `minibox run` makes one.
fn new_id() -> String {
    ch03_uts_namespace::id::new_id().expect("an ID from /dev/urandom")
}
