//! Compression specs: `none`, `deflate[:LEVEL]` (alias `gzip`), `lz4`, `zstd[:LEVEL]`, and the
//! levels each codec accepts.

use std::fmt;
use std::ops::RangeInclusive;

/// Levels of HDF5's deflate filter: 1 (fastest) ..= 9 (smallest).
pub const DEFLATE_LEVELS: RangeInclusive<u8> = 1..=9;

/// Levels of the Zstandard codec: libzstd's `ZSTD_minCLevel()` (`-(1 << 17)`, the fastest)
/// ..= `ZSTD_maxCLevel()` (22, the smallest); 0 is zstd's default (3). The store checks this
/// range against the zstd library it links.
pub const ZSTD_LEVELS: RangeInclusive<i32> = -(1 << 17)..=22;

/// The level of `deflate` and `zstd` when the spec gives none.
pub const DEFAULT_LEVEL: u8 = 1;

/// A parsed compression spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// No compression (and no shuffle).
    None,
    /// Deflate at a level in [`DEFLATE_LEVELS`].
    Deflate {
        /// The level.
        level: u8,
    },
    /// LZ4 (no level).
    Lz4,
    /// Zstandard at a level in [`ZSTD_LEVELS`].
    Zstd {
        /// The level.
        level: i32,
    },
}

/// Why a compression spec was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpecError {
    /// Not one of the known codecs (or a level given to one that takes none).
    Unknown {
        /// The spec.
        spec: String,
    },
    /// The level is not an integer.
    BadLevel {
        /// The spec.
        spec: String,
    },
    /// The level is outside the codec's range.
    LevelOutOfRange {
        /// The codec (`deflate`, `zstd`).
        codec: &'static str,
        /// The level given.
        level: i64,
        /// The codec's lowest level.
        min: i64,
        /// The codec's highest level.
        max: i64,
    },
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecError::Unknown { spec } => write!(
                f,
                "unknown compression {spec:?}: use none, deflate[:{}-{}], lz4 or zstd[:LEVEL]",
                DEFLATE_LEVELS.start(),
                DEFLATE_LEVELS.end()
            ),
            SpecError::BadLevel { spec } => write!(f, "bad level in {spec:?}"),
            SpecError::LevelOutOfRange {
                codec,
                level,
                min,
                max,
            } => write!(f, "{codec} level {level} is outside {min}..={max}"),
        }
    }
}

impl std::error::Error for SpecError {}

fn out_of_range(codec: &'static str, level: i64, min: i64, max: i64) -> SpecError {
    SpecError::LevelOutOfRange {
        codec,
        level,
        min,
        max,
    }
}

/// Checks a deflate level against [`DEFLATE_LEVELS`].
pub fn check_deflate_level(level: i64) -> Result<u8, SpecError> {
    u8::try_from(level)
        .ok()
        .filter(|l| DEFLATE_LEVELS.contains(l))
        .ok_or_else(|| {
            out_of_range(
                "deflate",
                level,
                (*DEFLATE_LEVELS.start()).into(),
                (*DEFLATE_LEVELS.end()).into(),
            )
        })
}

/// Checks a zstd level against [`ZSTD_LEVELS`].
pub fn check_zstd_level(level: i64) -> Result<i32, SpecError> {
    i32::try_from(level)
        .ok()
        .filter(|l| ZSTD_LEVELS.contains(l))
        .ok_or_else(|| {
            out_of_range(
                "zstd",
                level,
                (*ZSTD_LEVELS.start()).into(),
                (*ZSTD_LEVELS.end()).into(),
            )
        })
}

/// Parses a compression spec: `none`, `deflate[:LEVEL]` (or `gzip[:LEVEL]`), `lz4`,
/// `zstd[:LEVEL]`; blanks around the codec and the level are ignored. Levels default to
/// [`DEFAULT_LEVEL`] and must lie in the codec's range.
pub fn parse_compression(spec: &str) -> Result<Compression, SpecError> {
    let (name, level) = match spec.split_once(':') {
        Some((n, l)) => (n.trim(), Some(l.trim())),
        None => (spec.trim(), None),
    };
    let parse_level = || -> Result<i64, SpecError> {
        level.map_or(Ok(DEFAULT_LEVEL.into()), |l| {
            l.parse::<i64>().map_err(|_| SpecError::BadLevel {
                spec: spec.to_owned(),
            })
        })
    };
    match name {
        "none" if level.is_none() => Ok(Compression::None),
        "lz4" if level.is_none() => Ok(Compression::Lz4),
        "deflate" | "gzip" => Ok(Compression::Deflate {
            level: check_deflate_level(parse_level()?)?,
        }),
        "zstd" => Ok(Compression::Zstd {
            level: check_zstd_level(parse_level()?)?,
        }),
        _ => Err(SpecError::Unknown {
            spec: spec.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_specs() {
        for (spec, want) in [
            ("none", Compression::None),
            ("lz4", Compression::Lz4),
            (" lz4 ", Compression::Lz4),
            ("deflate", Compression::Deflate { level: 1 }),
            ("gzip:9", Compression::Deflate { level: 9 }),
            ("deflate: 6", Compression::Deflate { level: 6 }),
            ("zstd", Compression::Zstd { level: 1 }),
            ("zstd:0", Compression::Zstd { level: 0 }),
            ("zstd:22", Compression::Zstd { level: 22 }),
            ("zstd:-131072", Compression::Zstd { level: -131072 }),
        ] {
            assert_eq!(parse_compression(spec), Ok(want), "{spec:?}");
        }
    }

    #[test]
    fn rejected_specs() {
        for spec in [
            "",
            "zip",
            "none:1",
            "lz4:3",
            "deflate:x",
            "zstd:",
            "zstd:1.5",
        ] {
            assert!(
                matches!(
                    parse_compression(spec),
                    Err(SpecError::Unknown { .. } | SpecError::BadLevel { .. })
                ),
                "{spec:?}"
            );
        }
        for spec in [
            "deflate:0",
            "deflate:10",
            "gzip:-1",
            "zstd:23",
            "zstd:-131073",
            "zstd:2147483648",
            "zstd:99999999999",
        ] {
            assert!(
                matches!(
                    parse_compression(spec),
                    Err(SpecError::LevelOutOfRange { .. })
                ),
                "{spec:?}"
            );
        }
    }

    #[test]
    fn errors_name_the_range() {
        let e = parse_compression("zstd:40").unwrap_err().to_string();
        assert_eq!(e, "zstd level 40 is outside -131072..=22");
        let e = parse_compression("deflate:0").unwrap_err().to_string();
        assert_eq!(e, "deflate level 0 is outside 1..=9");
    }
}
