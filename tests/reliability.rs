//! Reliability of the per-tick flush, end to end with the simulation example's own binary
//! (`target/<profile>/examples/sim`, built by `cargo test --examples`):
//!
//! - a harness kills the simulation at random instants (≥ 50 kills) and checks that every time
//!   the file recovers to one complete tick, at or after the last flush the simulation
//!   acknowledged, equal bit for bit to that tick of an uninterrupted run; some recovered
//!   files are resumed with `--resume` and must end exactly where the uninterrupted run ends;
//! - an h5py reader polls the file while the simulation writes 1,000 ticks;
//! - a flush hitting a full disk (a small tmpfs, when the test runs as root) stops the run
//!   with an error, and the last committed tick still loads.

mod common;

#[path = "../examples/sim/engine/mod.rs"]
#[allow(
    dead_code,
    unused_imports,
    reason = "the example uses parts of the engine the tests do not"
)]
mod engine;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bevy_ecs::prelude::*;
use engine::checksum::world_checksum;
use engine::model::{Step, schema};

/// Particles and clouds of the worlds these tests run (small: the example is a debug build).
const PARTICLES: &str = "2000";
const CLOUDS: &str = "2";

/// The simulation example's binary, next to this test's (built in this test's profile).
fn sim_bin() -> PathBuf {
    common::cargo_build(&["-p", "h5pom", "--example", "sim"]);
    common::target_bin("examples", "sim")
}

fn sim(out: &Path, ticks: u64) -> Command {
    sim_sized(out, ticks, PARTICLES)
}

fn sim_sized(out: &Path, ticks: u64, particles: &str) -> Command {
    let mut cmd = Command::new(sim_bin());
    cmd.args(["--particles", particles, "--clouds", CLOUDS, "--quiet"])
        .arg("--ticks")
        .arg(ticks.to_string())
        .arg("--out")
        .arg(out);
    cmd
}

/// The `checksum: <hex>` line of a finished run.
fn checksum_line(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("checksum: "))
        .unwrap_or_else(|| panic!("no checksum line in:\n{stdout}"))
        .to_owned()
}

/// A world loaded from `path`: (step, checksum), or `None` for the empty world committed when
/// the file was created.
fn loaded(path: &Path) -> Option<(u64, String)> {
    let schema = schema();
    let mut world = World::new();
    schema
        .registry()
        .load(&mut world, path)
        .unwrap_or_else(|e| panic!("load {}: {e}", path.display()));
    let step = world.get_resource::<Step>()?.step;
    Some((step, world_checksum(&mut world, &schema)))
}

/// An uninterrupted run of `ticks` ticks with a snapshot after every step: the checksum of
/// each step's world, the final checksum, and the run's wall time.
struct Reference {
    by_step: HashMap<u64, String>,
    last: String,
    wall: Duration,
}

fn reference(dir: &Path, ticks: u64) -> Reference {
    let snaps = dir.join("snaps");
    let mut cmd = sim(&dir.join("ref.h5"), ticks);
    cmd.args(["--snapshot-every", "1", "--snapshot-dir"])
        .arg(&snaps);
    let t = Instant::now();
    let ran = common::run_ok(cmd);
    // Without snapshots the run is faster: time it too, to spread the kills over a run.
    let t2 = Instant::now();
    common::run_ok(sim(&dir.join("ref2.h5"), ticks));
    let wall = t2.elapsed().min(t.elapsed());
    let by_step = (1..=ticks)
        .map(|s| {
            let (step, sum) = loaded(&snaps.join(format!("sim-{s:08}.h5"))).expect("a snapshot");
            assert_eq!(step, s);
            (s, sum)
        })
        .collect();
    Reference {
        by_step,
        last: checksum_line(&ran.stdout),
        wall,
    }
}

/// xorshift64*: reproducible kill instants (the seed is printed).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

/// A running simulation whose `flushed step=<S> tick=<T>` acknowledgements are collected.
struct Watched {
    child: Child,
    acked: Arc<Mutex<Option<u64>>>,
    /// Returns the rest of stdout.
    reader: JoinHandle<String>,
    /// Returns stderr.
    errors: JoinHandle<String>,
}

fn spawn_watched(mut cmd: Command) -> Watched {
    cmd.arg("--log-flushes")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn the simulation");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let errors = std::thread::spawn(move || {
        use std::io::Read;
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let acked = Arc::new(Mutex::new(None));
    let seen = Arc::clone(&acked);
    let reader = std::thread::spawn(move || {
        let mut rest = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(step) = line
                .strip_prefix("flushed step=")
                .and_then(|s| s.split_whitespace().next())
                .and_then(|s| s.parse::<u64>().ok())
            {
                *seen.lock().unwrap() = Some(step);
            } else {
                rest.push_str(&line);
                rest.push('\n');
            }
        }
        rest
    });
    Watched {
        child,
        acked,
        reader,
        errors,
    }
}

#[test]
fn killed_runs_recover_a_complete_tick_at_or_after_the_last_acknowledged_one() {
    const TICKS: u64 = 30;
    const KILLS: usize = 60;
    let budget = Duration::from_secs(300);
    let dir = common::temp_dir();
    let reference = reference(dir.path(), TICKS);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    println!(
        "crash harness: seed {seed}, reference run {:?}",
        reference.wall
    );
    let mut rng = Rng(seed);
    let (mut kills, mut before_first_commit, mut resumed, mut completed) = (0, 0, 0, 0);
    let mut recovered_steps = Vec::new();
    let start = Instant::now();
    let mut round = 0;
    while kills < KILLS && start.elapsed() < budget {
        round += 1;
        let run_dir = dir.path().join(format!("run{round}"));
        std::fs::create_dir_all(&run_dir).unwrap();
        let out = run_dir.join("out.h5");
        let mut cmd = sim(&out, TICKS);
        // Vary what the flush does: durability levels and codecs.
        cmd.args(["--durability", ["process", "power"][round % 2]]);
        cmd.args(["--compression", ["none", "lz4", "zstd:1"][round % 3]]);
        // And where the arrays are written: in the tick, or by the writer thread while the
        // next tick runs (acknowledged once committed).
        if round % 4 >= 2 {
            cmd.arg("--background");
        }
        let mut w = spawn_watched(cmd);
        let wall_us = u64::try_from(reference.wall.as_micros()).unwrap_or(u64::MAX);
        std::thread::sleep(Duration::from_micros(rng.below(wall_us)));
        if w.child.try_wait().unwrap().is_some() {
            completed += 1;
            let _ = (w.reader.join(), w.errors.join());
            continue;
        }
        w.child.kill().expect("kill");
        let status = w.child.wait().unwrap();
        let rest = w.reader.join().unwrap();
        let _ = w.errors.join();
        if status.success() {
            completed += 1; // it finished between try_wait and kill
            continue;
        }
        kills += 1;
        let acked = *w.acked.lock().unwrap();
        let recovery = match h5pom::ecs::recover(&out) {
            Ok(r) => r,
            Err(e) => {
                // Killed before the file's first commit: nothing was acknowledged either.
                assert_eq!(
                    acked, None,
                    "round {round}: recovery failed ({e}) after step {acked:?} was acknowledged"
                );
                before_first_commit += 1;
                continue;
            }
        };
        assert!(recovery.slot_pair);
        let Some((step, sum)) = loaded(&out) else {
            assert_eq!(
                acked, None,
                "round {round}: empty world after an acknowledged flush"
            );
            before_first_commit += 1;
            continue;
        };
        assert!(
            acked.is_none_or(|a| step >= a),
            "round {round}: recovered step {step} is before the acknowledged step {acked:?}"
        );
        assert_eq!(
            &sum, &reference.by_step[&step],
            "round {round}: the recovered world is not step {step} of the uninterrupted run \
             (some component from another tick?)\nsimulation output:\n{rest}"
        );
        recovered_steps.push(step);
        // Every fifth recovered run goes on with --resume from the killed run's --out file.
        if recovered_steps.len() % 5 == 1 && step < TICKS {
            let mut cmd = Command::new(sim_bin());
            cmd.arg("--resume")
                .arg(&out)
                .arg("--out")
                .arg(&out)
                .args(["--quiet", "--ticks"])
                .arg((TICKS - step).to_string());
            let ran = common::run_ok(cmd);
            assert_eq!(
                checksum_line(&ran.stdout),
                reference.last,
                "round {round}: resumed from step {step}, the run did not end where the \
                 uninterrupted one does"
            );
            resumed += 1;
        }
        let _ = std::fs::remove_dir_all(&run_dir);
    }
    recovered_steps.sort_unstable();
    recovered_steps.dedup();
    println!(
        "crash harness: {kills} kills in {:?} ({round} runs, {completed} finished before the \
         kill): {} recovered to a complete tick equal to the uninterrupted run's (distinct steps \
         {recovered_steps:?}), {before_first_commit} killed before the first commit, {resumed} \
         resumed to the exact final state",
        start.elapsed(),
        kills - before_first_commit,
    );
    assert!(
        kills >= 50,
        "only {kills} kills within {budget:?}: the harness needs ≥ 50"
    );
    assert!(
        kills - before_first_commit >= 25,
        "too few kills landed after the first commit to mean anything"
    );
    assert!(resumed >= 3);
}

#[test]
fn a_live_h5py_reader_sees_complete_ticks_advance_while_1000_are_written() {
    let dir = common::temp_dir();
    let out = dir.path().join("live.h5");
    let done = dir.path().join("done");
    let mut reader = common::py_command("live_reader.py", [out.as_os_str(), done.as_os_str()]);
    reader.stdout(Stdio::piped()).stderr(Stdio::piped());
    let reader = reader.spawn().expect("start the h5py reader");
    let mut cmd = Command::new(sim_bin());
    cmd.args([
        "--particles",
        "200",
        "--clouds",
        "2",
        "--quiet",
        "--ticks",
        "1000",
    ])
    .arg("--out")
    .arg(&out);
    let ran = common::run_ok(cmd);
    std::fs::write(&done, b"").unwrap();
    let r = reader.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr),
    );
    assert!(
        r.status.success(),
        "the h5py reader failed:\n{stdout}\n{stderr}"
    );
    let field = |k: &str| -> i64 {
        stdout
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in {stdout:?}"))
    };
    println!("live reader: {}", stdout.trim());
    assert_eq!(field("last_step"), 1000, "the last read saw the final step");
    assert!(field("reads") >= 20, "the reader hardly read: {stdout}");
    assert!(
        field("distinct_ticks") >= 10,
        "ticks did not advance: {stdout}"
    );
    assert!(ran.stdout.contains("checksum: "));
}

/// Runs `f` with a 6 MiB tmpfs mounted at a fresh directory, or prints why it cannot.
fn with_small_tmpfs(f: impl FnOnce(&Path)) {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        println!("SKIPPED: the disk-full test mounts a tmpfs and needs root");
        return;
    }
    let dir = common::temp_dir();
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let mount = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=6m", "h5pom-test"])
        .arg(&mnt)
        .output();
    match mount {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            println!(
                "SKIPPED: cannot mount a tmpfs ({}); the disk-full test needs CAP_SYS_ADMIN",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            return;
        }
        Err(e) => {
            println!("SKIPPED: cannot run mount: {e}");
            return;
        }
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let guard = Unmount(mnt.clone());
    f(&mnt);
    drop(guard);
}

#[test]
fn a_full_disk_stops_the_run_with_an_error_and_the_last_commit_still_loads() {
    with_small_tmpfs(|mnt| {
        const TICKS: u64 = 400;
        let dir = common::temp_dir();
        let out = mnt.join("out.h5");
        // zstd chunks change size every tick, so the files keep needing new space.
        let mut cmd = sim_sized(&out, TICKS, "20000");
        cmd.args(["--compression", "zstd:1"]);
        let mut w = spawn_watched(cmd);
        // Once the run is flushing, fill the disk.
        let t = Instant::now();
        while w.acked.lock().unwrap().is_none_or(|s| s < 3) {
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "the run never flushed"
            );
            if w.child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let filler = mnt.join("filler");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&filler).unwrap();
            let block = vec![0xa5u8; 64 * 1024];
            while f.write_all(&block).is_ok() {}
        }
        let status = w.child.wait().unwrap();
        let rest = w.reader.join().unwrap();
        let stderr = w.errors.join().unwrap();
        assert!(
            !status.success(),
            "the run should have failed on the full disk\n{rest}"
        );
        assert!(
            status.code() == Some(1),
            "the run did not stop cleanly with an error ({status}):\n{stderr}"
        );
        let acked = w
            .acked
            .lock()
            .unwrap()
            .expect("some flushes were acknowledged");
        assert!(acked < TICKS, "the disk never filled up");
        // The last committed tick loads (recovery rebuilds the other slot once there is
        // room again).
        std::fs::remove_file(&filler).unwrap();
        let recovery = h5pom::ecs::recover(&out).unwrap();
        let (step, sum) = loaded(&out).expect("a committed tick");
        assert!(
            step >= acked,
            "recovered step {step} < acknowledged {acked}"
        );
        // The same run, uninterrupted, on a disk with room (compression does not change
        // the state).
        let straight = common::run_ok(sim_sized(&dir.path().join("ref.h5"), step, "20000"));
        assert_eq!(sum, checksum_line(&straight.stdout));
        println!(
            "disk full: the run stopped with an error after acknowledging step {acked}; \
             recovered tick {} (step {step}) equals the uninterrupted run's step {step}; \
             error printed: {}",
            recovery.tick,
            stderr.lines().last().unwrap_or_default()
        );
    });
}

/// The `h5pom` inspector, next to this test's binary.
fn h5pom_bin() -> PathBuf {
    common::cargo_build(&["-p", "h5pom-cli", "--bin", "h5pom"]);
    common::target_bin("", "h5pom")
}

#[test]
fn recovery_clears_the_status_flags_a_killed_swmr_writer_leaves() {
    let dir = common::temp_dir();
    let path = dir.path().join("swmr.h5");
    let (status, ran) = common::run(common::py_command(
        "write_killed_swmr_file.py",
        [path.as_os_str(), "7".as_ref()],
    ));
    assert!(
        !status.success(),
        "the writer was meant to die: {}",
        ran.stderr
    );
    let refused = h5pom::File::open_read_only(&path, h5pom::Schema::new())
        .expect_err("libhdf5 refuses a file whose writer died in SWMR mode");
    assert!(
        refused.to_string().contains("already open for write"),
        "{refused}"
    );
    // The documented command-line step.
    let out = common::run_ok({
        let mut c = Command::new(h5pom_bin());
        c.arg("recover").arg(&path);
        c
    });
    assert!(
        out.stdout.contains("plain file at tick 7"),
        "{}",
        out.stdout
    );
    h5pom::File::open_read_only(&path, h5pom::Schema::new()).expect("opens after recovery");
    assert_eq!(h5pom::ecs::recover(&path).unwrap().tick, 7);
}

#[test]
fn recovery_of_a_slot_pair_rebuilds_a_garbage_slot() {
    let dir = common::temp_dir();
    let out = dir.path().join("pair.h5");
    common::run_ok(sim(&out, 4));
    let [a, b] = h5pom::ecs::slot_paths(&out);
    let committed = std::fs::canonicalize(&out).unwrap();
    let other = if committed == std::fs::canonicalize(&a).unwrap() {
        b
    } else {
        a
    };
    // What a flush killed half way can leave: garbage in the slot being written.
    let len = std::fs::metadata(&other).unwrap().len() as usize;
    std::fs::write(&other, vec![0x5au8; len / 2]).unwrap();
    let (step, sum) = loaded(&out).expect("the committed slot loads");
    assert_eq!(step, 4);
    let r = h5pom::ecs::recover(&out).unwrap();
    assert!(r.slot_pair && r.rebuilt);
    assert_eq!(
        std::fs::read(&other).unwrap(),
        std::fs::read(&committed).unwrap(),
        "the other slot is rebuilt as a copy of the committed one"
    );
    assert_eq!(loaded(&out).unwrap().1, sum);
    // A missing file and a file that is not ECS give typed errors.
    let missing = h5pom::ecs::recover(dir.path().join("nope.h5")).unwrap_err();
    assert!(missing.to_string().contains("not found"), "{missing}");
    let junk = dir.path().join("junk.h5");
    std::fs::write(&junk, b"not hdf5").unwrap();
    assert!(h5pom::ecs::recover(&junk).is_err());
}

/// The checksum of the world stored at `step` in the history of `path`.
fn loaded_at(path: &Path, step: u64) -> String {
    let schema = schema();
    let mut world = World::new();
    schema
        .registry()
        .load_at(&mut world, path, step as i64)
        .unwrap_or_else(|e| panic!("load {} at step {step}: {e}", path.display()));
    assert_eq!(world.resource::<Step>().step, step);
    world_checksum(&mut world, &schema)
}

/// A `--history` run killed at random instants keeps every committed step: each one reloads
/// (`load_at`) to exactly that step of an uninterrupted run, the last one is at or after the
/// last acknowledged flush, and resuming in place cuts off what the killed flush appended and
/// ends where the uninterrupted run does.
#[test]
fn killed_history_runs_keep_every_committed_step() {
    const TICKS: u64 = 20;
    const KILLS: usize = 12;
    let budget = Duration::from_secs(120);
    let dir = common::temp_dir();
    let reference = reference(dir.path(), TICKS);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    println!("history crash harness: seed {seed}");
    let mut rng = Rng(seed);
    let (mut kills, mut checked, mut resumed) = (0, 0, 0);
    let start = Instant::now();
    let mut round = 0;
    while kills < KILLS && start.elapsed() < budget {
        round += 1;
        let run_dir = dir.path().join(format!("hist{round}"));
        std::fs::create_dir_all(&run_dir).unwrap();
        let out = run_dir.join("out.h5");
        let mut cmd = sim(&out, TICKS);
        cmd.arg("--history");
        cmd.args(["--compression", ["none", "deflate:1"][round % 2]]);
        if round % 4 >= 2 {
            cmd.arg("--background");
        }
        let mut w = spawn_watched(cmd);
        let wall_us = u64::try_from(reference.wall.as_micros()).unwrap_or(u64::MAX);
        std::thread::sleep(Duration::from_micros(rng.below(wall_us)));
        if w.child.try_wait().unwrap().is_some() {
            let _ = (w.reader.join(), w.errors.join());
            continue;
        }
        w.child.kill().expect("kill");
        let status = w.child.wait().unwrap();
        let _ = (w.reader.join(), w.errors.join());
        if status.success() {
            continue;
        }
        kills += 1;
        let acked = *w.acked.lock().unwrap();
        if h5pom::ecs::recover(&out).is_err() {
            assert_eq!(
                acked, None,
                "round {round}: no file after an acknowledged flush"
            );
            continue;
        }
        let steps: Vec<u64> = match h5pom::ecs::history::HistoryReader::open(&out) {
            Ok(r) => r
                .steps("Step")
                .unwrap()
                .into_iter()
                .map(|s| s as u64)
                .collect(),
            Err(e) => {
                assert_eq!(
                    acked, None,
                    "round {round}: {e} after an acknowledged flush"
                );
                continue;
            }
        };
        if let Some(a) = acked {
            assert!(
                steps.last().is_some_and(|&s| s >= a),
                "round {round}: history ends at {:?}, step {a} was acknowledged",
                steps.last()
            );
        }
        for &s in steps.iter().filter(|&&s| s >= 1) {
            assert_eq!(
                loaded_at(&out, s),
                reference.by_step[&s],
                "round {round}: step {s} of the history is not step {s} of the uninterrupted run"
            );
            checked += 1;
        }
        if kills % 3 == 0 && steps.last().is_some_and(|&s| s < TICKS) {
            let last = *steps.last().unwrap_or(&0);
            let mut cmd = Command::new(sim_bin());
            cmd.arg("--resume")
                .arg(&out)
                .arg("--out")
                .arg(&out)
                .args(["--quiet", "--history", "--ticks"])
                .arg((TICKS - last).to_string());
            let ran = common::run_ok(cmd);
            assert_eq!(checksum_line(&ran.stdout), reference.last, "round {round}");
            let r = h5pom::ecs::history::HistoryReader::open(&out).unwrap();
            let after: Vec<i64> = r.steps("Step").unwrap();
            assert!(
                after.windows(2).all(|w| w[0] < w[1]),
                "round {round}: steps go back after the resume: {after:?}"
            );
            assert_eq!(after.last(), Some(&(TICKS as i64)));
            resumed += 1;
        }
    }
    println!("history crash harness: {kills} kills, {checked} steps reloaded, {resumed} resumed");
    assert!(kills >= 3, "too few kills ({kills}) to mean anything");
    assert!(checked > 0);
}

/// Runs the sim with `args` while the Python reader `script` runs with `reader_args`; returns
/// the reader's summary line (`k=v` pairs) after checking both succeeded.
fn sim_with_reader(
    out: &Path,
    sim_args: &[&str],
    script: &str,
    reader_args: &[&std::ffi::OsStr],
    done: Option<&Path>,
) -> (String, String) {
    let mut reader = common::py_command(script, reader_args.iter().copied());
    reader.stdout(Stdio::piped()).stderr(Stdio::piped());
    let reader = reader.spawn().expect("start the h5py reader");
    let mut cmd = Command::new(sim_bin());
    cmd.args(sim_args).arg("--out").arg(out);
    let ran = common::run_ok(cmd);
    if let Some(done) = done {
        std::fs::write(done, b"").unwrap();
    }
    let r = reader.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&r.stdout).into_owned(),
        String::from_utf8_lossy(&r.stderr).into_owned(),
    );
    assert!(
        r.status.success(),
        "the reader {script} failed:\n{stdout}\n{stderr}"
    );
    assert!(ran.stdout.contains("checksum: "));
    (stdout, ran.stdout)
}

fn summary_field(summary: &str, k: &str) -> f64 {
    summary
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {k} in {summary:?}"))
}

#[test]
fn a_reader_holding_the_file_for_seconds_does_not_stall_the_writer() {
    // Before: the writer waited for the reader's shared lock on the slot it was to rewrite,
    // so while a notebook held the file the sim committed at most one more tick.
    let dir = common::temp_dir();
    let out = dir.path().join("held.h5");
    let args = [
        "--particles",
        "200",
        "--clouds",
        "2",
        "--quiet",
        "--ticks",
        "4000",
    ];
    let (summary, ran) = sim_with_reader(
        &out,
        &args,
        "hold_reader.py",
        &[out.as_os_str(), std::ffi::OsStr::new("3")],
        None,
    );
    println!("hold reader: {}", summary.trim());
    let held = summary_field(&summary, "held_tick");
    let released = summary_field(&summary, "tick_at_release");
    assert!(
        released - held >= 20.0,
        "the writer committed only {} ticks while a reader held the file: {summary}",
        released - held
    );
    // The reader changed nothing: same checksum and same final tick as a run without it.
    let reference = dir.path().join("reference.h5");
    let mut cmd = Command::new(sim_bin());
    cmd.args(args).arg("--out").arg(&reference);
    let straight = common::run_ok(cmd);
    assert_eq!(checksum_line(&ran), checksum_line(&straight.stdout));
    assert_eq!(
        h5pom_ecs::recover(&out).unwrap().tick,
        h5pom_ecs::recover(&reference).unwrap().tick
    );
}

#[test]
fn a_live_history_reader_never_sees_a_partial_frame_or_a_step_going_back() {
    let dir = common::temp_dir();
    let out = dir.path().join("live-history.h5");
    let done = dir.path().join("done");
    let (summary, _) = sim_with_reader(
        &out,
        &[
            "--particles",
            "200",
            "--clouds",
            "2",
            "--quiet",
            "--history",
            "--ticks",
            "1000",
        ],
        "live_history_reader.py",
        &[out.as_os_str(), done.as_os_str()],
        Some(&done),
    );
    println!("live history reader: {}", summary.trim());
    assert_eq!(summary_field(&summary, "last_step"), 1000.0);
    assert!(summary_field(&summary, "kept") >= 20.0, "{summary}");
    assert!(
        summary_field(&summary, "frames_checked") >= 10.0,
        "{summary}"
    );
}
