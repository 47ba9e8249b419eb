//! Per-array filter options and the concurrency setting.

use std::sync::Arc;

use crate::ffi::chunk::DcplFilter;

/// HDF5 filter id of the LZ4 plugin filter (hdf5plugin `LZ4`).
pub const LZ4_FILTER_ID: i32 = 32004;
/// HDF5 filter id of the Zstandard plugin filter (hdf5plugin `Zstd`).
pub const ZSTD_FILTER_ID: i32 = 32015;
/// HDF5 filter id of the built-in deflate (gzip) filter.
pub const DEFLATE_FILTER_ID: i32 = 1;
/// HDF5 filter id of the built-in byte-shuffle filter.
pub const SHUFFLE_FILTER_ID: i32 = 2;

/// The compression codec of an array dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Codec {
    /// No compression.
    #[default]
    None,
    /// HDF5's built-in deflate filter (id 1, zlib stream), `level` in `1..=9`.
    Deflate {
        /// Compression level, 1 (fastest) ..= 9 (smallest).
        level: u8,
    },
    /// The LZ4 plugin filter (id 32004, hdf5plugin framing, one block per chunk).
    Lz4,
    /// The Zstandard plugin filter (id 32015, one zstd frame per chunk).
    Zstd {
        /// Compression level (zstd's range, e.g. -7..=22; 1 is fast).
        level: i32,
    },
}

impl Codec {
    /// Short name used in errors and benchmarks.
    pub const fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Deflate { .. } => "deflate",
            Codec::Lz4 => "lz4",
            Codec::Zstd { .. } => "zstd",
        }
    }

    /// Checks the codec parameters (the ranges of [`h5pom_rules`]).
    pub(crate) fn validate(self) -> Result<(), String> {
        match self {
            Codec::Deflate { level } => h5pom_rules::check_deflate_level(level.into()).map(drop),
            Codec::Zstd { level } => h5pom_rules::check_zstd_level(level.into()).map(drop),
            Codec::None | Codec::Lz4 => Ok(()),
        }
        .map_err(|e| e.to_string())
    }
}

/// The filter pipeline of an array dataset: optional byte shuffle, then a codec.
///
/// The default is **no filters at all** (no shuffle, [`Codec::None`]): the cheapest path, a plain
/// chunked write with no copy. Shuffle only helps in front of a compressor; the constructors
/// [`Filters::deflate`], [`Filters::lz4`] and [`Filters::zstd`] turn it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Filters {
    /// Apply HDF5's byte-shuffle filter (id 2) before the codec.
    pub shuffle: bool,
    /// The compression codec.
    pub codec: Codec,
}

impl Filters {
    /// No filters (the default).
    pub const fn none() -> Self {
        Self {
            shuffle: false,
            codec: Codec::None,
        }
    }

    /// Shuffle + deflate at `level` (1..=9).
    pub const fn deflate(level: u8) -> Self {
        Self {
            shuffle: true,
            codec: Codec::Deflate { level },
        }
    }

    /// Shuffle + LZ4.
    pub const fn lz4() -> Self {
        Self {
            shuffle: true,
            codec: Codec::Lz4,
        }
    }

    /// Shuffle + Zstandard at `level`.
    pub const fn zstd(level: i32) -> Self {
        Self {
            shuffle: true,
            codec: Codec::Zstd { level },
        }
    }

    /// True when no filter is applied (the plain-write path).
    pub const fn is_plain(&self) -> bool {
        !self.shuffle && matches!(self.codec, Codec::None)
    }

    /// The dcpl filter list in pipeline order (shuffle first, then the codec), with exactly the
    /// ids and `cd_values` h5py/hdf5plugin register.
    pub(crate) fn dcpl_filters(&self) -> Vec<DcplFilter> {
        let mut v = Vec::with_capacity(2);
        if self.shuffle {
            v.push(DcplFilter::Shuffle);
        }
        match self.codec {
            Codec::None => {}
            Codec::Deflate { level } => v.push(DcplFilter::Deflate(u32::from(level))),
            // cd_values[0] = block size, 0 = the filter's default (1 GiB): one block per chunk.
            Codec::Lz4 => v.push(DcplFilter::Optional {
                id: LZ4_FILTER_ID,
                cd_values: vec![0],
            }),
            // Negative levels are stored as the two's complement, as the C filter reads an int.
            Codec::Zstd { level } => v.push(DcplFilter::Optional {
                id: ZSTD_FILTER_ID,
                cd_values: vec![level as u32],
            }),
        }
        v
    }
}

/// Options of one array dataset.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ArrayOptions {
    /// Filter pipeline.
    pub filters: Filters,
    /// Chunk shape; `None` = [`auto_chunk`](super::auto_chunk). Must have the array's rank and
    /// entries >= 1 (it may be larger than the array: HDF5 allows that).
    pub chunk: Option<Vec<usize>>,
}

impl ArrayOptions {
    /// Options with the given filters and automatic chunking.
    pub const fn with_filters(filters: Filters) -> Self {
        Self {
            filters,
            chunk: None,
        }
    }

    /// Sets an explicit chunk shape.
    pub fn chunk(mut self, chunk: impl Into<Vec<usize>>) -> Self {
        self.chunk = Some(chunk.into());
        self
    }
}

/// Where the pipeline runs its encode/decode work.
#[derive(Debug, Clone, Default)]
pub enum Concurrency {
    /// Everything on the calling thread, no overlap of encoding and writing.
    Serial,
    /// A private rayon pool of this many threads (0 = one per core), built once per [`Pipeline`].
    ///
    /// [`Pipeline`]: super::Pipeline
    Threads(usize),
    /// A caller-provided rayon pool.
    Pool(Arc<rayon::ThreadPool>),
    /// The global rayon pool (all cores by default).
    #[default]
    Global,
}

/// Parses `none`, `deflate[:LEVEL]`, `lz4`, `zstd[:LEVEL]` (the command-line spelling); every
/// codec but `none` turns the byte-shuffle on. Levels default to 1.
impl std::str::FromStr for Filters {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        use h5pom_rules::Compression;
        Ok(
            match h5pom_rules::parse_compression(s).map_err(|e| e.to_string())? {
                Compression::None => Filters::none(),
                Compression::Deflate { level } => Filters::deflate(level),
                Compression::Lz4 => Filters::lz4(),
                Compression::Zstd { level } => Filters::zstd(level),
                // `Compression` is non-exhaustive: a codec added to the rules before the
                // store knows it is refused.
                other => return Err(format!("compression {other:?} is not supported")),
            },
        )
    }
}

impl std::fmt::Display for Filters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.codec {
            Codec::None => f.write_str("none")?,
            Codec::Deflate { level } => write!(f, "deflate:{level}")?,
            Codec::Lz4 => f.write_str("lz4")?,
            Codec::Zstd { level } => write!(f, "zstd:{level}")?,
        }
        if self.shuffle != !matches!(self.codec, Codec::None) {
            write!(f, " (shuffle {})", if self.shuffle { "on" } else { "off" })?;
        }
        Ok(())
    }
}
