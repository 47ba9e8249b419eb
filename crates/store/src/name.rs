//! Validated names: HDF5 link names for objects, and `[A-Za-z0-9_]+` keys for fields and dicts;
//! the names of a list's family (`x-count`, `x-0`, …); joining object paths.

use crate::error::{Error, Result};

pub use h5pom_rules::{MAX_NAME_LEN, RESERVED_PREFIX, is_valid_key};

/// Checks that `name` can be used as the name of an object inside a folder.
///
/// Any UTF-8 except: empty, `.`, a `/` (that would be a path), a NUL byte, or longer than
/// [`MAX_NAME_LEN`] bytes. Names starting with `h5pom-` are reserved for the format. The rule
/// is [`h5pom_rules::check_object_name`].
pub fn validate_object_name(name: &str) -> Result<()> {
    h5pom_rules::check_object_name(name).map_err(|e| invalid(name, e))
}

/// Checks a field name: `[A-Za-z0-9_]+` (as for dict keys), at most [`MAX_NAME_LEN`] bytes.
/// The rule is [`h5pom_rules::check_field_name`], which `#[derive(Object)]` applies at compile
/// time.
pub fn validate_field_name(name: &str) -> Result<()> {
    h5pom_rules::check_field_name(name).map_err(|e| invalid(name, e))
}

fn invalid(name: &str, e: h5pom_rules::NameError) -> Error {
    Error::InvalidName {
        name: name.to_owned(),
        reason: e.reason(),
    }
}

/// Name of the length attribute of list field `name`.
pub fn count_name(name: &str) -> String {
    format!("{name}-count")
}

/// Name of item `i` of list field `name`.
pub fn item_name(name: &str, i: usize) -> String {
    format!("{name}-{i}")
}

/// Most items a list may claim to have; larger counts in a file are reported as corrupt.
pub const MAX_LIST_LEN: usize = 1 << 28;

/// Joins a parent object path and a child name into an absolute path.
pub(crate) fn join(parent: &str, child: &str) -> String {
    if parent.ends_with('/') {
        format!("{parent}{child}")
    } else {
        format!("{parent}/{child}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names() {
        assert!(validate_object_name("joe").is_ok());
        assert!(validate_object_name("with space é").is_ok());
        for bad in ["", ".", "..", "a/b", "a\0b", "h5pom-format"] {
            assert!(validate_object_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate_object_name(&"x".repeat(MAX_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn keys() {
        assert!(is_valid_key("a_B9"));
        for bad in ["", "a-b", "a b", "é", "a.b", "a/b"] {
            assert!(!is_valid_key(bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn join_paths() {
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
    }
}
