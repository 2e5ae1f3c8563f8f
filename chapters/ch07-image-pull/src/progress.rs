//! What a pull shows while it works, in Docker's words: one line per layer
//! (`Pulling fs layer`, `Already exists`, `Pull complete`), with a progress
//! bar, bytes and speed per layer on a terminal, and plain lines otherwise
//! (a log, a pipe, a CI job), where bars would be noise.
//!
//! `docker pull` writes all of it to stdout; `docker run` writes it to stderr,
//! which keeps stdout for the container. [`Output`] says which.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where the pull's lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// stdout, as `minibox pull` does.
    Stdout,
    /// stderr, as `minibox run` does when it pulls first.
    Stderr,
    /// Nowhere (`--quiet`).
    Quiet,
}

impl Output {
    /// Where `run` shows a pull: stderr, which keeps stdout for the container;
    /// nothing with `--quiet`.
    pub fn narration(quiet: bool) -> Output {
        if quiet { Output::Quiet } else { Output::Stderr }
    }
}

/// The progress of one pull: a line per layer.
pub struct Progress {
    output: Output,
    bars: Option<(MultiProgress, Vec<ProgressBar>)>,
    /// Plain mode: which layers are done, and how many lines of "Pull
    /// complete" are out. They are printed in the manifest's order, as Docker
    /// does, however the parallel downloads finish.
    plain: Mutex<(Vec<bool>, usize)>,
    ids: Vec<String>,
    /// Which layers the store had before the pull.
    present: Vec<bool>,
    /// Which bars say "Retrying": the next bytes put "Downloading" back.
    retrying: Vec<AtomicBool>,
}

/// One layer of a pull, as its progress shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerLine {
    /// The layer's short ID (12 hex digits of its digest).
    pub short_id: String,
    /// Its compressed size, in bytes: what there is to download.
    pub size: u64,
    /// Whether the store has it already ("Already exists"): nothing to fetch.
    pub present: bool,
}

impl Progress {
    /// Starts showing `layers`.
    pub fn start(output: Output, layers: &[LayerLine]) -> Progress {
        let terminal = match output {
            Output::Stdout => std::io::stdout().is_terminal(),
            Output::Stderr => std::io::stderr().is_terminal(),
            Output::Quiet => false,
        };
        let ids: Vec<String> = layers.iter().map(|l| l.short_id.clone()).collect();
        let mut progress = Progress {
            output,
            bars: None,
            plain: Mutex::new((layers.iter().map(|l| l.present).collect(), 0)),
            ids,
            present: layers.iter().map(|l| l.present).collect(),
            retrying: layers.iter().map(|_| AtomicBool::new(false)).collect(),
        };
        if terminal {
            let target = match output {
                Output::Stdout => ProgressDrawTarget::stdout(),
                _ => ProgressDrawTarget::stderr(),
            };
            let multi = MultiProgress::with_draw_target(target);
            let bars = layers
                .iter()
                .map(|layer| {
                    let bar = multi.add(ProgressBar::new(layer.size));
                    bar.set_prefix(layer.short_id.clone());
                    if layer.present {
                        bar.set_style(done_style());
                        bar.finish_with_message("Already exists");
                    } else {
                        bar.set_style(
                            ProgressStyle::with_template(
                                "{prefix}: {msg:<11} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec}",
                            )
                            .expect("a valid template")
                            .progress_chars("=> "),
                        );
                        bar.set_message("Downloading");
                    }
                    bar
                })
                .collect();
            progress.bars = Some((multi, bars));
            return progress;
        }
        for LayerLine {
            short_id: id,
            present: have,
            ..
        } in layers
        {
            let status = if *have {
                "Already exists"
            } else {
                "Pulling fs layer"
            };
            progress.line(&format!("{id}: {status}"));
        }
        progress
    }

    /// `n` more bytes of layer `i` arrived.
    pub fn advance(&self, i: usize, n: u64) {
        if let Some((_, bars)) = &self.bars {
            if n > 0 && self.retrying[i].swap(false, Ordering::Relaxed) {
                bars[i].set_message("Downloading");
            }
            bars[i].inc(n);
        }
    }

    /// Layer `i`'s download broke and is tried again: `text` says when
    /// (`Retrying in 2 seconds (...)`), on its line as Docker shows it.
    pub fn retrying(&self, i: usize, text: &str) {
        match &self.bars {
            Some((_, bars)) => {
                self.retrying[i].store(true, Ordering::Relaxed);
                bars[i].set_message(text.to_string());
            }
            None => self.line(&format!("{}: {text}", self.ids[i])),
        }
    }

    /// Layer `i` is downloaded, verified and unpacked.
    pub fn complete(&self, i: usize) {
        if let Some((_, bars)) = &self.bars {
            bars[i].set_style(done_style());
            bars[i].finish_with_message("Pull complete");
            return;
        }
        let mut plain = self.plain.lock().expect("lock");
        let (done, printed) = &mut *plain;
        done[i] = true;
        while *printed < done.len() && done[*printed] {
            if !self.present[*printed] {
                self.line(&format!("{}: Pull complete", self.ids[*printed]));
            }
            *printed += 1;
        }
    }

    /// Layer `i` failed; the pull is over.
    pub fn fail(&self, i: usize) {
        if let Some((_, bars)) = &self.bars {
            bars[i].abandon_with_message("Failed");
        }
    }

    /// One line of output, above the bars if there are any.
    pub fn line(&self, text: &str) {
        if let Some((multi, _)) = &self.bars {
            let _ = multi.println(text);
            return;
        }
        say(self.output, text);
    }
}

impl Drop for Progress {
    /// The bars stay on the screen, as Docker's do; the next line starts
    /// below them.
    fn drop(&mut self) {
        if self.bars.is_some() {
            say(self.output, "");
        }
    }
}

fn done_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg}").expect("a valid template")
}

/// Writes one line to the pull's output (ignoring a closed stream, as a
/// progress report must not fail the pull).
pub fn say(output: Output, text: &str) {
    match output {
        Output::Stdout => {
            let _ = writeln!(std::io::stdout(), "{text}");
        }
        Output::Stderr => {
            let _ = writeln!(std::io::stderr(), "{text}");
        }
        Output::Quiet => {}
    }
}
