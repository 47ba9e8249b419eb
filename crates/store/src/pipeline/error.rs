//! The pipeline's error type.

use super::dtype::Dtype;

/// An error of the array pipeline. Every variant names the dataset it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// An error reported by the HDF5 library.
    #[error("HDF5: {0}")]
    Hdf5(#[from] hdf5::Error),

    /// The dataset's element type is not the requested one (no silent conversion is done).
    #[error("dataset {dataset:?}: expected dtype {expected}, found {found}")]
    DtypeMismatch {
        /// Dataset name (HDF5 path).
        dataset: String,
        /// The requested element type.
        expected: Dtype,
        /// The dataset's element type (numpy-style name when numeric).
        found: String,
    },

    /// The dataset's rank is not the requested one.
    #[error("dataset {dataset:?}: expected rank {expected}, found {found}")]
    RankMismatch {
        /// Dataset name (HDF5 path).
        dataset: String,
        /// The requested rank.
        expected: usize,
        /// The dataset's rank.
        found: usize,
    },

    /// Invalid [`ArrayOptions`](super::ArrayOptions) (bad level, bad chunk shape, ...).
    #[error("dataset {dataset:?}: invalid options: {reason}")]
    InvalidOptions {
        /// Dataset name.
        dataset: String,
        /// What is wrong.
        reason: String,
    },

    /// A codec failed to compress a chunk.
    #[error("dataset {dataset:?}: {codec} encoding of chunk at {chunk:?} failed: {reason}")]
    Encode {
        /// Dataset name.
        dataset: String,
        /// Codec name (`"deflate"`, `"lz4"`, `"zstd"`).
        codec: &'static str,
        /// Element offset of the chunk.
        chunk: Vec<u64>,
        /// The codec's error.
        reason: String,
    },

    /// A stored chunk could not be decoded (corrupt data or unexpected size).
    #[error("dataset {dataset:?}: {codec} decoding of chunk at {chunk:?} failed: {reason}")]
    Decode {
        /// Dataset name.
        dataset: String,
        /// Codec or filter name.
        codec: &'static str,
        /// Element offset of the chunk.
        chunk: Vec<u64>,
        /// What went wrong.
        reason: String,
    },

    /// An encode/decode worker panicked (a bug: please report it).
    #[error("pipeline worker panicked: {0}")]
    WorkerPanicked(String),

    /// Internal: the work was cancelled after an earlier error.
    #[error("cancelled after an earlier error")]
    Cancelled,

    /// The dataset declares more elements than can be held in memory (a damaged or hostile
    /// file can declare any shape: 2^40 elements of a chunked dataset cost nothing on disk).
    #[error("dataset {dataset:?}: shape {shape:?} of {elem}-byte elements does not fit in memory")]
    TooLarge {
        /// Dataset name.
        dataset: String,
        /// The declared shape.
        shape: Vec<usize>,
        /// Bytes per element.
        elem: usize,
    },

    /// The private rayon pool of [`Concurrency::Threads`](super::Concurrency) could not be built.
    #[error("could not build the pipeline's thread pool: {0}")]
    ThreadPool(String),
}

/// Result alias of the pipeline.
pub type PipelineResult<T> = Result<T, PipelineError>;
