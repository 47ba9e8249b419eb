//! The summary printed at the end of a run; its last line is `checksum: <hex>`.

use std::fmt::Write as _;
use std::time::Duration;

use crate::engine::Outcome;
use crate::engine::driver::FlushSample;

const MIB: f64 = 1024.0 * 1024.0;

/// The `p`-th percentile (nearest rank) of `sorted`.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / MIB)
}

/// The summary table and the checksum line.
pub(crate) fn summary(o: &Outcome) -> String {
    let s = &o.started;
    let ticks = o.tick_times.len();
    let tick_total: Duration = o.tick_times.iter().sum();
    let mut flush: Vec<Duration> = o.flushes.iter().map(|f| f.duration).collect();
    flush.sort_unstable();
    let flush_total: Duration = flush.iter().sum();
    let bytes: u64 = o.flushes.iter().map(|f| f.bytes).sum();
    let stored: u64 = o.flushes.iter().map(|f| f.stored).sum();
    let growth = o.out_bytes_after as f64 - o.out_bytes_before as f64;
    // What grew: `sim.h5.a + sim.h5.b` for a crash-safe pair, `sim.h5` written in place.
    let grown = o
        .out_files
        .iter()
        .map(|p| p.file_name().unwrap_or(p.as_os_str()).to_string_lossy())
        .collect::<Vec<_>>()
        .join(" + ");
    let share = if tick_total.is_zero() {
        0.0
    } else {
        100.0 * flush_total.as_secs_f64() / tick_total.as_secs_f64()
    };
    let mut rows: Vec<(&str, String)> = vec![
        (
            "ticks",
            format!("{ticks} (steps {} → {})", s.start_step, o.end_step),
        ),
        (
            "world",
            format!("{} particles in {} clouds", s.particles, s.clouds),
        ),
        (
            "tick time",
            format!(
                "{} total, {:.1} ticks/s",
                ms(tick_total),
                ticks as f64 / tick_total.as_secs_f64().max(1e-9)
            ),
        ),
        (
            "flushes",
            format!("{} ({} total)", flush.len(), ms(flush_total)),
        ),
        (
            "bytes written",
            format!(
                "{} of arrays, {} stored (after compression) · {grown} grew {}",
                mib(bytes as f64),
                mib(stored as f64),
                mib(growth)
            ),
        ),
        (
            "flush time",
            format!(
                "p50 {} · p95 {} · max {}",
                ms(percentile(&flush, 50.0)),
                ms(percentile(&flush, 95.0)),
                ms(flush.last().copied().unwrap_or_default())
            ),
        ),
        (
            "flush throughput",
            format!(
                "{:.0} MiB/s",
                bytes as f64 / MIB / flush_total.as_secs_f64().max(1e-9)
            ),
        ),
        ("flush share", format!("{share:.1} % of tick time")),
    ];
    let background: Vec<&FlushSample> = o
        .flushes
        .iter()
        .filter(|f| f.committed_after > Duration::ZERO)
        .collect();
    if !background.is_empty() {
        let p50 = |mut v: Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        rows.push((
            "background",
            format!(
                "flush time is the tick's part: copy p50 {} · commit p50 {} after the flush began",
                ms(p50(background.iter().map(|f| f.copy).collect())),
                ms(p50(background.iter().map(|f| f.committed_after).collect()))
            ),
        ));
    }
    let sharded: Vec<&FlushSample> = o
        .flushes
        .iter()
        .filter(|f| f.commit > Duration::ZERO)
        .collect();
    if !sharded.is_empty() {
        let p50 = |mut v: Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        rows.push((
            "ranks",
            format!(
                "{} (sharded run; the figures above are rank {}'s, its clouds below)",
                o.ranks, o.rank
            ),
        ));
        rows.push((
            "commit",
            format!(
                "in the flush time: p50 {} across ranks after the rank's own flush, of which \
                 run file p50 {}; the slowest rank's own flush p50 {}",
                ms(p50(sharded.iter().map(|f| f.commit).collect())),
                ms(p50(sharded.iter().map(|f| f.run_file).collect())),
                ms(p50(sharded.iter().map(|f| f.slowest).collect()))
            ),
        ));
    }
    if !o.snapshots.is_empty() {
        rows.push((
            "snapshots",
            format!("{} in {}", o.snapshots.len(), ms(o.snapshot_time)),
        ));
    }
    rows.push(("compression", s.applied.compression.to_string()));
    rows.push(("threads", s.applied.threads.to_string()));
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in &rows {
        let _ = writeln!(out, "{k:<width$}  {v}");
    }
    let _ = writeln!(
        out,
        "{:<width$}  {:.3} (step {})",
        "sim time", o.time, o.end_step
    );
    for c in &o.clouds {
        let _ = writeln!(
            out,
            "{:<width$}  {} particles, kinetic energy {:.6e}",
            format!("cloud {}", c.index),
            c.particles,
            c.kinetic_energy
        );
    }
    let _ = write!(out, "checksum: {}", o.checksum);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let d: Vec<Duration> = (1..=20).map(Duration::from_millis).collect();
        assert_eq!(percentile(&d, 50.0), Duration::from_millis(10));
        assert_eq!(percentile(&d, 95.0), Duration::from_millis(19));
        assert_eq!(percentile(&d, 100.0), Duration::from_millis(20));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }
}
