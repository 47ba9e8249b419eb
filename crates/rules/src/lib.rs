//! # h5pom-rules
//!
//! The pure rules of h5pom's format, in one place for every crate that enforces them: the store
//! checks them at run time, `#[derive(Object)]` at compile time (so a bad field name or
//! compression level is a compile error). No dependencies, no I/O.
//!
//! - [`names`]: object names, field names, dict keys, the reserved prefix, the length limit;
//! - [`compression`]: the compression spec (`none`, `deflate[:LEVEL]`, `lz4`, `zstd[:LEVEL]`)
//!   and the levels each codec accepts.

pub mod compression;
pub mod names;

pub use compression::{
    Compression, DEFAULT_LEVEL, DEFLATE_LEVELS, SpecError, ZSTD_LEVELS, check_deflate_level,
    check_zstd_level, parse_compression,
};
pub use names::{
    MAX_NAME_LEN, NameError, RESERVED_PREFIX, check_field_name, check_object_name, is_valid_key,
};
