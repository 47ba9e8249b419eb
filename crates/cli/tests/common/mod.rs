//! Fixtures and helpers of the inspector tests: files written through h5pom-store's API, and
//! one laid out by hand as the original (Python) h5pom lays it out.

#![allow(
    dead_code,
    reason = "each test crate uses a different subset of the helpers"
)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};

use h5pom_store::reexports::chrono::NaiveDate;
use h5pom_store::reexports::hdf5::{self, types::FixedAscii};
use h5pom_store::reexports::ndarray::{Array1, Array2, arr2};
use h5pom_store::{File, Schema, Shared};

#[path = "../../../../tests/common/spawn.rs"]
pub(crate) mod spawn;

use spawn::no_inherited_fds;

/// Held while a test has an HDF5 file open and while it spawns `h5pom`.
///
/// HDF5 opens files without `O_CLOEXEC` and locks them with `flock`: a child spawned by one
/// test while another test has its file open inherits that descriptor and its lock, and the
/// other test's `h5pom` then fails with "unable to lock file". Children mark inherited
/// descriptors close-on-exec ([`no_inherited_fds`]); fixtures are also written, and children
/// spawned, one at a time, so that no child holds a descriptor even between fork and exec.
static FORK_LOCK: Mutex<()> = Mutex::new(());

pub(crate) fn fork_lock() -> MutexGuard<'static, ()> {
    FORK_LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A small object with an optional float.
#[derive(h5pom_derive::Object)]
#[h5pom(crate = "h5pom_store", no_ext)]
pub(crate) struct Probe {
    pub(crate) name: String,
    pub(crate) position: Option<f64>,
}

/// A node of a linked ring (a cycle through `next`).
#[derive(h5pom_derive::Object)]
#[h5pom(crate = "h5pom_store", no_ext)]
pub(crate) struct Node {
    pub(crate) label: String,
    pub(crate) next: Option<Shared<Node>>,
}

/// One of every kind of field.
#[derive(h5pom_derive::Object)]
#[h5pom(crate = "h5pom_store", no_ext, tag = "Sample")]
pub(crate) struct Sample {
    pub(crate) label: String,
    pub(crate) count: i32,
    pub(crate) zero: Option<i64>,
    pub(crate) missing: Option<i64>,
    pub(crate) born: NaiveDate,
    pub(crate) seen: h5pom_store::reexports::chrono::NaiveDateTime,
    pub(crate) ratio: f32,
    pub(crate) nan: f64,
    pub(crate) tags: Vec<String>,
    pub(crate) scores: BTreeMap<String, f64>,
    pub(crate) positions: Array2<f32>,
    pub(crate) counts: Array1<u16>,
    pub(crate) big: Array1<i64>,
    pub(crate) probe: Shared<Probe>,
    pub(crate) probes: Vec<Shared<Probe>>,
    pub(crate) pets: BTreeMap<String, Shared<Probe>>,
}

/// Writes `sample.h5` in `dir`: `/sample` (a `Sample`), `/ring` (a two-node cycle),
/// a folder `/run-1` holding `/run-1/p` (a `Probe`), and a root attribute.
pub(crate) fn rust_file(dir: &Path) -> PathBuf {
    let _guard = fork_lock();
    let path = dir.join("sample.h5");
    let file = File::create(&path, Schema::new()).expect("create");
    let probe = Shared::new(Probe {
        name: "p0".into(),
        position: None,
    });
    let cat = Shared::new(Probe {
        name: "cat".into(),
        position: Some(0.0),
    });
    let sample = Sample {
        label: "first".into(),
        count: 3,
        zero: Some(0),
        missing: None,
        born: NaiveDate::from_ymd_opt(1990, 1, 2).expect("date"),
        seen: NaiveDate::from_ymd_opt(2024, 2, 29)
            .and_then(|d| d.and_hms_micro_opt(13, 4, 5, 250_000))
            .expect("datetime"),
        ratio: 0.1,
        nan: f64::NAN,
        tags: vec!["zeta".into(), "alpha".into(), "mid".into()],
        scores: [("b".to_owned(), 2.5), ("a".to_owned(), -1.0)].into(),
        positions: arr2(&[[1.5, 2.0, 2.5], [3.0, 3.5, f32::INFINITY]]),
        counts: Array1::from(vec![7u16, 8, 9]),
        big: Array1::from_iter(0..1000i64),
        probe: probe.clone(),
        probes: vec![probe.clone(), cat.clone()],
        pets: [("cat".to_owned(), cat)].into(),
    };
    let root = file.root();
    root.insert("sample", &sample).expect("insert sample");
    let a = Shared::new(Node {
        label: "a".into(),
        next: None,
    });
    let b = Shared::new(Node {
        label: "b".into(),
        next: Some(a.clone()),
    });
    a.write().next = Some(b);
    root.insert_shared("ring", &a).expect("insert ring");
    // Break the in-memory cycle so the test does not leak it.
    a.write().next = None;
    let run = root.create_folder("run-1").expect("folder");
    run.insert(
        "p",
        &Probe {
            name: "in a folder".into(),
            position: Some(1.25),
        },
    )
    .expect("insert p");
    root.set_attr("owner", &"lab".to_owned())
        .expect("root attr");
    file.close().expect("close");
    path
}

fn ascii_attr(g: &hdf5::Group, name: &str, value: &str) {
    let v = FixedAscii::<32>::from_ascii(value.as_bytes()).expect("ascii");
    g.new_attr::<FixedAscii<32>>()
        .create(name)
        .and_then(|a| a.write_scalar(&v))
        .expect("ascii attribute");
}

fn i64_attr(g: &hdf5::Group, name: &str, value: i64) {
    g.new_attr::<i64>()
        .create(name)
        .and_then(|a| a.write_scalar(&value))
        .expect("int attribute");
}

/// Writes `original.h5` in `dir` as the original Python h5pom lays it out: fixed-length ASCII
/// strings, `-type` markers, int64 counts, no `h5pom-format-version`; `/joe` has a friend list
/// whose item is also its `best` sub-object (a hard link), and the friend links back to `/joe`
/// (a cycle).
pub(crate) fn original_file(dir: &Path) -> PathBuf {
    let _guard = fork_lock();
    let path = dir.join("original.h5");
    let f = hdf5::File::create(&path).expect("create");
    let joe = f.create_group("joe").expect("group");
    ascii_attr(&joe, "loader-key", "Person");
    ascii_attr(&joe, "name", "Joe");
    i64_attr(&joe, "age", 25);
    i64_attr(&joe, "nick", 0);
    ascii_attr(&joe, "nick-type", "None");
    joe.new_attr_builder()
        .with_data(&[1990i64, 1, 2])
        .create("born")
        .expect("date");
    ascii_attr(&joe, "born-type", "date");
    i64_attr(&joe, "tags-count", 2);
    ascii_attr(&joe, "tags-0", "x");
    ascii_attr(&joe, "tags-1", "y");
    joe.new_dataset_builder()
        .with_data(&arr2(&[[0.5f64, 1.0, 1.5], [2.0, 2.5, 3.0]]))
        .chunk((1, 3))
        .create("data")
        .expect("dataset");
    let ann = joe.create_group("friends-0").expect("group");
    ascii_attr(&ann, "loader-key", "Person");
    ascii_attr(&ann, "name", "Ann");
    i64_attr(&joe, "friends-count", 1);
    joe.link_hard("/joe/friends-0", "best").expect("hard link");
    ann.link_hard("/joe", "back").expect("cycle");
    f.close().expect("close");
    path
}

/// Runs the binary.
pub(crate) fn h5pom<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let child = {
        let _guard = fork_lock();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_h5pom"));
        no_inherited_fds(&mut cmd);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run h5pom")
    };
    child.wait_with_output().expect("wait for h5pom")
}

/// Runs the binary, expects success and an empty stderr, returns stdout.
pub(crate) fn ok<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = h5pom(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "status {:?}, stderr: {stderr}",
        out.status
    );
    assert!(stderr.is_empty(), "unexpected stderr: {stderr}");
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Runs the binary, expects exit status 1 with one `h5pom: ` line on stderr and nothing on
/// stdout; returns the message.
pub(crate) fn fails<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = h5pom(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(out.stdout.is_empty(), "stdout on failure");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert!(stderr.starts_with("h5pom: "), "message: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    stderr
}

/// Runs `dump --json` with extra arguments and parses the document.
pub(crate) fn dump_json(file: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args: Vec<&OsStr> = vec!["dump".as_ref(), file.as_os_str(), "--json".as_ref()];
    args.extend(extra.iter().map(|s| OsStr::new(*s)));
    serde_json::from_str(&ok(args)).expect("valid JSON")
}
