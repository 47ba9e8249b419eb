//! The write side: jobs, dataset preparation (create / replace / reuse) and chunk encoding.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdf5::filters::Filter;
use hdf5::{Dataset, Group};
use ndarray::{ArrayView, Dimension};

use super::chunking::{Grid, auto_chunk, contiguous_range, for_each_run};
use super::codec::ensure_len;
use super::dtype::{Dtype, Element, as_bytes};
use super::error::{PipelineError, PipelineResult};
use super::options::{ArrayOptions, Codec};
use super::share;
use super::shuffle::shuffle;
use super::{Pipeline, Scratch};
use crate::ffi::chunk::{self as ffi, DcplFilter, NewLayout};

/// HDF5 refuses chunks of 4 GiB or more.
const MAX_CHUNK_BYTES: u64 = (1 << 32) - 1;

/// Owned, type-erased element storage (a C-order copy of a non-standard-layout view).
trait OwnedBytes: Send + Sync {
    fn bytes(&self) -> &[u8];
}

impl<T: Element> OwnedBytes for Vec<T> {
    fn bytes(&self) -> &[u8] {
        as_bytes(self)
    }
}

enum JobData<'a> {
    Borrowed(&'a [u8]),
    Owned(Box<dyn OwnedBytes + 'a>),
}

/// One array to write: destination, type-erased C-order data, dtype, shape and options.
///
/// Jobs of different element types and ranks can share one [`Pipeline::write_many`] call.
pub struct WriteJob<'a> {
    group: &'a Group,
    name: &'a str,
    data: JobData<'a>,
    dtype: Dtype,
    shape: Vec<usize>,
    opts: &'a ArrayOptions,
    /// Chunks to write when the dataset is reused in place (C-order chunk numbers); `None`
    /// writes every chunk.
    only: Option<&'a [usize]>,
}

impl<'a> WriteJob<'a> {
    /// A job writing `bytes` (C order, native byte order) of `dtype` and `shape`.
    pub(crate) fn from_bytes(
        group: &'a Group,
        name: &'a str,
        bytes: &'a [u8],
        dtype: Dtype,
        shape: Vec<usize>,
        opts: &'a ArrayOptions,
    ) -> Self {
        Self {
            group,
            name,
            data: JobData::Borrowed(bytes),
            dtype,
            shape,
            opts,
            only: None,
        }
    }

    /// Writes only the chunks numbered in `chunks` (C order over the chunk grid) if the
    /// dataset can be reused in place; the caller guarantees every other chunk already holds
    /// the same bytes in the file. A dataset that has to be created or replaced is written
    /// whole. Chunks are always encoded and stored with `H5Dwrite_chunk`, filters or not.
    pub(crate) fn only_chunks(mut self, chunks: &'a [usize]) -> Self {
        self.only = Some(chunks);
        self
    }

    /// A job writing `view` to dataset `name` of `group`.
    ///
    /// A standard-layout (C-contiguous) view is borrowed without copying; any other layout
    /// (strided, Fortran order, negative strides) is copied once into C order here.
    pub fn new<T: Element, D: Dimension>(
        group: &'a Group,
        name: &'a str,
        view: ArrayView<'a, T, D>,
        opts: &'a ArrayOptions,
    ) -> Self {
        let shape = view.shape().to_vec();
        let data = match view.to_slice() {
            Some(s) => JobData::Borrowed(as_bytes(s)),
            None => JobData::Owned(Box::new(view.iter().copied().collect::<Vec<T>>())),
        };
        Self {
            group,
            name,
            data,
            dtype: T::DTYPE,
            shape,
            opts,
            only: None,
        }
    }

    /// The array's bytes in C order.
    fn bytes(&self) -> &[u8] {
        match &self.data {
            JobData::Borrowed(b) => b,
            JobData::Owned(o) => o.bytes(),
        }
    }

    /// Dataset name.
    pub fn name(&self) -> &str {
        self.name
    }

    /// Element type.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// Array shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn invalid(&self, reason: impl Into<String>) -> PipelineError {
        PipelineError::InvalidOptions {
            dataset: self.name.to_owned(),
            reason: reason.into(),
        }
    }
}

/// What a [`Pipeline::write_many`] call did.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct WriteStats {
    /// Datasets written.
    pub datasets: usize,
    /// Chunks encoded and written with `H5Dwrite_chunk` (plain writes count none).
    pub chunks: usize,
    /// Bytes of array data given (unpadded).
    pub bytes_in: u64,
    /// Bytes handed to HDF5 (compressed chunk sizes, padding included; plain data as is).
    pub bytes_stored: u64,
    /// Time the writer spent inside HDF5 write calls.
    pub write_time: Duration,
    /// Of `chunks`, those taken already encoded from a frame of the same bytes written in the
    /// same sharing scope ([`share_encoded_chunks`](super::share_encoded_chunks)).
    pub chunks_shared: usize,
}

impl WriteStats {
    /// Compression ratio `bytes_in / bytes_stored` (1.0 when nothing was stored).
    pub fn ratio(&self) -> f64 {
        if self.bytes_stored == 0 {
            1.0
        } else {
            self.bytes_in as f64 / self.bytes_stored as f64
        }
    }
}

/// How a prepared job is written.
pub(crate) enum Kind {
    /// No filters (or rank 0): chunks written straight from the caller's memory (rank 0: one
    /// `H5Dwrite`), on the calling thread.
    Plain,
    /// Chunks encoded by the pipeline and written with `H5Dwrite_chunk`.
    Encoded,
}

/// A job whose dataset exists with the right shape, dtype, chunking and filters.
pub(crate) struct Prepared<'j> {
    pub(crate) ds: Dataset,
    pub(crate) kind: Kind,
    /// Borrowed from the job: only `Sync` data, shared with encoder threads.
    pub(crate) spec: EncodeSpec<'j>,
    /// The chunks to write (`None`: all of them).
    pub(crate) only: Option<&'j [usize]>,
}

/// Everything an encoder thread needs about one job.
pub(crate) struct EncodeSpec<'j> {
    pub(crate) name: &'j str,
    pub(crate) bytes: &'j [u8],
    pub(crate) dtype: Dtype,
    pub(crate) elem: usize,
    pub(crate) grid: Grid,
    pub(crate) shuffle: bool,
    pub(crate) codec: Codec,
}

fn hdf5_filters(filters: &[DcplFilter]) -> Vec<Filter> {
    filters
        .iter()
        .map(|f| match f {
            DcplFilter::Shuffle => Filter::Shuffle,
            DcplFilter::Deflate(l) => Filter::Deflate(*l as u8),
            DcplFilter::Optional { id, cd_values } => Filter::User(*id, cd_values.clone()),
        })
        .collect()
}

/// Validates the job's options and returns its chunk shape (empty for rank 0).
fn chunk_shape(job: &WriteJob<'_>) -> PipelineResult<Vec<usize>> {
    job.opts
        .filters
        .codec
        .validate()
        .map_err(|r| job.invalid(r))?;
    let elem = job.dtype.size();
    if job.shape.is_empty() {
        return Ok(Vec::new());
    }
    let chunk = match &job.opts.chunk {
        None => auto_chunk(&job.shape, elem),
        Some(c) => {
            if c.len() != job.shape.len() {
                return Err(job.invalid(format!(
                    "chunk {c:?} has rank {}, the array has rank {}",
                    c.len(),
                    job.shape.len()
                )));
            }
            if c.contains(&0) {
                return Err(job.invalid(format!("chunk {c:?} has a zero-length axis")));
            }
            c.clone()
        }
    };
    let bytes = chunk
        .iter()
        .try_fold(elem as u64, |acc, &c| acc.checked_mul(c as u64));
    if bytes.is_none_or(|b| b > MAX_CHUNK_BYTES) {
        return Err(job.invalid(format!("chunk {chunk:?} is 4 GiB or larger")));
    }
    Ok(chunk)
}

/// Opens `name` if it can be reused as is (after a resize if only the shape differs).
fn reusable(
    job: &WriteJob<'_>,
    chunk: &[usize],
    filters: &[Filter],
) -> PipelineResult<Option<Dataset>> {
    if !job.group.link_exists(job.name) {
        return Ok(None);
    }
    let ds = job.group.dataset(job.name)?;
    let native = job.dtype.datatype()?;
    let same_type = ds.dtype()? == native;
    let same_layout = if job.shape.is_empty() {
        ds.ndim() == 0 && !ds.is_chunked()
    } else {
        ds.ndim() == job.shape.len()
            && ds.chunk().as_deref() == Some(chunk)
            && ds.filters() == filters
    };
    if !(same_type && same_layout) {
        return Ok(None);
    }
    if ds.shape() != job.shape && ds.resize(job.shape.as_slice()).is_err() {
        return Ok(None);
    }
    Ok(Some(ds))
}

/// Creates, replaces or reuses the job's dataset.
pub(crate) fn prepare<'j>(job: &'j WriteJob<'_>) -> PipelineResult<Prepared<'j>> {
    let chunk = chunk_shape(job)?;
    let elem = job.dtype.size();
    let bytes = job.bytes();
    let expected_len = job.shape.iter().try_fold(elem, |a, &s| a.checked_mul(s));
    if expected_len != Some(bytes.len()) {
        return Err(job.invalid("array data does not match its shape"));
    }
    let rank0 = job.shape.is_empty();
    let dcpl_filters = if rank0 {
        Vec::new()
    } else {
        job.opts.filters.dcpl_filters()
    };
    let filters = hdf5_filters(&dcpl_filters);
    let (ds, reused) = match reusable(job, &chunk, &filters)? {
        Some(ds) => (ds, true),
        None => {
            if job.group.link_exists(job.name) {
                job.group.unlink(job.name)?;
            }
            let layout = if rank0 {
                NewLayout::Scalar
            } else {
                NewLayout::Chunked {
                    chunk: &chunk,
                    filters: &dcpl_filters,
                }
            };
            let dtype = job.dtype.datatype()?;
            let ds = ffi::create_dataset(job.group, job.name, &dtype, &job.shape, &layout)?;
            (ds, false)
        }
    };
    // A partial rewrite applies only to a dataset reused in place.
    let only = job.only.filter(|_| reused && !rank0);
    let kind = if rank0 || (job.opts.filters.is_plain() && only.is_none()) {
        Kind::Plain
    } else {
        Kind::Encoded
    };
    let grid = if rank0 {
        Grid::new(&[], &[])
    } else {
        Grid::new(&job.shape, &chunk)
    };
    let spec = EncodeSpec {
        name: job.name,
        bytes,
        dtype: job.dtype,
        elem,
        grid,
        shuffle: job.opts.filters.shuffle,
        codec: job.opts.filters.codec,
    };
    Ok(Prepared {
        ds,
        kind,
        spec,
        only,
    })
}

/// Encodes chunk `idx` of `spec` into `out`; returns the encoded length.
pub(crate) fn encode_chunk(
    spec: &EncodeSpec<'_>,
    idx: usize,
    scratch: &mut Scratch,
    out: &mut Vec<u8>,
) -> PipelineResult<usize> {
    let grid = &spec.grid;
    let offset = grid.offset(idx);
    let cbytes = grid.chunk_elems() * spec.elem;
    let Scratch {
        codec,
        gather,
        shuf,
        ..
    } = scratch;
    let src: &[u8] = match contiguous_range(&grid.shape, &grid.chunk, &offset, spec.elem) {
        Some(r) => &spec.bytes[r],
        None => {
            ensure_len(gather, cbytes);
            let buf = &mut gather[..cbytes];
            if offset
                .iter()
                .zip(&grid.chunk)
                .zip(&grid.shape)
                .any(|((&o, &c), &s)| o as usize + c > s)
            {
                buf.fill(0); // edge chunk: HDF5 stores full-size chunks, padding included
            }
            for_each_run(&grid.shape, &grid.chunk, &offset, spec.elem, |a, c, n| {
                buf[c..c + n].copy_from_slice(&spec.bytes[a..a + n]);
            });
            buf
        }
    };
    let res = match (spec.shuffle, spec.codec) {
        (true, Codec::None) => {
            ensure_len(out, cbytes);
            shuffle(src, &mut out[..cbytes], spec.elem);
            Ok(cbytes)
        }
        (true, c) => {
            ensure_len(shuf, cbytes);
            shuffle(src, &mut shuf[..cbytes], spec.elem);
            codec.compress(c, &shuf[..cbytes], out)
        }
        (false, c) => codec.compress(c, src, out),
    };
    res.map_err(|reason| PipelineError::Encode {
        dataset: spec.name.to_owned(),
        codec: spec.codec.name(),
        chunk: offset,
        reason,
    })
}

/// An encoded chunk on its way to the writer.
pub(crate) struct Encoded {
    pub(crate) buf: Vec<u8>,
    pub(crate) len: usize,
}

impl Pipeline {
    /// Writes many arrays in one parallel pass over all their chunks (e.g. a flush of many
    /// dirty arrays).
    ///
    /// Each dataset is created, or replaced when its dtype, rank, chunk shape or filters
    /// differ, or reused in place (resized if only the shape differs). Datasets are chunked
    /// with every axis unlimited, filters registered exactly as h5py/hdf5plugin do. Chunks of
    /// all jobs are encoded on the pool and written in order by the calling thread with
    /// `H5Dwrite_chunk`, overlapping the encoding of the following chunks. Unfiltered arrays
    /// have their chunks written straight from the caller's memory (no copy but of edge chunks).
    pub fn write_many(&mut self, jobs: &[WriteJob<'_>]) -> PipelineResult<WriteStats> {
        let this: &Pipeline = self;
        this.check_pool()?;
        let prepared = jobs
            .iter()
            .map(prepare)
            .collect::<PipelineResult<Vec<_>>>()?;
        let mut stats = WriteStats {
            datasets: prepared.len(),
            ..WriteStats::default()
        };
        let mut tasks: Vec<(usize, usize)> = Vec::new();
        for (j, p) in prepared.iter().enumerate() {
            stats.bytes_in += p.spec.bytes.len() as u64;
            if matches!(p.kind, Kind::Encoded) {
                let n = p.spec.grid.len();
                match p.only {
                    Some(only) => tasks.extend(only.iter().filter(|&&c| c < n).map(|&c| (j, c))),
                    None => tasks.extend((0..n).map(|c| (j, c))),
                }
            }
        }
        let specs: Vec<&EncodeSpec<'_>> = prepared.iter().map(|p| &p.spec).collect();
        let mut write_time = Duration::ZERO;
        let mut bytes_stored = 0u64;
        let plain = || -> PipelineResult<()> {
            let mut edge: Option<(Scratch, Vec<u8>)> = None;
            for p in prepared.iter().filter(|p| matches!(p.kind, Kind::Plain)) {
                let t = Instant::now();
                let grid = &p.spec.grid;
                if grid.shape.is_empty() {
                    let mem_type = p.spec.dtype.datatype()?;
                    ffi::write_all(&p.ds, &mem_type, p.spec.bytes)?;
                } else {
                    // Each chunk straight from the caller's memory with `H5Dwrite_chunk`:
                    // no copy into HDF5's chunk buffers and no type-conversion pass. A chunk
                    // that is not one contiguous range (an edge chunk, padded) is gathered.
                    for c in 0..grid.len() {
                        let offset = grid.offset(c);
                        match contiguous_range(&grid.shape, &grid.chunk, &offset, p.spec.elem) {
                            Some(r) => ffi::write_chunk(&p.ds, &offset, 0, &p.spec.bytes[r])?,
                            None => {
                                let (scratch, buf) =
                                    edge.get_or_insert_with(|| (this.take_scratch(), Vec::new()));
                                let len = encode_chunk(&p.spec, c, scratch, buf)?;
                                ffi::write_chunk(&p.ds, &offset, 0, &buf[..len])?;
                            }
                        }
                    }
                }
                write_time += t.elapsed();
                bytes_stored += p.spec.bytes.len() as u64;
            }
            if let Some((scratch, _)) = edge {
                this.put_scratch(scratch);
            }
            Ok(())
        };
        // Chunks a history frame of the same bytes encoded in this flush are taken as they are.
        let shared: Vec<Option<Arc<share::Shared>>> = if share::active() {
            prepared
                .iter()
                .map(|p| {
                    let grid = &p.spec.grid;
                    let key = share::Key::new(&p.spec, &grid.shape, &grid.chunk);
                    share::lookup(&key, p.spec.bytes).filter(|s| s.chunks.len() == grid.len())
                })
                .collect()
        } else {
            Vec::new()
        };
        let produce = |i: usize, scratch: &mut Scratch| -> PipelineResult<Encoded> {
            let (j, c) = tasks[i];
            let mut buf = this.take_buf();
            if let Some(Some(s)) = shared.get(j) {
                buf.clear();
                buf.extend_from_slice(&s.chunks[c]);
                return Ok(Encoded {
                    len: buf.len(),
                    buf,
                });
            }
            match encode_chunk(specs[j], c, scratch, &mut buf) {
                Ok(len) => Ok(Encoded { buf, len }),
                Err(e) => {
                    this.put_buf(buf);
                    Err(e)
                }
            }
        };
        let mut chunk_time = Duration::ZERO;
        let mut chunk_bytes = 0u64;
        let consume = |i: usize, enc: Encoded| -> PipelineResult<()> {
            let (j, c) = tasks[i];
            let p = &prepared[j];
            let offset = p.spec.grid.offset(c);
            let t = Instant::now();
            ffi::write_chunk(&p.ds, &offset, 0, &enc.buf[..enc.len])?;
            chunk_time += t.elapsed();
            chunk_bytes += enc.len as u64;
            this.put_buf(enc.buf);
            Ok(())
        };
        this.run_ordered(tasks.len(), plain, produce, consume)?;
        stats.chunks = tasks.len();
        stats.chunks_shared = tasks
            .iter()
            .filter(|&&(j, _)| matches!(shared.get(j), Some(Some(_))))
            .count();
        stats.bytes_stored = bytes_stored + chunk_bytes;
        stats.write_time = write_time + chunk_time;
        Ok(stats)
    }

    /// Writes one array (see [`write_many`](Self::write_many)).
    pub fn write<T: Element, D: Dimension>(
        &mut self,
        group: &Group,
        name: &str,
        a: ArrayView<'_, T, D>,
        opts: &ArrayOptions,
    ) -> PipelineResult<WriteStats> {
        self.write_many(&[WriteJob::new(group, name, a, opts)])
    }
}

/// One frame appended to a series: a dataset of shape `[frames, ...frame_shape]` chunked
/// `[1, ...chunk]`, so that each frame is its own chunks and an append writes only those.
pub struct FrameJob<'a> {
    pub(crate) group: &'a Group,
    pub(crate) name: &'a str,
    pub(crate) bytes: &'a [u8],
    pub(crate) dtype: Dtype,
    pub(crate) frame_shape: Vec<usize>,
    /// The frame's index along the leading axis.
    pub(crate) index: usize,
    /// Chunk shape of one frame (rank of the frame, entries >= 1).
    pub(crate) chunk: Vec<usize>,
    pub(crate) opts: &'a ArrayOptions,
    /// Publish the encoded chunks in a sharing scope (see `share`).
    pub(crate) share: bool,
}

impl FrameJob<'_> {
    fn invalid(&self, reason: impl Into<String>) -> PipelineError {
        PipelineError::InvalidOptions {
            dataset: self.name.to_owned(),
            reason: reason.into(),
        }
    }
}

impl Pipeline {
    /// Appends (or rewrites) frame `job.index` of a series dataset: creates it (every axis
    /// unlimited) or checks that it has the job's type, chunking and filters, grows its extent
    /// to hold the frame (trailing axes too: frames may grow), and writes the frame's chunks,
    /// encoded on the pool, with `H5Dwrite_chunk`. Other frames are not touched. A part of the
    /// extent no frame wrote reads as the dataset's fill value (zero).
    pub fn append_frame(&mut self, job: &FrameJob<'_>) -> PipelineResult<WriteStats> {
        let this: &Pipeline = self;
        this.check_pool()?;
        job.opts
            .filters
            .codec
            .validate()
            .map_err(|r| job.invalid(r))?;
        let elem = job.dtype.size();
        if job.frame_shape.is_empty() || job.chunk.len() != job.frame_shape.len() {
            return Err(job.invalid("a frame needs rank >= 1 and a chunk of the same rank"));
        }
        if job.chunk.contains(&0) {
            return Err(job.invalid(format!("chunk {:?} has a zero-length axis", job.chunk)));
        }
        let expected = job
            .frame_shape
            .iter()
            .try_fold(elem, |a, &s| a.checked_mul(s));
        if expected != Some(job.bytes.len()) {
            return Err(job.invalid("frame data does not match its shape"));
        }
        let mut full_chunk = vec![1];
        full_chunk.extend_from_slice(&job.chunk);
        // (Replaced by the stored chunk shape when the series exists.)
        let bytes = full_chunk
            .iter()
            .try_fold(elem as u64, |acc, &c| acc.checked_mul(c as u64));
        if bytes.is_none_or(|b| b > MAX_CHUNK_BYTES) {
            return Err(job.invalid(format!("chunk {full_chunk:?} is 4 GiB or larger")));
        }
        let mut want = vec![job.index + 1];
        want.extend_from_slice(&job.frame_shape);
        let dcpl_filters = job.opts.filters.dcpl_filters();
        let filters = hdf5_filters(&dcpl_filters);
        // An existing series keeps its chunk shape and filters: later frames are encoded
        // like the first ones, whatever the options are now.
        let mut job_filters = job.opts.filters;
        let ds = if job.group.link_exists(job.name) {
            let ds = job.group.dataset(job.name)?;
            let stored_filters = ds.filters();
            if stored_filters != filters {
                job_filters = super::decode::filters_of(&stored_filters).ok_or_else(|| {
                    job.invalid("the existing series has filters h5pom cannot write")
                })?;
            }
            let stored_chunk = ds.chunk();
            let same = ds.dtype()? == job.dtype.datatype()?
                && ds.ndim() == want.len()
                && stored_chunk.as_ref().is_some_and(|c| c.first() == Some(&1));
            if !same {
                return Err(job.invalid("the existing series has another type or rank"));
            }
            if let Some(c) = stored_chunk {
                full_chunk = c;
            }
            let shape = ds.shape();
            let grown: Vec<usize> = shape.iter().zip(&want).map(|(&a, &b)| a.max(b)).collect();
            if grown != shape {
                ds.resize(grown.as_slice())?;
            }
            ds
        } else {
            let layout = NewLayout::Chunked {
                chunk: &full_chunk,
                filters: &dcpl_filters,
            };
            ffi::create_dataset(job.group, job.name, &job.dtype.datatype()?, &want, &layout)?
        };
        let mut frame = vec![1];
        frame.extend_from_slice(&job.frame_shape);
        let spec = EncodeSpec {
            name: job.name,
            bytes: job.bytes,
            dtype: job.dtype,
            elem,
            grid: Grid::new(&frame, &full_chunk),
            shuffle: job_filters.shuffle,
            codec: job_filters.codec,
        };
        let n = spec.grid.len();
        let mut stats = WriteStats {
            datasets: 1,
            chunks: n,
            bytes_in: job.bytes.len() as u64,
            ..WriteStats::default()
        };
        let produce = |i: usize, scratch: &mut Scratch| -> PipelineResult<Encoded> {
            let mut buf = this.take_buf();
            match encode_chunk(&spec, i, scratch, &mut buf) {
                Ok(len) => Ok(Encoded { buf, len }),
                Err(e) => {
                    this.put_buf(buf);
                    Err(e)
                }
            }
        };
        // Inside a sharing scope, the encoded chunks are kept for a write of the same bytes
        // (the run file's copy of this frame), in order.
        let share = job.share && share::active() && (spec.shuffle || spec.codec != Codec::None);
        let mut kept: Vec<Vec<u8>> = Vec::new();
        let consume = |i: usize, enc: Encoded| -> PipelineResult<()> {
            let mut offset = spec.grid.offset(i);
            offset[0] = job.index as u64;
            let t = Instant::now();
            ffi::write_chunk(&ds, &offset, 0, &enc.buf[..enc.len])?;
            stats.write_time += t.elapsed();
            stats.bytes_stored += enc.len as u64;
            if share {
                let mut b = enc.buf;
                b.truncate(enc.len);
                kept.push(b);
            } else {
                this.put_buf(enc.buf);
            }
            Ok(())
        };
        this.run_ordered(n, || Ok(()), produce, consume)?;
        if share {
            let key = share::Key::new(&spec, &job.frame_shape, &full_chunk[1..]);
            share::publish(key, job.bytes, kept);
        }
        Ok(stats)
    }
}
