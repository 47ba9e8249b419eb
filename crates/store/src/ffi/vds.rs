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
