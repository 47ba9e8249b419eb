//! netCDF-4 dimension scales through HDF5's high-level library (`H5DS*`, from `libhdf5_hl`,
//! linked by hdf5-metno-sys's `hl` feature; its bindings do not declare these functions).

use std::ffi::{CString, c_char, c_uint};

use hdf5::Dataset;
use hdf5_sys::h5::{herr_t, htri_t};
use hdf5_sys::h5i::hid_t;

use super::id::{H5Result, check};

// SAFETY: the signatures are those of `H5DSpublic.h` (HDF5 2.x): ids are `hid_t`, names
// NUL-terminated C strings, axis indices `unsigned int`; the functions are exported by the
// statically linked `hdf5_hl`.
unsafe extern "C" {
    fn H5DSset_scale(dsid: hid_t, dimname: *const c_char) -> herr_t;
    fn H5DSattach_scale(did: hid_t, dsid: hid_t, idx: c_uint) -> herr_t;
    fn H5DSis_attached(did: hid_t, dsid: hid_t, idx: c_uint) -> htri_t;
}

/// Makes `ds` a dimension scale named `name` (the netCDF dimension name).
pub(crate) fn set_scale(ds: &Dataset, name: &str) -> H5Result<()> {
    let cname = CString::new(name).map_err(|_| "scale name holds a NUL byte")?;
    hdf5::sync::sync(|| {
        // SAFETY: `ds` is a live dataset id, `cname` a NUL-terminated string that outlives the
        // call; the library lock is held.
        check(unsafe { H5DSset_scale(ds.id(), cname.as_ptr()) }).map(drop)
    })
}

/// Attaches the scale `scale` to axis `axis` of `ds`, unless it is attached already.
pub(crate) fn attach_scale(ds: &Dataset, scale: &Dataset, axis: usize) -> H5Result<()> {
    let idx = c_uint::try_from(axis).map_err(|_| "axis out of range")?;
    hdf5::sync::sync(|| {
        // SAFETY: both ids are live datasets; the library lock is held.
        let attached = unsafe { H5DSis_attached(ds.id(), scale.id(), idx) };
        if check(attached)? > 0 {
            return Ok(());
        }
        // SAFETY: as above; `idx` is below the rank (HDF5 checks and fails otherwise).
        check(unsafe { H5DSattach_scale(ds.id(), scale.id(), idx) }).map(drop)
    })
}
