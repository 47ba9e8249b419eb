//! Raw HDF5 C API access.
//!
//! All raw `hdf5-sys` calls live under this module; each takes the library lock
//! (`hdf5::sync::sync`), checks every return code into a `Result`, and owns ids via RAII.
//! The rest of the crate only sees safe functions taking `hdf5` handles.

pub(crate) mod chunk;
