//! Hostile and mismatched input: a corpus generated here (no binary files are committed) of
//! random bytes, truncated and bit-flipped h5pom files, right layouts with wrong dtypes and
//! ranks, missing and extra attributes, absurd dimensions, dangling and cyclic links, deep
//! nesting, odd names and broken ECS layouts. Every open and load must return a typed error
//! (or, for valid-but-odd input, a correct value): never panic, never crash the process.
//!
//! Cases that could crash libhdf5 itself (random bytes, truncations, bit flips, absurd
//! dimensions, deep nesting) run in a child process: this test binary re-executed with
//! `H5POM_HOSTILE_CHILD=<file>`, so a signal death is reported as a finding instead of killing
//! the whole test run. The others run in-process, each under `catch_unwind`.

#![expect(
    clippy::redundant_pattern_matching,
    reason = "expect!(…, Err(_)) reads better next to the specific patterns"
)]

#[path = "../fuzz/common/targets.rs"]
#[allow(dead_code, unreachable_pub, missing_docs)]
mod targets;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bevy_ecs::hierarchy::ChildOf;
use bevy_ecs::prelude::*;
use h5pom::ecs::{EcsError, Persist};
use h5pom::{Error, File, LazyArray, Shared};
use hdf5::types::{VarLenAscii, VarLenUnicode};
use ndarray::{Array0, Array1, Array2};
use targets::{Clock, Label, Pos, Probe, probe_path, registry, schema};

/// Set in a child process: the path of the file to probe.
const CHILD_ENV: &str = "H5POM_HOSTILE_CHILD";
/// Printed by the child before its verdict.
const CHILD_MARK: &str = "HOSTILE-CHILD";
/// A child that runs longer than this is killed and reported as hanging.
const CHILD_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Deterministic randomness.

/// xorshift64*: tiny, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The valid file every mutation starts from.

fn probe(name: &str) -> Probe {
    Probe {
        name: name.into(),
        n: 3,
        when: chrono::NaiveDate::from_ymd_opt(2024, 2, 29),
        xs: Array1::from(vec![1.0, 2.5, -3.0]),
        grid: LazyArray::new(Array2::from_shape_fn((2, 3), |(i, j)| (i * 3 + j) as i32)),
        items: vec![10, -20, 30],
        tags: [("alpha".to_string(), 1), ("beta".to_string(), 2)].into(),
        child: None,
        kids: Vec::new(),
    }
}

/// An ECS world (group component, table component with an entity reference, resource,
/// hierarchy) snapshotted to `path`, plus the object `/p` with a shared child and a list.
fn write_base(path: &Path) {
    let mut world = World::new();
    let a = world
        .spawn((
            Persist,
            Label {
                text: "a".into(),
                level: 1,
            },
            Pos {
                x: 1.0,
                y: 2.0,
                near: None,
            },
        ))
        .id();
    world.spawn((
        Persist,
        Pos {
            x: 3.0,
            y: 4.0,
            near: Some(a),
        },
        ChildOf(a),
    ));
    world.insert_resource(Clock { step: 7 });
    registry().snapshot(&mut world, path).unwrap();

    let f = File::open(path, schema()).unwrap();
    let leaf = Shared::new(probe("leaf"));
    let mut p = probe("p");
    p.child = Some(leaf.clone());
    p.kids = vec![leaf, Shared::new(probe("kid"))];
    f.root().insert("p", &p).unwrap();
    f.close().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Expectations.

type Check = Box<dyn Fn(&Path) -> Result<(), String>>;

fn typed(path: &Path) -> h5pom::Result<Probe> {
    File::open_read_only(path, schema())?
        .root()
        .load::<Probe>("p")
}

fn ecs(path: &Path) -> h5pom::ecs::Result<h5pom::ecs::LoadReport> {
    registry().load(&mut World::new(), path)
}

/// Shows a result without printing a (possibly cyclic) loaded value.
fn show<T, E: std::fmt::Debug>(r: &Result<T, E>) -> String {
    match r {
        Ok(_) => "Ok(..)".into(),
        Err(e) => format!("Err({e:?})"),
    }
}

macro_rules! expect {
    (typed, $pat:pat) => {
        Some(Box::new(|p: &Path| {
            let r = typed(p);
            if matches!(r, $pat) {
                Ok(())
            } else {
                Err(format!("typed load of /p: {}", show(&r)))
            }
        }) as Check)
    };
    (ecs, $pat:pat) => {
        Some(Box::new(|p: &Path| {
            let r = ecs(p);
            if matches!(r, $pat) {
                Ok(())
            } else {
                Err(format!("ECS load: {}", show(&r)))
            }
        }) as Check)
    };
    (open, $pat:pat) => {
        Some(Box::new(|p: &Path| {
            let r = File::open_read_only(p, schema());
            if matches!(r, $pat) {
                Ok(())
            } else {
                Err(format!("open: {}", show(&r)))
            }
        }) as Check)
    };
}

// ---------------------------------------------------------------------------------------------
// Mutations of the base file, with the hdf5 crate directly.

type Mutation = Box<dyn Fn(&hdf5::File) -> hdf5::Result<()>>;

fn set<T: hdf5::H5Type>(loc: &hdf5::Group, name: &str, v: T) -> hdf5::Result<()> {
    if loc.attr(name).is_ok() {
        loc.delete_attr(name)?;
    }
    loc.new_attr::<T>().create(name)?.write_scalar(&v)
}

fn set_str(loc: &hdf5::Group, name: &str, s: &str) -> hdf5::Result<()> {
    set(loc, name, s.parse::<VarLenUnicode>().unwrap())
}

fn set_array<T: hdf5::H5Type + Copy>(loc: &hdf5::Group, name: &str, v: &[T]) -> hdf5::Result<()> {
    if loc.attr(name).is_ok() {
        loc.delete_attr(name)?;
    }
    loc.new_attr_builder().with_data(v).create(name).map(|_| ())
}

fn replace_ds<T: hdf5::H5Type>(
    g: &hdf5::Group,
    name: &str,
    data: ndarray::ArrayViewD<'_, T>,
) -> hdf5::Result<()> {
    if g.link_exists(name) {
        g.unlink(name)?;
    }
    g.new_dataset_builder()
        .with_data(&data)
        .create(name)
        .map(|_| ())
}

fn unlink(g: &hdf5::Group, name: &str) -> hdf5::Result<()> {
    if g.link_exists(name) {
        g.unlink(name)?;
    }
    Ok(())
}

/// A chunked, resizable dataset of `shape` with nothing written (it reads as fill values).
fn declared<T: hdf5::H5Type>(
    g: &hdf5::Group,
    name: &str,
    shape: &[usize],
    chunk: &[usize],
) -> hdf5::Result<()> {
    unlink(g, name)?;
    g.new_dataset::<T>()
        .shape(hdf5::SimpleExtents::resizable(shape.iter().copied()))
        .chunk(chunk)
        .create(name)
        .map(|_| ())
}

/// Links and attributes whose names are not UTF-8 (HDF5 stores names as bytes).
fn non_utf8_names(g: &hdf5::Group) -> hdf5::Result<()> {
    use hdf5_sys::{h5a, h5l, h5p::H5P_DEFAULT, h5s, h5t};
    let link = c"bad\xff\xfename";
    let attr = c"attr\xc3\x28";
    hdf5::sync::sync(|| {
        // SAFETY: `g` is a live group id, the names are NUL-terminated, H5P_DEFAULT is valid;
        // return codes are checked and the created ids closed.
        unsafe {
            let r = h5l::H5Lcreate_hard(
                g.id(),
                c"p".as_ptr(),
                g.id(),
                link.as_ptr(),
                H5P_DEFAULT,
                H5P_DEFAULT,
            );
            assert!(r >= 0, "H5Lcreate_hard");
            let space = h5s::H5Screate(h5s::H5S_SCALAR);
            let a = h5a::H5Acreate2(
                g.id(),
                attr.as_ptr(),
                *h5t::H5T_NATIVE_INT,
                space,
                H5P_DEFAULT,
                H5P_DEFAULT,
            );
            assert!(a >= 0, "H5Acreate2");
            let v: i32 = 7;
            assert!(h5a::H5Awrite(a, *h5t::H5T_NATIVE_INT, (&v as *const i32).cast()) >= 0);
            h5a::H5Aclose(a);
            h5s::H5Sclose(space);
        }
    });
    Ok(())
}

/// `depth` nested untagged groups `/deep/g/g/…`.
fn nest_folders(f: &hdf5::File, depth: usize) -> hdf5::Result<()> {
    let mut g = f.create_group("deep")?;
    for _ in 0..depth {
        g = g.create_group("g")?;
    }
    Ok(())
}

/// `depth` nested complete `Probe` objects `/p/child/child/…`.
fn nest_objects(f: &hdf5::File, depth: usize) -> hdf5::Result<()> {
    let p = f.group("p")?;
    unlink(&p, "child")?;
    let mut g = p;
    for i in 0..depth {
        g = g.create_group("child")?;
        set_str(&g, "loader-key", "Probe")?;
        set_str(&g, "name", &format!("level {i}"))?;
        set(&g, "n", i as u32)?;
        g.new_dataset::<f64>().shape([0]).create("xs")?;
        g.new_dataset::<i32>().shape([0, 0]).create("grid")?;
    }
    Ok(())
}

fn table(f: &hdf5::File, tag: &str) -> hdf5::Result<hdf5::Group> {
    f.group(&format!("ecs/tables/{tag}"))
}

// ---------------------------------------------------------------------------------------------
// The corpus.

enum Run {
    /// In this process, under `catch_unwind`.
    InProcess,
    /// In a child process (libhdf5 may crash on it).
    Child,
}

struct Case {
    name: String,
    file: PathBuf,
    run: Run,
    check: Option<Check>,
}

/// Structured cases: (name, runs in a child?, mutation, expectation).
fn structured() -> Vec<(&'static str, bool, Mutation, Option<Check>)> {
    use Error as E;
    let m = |f: fn(&hdf5::File) -> hdf5::Result<()>| -> Mutation { Box::new(f) };
    vec![
        // Wrong dtypes and ranks of attributes.
        (
            "attr: n is a string",
            false,
            m(|f| set_str(&f.group("p")?, "n", "12")),
            expect!(typed, Err(E::TypeMismatch { .. })),
        ),
        (
            "attr: n is a float",
            false,
            m(|f| set(&f.group("p")?, "n", 1.5f64)),
            expect!(typed, Err(E::TypeMismatch { .. })),
        ),
        (
            "attr: n is negative",
            false,
            m(|f| set(&f.group("p")?, "n", -5i64)),
            expect!(typed, Err(E::OutOfRange { .. })),
        ),
        (
            "attr: n is 2^40",
            false,
            m(|f| set(&f.group("p")?, "n", 1u64 << 40)),
            expect!(typed, Err(E::OutOfRange { .. })),
        ),
        (
            "attr: n is a 1-d array",
            false,
            m(|f| set_array(&f.group("p")?, "n", &[1i32, 2, 3])),
            expect!(typed, Err(E::TypeMismatch { .. })),
        ),
        (
            "attr: n is a 2-d array",
            false,
            m(|f| {
                let p = f.group("p")?;
                p.delete_attr("n")?;
                p.new_attr_builder()
                    .with_data(&Array2::<i32>::zeros((2, 2)))
                    .create("n")
                    .map(|_| ())
            }),
            expect!(typed, Err(E::TypeMismatch { .. })),
        ),
        (
            "attr: name is an int",
            false,
            m(|f| set(&f.group("p")?, "name", 5i32)),
            expect!(typed, Err(E::TypeMismatch { .. })),
        ),
        (
            "attr: name is fixed ASCII (valid, odd)",
            false,
            m(|f| {
                set(
                    &f.group("p")?,
                    "name",
                    hdf5::types::FixedAscii::<8>::from_ascii(b"fixed").unwrap(),
                )
            }),
            expect!(typed, Ok(Probe { .. })),
        ),
        (
            "attr: name is var-len ASCII (valid, odd)",
            false,
            m(|f| {
                set(
                    &f.group("p")?,
                    "name",
                    VarLenAscii::from_ascii("ascii").unwrap(),
                )
            }),
            expect!(typed, Ok(Probe { .. })),
        ),
        // Wrong dtypes and ranks of datasets.
        (
            "dataset: xs is int32",
            false,
            m(|f| {
                replace_ds(
                    &f.group("p")?,
                    "xs",
                    Array1::from(vec![1i32, 2]).into_dyn().view(),
                )
            }),
            expect!(typed, Err(E::TypeMismatch { .. })),
        ),
        (
            "dataset: xs has rank 2",
            false,
            m(|f| {
                replace_ds(
                    &f.group("p")?,
                    "xs",
                    Array2::<f64>::zeros((2, 2)).into_dyn().view(),
                )
            }),
            expect!(typed, Err(E::TypeMismatch { .. })),
        ),
        (
            "dataset: xs has rank 0",
            false,
            m(|f| {
                replace_ds(
                    &f.group("p")?,
                    "xs",
                    Array0::from_elem((), 1.0f64).into_dyn().view(),
                )
            }),
            expect!(typed, Err(E::TypeMismatch { .. })),
        ),
        (
            "dataset: xs is a group",
            false,
            m(|f| {
                let p = f.group("p")?;
                unlink(&p, "xs")?;
                p.create_group("xs").map(|_| ())
            }),
            expect!(typed, Err(E::TypeMismatch { .. })),
        ),
        (
            "dataset: xs holds strings",
            false,
            m(|f| {
                let s: Vec<VarLenUnicode> = vec!["a".parse().unwrap()];
                replace_ds(&f.group("p")?, "xs", Array1::from(s).into_dyn().view())
            }),
            expect!(typed, Err(E::TypeMismatch { .. })),
        ),
        (
            "dataset: lazy grid is float64",
            false,
            m(|f| {
                replace_ds(
                    &f.group("p")?,
                    "grid",
                    Array2::<f64>::zeros((2, 2)).into_dyn().view(),
                )
            }),
            expect!(typed, Err(E::TypeMismatch { .. })),
        ),
        (
            "dataset: xs is an attribute instead",
            false,
            m(|f| {
                let p = f.group("p")?;
                p.unlink("xs")?;
                set(&p, "xs", 1.0f64)
            }),
            expect!(typed, Err(E::MissingField { .. })),
        ),
        // Missing and extra attributes.
        (
            "missing: attribute n",
            false,
            m(|f| f.group("p")?.delete_attr("n")),
            expect!(typed, Err(E::MissingField { .. })),
        ),
        (
            "missing: dataset xs",
            false,
            m(|f| f.group("p")?.unlink("xs")),
            expect!(typed, Err(E::MissingField { .. })),
        ),
        (
            "missing: loader-key",
            false,
            m(|f| f.group("p")?.delete_attr("loader-key")),
            expect!(typed, Err(E::WrongTag { found: None, .. })),
        ),
        (
            "extra: attributes, datasets, groups (valid, odd)",
            false,
            m(|f| {
                let p = f.group("p")?;
                set(&p, "unknown", 1i8)?;
                set_str(&p, "zz-type", "date")?;
                set(&p, "other-count", 3i64)?;
                p.create_group("stray")?;
                replace_ds(&p, "extra", Array1::from(vec![1u16]).into_dyn().view())
            }),
            expect!(typed, Ok(Probe { .. })),
        ),
        // Type tags.
        (
            "tag: loader-key is an int",
            false,
            m(|f| set(&f.group("p")?, "loader-key", 3i32)),
            expect!(typed, Err(E::Corrupt { .. })),
        ),
        (
            "tag: loader-key is a string array",
            false,
            m(|f| {
                let p = f.group("p")?;
                p.delete_attr("loader-key")?;
                let v: Vec<VarLenUnicode> = vec!["Probe".parse().unwrap()];
                p.new_attr_builder()
                    .with_data(&v)
                    .create("loader-key")
                    .map(|_| ())
            }),
            expect!(typed, Err(E::Corrupt { .. })),
        ),
        (
            "tag: loader-key is another type",
            false,
            m(|f| set_str(&f.group("p")?, "loader-key", "Nope")),
            expect!(typed, Err(E::WrongTag { .. })),
        ),
        (
            "tag: loader-key is empty",
            false,
            m(|f| set_str(&f.group("p")?, "loader-key", "")),
            expect!(typed, Err(E::WrongTag { .. })),
        ),
        (
            "tag: loader-key marked None",
            false,
            m(|f| set_str(&f.group("p")?, "loader-key-type", "None")),
            expect!(typed, Err(E::Corrupt { .. })),
        ),
        // Lists and markers.
        (
            "list: count 2^40",
            false,
            m(|f| set(&f.group("p")?, "items-count", 1i64 << 40)),
            expect!(typed, Err(E::Corrupt { .. })),
        ),
        (
            "list: count -1",
            false,
            m(|f| set(&f.group("p")?, "items-count", -1i64)),
            expect!(typed, Err(E::Corrupt { .. })),
        ),
        (
            "list: count u64::MAX",
            false,
            m(|f| set(&f.group("p")?, "items-count", u64::MAX)),
            expect!(typed, Err(E::Corrupt { .. })),
        ),
        (
            "list: count is a string",
            false,
            m(|f| set_str(&f.group("p")?, "items-count", "3")),
            expect!(typed, Err(E::Corrupt { .. })),
        ),
        (
            "list: count is a float",
            false,
            m(|f| set(&f.group("p")?, "items-count", 3.0f64)),
            expect!(typed, Err(E::Corrupt { .. })),
        ),
        (
            "list: count 5 with 3 items",
            false,
            m(|f| set(&f.group("p")?, "items-count", 5i64)),
            expect!(typed, Err(E::Corrupt { .. })),
        ),
        (
            "list: object item missing",
            false,
            m(|f| f.group("p")?.unlink("kids-1")),
            expect!(typed, Err(E::Corrupt { .. })),
        ),
        (
            "list: object item is a dataset",
            false,
            m(|f| {
                let p = f.group("p")?;
                p.unlink("kids-0")?;
                replace_ds(&p, "kids-0", Array1::from(vec![1u8]).into_dyn().view())
            }),
            expect!(typed, Err(E::TypeMismatch { .. })),
        ),
        (
            "marker: unknown type marker",
            false,
            m(|f| set_str(&f.group("p")?, "n-type", "bogus")),
            expect!(typed, Err(E::Corrupt { .. })),
        ),
        (
            "marker: type marker is an int",
            false,
            m(|f| set(&f.group("p")?, "n-type", 1i32)),
            expect!(typed, Err(E::Corrupt { .. })),
        ),
        (
            "date: month 13",
            false,
            m(|f| set_array(&f.group("p")?, "when", &[2020i64, 13, 40])),
            expect!(typed, Err(E::Corrupt { .. })),
        ),
        (
            "date: 2 components",
            false,
            m(|f| set_array(&f.group("p")?, "when", &[2020i64, 1])),
            expect!(typed, Err(E::Corrupt { .. })),
        ),
        (
            "date: i64::MAX year",
            false,
            m(|f| set_array(&f.group("p")?, "when", &[i64::MAX, 1, 1])),
            expect!(typed, Err(E::Corrupt { .. })),
        ),
        (
            "date: marked datetime with huge parts",
            false,
            m(|f| {
                let p = f.group("p")?;
                set_array(&p, "when", &[i64::MIN; 7])?;
                set_str(&p, "when-type", "datetime")
            }),
            expect!(typed, Err(E::Corrupt { .. })),
        ),
        (
            "dict: odd keys are ignored (valid, odd)",
            false,
            m(|f| {
                let p = f.group("p")?;
                set(&p, "tags-é", 1i32)?;
                set(&p, "tags-", 1i32)?;
                set(&p, "tags-a-b", 1i32)
            }),
            expect!(typed, Ok(Probe { .. })),
        ),
        (
            "dict: value of the wrong type",
            false,
            m(|f| set_str(&f.group("p")?, "tags-alpha", "x")),
            expect!(typed, Err(E::TypeMismatch { .. })),
        ),
        // Format version.
        (
            "format: version 99",
            false,
            m(|f| set(f, "h5pom-format-version", 99u32)),
            expect!(open, Err(E::UnsupportedFormat { found: 99, .. })),
        ),
        (
            "format: version is a string",
            false,
            m(|f| set_str(f, "h5pom-format-version", "1")),
            expect!(open, Err(E::Corrupt { .. })),
        ),
        (
            "format: version is negative",
            false,
            m(|f| set(f, "h5pom-format-version", -1i64)),
            expect!(open, Err(E::Corrupt { .. })),
        ),
        // Dangling and cyclic links.
        (
            "link: soft link to nowhere",
            false,
            m(|f| {
                let p = f.group("p")?;
                p.unlink("child")?;
                p.link_soft("/nowhere/at/all", "child")
            }),
            expect!(typed, Err(E::TypeMismatch { .. })),
        ),
        (
            "link: external link to a missing file",
            false,
            m(|f| {
                let p = f.group("p")?;
                p.unlink("child")?;
                p.link_external("/nonexistent/h5pom-missing.h5", "/p", "child")
            }),
            expect!(typed, Err(E::TypeMismatch { .. })),
        ),
        (
            "link: soft-link loop",
            false,
            m(|f| {
                let p = f.group("p")?;
                p.unlink("child")?;
                p.link_soft("/p/loop", "child")?;
                p.link_soft("/p/child", "loop")
            }),
            expect!(typed, Err(E::TypeMismatch { .. })),
        ),
        (
            "link: soft link to itself",
            false,
            m(|f| {
                let p = f.group("p")?;
                p.unlink("child")?;
                p.link_soft("/p/child", "child")
            }),
            expect!(typed, Err(E::TypeMismatch { .. })),
        ),
        (
            "link: hard-link cycle child -> p (valid, odd)",
            false,
            m(|f| {
                let p = f.group("p")?;
                p.unlink("child")?;
                p.link_hard("/p", "child")
            }),
            expect!(typed, Ok(Probe { child: Some(_), .. })),
        ),
        (
            "link: list item is its own parent (valid, odd)",
            false,
            m(|f| {
                let p = f.group("p")?;
                p.unlink("kids-0")?;
                p.link_hard("/p", "kids-0")
            }),
            expect!(typed, Ok(Probe { .. })),
        ),
        (
            "link: root linked inside itself (valid, odd)",
            false,
            m(|f| f.link_hard("/", "loop")),
            expect!(typed, Ok(Probe { .. })),
        ),
        (
            "link: child is a hard link to a dataset",
            false,
            m(|f| {
                let p = f.group("p")?;
                p.unlink("child")?;
                p.link_hard("/p/xs", "child")
            }),
            expect!(typed, Err(E::TypeMismatch { .. })),
        ),
        // Names.
        (
            "names: odd but legal names (valid, odd)",
            false,
            m(|f| {
                for name in ["\n\t", "   ", "ü🙂", "a\u{7f}b", "-count", "p-0", "x-type"] {
                    f.create_group(name)?;
                    set(&f.group(name)?, "-type", 1i8)?;
                }
                Ok(())
            }),
            expect!(typed, Ok(Probe { .. })),
        ),
        (
            "names: a 5000-byte name",
            false,
            m(|f| f.create_group(&"x".repeat(5000)).map(|_| ())),
            expect!(typed, Ok(Probe { .. })),
        ),
        (
            "names: not UTF-8",
            false,
            m(|f| non_utf8_names(f)),
            expect!(typed, Ok(Probe { .. })),
        ),
        // Absurd dimensions (risky: a naive reader allocates what the file declares).
        (
            "dims: xs declared with 2^40 elements",
            true,
            m(|f| declared::<f64>(&f.group("p")?, "xs", &[1 << 40], &[1 << 16])),
            expect!(typed, Err(_)),
        ),
        (
            "dims: grid declared 2^40 x 2^23",
            true,
            m(|f| declared::<i32>(&f.group("p")?, "grid", &[1 << 40, 1 << 23], &[1024, 1024])),
            None,
        ),
        (
            "dims: grid declared 2^31 x 2^31, chunk 1",
            true,
            m(|f| declared::<i32>(&f.group("p")?, "grid", &[1 << 31, 1 << 31], &[1, 1])),
            None,
        ),
        (
            "dims: ECS index declared with 2^40 ids",
            true,
            m(|f| {
                let e = f.group("ecs")?;
                declared::<u64>(&e, "index", &[1 << 40], &[1 << 16])
            }),
            expect!(ecs, Err(_)),
        ),
        (
            "dims: ECS entity column declared with 2^40 rows",
            true,
            m(|f| declared::<u64>(&table(f, "Pos")?, "entity", &[1 << 40], &[1 << 16])),
            expect!(ecs, Err(EcsError::Table { .. })),
        ),
        (
            // Above the row bound, yet small enough (4 GiB) that an allocation would succeed.
            "dims: ECS entity column declared with 2^29 rows",
            true,
            m(|f| declared::<u64>(&table(f, "Pos")?, "entity", &[1 << 29], &[1 << 16])),
            expect!(ecs, Err(EcsError::Table { .. })),
        ),
        (
            "dims: ECS index declared with 2^29 ids",
            true,
            m(|f| declared::<u64>(&f.group("ecs")?, "index", &[1 << 29], &[1 << 16])),
            expect!(ecs, Err(EcsError::NotEcsFile { .. })),
        ),
        (
            "dims: ECS mask declared with 2^40 rows",
            true,
            m(|f| declared::<u8>(&table(f, "Pos")?, "near-none", &[1 << 40], &[1 << 16])),
            expect!(ecs, Err(EcsError::Table { .. })),
        ),
        // Deep nesting (risky: recursion).
        (
            "nesting: 1000 nested folders",
            true,
            m(|f| nest_folders(f, 1000)),
            expect!(typed, Ok(Probe { .. })),
        ),
        (
            "nesting: 1000 nested objects",
            true,
            m(|f| nest_objects(f, 1000)),
            expect!(typed, Err(E::Corrupt { .. })),
        ),
        (
            "nesting: 120 nested folders (valid, odd)",
            true,
            m(|f| nest_folders(f, 120)),
            expect!(typed, Ok(Probe { .. })),
        ),
        (
            "nesting: 60 nested objects (valid, odd)",
            true,
            m(|f| nest_objects(f, 60)),
            expect!(typed, Ok(Probe { .. })),
        ),
        // ECS layout.
        (
            "ecs: layout-version 99",
            false,
            m(|f| set(&f.group("ecs")?, "layout-version", 99u64)),
            expect!(ecs, Err(EcsError::NotEcsFile { .. })),
        ),
        (
            "ecs: layout-version is a string",
            false,
            m(|f| set_str(&f.group("ecs")?, "layout-version", "1")),
            expect!(ecs, Err(EcsError::NotEcsFile { .. })),
        ),
        (
            "ecs: no layout-version",
            false,
            m(|f| f.group("ecs")?.delete_attr("layout-version")),
            expect!(ecs, Err(EcsError::NotEcsFile { .. })),
        ),
        (
            "ecs: /ecs is a dataset",
            false,
            m(|f| {
                f.unlink("ecs")?;
                replace_ds(f, "ecs", Array1::from(vec![1u8]).into_dyn().view())
            }),
            expect!(ecs, Err(EcsError::NotEcsFile { .. })),
        ),
        (
            "ecs: table columns of different lengths",
            false,
            m(|f| {
                replace_ds(
                    &table(f, "Pos")?,
                    "x",
                    Array1::from(vec![1.0f64]).into_dyn().view(),
                )
            }),
            expect!(ecs, Err(EcsError::Table { .. })),
        ),
        (
            // A `[row, n]` column is one of fixed-size arrays: refused for an `f64` field.
            "ecs: table column of rank 2",
            false,
            m(|f| {
                replace_ds(
                    &table(f, "Pos")?,
                    "y",
                    Array2::<f64>::zeros((2, 2)).into_dyn().view(),
                )
            }),
            expect!(ecs, Err(EcsError::Component { .. })),
        ),
        (
            "ecs: table column of rank 3",
            false,
            m(|f| {
                replace_ds(
                    &table(f, "Pos")?,
                    "y",
                    ndarray::Array3::<f64>::zeros((2, 2, 2)).into_dyn().view(),
                )
            }),
            expect!(ecs, Err(EcsError::Table { .. })),
        ),
        (
            "ecs: table column of strings for a float",
            false,
            m(|f| {
                let s: Vec<VarLenUnicode> = vec!["a".parse().unwrap(), "b".parse().unwrap()];
                replace_ds(&table(f, "Pos")?, "x", Array1::from(s).into_dyn().view())
            }),
            expect!(ecs, Err(EcsError::Component { .. })),
        ),
        (
            "ecs: table without entity column",
            false,
            m(|f| table(f, "Pos")?.unlink("entity")),
            expect!(ecs, Err(EcsError::Table { .. })),
        ),
        (
            "ecs: table with duplicate entity ids (valid, odd)",
            false,
            m(|f| {
                replace_ds(
                    &table(f, "Pos")?,
                    "entity",
                    Array1::from(vec![1u64, 1]).into_dyn().view(),
                )
            }),
            None,
        ),
        (
            "ecs: table mask of the wrong length",
            false,
            m(|f| {
                replace_ds(
                    &table(f, "Pos")?,
                    "near-none",
                    Array1::from(vec![1u8]).into_dyn().view(),
                )
            }),
            expect!(ecs, Err(EcsError::Table { .. })),
        ),
        (
            "ecs: entity column of floats",
            false,
            m(|f| {
                replace_ds(
                    &table(f, "Pos")?,
                    "entity",
                    Array1::from(vec![1.5f64, 2.0]).into_dyn().view(),
                )
            }),
            expect!(ecs, Err(EcsError::Table { .. })),
        ),
        (
            "ecs: entity column of signed ints",
            false,
            m(|f| {
                replace_ds(
                    &table(f, "Pos")?,
                    "entity",
                    Array1::from(vec![-1i64, 2]).into_dyn().view(),
                )
            }),
            expect!(ecs, Err(EcsError::Table { .. })),
        ),
        (
            "ecs: entity column of rank 2",
            false,
            m(|f| {
                replace_ds(
                    &table(f, "Pos")?,
                    "entity",
                    Array2::<u64>::ones((1, 2)).into_dyn().view(),
                )
            }),
            expect!(ecs, Err(EcsError::Table { .. })),
        ),
        (
            "ecs: entity column of rank 0",
            false,
            m(|f| {
                let t = table(f, "Pos")?;
                unlink(&t, "entity")?;
                t.new_dataset::<u64>().create("entity").map(|_| ())
            }),
            expect!(ecs, Err(EcsError::Table { .. })),
        ),
        (
            "ecs: entity column of u16 (valid, odd)",
            false,
            m(|f| {
                replace_ds(
                    &table(f, "Pos")?,
                    "entity",
                    Array1::from(vec![1u16, 2]).into_dyn().view(),
                )
            }),
            expect!(ecs, Ok(_)),
        ),
        (
            "ecs: index of floats",
            false,
            m(|f| {
                replace_ds(
                    &f.group("ecs")?,
                    "index",
                    Array1::from(vec![1.0f64, 2.0]).into_dyn().view(),
                )
            }),
            expect!(ecs, Err(EcsError::NotEcsFile { .. })),
        ),
        (
            "ecs: index of rank 2",
            false,
            m(|f| {
                replace_ds(
                    &f.group("ecs")?,
                    "index",
                    Array2::<u64>::ones((2, 2)).into_dyn().view(),
                )
            }),
            expect!(ecs, Err(EcsError::NotEcsFile { .. })),
        ),
        (
            "ecs: index of strings",
            false,
            m(|f| {
                let s: Vec<VarLenUnicode> = vec!["1".parse().unwrap()];
                replace_ds(&f.group("ecs")?, "index", Array1::from(s).into_dyn().view())
            }),
            expect!(ecs, Err(EcsError::NotEcsFile { .. })),
        ),
        (
            "ecs: index holds id 0",
            false,
            m(|f| {
                replace_ds(
                    &f.group("ecs")?,
                    "index",
                    Array1::from(vec![0u64, 1, 2]).into_dyn().view(),
                )
            }),
            expect!(ecs, Err(EcsError::NotEcsFile { .. })),
        ),
        (
            "ecs: index holds u64::MAX",
            false,
            m(|f| {
                replace_ds(
                    &f.group("ecs")?,
                    "index",
                    Array1::from(vec![1u64, 2, u64::MAX]).into_dyn().view(),
                )
            }),
            None,
        ),
        (
            "ecs: next-id is u64::MAX",
            false,
            m(|f| set(&f.group("ecs")?, "next-id", u64::MAX)),
            None,
        ),
        (
            "ecs: tick is a string (valid, odd)",
            false,
            m(|f| set_str(&f.group("ecs")?, "tick", "x")),
            expect!(ecs, Ok(_)),
        ),
        (
            "ecs: entity group named abc",
            false,
            m(|f| f.group("ecs/entities/0")?.create_group("abc").map(|_| ())),
            expect!(ecs, Err(EcsError::NotEcsFile { .. })),
        ),
        (
            "ecs: entity group in the wrong shard",
            false,
            m(|f| {
                f.group("ecs/entities")?
                    .create_group("7")?
                    .create_group("1")
                    .map(|_| ())
            }),
            expect!(ecs, Err(EcsError::NotEcsFile { .. })),
        ),
        (
            "ecs: entity id u64::MAX",
            false,
            m(|f| {
                f.group("ecs/entities")?
                    .create_group(&format!("{:x}", u64::MAX / 1024))?
                    .create_group(&u64::MAX.to_string())
                    .map(|_| ())
            }),
            None,
        ),
        (
            "ecs: entity is a dataset",
            false,
            m(|f| {
                replace_ds(
                    &f.group("ecs/entities/0")?,
                    "5",
                    Array1::from(vec![1u8]).into_dyn().view(),
                )
            }),
            expect!(ecs, Err(EcsError::NotEcsFile { .. })),
        ),
        (
            "ecs: shard is a dataset",
            false,
            m(|f| {
                replace_ds(
                    &f.group("ecs/entities")?,
                    "9",
                    Array1::from(vec![1u8]).into_dyn().view(),
                )
            }),
            expect!(ecs, Err(EcsError::NotEcsFile { .. })),
        ),
        (
            "ecs: component field of the wrong type",
            false,
            m(|f| set_str(&f.group("ecs/entities/0/1")?, "Label.level", "high")),
            expect!(ecs, Err(EcsError::Component { .. })),
        ),
        (
            "ecs: component field out of range",
            false,
            m(|f| set(&f.group("ecs/entities/0/1")?, "Label.level", 300i32)),
            expect!(ecs, Err(EcsError::Component { .. })),
        ),
        (
            "ecs: component field missing",
            false,
            m(|f| f.group("ecs/entities/0/1")?.delete_attr("Label.text")),
            expect!(ecs, Err(EcsError::Component { .. })),
        ),
        (
            "ecs: entity is its own parent",
            false,
            m(|f| {
                replace_ds(
                    &table(f, "ChildOf")?,
                    "parent",
                    Array1::from(vec![2u64]).into_dyn().view(),
                )
            }),
            None,
        ),
        (
            "ecs: parent not in the file",
            false,
            m(|f| {
                replace_ds(
                    &table(f, "ChildOf")?,
                    "parent",
                    Array1::from(vec![99u64]).into_dyn().view(),
                )
            }),
            expect!(ecs, Err(EcsError::Table { .. })),
        ),
        (
            "ecs: parent column of floats",
            false,
            m(|f| {
                replace_ds(
                    &table(f, "ChildOf")?,
                    "parent",
                    Array1::from(vec![1.0f64]).into_dyn().view(),
                )
            }),
            expect!(ecs, Err(EcsError::Table { .. })),
        ),
        (
            "ecs: entity reference to an unknown id",
            false,
            m(|f| {
                let t = table(f, "Pos")?;
                unlink(&t, "near-none")?;
                replace_ds(&t, "near", Array1::from(vec![42u64, 43]).into_dyn().view())
            }),
            expect!(ecs, Err(EcsError::Component { .. })),
        ),
        (
            "ecs: resource field of the wrong type",
            false,
            m(|f| set_str(&f.group("ecs/resources/Clock")?, "step", "x")),
            expect!(ecs, Err(EcsError::Resource { .. })),
        ),
        (
            "ecs: resources is a dataset",
            false,
            m(|f| {
                let e = f.group("ecs")?;
                e.unlink("resources")?;
                replace_ds(&e, "resources", Array1::from(vec![1u8]).into_dyn().view())
            }),
            None,
        ),
    ]
}

/// Offsets of HDF5 metadata signatures in `bytes`.
fn signatures(bytes: &[u8]) -> Vec<(usize, &'static str)> {
    const SIGS: [&str; 14] = [
        "\u{89}HDF",
        "OHDR",
        "OCHK",
        "TREE",
        "HEAP",
        "SNOD",
        "GCOL",
        "BTHD",
        "BTLF",
        "FRHP",
        "FHDB",
        "FHIB",
        "FSHD",
        "FSSE",
    ];
    let mut out = Vec::new();
    for sig in SIGS {
        let sig_bytes: &[u8] = if sig.starts_with('\u{89}') {
            b"\x89HDF"
        } else {
            sig.as_bytes()
        };
        for (i, w) in bytes.windows(4).enumerate() {
            if w == sig_bytes {
                out.push((i, sig));
            }
        }
    }
    out.sort_unstable();
    out
}

fn corpus(dir: &Path) -> Vec<Case> {
    let base = dir.join("base.h5");
    write_base(&base);
    let good = std::fs::read(&base).unwrap();
    let mut cases = Vec::new();
    let mut n = 0;
    let mut file = |bytes: &[u8]| {
        n += 1;
        let p = dir.join(format!("case-{n}.h5"));
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let mut rng = Rng::new(0x5EED_4855);

    // The base file itself must load completely.
    cases.push(Case {
        name: "valid base file".into(),
        file: file(&good),
        run: Run::InProcess,
        check: Some(Box::new(|p: &Path| {
            let report = probe_path(p);
            if report.loaded() {
                Ok(())
            } else {
                Err(format!("{:?}", report.errors))
            }
        })),
    });
    // Random bytes, several sizes; some start with the HDF5 signature.
    for size in [0, 1, 7, 8, 100, 512, 2048, 8192, 65_536] {
        let bytes = rng.bytes(size);
        cases.push(Case {
            name: format!("random: {size} bytes"),
            file: file(&bytes),
            run: Run::Child,
            check: expect!(open, Err(_)),
        });
    }
    for size in [64, 1024, 4096] {
        let mut bytes = good[..8].to_vec();
        bytes.extend(rng.bytes(size));
        cases.push(Case {
            name: format!("random: HDF5 signature + {size} bytes"),
            file: file(&bytes),
            run: Run::Child,
            check: expect!(open, Err(_)),
        });
    }
    // Truncated at 20 offsets spread over the file (plus the very first bytes).
    let len = good.len();
    for i in 0..20 {
        let at = match i {
            0 => 4,
            1 => 48,
            _ => len * (i - 1) / 20,
        };
        cases.push(Case {
            name: format!("truncated at {at} of {len}"),
            file: file(&good[..at]),
            run: Run::Child,
            check: None,
        });
    }
    // Bit flips in metadata: around every signature, and anywhere in the first 4 KiB.
    let sigs = signatures(&good);
    for (k, &(at, sig)) in sigs.iter().enumerate() {
        for _ in 0..2 {
            let off = (at + 4 + rng.below(40)).min(len - 1);
            let bit = rng.below(8);
            let mut bytes = good.clone();
            bytes[off] ^= 1 << bit;
            cases.push(Case {
                name: format!("bit flip near {sig} #{k} at {off} bit {bit}"),
                file: file(&bytes),
                run: Run::Child,
                check: None,
            });
        }
    }
    for _ in 0..40 {
        let off = rng.below(len.min(4096));
        let mut bytes = good.clone();
        let byte = (rng.next() as u8).max(1);
        bytes[off] ^= byte;
        cases.push(Case {
            name: format!("byte xor {byte:#04x} at {off}"),
            file: file(&bytes),
            run: Run::Child,
            check: None,
        });
    }
    // Structured mutations.
    for (name, risky, mutate, check) in structured() {
        n += 1;
        let p = dir.join(format!("case-{n}.h5"));
        std::fs::copy(&base, &p).unwrap();
        {
            let f = hdf5::File::open_rw(&p).unwrap();
            if let Err(e) = mutate(&f) {
                panic!("setting up case {name:?}: {e}");
            }
        }
        cases.push(Case {
            name: name.into(),
            file: p,
            run: if risky { Run::Child } else { Run::InProcess },
            check,
        });
    }
    cases
}

// ---------------------------------------------------------------------------------------------
// Running cases.

#[derive(Debug, PartialEq)]
enum Outcome {
    /// Every operation returned Ok.
    Loaded,
    /// At least one operation returned a typed error, none panicked.
    Rejected,
    /// A panic (a bug in h5pom or a dependency).
    Panicked(String),
    /// The process died (libhdf5 crashed, or an abort).
    Crashed(String),
    /// The child did not finish in time.
    Hung,
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".into())
}

fn run_in_process(path: &Path) -> Outcome {
    match catch_unwind(AssertUnwindSafe(|| probe_path(path))) {
        Ok(r) if r.loaded() => Outcome::Loaded,
        Ok(_) => Outcome::Rejected,
        Err(p) => Outcome::Panicked(panic_text(p)),
    }
}

fn run_in_child(path: &Path) -> Outcome {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "hostile_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > CHILD_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Outcome::Hung;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let verdict = stdout
        .lines()
        .find_map(|l| l.split_once(CHILD_MARK).map(|(_, v)| v))
        .map(str::trim);
    match verdict {
        Some("loaded") if status.success() => Outcome::Loaded,
        Some("rejected") if status.success() => Outcome::Rejected,
        Some(v) if v.starts_with("panicked") => Outcome::Panicked(v.into()),
        _ => {
            use std::os::unix::process::ExitStatusExt;
            let tail: String = stderr
                .lines()
                .filter(|l| {
                    (l.contains("h5pom") && !l.contains(" at "))
                        || l.contains("overflow")
                        || l.contains("memory")
                })
                .take(12)
                .collect::<Vec<_>>()
                .join(" | ");
            Outcome::Crashed(format!(
                "status {:?}, signal {:?}: {tail}",
                status.code(),
                status.signal()
            ))
        }
    }
}

/// The child side: probe the file named by `H5POM_HOSTILE_CHILD`, print the verdict, exit.
/// Does nothing (passes) in a normal test run.
#[test]
fn hostile_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let verdict = match run_in_process(Path::new(&path)) {
        Outcome::Loaded => "loaded".to_string(),
        Outcome::Rejected => "rejected".to_string(),
        Outcome::Panicked(m) => format!("panicked: {m}"),
        other => format!("{other:?}"),
    };
    println!("\n{CHILD_MARK} {verdict}");
    std::process::exit(0);
}

#[test]
fn hostile_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let cases = corpus(dir.path());
    assert!(cases.len() >= 50, "{} cases", cases.len());
    let (mut rejected, mut loaded) = (0, 0);
    let mut failures = Vec::new();
    let start = Instant::now();
    for case in &cases {
        let outcome = match case.run {
            Run::InProcess => run_in_process(&case.file),
            Run::Child => run_in_child(&case.file),
        };
        match &outcome {
            Outcome::Loaded => loaded += 1,
            Outcome::Rejected => rejected += 1,
            bad => {
                // Do not repeat in this process what just crashed a child.
                failures.push(format!("{}: {bad:?}", case.name));
                continue;
            }
        }
        if let Some(check) = &case.check {
            match catch_unwind(AssertUnwindSafe(|| check(&case.file))) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(format!("{}: unexpected result: {e}", case.name)),
                Err(p) => failures.push(format!(
                    "{}: panicked in expectation: {}",
                    case.name,
                    panic_text(p)
                )),
            }
        }
    }
    println!(
        "{rejected} hostile cases rejected cleanly, {loaded} loaded, {} failed ({} cases, {:.1?}, HDF5 {:?})",
        failures.len(),
        cases.len(),
        start.elapsed(),
        hdf5::library_version(),
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// A bounded, libFuzzer-free run of the fuzz targets (the same functions `cargo fuzz` runs).

/// Time budget of the mutation run (each input is a fresh file opened by libhdf5).
const FUZZ_BUDGET: Duration = Duration::from_secs(8);

/// Mutates `seed` with a few random edits: bit flips, byte sets, truncation, copied ranges.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len().max(1);
        match rng.below(5) {
            0 => {
                let i = rng.below(len.min(4096));
                if let Some(b) = v.get_mut(i) {
                    *b ^= 1 << rng.below(8);
                }
            }
            1 => {
                let i = rng.below(len);
                if let Some(b) = v.get_mut(i) {
                    *b = [0, 0xff, 0x7f, 0x80, 1][rng.below(5)];
                }
            }
            2 => v.truncate(rng.below(len)),
            3 => {
                let (from, to, n) = (rng.below(len), rng.below(len), rng.below(64));
                let chunk: Vec<u8> = v.iter().skip(from).take(n).copied().collect();
                for (k, b) in chunk.into_iter().enumerate() {
                    if let Some(d) = v.get_mut(to + k) {
                        *d = b;
                    }
                }
            }
            _ => {
                let i = rng.below(len.min(4096));
                if let Some(b) = v.get_mut(i) {
                    *b = b.wrapping_add(rng.below(16) as u8).wrapping_sub(8);
                }
            }
        }
    }
    v
}

/// A single input taking longer than this is a libhdf5 hang (see docs/SECURITY.md).
const INPUT_TIMEOUT: Duration = Duration::from_secs(3);

/// The child side of [`fuzz_bounded`]: mutates and loads until `budget` runs out. A watchdog
/// thread ends the process (exit code 3, input kept) when one input takes longer than
/// [`INPUT_TIMEOUT`].
fn fuzz_child(seed: u64, budget: Duration) -> ! {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.h5");
    write_base(&base);
    let good = std::fs::read(&base).unwrap();
    let mut rng = Rng::new(seed);
    let last = std::env::temp_dir().join(format!("h5pom-fuzz-{seed}.h5"));
    let start = Instant::now();
    // Milliseconds since `start` at which the current input began (0: between inputs).
    let began = Arc::new(AtomicU64::new(0));
    let watch = began.clone();
    // Inputs run and inputs loaded, reported by the watchdog too.
    let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let seen = counts.clone();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(50));
            let b = watch.load(Ordering::SeqCst);
            let now = start.elapsed().as_millis() as u64;
            // `saturating_sub`: the input may have begun just after `now` was taken.
            if b != 0 && now.saturating_sub(b) > INPUT_TIMEOUT.as_millis() as u64 {
                let [runs, loaded] = [0, 1].map(|i| seen[i].load(Ordering::SeqCst));
                println!("\n{CHILD_MARK} hang {runs} {loaded}");
                let _ = std::io::Write::flush(&mut std::io::stdout());
                // SAFETY: `_exit` ends the process at once. `exit` would run libhdf5's atexit
                // handler, which waits for the library lock the hung thread holds.
                unsafe { libc::_exit(3) };
            }
        }
    });
    let (mut runs, mut loaded) = (0u64, 0u64);
    while start.elapsed() < budget {
        let input = if runs % 8 == 7 {
            let n = rng.below(2048);
            rng.bytes(n)
        } else {
            mutate(&mut rng, &good)
        };
        // Written before each run: a crash or hang leaves the input behind for the parent.
        std::fs::write(&last, &input).unwrap();
        began.store(start.elapsed().as_millis() as u64 + 1, Ordering::SeqCst);
        if targets::load_bytes(&input).loaded() {
            loaded += 1;
        }
        began.store(0, Ordering::SeqCst);
        targets::names(&input[..input.len().min(64)]);
        runs += 1;
        counts[0].store(runs, Ordering::SeqCst);
        counts[1].store(loaded, Ordering::SeqCst);
    }
    let _ = std::fs::remove_file(&last);
    println!("\n{CHILD_MARK} fuzz {runs} {loaded}");
    std::process::exit(0);
}

/// The `load_file` and `names` targets over seeded mutations of a valid file (bit flips, byte
/// sets, truncations, copied ranges, random inputs), in child processes (so a libhdf5 crash
/// is reported, not fatal), for [`FUZZ_BUDGET`] in all. A panic or a signal death fails; a
/// libhdf5 hang (not h5pom's to fix) is printed as a finding with its input, and the run goes
/// on with the next seed.
#[test]
fn fuzz_bounded() {
    if let Some(v) = std::env::var_os(FUZZ_CHILD_ENV) {
        let v = v.to_string_lossy();
        let (seed, ms) = v.split_once(':').unwrap();
        fuzz_child(
            seed.parse().unwrap(),
            Duration::from_millis(ms.parse().unwrap()),
        );
    }
    let exe = std::env::current_exe().unwrap();
    let start = Instant::now();
    let (mut runs, mut loaded, mut hangs) = (0u64, 0u64, Vec::new());
    let mut seed = 0x0F0E_u64;
    let logs = tempfile::tempdir().unwrap();
    while start.elapsed() < FUZZ_BUDGET {
        let left = FUZZ_BUDGET
            .saturating_sub(start.elapsed())
            .max(Duration::from_millis(500));
        let kept = std::env::temp_dir().join(format!("h5pom-fuzz-{seed}.h5"));
        // Output goes to files (a pipe could fill up and block the child while it is polled).
        let (out_path, err_path) = (logs.path().join("out"), logs.path().join("err"));
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "fuzz_bounded",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(FUZZ_CHILD_ENV, format!("{seed}:{}", left.as_millis()))
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .unwrap();
        // The child's own watchdog reports a hung input; this deadline covers a child whose
        // watchdog could not run (the whole process stuck).
        let deadline = Instant::now() + left + CHILD_TIMEOUT;
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
        let line = stdout
            .lines()
            .find_map(|l| l.split_once(CHILD_MARK).map(|(_, v)| v.trim().to_owned()));
        let Some(status) = status else {
            let keep = std::env::temp_dir().join(format!("h5pom-fuzz-hang-{seed}.h5"));
            let _ = std::fs::rename(&kept, &keep);
            hangs.push(keep);
            seed += 1;
            continue;
        };
        match (status.code(), line.as_deref()) {
            (Some(0), Some(l)) if l.starts_with("fuzz ") => {
                let mut it = l.split(' ').skip(1).map(|n| n.parse::<u64>().unwrap());
                runs += it.next().unwrap();
                loaded += it.next().unwrap();
            }
            (Some(3), Some(l)) if l.starts_with("hang ") => {
                let mut it = l.split(' ').skip(1).map(|n| n.parse::<u64>().unwrap());
                runs += it.next().unwrap();
                loaded += it.next().unwrap();
                let keep = std::env::temp_dir().join(format!("h5pom-fuzz-hang-{seed}.h5"));
                let _ = std::fs::rename(&kept, &keep);
                hangs.push(keep);
            }
            _ => {
                let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
                let tail: Vec<&str> = stderr.lines().rev().take(12).collect();
                panic!(
                    "fuzz child failed ({status:?}); input kept in {kept:?}:\n{}",
                    tail.join("\n")
                );
            }
        }
        seed += 1;
    }
    println!(
        "fuzz: {runs} inputs, {loaded} loaded, {} libhdf5 hangs",
        hangs.len()
    );
    for h in &hangs {
        println!("FINDING: libhdf5 hung (> {INPUT_TIMEOUT:?}) on the input kept in {h:?}");
    }
}

/// Set in the fuzz child: the seed.
const FUZZ_CHILD_ENV: &str = "H5POM_FUZZ_CHILD";
