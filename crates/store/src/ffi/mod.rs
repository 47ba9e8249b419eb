//! All raw `hdf5-sys` calls of the store live under this module.
//!
//! Each function takes the library lock (`hdf5::sync::sync`), checks every return code into a
//! `Result` (one helper, `id::check`), owns every id it opens through one RAII type
//! (`id::OwnedId`), and never hands a raw id out: callers pass safe `hdf5` handles in and get
//! plain Rust values back.

pub(crate) mod chunk;
pub(crate) mod file;
mod id;
pub(crate) mod object;
pub(crate) mod scale;
pub(crate) mod vds;
