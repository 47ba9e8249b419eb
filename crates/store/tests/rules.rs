//! The store applies h5pom-rules, the rules `#[derive(Object)]` checks at compile time: what
//! one accepts the other does, and the zstd range is the linked library's.

use h5pom_store::{Filters, MAX_NAME_LEN, validate_field_name, validate_object_name};

#[test]
fn zstd_levels_are_the_linked_libraries() {
    assert_eq!(h5pom_rules::ZSTD_LEVELS, zstd::compression_level_range());
}

#[test]
fn compression_specs_parse_as_the_rules_say() {
    for spec in [
        "none",
        "lz4",
        "deflate",
        "gzip:9",
        "zstd",
        "zstd:-5",
        "zstd:22",
        "deflate:0",
        "deflate:10",
        "zstd:23",
        "zstd:-131073",
        "zstd:x",
        "lz4:1",
        "brotli",
    ] {
        let store: Result<Filters, String> = spec.parse();
        let rules = h5pom_rules::parse_compression(spec);
        assert_eq!(
            store.is_ok(),
            rules.is_ok(),
            "{spec:?}: {store:?} vs {rules:?}"
        );
        if let Err(e) = rules {
            assert_eq!(store.unwrap_err(), e.to_string());
        }
    }
    assert_eq!("zstd:-7".parse::<Filters>(), Ok(Filters::zstd(-7)));
}

#[test]
fn names_are_checked_as_the_rules_say() {
    let long = "k".repeat(MAX_NAME_LEN + 1);
    for name in ["ok_1", "", "a-b", "é", long.as_str()] {
        assert_eq!(
            validate_field_name(name).is_ok(),
            h5pom_rules::check_field_name(name).is_ok(),
            "{name:?}"
        );
    }
    for name in ["joe", "", ".", "a/b", "h5pom-x", long.as_str()] {
        assert_eq!(
            validate_object_name(name).is_ok(),
            h5pom_rules::check_object_name(name).is_ok(),
            "{name:?}"
        );
    }
}
