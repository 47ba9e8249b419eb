//! The parallel array encode/decode pipeline.
//!
//! Arrays are stored as chunked HDF5 datasets (every axis unlimited) with an optional
//! byte-shuffle and a codec (deflate, LZ4, Zstd) registered in the dataset creation property
//! list exactly as h5py and hdf5plugin register them, so the files read everywhere. The
//! pipeline bypasses HDF5's own (single-threaded) filter pipeline: chunks are shuffled and
//! compressed on a rayon pool and handed, in order, to one writer (the calling thread) that
//! stores them with `H5Dwrite_chunk`; reads fetch stored chunks with `H5Dread_chunk` and decode
//! them in parallel. See `docs/PIPELINE.md` for the chunk-shape rule, the codec formats and the
//! threading model.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use h5pom_store::pipeline::{ArrayOptions, Concurrency, Filters, Pipeline};
//! let file = hdf5::File::create("out.h5")?;
//! let a = ndarray::Array2::<f32>::zeros((1000, 1000));
//! let mut p = Pipeline::new(Concurrency::default());
//! p.write(&file, "a", a.view(), &ArrayOptions::with_filters(Filters::lz4()))?;
//! let back: ndarray::Array2<f32> = p.read(&file.dataset("a")?)?;
//! assert_eq!(a, back);
//! # Ok(()) }
//! ```

mod chunking;
mod codec;
mod decode;
mod dtype;
mod encode;
mod error;
mod options;
mod share;
mod shuffle;

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::sync::{Arc, Mutex, PoisonError};

pub use chunking::{CHUNK_MAX_BYTES, CHUNK_TARGET_BYTES, auto_chunk};
pub(crate) use dtype::as_bytes;
pub use dtype::{Dtype, Element};
pub use encode::{FrameJob, WriteJob, WriteStats};
pub use error::{PipelineError, PipelineResult};
pub use options::{
    ArrayOptions, Codec, Concurrency, DEFLATE_FILTER_ID, Filters, LZ4_FILTER_ID, SHUFFLE_FILTER_ID,
    ZSTD_FILTER_ID,
};
pub use share::{ShareScope, share_encoded_chunks};

/// Per-worker reusable buffers and codec contexts.
#[derive(Default)]
pub(crate) struct Scratch {
    pub(crate) codec: codec::CodecState,
    /// Gathered (padded) chunk data.
    pub(crate) gather: Vec<u8>,
    /// Shuffled data (encode) / intermediate decode stage.
    pub(crate) shuf: Vec<u8>,
    /// Stored chunk bytes read from the file.
    pub(crate) raw: Vec<u8>,
}

/// Output buffers kept for reuse beyond this many are freed.
const MAX_POOLED_BUFS: usize = 64;

/// The array encode/decode pipeline: a concurrency setting plus buffers reused across calls
/// (fresh allocations of chunk-sized buffers cost page faults on every call).
pub struct Pipeline {
    concurrency: Concurrency,
    /// The private pool of [`Concurrency::Threads`] (or the error building it).
    own_pool: Option<Result<Arc<rayon::ThreadPool>, String>>,
    scratch: Mutex<Vec<Scratch>>,
    bufs: Mutex<Vec<Vec<u8>>>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl Default for Pipeline {
    fn default() -> Self {
        Self::new(Concurrency::default())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Pipeline {
    /// A pipeline running on `c`. [`Concurrency::Threads`] builds its private pool here.
    pub fn new(c: Concurrency) -> Self {
        let own_pool = match &c {
            Concurrency::Threads(n) => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(*n)
                    .thread_name(|i| format!("h5pom-pipeline-{i}"))
                    .build()
                    .map(Arc::new)
                    .map_err(|e| e.to_string()),
            ),
            _ => None,
        };
        Self {
            concurrency: c,
            own_pool,
            scratch: Mutex::new(Vec::new()),
            bufs: Mutex::new(Vec::new()),
        }
    }

    /// The concurrency setting.
    pub fn concurrency(&self) -> &Concurrency {
        &self.concurrency
    }

    /// Number of encode/decode workers (0 = serial).
    pub fn workers(&self) -> usize {
        match (&self.concurrency, &self.own_pool) {
            (Concurrency::Serial, _) => 0,
            (Concurrency::Threads(_), Some(Ok(p))) | (Concurrency::Pool(p), _) => {
                p.current_num_threads()
            }
            (Concurrency::Threads(_), _) => 0,
            (Concurrency::Global, _) => rayon::current_num_threads(),
        }
    }

    fn pool(&self) -> Option<&rayon::ThreadPool> {
        match (&self.concurrency, &self.own_pool) {
            (Concurrency::Threads(_), Some(Ok(p))) | (Concurrency::Pool(p), _) => Some(p),
            _ => None,
        }
    }

    pub(crate) fn check_pool(&self) -> PipelineResult<()> {
        match &self.own_pool {
            Some(Err(e)) => Err(PipelineError::ThreadPool(e.clone())),
            _ => Ok(()),
        }
    }

    pub(crate) fn take_scratch(&self) -> Scratch {
        lock(&self.scratch).pop().unwrap_or_default()
    }

    pub(crate) fn put_scratch(&self, s: Scratch) {
        lock(&self.scratch).push(s);
    }

    pub(crate) fn take_buf(&self) -> Vec<u8> {
        lock(&self.bufs).pop().unwrap_or_default()
    }

    pub(crate) fn put_buf(&self, b: Vec<u8>) {
        let mut bufs = lock(&self.bufs);
        if bufs.len() < MAX_POOLED_BUFS {
            bufs.push(b);
        }
    }

    /// Runs `f` inside a rayon scope of the configured pool, `f` itself on the calling thread.
    fn in_scope<'s, R>(&'s self, f: impl for<'a> FnOnce(&'a rayon::Scope<'s>) -> R) -> R {
        match self.pool() {
            Some(p) => p.in_place_scope(f),
            None => rayon::in_place_scope(f),
        }
    }

    /// Runs `before()`, then `produce(i)` for `i in 0..n` on the workers and `consume(i, value)`
    /// on the calling thread in index order. At most `2 * workers + 1` chunks are in flight
    /// (each a separate pool job, spawned as earlier ones are consumed), so memory stays bounded
    /// and no worker ever blocks: this is safe even when the caller is itself a worker of the
    /// pool. With no workers (or one task) everything runs inline.
    pub(crate) fn run_ordered<U, B, P, C>(
        &self,
        n: usize,
        before: B,
        produce: P,
        mut consume: C,
    ) -> PipelineResult<()>
    where
        U: Send,
        B: FnOnce() -> PipelineResult<()>,
        P: Fn(usize, &mut Scratch) -> PipelineResult<U> + Sync,
        C: FnMut(usize, U) -> PipelineResult<()>,
    {
        let workers = self.workers().min(n);
        if workers == 0 || n == 1 {
            before()?;
            let mut s = self.take_scratch();
            let r = (0..n).try_for_each(|i| consume(i, produce(i, &mut s)?));
            self.put_scratch(s);
            return r;
        }
        let window = 2 * workers + 1;
        let stop = AtomicBool::new(false);
        let (tx, rx) = channel::<(usize, PipelineResult<U>)>();
        let (stop, produce) = (&stop, &produce);
        self.in_scope(move |scope| {
            let spawn = |i: usize| {
                let tx = tx.clone();
                scope.spawn(move |_| {
                    let r = if stop.load(Ordering::Relaxed) {
                        Err(PipelineError::Cancelled)
                    } else {
                        let mut s = self.take_scratch();
                        let r = catch_unwind(AssertUnwindSafe(|| produce(i, &mut s)))
                            .unwrap_or_else(|p| Err(PipelineError::WorkerPanicked(panic_msg(&p))));
                        self.put_scratch(s);
                        r
                    };
                    // The writer may have stopped listening after an error: nothing to do then.
                    let _ = tx.send((i, r));
                });
            };
            let mut spawned = 0;
            while spawned < n.min(window) {
                spawn(spawned);
                spawned += 1;
            }
            let in_pool = rayon::current_thread_index().is_some();
            let mut pending: BTreeMap<usize, PipelineResult<U>> = BTreeMap::new();
            let run = || -> PipelineResult<()> {
                before()?;
                let mut want = 0;
                while want < n {
                    let Some(r) = pending.remove(&want) else {
                        let (i, r) = recv(&rx, in_pool)?;
                        pending.insert(i, r);
                        continue;
                    };
                    consume(want, r?)?;
                    want += 1;
                    if spawned < n {
                        spawn(spawned);
                        spawned += 1;
                    }
                }
                Ok(())
            };
            let r = run();
            if r.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
            r
        })
    }

    /// Runs `work(i)` for `i in 0..n` on the workers and the calling thread, in any order;
    /// stops early and returns the first error.
    pub(crate) fn run_unordered<W>(&self, n: usize, work: W) -> PipelineResult<()>
    where
        W: Fn(usize, &mut Scratch) -> PipelineResult<()> + Sync,
    {
        let workers = self.workers().min(n);
        let next = AtomicUsize::new(0);
        let first_err: Mutex<Option<PipelineError>> = Mutex::new(None);
        let run = || {
            let mut s = self.take_scratch();
            while lock(&first_err).is_none() {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                if let Err(e) = work(i, &mut s) {
                    lock(&first_err).get_or_insert(e);
                    break;
                }
            }
            self.put_scratch(s);
        };
        if workers <= 1 {
            run();
        } else {
            let run = &run;
            self.in_scope(move |scope| {
                for _ in 1..workers {
                    scope.spawn(move |_| run());
                }
                run();
            });
        }
        match first_err
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Receives the next message; a caller that is itself a rayon worker must not block (it may
/// hold queued encode jobs), so it runs pool work while waiting.
fn recv<T>(rx: &Receiver<T>, in_pool: bool) -> PipelineResult<T> {
    if !in_pool {
        return rx.recv().map_err(|_| PipelineError::Cancelled);
    }
    loop {
        match rx.try_recv() {
            Ok(m) => return Ok(m),
            Err(TryRecvError::Empty) => {
                if !matches!(rayon::yield_now(), Some(rayon::Yield::Executed)) {
                    std::thread::yield_now();
                }
            }
            Err(TryRecvError::Disconnected) => return Err(PipelineError::Cancelled),
        }
    }
}

fn panic_msg(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::codec::CodecState;
    use super::options::Codec;
    use super::shuffle::{shuffle, unshuffle};

    /// Single-core speed of each stage on 16 MiB of noisy-sine f32 (where the time goes):
    /// `cargo test --release -p h5pom-store stage_speeds -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing report, run by hand in release"]
    fn stage_speeds() {
        let n = 4 << 20;
        let src: Vec<u8> = (0..n)
            .flat_map(|i| ((i as f32 * 1e-3).sin() * 1000.0 + (i % 7) as f32 * 1e-3).to_le_bytes())
            .collect();
        // Pre-touched buffers: first-touch page faults would dominate otherwise.
        let mut a = vec![1u8; src.len()];
        let mut b = vec![1u8; src.len()];
        for c in src.chunks(1 << 20).zip(a.chunks_mut(1 << 20)) {
            shuffle(c.0, c.1, 4);
        }
        let mb = |t: Instant| src.len() as f64 / t.elapsed().as_secs_f64() / 1e6;
        let t = Instant::now();
        for c in src.chunks(1 << 20).zip(a.chunks_mut(1 << 20)) {
            shuffle(c.0, c.1, 4);
        }
        println!("shuffle    {:>8.0} MB/s", mb(t));
        let t = Instant::now();
        for c in a.chunks(1 << 20).zip(b.chunks_mut(1 << 20)) {
            unshuffle(c.0, c.1, 4);
        }
        println!("unshuffle  {:>8.0} MB/s", mb(t));
        assert_eq!(b, src);
        let t = Instant::now();
        b.copy_from_slice(&src);
        println!("memcpy     {:>8.0} MB/s", mb(t));
        let mut st = CodecState::default();
        let mut out = Vec::new();
        for codec in [
            Codec::Deflate { level: 1 },
            Codec::Lz4,
            Codec::Zstd { level: 1 },
        ] {
            let t = Instant::now();
            let mut total = 0;
            for c in a.chunks(1 << 20) {
                total += st.compress(codec, c, &mut out).unwrap();
            }
            println!(
                "{:<10} {:>8.0} MB/s ratio {:.2}",
                codec.name(),
                mb(t),
                src.len() as f64 / total as f64
            );
        }
    }
}
