//! The progress bar: ticks/s and flush MiB/s while the run goes (stderr, only on a terminal).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::{Observer, Started, TickReport};

const MIB: f64 = 1024.0 * 1024.0;

/// Draws the bar and prints one-line notes (resume, snapshots) on stderr.
pub(crate) struct Progress {
    bar: ProgressBar,
    quiet: bool,
    ticks: u64,
    tick_time: Duration,
    flush_time: Duration,
    flush_bytes: u64,
}

impl Progress {
    /// A bar that draws unless `quiet` or stderr is not a terminal.
    pub(crate) fn new(quiet: bool) -> Self {
        let target = if quiet || !std::io::stderr().is_terminal() {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(0), target);
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} ticks  {msg}",
        ) {
            bar.set_style(style);
        }
        Progress {
            bar,
            quiet,
            ticks: 0,
            tick_time: Duration::ZERO,
            flush_time: Duration::ZERO,
            flush_bytes: 0,
        }
    }

    fn note(&self, msg: String) {
        if !self.quiet {
            self.bar.suspend(|| eprintln!("{msg}"));
        }
    }

    /// Removes the bar before the summary is printed.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Observer for Progress {
    fn started(&mut self, s: &Started) {
        self.bar.set_length(s.ticks);
        if let Some((from, in_place)) = &s.resumed {
            let how = if *in_place {
                "continuing it in place"
            } else {
                "writing a new output file"
            };
            self.note(format!(
                "resumed {} at step {}, {how}",
                from.display(),
                s.start_step
            ));
        }
    }

    fn tick(&mut self, t: &TickReport) {
        self.ticks += 1;
        self.tick_time += t.duration;
        if let Some(f) = t.flush {
            self.flush_time += f.duration;
            self.flush_bytes += f.bytes;
        }
        if let Some(p) = &t.snapshot {
            self.note(format!("snapshot {}", p.display()));
        }
        let tps = self.ticks as f64 / self.tick_time.as_secs_f64().max(1e-9);
        let mbs = self.flush_bytes as f64 / MIB / self.flush_time.as_secs_f64().max(1e-9);
        self.bar.set_message(format!(
            "step {}  {tps:.1} ticks/s  flush {mbs:.0} MiB/s",
            t.step
        ));
        self.bar.inc(1);
    }
}
