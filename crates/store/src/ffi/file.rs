//! File-level libhdf5 calls: in-memory files, keeping an open file's descriptor out of child
//! processes, clearing a killed writer's status flags.

use std::ffi::c_void;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use hdf5_sys::{h5f, h5fd, h5p};

use super::id::{OwnedId, check};

static IN_MEMORY_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Creates an in-memory HDF5 file (core driver, no backing store) with a process-unique name.
pub(crate) fn in_memory_h5(prefix: &str) -> hdf5::Result<(hdf5::File, PathBuf)> {
    let n = IN_MEMORY_COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!("{prefix}-{}-{n}", std::process::id());
    let f = hdf5::File::with_options()
        .with_fapl(|p| p.core_filebacked(false))
        .create(&name)?;
    Ok((f, PathBuf::from(name)))
}

/// Marks the descriptor of a file opened with HDF5's default POSIX driver (`sec2`)
/// close-on-exec. Files on other drivers (in-memory `core`, …) are left alone.
///
/// libhdf5 opens files without `O_CLOEXEC`: a child process spawned while the file is open
/// (`h5dump`, a Python script) would inherit the descriptor, and with it the file's `flock`,
/// keeping the file locked for other readers after h5pom closed it.
#[cfg(unix)]
pub(crate) fn set_cloexec(file: &hdf5::File) -> hdf5::Result<()> {
    hdf5::sync::sync(|| {
        // SAFETY: `file.id()` is a live file id; the returned property list id is checked and
        // owned.
        let fapl = OwnedId::new(unsafe { h5f::H5Fget_access_plist(file.id()) })?;
        // SAFETY: live property list id. The driver id is not owned by the caller.
        let driver = unsafe { h5p::H5Pget_driver(fapl.id()) };
        // The library is initialized (a file is open), so the driver id global is set.
        if driver < 0 || driver != *h5fd::H5FD_SEC2 {
            return Ok(());
        }
        let mut handle: *mut c_void = std::ptr::null_mut();
        // SAFETY: live file id, default property list, `handle` a valid out-pointer.
        let r = unsafe { h5f::H5Fget_vfd_handle(file.id(), h5p::H5P_DEFAULT, &mut handle) };
        check(r)?;
        if handle.is_null() {
            return Err(hdf5::Error::from("H5Fget_vfd_handle returned no handle"));
        }
        // SAFETY: for the sec2 driver the VFD handle points to the file's `int` descriptor,
        // which stays valid while the file is open (it is, for the duration of this call).
        let fd = unsafe { *handle.cast::<libc::c_int>() };
        // SAFETY: `fcntl` with F_GETFD/F_SETFD only reads and sets descriptor flags of `fd`,
        // a descriptor HDF5 holds open.
        let ok = unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            flags >= 0 && libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) >= 0
        };
        if ok {
            Ok(())
        } else {
            Err(hdf5::Error::from("fcntl(FD_CLOEXEC) failed"))
        }
    })
}

/// Not needed where child processes do not inherit handles by default.
#[cfg(not(unix))]
pub(crate) fn set_cloexec(_file: &hdf5::File) -> hdf5::Result<()> {
    Ok(())
}

/// Opens `path` for writing with libhdf5's private file-access property
/// `clear_status_flags` set (what `h5clear -s` does), then closes it: the superblock's
/// "open for write" flags are cleared on open.
pub(crate) fn clear_status_flags(path: &std::path::Path) -> hdf5::Result<()> {
    use std::ffi::CString;
    let name = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| hdf5::Error::from("path contains a NUL byte"))?;
    hdf5::sync::sync(|| {
        // SAFETY: creating a property list of the library's file-access class; the id is
        // checked and owned.
        let fapl = OwnedId::new(unsafe { h5p::H5Pcreate(*h5p::H5P_CLS_FILE_ACCESS) })?;
        let clear: hdf5_sys::h5::hbool_t = 1;
        // SAFETY: the property exists in every file-access list (libhdf5 registers it for
        // h5clear) and holds an `hbool_t`; `clear` outlives the call, which copies it.
        let r = unsafe {
            h5p::H5Pset(
                fapl.id(),
                c"clear_status_flags".as_ptr(),
                (&raw const clear).cast_mut().cast::<c_void>(),
            )
        };
        check(r)?;
        // SAFETY: `name` is a NUL-terminated path; `fapl` a live property list.
        let file =
            OwnedId::new(unsafe { h5f::H5Fopen(name.as_ptr(), h5f::H5F_ACC_RDWR, fapl.id()) })?;
        file.close()
    })
}
