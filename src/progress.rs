//! The report's progress bar on stderr (indicatif): blocks done, rate, elapsed time and ETA,
//! as wide as the terminal; nothing at all when stderr is not a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::worker::Progress;

/// The bar's layout: the bar takes whatever width the counters leave.
const TEMPLATE: &str = "{wide_bar} {pos}/{len} blocks  {per_sec}  {elapsed}  ETA {eta}";

/// A progress callback drawing an indicatif bar on stderr (at most 10 times a second), cleared
/// when the run finishes.
pub fn stderr_bar() -> impl FnMut(&Progress) {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
    let style = ProgressStyle::with_template(TEMPLATE)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("#>.");
    bar.set_style(style.with_key(
        "per_sec",
        |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.1}/s", s.per_sec());
        },
    ));
    move |p: &Progress| {
        if bar.is_hidden() || bar.is_finished() {
            return;
        }
        bar.set_length(p.total as u64);
        bar.set_position(p.done as u64);
        if p.finished() {
            bar.finish_and_clear();
        } else if p.done == 0 {
            bar.tick();
        }
    }
}
