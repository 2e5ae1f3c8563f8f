//! `--log` and `--log-format`: where the engines read the runtime's errors.
//!
//! conmon shows a runtime's stderr; containerd's shim passes
//! `--log FILE --log-format json` and, when a command fails, reads the last
//! `"level":"error"` line of that file for the message the user sees
//! (`OCI runtime create failed: ...`). So every error goes to both stderr
//! (one line) and the log (one JSON object with `level`, `msg` and `time`).

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use crate::cli::LogFormat;

struct Log {
    file: Option<PathBuf>,
    format: LogFormat,
    debug: bool,
}

static LOG: OnceLock<Log> = OnceLock::new();

/// Sets where the log goes, once, from the global flags.
pub fn configure(file: Option<PathBuf>, format: LogFormat, debug: bool) {
    let _ = LOG.set(Log {
        file,
        format,
        debug,
    });
}

// ANCHOR: write
/// Appends one entry at `level` to the log file, if there is one.
fn write(level: &str, message: &str) {
    let Some(log) = LOG.get() else { return };
    if level == "debug" && !log.debug {
        return;
    }
    let Some(path) = &log.file else { return };
    let time = crate::create::now_rfc3339();
    let line = match log.format {
        LogFormat::Json => {
            serde_json::json!({"level": level, "msg": message, "time": time}).to_string()
        }
        LogFormat::Text => format!("time=\"{time}\" level={level} msg={message:?}"),
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path);
    if let Ok(mut file) = file {
        let _ = writeln!(file, "{line}");
    }
}
// ANCHOR_END: write

/// An error: the log, and one line on stderr.
pub fn error(message: &str) {
    write("error", message);
    eprintln!("minibox-runc: {message}");
}

/// A warning (a failed poststart or poststop hook): the log and stderr.
pub fn warn(message: &str) {
    write("warning", message);
    eprintln!("minibox-runc: warning: {message}");
}

/// A debug line, with `--debug` only.
pub fn debug(message: &str) {
    write("debug", message);
}
