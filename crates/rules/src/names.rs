//! Names: HDF5 link names for objects, `[A-Za-z0-9_]+` keys for fields and dicts.

use std::fmt;

/// Longest name accepted for an object, field or key, in bytes (HDF5 itself has no hard
/// limit; this keeps hostile names from allocating without bound).
pub const MAX_NAME_LEN: usize = 1024;

/// The prefix of attribute and object names reserved for the format itself.
pub const RESERVED_PREFIX: &str = "h5pom-";

/// Why a name was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    Empty,
    /// `.` or `..`.
    Dot,
    /// The name contains `/` (that would be a path).
    Slash,
    /// The name contains a NUL byte.
    Nul,
    /// The name is longer than [`MAX_NAME_LEN`] bytes.
    TooLong,
    /// The name starts with [`RESERVED_PREFIX`].
    Reserved,
    /// A field name outside `[A-Za-z0-9_]+`.
    NotKey,
}

impl NameError {
    /// Why the name was rejected, in words.
    pub const fn reason(self) -> &'static str {
        match self {
            NameError::Empty => "empty",
            NameError::Dot => "'.' and '..' are not object names",
            NameError::Slash => "contains '/'",
            NameError::Nul => "contains a NUL byte",
            NameError::TooLong => "longer than 1024 bytes",
            NameError::Reserved => "names starting with 'h5pom-' are reserved",
            NameError::NotKey => "field names must match [A-Za-z0-9_]+",
        }
    }
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for NameError {}

/// Checks that `name` can be used as the name of an object inside a folder.
///
/// Any UTF-8 except: empty, `.`, `..`, a `/` (that would be a path), a NUL byte, or longer
/// than [`MAX_NAME_LEN`] bytes. Names starting with [`RESERVED_PREFIX`] are reserved for the
/// format.
pub fn check_object_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        Err(NameError::Empty)
    } else if name == "." || name == ".." {
        Err(NameError::Dot)
    } else if name.contains('/') {
        Err(NameError::Slash)
    } else if name.contains('\0') {
        Err(NameError::Nul)
    } else if name.len() > MAX_NAME_LEN {
        Err(NameError::TooLong)
    } else if name.starts_with(RESERVED_PREFIX) {
        Err(NameError::Reserved)
    } else {
        Ok(())
    }
}

/// True if `key` matches `[A-Za-z0-9_]+` and is at most [`MAX_NAME_LEN`] bytes.
///
/// This is the rule for dict keys and field names: it keeps `<field>-<key>` names unambiguous,
/// since neither side can contain the `-` separator.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_NAME_LEN
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Checks a field name: `[A-Za-z0-9_]+`, at most [`MAX_NAME_LEN`] bytes, as for dict keys.
pub fn check_field_name(name: &str) -> Result<(), NameError> {
    if is_valid_key(name) {
        Ok(())
    } else if name.len() > MAX_NAME_LEN {
        Err(NameError::TooLong)
    } else {
        Err(NameError::NotKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names() {
        assert_eq!(check_object_name("joe"), Ok(()));
        assert_eq!(check_object_name("with space é"), Ok(()));
        assert_eq!(check_object_name(&"x".repeat(MAX_NAME_LEN)), Ok(()));
        for (bad, why) in [
            ("", NameError::Empty),
            (".", NameError::Dot),
            ("..", NameError::Dot),
            ("a/b", NameError::Slash),
            ("a\0b", NameError::Nul),
            ("h5pom-format", NameError::Reserved),
        ] {
            assert_eq!(check_object_name(bad), Err(why), "{bad:?}");
        }
        assert_eq!(
            check_object_name(&"x".repeat(MAX_NAME_LEN + 1)),
            Err(NameError::TooLong)
        );
    }

    #[test]
    fn keys_and_field_names() {
        assert!(is_valid_key("a_B9"));
        for bad in ["", "a-b", "a b", "é", "a.b", "a/b"] {
            assert!(!is_valid_key(bad), "{bad:?} accepted");
            assert_eq!(check_field_name(bad), Err(NameError::NotKey), "{bad:?}");
        }
        assert!(is_valid_key(&"k".repeat(MAX_NAME_LEN)));
        assert!(!is_valid_key(&"k".repeat(MAX_NAME_LEN + 1)));
        assert_eq!(
            check_field_name(&"k".repeat(MAX_NAME_LEN + 1)),
            Err(NameError::TooLong)
        );
    }

    #[test]
    fn the_reason_states_the_limit() {
        assert!(
            NameError::TooLong
                .reason()
                .contains(&MAX_NAME_LEN.to_string())
        );
    }
}
