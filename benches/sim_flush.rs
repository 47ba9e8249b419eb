//! End-to-end: per-tick flush cost of the simulation example versus particle count, thread
//! count and compression, with the share of tick time spent flushing.
//!
//! `cargo bench --bench sim_flush` builds `examples/sim` in release mode and runs it once per
//! configuration (separate processes, so each gets its own thread pool). Sizes:
//! `H5POM_SIM_SIZES=10000,100000,1000000` (default; add 10000000 for the largest case),
//! ticks per run: `H5POM_SIM_TICKS` (default 10).
//!
//! A second table measures the cost of crash safety: flush p50 with `--durability none`
//! (one file in place), `process` (slot pair + committing link) and `power` (the same with
//! fsync), runs interleaved (3 rounds, median), with the ratios to `none`. Only this table:
//! `H5POM_SIM_ONLY=durability`.
//!
//! A third measures what persistence costs the simulation: the mean tick time (the flush
//! included) with a flush every tick, written in the tick (`inline`) or by the writer thread
//! while the next tick runs (`--background`), over the mean tick time of the same run with no
//! flush during the ticks (`--flush-every` above the tick count: change detection runs, the
//! file is written once after the last tick), runs interleaved, 3 rounds; one line per size
//! and codec: `tick with / without persistence, <N> particles, <codec>: inline <r>× (<min>-<max>),
//! background <r>× (<min>-<max>)` (medians and ranges of the rounds). Only this table:
//! `H5POM_SIM_ONLY=persistence`.

use std::process::Command;

fn field<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .find(|l| l.trim_start().starts_with(label))
        .map(|l| l.trim_start()[label.len()..].trim())
        .unwrap_or("?")
}

/// The number just before `unit` in `s` ("8697.80 ms total" → 8697.80).
fn number_before(s: &str, unit: &str) -> Option<f64> {
    let i = s.find(unit)?;
    s[..i]
        .split_whitespace()
        .last()?
        .trim_start_matches('(')
        .parse()
        .ok()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("sim_flush: run with `cargo bench --bench sim_flush` (skipped under cargo test)");
        return;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(["build", "--release", "--example", "sim", "--quiet"])
        .status()
        .expect("run cargo");
    assert!(status.success(), "building the sim example failed");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(|_| root.join("target"), Into::into);
    let sim = target.join("release/examples/sim");
    let sizes: Vec<String> = std::env::var("H5POM_SIM_SIZES")
        .unwrap_or_else(|_| "10000,100000,1000000".into())
        .split(',')
        .map(str::to_owned)
        .collect();
    let ticks = std::env::var("H5POM_SIM_TICKS").unwrap_or_else(|_| "10".into());
    let dir = tempfile::tempdir().expect("temp dir");
    let only = std::env::var("H5POM_SIM_ONLY").unwrap_or_default();
    if only == "persistence" {
        persistence_table(&sim, &sizes, &ticks, dir.path());
        return;
    }
    let only_durability = only == "durability";
    println!(
        "{:>10} {:>7} {:>8} {:>12} {:>12} {:>12} {:>9} {:>10}",
        "particles",
        "threads",
        "codec",
        "flush p50",
        "flush p95",
        "physics/tick",
        "share",
        "stored MiB"
    );
    for size in sizes.iter().filter(|_| !only_durability) {
        for threads in ["1", "2"] {
            for codec in ["none", "deflate:1", "lz4"] {
                let out = dir
                    .path()
                    .join(format!("sim-{size}-{threads}-{codec}.h5").replace(':', "_"));
                let o = sim_command(&sim, size, &ticks, codec, &out)
                    .args(["--threads", threads])
                    .output()
                    .expect("run sim");
                assert!(
                    o.status.success(),
                    "sim failed: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                let text = String::from_utf8_lossy(&o.stdout).into_owned();
                let times = field(&text, "flush time");
                let p50 = times.split('·').next().unwrap_or("?").replace("p50", "");
                let p95 = times.split('·').nth(1).unwrap_or("?").replace("p95", "");
                let tick_total = number_before(field(&text, "tick time"), "ms total");
                let flush_total = number_before(field(&text, "flushes"), "ms total");
                let n: f64 = ticks.parse().unwrap_or(1.0);
                let physics = match (tick_total, flush_total) {
                    (Some(t), Some(f)) => format!("{:.1} ms", (t - f) / n),
                    _ => "?".into(),
                };
                let stored = field(&text, "bytes written")
                    .split(" stored")
                    .next()
                    .unwrap_or("?");
                let stored = stored.rsplit(", ").next().unwrap_or("?").to_owned();
                println!(
                    "{size:>10} {threads:>7} {codec:>8} {:>12} {:>12} {physics:>12} {:>9} {stored:>10}",
                    p50.trim(),
                    p95.trim(),
                    field(&text, "flush share").replace(" of tick time", "")
                );
                remove_output(&out);
            }
        }
    }
    durability_table(&sim, &sizes, &ticks, dir.path());
    if !only_durability {
        persistence_table(&sim, &sizes, &ticks, dir.path());
    }
}

/// Mean tick time (ms, flush included) of one run with the extra arguments `args`.
fn mean_tick(
    sim: &std::path::Path,
    size: &str,
    ticks: &str,
    codec: &str,
    args: &[&str],
    out: &std::path::Path,
) -> f64 {
    let o = sim_command(sim, size, ticks, codec, out)
        .args(args)
        .output()
        .expect("run sim");
    assert!(
        o.status.success(),
        "sim failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    remove_output(out);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    number_before(field(&text, "tick time"), "ms total").unwrap_or(f64::NAN)
        / ticks.parse::<f64>().unwrap_or(1.0)
}

fn persistence_table(sim: &std::path::Path, sizes: &[String], ticks: &str, dir: &std::path::Path) {
    println!();
    let never = (ticks.parse::<u64>().unwrap_or(10) + 1).to_string();
    for size in sizes {
        for codec in ["none", "deflate:1"] {
            let out = dir.join("persist.h5");
            let (mut inline, mut background) = (Vec::new(), Vec::new());
            for _round in 0..3 {
                let without = mean_tick(sim, size, ticks, codec, &["--flush-every", &never], &out);
                inline.push(mean_tick(sim, size, ticks, codec, &[], &out) / without);
                background
                    .push(mean_tick(sim, size, ticks, codec, &["--background"], &out) / without);
            }
            let summary = |v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                format!("{:.2}× ({:.2}-{:.2})", v[v.len() / 2], v[0], v[v.len() - 1])
            };
            println!(
                "tick with / without persistence, {size} particles, {codec}: inline {}, background {}",
                summary(&mut inline),
                summary(&mut background)
            );
        }
    }
}

/// The simulation with 4 clouds of `size` particles in total, `ticks` ticks, quiet.
fn sim_command(
    sim: &std::path::Path,
    size: &str,
    ticks: &str,
    codec: &str,
    out: &std::path::Path,
) -> Command {
    let mut cmd = Command::new(sim);
    cmd.args([
        "--quiet",
        "--particles",
        size,
        "--clouds",
        "4",
        "--ticks",
        ticks,
    ])
    .args(["--compression", codec, "--out"])
    .arg(out);
    cmd
}

/// Removes a run's output: the file or link, and the slots of a pair.
fn remove_output(out: &std::path::Path) {
    let _ = std::fs::remove_file(out);
    for slot in h5pom::ecs::slot_paths(out) {
        let _ = std::fs::remove_file(slot);
    }
}

/// Flush p50 in milliseconds of one run; for durability `snapshot`, the mean time of an
/// atomic snapshot written after every tick (the "snapshot chain" design).
fn flush_p50(
    sim: &std::path::Path,
    size: &str,
    ticks: &str,
    codec: &str,
    durability: &str,
    out: &std::path::Path,
) -> f64 {
    let mut cmd = sim_command(sim, size, ticks, codec, out);
    let snaps = out.with_extension("snaps");
    if durability == "snapshot" {
        cmd.args([
            "--durability",
            "none",
            "--snapshot-every",
            "1",
            "--snapshot-dir",
        ])
        .arg(&snaps);
    } else {
        cmd.args(["--durability", durability]);
    }
    let o = cmd.output().expect("run sim");
    assert!(
        o.status.success(),
        "sim failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    remove_output(out);
    let _ = std::fs::remove_dir_all(&snaps);
    if durability == "snapshot" {
        let total = number_before(field(&text, "snapshots"), "ms").unwrap_or(f64::NAN);
        return total / ticks.parse::<f64>().unwrap_or(1.0);
    }
    let times = field(&text, "flush time");
    number_before(times.split('·').next().unwrap_or(""), "ms").unwrap_or(f64::NAN)
}

fn durability_table(sim: &std::path::Path, sizes: &[String], ticks: &str, dir: &std::path::Path) {
    println!();
    println!(
        "{:>10} {:>8} {:>11} {:>11} {:>11} {:>11} {:>9} {:>9} {:>9}",
        "particles",
        "codec",
        "none p50",
        "process p50",
        "power p50",
        "snapshot",
        "process×",
        "power×",
        "snapshot×"
    );
    for size in sizes {
        for codec in ["none", "lz4"] {
            let mut runs: [Vec<f64>; 4] = Default::default();
            for _round in 0..3 {
                for (i, d) in ["none", "process", "power", "snapshot"]
                    .into_iter()
                    .enumerate()
                {
                    let out = dir.join(format!("dur-{size}-{d}.h5"));
                    runs[i].push(flush_p50(sim, size, ticks, codec, d, &out));
                }
            }
            let [none, process, power, snapshot] = runs.map(|mut v| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            });
            println!(
                "{size:>10} {codec:>8} {none:>8.2} ms {process:>8.2} ms {power:>8.2} ms \
                 {snapshot:>8.2} ms {:>8.2}× {:>8.2}× {:>8.2}×",
                process / none,
                power / none,
                snapshot / none
            );
        }
    }
}
