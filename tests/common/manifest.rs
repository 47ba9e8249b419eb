//! Expectation manifests for `tests/py/check_rust_file.py`: what h5py must find in a file
//! h5pom wrote, stated from in-memory values and the documented layout (README, "What maps to
//! what"), independently of the store's code. The script's docstring specifies the format.

use std::any::Any;
use std::collections::BTreeMap;
use std::path::Path;

use chrono::{NaiveDate, NaiveDateTime};
use h5pom::{Object, Shared};
use ndarray::{Array, Dimension};

use super::{Json, run_py};

pub(crate) trait ScalarSpec {
    fn spec(&self) -> Json;
}

pub(crate) fn scalar(dtype: &str, value: Json) -> Json {
    Json::obj([
        ("kind", Json::str("scalar")),
        ("dtype", Json::str(dtype)),
        ("value", value),
    ])
}

macro_rules! int_spec {
    ($($t:ty => $dtype:literal),*) => {$(
        impl ScalarSpec for $t {
            fn spec(&self) -> Json {
                scalar($dtype, Json::int(*self))
            }
        }
    )*};
}
int_spec!(i8 => "int8", i16 => "int16", i32 => "int32", i64 => "int64",
          u8 => "uint8", u16 => "uint16", u32 => "uint32", u64 => "uint64");

impl ScalarSpec for f32 {
    fn spec(&self) -> Json {
        Json::obj([
            ("kind", Json::str("scalar")),
            ("dtype", Json::str("float32")),
            ("bits", Json::int(self.to_bits())),
        ])
    }
}

impl ScalarSpec for f64 {
    fn spec(&self) -> Json {
        Json::obj([
            ("kind", Json::str("scalar")),
            ("dtype", Json::str("float64")),
            ("bits", Json::int(self.to_bits())),
        ])
    }
}

impl ScalarSpec for bool {
    fn spec(&self) -> Json {
        scalar("bool", Json::Bool(*self))
    }
}

impl ScalarSpec for String {
    fn spec(&self) -> Json {
        scalar("str", Json::str(self.as_str()))
    }
}

impl ScalarSpec for NaiveDate {
    fn spec(&self) -> Json {
        use chrono::Datelike;
        Json::obj([
            ("kind", Json::str("date")),
            (
                "value",
                Json::ints([
                    i64::from(self.year()),
                    self.month().into(),
                    self.day().into(),
                ]),
            ),
        ])
    }
}

impl ScalarSpec for NaiveDateTime {
    fn spec(&self) -> Json {
        use chrono::{Datelike, Timelike};
        let v: [i64; 7] = [
            self.year().into(),
            self.month().into(),
            self.day().into(),
            self.hour().into(),
            self.minute().into(),
            self.second().into(),
            (self.nanosecond() / 1000).into(),
        ];
        Json::obj([("kind", Json::str("datetime")), ("value", Json::ints(v))])
    }
}

impl<T: ScalarSpec> ScalarSpec for Option<T> {
    fn spec(&self) -> Json {
        match self {
            Some(v) => v.spec(),
            None => Json::obj([("kind", Json::str("none"))]),
        }
    }
}

pub(crate) fn list_spec<S: ScalarSpec>(items: &[S]) -> Json {
    Json::obj([
        ("kind", Json::str("list")),
        (
            "items",
            Json::Arr(items.iter().map(ScalarSpec::spec).collect()),
        ),
    ])
}

pub(crate) fn dict_spec<S: ScalarSpec>(items: &BTreeMap<String, S>) -> Json {
    Json::obj([
        ("kind", Json::str("dict")),
        (
            "items",
            Json::Obj(items.iter().map(|(k, v)| (k.clone(), v.spec())).collect()),
        ),
    ])
}

pub(crate) trait ElemSpec: Copy {
    const DTYPE: &'static str;
    fn json(self) -> Json;
}

macro_rules! elem_spec {
    ($($t:ty => $dtype:literal, |$x:ident| $json:expr);* $(;)?) => {$(
        impl ElemSpec for $t {
            const DTYPE: &'static str = $dtype;
            fn json(self) -> Json {
                let $x = self;
                $json
            }
        }
    )*};
}
elem_spec! {
    i8 => "int8", |x| Json::int(x); i16 => "int16", |x| Json::int(x);
    i32 => "int32", |x| Json::int(x); i64 => "int64", |x| Json::int(x);
    u8 => "uint8", |x| Json::int(x); u16 => "uint16", |x| Json::int(x);
    u32 => "uint32", |x| Json::int(x); u64 => "uint64", |x| Json::int(x);
    f32 => "float32", |x| Json::int(x.to_bits()); f64 => "float64", |x| Json::int(x.to_bits());
}

/// A dataset holding `a` (values in logical C order, whatever `a`'s memory layout).
pub(crate) fn array_spec<T: ElemSpec, D: Dimension>(a: &Array<T, D>) -> Json {
    Json::obj([
        ("kind", Json::str("dataset")),
        ("dtype", Json::str(T::DTYPE)),
        ("shape", Json::ints(a.shape().iter().map(|&n| n as u64))),
        ("values", Json::Arr(a.iter().map(|&x| x.json()).collect())),
    ])
}

/// A group's expected attributes and links.
pub(crate) struct GroupSpec {
    tag: Option<&'static str>,
    attrs: Vec<(String, Json)>,
    links: Vec<(String, Json)>,
}

impl GroupSpec {
    pub(crate) fn new(tag: Option<&'static str>) -> Self {
        GroupSpec {
            tag,
            attrs: Vec::new(),
            links: Vec::new(),
        }
    }
    pub(crate) fn object<O: Object>() -> Self {
        Self::new(Some(O::TYPE_TAG))
    }
    pub(crate) fn attr(mut self, name: &str, spec: Json) -> Self {
        self.attrs.push((name.to_owned(), spec));
        self
    }
    pub(crate) fn scalar(self, name: &str, v: &impl ScalarSpec) -> Self {
        self.attr(name, v.spec())
    }
    pub(crate) fn link(mut self, name: &str, spec: Json) -> Self {
        self.links.push((name.to_owned(), spec));
        self
    }
    pub(crate) fn build(self) -> Json {
        Json::obj([
            ("kind", Json::str("object")),
            ("tag", self.tag.map_or(Json::Null, Json::str)),
            ("attrs", Json::Obj(self.attrs)),
            ("links", Json::Obj(self.links)),
        ])
    }
}

pub(crate) fn join(parent: &str, name: &str) -> String {
    format!("{}/{name}", parent.trim_end_matches('/'))
}

/// Builds the manifest, deciding which occurrence of a shared object is its group and which are
/// hard links: the first one met in manifest order owns the group.
/// (Compares with `Shared::ptr_eq`, without locking: a cycle is walked while its first object is
/// still read-locked.)
#[derive(Default)]
pub(crate) struct Manifest {
    seen: Vec<(Box<dyn Any>, String)>,
}

pub(crate) trait ObjectSpec: Object {
    fn spec(&self, m: &mut Manifest, path: &str) -> Json;
}

impl Manifest {
    pub(crate) fn shared<O: ObjectSpec>(&mut self, s: &Shared<O>, path: &str) -> Json {
        let first = self.seen.iter().find(|(seen, _)| {
            seen.downcast_ref::<Shared<O>>()
                .is_some_and(|seen| Shared::ptr_eq(seen, s))
        });
        if let Some((_, first)) = first {
            return Json::obj([
                ("kind", Json::str("object")),
                ("same_as", Json::str(first.as_str())),
            ]);
        }
        self.seen.push((Box::new(s.clone()), path.to_owned()));
        s.read().spec(self, path)
    }

    pub(crate) fn opt_shared<O: ObjectSpec>(&mut self, s: &Option<Shared<O>>, path: &str) -> Json {
        match s {
            Some(s) => self.shared(s, path),
            None => Json::obj([("kind", Json::str("absent"))]),
        }
    }

    pub(crate) fn object_list<O: ObjectSpec>(
        &mut self,
        items: &[Shared<O>],
        path: &str,
        name: &str,
    ) -> Json {
        let items = items
            .iter()
            .enumerate()
            .map(|(i, s)| self.shared(s, &join(path, &format!("{name}-{i}"))))
            .collect();
        Json::obj([
            ("kind", Json::str("object_list")),
            ("items", Json::Arr(items)),
        ])
    }

    pub(crate) fn object_dict<O: ObjectSpec>(
        &mut self,
        items: &BTreeMap<String, Shared<O>>,
        path: &str,
        name: &str,
    ) -> Json {
        let items = items
            .iter()
            .map(|(k, s)| {
                (
                    k.clone(),
                    self.shared(s, &join(path, &format!("{name}-{k}"))),
                )
            })
            .collect();
        Json::obj([
            ("kind", Json::str("object_dict")),
            ("items", Json::Obj(items)),
        ])
    }
}

pub(crate) fn check_with_h5py(file: &Path, manifest: &Json) -> String {
    let manifest_path = file.with_extension("expected.json");
    std::fs::write(&manifest_path, manifest.to_string()).expect("write manifest");
    let out = run_py("check_rust_file.py", [file, &manifest_path]);
    let summary = out.stdout.trim().to_owned();
    assert!(
        summary.starts_with("checked "),
        "unexpected checker output: {summary}"
    );
    summary
}

/// The number in "checked N values …".
pub(crate) fn checked_count(summary: &str) -> usize {
    summary
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {summary:?}"))
}
