//! The targets shared by the cargo-fuzz binaries (`fuzz/fuzz_targets/*.rs`) and the bounded
//! stable-Rust run in `tests/hostile.rs` (which includes this file with `#[path]`).
//!
//! [`probe_path`] does everything a reader does with an untrusted file: open it read-only,
//! load the root generically, load every root entry by tag (typed or generic) and as the small
//! typed schema below (reading lazy arrays too), and load it as an ECS world. It must return,
//! never panic or crash, whatever the bytes.

use std::collections::BTreeMap;
use std::path::Path;

use bevy_ecs::prelude::*;
use h5pom::ecs::Registry;
use h5pom::reexports::chrono::NaiveDate;
use h5pom::reexports::ndarray::{Array1, Ix2};
use h5pom::{AnyObject, EntryKind, File, LazyArray, Object, Schema, Shared};

/// A small object type with one field of every kind.
#[derive(Object, Debug)]
pub struct Probe {
    pub name: String,
    pub n: u32,
    pub when: Option<NaiveDate>,
    pub xs: Array1<f64>,
    pub grid: LazyArray<i32, Ix2>,
    pub items: Vec<i64>,
    pub tags: BTreeMap<String, i32>,
    pub child: Option<Shared<Probe>>,
    pub kids: Vec<Shared<Probe>>,
}

/// A group-stored ECS component.
#[derive(Component, Object, Clone, Debug, PartialEq)]
pub struct Label {
    pub text: String,
    pub level: u8,
}

/// A table-stored ECS component with an entity reference.
#[derive(Component, Object, Clone, Debug, PartialEq)]
pub struct Pos {
    pub x: f64,
    pub y: f64,
    pub near: Option<Entity>,
}

/// An ECS resource.
#[derive(Resource, Object, Clone, Debug, PartialEq)]
pub struct Clock {
    pub step: u64,
}

/// The schema used to open untrusted files.
pub fn schema() -> Schema {
    Schema::new().with::<Probe>()
}

/// The ECS registry used to load untrusted files.
pub fn registry() -> Registry {
    Registry::new()
        .component::<Label>()
        .table::<Pos>()
        .resource::<Clock>()
        .hierarchy()
}

/// What happened to one input: how many operations succeeded, and the errors of the others.
#[derive(Debug, Default)]
pub struct Report {
    /// Operations that returned `Ok`.
    pub ok: usize,
    /// Display text of every `Err` returned.
    pub errors: Vec<String>,
}

impl Report {
    fn note<T, E: std::fmt::Display>(&mut self, r: Result<T, E>) -> Option<T> {
        match r {
            Ok(v) => {
                self.ok += 1;
                Some(v)
            }
            Err(e) => {
                self.errors.push(e.to_string());
                None
            }
        }
    }

    /// True if every operation succeeded.
    pub fn loaded(&self) -> bool {
        self.errors.is_empty()
    }
}

/// At most this many root entries are loaded (keeps a hostile file with many entries bounded).
const MAX_ENTRIES: usize = 32;

/// Opens `path` and loads everything in it, in every way a reader can.
pub fn probe_path(path: &Path) -> Report {
    let mut r = Report::default();
    if let Some(file) = r.note(File::open_read_only(path, schema())) {
        let root = file.root();
        r.note(root.load_generic_self());
        let entries = r.note(root.entries()).unwrap_or_default();
        for e in entries.iter().take(MAX_ENTRIES) {
            let EntryKind::Group { tag } = &e.kind else {
                continue;
            };
            if let Some(any) = r.note(root.load_any(&e.name))
                && let AnyObject::Typed { .. } = any
            {
                let _ = any.downcast::<Probe>();
            }
            // Typed loading of the groups tagged as `Probe` (their type mismatches are errors);
            // loading another type's group as `Probe` would be an expected `WrongTag`.
            if tag.as_deref() == Some("Probe")
                && let Some(p) = r.note(root.load::<Probe>(&e.name))
            {
                r.note(p.grid.get().map(|a| a.len()));
            }
            r.note(root.load_generic(&e.name));
        }
    }
    let mut world = World::new();
    r.note(registry().load(&mut world, path));
    r
}

/// Writes `data` to a temporary file and probes it (the `load_file` fuzz target).
pub fn load_bytes(data: &[u8]) -> Report {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("fuzz.h5");
    std::fs::write(&path, data).expect("write temp file");
    probe_path(&path)
}

/// The validators and parsers of names, keys and array options (the `names` fuzz target).
/// Checks their contracts: a valid key is a valid field name and object name (unless it is
/// reserved), and parsing never panics.
pub fn names(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let key = h5pom::is_valid_key(&s);
    assert_eq!(key, h5pom::validate_field_name(&s).is_ok(), "{s:?}");
    let object = h5pom::validate_object_name(&s).is_ok();
    if key && !s.starts_with(h5pom::RESERVED_PREFIX) {
        assert!(object, "valid key {s:?} is not a valid object name");
    }
    if object {
        assert!(!s.contains('/') && !s.contains('\0') && s.len() <= h5pom::MAX_NAME_LEN);
    }
    if let Ok(f) = s.parse::<h5pom::Filters>() {
        // A parsed spec prints back to something that parses to the same filters.
        let again: h5pom::Filters = f.to_string().parse().expect("round trip");
        assert_eq!(again, f, "{s:?}");
    }
}
