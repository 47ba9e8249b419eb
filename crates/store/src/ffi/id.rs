//! The module's one owning id type ([`OwnedId`]) and one return-code check ([`check`]).

use hdf5_sys::h5::herr_t;
use hdf5_sys::h5i::{H5Idec_ref, hid_t};

/// HDF5 result alias used by this module.
pub(super) type H5Result<T> = hdf5::Result<T>;

/// Checks a status (`herr_t`) or boolean (`htri_t`) return code: a negative code becomes the
/// pending HDF5 error, with libhdf5's error stack; any other code is returned.
pub(super) fn check(code: herr_t) -> H5Result<herr_t> {
    hdf5::h5check(code)
}

/// An HDF5 id owned by this module: closed exactly once, on drop or by [`close`](Self::close).
///
/// `H5Idec_ref` closes an id of any class (property list, dataspace, file, attribute, type)
/// with its class's close function, so one type covers them all.
pub(super) struct OwnedId(hid_t);

impl OwnedId {
    /// Takes ownership of `id`, the return value of an HDF5 constructor: a negative id becomes
    /// the pending HDF5 error.
    pub(super) fn new(id: hid_t) -> H5Result<Self> {
        hdf5::h5check(id).map(Self)
    }

    /// The raw id, valid while `self` lives.
    pub(super) fn id(&self) -> hid_t {
        self.0
    }

    /// Closes the id now, reporting a failure to close (a file's final flush, for example).
    pub(super) fn close(self) -> H5Result<()> {
        let id = self.0;
        std::mem::forget(self);
        hdf5::sync::sync(|| {
            // SAFETY: `id` is a live id this wrapper owned (checked at construction); ownership
            // was given up above, so it is released exactly once, here; the lock is held.
            check(unsafe { H5Idec_ref(id) }).map(|_| ())
        })
    }
}

impl Drop for OwnedId {
    fn drop(&mut self) {
        hdf5::sync::sync(|| {
            // SAFETY: `self.0` is a live id this wrapper owns (checked at construction), released
            // exactly once, here; the lock is held.
            unsafe { H5Idec_ref(self.0) };
        });
    }
}
