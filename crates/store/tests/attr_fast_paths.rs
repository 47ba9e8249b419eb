//! The fast attribute paths give the same file as the checked one: `create_attr` (a new
//! attribute, types built once per process) stores the same HDF5 type and value as
//! `set_attr`, and `overwrite_attr` (in place, no type lookup) rewrites the value a same-kind
//! `set_attr` would.

use h5pom_store::{
    File, Schema, Value, create_attr, get_attr, overwrite_attr, reexports::hdf5, set_attr,
};

fn values() -> Vec<(&'static str, Value)> {
    vec![
        ("b_true", Value::Bool(true)),
        ("b_false", Value::Bool(false)),
        ("i8", Value::I8(-128)),
        ("i16", Value::I16(-300)),
        ("i32", Value::I32(i32::MIN)),
        ("i64", Value::I64(i64::MAX)),
        ("u8", Value::U8(255)),
        ("u16", Value::U16(65_535)),
        ("u32", Value::U32(u32::MAX)),
        ("u64", Value::U64(u64::MAX)),
        ("f32", Value::F32(-0.0)),
        ("f64", Value::F64(f64::MIN_POSITIVE)),
        ("s", Value::Str("héllo, wörld".into())),
        ("empty", Value::Str(String::new())),
        ("none", Value::None),
        ("list", Value::List(vec![Value::U16(1), Value::U16(2)])),
    ]
}

fn stored_type(g: &hdf5::Group, name: &str) -> hdf5::Datatype {
    g.attr(name).unwrap().dtype().unwrap()
}

#[test]
fn created_attributes_match_the_checked_path_type_for_type() {
    let dir = tempfile::tempdir().unwrap();
    let f = File::create(dir.path().join("a.h5"), Schema::new()).unwrap();
    let root = f.hdf5().group("/").unwrap();
    let fast = root.create_group("fast").unwrap();
    let slow = root.create_group("slow").unwrap();
    for (name, v) in values() {
        create_attr(&fast, "/fast", name, &v).unwrap();
        set_attr(&slow, "/slow", name, &v).unwrap();
    }
    let mut names_fast = fast.attr_names().unwrap();
    let mut names_slow = slow.attr_names().unwrap();
    names_fast.sort();
    names_slow.sort();
    assert_eq!(names_fast, names_slow, "same attributes, markers included");
    for name in &names_fast {
        // H5Tequal: the same stored type, not only the same Rust reading of it.
        assert!(
            stored_type(&fast, name) == stored_type(&slow, name),
            "{name}: {:?} vs {:?}",
            stored_type(&fast, name).to_descriptor(),
            stored_type(&slow, name).to_descriptor()
        );
    }
    for (name, v) in values() {
        assert_eq!(
            get_attr(&fast, "/fast", name).unwrap(),
            Some(v.clone()),
            "{name}"
        );
    }
    // A name written twice through the fresh path is an error, never an overwrite.
    assert!(create_attr(&fast, "/fast", "i8", &Value::I8(1)).is_err());
    assert_eq!(
        get_attr(&fast, "/fast", "i8").unwrap(),
        Some(Value::I8(-128))
    );
}

#[test]
fn overwriting_in_place_equals_a_checked_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let f = File::create(dir.path().join("o.h5"), Schema::new()).unwrap();
    let root = f.hdf5().group("/").unwrap();
    for (name, v) in values() {
        set_attr(&root, "/", name, &v).unwrap();
    }
    let next = |v: &Value| match v {
        Value::Bool(b) => Value::Bool(!b),
        Value::I8(x) => Value::I8(x.wrapping_add(1)),
        Value::I16(x) => Value::I16(x.wrapping_add(1)),
        Value::I32(x) => Value::I32(x.wrapping_add(1)),
        Value::I64(x) => Value::I64(x.wrapping_sub(1)),
        Value::U8(x) => Value::U8(x.wrapping_sub(1)),
        Value::U16(x) => Value::U16(x.wrapping_sub(1)),
        Value::U32(x) => Value::U32(x.wrapping_sub(1)),
        Value::U64(x) => Value::U64(x.wrapping_sub(1)),
        Value::F32(x) => Value::F32(x + 1.5),
        Value::F64(x) => Value::F64(x * 3.0),
        Value::Str(s) => Value::Str(format!("{s}!")),
        Value::List(items) => Value::List(items.iter().rev().cloned().collect()),
        other => other.clone(),
    };
    for (name, v) in values() {
        let w = next(&v);
        overwrite_attr(&root, "/", name, &w).unwrap();
        assert_eq!(get_attr(&root, "/", name).unwrap(), Some(w), "{name}");
    }
}
