//! The object mapper end to end: files, tags, scalars, arrays, references, lists, dicts,
//! folders, live sync, copies and typed errors.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveDateTime};
use h5pom::{AnyObject, Error, File, LazyArray, Object, Schema, Shared, Value};
use ndarray::{Array, Array0, Array1, Array2, Array3, Ix1, Ix2, IxDyn, ShapeBuilder, s};

#[derive(Object, Clone, Debug, PartialEq)]
struct Person {
    name: String,
    age: u32,
}

#[derive(Object, Clone, Debug, PartialEq)]
#[h5pom(tag = "scalars-v1")]
struct Scalars {
    a: i8,
    b: i16,
    c: i32,
    d: i64,
    e: u8,
    f: u16,
    g: u32,
    h: u64,
    x: f32,
    y: f64,
    flag: bool,
    text: String,
    maybe: Option<i32>,
    maybe_none: Option<i32>,
    maybe_text: Option<String>,
    day: NaiveDate,
    when: NaiveDateTime,
    maybe_day: Option<NaiveDate>,
}

fn scalars() -> Scalars {
    Scalars {
        a: i8::MIN,
        b: i16::MAX,
        c: -7,
        d: i64::MIN,
        e: u8::MAX,
        f: 65_000,
        g: u32::MAX,
        h: u64::MAX,
        x: -0.0,
        y: f64::NAN,
        flag: true,
        text: "héllo wörld ✓".into(),
        maybe: Some(0),
        maybe_none: None,
        maybe_text: Some(String::new()),
        day: NaiveDate::from_ymd_opt(2013, 3, 19).unwrap(),
        when: NaiveDate::from_ymd_opt(1999, 12, 31)
            .unwrap()
            .and_hms_micro_opt(23, 59, 58, 123_456)
            .unwrap(),
        maybe_day: None,
    }
}

fn same_scalars(a: &Scalars, b: &Scalars) -> bool {
    use h5pom::Field;
    a.a == b.a
        && a.b == b.b
        && a.c == b.c
        && a.d == b.d
        && a.e == b.e
        && a.f == b.f
        && a.g == b.g
        && a.h == b.h
        && a.x.to_bits() == b.x.to_bits()
        && a.y.to_bits() == b.y.to_bits()
        && a.flag == b.flag
        && a.text == b.text
        && a.maybe == b.maybe
        && a.maybe_none == b.maybe_none
        && a.maybe_text == b.maybe_text
        && a.day == b.day
        && a.when == b.when
        && a.maybe_day == b.maybe_day
        && Field::same(a, b)
}

impl h5pom::Scalar for Scalars {
    const TYPE_NAME: &'static str = "unused";
    fn to_value(&self) -> Value {
        Value::None
    }
    fn from_value(_: Value) -> Result<Self, h5pom::ScalarError> {
        Err(h5pom::ScalarError::Mismatch {
            expected: "unused",
            found: String::new(),
        })
    }
    fn same(&self, other: &Self) -> bool {
        self.x.to_bits() == other.x.to_bits() && self.y.to_bits() == other.y.to_bits()
    }
}

fn temp() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.h5");
    (dir, path)
}

#[test]
fn files_open_modes_and_errors() {
    let (_d, path) = temp();
    let schema = Schema::new().with::<Person>();
    assert!(matches!(
        File::open(&path, schema.clone()),
        Err(Error::FileNotFound { .. })
    ));
    assert!(matches!(
        File::open_read_only(&path, schema.clone()),
        Err(Error::FileNotFound { .. })
    ));
    let f = File::create(&path, schema.clone()).unwrap();
    f.root()
        .insert(
            "joe",
            &Person {
                name: "Joe".into(),
                age: 25,
            },
        )
        .unwrap();
    assert_eq!(f.format_version().unwrap(), Some(h5pom::FORMAT_VERSION));
    f.close().unwrap();

    let ro = File::open_read_only(&path, schema.clone()).unwrap();
    assert!(ro.is_read_only());
    assert_eq!(ro.root().load::<Person>("joe").unwrap().age, 25);
    let err = ro
        .root()
        .insert(
            "bob",
            &Person {
                name: "Bob".into(),
                age: 1,
            },
        )
        .unwrap_err();
    assert!(matches!(err, Error::ReadOnly { .. }), "{err}");
    let err = ro
        .root()
        .get::<Person>("joe")
        .unwrap()
        .set_age(3u32)
        .unwrap_err();
    assert!(matches!(err, Error::ReadOnly { .. }), "{err}");
    drop(ro);

    let rw = File::open(&path, schema.clone()).unwrap();
    rw.root()
        .get::<Person>("joe")
        .unwrap()
        .set_age(26u32)
        .unwrap();
    drop(rw);
    let again = File::open_with(&path, h5pom::Mode::OpenOrCreate, schema.clone()).unwrap();
    assert_eq!(again.root().load::<Person>("joe").unwrap().age, 26);
    drop(again);

    let junk = path.with_extension("junk");
    std::fs::write(&junk, b"definitely not an HDF5 file, just some bytes").unwrap();
    let err = File::open(&junk, schema.clone()).unwrap_err();
    assert!(matches!(err, Error::NotHdf5 { .. }), "{err}");
    let empty = path.with_extension("empty");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        File::open_read_only(&empty, schema),
        Err(Error::NotHdf5 { .. })
    ));
}

#[test]
fn newer_format_is_refused() {
    let (_d, path) = temp();
    let f = File::create(&path, Schema::new()).unwrap();
    f.root()
        .hdf5_group()
        .attr(h5pom::FORMAT_VERSION_ATTR)
        .unwrap()
        .write_scalar(&(h5pom::FORMAT_VERSION + 1))
        .unwrap();
    drop(f);
    let err = File::open(&path, Schema::new()).unwrap_err();
    assert!(
        matches!(err, Error::UnsupportedFormat { found, .. } if found == h5pom::FORMAT_VERSION + 1),
        "{err}"
    );
}

#[test]
fn in_memory_files_are_independent() {
    let a = File::in_memory(Schema::new()).unwrap();
    let b = File::in_memory(Schema::new()).unwrap();
    a.root()
        .insert(
            "joe",
            &Person {
                name: "A".into(),
                age: 1,
            },
        )
        .unwrap();
    assert!(!b.root().contains("joe").unwrap());
    assert!(!a.path().exists());
}

#[test]
fn every_scalar_round_trips_exactly() {
    let f = File::in_memory(Schema::new().with::<Scalars>()).unwrap();
    let v = scalars();
    let h = f.root().insert("s", &v).unwrap();
    let back: Scalars = h.load().unwrap();
    assert!(same_scalars(&v, &back), "{v:?}\n{back:?}");
    // None is stored distinctly from every value, Some(0) included.
    let folder = h.as_folder();
    assert_eq!(folder.attr::<Option<i32>>("maybe").unwrap(), Some(Some(0)));
    assert_eq!(
        folder.attr::<Option<i32>>("maybe_none").unwrap(),
        Some(None)
    );
    assert_eq!(
        folder.attr::<String>("maybe_none-type").unwrap(),
        Some("None".into())
    );
    assert_eq!(
        folder.attr::<String>("day-type").unwrap(),
        Some("date".into())
    );
    assert_eq!(
        folder.attr::<String>("loader-key").unwrap(),
        Some("scalars-v1".into())
    );
    // Changing an Option from None to a value removes the marker, and back.
    h.set_maybe_none(Some(5)).unwrap();
    assert_eq!(h.maybe_none().unwrap(), Some(5));
    assert_eq!(folder.attr::<String>("maybe_none-type").unwrap(), None);
    h.set_maybe(None).unwrap();
    assert_eq!(h.maybe().unwrap(), None);
    // A different type under the same name replaces the attribute.
    h.set_maybe_day(Some(NaiveDate::from_ymd_opt(2020, 2, 29).unwrap()))
        .unwrap();
    assert_eq!(h.maybe_day().unwrap(), NaiveDate::from_ymd_opt(2020, 2, 29));
}

#[test]
fn scalar_type_errors_name_the_field() {
    let f = File::in_memory(Schema::new()).unwrap();
    let root = f.root();
    root.insert(
        "joe",
        &Person {
            name: "Joe".into(),
            age: 25,
        },
    )
    .unwrap();
    let joe = root.folder("joe").unwrap();
    joe.set_attr("age", &-1i64).unwrap();
    let err = root.load::<Person>("joe").unwrap_err();
    assert!(
        matches!(&err, Error::OutOfRange { field, expected: "u32", .. } if field == "age"),
        "{err}"
    );
    joe.set_attr("age", &2.5f64).unwrap();
    let err = root.load::<Person>("joe").unwrap_err();
    assert!(
        matches!(&err, Error::TypeMismatch { field, path, .. } if field == "age" && path == "/joe"),
        "{err}"
    );
    joe.set_attr("age", &None::<u32>).unwrap();
    assert!(matches!(
        root.load::<Person>("joe"),
        Err(Error::TypeMismatch { .. })
    ));
    joe.delete_attr("age").unwrap();
    let err = root.load::<Person>("joe").unwrap_err();
    assert!(
        matches!(&err, Error::MissingField { field, .. } if field == "age"),
        "{err}"
    );
    // Strings with NUL bytes cannot be stored: a typed error, not a panic.
    let err = root
        .get::<Person>("joe")
        .unwrap()
        .set_name("a\0b")
        .unwrap_err();
    assert!(matches!(err, Error::TypeMismatch { .. }), "{err}");
}

#[derive(Object)]
struct Arrays {
    i8s: Array1<i8>,
    i16s: Array2<i16>,
    i32s: Array3<i32>,
    i64s: Array<i64, IxDyn>,
    u8s: Array1<u8>,
    u16s: Array1<u16>,
    u32s: Array1<u32>,
    u64s: Array1<u64>,
    f32s: Array2<f32>,
    f64s: Array0<f64>,
    empty: Array2<f32>,
    lazy: LazyArray<f64, Ix2>,
}

#[test]
fn arrays_of_every_dtype_and_rank() {
    let f = File::in_memory(Schema::new()).unwrap();
    let fortran =
        Array2::from_shape_vec((3, 4).f(), (0..12).map(|x| x as f32 * 1.5).collect()).unwrap();
    assert!(!fortran.is_standard_layout());
    let v = Arrays {
        i8s: Array1::from_vec(vec![i8::MIN, 0, i8::MAX]),
        i16s: Array2::from_shape_fn((2, 3), |(i, j)| (i * 10 + j) as i16 - 5),
        i32s: Array3::from_shape_fn((2, 3, 4), |(i, j, k)| (i * 100 + j * 10 + k) as i32),
        i64s: Array::from_shape_fn(IxDyn(&[2, 1, 2, 1, 2]), |d| d[0] as i64 * i64::MAX / 3),
        u8s: Array1::from_vec(vec![0, 255]),
        u16s: Array1::from_vec(vec![u16::MAX]),
        u32s: Array1::from_vec(vec![]),
        u64s: Array1::from_vec(vec![u64::MAX, 1]),
        f32s: fortran.clone(),
        f64s: Array0::from_elem((), std::f64::consts::PI),
        empty: Array2::zeros((0, 7)),
        lazy: LazyArray::new(Array2::from_shape_fn((50, 4), |(i, j)| (i * 4 + j) as f64)),
    };
    let h = f.root().insert("a", &v).unwrap();
    let back = h.load().unwrap();
    assert_eq!(back.i8s, v.i8s);
    assert_eq!(back.i16s, v.i16s);
    assert_eq!(back.i32s, v.i32s);
    assert_eq!(back.i64s, v.i64s);
    assert_eq!(back.u8s, v.u8s);
    assert_eq!(back.u16s, v.u16s);
    assert_eq!(back.u32s.shape(), &[0]);
    assert_eq!(back.u64s, v.u64s);
    assert_eq!(back.f32s, fortran);
    assert_eq!(back.f64s, v.f64s);
    assert_eq!(back.empty.shape(), &[0, 7]);
    // Lazy: loading did not read the data; the shape is known; slices read part of it.
    assert!(!back.lazy.is_loaded());
    assert_eq!(back.lazy.shape(), vec![50, 4]);
    let part: Array2<f64> = back.lazy.read_slice(s![10..12, 1..3]).unwrap();
    assert_eq!(
        part,
        Array2::from_shape_vec((2, 2), vec![41., 42., 45., 46.]).unwrap()
    );
    assert!(!back.lazy.is_loaded());
    assert_eq!(back.lazy.get().unwrap()[[49, 3]], 199.0);
    assert!(back.lazy.is_loaded());
    // Datasets are chunked and resizable along every axis (rank >= 1).
    let ds = h.as_folder().hdf5_group().dataset("i16s").unwrap();
    assert!(ds.is_chunked());
    assert!(ds.is_resizable());
    // A handle reads one array without loading the object.
    let lazy = h.array::<i32, ndarray::Ix3>("i32s").unwrap();
    assert_eq!(lazy.shape(), vec![2, 3, 4]);
    let row: Array1<i32> = lazy.read_slice(s![1, 2, ..]).unwrap();
    assert_eq!(row, Array1::from_vec(vec![120, 121, 122, 123]));
}

#[test]
fn array_dtype_and_rank_mismatch_are_typed_errors() {
    #[derive(Object)]
    #[h5pom(tag = "A")]
    struct F32 {
        data: Array1<f32>,
    }
    #[derive(Object)]
    #[h5pom(tag = "A")]
    struct F64 {
        data: Array1<f64>,
    }
    #[derive(Object)]
    #[h5pom(tag = "A")]
    struct F32x2 {
        data: Array2<f32>,
    }
    let f = File::in_memory(Schema::new()).unwrap();
    f.root()
        .insert(
            "a",
            &F32 {
                data: Array1::zeros(4),
            },
        )
        .unwrap();
    let err = f.root().load::<F64>("a").err().unwrap();
    assert!(
        matches!(&err, Error::TypeMismatch { field, found, .. } if field == "data" && found.contains("float32")),
        "{err}"
    );
    let err = f.root().load::<F32x2>("a").err().unwrap();
    assert!(
        matches!(&err, Error::TypeMismatch { expected, .. } if expected.contains("rank 2")),
        "{err}"
    );
    let err = f
        .root()
        .get::<F64>("a")
        .unwrap()
        .array::<i8, Ix1>("data")
        .unwrap_err();
    assert!(matches!(err, Error::TypeMismatch { .. }));
    // Overwriting with another dtype or shape replaces the dataset.
    let h = f.root().get::<F32>("a").unwrap();
    h.set("data", &Array1::<f64>::zeros(2)).unwrap();
    assert_eq!(f.root().load::<F64>("a").unwrap().data.len(), 2);
}

#[derive(Object)]
struct Node {
    label: String,
    next: Option<Shared<Node>>,
    friends: Vec<Shared<Node>>,
}

fn node(label: &str) -> Shared<Node> {
    Shared::new(Node {
        label: label.into(),
        next: None,
        friends: Vec::new(),
    })
}

fn token(folder: &h5pom::Folder, path: &str) -> hdf5::LocationToken {
    folder
        .hdf5_group()
        .group(path)
        .unwrap()
        .loc_info()
        .unwrap()
        .token
}

#[test]
fn shared_references_are_hard_links_and_reload_shared() {
    let f = File::in_memory(Schema::new().with::<Node>()).unwrap();
    let shared = node("shared");
    let a = node("a");
    a.write().friends = vec![shared.clone(), shared.clone()];
    a.write().next = Some(shared.clone());
    f.root().insert_shared("a", &a).unwrap();
    let root = f.root();
    assert_eq!(token(&root, "a/friends-0"), token(&root, "a/friends-1"));
    assert_eq!(token(&root, "a/friends-0"), token(&root, "a/next"));
    // A second top-level object referencing it links to the same group.
    let b = node("b");
    b.write().next = Some(shared.clone());
    f.root().insert_shared("b", &b).unwrap();
    assert_eq!(token(&root, "b/next"), token(&root, "a/next"));
    drop((a, b, shared));
    f.clear_identity_map();

    let a = f.root().load_shared::<Node>("a").unwrap();
    let b = f.root().load_shared::<Node>("b").unwrap();
    let a = a.read();
    assert!(Shared::ptr_eq(&a.friends[0], &a.friends[1]));
    assert!(Shared::ptr_eq(a.next.as_ref().unwrap(), &a.friends[0]));
    assert!(Shared::ptr_eq(
        b.read().next.as_ref().unwrap(),
        &a.friends[0]
    ));
    assert_eq!(a.friends[0].read().label, "shared");
    // Loading the same group again while alive gives the same object (identity map).
    let b2 = f.root().load_shared::<Node>("b").unwrap();
    assert!(Shared::ptr_eq(&b, &b2));
}

#[test]
fn cycles_save_and_load_without_looping() {
    let f = File::in_memory(Schema::new()).unwrap();
    let x = node("x");
    let y = node("y");
    x.write().next = Some(y.clone());
    y.write().next = Some(x.clone());
    x.write().friends.push(x.clone()); // self-loop
    f.root().insert_shared("x", &x).unwrap();
    let root = f.root();
    assert_eq!(token(&root, "x"), token(&root, "x/next/next"));
    assert_eq!(token(&root, "x"), token(&root, "x/friends-0"));
    // Break the in-memory cycles so the test does not leak, then reload.
    x.write().next = None;
    x.write().friends.clear();
    drop((x, y));
    f.clear_identity_map();
    let x = f.root().load_shared::<Node>("x").unwrap();
    let y = x.read().next.clone().unwrap();
    assert_eq!(y.read().label, "y");
    assert!(Shared::ptr_eq(y.read().next.as_ref().unwrap(), &x));
    assert!(Shared::ptr_eq(&x.read().friends[0], &x));
    x.write().next = None;
    x.write().friends.clear();
    // The generic loader terminates on the cycle too.
    let g = f.root().load_generic("x").unwrap();
    assert!(
        matches!(g.object_lists["friends"][0], h5pom::Child::Link { ref path } if path == "/x")
    );
}

#[derive(Object, Clone, Debug, PartialEq)]
struct Bag {
    nums: Vec<i32>,
    words: Vec<String>,
    maybes: Vec<Option<f64>>,
    days: Vec<NaiveDate>,
    scores: BTreeMap<String, f64>,
    notes: BTreeMap<String, Option<String>>,
}

#[test]
fn lists_and_dicts_round_trip_and_shrink() {
    let f = File::in_memory(Schema::new()).unwrap();
    let mut v = Bag {
        nums: vec![3, 1, 2],
        words: vec!["a".into(), "".into()],
        maybes: vec![None, Some(0.0), Some(-1.5)],
        days: vec![NaiveDate::from_ymd_opt(2000, 1, 1).unwrap()],
        scores: BTreeMap::from([("alpha".into(), 1.0), ("B_2".into(), 2.0)]),
        notes: BTreeMap::from([("x".into(), None), ("y".into(), Some("why".into()))]),
    };
    let h = f.root().insert("bag", &v).unwrap();
    assert_eq!(h.load().unwrap(), v);
    let folder = h.as_folder();
    assert_eq!(folder.attr::<i64>("nums-count").unwrap(), Some(3));
    assert_eq!(folder.attr::<i32>("nums-2").unwrap(), Some(2));
    assert_eq!(folder.attr::<f64>("scores-alpha").unwrap(), Some(1.0));
    // Shrinking removes the stale items and keys.
    v.nums = vec![9];
    v.scores.remove("alpha");
    v.notes.clear();
    h.save(&v).unwrap();
    assert_eq!(h.load().unwrap(), v);
    assert_eq!(folder.attr::<i32>("nums-1").unwrap(), None);
    assert_eq!(folder.attr::<f64>("scores-alpha").unwrap(), None);
    assert!(
        !folder
            .attr_names()
            .unwrap()
            .iter()
            .any(|n| n.starts_with("notes-"))
    );
}

#[test]
fn invalid_dict_keys_are_rejected_before_writing() {
    let f = File::in_memory(Schema::new()).unwrap();
    let v = Bag {
        nums: vec![],
        words: vec![],
        maybes: vec![],
        days: vec![],
        scores: BTreeMap::from([("ok".into(), 1.0), ("not ok".into(), 2.0)]),
        notes: BTreeMap::new(),
    };
    let err = f.root().insert("bag", &v).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidKey { key, field, .. } if key == "not ok" && field == "scores"),
        "{err}"
    );
    let folder = f.root().folder("bag").unwrap();
    assert_eq!(folder.attr::<f64>("scores-ok").unwrap(), None);
    for bad in ["", "a-b", "é", "a/b", "a.b"] {
        let mut v2 = v.clone();
        v2.scores = BTreeMap::from([(bad.to_string(), 1.0)]);
        assert!(
            matches!(f.root().insert("bag2", &v2), Err(Error::InvalidKey { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn list_handles_edit_in_place() {
    let f = File::in_memory(Schema::new()).unwrap();
    let h = f
        .root()
        .insert(
            "bag",
            &Bag {
                nums: vec![10, 20, 30],
                words: vec![],
                maybes: vec![Some(1.0), None],
                days: vec![],
                scores: BTreeMap::new(),
                notes: BTreeMap::new(),
            },
        )
        .unwrap();
    let nums = h.list::<i32>("nums").unwrap();
    nums.push(&40).unwrap();
    nums.insert(0, &5).unwrap();
    nums.remove(2).unwrap();
    nums.set(1, &11).unwrap();
    assert_eq!(nums.to_vec().unwrap(), vec![5, 11, 30, 40]);
    assert_eq!(h.nums().unwrap(), vec![5, 11, 30, 40]);
    assert!(matches!(
        nums.get(4),
        Err(Error::IndexOutOfBounds {
            index: 4,
            len: 4,
            ..
        })
    ));
    assert!(matches!(
        nums.remove(9),
        Err(Error::IndexOutOfBounds { .. })
    ));
    // Markers move with their items.
    let maybes = h.list::<Option<f64>>("maybes").unwrap();
    maybes.insert(0, &Some(0.5)).unwrap();
    assert_eq!(maybes.to_vec().unwrap(), vec![Some(0.5), Some(1.0), None]);
    maybes.remove(1).unwrap();
    assert_eq!(maybes.to_vec().unwrap(), vec![Some(0.5), None]);
    assert_eq!(h.as_folder().attr::<String>("maybes-2-type").unwrap(), None);
    assert!(matches!(
        h.list::<i32>("nope"),
        Err(Error::InvalidName { .. })
    ));
}

#[test]
fn object_list_handles_keep_links_and_identity() {
    let f = File::in_memory(Schema::new()).unwrap();
    let root = node("root");
    let (p, q) = (node("p"), node("q"));
    root.write().friends = vec![p.clone(), q.clone()];
    let h = f.root().insert_shared("root", &root).unwrap();
    let list = h.list::<Shared<Node>>("friends").unwrap();
    let r = node("r");
    list.insert(0, &r).unwrap();
    assert_eq!(list.len().unwrap(), 3);
    let labels: Vec<String> = list
        .to_vec()
        .unwrap()
        .iter()
        .map(|n| n.read().label.clone())
        .collect();
    assert_eq!(labels, ["r", "p", "q"]);
    // p moved from friends-0 to friends-1: referencing it again links to its new place.
    let other = node("other");
    other.write().next = Some(p.clone());
    f.root().insert_shared("other", &other).unwrap();
    let g = f.root().hdf5_group().clone();
    let t = |path: &str| g.group(path).unwrap().loc_info().unwrap().token;
    assert_eq!(t("other/next"), t("root/friends-1"));
    list.remove(0).unwrap();
    assert_eq!(list.get(0).unwrap().read().label, "p");
}

#[test]
fn folder_api() {
    let f = File::in_memory(Schema::new().with::<Person>()).unwrap();
    let root = f.root();
    assert!(!root.contains("joe").unwrap());
    root.insert(
        "joe",
        &Person {
            name: "Joe".into(),
            age: 25,
        },
    )
    .unwrap();
    root.insert(
        "ann",
        &Person {
            name: "Ann".into(),
            age: 31,
        },
    )
    .unwrap();
    assert!(root.contains("joe").unwrap());
    assert!(!root.contains("a/b").unwrap());
    assert_eq!(root.names().unwrap(), vec!["ann", "joe"]);
    let entries = root.entries().unwrap();
    assert!(
        entries
            .iter()
            .all(|e| matches!(&e.kind, h5pom::EntryKind::Group { tag: Some(t) } if t == "Person"))
    );
    // Insert replaces.
    root.insert(
        "joe",
        &Person {
            name: "Joseph".into(),
            age: 26,
        },
    )
    .unwrap();
    assert_eq!(root.load::<Person>("joe").unwrap().name, "Joseph");
    root.remove("joe").unwrap();
    assert!(!root.contains("joe").unwrap());
    assert!(matches!(root.remove("joe"), Err(Error::NotFound { .. })));
    assert!(matches!(
        root.get::<Person>("joe"),
        Err(Error::NotFound { .. })
    ));
    for bad in ["", "a/b", "h5pom-x", "."] {
        assert!(matches!(
            root.insert(
                bad,
                &Person {
                    name: String::new(),
                    age: 0
                }
            ),
            Err(Error::InvalidName { .. })
        ));
    }
    root.set_attr("title", &"run 1".to_string()).unwrap();
    root.set_attr("steps", &100u64).unwrap();
    root.set_attr("started", &NaiveDate::from_ymd_opt(2026, 11, 26).unwrap())
        .unwrap();
    assert_eq!(
        root.attr::<String>("title").unwrap().as_deref(),
        Some("run 1")
    );
    assert_eq!(root.attr::<u64>("steps").unwrap(), Some(100));
    assert_eq!(
        root.attr::<NaiveDate>("started").unwrap(),
        NaiveDate::from_ymd_opt(2026, 11, 26)
    );
    assert!(matches!(
        root.attr::<bool>("title"),
        Err(Error::TypeMismatch { .. })
    ));
    let mut names = root.attr_names().unwrap();
    names.sort();
    assert_eq!(names, ["started", "started-type", "steps", "title"]);
    assert!(matches!(
        root.set_attr("x-type", &1i32),
        Err(Error::InvalidName { .. })
    ));
    // Plain sub-folders.
    let runs = root.create_folder("runs").unwrap();
    runs.insert(
        "p",
        &Person {
            name: "P".into(),
            age: 1,
        },
    )
    .unwrap();
    assert_eq!(
        root.folder("runs")
            .unwrap()
            .load::<Person>("p")
            .unwrap()
            .name,
        "P"
    );
}

#[derive(Object, Clone, Debug, PartialEq)]
#[h5pom(tag = "Person")]
struct PersonV2 {
    name: String,
    age: u32,
    #[h5pom(default)]
    email: String,
    nickname: Option<String>,
    #[h5pom(skip)]
    cache: Vec<u8>,
}

#[test]
fn tags_schema_and_evolution() {
    let f = File::in_memory(Schema::new().with::<Person>()).unwrap();
    f.root()
        .insert(
            "joe",
            &Person {
                name: "Joe".into(),
                age: 25,
            },
        )
        .unwrap();
    // A newer version of the type: new fields default, old ones load.
    let v2 = f.root().load::<PersonV2>("joe").unwrap();
    assert_eq!(v2.email, "");
    assert_eq!(v2.nickname, None);
    assert!(v2.cache.is_empty());
    // A wrong type is a typed error naming both tags.
    let err = f.root().get::<Node>("joe").unwrap_err();
    assert!(
        matches!(&err, Error::WrongTag { expected, found: Some(found), .. } if expected == "Node" && found == "Person"),
        "{err}"
    );
    // load_any: registered tag -> the Rust type; unknown -> generic object.
    let any = f.root().load_any("joe").unwrap();
    assert_eq!(any.tag(), Some("Person"));
    assert_eq!(any.downcast::<Person>().unwrap().age, 25);
    f.root()
        .insert(
            "n",
            &Node {
                label: "n".into(),
                next: None,
                friends: vec![],
            },
        )
        .unwrap();
    match f.root().load_any("n").unwrap() {
        AnyObject::Generic(g) => {
            assert_eq!(g.tag.as_deref(), Some("Node"));
            assert_eq!(g.attrs["label"], Value::Str("n".into()));
            assert_eq!(g.lists.get("friends").map(Vec::len), Some(0));
        }
        other => panic!("expected a generic object, got {other:?}"),
    }
    let err = Schema::new()
        .with::<Person>()
        .try_with::<PersonV2>()
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateTag { .. }), "{err}");
}

#[test]
fn live_sync_writes_only_changed_fields() {
    let f = File::in_memory(Schema::new().with::<Person>()).unwrap();
    let joe = f
        .root()
        .insert(
            "joe",
            &Person {
                name: "Joe".into(),
                age: 25,
            },
        )
        .unwrap();
    // Make `name` unreadable as a String: if update() rewrote it, it would become valid again.
    joe.as_folder().set_attr("name", &1i32).unwrap();
    let err = joe.update(|p| p.age = 23);
    assert!(err.is_err(), "load must fail while name is an int");
    joe.as_folder()
        .set_attr("name", &"Joe".to_string())
        .unwrap();
    joe.update(|p| p.age = 23).unwrap();
    assert_eq!(joe.age().unwrap(), 23);
    let old = joe.load().unwrap();
    joe.as_folder()
        .set_attr("name", &"Changed behind our back".to_string())
        .unwrap();
    let new = Person {
        age: 24,
        ..old.clone()
    };
    joe.save_changed(&old, &new).unwrap();
    // Only `age` was written: the name changed behind our back survives.
    assert_eq!(joe.name().unwrap(), "Changed behind our back");
    assert_eq!(joe.age().unwrap(), 24);
}

#[test]
fn copy_between_files_preserves_sharing() {
    let src = File::in_memory(Schema::new()).unwrap();
    let shared = node("shared");
    let a = node("a");
    a.write().friends = vec![shared.clone(), shared.clone()];
    src.root().insert_shared("a", &a).unwrap();

    // Byte-level deep copy (HDF5 object copy).
    let dst = File::in_memory(Schema::new()).unwrap();
    dst.root().copy_from(&src.root(), "a", "a_copy").unwrap();
    let g = dst.root().hdf5_group().clone();
    let t = |p: &str| g.group(p).unwrap().loc_info().unwrap().token;
    assert_eq!(t("a_copy/friends-0"), t("a_copy/friends-1"));
    let loaded = dst.root().load_shared::<Node>("a_copy").unwrap();
    assert!(Shared::ptr_eq(
        &loaded.read().friends[0],
        &loaded.read().friends[1]
    ));

    // Typed copy through Rust values, arrays included.
    #[derive(Object)]
    struct WithArray {
        data: LazyArray<u16, Ix1>,
        link: Shared<Node>,
    }
    src.root()
        .insert(
            "w",
            &WithArray {
                data: LazyArray::new(Array1::from_vec(vec![1, 2, 3])),
                link: shared.clone(),
            },
        )
        .unwrap();
    let w = src.root().load::<WithArray>("w").unwrap();
    let a2 = src.root().load_shared::<Node>("a").unwrap();
    let dst2 = File::in_memory(Schema::new()).unwrap();
    dst2.root().insert_shared("a", &a2).unwrap();
    dst2.root().insert("w", &w).unwrap();
    let g = dst2.root().hdf5_group().clone();
    let t = |p: &str| g.group(p).unwrap().loc_info().unwrap().token;
    assert_eq!(t("w/link"), t("a/friends-0"));
    let w2 = dst2.root().load::<WithArray>("w").unwrap();
    assert_eq!(w2.data.get().unwrap().to_vec(), vec![1, 2, 3]);
    a.write().friends.clear();
}

#[derive(Object)]
struct Compressed {
    #[h5pom(compression = "lz4")]
    fast: Array2<f32>,
    #[h5pom(compression = "deflate:3", chunk = "10,3")]
    small: Array2<f32>,
    plain: Array2<f32>,
}

#[test]
fn per_field_and_default_compression() {
    let f = File::in_memory(Schema::new()).unwrap();
    f.set_array_options(h5pom::ArrayOptions::with_filters("zstd:2".parse().unwrap()));
    let a = Array2::from_shape_fn((100, 3), |(i, j)| (i as f32).sin() + j as f32);
    let v = Compressed {
        fast: a.clone(),
        small: a.clone(),
        plain: a.clone(),
    };
    let h = f.root().insert("c", &v).unwrap();
    let g = h.as_folder().hdf5_group().clone();
    let filter_ids = |name: &str| -> Vec<i32> {
        g.dataset(name)
            .unwrap()
            .filters()
            .iter()
            .map(|f| f.id())
            .collect()
    };
    assert_eq!(filter_ids("fast"), vec![2, h5pom::pipeline::LZ4_FILTER_ID]);
    assert_eq!(filter_ids("small"), vec![2, 1]);
    assert_eq!(
        filter_ids("plain"),
        vec![2, h5pom::pipeline::ZSTD_FILTER_ID]
    );
    assert_eq!(g.dataset("small").unwrap().chunk(), Some(vec![10, 3]));
    let back = h.load().unwrap();
    assert_eq!(back.fast, a);
    assert_eq!(back.small, a);
    assert_eq!(back.plain, a);
    assert!("zstd:99".parse::<h5pom::Filters>().is_err());
    assert!("brotli".parse::<h5pom::Filters>().is_err());
}
