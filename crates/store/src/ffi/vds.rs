//! Virtual datasets (VDS) whose mapping may be unlimited along the first axis.
//!
//! hdf5-metno's selection type turns a hyperslab with an unlimited count that starts at 0 into
//! "select all", which makes a mapping fixed at the source's current extent; the mapping here
//! is built with `H5Sselect_hyperslab` directly.

use std::ffi::{CString, c_int};

use hdf5::{Dataset, Datatype, Group};
use hdf5_sys::h5::hsize_t;
use hdf5_sys::h5d::H5Dcreate2;
use hdf5_sys::h5p::{H5P_DEFAULT, H5Pcreate, H5Pset_obj_track_times, H5Pset_virtual};
use hdf5_sys::h5s::{H5S_UNLIMITED, H5S_seloper_t, H5Screate_simple, H5Sselect_hyperslab};

use super::id::{H5Result, OwnedId, check};

/// Creates `name` in `group`: a virtual dataset of type `dtype` and shape `shape` mapping, one
/// to one, all of the dataset `src_path` of the file `src_file` (as libhdf5 finds it: a
/// relative name is looked up beside the virtual dataset's file). With `grows`, the first
/// axis is unlimited in both selections, so the virtual dataset grows with its source; the
/// other axes are fixed. Every axis but a growing first one must be at least 1 long.
pub(crate) fn create_virtual(
    group: &Group,
    name: &str,
    dtype: &Datatype,
    shape: &[usize],
    grows: bool,
    src_file: &str,
    src_path: &str,
) -> H5Result<Dataset> {
    let cname = CString::new(name).map_err(|_| "dataset name contains NUL")?;
    let cfile = CString::new(src_file).map_err(|_| "file name contains NUL")?;
    let cpath = CString::new(src_path).map_err(|_| "dataset path contains NUL")?;
    let rank = c_int::try_from(shape.len()).map_err(|_| "rank too large")?;
    if rank == 0 {
        return Err("a virtual dataset needs at least one axis".into());
    }
    let dims: Vec<hsize_t> = shape.iter().map(|&n| n as hsize_t).collect();
    let mut maxdims = dims.clone();
    let start = vec![0 as hsize_t; shape.len()];
    let mut count = dims.clone();
    if grows {
        maxdims[0] = H5S_UNLIMITED;
        count[0] = H5S_UNLIMITED;
    }
    if count.contains(&0) {
        return Err("a fixed axis of a virtual dataset is empty".into());
    }
    hdf5::sync::sync(|| {
        let space = || -> H5Result<OwnedId> {
            // SAFETY: `dims` and `maxdims` hold `rank` values; the lock is held.
            let s =
                OwnedId::new(unsafe { H5Screate_simple(rank, dims.as_ptr(), maxdims.as_ptr()) })?;
            // SAFETY: `s` is a live simple dataspace of rank `rank`; `start` and `count` hold
            // `rank` values; null stride and block mean 1.
            check(unsafe {
                H5Sselect_hyperslab(
                    s.id(),
                    H5S_seloper_t::H5S_SELECT_SET,
                    start.as_ptr(),
                    std::ptr::null(),
                    count.as_ptr(),
                    std::ptr::null(),
                )
            })?;
            Ok(s)
        };
        let vspace = space()?;
        let sspace = space()?;
        let dcpl_cls = *hdf5::globals::H5P_DATASET_CREATE;
        // SAFETY: plain constructor call with a valid class id; the lock is held.
        let dcpl = OwnedId::new(unsafe { H5Pcreate(dcpl_cls) })?;
        // SAFETY: live plist and dataspaces; the strings are NUL-terminated and outlive the
        // call (libhdf5 copies them).
        check(unsafe {
            H5Pset_virtual(
                dcpl.id(),
                vspace.id(),
                cfile.as_ptr(),
                cpath.as_ptr(),
                sspace.id(),
            )
        })?;
        // SAFETY: live plist.
        check(unsafe { H5Pset_obj_track_times(dcpl.id(), 0) })?;
        // SAFETY: all ids are live, `cname` is NUL-terminated and outlives the call; the
        // virtual dataspace's own extent is `dims` (its selection is ignored here).
        let ds = unsafe {
            H5Dcreate2(
                group.id(),
                cname.as_ptr(),
                dtype.id(),
                vspace.id(),
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

/// One source of [`create_concat`]: all of the dataset `path` of the file `file` (as libhdf5
/// finds it), whose shape is `shape`.
pub(crate) struct Part<'a> {
    pub(crate) file: &'a str,
    pub(crate) path: &'a str,
    pub(crate) shape: &'a [usize],
}

/// Creates `name` in `group`: a fixed-size virtual dataset of type `dtype` that stacks the
/// `parts` along the first axis, in order (part `k` starts at the sum of the rows of the parts
/// before it). Every part has `tail` as its shape after the first axis; parts without rows
/// map nothing, and a part with an empty file name is a gap (its rows read as the fill
/// value). At least one part must have rows and every axis of `tail` must be at least 1
/// long.
pub(crate) fn create_concat(
    group: &Group,
    name: &str,
    dtype: &Datatype,
    tail: &[usize],
    parts: &[Part<'_>],
) -> H5Result<Dataset> {
    let cname = CString::new(name).map_err(|_| "dataset name contains NUL")?;
    let rank = c_int::try_from(tail.len() + 1).map_err(|_| "rank too large")?;
    if tail.contains(&0) {
        return Err("a fixed axis of a virtual dataset is empty".into());
    }
    let mut names = Vec::with_capacity(parts.len());
    let mut rows = 0usize;
    for p in parts {
        if p.shape.len() != tail.len() + 1 || p.shape[1..] != *tail {
            return Err("the parts of a stacked virtual dataset differ in shape".into());
        }
        let file = CString::new(p.file).map_err(|_| "file name contains NUL")?;
        let path = CString::new(p.path).map_err(|_| "dataset path contains NUL")?;
        names.push((file, path, rows, p.shape[0]));
        rows = rows.checked_add(p.shape[0]).ok_or("too many rows")?;
    }
    if rows == 0 {
        return Err("a stacked virtual dataset needs a row".into());
    }
    let dims: Vec<hsize_t> = std::iter::once(rows)
        .chain(tail.iter().copied())
        .map(|n| n as hsize_t)
        .collect();
    hdf5::sync::sync(|| {
        // A dataspace of `shape` with the rows `first .. first + n` selected.
        let slab = |shape: &[hsize_t], first: usize, n: usize| -> H5Result<OwnedId> {
            // SAFETY: `shape` holds `rank` values; null maxdims means fixed; the lock is held.
            let s =
                OwnedId::new(unsafe { H5Screate_simple(rank, shape.as_ptr(), std::ptr::null()) })?;
            let mut start = vec![0 as hsize_t; shape.len()];
            start[0] = first as hsize_t;
            let mut count = shape.to_vec();
            count[0] = n as hsize_t;
            // SAFETY: `s` is a live simple dataspace of rank `rank`; `start` and `count` hold
            // `rank` values within its extent; null stride and block mean 1.
            check(unsafe {
                H5Sselect_hyperslab(
                    s.id(),
                    H5S_seloper_t::H5S_SELECT_SET,
                    start.as_ptr(),
                    std::ptr::null(),
                    count.as_ptr(),
                    std::ptr::null(),
                )
            })?;
            Ok(s)
        };
        let dcpl_cls = *hdf5::globals::H5P_DATASET_CREATE;
        // SAFETY: plain constructor call with a valid class id; the lock is held.
        let dcpl = OwnedId::new(unsafe { H5Pcreate(dcpl_cls) })?;
        for (file, path, first, n) in &names {
            if *n == 0 || file.as_bytes().is_empty() {
                continue; // no rows, or a gap (its rows read as the fill value)
            }
            let vspace = slab(&dims, *first, *n)?;
            let mut sdims = dims.clone();
            sdims[0] = *n as hsize_t;
            let sspace = slab(&sdims, 0, *n)?;
            // SAFETY: live plist and dataspaces whose selections have the same number of
            // elements; the strings are NUL-terminated and outlive the call (libhdf5 copies
            // them).
            check(unsafe {
                H5Pset_virtual(
                    dcpl.id(),
                    vspace.id(),
                    file.as_ptr(),
                    path.as_ptr(),
                    sspace.id(),
                )
            })?;
        }
        // SAFETY: `dims` holds `rank` values; the lock is held.
        let space =
            OwnedId::new(unsafe { H5Screate_simple(rank, dims.as_ptr(), std::ptr::null()) })?;
        create_with(group, &cname, dtype, &space, &dcpl)
    })
}

/// `H5Dcreate2` of a virtual dataset whose mappings `dcpl` holds, in dataspace `space` (its
/// extent; a selection is ignored), without modification times. Called with the lock held.
fn create_with(
    group: &Group,
    name: &CString,
    dtype: &Datatype,
    space: &OwnedId,
    dcpl: &OwnedId,
) -> H5Result<Dataset> {
    // SAFETY: live plist.
    check(unsafe { H5Pset_obj_track_times(dcpl.id(), 0) })?;
    // SAFETY: all ids are live, `name` is NUL-terminated and outlives the call.
    let ds = unsafe {
        H5Dcreate2(
            group.id(),
            name.as_ptr(),
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
}

/// Creates `name` in `group`: a virtual dataset of type `dtype`, `[samples, Σ widths]`, whose
/// first axis is unlimited, holding the 2-D `parts` side by side along the second axis (part
/// `k`'s columns start at the sum of the widths before it), each mapped with an unlimited
/// selection along the first axis: it grows with its sources without being rewritten. A part
/// with an empty file name is a gap (its columns read as the fill value). At least one part
/// must have a column and a file.
pub(crate) fn create_side_by_side(
    group: &Group,
    name: &str,
    dtype: &Datatype,
    samples: usize,
    parts: &[Part<'_>],
) -> H5Result<Dataset> {
    let cname = CString::new(name).map_err(|_| "dataset name contains NUL")?;
    let mut names = Vec::with_capacity(parts.len());
    let mut width = 0usize;
    for p in parts {
        let w = match p.shape {
            [_, w] => *w,
            _ => return Err("a side-by-side part is not 2-D".into()),
        };
        let file = CString::new(p.file).map_err(|_| "file name contains NUL")?;
        let path = CString::new(p.path).map_err(|_| "dataset path contains NUL")?;
        names.push((file, path, width, w));
        width = width.checked_add(w).ok_or("too many columns")?;
    }
    if width == 0 {
        return Err("a side-by-side virtual dataset needs a column".into());
    }
    hdf5::sync::sync(|| {
        // A 2-D dataspace `[samples, cols]` (first axis unlimited) with the columns
        // `first .. first + n` of every sample selected, unlimited along the first axis.
        let slab = |cols: usize, first: usize, n: usize| -> H5Result<OwnedId> {
            let dims = [samples as hsize_t, cols as hsize_t];
            let maxdims = [H5S_UNLIMITED, cols as hsize_t];
            // SAFETY: `dims` and `maxdims` hold 2 values; the lock is held.
            let s = OwnedId::new(unsafe { H5Screate_simple(2, dims.as_ptr(), maxdims.as_ptr()) })?;
            let start = [0 as hsize_t, first as hsize_t];
            let count = [H5S_UNLIMITED, n as hsize_t];
            // SAFETY: `s` is a live 2-D dataspace; `start` and `count` hold 2 values within
            // its extent (unlimited along the unlimited axis); null stride and block mean 1.
            check(unsafe {
                H5Sselect_hyperslab(
                    s.id(),
                    H5S_seloper_t::H5S_SELECT_SET,
                    start.as_ptr(),
                    std::ptr::null(),
                    count.as_ptr(),
                    std::ptr::null(),
                )
            })?;
            Ok(s)
        };
        let dcpl_cls = *hdf5::globals::H5P_DATASET_CREATE;
        // SAFETY: plain constructor call with a valid class id; the lock is held.
        let dcpl = OwnedId::new(unsafe { H5Pcreate(dcpl_cls) })?;
        for (file, path, first, n) in &names {
            if *n == 0 || file.as_bytes().is_empty() {
                continue; // no column, or a gap
            }
            let vspace = slab(width, *first, *n)?;
            let sspace = slab(*n, 0, *n)?;
            // SAFETY: live plist and dataspaces with matching unlimited selections; the
            // strings are NUL-terminated and outlive the call (libhdf5 copies them).
            check(unsafe {
                H5Pset_virtual(
                    dcpl.id(),
                    vspace.id(),
                    file.as_ptr(),
                    path.as_ptr(),
                    sspace.id(),
                )
            })?;
        }
        let space = slab(width, 0, width)?;
        create_with(group, &cname, dtype, &space, &dcpl)
    })
}
