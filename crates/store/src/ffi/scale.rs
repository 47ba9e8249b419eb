//! netCDF-4 dimension scales through HDF5's high-level library (`H5DS*`, from `libhdf5_hl`,
//! linked by hdf5-metno-sys's `hl` feature; its bindings do not declare these functions).

use std::ffi::{CString, c_char, c_int, c_uint, c_void};

use hdf5::Dataset;
use hdf5_sys::h5::{herr_t, htri_t};
use hdf5_sys::h5i::hid_t;

use super::id::{H5Result, check};
use super::object::{Token, token_of};

// SAFETY: the signatures are those of `H5DSpublic.h` (HDF5 2.x): ids are `hid_t`, names
// NUL-terminated C strings, axis indices `unsigned int`; the functions are exported by the
// statically linked `hdf5_hl`.
unsafe extern "C" {
    fn H5DSset_scale(dsid: hid_t, dimname: *const c_char) -> herr_t;
    fn H5DSattach_scale(did: hid_t, dsid: hid_t, idx: c_uint) -> herr_t;
    fn H5DSis_attached(did: hid_t, dsid: hid_t, idx: c_uint) -> htri_t;
    fn H5DSis_scale(did: hid_t) -> htri_t;
    fn H5DSget_scale_name(did: hid_t, name: *mut c_char, size: usize) -> isize;
    fn H5DSget_num_scales(did: hid_t, idx: c_uint) -> c_int;
    fn H5DSiterate_scales(
        did: hid_t,
        dim: c_uint,
        idx: *mut c_int,
        visitor: unsafe extern "C" fn(hid_t, c_uint, hid_t, *mut c_void) -> herr_t,
        visitor_data: *mut c_void,
    ) -> herr_t;
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

/// The dimension-scale name of `ds` (`None` if `ds` is not a dimension scale; `Some("")` for
/// a scale without a name).
pub(crate) fn scale_name(ds: &Dataset) -> H5Result<Option<String>> {
    hdf5::sync::sync(|| {
        // SAFETY: `ds` is a live dataset id; the library lock is held.
        if check(unsafe { H5DSis_scale(ds.id()) })? <= 0 {
            return Ok(None);
        }
        // SAFETY: a null buffer of size 0 asks for the length only.
        let len = unsafe { H5DSget_scale_name(ds.id(), std::ptr::null_mut(), 0) };
        let len = hdf5::h5check(len)?;
        let mut buf = vec![0u8; len as usize + 1];
        // SAFETY: `buf` holds `len + 1` bytes, the name and its NUL.
        let got = unsafe { H5DSget_scale_name(ds.id(), buf.as_mut_ptr().cast(), buf.len()) };
        hdf5::h5check(got)?;
        buf.truncate(len as usize);
        Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
    })
}

/// The identities of the dimension scales attached to axis `axis` of `ds`.
pub(crate) fn attached_scales(ds: &Dataset, axis: usize) -> H5Result<Vec<Token>> {
    unsafe extern "C" fn visit(
        _did: hid_t,
        _dim: c_uint,
        scale: hid_t,
        data: *mut c_void,
    ) -> herr_t {
        // SAFETY: `data` is the `Vec<Token>` passed below, alive and not otherwise borrowed
        // during the iteration.
        let out = unsafe { &mut *data.cast::<Vec<Token>>() };
        // `scale` is live for the duration of the callback, which runs under the lock.
        match token_of(scale) {
            Ok(t) => {
                out.push(t);
                0
            }
            Err(_) => -1,
        }
    }
    let idx = c_uint::try_from(axis).map_err(|_| "axis out of range")?;
    hdf5::sync::sync(|| {
        // SAFETY: `ds` is a live dataset id; the library lock is held.
        if check(unsafe { H5DSget_num_scales(ds.id(), idx) })? <= 0 {
            return Ok(Vec::new());
        }
        let mut out: Vec<Token> = Vec::new();
        // SAFETY: `visit` matches `H5DS_iterate_t`; `out` outlives the call and is only
        // reached through the pointer while the iteration runs; a null index starts at 0.
        check(unsafe {
            H5DSiterate_scales(
                ds.id(),
                idx,
                std::ptr::null_mut(),
                visit,
                (&mut out as *mut Vec<Token>).cast(),
            )
        })?;
        Ok(out)
    })
}
