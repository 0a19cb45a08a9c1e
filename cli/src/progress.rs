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
pub fn spin_start(message: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("valid template"));
    bar.set_message(message.to_string());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}
