//! Progress bars on stderr, one style for every long step.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `len` steps named `prefix`, or a hidden one when `show` is false.
/// Its message (after the count) carries running figures.
pub fn bar(len: usize, prefix: String, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(prefix);
    bar
}
