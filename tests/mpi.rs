//! The simulation under `mpirun` (feature `mpi`): `make test-mpi`, and CI, run these with
//! Open MPI on 2 ranks (`--oversubscribe`: two cores here). Each test runs the example built
//! with `--features mpi`: one process (no `mpirun`: an ordinary run) against 2 ranks, resumes on
//! 1 and 2 ranks, a rank killed mid-run, and h5py reading the run file.
#![cfg(feature = "mpi")]

mod common;

#[path = "../examples/sim/engine/mod.rs"]
#[allow(
    dead_code,
    unused_imports,
    reason = "the example uses parts of the engine the tests do not"
)]
mod engine;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bevy_ecs::prelude::*;
use engine::model::{Cloud, Step, schema};

const PARTICLES: &str = "4000";
const CLOUDS: &str = "4";

/// The simulation example built with `--features mpi`, next to this test's binary.
fn sim_bin() -> PathBuf {
    common::cargo_build(&["-p", "h5pom", "--example", "sim", "--features", "mpi"]);
    common::target_bin("examples", "sim")
}

/// `mpirun -np <ranks>` (Open MPI; allowed to run as root, as CI does), or the sim itself for
/// `ranks == 0`.
fn sim(ranks: usize, args: &[&str]) -> Command {
    let mut cmd = if ranks == 0 {
        Command::new(sim_bin())
    } else {
        let mut c = Command::new("mpirun");
        c.args(["-np", &ranks.to_string(), "--oversubscribe"])
            .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
            .arg(sim_bin());
        c
    };
    if !args.contains(&"--resume") {
        cmd.args(["--particles", PARTICLES, "--clouds", CLOUDS]);
    }
    cmd.arg("--quiet")
        .args(args)
        // One thread per rank: two ranks on two cores.
        .args(["--threads", "1"]);
    cmd
}

fn checksum(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run the sim");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("checksum: "))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "one checksum line (rank 0 reports):\n{stdout}"
    );
    lines[0].to_owned()
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// The clouds a file holds (a run file, or one rank's shard), by index, and its step.
fn clouds_in(path: &Path) -> (Vec<u32>, u64) {
    let mut world = World::new();
    schema().registry().load(&mut world, path).expect("load");
    let mut v: Vec<u32> = world
        .query::<&Cloud>()
        .iter(&world)
        .map(|c| c.index)
        .collect();
    v.sort_unstable();
    (v, world.resource::<Step>().step)
}

fn copy_run(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let e = entry.unwrap();
        let dst = to.join(e.file_name());
        let kind = e.file_type().unwrap();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path()).unwrap(), dst).unwrap();
        } else if kind.is_file() {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

#[test]
fn two_ranks_match_one_process_and_resume_on_one_and_two_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one.h5"), dir.path().join("two.h5"));
    let straight = checksum(&mut sim(0, &["--ticks", "12", "--out", p(&one)]));
    let half = dir.path().join("half.h5");
    let at_six = checksum(&mut sim(0, &["--ticks", "6", "--out", p(&half)]));
    // 2 ranks: the same checksum, each rank persisting its own clouds (k % 2).
    assert_eq!(
        checksum(&mut sim(2, &["--ticks", "6", "--out", p(&two)])),
        at_six
    );
    for r in 0..2u32 {
        let shard = h5pom::ecs::sharded::shard_path(&two, 0, r as usize);
        let (clouds, step) = clouds_in(&shard);
        assert_eq!(clouds, vec![r, r + 2], "rank {r}'s shard");
        assert_eq!(step, 6);
    }
    assert_eq!(clouds_in(&two), (vec![0, 1, 2, 3], 6));
    // Resumed in place on 1 process and on 2 ranks: the straight run's checksum.
    let other = tempfile::tempdir().unwrap();
    copy_run(dir.path(), other.path());
    let two_again = other.path().join("two.h5");
    let resume =
        |out: &Path| ["--ticks", "6", "--resume", p(out), "--out", p(out)].map(String::from);
    let args = resume(&two);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(checksum(&mut sim(2, &args)), straight);
    let args = resume(&two_again);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(checksum(&mut sim(0, &args)), straight);
    assert_eq!(clouds_in(&two_again), (vec![0, 1, 2, 3], 12));
}

#[test]
fn snapshots_of_two_ranks_resume_into_new_runs_on_one_and_two_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name);
    let straight = checksum(&mut sim(0, &["--ticks", "8", "--out", p(&d("s.h5"))]));
    let snaps = d("snaps");
    checksum(&mut sim(
        2,
        &[
            "--ticks",
            "6",
            "--snapshot-every",
            "3",
            "--snapshot-dir",
            p(&snaps),
            "--out",
            p(&d("two.h5")),
        ],
    ));
    let snap = snaps.join("sim-00000003.h5");
    assert_eq!(clouds_in(&snap), (vec![0, 1, 2, 3], 3));
    for (ranks, out) in [(0, "one.h5"), (2, "again.h5")] {
        let got = checksum(&mut sim(
            ranks,
            &["--ticks", "5", "--resume", p(&snap), "--out", p(&d(out))],
        ));
        assert_eq!(got, straight, "resumed on {ranks} ranks");
    }
    // The snapshot stays as it was.
    assert_eq!(clouds_in(&snap), (vec![0, 1, 2, 3], 3));
}

#[test]
fn the_history_of_two_ranks_reads_as_that_of_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one.h5"), dir.path().join("two.h5"));
    let a = checksum(&mut sim(
        0,
        &["--ticks", "6", "--history", "--out", p(&one)],
    ));
    let b = checksum(&mut sim(
        2,
        &["--ticks", "6", "--history", "--out", p(&two)],
    ));
    assert_eq!(a, b);
    // Reload at every step: the same world from both.
    let schema = schema();
    for step in 1..=6 {
        let at = |path: &Path| {
            let mut world = World::new();
            schema
                .registry()
                .load_at(&mut world, path, step)
                .expect("load_at");
            assert_eq!(world.resource::<Step>().step, step as u64);
            engine::checksum::world_checksum(&mut world, &schema)
        };
        assert_eq!(at(&two), at(&one), "step {step}");
    }
    // MDAnalysis and h5py read the particle groups through the MPI run's file.
    let out = Command::new(common::python())
        .arg(common::py_dir().join("check_mpi_history.py"))
        .args([p(&two), p(&one)])
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Resumed on 1 process, the history goes on: step 8 reads as a straight run's.
    let c = checksum(&mut sim(
        0,
        &[
            "--ticks",
            "2",
            "--resume",
            p(&two),
            "--out",
            p(&two),
            "--history",
        ],
    ));
    let straight = checksum(&mut sim(
        0,
        &["--ticks", "8", "--history", "--out", p(&one)],
    ));
    assert_eq!(c, straight);
    let mut world = World::new();
    schema
        .registry()
        .load_at(&mut world, &two, 3)
        .expect("step 3 after the resume");
    assert_eq!(world.resource::<Step>().step, 3);
}

#[test]
fn h5py_reads_the_whole_world_from_the_run_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run.h5");
    checksum(&mut sim(2, &["--ticks", "3", "--out", p(&run)]));
    h5py_reads_one_world(&run);
}

/// `tests/py/check_mpi_run.py`: h5py reads every entity and row through the run file alone,
/// equal to what the shards hold.
fn h5py_reads_one_world(run: &Path) {
    let out = Command::new(common::python())
        .arg(common::py_dir().join("check_mpi_run.py"))
        .args([p(run), CLOUDS, PARTICLES])
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok "));
}

/// The processes whose parent is `parent` (from `/proc`), in pid order.
fn children(parent: u32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`: the command may hold spaces, so split after its `)`.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) {
            out.push(pid);
        }
    }
    out.sort_unstable();
    out
}

#[test]
fn a_rank_killed_mid_run_leaves_the_last_common_tick() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run.h5");
    let ticks = 400u64;
    let straight = {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("s.h5");
        checksum(&mut sim(
            0,
            &["--ticks", &ticks.to_string(), "--out", p(&out)],
        ))
    };
    let mut child = sim(
        2,
        &[
            "--ticks",
            &ticks.to_string(),
            "--out",
            p(&run),
            "--log-flushes",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("start mpirun");
    // Wait for acknowledged ticks, then SIGKILL one rank (a child of mpirun) mid-run.
    let stdout = child.stdout.take().unwrap();
    let mut acked = 0u64;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(step) = line.strip_prefix("flushed step=") {
            acked = step.split_whitespace().next().unwrap().parse().unwrap();
            if acked >= 20 {
                break;
            }
        }
    }
    assert!(acked >= 20, "the run ended before 20 acknowledged steps");
    let pids = children(child.id());
    assert_eq!(pids.len(), 2, "two rank processes under mpirun: {pids:?}");
    // SAFETY: plain syscall on a pid of our own job.
    assert_eq!(unsafe { libc::kill(pids[1], libc::SIGKILL) }, 0);
    let status = child.wait().unwrap();
    assert!(!status.success(), "mpirun ends the job when a rank dies");
    // The run loads at a tick every rank committed, at or after the last acknowledged one…
    let (clouds, step) = clouds_in(&run);
    assert_eq!(clouds, vec![0, 1, 2, 3]);
    assert!(
        step >= acked && step < ticks,
        "step {step}, acknowledged {acked}"
    );
    // …and resumed on one process it ends as the straight run.
    let rest = (ticks - step).to_string();
    let got = checksum(&mut sim(
        0,
        &["--ticks", &rest, "--resume", p(&run), "--out", p(&run)],
    ));
    assert_eq!(got, straight);
}
