//! The read side: parallel decoding of chunked datasets, HDF5 fallback for the rest.

use hdf5::filters::Filter;
use hdf5::{Dataset, Datatype};
use ndarray::{Array, Dimension, IxDyn};

use super::chunking::{Grid, contiguous_range, for_each_run};
use super::codec::ensure_len;
use super::dtype::{Element, describe_datatype};
use super::error::{PipelineError, PipelineResult};
use super::options::{Codec, LZ4_FILTER_ID, ZSTD_FILTER_ID};
use super::shuffle::unshuffle;
use super::{Dtype, Pipeline, Scratch};
use crate::ffi::chunk::{self as ffi, ChunkRecord};

/// One inverse filter step.
#[derive(Debug, Clone, Copy)]
enum Step {
    Unshuffle,
    Decode(Codec),
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Unshuffle => "shuffle",
            Step::Decode(c) => c.name(),
        }
    }
}

/// The filters a dataset was created with, as options to write more of it with (a series
/// keeps its filters whatever the file's options are now), or `None` if any is unknown.
pub(crate) fn filters_of(filters: &[Filter]) -> Option<super::Filters> {
    let mut out = super::Filters::none();
    for f in filters {
        match f {
            Filter::Shuffle => out.shuffle = true,
            Filter::Deflate(level) => out.codec = Codec::Deflate { level: *level },
            Filter::User(LZ4_FILTER_ID, _) => out.codec = Codec::Lz4,
            Filter::User(ZSTD_FILTER_ID, cd) => {
                let stored = Codec::Zstd {
                    level: cd.first().map_or(3, |&l| l as i32),
                };
                out.codec = if stored.validate().is_ok() {
                    stored
                } else {
                    Codec::Zstd { level: 3 }
                };
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The filter pipeline as steps this module can invert, or `None` if any filter is unknown.
fn plan(filters: &[Filter]) -> Option<Vec<Step>> {
    filters
        .iter()
        .map(|f| match f {
            Filter::Shuffle => Some(Step::Unshuffle),
            Filter::Deflate(level) => Some(Step::Decode(Codec::Deflate { level: *level })),
            Filter::User(LZ4_FILTER_ID, _) => Some(Step::Decode(Codec::Lz4)),
            Filter::User(ZSTD_FILTER_ID, _) => Some(Step::Decode(Codec::Zstd { level: 0 })),
            _ => None,
        })
        .collect()
}

/// A raw pointer to the output buffer, shared by decoders writing disjoint chunk regions.
#[derive(Clone, Copy)]
struct OutPtr(*mut u8, usize);
// SAFETY: the pointer is only dereferenced within `[0, len)` of a live allocation, and the
// workers write disjoint byte ranges (distinct chunks of a regular grid never overlap).
unsafe impl Send for OutPtr {}
// SAFETY: as above; shared references only copy the pointer value.
unsafe impl Sync for OutPtr {}

impl Pipeline {
    /// Reads a whole dataset.
    ///
    /// Chunked datasets whose filters are all known (shuffle, deflate, LZ4, Zstd) are read
    /// with `H5Dread_chunk` and decoded in parallel; any other dataset (contiguous, compact,
    /// unknown filters, non-native byte order) goes through HDF5's normal read. The element
    /// type must match exactly (no silent conversion): otherwise
    /// [`PipelineError::DtypeMismatch`].
    pub fn read<T: Element, D: Dimension>(&self, ds: &Dataset) -> PipelineResult<Array<T, D>> {
        self.check_pool()?;
        let name = ds.name();
        let file_type = ds.dtype()?;
        if Dtype::from_datatype(&file_type) != Some(T::DTYPE) {
            return Err(PipelineError::DtypeMismatch {
                dataset: name,
                expected: T::DTYPE,
                found: describe_datatype(&file_type),
            });
        }
        let shape = ds.shape();
        if let Some(nd) = D::NDIM
            && nd != shape.len()
        {
            return Err(PipelineError::RankMismatch {
                dataset: name,
                expected: nd,
                found: shape.len(),
            });
        }
        // The shape comes from the file: prove the whole array can be allocated before any
        // reader (ours or HDF5's) allocates it, so a declared 2^40 elements is an error.
        drop(reserve::<T>(&name, &shape)?);
        let mem_type = Datatype::from_type::<T>()?;
        let steps = match ds.chunk() {
            Some(chunk) if file_type == mem_type && chunk.len() == shape.len() => {
                plan(&ds.filters()).map(|s| (chunk, s))
            }
            _ => None,
        };
        let Some((chunk, steps)) = steps else {
            return Ok(ds.read::<T, D>()?);
        };
        let v = self.read_chunked::<T>(ds, &mem_type, &shape, &chunk, &steps, None)?;
        let a = Array::from_shape_vec(IxDyn(&shape), v).map_err(hdf5::Error::from)?;
        Ok(a.into_dimensionality::<D>().map_err(hdf5::Error::from)?)
    }

    /// Reads frame `sample` (`[sample, ..]`) of a series dataset chunked one frame per chunk
    /// (`[1, …]`), decoding only that frame's chunks (in parallel; LZ4 and Zstd too). `Ok(None)`
    /// if the dataset is not such a series with known filters and native type: read it through
    /// HDF5 then.
    pub fn read_frame<T: Element>(
        &self,
        ds: &Dataset,
        sample: usize,
    ) -> PipelineResult<Option<Vec<T>>> {
        self.check_pool()?;
        let file_type = ds.dtype()?;
        let mem_type = Datatype::from_type::<T>()?;
        if file_type != mem_type {
            return Ok(None);
        }
        let shape = ds.shape();
        let (Some(chunk), Some(steps)) = (ds.chunk(), plan(&ds.filters())) else {
            return Ok(None);
        };
        if shape.is_empty() || chunk.len() != shape.len() || chunk[0] != 1 || sample >= shape[0] {
            return Ok(None);
        }
        let mut frame = shape.clone();
        frame[0] = 1;
        let v = self.read_chunked::<T>(ds, &mem_type, &frame, &chunk, &steps, Some(sample))?;
        Ok(Some(v))
    }

    fn read_chunked<T: Element>(
        &self,
        ds: &Dataset,
        mem_type: &Datatype,
        shape: &[usize],
        chunk: &[usize],
        steps: &[Step],
        frame: Option<usize>,
    ) -> PipelineResult<Vec<T>> {
        let name = ds.name();
        let name = name.as_str();
        let elem = size_of::<T>();
        let n_elems: usize = shape.iter().product(); // no overflow: checked by `reserve`
        if n_elems == 0 {
            return Ok(Vec::new());
        }
        let grid = Grid::new(shape, chunk);
        // Reading one frame: the grid covers it; its chunks sit at `frame` on axis 0.
        let origin = frame.map_or(0, |f| f as u64);
        // Keep only records that sit on the grid inside the extent, once each.
        let mut seen = vec![false; grid.len()];
        let records: Vec<ChunkRecord> = ffi::allocated_chunks(ds)?
            .into_iter()
            .filter_map(|mut r| match frame {
                None => Some(r),
                Some(_) if r.offset.first() == Some(&origin) => {
                    r.offset[0] = 0;
                    Some(r)
                }
                Some(_) => None,
            })
            .filter(|r| match grid_index(&grid, &r.offset) {
                Some(i) if !seen[i] => {
                    seen[i] = true;
                    true
                }
                _ => false,
            })
            .collect();
        let complete = records.len() == grid.len();
        let mut out: Vec<T> = reserve(name, shape)?;
        if !complete {
            // Missing chunks read as the fill value.
            let mut fill = vec![0u8; elem];
            ffi::fill_value(ds, mem_type, &mut fill)?;
            // SAFETY: `fill` holds `size_of::<T>()` bytes and `T` is a plain integer or float
            // type (sealed `Element`) for which every bit pattern is valid.
            let fill: T = unsafe { std::ptr::read_unaligned(fill.as_ptr().cast::<T>()) };
            out.resize(n_elems, fill);
        }
        let out_ptr = OutPtr(out.as_mut_ptr().cast::<u8>(), n_elems * elem);
        let cbytes = grid.chunk_elems() * elem;
        let cx = DecodeCtx {
            ds,
            origin,
            name,
            grid: &grid,
            steps,
            elem,
            cbytes,
            out: out_ptr,
        };
        self.run_unordered(records.len(), |i, s| decode_chunk(&cx, &records[i], s))?;
        if complete {
            // SAFETY: every chunk of the grid was decoded (each worker returned Ok) and the
            // chunks together cover every element of the extent, so all `n_elems` elements
            // are initialized; `n_elems` equals the capacity reserved above.
            unsafe { out.set_len(n_elems) };
        }
        Ok(out)
    }
}

/// An empty vector with room for every element of `shape`, or [`PipelineError::TooLarge`] if
/// the element count or byte size overflows or the allocation fails (instead of aborting).
fn reserve<T>(name: &str, shape: &[usize]) -> PipelineResult<Vec<T>> {
    let elem = size_of::<T>();
    let too_large = || PipelineError::TooLarge {
        dataset: name.to_owned(),
        shape: shape.to_vec(),
        elem,
    };
    let n = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|n| {
            n.checked_mul(elem)
                .is_some_and(|b| b <= isize::MAX as usize)
        })
        .ok_or_else(too_large)?;
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| too_large())?;
    Ok(v)
}

/// Largest stored size accepted for a chunk of `cbytes` decoded bytes: the codecs' worst-case
/// expansion is far below this, so anything larger is a damaged chunk index, which must not
/// make the reader allocate whatever it claims.
fn max_stored(cbytes: usize) -> u64 {
    (cbytes as u64).saturating_mul(2).saturating_add(1 << 16)
}

/// The grid index of a chunk offset, if it is a chunk origin inside the extent.
fn grid_index(grid: &Grid, offset: &[u64]) -> Option<usize> {
    if offset.len() != grid.shape.len() {
        return None;
    }
    let mut idx = 0usize;
    for ((&o, &c), &s) in offset.iter().zip(&grid.chunk).zip(&grid.shape) {
        let o = o as usize;
        if o >= s || !o.is_multiple_of(c) {
            return None;
        }
        idx = idx * s.div_ceil(c) + o / c;
    }
    Some(idx)
}

/// Fixed inputs of one dataset's chunk decoding.
struct DecodeCtx<'a> {
    ds: &'a Dataset,
    /// Added to axis 0 of a chunk's offset to find it in the file (reading one frame of a
    /// series: the grid covers that frame only).
    origin: u64,
    name: &'a str,
    grid: &'a Grid,
    steps: &'a [Step],
    elem: usize,
    cbytes: usize,
    out: OutPtr,
}

/// Which buffer holds the current stage's data.
#[derive(Clone, Copy)]
enum Stage {
    Raw,
    A,
    B,
}

fn decode_chunk(cx: &DecodeCtx<'_>, rec: &ChunkRecord, s: &mut Scratch) -> PipelineResult<()> {
    let mut a = std::mem::take(&mut s.shuf);
    let mut b = std::mem::take(&mut s.gather);
    let r = decode_stages(cx, rec, &mut s.codec, &mut s.raw, &mut a, &mut b);
    s.shuf = a;
    s.gather = b;
    r
}

fn decode_stages(
    cx: &DecodeCtx<'_>,
    rec: &ChunkRecord,
    codec: &mut super::codec::CodecState,
    raw: &mut Vec<u8>,
    a: &mut Vec<u8>,
    b: &mut Vec<u8>,
) -> PipelineResult<()> {
    let cbytes = cx.cbytes;
    let err = |step: &'static str, reason: String| PipelineError::Decode {
        dataset: cx.name.to_owned(),
        codec: step,
        chunk: rec.offset.clone(),
        reason,
    };
    if rec.size > max_stored(cbytes) {
        return Err(err(
            "none",
            format!("{} bytes stored for a {cbytes}-byte chunk", rec.size),
        ));
    }
    let mask = if cx.origin == 0 {
        ffi::read_chunk(cx.ds, &rec.offset, rec.size as usize, raw)?
    } else {
        let mut at = rec.offset.clone();
        at[0] += cx.origin;
        ffi::read_chunk(cx.ds, &at, rec.size as usize, raw)?
    };
    // Inverse order; a set mask bit means the filter was skipped for this chunk.
    let active: Vec<Step> = cx
        .steps
        .iter()
        .enumerate()
        .rev()
        .filter(|(i, _)| *i >= 32 || mask & (1u32 << i) == 0)
        .map(|(_, s)| *s)
        .collect();
    let direct = contiguous_range(&cx.grid.shape, &cx.grid.chunk, &rec.offset, cx.elem);
    ensure_len(a, cbytes);
    ensure_len(b, cbytes);
    let mut cur = Stage::Raw;
    for (k, step) in active.iter().enumerate() {
        // The last stage writes straight into the output when the chunk is one contiguous
        // range of it.
        let out_slice = match &direct {
            Some(r) if k + 1 == active.len() => {
                // SAFETY: `r` lies within the output allocation (`contiguous_range` only returns
                // in-extent ranges of full chunks) and belongs to this chunk alone, so no other
                // worker reads or writes it.
                Some(unsafe { std::slice::from_raw_parts_mut(cx.out.0.add(r.start), r.len()) })
            }
            _ => None,
        };
        let (src, dst, next): (&[u8], &mut [u8], Stage) = match (cur, out_slice) {
            (Stage::Raw, Some(o)) => (&raw[..], o, Stage::Raw),
            (Stage::Raw, None) => (&raw[..], &mut a[..cbytes], Stage::A),
            (Stage::A, Some(o)) => (&a[..cbytes], o, Stage::A),
            (Stage::A, None) => (&a[..cbytes], &mut b[..cbytes], Stage::B),
            (Stage::B, Some(o)) => (&b[..cbytes], o, Stage::B),
            (Stage::B, None) => (&b[..cbytes], &mut a[..cbytes], Stage::A),
        };
        match *step {
            Step::Unshuffle => {
                if src.len() != dst.len() {
                    return Err(err(
                        "shuffle",
                        format!("{} bytes, expected {cbytes}", src.len()),
                    ));
                }
                unshuffle(src, dst, cx.elem);
            }
            Step::Decode(c) => codec
                .decompress(c, src, dst)
                .map_err(|r| err(step.name(), r))?,
        }
        if k + 1 == active.len() && direct.is_some() {
            return Ok(());
        }
        cur = next;
    }
    let data: &[u8] = match cur {
        Stage::Raw => raw,
        Stage::A => &a[..cbytes],
        Stage::B => &b[..cbytes],
    };
    if data.len() != cbytes {
        return Err(err(
            "none",
            format!("{} bytes stored, expected {cbytes}", data.len()),
        ));
    }
    let out = cx.out;
    for_each_run(
        &cx.grid.shape,
        &cx.grid.chunk,
        &rec.offset,
        cx.elem,
        |o, c, n| {
            debug_assert!(o + n <= out.1 && c + n <= data.len());
            // SAFETY: `o..o+n` lies inside the output (runs are clipped to the extent, whose byte
            // size is `out.1`) and inside this chunk's region, which no other worker touches;
            // `c..c+n` lies inside `data` (chunk-local offsets within `cbytes`).
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr().add(c), out.0.add(o), n) };
        },
    );
    Ok(())
}
