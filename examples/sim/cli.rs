//! The command line.

use std::num::NonZeroU32;
use std::path::PathBuf;

use clap::Parser;

use h5pom::ecs::Durability;

use crate::engine::{Compression, Config, IoOptions};

fn parse_durability(s: &str) -> Result<Durability, String> {
    match s {
        "none" => Ok(Durability::Unprotected),
        "process" => Ok(Durability::Process),
        "power" => Ok(Durability::Power),
        _ => Err(format!("{s:?}: expected none, process or power")),
    }
}

/// A particle simulation in bevy_ecs whose world h5pom writes to HDF5 every tick.
///
/// Clouds of particles repel each other with a soft short-range force in a periodic box. Every
/// tick the changed state is flushed to --out; snapshots and --resume continue a run exactly
/// (same final checksum as an uninterrupted run).
#[derive(Debug, Parser)]
#[command(name = "sim", version, about, long_about)]
pub(crate) struct Args {
    /// Total number of particles (a new world; taken from the file with --resume).
    #[arg(long, default_value_t = 200_000, conflicts_with = "resume", value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    particles: u64,
    /// Number of particle clouds (a new world).
    #[arg(long, default_value_t = 4, conflicts_with = "resume", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    clouds: u32,
    /// Seed of a new world.
    #[arg(long, default_value_t = 42, conflicts_with = "resume")]
    seed: u64,
    /// Ticks to run (from the resumed step with --resume).
    #[arg(long, default_value_t = 50)]
    ticks: u64,
    /// The HDF5 file the world is synced to.
    #[arg(long, default_value = "sim.h5")]
    out: PathBuf,
    /// Compression of the array datasets: none, deflate[:1-9], lz4 or zstd[:-7-22].
    #[arg(long, default_value = "none")]
    compression: Compression,
    /// Worker threads (rayon's pool; default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    /// Flush every N ticks (the last tick is always flushed).
    #[arg(long, default_value = "1", value_name = "N")]
    flush_every: NonZeroU32,
    /// Write a snapshot every N steps into --snapshot-dir.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    snapshot_every: Option<u64>,
    /// Where snapshots go (sim-<step>.h5).
    #[arg(long, default_value = "snapshots", value_name = "DIR")]
    snapshot_dir: PathBuf,
    /// Continue from a snapshot or an earlier --out file (in place if it is --out).
    #[arg(long, value_name = "FILE")]
    resume: Option<PathBuf>,
    /// What survives a crash of this process: process (a kill at any instant leaves --out
    /// at the last flushed tick), power (the same, and each flush is synced to disk), or
    /// none (one file written in place; fastest, a kill may corrupt it).
    #[arg(long, default_value = "process", value_parser = parse_durability)]
    durability: Durability,
    /// Print `flushed step=<S> tick=<T>` on stdout each time a flush returned (for
    /// harnesses that kill the run and check what was recovered).
    #[arg(long)]
    log_flushes: bool,
    /// Keep every flushed tick: a history (`<out>.history`, mirrored in --out) that
    /// `--resume --at-step` reloads, xarray reads per component and MDAnalysis reads as H5MD
    /// (one particle group per cloud).
    #[arg(long)]
    history: bool,
    /// With --history: compress each array twice, once for the history and once for --out,
    /// instead of once for both (for comparisons; the files are the same).
    #[arg(long, requires = "history")]
    no_shared_encoding: bool,
    /// With --resume: continue from this stored step of the file's history (into another
    /// --out, or in place: the history after the step is then cut off).
    #[arg(long, value_name = "S", requires = "resume")]
    at_step: Option<u64>,
    /// Background flushes: each tick's arrays are copied out and encoded and written by a
    /// writer thread while the next tick runs (the tick commits when the writer is done).
    #[arg(long)]
    background: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

impl Args {
    /// No progress bar wanted.
    pub(crate) fn quiet(&self) -> bool {
        self.quiet
    }

    /// The run's configuration.
    pub(crate) fn config(&self) -> Config {
        Config {
            particles: usize::try_from(self.particles).unwrap_or(usize::MAX),
            clouds: self.clouds as usize,
            seed: self.seed,
            ticks: self.ticks,
            out: self.out.clone(),
            io: IoOptions {
                compression: self.compression,
                threads: self.threads.map(usize::from),
            },
            flush_every: self.flush_every.get(),
            snapshot_every: self.snapshot_every,
            snapshot_dir: self.snapshot_dir.clone(),
            resume: self.resume.clone(),
            durability: self.durability,
            log_flushes: self.log_flushes,
            history: self.history,
            share_encoded: !self.no_shared_encoding,
            background: self.background,
            at_step: self.at_step,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let a = Args::try_parse_from(["sim"]).unwrap();
        assert_eq!(a.config().particles, 200_000);
        for bad in [
            &["sim", "--compression", "gzip"][..],
            &["sim", "--particles", "0"],
            &["sim", "--flush-every", "0"],
            &["sim", "--resume", "x.h5", "--particles", "10"],
            &["sim", "--threads", "0"],
        ] {
            assert!(Args::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }
}
