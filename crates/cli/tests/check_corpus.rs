//! `h5pom check` must be able to say no (STYLE.md rule 18): on copies of a small ECS file with
//! random bit flips, no copy that h5py cannot read is reported readable. h5py is the oracle
//! (`tests/py/read_everything.py`: every object opened, every attribute and every dataset read).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bevy_ecs::prelude::*;
use h5pom_ecs::{H5Sync, Persist, Registry};
use h5pom_store::pipeline::{ArrayOptions, Filters};
use ndarray::Array2;

use common::spawn::{no_inherited_fds, python_if_set};
use common::{fork_lock, h5pom};

/// Copies in the corpus.
const COPIES: u64 = 40;
/// Bits flipped per copy.
const FLIPS: usize = 8;
/// Flips land in the first this many bytes (or in the whole file if it is smaller).
const REGION: usize = 64 << 10;

/// Large arrays of one cloud (group storage, compressed).
#[derive(Component, h5pom_derive::Object, Clone)]
#[h5pom(crate = "h5pom_store", no_ext)]
struct Particles {
    positions: Array2<f32>,
    velocities: Array2<f32>,
}

/// A name (table storage).
#[derive(Component, h5pom_derive::Object, Clone)]
#[h5pom(crate = "h5pom_store", no_ext)]
struct Name {
    name: String,
}

/// Counters (table storage).
#[derive(Component, h5pom_derive::Object, Clone)]
#[h5pom(crate = "h5pom_store", no_ext)]
struct Counters {
    steps: u64,
    hits: u32,
}

/// A resource.
#[derive(Resource, h5pom_derive::Object, Clone)]
#[h5pom(crate = "h5pom_store", no_ext)]
struct Clock {
    step: u64,
    dt: f64,
}

/// splitmix64: a seeded, dependency-free source of flip positions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Writes a sim-like ECS file: 4 clouds (entity groups with deflate-compressed `n × 3` arrays,
/// a name and counters), 12 probes (names and counters in column tables), a resource.
fn ecs_file(dir: &Path) -> PathBuf {
    let _guard = fork_lock();
    let path = dir.join("sim.h5");
    let registry = Registry::new()
        .component::<Particles>()
        .table::<Name>()
        .table::<Counters>()
        .resource::<Clock>();
    let mut world = World::new();
    for c in 0..4u32 {
        let n = 2000;
        let f = |i: usize, j: usize| (i * 3 + j) as f32 * 0.25 + c as f32;
        world.spawn((
            Persist,
            Particles {
                positions: Array2::from_shape_fn((n, 3), |(i, j)| f(i, j)),
                velocities: Array2::from_shape_fn((n, 3), |(i, j)| -f(i, j) / 7.0),
            },
            Name {
                name: format!("cloud-{c}"),
            },
            Counters {
                steps: u64::from(c) * 10,
                hits: c,
            },
        ));
    }
    for p in 0..12u32 {
        world.spawn((
            Persist,
            Name {
                name: format!("probe-{p}"),
            },
            Counters {
                steps: u64::from(p),
                hits: p * 2,
            },
        ));
    }
    world.insert_resource(Clock { step: 7, dt: 0.01 });
    let mut sync = H5Sync::create(&path, &registry).expect("create the ECS file");
    sync.set_array_options(ArrayOptions::with_filters(Filters::deflate(4)).chunk([256, 3]));
    sync.flush_now(&mut world).expect("flush");
    drop(sync);
    path
}

/// Copy `i` of `file` with [`FLIPS`] seeded bit flips in its first [`REGION`] bytes.
fn damaged_copy(file: &Path, i: u64) -> PathBuf {
    let mut bytes = std::fs::read(file).expect("read the file");
    let region = bytes.len().min(REGION) as u64;
    let mut rng = Rng(0x5eed_0000 + i);
    for _ in 0..FLIPS {
        let at = (rng.next() % region) as usize;
        bytes[at] ^= 1 << (rng.next() % 8);
    }
    let out = file.with_file_name(format!("copy-{i:02}.h5"));
    std::fs::write(&out, bytes).expect("write a copy");
    out
}

/// What h5py says of `file`: `Ok(())` if it read everything, else why not (its message, a
/// signal, or a hang).
fn h5py_reads(python: &Path, file: &Path) -> Result<(), String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/read_everything.py");
    let mut cmd = Command::new(python);
    no_inherited_fds(&mut cmd);
    cmd.arg(script)
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = {
        let _guard = fork_lock();
        cmd.spawn().expect("run Python")
    };
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for Python") {
            break s;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            return Err("h5py hung".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut said = String::new();
    if let Some(mut out) = child.stdout.take() {
        use std::io::Read;
        let _ = out.read_to_string(&mut said);
    }
    if status.success() {
        Ok(())
    } else {
        Err(format!("{status}: {}", said.trim()))
    }
}

/// `h5pom check [--full]`: its exit status and line.
fn check(file: &Path, full: bool) -> (Option<i32>, String) {
    let mut args = vec!["check".to_owned(), "--timeout".to_owned(), "20".to_owned()];
    if full {
        args.push("--full".to_owned());
    }
    args.push(file.to_str().expect("UTF-8 path").to_owned());
    let out = h5pom(&args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    )
}

#[test]
fn check_never_calls_a_file_h5py_cannot_read_readable() {
    let Some(python) = python_if_set() else {
        eprintln!(
            "SKIPPED check_never_calls_a_file_h5py_cannot_read_readable: H5POM_PYTHON is not \
             set (Python with h5py is the oracle; `make test` sets it up)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let clean = ecs_file(dir.path());
    assert_eq!(
        h5py_reads(&python, &clean),
        Ok(()),
        "h5py reads the clean file"
    );
    for full in [false, true] {
        let (code, line) = check(&clean, full);
        assert_eq!(code, Some(0), "clean file, full={full}: {line}");
        assert!(line.contains(": readable ("), "{line}");
    }

    let (mut h5py_no, mut check_no, mut full_no) = (0, 0, 0);
    let (mut false_readable, mut false_readable_full) = (Vec::new(), Vec::new());
    for i in 0..COPIES {
        let copy = damaged_copy(&clean, i);
        let oracle = h5py_reads(&python, &copy);
        let (code, line) = check(&copy, false);
        let (code_full, line_full) = check(&copy, true);
        // Never "readable" by accident: 0 is the only code that says so.
        assert!(
            matches!(code, Some(0 | 1 | 3 | 4)),
            "copy {i}: check exited {code:?}: {line}"
        );
        assert!(
            matches!(code_full, Some(0 | 1 | 3 | 4)),
            "copy {i}: check --full exited {code_full:?}: {line_full}"
        );
        check_no += usize::from(code != Some(0));
        full_no += usize::from(code_full != Some(0));
        if let Err(why) = oracle {
            h5py_no += 1;
            if code == Some(0) {
                false_readable.push(format!("copy {i}: h5py: {why}; check: {line}"));
            }
            if code_full == Some(0) {
                false_readable_full
                    .push(format!("copy {i}: h5py: {why}; check --full: {line_full}"));
            }
        }
    }
    eprintln!(
        "corpus of {COPIES} copies, {FLIPS} flipped bits each in the first {REGION} bytes: \
         h5py rejects {h5py_no}, `check` rejects {check_no}, `check --full` rejects {full_no}; \
         false \"readable\": check {}, check --full {}",
        false_readable.len(),
        false_readable_full.len()
    );
    for l in &false_readable {
        eprintln!("  without --full: {l}");
    }
    assert!(h5py_no > 0, "the corpus damages nothing h5py notices");
    assert!(
        false_readable_full.is_empty(),
        "`check --full` called files h5py cannot read readable:\n{}",
        false_readable_full.join("\n")
    );
}
