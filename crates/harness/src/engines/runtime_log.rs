//! The runtime an engine is given in a test: a shell script that records how
//! it was called, then becomes the runtime under test (`exec`, so the engine
//! talks to the real runtime, with the same descriptors, environment and
//! working directory).
//!
//! Two reasons. A test must fail if the engine quietly ran its default
//! runtime instead of ours, so each test checks the log for our `create`.
//! And the command lines an engine sends (global flags, each subcommand's
//! flags) and the bundles it writes are what an OCI runtime must accept:
//! the log and a copy of each bundle's `config.json` show them.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A logging wrapper around a runtime binary, in a directory of its own;
/// or, for a benchmark ([`RuntimeLog::unlogged`]), the runtime itself.
pub struct RuntimeLog {
    dir: PathBuf,
    /// What the engine is given: the wrapper, or the runtime itself.
    program: PathBuf,
}

impl RuntimeLog {
    /// Writes the wrapper into `dir` (which exists) for the runtime at
    /// `runtime`. Each call appends one line to `dir/calls.log`: the
    /// caller's command name (`conmon`, `containerd-shim`), then every
    /// argument, tab-separated. `create` also copies the bundle's
    /// `config.json` to `dir/bundles/PID.json`.
    pub fn new(dir: &Path, runtime: &Path) -> std::io::Result<RuntimeLog> {
        std::fs::create_dir_all(dir.join("bundles"))?;
        let log = dir.join("calls.log");
        let bundles = dir.join("bundles");
        let script = format!(
            "#!/bin/sh\n\
             # Records how the engine calls its OCI runtime, then becomes it.\n\
             {{ printf '%s' \"$(cat /proc/$PPID/comm)\"; for a in \"$@\"; do printf '\\t%s' \"$a\"; done; \
             printf '\\n'; }} >> '{log}'\n\
             prev=\n\
             for a in \"$@\"; do\n\
             \x20 case \"$prev\" in --bundle|-b) cp \"$a/config.json\" '{bundles}'/$$.json ;; esac\n\
             \x20 case \"$a\" in --bundle=*) cp \"${{a#--bundle=}}/config.json\" '{bundles}'/$$.json ;; esac\n\
             \x20 prev=$a\n\
             done\n\
             exec '{runtime}' \"$@\"\n",
            log = log.display(),
            bundles = bundles.display(),
            runtime = runtime.display(),
        );
        let path = dir.join("runtime");
        std::fs::write(&path, script)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        Ok(RuntimeLog {
            dir: dir.to_path_buf(),
            program: path,
        })
    }

    /// No wrapper: the engine is given `runtime` itself, and the log stays
    /// empty. For a benchmark, where the wrapper's shell (a fork, a `cat`,
    /// a `cp` per call, several calls per container) would be timed too.
    pub fn unlogged(dir: &Path, runtime: &Path) -> RuntimeLog {
        RuntimeLog {
            dir: dir.to_path_buf(),
            program: runtime.to_path_buf(),
        }
    }

    /// Whether the engine's calls are logged (a wrapper, not the runtime
    /// itself).
    pub fn logged(&self) -> bool {
        self.program == self.dir.join("runtime")
    }

    /// What to give the engine as its runtime: the wrapper, or the runtime
    /// itself when unlogged.
    pub fn path(&self) -> PathBuf {
        self.program.clone()
    }

    /// Every call so far: the caller's command name, then the arguments.
    pub fn calls(&self) -> Vec<Vec<String>> {
        std::fs::read_to_string(self.dir.join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(|line| line.split('\t').map(str::to_string).collect())
            .collect()
    }

    /// The calls with subcommand `subcommand` (the first argument that is
    /// not a flag or a flag's value) whose last argument is `id`.
    pub fn calls_of(&self, subcommand: &str, id: &str) -> Vec<Vec<String>> {
        self.calls()
            .into_iter()
            .filter(|call| {
                let args = &call[1..];
                subcommand_at(args).is_some_and(|at| args[at] == subcommand)
                    && args.last().is_some_and(|last| last == id)
            })
            .collect()
    }

    /// The global flags (those before the subcommand) the engine gave
    /// `create` of container `id`, e.g. `--root DIR --log FILE`: the
    /// runtime's state of that container is found with them.
    pub fn global_flags(&self, id: &str) -> Option<Vec<String>> {
        let call = self.calls_of("create", id).into_iter().next()?;
        let args = &call[1..];
        Some(args[..subcommand_at(args)?].to_vec())
    }

    /// The `config.json` files of the bundles created so far.
    pub fn bundles(&self) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(self.dir.join("bundles"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        found.sort();
        found
    }

    /// The whole log, for a failure's message.
    pub fn text(&self) -> String {
        std::fs::read_to_string(self.dir.join("calls.log")).unwrap_or_default()
    }
}

/// When set to a directory, each [`RuntimeLog`] copies its log and bundles
/// there when dropped (into a directory named after its sandbox), to read
/// how the engines called the runtime after the tests.
pub const KEEP: &str = "MINIBOX_TEST_KEEP_RUNTIME_CALLS";

impl Drop for RuntimeLog {
    fn drop(&mut self) {
        let Some(keep) = std::env::var_os(KEEP).filter(|_| self.logged()) else {
            return;
        };
        let sandbox = self.dir.parent().and_then(Path::file_name);
        let to = Path::new(&keep).join(sandbox.unwrap_or_default());
        let copied = std::fs::create_dir_all(to.join("bundles")).and_then(|()| {
            std::fs::copy(self.dir.join("calls.log"), to.join("calls.log"))?;
            for bundle in self.bundles() {
                std::fs::copy(
                    &bundle,
                    to.join("bundles")
                        .join(bundle.file_name().unwrap_or_default()),
                )?;
            }
            Ok(())
        });
        if let Err(e) = copied {
            eprintln!("keeping the runtime's calls in {}: {e}", to.display());
        }
    }
}

/// runc's global flags that take a value (as separate arguments).
const VALUED: &[&str] = &["--root", "--log", "--log-format", "--criu", "--rootless"];

/// The index of the subcommand among `args`: the first argument that is
/// neither a global flag nor the value of one.
fn subcommand_at(args: &[String]) -> Option<usize> {
    let mut at = 0;
    while at < args.len() {
        let arg = &args[at];
        if !arg.starts_with('-') {
            return Some(at);
        }
        at += if VALUED.contains(&arg.as_str()) { 2 } else { 1 };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subcommand_follows_global_flags_and_their_values() {
        let args: Vec<String> = [
            "--root",
            "/run/x",
            "--log-format",
            "json",
            "--debug",
            "create",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(subcommand_at(&args), Some(5));
        assert_eq!(subcommand_at(&args[..5]), None);
    }

    /// The wrapper runs the real program with the arguments unchanged, logs
    /// them, and copies the bundle's config.json on `create --bundle`.
    #[test]
    fn the_wrapper_logs_and_becomes_the_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("bundle");
        std::fs::create_dir(&bundle).unwrap();
        std::fs::write(bundle.join("config.json"), "{}").unwrap();
        let log = RuntimeLog::new(&dir.path().join("log"), Path::new("/bin/echo")).unwrap();
        let out = std::process::Command::new(log.path())
            .args(["--root", "/r", "create", "--bundle"])
            .arg(&bundle)
            .arg("c1")
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("--root /r create --bundle {} c1\n", bundle.display())
        );
        assert_eq!(log.calls_of("create", "c1").len(), 1);
        assert_eq!(
            log.global_flags("c1"),
            Some(vec!["--root".to_string(), "/r".to_string()])
        );
        assert_eq!(log.bundles().len(), 1);
    }
}
