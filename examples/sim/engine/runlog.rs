//! The run log: per-tick timings, stored in the output file as the object `/run_log`, outside
//! `/ecs`. Timings are not world state: they differ from run to run, so they are neither in the
//! checksum nor loaded into the world; `plot.py` draws them.

use bevy_ecs::world::World;
use h5pom::Object;
use h5pom::ecs::H5Sync;
use ndarray::Array1;

use super::driver::FlushSample;

/// The name of the run log at the root of the output file.
pub(crate) const RUN_LOG: &str = "run_log";

/// One row per tick (and one for the final flush, if it wrote).
#[derive(Object, Clone, Debug, Default, PartialEq)]
#[h5pom(no_ext, tag = "SimRunLog")]
pub(crate) struct RunLog {
    /// The step completed by the row's tick.
    pub(crate) step: Array1<u64>,
    /// Wall time of the tick (simulation and flush), seconds.
    pub(crate) tick_seconds: Array1<f64>,
    /// Wall time of the flush in that tick, seconds (0: no flush).
    pub(crate) flush_seconds: Array1<f64>,
    /// Array bytes that flush wrote, before compression.
    pub(crate) flush_bytes: Array1<u64>,
    /// The same, as stored (after compression).
    pub(crate) flush_stored: Array1<u64>,
}

/// Rows being collected during a run.
#[derive(Debug, Default)]
pub(crate) struct RunLogRows {
    step: Vec<u64>,
    tick: Vec<f64>,
    flush: Vec<f64>,
    bytes: Vec<u64>,
    stored: Vec<u64>,
}

impl RunLogRows {
    /// A row; `flush` is all zeros for a tick without flush.
    pub(crate) fn push(&mut self, step: u64, tick: f64, flush: FlushSample) {
        self.step.push(step);
        self.tick.push(tick);
        self.flush.push(flush.duration.as_secs_f64());
        self.bytes.push(flush.bytes);
        self.stored.push(flush.stored);
    }

    /// Appends the rows to the file's run log (creating it), keeping earlier runs' rows when
    /// the run continued the same file. Written as part of a commit ([`H5Sync::flush_with`]),
    /// so a crash never leaves a half-written log.
    pub(crate) fn save(
        self,
        world: &mut World,
        sync: &mut H5Sync,
    ) -> Result<(), h5pom::ecs::EcsError> {
        let root = sync.file().root();
        let mut log = if root.contains(RUN_LOG)? {
            root.load::<RunLog>(RUN_LOG)?
        } else {
            RunLog::default()
        };
        let cat = |a: &Array1<f64>, b: Vec<f64>| a.iter().copied().chain(b).collect();
        let cat_u = |a: &Array1<u64>, b: Vec<u64>| a.iter().copied().chain(b).collect();
        log = RunLog {
            step: cat_u(&log.step, self.step),
            tick_seconds: cat(&log.tick_seconds, self.tick),
            flush_seconds: cat(&log.flush_seconds, self.flush),
            flush_bytes: cat_u(&log.flush_bytes, self.bytes),
            flush_stored: cat_u(&log.flush_stored, self.stored),
        };
        drop(root);
        sync.flush_with(world, &|file| file.root().insert(RUN_LOG, &log).map(|_| ()))?;
        Ok(())
    }
}
