//! Validated names: HDF5 link names for objects, and `[A-Za-z0-9_]+` keys for fields and dicts;
//! the names of a list's family (`x-count`, `x-0`, …); joining object paths.

use crate::error::{Error, Result};

/// Longest name accepted for an object, field or key (HDF5 itself has no hard limit;
/// this keeps hostile names from allocating without bound).
pub const MAX_NAME_LEN: usize = 1024;

/// Checks that `name` can be used as the name of an object inside a folder.
///
/// Any UTF-8 except: empty, `.`, a `/` (that would be a path), a NUL byte, or longer than
/// [`MAX_NAME_LEN`] bytes. Names starting with `h5pom-` are reserved for the format.
pub fn validate_object_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "empty"
    } else if name == "." || name == ".." {
        "'.' and '..' are not object names"
    } else if name.contains('/') {
        "contains '/'"
    } else if name.contains('\0') {
        "contains a NUL byte"
    } else if name.len() > MAX_NAME_LEN {
        "longer than 1024 bytes"
    } else if name.starts_with(RESERVED_PREFIX) {
        "names starting with 'h5pom-' are reserved"
    } else {
        return Ok(());
    };
    Err(Error::InvalidName {
        name: name.to_owned(),
        reason,
    })
}

/// The prefix of attribute and object names reserved for the format itself.
pub const RESERVED_PREFIX: &str = "h5pom-";

/// True if `key` matches `[A-Za-z0-9_]+` (and is at most [`MAX_NAME_LEN`] bytes).
///
/// This is the rule for dict keys and field names: it keeps `<field>-<key>` names unambiguous,
/// since neither side can contain the `-` separator.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_NAME_LEN
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Checks a field name: `[A-Za-z0-9_]+`, as for dict keys.
pub fn validate_field_name(name: &str) -> Result<()> {
    if is_valid_key(name) {
        Ok(())
    } else {
        Err(Error::InvalidName {
            name: name.to_owned(),
            reason: "field names must match [A-Za-z0-9_]+",
        })
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
