//! I/O options of the run: `--compression` and `--threads`, parsed and validated here, and
//! handed to the store's array pipeline (`h5pom::pipeline`) by [`apply_io_options`].

use std::fmt;
use std::str::FromStr;

use h5pom::pipeline::{ArrayOptions, Concurrency, Filters};

/// `--compression none|deflate[:LEVEL]|lz4|zstd[:LEVEL]`: the pipeline's `Codec`, with shuffle
/// in front of every compressor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Compression {
    /// No filters.
    #[default]
    None,
    /// HDF5's deflate (gzip), level 1..=9 (default 4, as h5py).
    Deflate(u8),
    /// LZ4 (hdf5plugin filter 32004).
    Lz4,
    /// Zstandard (hdf5plugin filter 32015), level -7..=22 (default 3).
    Zstd(i32),
}

/// Default deflate level (h5py's `compression="gzip"` default).
pub(crate) const DEFLATE_DEFAULT: u8 = 4;
/// Default zstd level (zstd's own default).
pub(crate) const ZSTD_DEFAULT: i32 = 3;

impl FromStr for Compression {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, level) = match s.split_once(':') {
            Some((n, l)) => (n, Some(l)),
            None => (s, None),
        };
        let bad_level = |range: &str| {
            format!(
                "invalid level {:?} for {name}: expected an integer in {range}",
                level.unwrap_or("")
            )
        };
        match (name, level) {
            ("none", None) => Ok(Compression::None),
            ("lz4", None) => Ok(Compression::Lz4),
            ("deflate", None) => Ok(Compression::Deflate(DEFLATE_DEFAULT)),
            ("deflate", Some(l)) => match l.parse::<u8>() {
                Ok(v @ 1..=9) => Ok(Compression::Deflate(v)),
                _ => Err(bad_level("1..=9")),
            },
            ("zstd", None) => Ok(Compression::Zstd(ZSTD_DEFAULT)),
            ("zstd", Some(l)) => match l.parse::<i32>() {
                Ok(v @ -7..=22) => Ok(Compression::Zstd(v)),
                _ => Err(bad_level("-7..=22")),
            },
            ("none" | "lz4", Some(_)) => Err(format!("{name} takes no level")),
            _ => Err(format!(
                "unknown compression {s:?}: expected none, deflate[:1-9], lz4 or zstd[:-7-22]"
            )),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Compression::None => f.write_str("none"),
            Compression::Deflate(l) => write!(f, "deflate:{l}"),
            Compression::Lz4 => f.write_str("lz4"),
            Compression::Zstd(l) => write!(f, "zstd:{l}"),
        }
    }
}

/// The I/O options of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct IoOptions {
    /// Compression of the array datasets.
    pub(crate) compression: Compression,
    /// Worker threads of rayon's pool (physics and chunk encoding); `None` = one per core.
    pub(crate) threads: Option<usize>,
}

/// What [`apply_io_options`] could apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AppliedIo {
    /// The compression actually used for the arrays written.
    pub(crate) compression: Compression,
    /// Size of rayon's global pool.
    pub(crate) threads: usize,
}

/// `--threads` asked for a pool that cannot be had.
#[derive(Debug, thiserror::Error)]
#[error("cannot use {requested} threads: rayon's pool already has {actual}")]
pub(crate) struct ThreadsError {
    requested: usize,
    actual: usize,
}

/// Sets up rayon's global pool ([`apply_threads`]) and applies the compression to the arrays
/// `sync` writes.
///
/// The store's array pipeline encodes chunks on that global pool. Snapshots
/// (`Registry::snapshot`) use a file of their own and are written uncompressed.
pub(crate) fn apply_io_options(
    opts: &IoOptions,
    sync: &mut h5pom::ecs::H5Sync,
) -> Result<AppliedIo, ThreadsError> {
    apply_threads(opts)?;
    let filters = match opts.compression {
        Compression::None => Filters::none(),
        Compression::Deflate(level) => Filters::deflate(level),
        Compression::Lz4 => Filters::lz4(),
        Compression::Zstd(level) => Filters::zstd(level),
    };
    sync.set_concurrency(Concurrency::Global);
    sync.set_array_options(ArrayOptions::with_filters(filters));
    Ok(AppliedIo {
        compression: opts.compression,
        threads: rayon::current_num_threads(),
    })
}

/// Sets up rayon's global pool per `--threads`; call it before anything uses the pool (a load
/// decodes on it). The pool can be built once per process: a second run in the same process
/// (the tests) keeps the first pool, which is an error only if it has another size than asked
/// for.
pub(crate) fn apply_threads(opts: &IoOptions) -> Result<(), ThreadsError> {
    if let Some(n) = opts.threads {
        let built = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .is_ok();
        let actual = rayon::current_num_threads();
        if !built && actual != n {
            return Err(ThreadsError {
                requested: n,
                actual,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let ok = [
            ("none", Compression::None),
            ("lz4", Compression::Lz4),
            ("deflate", Compression::Deflate(DEFLATE_DEFAULT)),
            ("deflate:9", Compression::Deflate(9)),
            ("zstd", Compression::Zstd(ZSTD_DEFAULT)),
            ("zstd:-7", Compression::Zstd(-7)),
            ("zstd:22", Compression::Zstd(22)),
        ];
        for (s, c) in ok {
            assert_eq!(s.parse::<Compression>(), Ok(c), "{s}");
            assert_eq!(c.to_string().parse::<Compression>(), Ok(c));
        }
        for s in [
            "",
            "gzip",
            "deflate:0",
            "deflate:10",
            "deflate:",
            "zstd:23",
            "zstd:x",
            "lz4:1",
            "none:0",
        ] {
            assert!(s.parse::<Compression>().is_err(), "{s:?} accepted");
        }
    }
}
