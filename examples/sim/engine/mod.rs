//! The simulation itself, without its command line or terminal output: the model, its
//! systems, the run loop with snapshots and resume, and the checksum. `tests/sim_resume.rs`
//! includes this module as it is, so the test runs exactly the example's code.

pub(crate) mod checksum;
pub(crate) mod driver;
pub(crate) mod init;
pub(crate) mod io_options;
pub(crate) mod model;
pub(crate) mod physics;
pub(crate) mod runlog;
pub(crate) mod sharded;
pub(crate) mod systems;

use std::path::PathBuf;

pub(crate) use driver::{Config, Observer, Outcome, Started, TickReport};

/// Runs the simulation per `cfg`. Built with the `mpi` feature, a run under `mpirun` with more
/// than one rank is sharded over the ranks; a run of one process is an ordinary one, except
/// that resuming a sharded run continues it as a sharded run of one process.
pub(crate) fn run(cfg: &Config, obs: &mut dyn Observer) -> Result<Outcome, SimError> {
    #[cfg(feature = "mpi")]
    {
        sharded::run_mpi(cfg, obs)
    }
    #[cfg(not(feature = "mpi"))]
    {
        if cfg.resume.as_deref().is_some_and(sharded::is_sharded) {
            return sharded::run_sharded(cfg, obs, h5pom::ecs::Solo);
        }
        driver::run(cfg, obs)
    }
}
pub(crate) use io_options::{Compression, IoOptions};

/// Why a run failed. Printed as one line by the example.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum SimError {
    /// The ECS bridge failed (open, load, flush, snapshot).
    #[error(transparent)]
    Ecs(#[from] h5pom::ecs::EcsError),
    /// The store failed (the run log).
    #[error(transparent)]
    Store(#[from] h5pom::Error),
    /// `--threads` could not be applied.
    #[error(transparent)]
    Threads(#[from] io_options::ThreadsError),
    /// A file-system operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// `--resume` named an h5pom ECS file that is not a simulation.
    #[error("{}: not a simulation file (no {missing} resource)", path.display())]
    NotASimulation {
        /// The file.
        path: PathBuf,
        /// The resource that is missing.
        missing: &'static str,
    },
    /// Nonsensical sizes.
    #[error("--particles {particles} must be at least --clouds {clouds}, and --clouds at least 1")]
    Sizes {
        /// Requested particles.
        particles: usize,
        /// Requested clouds.
        clouds: usize,
    },
    /// The schedule is ambiguous (two systems touch the same data in no fixed order).
    #[error("schedule: {0}")]
    Schedule(String),
    /// An option that this kind of run does not support.
    #[error("{0}")]
    Unsupported(String),
}
