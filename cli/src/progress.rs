//! Progress display for long work (random layers, planning, runs, sweeps), on stderr; indicatif
//! hides it when stderr is not a terminal, so piped output and tests see nothing of it.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Runs `work` under a spinner saying `message`.
pub fn spin<T>(message: &str, work: impl FnOnce() -> T) -> T {
    let bar = spin_start(message);
    let out = work();
    bar.finish_and_clear();
    out
}

/// A bar over `len` items.
pub fn bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed} {msg}").expect("valid template"));
    bar
}

/// A spinner saying `message`, running until the caller finishes it.
fn spin_start(message: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("valid template"));
    bar.set_message(message.to_string());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Progress over the chunks of a run: a bar when there are several; with one, a spinner saying
/// `single` if given, else nothing. Cleared when dropped.
pub struct Chunks(Option<ProgressBar>);

impl Chunks {
    pub fn new(chunks: usize, single: Option<&str>) -> Chunks {
        Chunks(if chunks > 1 { Some(bar(chunks as u64)) } else { single.map(spin_start) })
    }

    /// One chunk done.
    pub fn step(&self) {
        if let Some(b) = &self.0 {
            b.inc(1);
        }
    }
}

impl Drop for Chunks {
    fn drop(&mut self) {
        if let Some(b) = self.0.take() {
            b.finish_and_clear();
        }
    }
}
