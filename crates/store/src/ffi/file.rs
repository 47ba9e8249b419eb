//! File-level libhdf5 calls: in-memory files, keeping an open file's descriptor out of child
//! processes, telling why an open failed (a lock conflict, the file already open here),
//! clearing a killed writer's status flags.

use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use hdf5_sys::{h5f, h5fd, h5i::hid_t, h5p};

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

/// The descriptor of the open file `file_id` if it is on HDF5's default POSIX driver (`sec2`);
/// `None` on other drivers (in-memory `core`, …). The caller holds the library lock; the
/// descriptor stays valid while the file is open.
#[cfg(unix)]
fn sec2_fd(file_id: hid_t) -> hdf5::Result<Option<libc::c_int>> {
    // SAFETY: `file_id` is a live file id (the caller's); the returned property list id is
    // checked and owned.
    let fapl = OwnedId::new(unsafe { h5f::H5Fget_access_plist(file_id) })?;
    // SAFETY: live property list id. The driver id is not owned by the caller.
    let driver = unsafe { h5p::H5Pget_driver(fapl.id()) };
    // The library is initialized (a file is open), so the driver id global is set.
    if driver < 0 || driver != *h5fd::H5FD_SEC2 {
        return Ok(None);
    }
    let mut handle: *mut c_void = std::ptr::null_mut();
    // SAFETY: live file id, default property list, `handle` a valid out-pointer.
    check(unsafe { h5f::H5Fget_vfd_handle(file_id, h5p::H5P_DEFAULT, &mut handle) })?;
    if handle.is_null() {
        return Err(hdf5::Error::from("H5Fget_vfd_handle returned no handle"));
    }
    // SAFETY: for the sec2 driver the VFD handle points to the file's `int` descriptor, which
    // stays valid while the file is open (it is, for the duration of this call).
    Ok(Some(unsafe { *handle.cast::<libc::c_int>() }))
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
        let Some(fd) = sec2_fd(file.id())? else {
            return Ok(());
        };
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

/// Is `path` already open in this process, through libhdf5 (any handle, on the `sec2`
/// driver)? Compares the device and inode of every open file's descriptor with `path`'s.
#[cfg(unix)]
pub(crate) fn is_open_in_process(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    hdf5::sync::sync(|| {
        // SAFETY: plain query over every open file; the lock is held.
        let n = unsafe { h5f::H5Fget_obj_count(h5f::H5F_OBJ_ALL as hid_t, h5f::H5F_OBJ_FILE) };
        let Ok(n) = usize::try_from(n) else {
            return false;
        };
        let mut ids: Vec<hid_t> = vec![0; n];
        // SAFETY: `ids` holds `n` slots and libhdf5 writes at most `n` ids. The ids are
        // borrowed (libhdf5 does not add a reference for them): they are not closed here.
        let got = unsafe {
            h5f::H5Fget_obj_ids(
                h5f::H5F_OBJ_ALL as hid_t,
                h5f::H5F_OBJ_FILE,
                n,
                ids.as_mut_ptr(),
            )
        };
        ids.truncate(usize::try_from(got).unwrap_or(0));
        ids.into_iter().any(|id| {
            let Ok(Some(fd)) = sec2_fd(id) else {
                return false;
            };
            let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
            // SAFETY: `fd` is a descriptor libhdf5 holds open; `st` a valid out-pointer that
            // `fstat` fills on success (checked before reading it).
            if unsafe { libc::fstat(fd, st.as_mut_ptr()) } != 0 {
                return false;
            }
            // SAFETY: `fstat` succeeded, so `st` is initialized.
            let st = unsafe { st.assume_init() };
            #[allow(
                clippy::unnecessary_cast,
                reason = "`st_dev` and `st_ino` are not `u64` on every unix target"
            )]
            let same = st.st_dev as u64 == meta.dev() && st.st_ino as u64 == meta.ino();
            same
        })
    })
}

/// Without `sec2` descriptors to compare, no file is known to be open.
#[cfg(not(unix))]
pub(crate) fn is_open_in_process(_path: &Path) -> bool {
    false
}

/// Did libhdf5 fail to open a file because it could not lock it (another process holds a
/// conflicting `flock`: a writer keeps an exclusive one while the file is open)?
///
/// Read from the error stack's codes, never its text: when `flock` fails, libhdf5 2.x pushes
/// `(H5E_VFL, H5E_CANTLOCKFILE)` from the `sec2` driver (`H5FD__sec2_lock`, "unable to lock
/// file", with the errno) and from `H5FD_lock`, then `(H5E_FILE, H5E_CANTLOCKFILE)` from
/// `H5F_open` ("unable to lock the file"). No other open failure carries `H5E_CANTLOCKFILE`.
pub(crate) fn is_lock_conflict(e: &hdf5::Error) -> bool {
    e.contains_minor(hdf5::MinorErrorCode::CantLockFile)
}

/// Not needed where child processes do not inherit handles by default.
#[cfg(not(unix))]
pub(crate) fn set_cloexec(_file: &hdf5::File) -> hdf5::Result<()> {
    Ok(())
}

/// Opens `path` for writing with libhdf5's private file-access property
/// `clear_status_flags` set (what `h5clear -s` does), then closes it: the superblock's
/// "open for write" flags are cleared on open.
pub(crate) fn clear_status_flags(path: &Path) -> hdf5::Result<()> {
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
