//! Direct chunk I/O and dataset-creation property lists (raw `hdf5-sys` calls).
//!
//! Everything here runs under the HDF5 library lock via [`hdf5::sync::sync`], turns every
//! negative return code into an [`hdf5::Error`] (with the HDF5 error stack) and closes every id it
//! opens through `OwnedId`.

use std::ffi::{CString, c_int, c_uint, c_void};
use std::ptr;

use hdf5::{Dataset, Datatype, Group};
use hdf5_sys::h5::{haddr_t, hsize_t};
use hdf5_sys::h5d::{
    H5Dchunk_iter, H5Dcreate2, H5Dget_create_plist, H5Dread_chunk2, H5Dwrite, H5Dwrite_chunk,
};
use hdf5_sys::h5p::{
    H5P_DEFAULT, H5Pcreate, H5Pget_fill_value, H5Pset_chunk, H5Pset_deflate, H5Pset_filter,
    H5Pset_shuffle,
};
use hdf5_sys::h5s::{H5S_ALL, H5S_UNLIMITED, H5S_class_t, H5Screate, H5Screate_simple};
use hdf5_sys::h5z::H5Z_FLAG_OPTIONAL;

use super::id::{H5Result, OwnedId, check};

/// A filter to register in a dataset creation property list, in pipeline order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DcplFilter {
    /// HDF5's byte shuffle (`H5Pset_shuffle`; HDF5 records the element size as `cd_values[0]`).
    Shuffle,
    /// HDF5's deflate (`H5Pset_deflate(level)`).
    Deflate(u32),
    /// Any other (plugin) filter, registered optional like h5py does.
    Optional {
        /// Registered filter id.
        id: c_int,
        /// Client data values.
        cd_values: Vec<c_uint>,
    },
}

/// The storage layout of a new dataset.
pub(crate) enum NewLayout<'a> {
    /// Chunked, every axis unlimited, with a filter pipeline.
    Chunked {
        /// Chunk shape (same rank as the dataset, every entry >= 1).
        chunk: &'a [usize],
        /// Filters in pipeline order.
        filters: &'a [DcplFilter],
    },
    /// Rank-0 (scalar dataspace), contiguous.
    Scalar,
}

fn to_hsize(v: &[usize]) -> Vec<hsize_t> {
    v.iter().map(|&x| x as hsize_t).collect()
}

/// Creates dataset `name` in `group` with the given file datatype, shape and layout.
pub(crate) fn create_dataset(
    group: &Group,
    name: &str,
    dtype: &Datatype,
    shape: &[usize],
    layout: &NewLayout<'_>,
) -> H5Result<Dataset> {
    let cname = CString::new(name).map_err(|_| hdf5::Error::from("dataset name contains NUL"))?;
    hdf5::sync::sync(|| {
        let dcpl_cls = *hdf5::globals::H5P_DATASET_CREATE;
        // SAFETY: plain constructor call with a valid class id; the lock is held.
        let dcpl = OwnedId::new(unsafe { H5Pcreate(dcpl_cls) })?;
        let space = match layout {
            NewLayout::Scalar => {
                // SAFETY: plain constructor call; the lock is held.
                OwnedId::new(unsafe { H5Screate(H5S_class_t::H5S_SCALAR) })?
            }
            NewLayout::Chunked { chunk, filters } => {
                let rank = c_int::try_from(shape.len())
                    .map_err(|_| hdf5::Error::from("rank too large"))?;
                let cdims = to_hsize(chunk);
                if cdims.len() != shape.len() {
                    return Err("chunk rank differs from dataset rank".into());
                }
                // SAFETY: `dcpl` is a live dataset-creation plist; `cdims` holds `rank` values.
                check(unsafe { H5Pset_chunk(dcpl.id(), rank, cdims.as_ptr()) })?;
                for f in filters.iter() {
                    // SAFETY: live plist; `cd_values` outlives the call and holds `len` values.
                    let status = unsafe {
                        match f {
                            DcplFilter::Shuffle => H5Pset_shuffle(dcpl.id()),
                            DcplFilter::Deflate(level) => H5Pset_deflate(dcpl.id(), *level),
                            DcplFilter::Optional { id, cd_values } => H5Pset_filter(
                                dcpl.id(),
                                *id,
                                H5Z_FLAG_OPTIONAL,
                                cd_values.len(),
                                if cd_values.is_empty() {
                                    ptr::null()
                                } else {
                                    cd_values.as_ptr()
                                },
                            ),
                        }
                    };
                    check(status)?;
                }
                let dims = to_hsize(shape);
                let maxdims = vec![H5S_UNLIMITED; shape.len()];
                // SAFETY: both arrays hold `rank` values; the lock is held.
                let id = unsafe { H5Screate_simple(rank, dims.as_ptr(), maxdims.as_ptr()) };
                OwnedId::new(id)?
            }
        };
        // SAFETY: all ids are live, `cname` is NUL-terminated and outlives the call.
        let ds = unsafe {
            H5Dcreate2(
                group.id(),
                cname.as_ptr(),
                dtype.id(),
                space.id(),
                H5P_DEFAULT,
                dcpl.id(),
                H5P_DEFAULT,
            )
        };
        let ds = hdf5::h5check(ds)?;
        // SAFETY: `ds` is a fresh dataset id with refcount 1, handed over to the handle.
        unsafe { hdf5::from_id::<Dataset>(ds) }
    })
}

/// Writes the whole extent of `ds` from `bytes` (C order, `mem_type` elements) with one
/// `H5Dwrite` through HDF5's own pipeline.
pub(crate) fn write_all(ds: &Dataset, mem_type: &Datatype, bytes: &[u8]) -> H5Result<()> {
    let n = ds.size();
    if n.checked_mul(mem_type.size()) != Some(bytes.len()) {
        return Err("buffer size does not match dataset extent".into());
    }
    if n == 0 {
        return Ok(());
    }
    hdf5::sync::sync(|| {
        // SAFETY: `bytes` holds exactly `n` elements of `mem_type` (checked above) in C order,
        // matching H5S_ALL on the dataset's full extent; the lock is held.
        check(unsafe {
            H5Dwrite(
                ds.id(),
                mem_type.id(),
                H5S_ALL,
                H5S_ALL,
                H5P_DEFAULT,
                bytes.as_ptr().cast::<c_void>(),
            )
        })
    })
    .map(drop)
}

/// Writes one already-filtered chunk at element offset `offset`, bypassing HDF5's pipeline.
pub(crate) fn write_chunk(
    ds: &Dataset,
    offset: &[hsize_t],
    filter_mask: u32,
    data: &[u8],
) -> H5Result<()> {
    if offset.len() != ds.ndim() {
        return Err("chunk offset rank mismatch".into());
    }
    hdf5::sync::sync(|| {
        // SAFETY: `offset` holds `rank` values (checked), `data` is valid for `data.len()`
        // bytes; the lock is held.
        check(unsafe {
            H5Dwrite_chunk(
                ds.id(),
                H5P_DEFAULT,
                filter_mask,
                offset.as_ptr(),
                data.len(),
                data.as_ptr().cast::<c_void>(),
            )
        })
    })
    .map(drop)
}

/// Reads the stored (filtered) bytes of the chunk at `offset` into `buf` (resized to fit).
/// Returns the chunk's filter mask.
pub(crate) fn read_chunk(
    ds: &Dataset,
    offset: &[hsize_t],
    size_hint: usize,
    buf: &mut Vec<u8>,
) -> H5Result<u32> {
    if offset.len() != ds.ndim() {
        return Err("chunk offset rank mismatch".into());
    }
    if buf.len() < size_hint {
        buf.resize(size_hint, 0);
    }
    hdf5::sync::sync(|| {
        loop {
            let mut mask: u32 = 0;
            let mut size: usize = buf.len();
            // SAFETY: `offset` holds `rank` values, `buf` is valid for `size` bytes and HDF5
            // writes at most `size` bytes; the lock is held.
            check(unsafe {
                H5Dread_chunk2(
                    ds.id(),
                    H5P_DEFAULT,
                    offset.as_ptr(),
                    &mut mask,
                    buf.as_mut_ptr().cast::<c_void>(),
                    &mut size,
                )
            })?;
            if size <= buf.len() {
                buf.truncate(size);
                return Ok(mask);
            }
            // Too small: nothing was read, `size` is the needed size.
            buf.resize(size, 0);
        }
    })
}

/// One allocated chunk of a dataset.
#[derive(Debug, Clone)]
pub(crate) struct ChunkRecord {
    /// Element offset of the chunk's first element.
    pub(crate) offset: Vec<hsize_t>,
    /// Stored size in bytes.
    pub(crate) size: u64,
}

struct IterState {
    rank: usize,
    out: Vec<ChunkRecord>,
}

extern "C" fn chunk_iter_cb(
    offset: *const hsize_t,
    _filter_mask: c_uint,
    _addr: haddr_t,
    size: hsize_t,
    op_data: *mut c_void,
) -> c_int {
    // SAFETY: `op_data` is the `&mut IterState` passed to `H5Dchunk_iter` by
    // `allocated_chunks`, alive and exclusively borrowed for the whole iteration.
    let state = unsafe { &mut *op_data.cast::<IterState>() };
    let offset = if offset.is_null() {
        return -1;
    } else {
        // SAFETY: HDF5 passes the chunk's logical offset with one value per dataset dimension.
        unsafe { std::slice::from_raw_parts(offset, state.rank) }.to_vec()
    };
    state.out.push(ChunkRecord { offset, size });
    0
}

/// Lists the allocated chunks of a chunked dataset.
pub(crate) fn allocated_chunks(ds: &Dataset) -> H5Result<Vec<ChunkRecord>> {
    let mut state = IterState {
        rank: ds.ndim(),
        out: Vec::new(),
    };
    hdf5::sync::sync(|| {
        // SAFETY: the callback only touches `state`, which outlives the call; the lock is held.
        check(unsafe {
            H5Dchunk_iter(
                ds.id(),
                H5P_DEFAULT,
                Some(chunk_iter_cb),
                (&mut state as *mut IterState).cast::<c_void>(),
            )
        })
    })?;
    Ok(state.out)
}

/// Reads the dataset's fill value converted to `mem_type` into `out` (`mem_type.size()` bytes).
pub(crate) fn fill_value(ds: &Dataset, mem_type: &Datatype, out: &mut [u8]) -> H5Result<()> {
    if out.len() != mem_type.size() {
        return Err("fill value buffer size mismatch".into());
    }
    hdf5::sync::sync(|| {
        // SAFETY: plain call on a live dataset id; the lock is held.
        let dcpl = OwnedId::new(unsafe { H5Dget_create_plist(ds.id()) })?;
        // SAFETY: `out` holds one element of `mem_type` (checked above).
        check(unsafe { H5Pget_fill_value(dcpl.id(), mem_type.id(), out.as_mut_ptr().cast()) })
    })
    .map(drop)
}
