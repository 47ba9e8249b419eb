//! Interop tests: files written by h5pom must be readable without h5pom.
//!
//! - Rust writes every kind of field; h5py (tests/py/check_rust_file.py) checks every value,
//!   dtype and layout convention against a manifest the test writes next to the file.
//! - Python writes a file the way the original Python h5pom laid it out; Rust loads it.
//! - h5dump opens every kind of file written here, including one edited in place.
//! - Values of the wrong type written by Python surface as typed errors in Rust.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{NaiveDate, NaiveDateTime};
use common::manifest::{
    GroupSpec, Manifest, ObjectSpec, array_spec, check_with_h5py, checked_count, dict_spec, join,
    list_spec,
};
use common::{Json, run_h5dump, run_py, temp_dir};
use h5pom::{Error, File, LazyArray, Object, Schema, Shared};
use ndarray::{
    Array, Array0, Array1, Array2, Array3, Array4, ArrayD, Axis, Dimension, Ix1, Ix2, IxDyn,
};

// ---------------------------------------------------------------------------------------------
// The types of the Rust-written file.

#[derive(Object, Clone, Debug, PartialEq)]
struct Scalars {
    i8_min: i8,
    i8_max: i8,
    i16_min: i16,
    i16_max: i16,
    i32_min: i32,
    i32_max: i32,
    i64_min: i64,
    i64_max: i64,
    u8_zero: u8,
    u8_max: u8,
    u16_max: u16,
    u32_max: u32,
    u64_max: u64,
    f32_nan: f32,
    f32_inf: f32,
    f32_neg_inf: f32,
    f32_neg_zero: f32,
    f32_subnormal: f32,
    f32_max: f32,
    f64_nan_payload: f64,
    f64_inf: f64,
    f64_neg_inf: f64,
    f64_neg_zero: f64,
    f64_min_positive: f64,
    f64_pi: f64,
    yes: bool,
    no: bool,
    text: String,
    empty_text: String,
    opt_some: Option<i32>,
    opt_none: Option<i32>,
    opt_text_none: Option<String>,
    opt_day: Option<NaiveDate>,
    opt_moment_none: Option<NaiveDateTime>,
    day: NaiveDate,
    ancient_day: NaiveDate,
    moment: NaiveDateTime,
}

#[derive(Object)]
struct Arrays {
    r0_i8: Array0<i8>,
    r1_i16: Array1<i16>,
    r2_i32: Array2<i32>,
    r3_i64: Array3<i64>,
    r4_u8: Array4<u8>,
    r0_f64: Array0<f64>,
    r1_u16: Array1<u16>,
    r2_u32: Array2<u32>,
    r3_u64: Array3<u64>,
    r4_f32: Array4<f32>,
    r2_f64: Array2<f64>,
    empty_1d: Array1<i64>,
    empty_rows: Array2<f32>,
    empty_middle: Array3<u16>,
    transposed: Array2<f64>,
    reversed: Array2<i32>,
    dynamic: ArrayD<i16>,
    lazy: LazyArray<f32, Ix2>,
}

#[derive(Object, Clone, Debug, PartialEq)]
struct Leaf {
    value: i32,
    label: String,
}

#[derive(Object)]
struct Node {
    name: String,
    next: Option<Shared<Node>>,
}

#[derive(Object)]
struct Refs {
    first: Shared<Leaf>,
    again: Shared<Leaf>,
    maybe_leaf: Option<Shared<Leaf>>,
    no_leaf: Option<Shared<Leaf>>,
    leaves: Vec<Shared<Leaf>>,
    by_name: BTreeMap<String, Shared<Leaf>>,
    ring: Shared<Node>,
}

#[derive(Object, Clone, Debug, PartialEq)]
struct Families {
    ints: Vec<i16>,
    words: Vec<String>,
    maybes: Vec<Option<f64>>,
    days: Vec<NaiveDate>,
    stamps: Vec<NaiveDateTime>,
    empty: Vec<u8>,
    counts: BTreeMap<String, u8>,
    optional: BTreeMap<String, Option<i64>>,
    no_keys: BTreeMap<String, u32>,
}

fn schema() -> Schema {
    Schema::new()
        .with::<Scalars>()
        .with::<Arrays>()
        .with::<Leaf>()
        .with::<Node>()
        .with::<Refs>()
        .with::<Families>()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

fn datetime(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, us: u32) -> NaiveDateTime {
    date(y, mo, d)
        .and_hms_micro_opt(h, mi, s, us)
        .expect("valid time")
}

fn scalars() -> Scalars {
    Scalars {
        i8_min: i8::MIN,
        i8_max: i8::MAX,
        i16_min: i16::MIN,
        i16_max: i16::MAX,
        i32_min: i32::MIN,
        i32_max: i32::MAX,
        i64_min: i64::MIN,
        i64_max: i64::MAX,
        u8_zero: 0,
        u8_max: u8::MAX,
        u16_max: u16::MAX,
        u32_max: u32::MAX,
        u64_max: u64::MAX,
        f32_nan: f32::NAN,
        f32_inf: f32::INFINITY,
        f32_neg_inf: f32::NEG_INFINITY,
        f32_neg_zero: -0.0,
        f32_subnormal: f32::from_bits(1),
        f32_max: f32::MAX,
        f64_nan_payload: f64::from_bits(0x7ff8_0000_dead_beef),
        f64_inf: f64::INFINITY,
        f64_neg_inf: f64::NEG_INFINITY,
        f64_neg_zero: -0.0,
        f64_min_positive: f64::MIN_POSITIVE,
        f64_pi: std::f64::consts::PI,
        yes: true,
        no: false,
        text: "Grüße, 世界 🌍 \"quoted\" \\ tab\t".into(),
        empty_text: String::new(),
        opt_some: Some(-7),
        opt_none: None,
        opt_text_none: None,
        opt_day: Some(date(2013, 1, 31)),
        opt_moment_none: None,
        day: date(1999, 12, 31),
        ancient_day: date(-44, 3, 15),
        moment: datetime(2024, 2, 29, 23, 59, 58, 123_456),
    }
}

/// Deterministic array contents: element `i` (C order) of an array of `n`.
fn fill<T: Copy>(shape: &[usize], f: impl Fn(usize) -> T) -> ArrayD<T> {
    let n = shape.iter().product();
    ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(f).collect()).expect("shape matches")
}

fn fixed<T: Copy, D: Dimension>(shape: &[usize], f: impl Fn(usize) -> T) -> Array<T, D> {
    fill(shape, f).into_dimensionality().expect("rank matches")
}

fn arrays() -> Arrays {
    let specials_f32 = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        -0.0,
        f32::from_bits(1),
        f32::MAX,
        f32::MIN,
    ];
    let specials_f64 = [
        f64::from_bits(0x7ff8_0000_0000_0001),
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        f64::MIN_POSITIVE,
        f64::EPSILON,
    ];
    // A (3, 5) array seen as (5, 3): not in standard layout.
    let transposed = fixed::<f64, Ix2>(&[3, 5], |i| i as f64 * 0.25 - 1.0).reversed_axes();
    // Negative strides along the first axis: also not in standard layout.
    let mut reversed = fixed::<i32, Ix2>(&[4, 3], |i| i as i32 * 1000 - 5000);
    reversed.invert_axis(Axis(0));
    assert!(!transposed.is_standard_layout() && !reversed.is_standard_layout());
    Arrays {
        r0_i8: Array0::from_elem((), i8::MIN),
        r1_i16: Array1::from(vec![i16::MIN, -1, 0, 1, i16::MAX]),
        r2_i32: fixed(&[3, 4], |i| (i as i32 - 6) * 357_913_941),
        r3_i64: fixed(&[2, 3, 4], |i| match i {
            0 => i64::MIN,
            23 => i64::MAX,
            _ => (i as i64 - 12) * 1_000_000_000_007,
        }),
        r4_u8: fixed(&[2, 2, 3, 2], |i| (i * 11) as u8),
        r0_f64: Array0::from_elem((), f64::NAN),
        r1_u16: Array1::from(vec![0, 1, u16::MAX - 1, u16::MAX]),
        r2_u32: fixed(&[2, 3], |i| u32::MAX - i as u32 * 7),
        r3_u64: fixed(&[1, 2, 3], |i| u64::MAX - i as u64),
        r4_f32: fixed(&[1, 2, 2, 3], |i| {
            specials_f32.get(i).copied().unwrap_or(i as f32 / 3.0 - 2.0)
        }),
        r2_f64: fixed(&[2, 4], |i| {
            specials_f64
                .get(i)
                .copied()
                .unwrap_or(std::f64::consts::E * i as f64)
        }),
        empty_1d: Array1::from(Vec::<i64>::new()),
        empty_rows: Array2::zeros((0, 3)),
        empty_middle: Array3::zeros((2, 0, 4)),
        transposed,
        reversed,
        dynamic: fill(&[2, 1, 3], |i| i as i16 * -300),
        lazy: LazyArray::new(fixed(&[3, 2], |i| i as f32 + 0.5)),
    }
}

fn leaf(value: i32, label: &str) -> Shared<Leaf> {
    Shared::new(Leaf {
        value,
        label: label.into(),
    })
}

/// The shared objects of [`Refs`], kept so that the test can mirror edits and predict links.
struct RefsData {
    refs: Refs,
    first: Shared<Leaf>,
}

fn refs() -> RefsData {
    let first = leaf(1, "first");
    let second = leaf(2, "second ✓");
    let third = leaf(-3, "third");
    // A two-node cycle: a → b → a.
    let a = Shared::new(Node {
        name: "a".into(),
        next: None,
    });
    let b = Shared::new(Node {
        name: "b".into(),
        next: Some(a.clone()),
    });
    a.write().next = Some(b);
    let refs = Refs {
        first: first.clone(),
        again: first.clone(),
        maybe_leaf: Some(second.clone()),
        no_leaf: None,
        leaves: vec![second.clone(), third.clone(), first.clone(), third.clone()],
        by_name: BTreeMap::from([
            ("one".to_owned(), first.clone()),
            ("fresh".to_owned(), leaf(4, "only in the dict")),
        ]),
        ring: a,
    };
    RefsData { refs, first }
}

fn families() -> Families {
    Families {
        ints: vec![i16::MIN, -1, 0, 1, i16::MAX],
        words: vec![
            "α".into(),
            String::new(),
            "with space".into(),
            "日本".into(),
        ],
        maybes: vec![Some(1.5), None, Some(f64::NAN), Some(-0.0)],
        days: vec![date(2000, 1, 1), date(2038, 1, 19)],
        stamps: vec![datetime(1970, 1, 1, 0, 0, 0, 1)],
        empty: Vec::new(),
        counts: BTreeMap::from([
            ("a".to_owned(), 0),
            ("b_2".to_owned(), 255),
            ("Z".to_owned(), 7),
        ]),
        optional: BTreeMap::from([("x".to_owned(), None), ("y".to_owned(), Some(i64::MIN))]),
        no_keys: BTreeMap::new(),
    }
}

/// Everything the Rust-written file holds, in memory.
struct World {
    scalars: Scalars,
    arrays: Arrays,
    refs: RefsData,
    families: Families,
}

fn world() -> World {
    World {
        scalars: scalars(),
        arrays: arrays(),
        refs: refs(),
        families: families(),
    }
}

/// Writes `w` to a new file at `path`: four objects under the root, and the first shared leaf
/// once more at `/leaf` (a hard link, since it is already in the file).
fn write_world(path: &Path, w: &World) {
    let file = File::create(path, schema()).expect("create file");
    let root = file.root();
    root.insert("scalars", &w.scalars).expect("insert scalars");
    root.insert("arrays", &w.arrays).expect("insert arrays");
    root.insert("refs", &w.refs.refs).expect("insert refs");
    root.insert("families", &w.families)
        .expect("insert families");
    root.insert_shared("leaf", &w.refs.first)
        .expect("insert shared leaf");
    file.close().expect("close");
}

// ---------------------------------------------------------------------------------------------
// ---------------------------------------------------------------------------------------------
// The manifest of the Rust-written file (see tests/common/manifest.rs).

impl ObjectSpec for Leaf {
    fn spec(&self, _m: &mut Manifest, _path: &str) -> Json {
        GroupSpec::object::<Self>()
            .scalar("value", &self.value)
            .scalar("label", &self.label)
            .build()
    }
}

impl ObjectSpec for Node {
    fn spec(&self, m: &mut Manifest, path: &str) -> Json {
        GroupSpec::object::<Self>()
            .scalar("name", &self.name)
            .link("next", m.opt_shared(&self.next, &join(path, "next")))
            .build()
    }
}

impl ObjectSpec for Refs {
    fn spec(&self, m: &mut Manifest, path: &str) -> Json {
        GroupSpec::object::<Self>()
            .link("first", m.shared(&self.first, &join(path, "first")))
            .link("again", m.shared(&self.again, &join(path, "again")))
            .link(
                "maybe_leaf",
                m.opt_shared(&self.maybe_leaf, &join(path, "maybe_leaf")),
            )
            .link(
                "no_leaf",
                m.opt_shared(&self.no_leaf, &join(path, "no_leaf")),
            )
            .link("leaves", m.object_list(&self.leaves, path, "leaves"))
            .link("by_name", m.object_dict(&self.by_name, path, "by_name"))
            .link("ring", m.shared(&self.ring, &join(path, "ring")))
            .build()
    }
}

fn scalars_spec(s: &Scalars) -> Json {
    GroupSpec::object::<Scalars>()
        .scalar("i8_min", &s.i8_min)
        .scalar("i8_max", &s.i8_max)
        .scalar("i16_min", &s.i16_min)
        .scalar("i16_max", &s.i16_max)
        .scalar("i32_min", &s.i32_min)
        .scalar("i32_max", &s.i32_max)
        .scalar("i64_min", &s.i64_min)
        .scalar("i64_max", &s.i64_max)
        .scalar("u8_zero", &s.u8_zero)
        .scalar("u8_max", &s.u8_max)
        .scalar("u16_max", &s.u16_max)
        .scalar("u32_max", &s.u32_max)
        .scalar("u64_max", &s.u64_max)
        .scalar("f32_nan", &s.f32_nan)
        .scalar("f32_inf", &s.f32_inf)
        .scalar("f32_neg_inf", &s.f32_neg_inf)
        .scalar("f32_neg_zero", &s.f32_neg_zero)
        .scalar("f32_subnormal", &s.f32_subnormal)
        .scalar("f32_max", &s.f32_max)
        .scalar("f64_nan_payload", &s.f64_nan_payload)
        .scalar("f64_inf", &s.f64_inf)
        .scalar("f64_neg_inf", &s.f64_neg_inf)
        .scalar("f64_neg_zero", &s.f64_neg_zero)
        .scalar("f64_min_positive", &s.f64_min_positive)
        .scalar("f64_pi", &s.f64_pi)
        .scalar("yes", &s.yes)
        .scalar("no", &s.no)
        .scalar("text", &s.text)
        .scalar("empty_text", &s.empty_text)
        .scalar("opt_some", &s.opt_some)
        .scalar("opt_none", &s.opt_none)
        .scalar("opt_text_none", &s.opt_text_none)
        .scalar("opt_day", &s.opt_day)
        .scalar("opt_moment_none", &s.opt_moment_none)
        .scalar("day", &s.day)
        .scalar("ancient_day", &s.ancient_day)
        .scalar("moment", &s.moment)
        .build()
}

fn arrays_spec(a: &Arrays) -> Json {
    GroupSpec::object::<Arrays>()
        .link("r0_i8", array_spec(&a.r0_i8))
        .link("r1_i16", array_spec(&a.r1_i16))
        .link("r2_i32", array_spec(&a.r2_i32))
        .link("r3_i64", array_spec(&a.r3_i64))
        .link("r4_u8", array_spec(&a.r4_u8))
        .link("r0_f64", array_spec(&a.r0_f64))
        .link("r1_u16", array_spec(&a.r1_u16))
        .link("r2_u32", array_spec(&a.r2_u32))
        .link("r3_u64", array_spec(&a.r3_u64))
        .link("r4_f32", array_spec(&a.r4_f32))
        .link("r2_f64", array_spec(&a.r2_f64))
        .link("empty_1d", array_spec(&a.empty_1d))
        .link("empty_rows", array_spec(&a.empty_rows))
        .link("empty_middle", array_spec(&a.empty_middle))
        .link("transposed", array_spec(&a.transposed))
        .link("reversed", array_spec(&a.reversed))
        .link("dynamic", array_spec(&a.dynamic))
        .link(
            "lazy",
            array_spec(a.lazy.get().expect("in-memory lazy array")),
        )
        .build()
}

fn families_spec(f: &Families) -> Json {
    GroupSpec::object::<Families>()
        .attr("ints", list_spec(&f.ints))
        .attr("words", list_spec(&f.words))
        .attr("maybes", list_spec(&f.maybes))
        .attr("days", list_spec(&f.days))
        .attr("stamps", list_spec(&f.stamps))
        .attr("empty", list_spec(&f.empty))
        .attr("counts", dict_spec(&f.counts))
        .attr("optional", dict_spec(&f.optional))
        .attr("no_keys", dict_spec(&f.no_keys))
        .build()
}

/// The manifest of the file [`write_world`] writes.
fn world_manifest(w: &World) -> Json {
    let mut m = Manifest::default();
    let root = GroupSpec::new(None)
        .link("scalars", scalars_spec(&w.scalars))
        .link("arrays", arrays_spec(&w.arrays))
        .link("refs", w.refs.refs.spec(&mut m, "/refs"))
        .link("families", families_spec(&w.families))
        .link("leaf", m.shared(&w.refs.first, "/leaf"))
        .build();
    Json::obj([
        ("format_version", Json::int(h5pom::FORMAT_VERSION)),
        ("root", root),
    ])
}

/// Runs the h5py checker on `file` against `manifest`; returns its summary line.

// ---------------------------------------------------------------------------------------------
// 1. Rust writes, h5py reads.

#[test]
fn h5py_reads_every_kind_of_field_written_by_rust() {
    let dir = temp_dir();
    let path = dir.path().join("world.h5");
    let w = world();
    write_world(&path, &w);
    let summary = check_with_h5py(&path, &world_manifest(&w));
    // Guard against a manifest that silently checks nothing.
    assert!(checked_count(&summary) > 400, "{summary}");
}

#[test]
fn h5py_checker_detects_a_wrong_value() {
    // The checker must be able to fail: the same file against a manifest with one value off.
    let dir = temp_dir();
    let path = dir.path().join("world.h5");
    let w = world();
    write_world(&path, &w);
    let mut wrong = world();
    wrong.scalars.i16_max -= 1;
    let manifest_path = dir.path().join("wrong.json");
    std::fs::write(&manifest_path, world_manifest(&wrong).to_string()).expect("write manifest");
    let (status, out) = common::run(common::py_command(
        "check_rust_file.py",
        [&path, &manifest_path],
    ));
    let stderr = out.stderr;
    assert!(!status.success(), "checker accepted a wrong value");
    assert!(
        stderr.contains("/scalars@i16_max") && stderr.contains("32767"),
        "checker output does not name the mismatch:\n{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Python writes the original h5pom layout, Rust reads.

#[derive(Object, Clone, Debug, PartialEq)]
struct Pet {
    name: String,
    species: String,
}

#[derive(Object)]
struct Person {
    name: String,
    nickname: String,
    age: u32,
    height: f64,
    active: bool,
    legacy_flag: bool,
    middle_name: Option<String>,
    birthday: NaiveDate,
    registered: NaiveDateTime,
    scores: Vec<Option<f64>>,
    nicknames: Vec<String>,
    friends: Vec<Shared<Pet>>,
    favourite: Shared<Pet>,
    pets: BTreeMap<String, Shared<Pet>>,
    position: Array2<f64>,
    samples: LazyArray<i32, Ix1>,
    weights: Array2<f32>,
    empty: Array1<i16>,
}

fn legacy_schema() -> Schema {
    Schema::new().with::<Pet>().with::<Person>()
}

fn pet(name: &str, species: &str) -> Pet {
    Pet {
        name: name.into(),
        species: species.into(),
    }
}

fn write_legacy(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("legacy.h5");
    run_py("write_legacy_file.py", [&path]);
    path
}

#[test]
fn rust_reads_a_file_laid_out_by_the_original_python_h5pom() {
    let dir = temp_dir();
    let path = write_legacy(dir.path());
    let file = File::open_read_only(&path, legacy_schema()).expect("open legacy file");
    assert_eq!(file.format_version().expect("read version"), None);
    let root = file.root();

    let joe = root.load::<Person>("joe").expect("load joe");
    assert_eq!(joe.name, "Joe"); // fixed-length ASCII
    assert_eq!(joe.nickname, "Jöe"); // variable-length UTF-8
    assert_eq!(joe.age, 25);
    assert_eq!(joe.height.to_bits(), 1.82f64.to_bits());
    assert!(joe.active); // HDF5 enum
    assert!(joe.legacy_flag); // 0/1 integer
    assert_eq!(joe.middle_name, None); // 0 + fixed-length "None" marker
    assert_eq!(joe.birthday, date(1980, 5, 17));
    assert_eq!(joe.registered, datetime(2013, 1, 2, 3, 4, 5, 678_901));
    assert_eq!(joe.scores, vec![Some(1.5), None, Some(-2.25)]);
    assert_eq!(joe.nicknames, vec!["jo", "joey", "J"]);
    let friends: Vec<Pet> = joe.friends.iter().map(|p| p.read().clone()).collect();
    assert_eq!(friends, vec![pet("Rex", "dog"), pet("Tom", "cat")]);
    assert_eq!(*joe.favourite.read(), pet("Tom", "cat"));
    assert_eq!(
        joe.pets.keys().collect::<Vec<_>>(),
        vec!["kitty", "rex"],
        "dict keys come from the `pets-<key>` sub-groups"
    );
    assert_eq!(*joe.pets["kitty"].read(), pet("Kitty", "cat"));
    // Hard links load as one shared object.
    assert!(Shared::ptr_eq(&joe.favourite, &joe.friends[1]));
    assert!(Shared::ptr_eq(&joe.pets["rex"], &joe.friends[0]));
    assert!(!Shared::ptr_eq(&joe.pets["kitty"], &joe.friends[0]));
    let position = Array2::from_shape_fn((4, 3), |(i, j)| (i * 3 + j) as f64 * 0.5);
    assert_eq!(joe.position, position);
    assert_eq!(joe.samples.shape(), vec![10]);
    let samples: Vec<i32> = (0..10).map(|i| (i - 5) * 1000).collect();
    assert_eq!(joe.samples.get().expect("read samples").to_vec(), samples);
    let weights: Vec<f32> = (0..6).map(|i| -1.0 + 0.4 * i as f32).collect();
    let got: Vec<f32> = joe.weights.iter().copied().collect();
    assert_eq!(joe.weights.shape(), &[2, 3]);
    for (g, w) in got.iter().zip(&weights) {
        assert!((g - w).abs() < 1e-6, "weights {got:?} != {weights:?}");
    }
    assert_eq!(joe.empty.shape(), &[0]);

    // Sharing across objects: loaded while joe's objects are alive, mary's links resolve to them.
    let mary = root.load::<Person>("mary").expect("load mary");
    assert_eq!(
        (mary.name.as_str(), mary.age, mary.active, mary.legacy_flag),
        ("Mary", 31, false, false)
    );
    assert_eq!(mary.middle_name.as_deref(), Some("Ann"));
    assert_eq!(mary.registered, datetime(2013, 6, 30, 23, 59, 59, 0));
    assert!(mary.scores.is_empty() && mary.nicknames.is_empty() && mary.pets.is_empty());
    assert_eq!(mary.position, position * 4.0);
    assert!(Shared::ptr_eq(&mary.friends[0], &joe.friends[1]));
    assert!(Shared::ptr_eq(&mary.favourite, &joe.friends[0]));

    // A plain group (the original's Folder) and loading by tag.
    let cat = root
        .folder("shelter")
        .and_then(|f| f.load::<Pet>("cat"))
        .expect("load /shelter/cat");
    assert_eq!(cat, pet("Felix", "cat"));
    let any = root.load_any("joe").expect("load joe by tag");
    assert_eq!(any.tag(), Some("Person"));
    assert!(any.downcast::<Person>().is_ok());
    drop(file);

    // Reading did not stamp a version on the original's file.
    let root_attrs = hdf5::File::open(&path)
        .and_then(|f| f.attr_names())
        .expect("list root attributes");
    assert!(
        root_attrs.is_empty(),
        "read-only open modified the file: {root_attrs:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. h5dump opens every kind of file written here, including one edited in place.

/// Edits the file [`write_world`] wrote through handles (one field or list item at a time),
/// and mirrors each edit on `w` so that [`world_manifest`] describes the edited file.
fn edit_world(path: &Path, w: &mut World) {
    use h5pom::ListHandle;
    let file = File::open(path, schema()).expect("reopen for editing");
    let root = file.root();

    let s = root.get::<Scalars>("scalars").expect("scalars handle");
    s.set_opt_some(None::<i32>).expect("Some -> None");
    w.scalars.opt_some = None;
    s.set_opt_none(Some(42)).expect("None -> Some");
    w.scalars.opt_none = Some(42);
    s.set_opt_moment_none(Some(datetime(2001, 9, 9, 1, 46, 40, 999_999)))
        .expect("None -> datetime");
    w.scalars.opt_moment_none = Some(datetime(2001, 9, 9, 1, 46, 40, 999_999));
    s.set_text("edited ✓").expect("set text");
    w.scalars.text = "edited ✓".into();
    s.set_day(date(2000, 2, 29)).expect("set day");
    w.scalars.day = date(2000, 2, 29);
    s.set_f32_nan(f32::from_bits(0x7fc0_1234)).expect("set NaN");
    w.scalars.f32_nan = f32::from_bits(0x7fc0_1234);

    let f = root.get::<Families>("families").expect("families handle");
    let ints: ListHandle<i16> = f.list("ints").expect("ints");
    ints.push(&123).expect("push");
    ints.insert(0, &-5).expect("insert at 0");
    ints.remove(2).expect("remove");
    ints.set(1, &77).expect("set");
    let v = &mut w.families.ints;
    v.push(123);
    v.insert(0, -5);
    v.remove(2);
    v[1] = 77;
    // Items with `-type` markers move with their markers.
    let maybes: ListHandle<Option<f64>> = f.list("maybes").expect("maybes");
    maybes.insert(0, &None).expect("insert None at 0");
    maybes.remove(1).expect("remove");
    maybes.push(&Some(2.5)).expect("push");
    maybes.insert(3, &None).expect("insert None in the middle");
    let v = &mut w.families.maybes;
    v.insert(0, None);
    v.remove(1);
    v.push(Some(2.5));
    v.insert(3, None);
    let days: ListHandle<NaiveDate> = f.list("days").expect("days");
    days.remove(0).expect("remove first");
    days.push(&date(1900, 3, 1)).expect("push");
    w.families.days.remove(0);
    w.families.days.push(date(1900, 3, 1));
    let empty: ListHandle<u8> = f.list("empty").expect("empty");
    empty.push(&9).expect("push onto an empty list");
    w.families.empty.push(9);

    // Object lists: links are renamed, new objects get groups, known ones hard links.
    let r = root.get::<Refs>("refs").expect("refs handle");
    let first = r.first().expect("read refs.first");
    let leaves: ListHandle<Shared<Leaf>> = r.list("leaves").expect("leaves");
    let pushed = leaf(5, "pushed");
    leaves.push(&pushed).expect("push new");
    leaves.insert(0, &first).expect("insert known");
    leaves.remove(2).expect("remove");
    assert_eq!(leaves.len().expect("len"), 5);
    let v = &mut w.refs.refs.leaves;
    v.push(pushed);
    v.insert(0, w.refs.first.clone());
    v.remove(2);
    file.close().expect("close");
}

/// Edits the original's file through h5pom: a setter over a fixed-length-marked `None`, a list
/// item removed from under its fixed-length `-type` marker, an object inserted at the front of
/// a list whose items are hard-linked elsewhere.
fn edit_legacy(path: &Path) {
    use h5pom::ListHandle;
    let file = File::open(path, legacy_schema()).expect("open legacy read-write");
    let joe = file.root().get::<Person>("joe").expect("joe");
    joe.set_middle_name(Some("Q".to_owned()))
        .expect("set middle name");
    let scores: ListHandle<Option<f64>> = joe.list("scores").expect("scores");
    scores.remove(0).expect("remove score");
    let friends: ListHandle<Shared<Pet>> = joe.list("friends").expect("friends");
    friends
        .insert(0, &Shared::new(pet("Nemo", "fish")))
        .expect("insert friend");
    file.close().expect("close");
}

/// `h5dump <path>` succeeds and mentions every string of `expect`.
fn h5dump_shows(path: &Path, expect: &[&str]) {
    let out = run_h5dump(path, &[]);
    for e in expect {
        assert!(
            out.stdout.contains(e),
            "h5dump output of {} lacks {e:?}:\n{}",
            path.display(),
            out.stdout
        );
    }
}

#[test]
fn h5dump_opens_every_file_including_one_edited_in_place() {
    let dir = temp_dir();
    let path = dir.path().join("world.h5");
    let mut w = world();
    write_world(&path, &w);
    let fresh = [
        "GROUP \"/\"",
        "ATTRIBUTE \"h5pom-format-version\"",
        "GROUP \"scalars\"",
        "ATTRIBUTE \"loader-key\"",
        "\"Scalars\"",
        "ATTRIBUTE \"opt_none-type\"",
        "DATASET \"r4_f32\"",
        "DATASET \"empty_middle\"",
        "GROUP \"ring\"",
        // h5dump walks names in order: `/leaf` is the first name of the shared leaf it meets.
        "HARDLINK \"/leaf\"",
        "HARDLINK \"/refs/ring\"",
        "ATTRIBUTE \"leaves-count\"",
        "GROUP \"by_name-fresh\"",
        "ATTRIBUTE \"counts-b_2\"",
    ];
    h5dump_shows(&path, &fresh);

    edit_world(&path, &mut w);
    h5dump_shows(
        &path,
        &[
            // h5dump 1.10 prints non-ASCII bytes as (sign-extended) octal escapes.
            "(0): \"edited \\37777777742\\37777777634\\37777777623\"",
            "ATTRIBUTE \"maybes-4\"",
            "ATTRIBUTE \"maybes-3-type\"",
            "ATTRIBUTE \"empty-0\"",
            "GROUP \"leaves-4\"",
            "\"pushed\"",
        ],
    );
    // The families are contiguous again, every value and link as mirrored in memory.
    check_with_h5py(&path, &world_manifest(&w));
    // And h5pom reads back what was mirrored.
    let file = File::open_read_only(&path, schema()).expect("reopen");
    let families = file.root().load::<Families>("families").expect("load");
    let (got, want) = (&families, &w.families);
    assert_eq!(
        (&got.ints, &got.days, &got.empty, &got.words),
        (&want.ints, &want.days, &want.empty, &want.words)
    );
    // NaN != NaN: compare floats by bits, as h5pom's change detection does.
    assert!(
        h5pom::Field::same(&got.maybes, &want.maybes),
        "{:?} != {:?}",
        got.maybes,
        want.maybes
    );
    let refs = file.root().load::<Refs>("refs").expect("load refs");
    assert!(Shared::ptr_eq(&refs.leaves[0], &refs.first));
    assert_eq!(refs.leaves[4].read().label, "pushed");
    drop(file);

    let legacy = write_legacy(dir.path());
    h5dump_shows(
        &legacy,
        &[
            "GROUP \"joe\"",
            "HARDLINK \"/joe/favourite\"",
            "HARDLINK \"/joe/friends-0\"",
            "STRSIZE 6;",
            "DATASET \"position\"",
        ],
    );
    // The original's file edited in place by h5pom: still plain HDF5, and now stamped.
    edit_legacy(&legacy);
    h5dump_shows(
        &legacy,
        &[
            "ATTRIBUTE \"h5pom-format-version\"",
            "GROUP \"friends-2\"",
            "\"Nemo\"",
            "ATTRIBUTE \"middle_name\"",
        ],
    );
    let file = File::open_read_only(&legacy, legacy_schema()).expect("reopen legacy");
    assert_eq!(
        file.format_version().expect("version"),
        Some(h5pom::FORMAT_VERSION)
    );
    let joe = file.root().load::<Person>("joe").expect("load edited joe");
    let names: Vec<String> = joe.friends.iter().map(|p| p.read().name.clone()).collect();
    assert_eq!(names, ["Nemo", "Rex", "Tom"]);
    assert!(Shared::ptr_eq(&joe.favourite, &joe.friends[2]));
    assert!(Shared::ptr_eq(&joe.pets["rex"], &joe.friends[1]));
    assert_eq!(joe.middle_name.as_deref(), Some("Q"));
    assert_eq!(joe.scores, vec![None, Some(-2.25)]);
    drop(joe);
    drop(file);

    let mismatch = write_mismatch(dir.path());
    h5dump_shows(&mismatch, &["GROUP \"f64_for_f32\"", "H5T_IEEE_F64LE"]);
}

// ---------------------------------------------------------------------------------------------
// 4. Types that do not match across languages are typed errors naming the field.

#[derive(Object, Debug)]
struct Counter {
    count: u32,
}

#[derive(Object, Debug)]
struct Level {
    level: u8,
}

#[derive(Object, Debug)]
struct Samples {
    data: Array1<f32>,
}

#[derive(Object, Debug)]
#[h5pom(tag = "Samples", no_ext)]
struct LazySamples {
    data: LazyArray<f32, Ix1>,
}

fn write_mismatch(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("mismatch.h5");
    run_py("write_mismatch_file.py", [&path]);
    path
}

#[track_caller]
fn assert_mismatch<T: std::fmt::Debug>(r: h5pom::Result<T>, object: &str, field: &str) {
    match r {
        Err(Error::TypeMismatch { path, field: f, .. }) if path == object && f == field => {}
        other => panic!("expected TypeMismatch for {object} field {field}, got {other:?}"),
    }
}

#[track_caller]
fn assert_out_of_range<T: std::fmt::Debug>(
    r: h5pom::Result<T>,
    object: &str,
    field: &str,
    value: &str,
) {
    match r {
        Err(Error::OutOfRange {
            path,
            field: f,
            value: v,
            expected: "u8",
        }) if path == object && f == field && v == value => {}
        other => panic!("expected OutOfRange({value}) for {object} field {field}, got {other:?}"),
    }
}

#[test]
fn type_mismatches_across_languages_are_typed_errors() {
    let dir = temp_dir();
    let path = write_mismatch(dir.path());
    let file = File::open_read_only(&path, Schema::new()).expect("open");
    let root = file.root();

    // The well-typed twins load, so the failures below are the fields'.
    assert_eq!(root.load::<Counter>("good_counter").expect("good").count, 7);
    assert_eq!(root.load::<Level>("good_level").expect("good").level, 255);
    let good = root.load::<Samples>("good_samples").expect("good");
    assert_eq!(good.data.to_vec(), vec![0.0, 1.0, 2.0]);

    assert_mismatch(
        root.load::<Counter>("float_for_u32"),
        "/float_for_u32",
        "count",
    );
    let err = root
        .load::<Counter>("float_for_u32")
        .expect_err("float into u32");
    let msg = err.to_string();
    assert!(
        msg.contains("\"count\"") && msg.contains("float64"),
        "message should name the field and the stored type: {msg}"
    );
    let handle = root.get::<Counter>("float_for_u32").expect("handle");
    assert_mismatch(handle.count(), "/float_for_u32", "count");
    assert_mismatch(
        root.load::<Counter>("string_for_u32"),
        "/string_for_u32",
        "count",
    );

    assert_out_of_range(
        root.load::<Level>("too_big_for_u8"),
        "/too_big_for_u8",
        "level",
        "300",
    );
    assert_out_of_range(
        root.load::<Level>("negative_for_u8"),
        "/negative_for_u8",
        "level",
        "-1",
    );

    assert_mismatch(root.load::<Samples>("f64_for_f32"), "/f64_for_f32", "data");
    assert_mismatch(
        root.load::<LazySamples>("f64_for_f32"),
        "/f64_for_f32",
        "data",
    );
    let err = root
        .load::<Samples>("f64_for_f32")
        .expect_err("f64 into f32");
    assert!(
        err.to_string().contains("float64"),
        "message should name the stored dtype: {err}"
    );
    assert_mismatch(
        root.load::<Samples>("rank_2_for_1"),
        "/rank_2_for_1",
        "data",
    );
}

// ---------------------------------------------------------------------------------------------
// 5. A program that spawns a tool while a file is open must not leak the file into the tool.

#[test]
fn a_closed_file_is_readable_while_a_child_spawned_during_its_life_runs() {
    let dir = temp_dir();
    let path = dir.path().join("child.h5");
    let file = File::create(&path, schema()).expect("create");
    let l = leaf(11, "eleven");
    file.root().insert_shared("leaf", &l).expect("insert");
    // Spawned while the file is open, with no fd hygiene for this file: with libhdf5's
    // default `open(2)` the child would inherit the descriptor and its `flock`. Descriptors
    // of *other* files are kept out of the child: other test threads open files concurrently,
    // and one caught between libhdf5's `open(2)` and h5pom's close-on-exec marking would be
    // held by this 20 s child and make that test's h5dump or h5py fail.
    let ours: Vec<libc::c_int> = std::fs::read_dir("/proc/self/fd")
        .expect("list /proc/self/fd")
        .filter_map(|e| {
            let e = e.ok()?;
            let fd: libc::c_int = e.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            (target == path.canonicalize().ok()?).then_some(fd)
        })
        .collect();
    let mut cmd = std::process::Command::new("sleep");
    cmd.arg("20");
    common::spawn::no_inherited_fds_except(&mut cmd, ours);
    let mut child = cmd.spawn().expect("spawn sleep");
    file.close().expect("close");
    drop(l);
    let mut m = Manifest::default();
    let manifest = Json::obj([
        ("format_version", Json::int(h5pom::FORMAT_VERSION)),
        (
            "root",
            GroupSpec::new(None)
                .link("leaf", m.shared(&leaf(11, "eleven"), "/leaf"))
                .build(),
        ),
    ]);
    let manifest_path = dir.path().join("child.json");
    std::fs::write(&manifest_path, manifest.to_string()).expect("write manifest");
    let (status, out) = common::run(common::py_command(
        "check_rust_file.py",
        [&path, &manifest_path],
    ));
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        status.success(),
        "h5py could not read a closed h5pom file while a child process spawned during its \
         life was running:\n{}",
        out.stderr
    );
}

/// Fixed-size arrays read by h5py as numpy arrays: a `[f32; 3]` attribute of shape (3,) and a
/// `[row, 3]` table column; nested fields under dotted names; a unit enum as its name.
#[test]
fn h5py_reads_fixed_arrays_nested_fields_and_enums() {
    #[derive(h5pom::Field, Clone, Debug, PartialEq)]
    struct Pose {
        x: f64,
    }
    #[derive(h5pom::Field, Clone, Copy, Debug, PartialEq)]
    enum Mode {
        Idle,
        Running,
    }
    #[derive(Object, Clone, Debug, PartialEq)]
    struct R {
        pos: [f32; 3],
        pose: Pose,
        mode: Mode,
    }
    let dir = temp_dir();
    let path = dir.path().join("kinds.h5");
    {
        let file = File::create(&path, Schema::new()).expect("create");
        let r = R {
            pos: [1.5, -2.0, 3.25],
            pose: Pose { x: 4.0 },
            mode: Mode::Running,
        };
        assert_ne!(r.mode, Mode::Idle);
        file.root().insert("r", &r).expect("insert");
        let g = file.hdf5().create_group("t").expect("group");
        let mut t = h5pom::table::ColumnTable::new("id");
        let names = vec!["pos".to_owned()];
        for (k, base) in [(1u64, 0.0f32), (2, 10.0)] {
            let row = [base, base + 1.0, base + 2.0];
            t.push(k, &names, &[h5pom::Scalar::to_value(&row)])
                .expect("push");
        }
        t.write(&file, &g, "/t").expect("write table");
        file.close().expect("close");
    }
    let out = run_py("check_field_kinds.py", [&path]);
    assert!(out.stdout.contains("ok: 7 checks"), "{}", out.stdout);
}
