//! placeholder

mod ffi;
pub mod pipeline;
