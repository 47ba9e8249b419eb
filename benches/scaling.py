#!/usr/bin/env python3
"""Scaling curves: what persistence costs against size, on 1 and 2 threads.

    make bench-scaling          # = .venv/bin/python benches/scaling.py (sets up matplotlib)

1. The simulation (`examples/sim`, release), 10k -> 10M particles in 4 clouds, uncompressed and
   deflate-1, `--threads 1` and `2`: mean tick time (the flush included), flush p50, flush
   throughput (array bytes before compression per second of flush) and the flush's share of
   the tick.
2. The ECS bridge (`cargo bench --bench ecs`, profile `reload`), 1k -> 1M entities x 3 table
   components, `RAYON_NUM_THREADS=1` and `2`: snapshot and reload in M entities/s.

Prints both as Markdown tables (for BENCHMARKS.md) and draws them in `scaling.png` (or the path
given with --png). Sizes: --particles 10000,100000,1000000,10000000 and
--entities 1000,10000,100000,1000000; --ticks per sim run (default 5). Run it on an idle
machine: it says the load average before and after.
"""

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_average():
    return os.getloadavg()[0]


def target_dir():
    return Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))


def number(pattern, text, what):
    m = re.search(pattern, text)
    if not m:
        sys.exit(f"scaling: no {what} in the output:\n{text}")
    return float(m.group(1))


def sim_run(sim, particles, threads, codec, ticks, out):
    cmd = [
        str(sim), "--quiet", "--particles", str(particles), "--clouds", "4",
        "--ticks", str(ticks), "--threads", str(threads), "--compression", codec,
        "--out", str(out),
    ]
    text = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    for p in [out, Path(f"{out}.a"), Path(f"{out}.b")]:
        p.unlink(missing_ok=True)
    total = number(r"tick time\s+([\d.]+) ms total", text, "tick time")
    return {
        "tick_ms": total / ticks,
        "flush_p50_ms": number(r"flush time\s+p50 ([\d.]+) ms", text, "flush p50"),
        "mib_s": number(r"flush throughput\s+([\d.]+) MiB/s", text, "flush throughput"),
        "share": number(r"flush share\s+([\d.]+) %", text, "flush share"),
    }


def ecs_run(entities, threads):
    env = dict(os.environ, H5POM_BENCH_PROFILE="reload", H5POM_BENCH_N=str(entities),
               RAYON_NUM_THREADS=str(threads))
    text = subprocess.run(
        ["cargo", "bench", "--quiet", "--bench", "ecs"], cwd=ROOT, env=env, check=True,
        capture_output=True, text=True,
    ).stdout
    return {
        "snapshot": number(r"snapshot .*?\(\s*([\d.]+) M entities/s\)", text, "snapshot rate"),
        "reload": number(r"reload .*?\(\s*([\d.]+) M entities/s\)", text, "reload rate"),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--particles", default="10000,100000,1000000,10000000")
    ap.add_argument("--entities", default="1000,10000,100000,1000000")
    ap.add_argument("--ticks", type=int, default=5)
    ap.add_argument("--png", default="scaling.png")
    args = ap.parse_args()
    particles = [int(s) for s in args.particles.split(",")]
    entities = [int(s) for s in args.entities.split(",")]

    subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "sim"], cwd=ROOT,
                   check=True)
    subprocess.run(["cargo", "bench", "--quiet", "--bench", "ecs", "--no-run"], cwd=ROOT,
                   check=True)
    sim = target_dir() / "release" / "examples" / "sim"
    print(f"load average before: {load_average():.2f}")

    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"h5pom-scaling-{os.getpid()}.h5"
    rows = []
    for n in particles:
        for threads in (1, 2):
            for codec in ("none", "deflate:1"):
                r = sim_run(sim, n, threads, codec, args.ticks, out)
                rows.append((n, threads, codec, r))
                print(f"sim {n} particles, {threads} thr, {codec}: {r}", file=sys.stderr)
    ecs = []
    for n in entities:
        for threads in (1, 2):
            r = ecs_run(n, threads)
            ecs.append((n, threads, r))
            print(f"ecs {n} entities, {threads} thr: {r}", file=sys.stderr)
    print(f"load average after: {load_average():.2f}")

    print("\n| particles | threads | codec | tick (ms) | flush p50 (ms) | flush MiB/s | flush share |")
    print("| ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    for n, t, c, r in rows:
        print(f"| {n:,} | {t} | {c} | {r['tick_ms']:.1f} | {r['flush_p50_ms']:.2f} | "
              f"{r['mib_s']:.0f} | {r['share']:.1f} % |")
    print("\n| entities | threads | snapshot (M entities/s) | reload (M entities/s) |")
    print("| ---: | ---: | ---: | ---: |")
    for n, t, r in ecs:
        print(f"| {n:,} | {t} | {r['snapshot']:.2f} | {r['reload']:.2f} |")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(16, 4.5))
    for threads in (1, 2):
        for codec, style in (("none", "-"), ("deflate:1", "--")):
            sel = [(n, r) for n, t, cc, r in rows if t == threads and cc == codec]
            xs = [n for n, _ in sel]
            a.plot(xs, [r["mib_s"] for _, r in sel], style, marker="o",
                   label=f"{codec}, {threads} thr")
            b.plot(xs, [r["share"] for _, r in sel], style, marker="o",
                   label=f"{codec}, {threads} thr")
    for ax, title, unit in ((a, "flush throughput", "MiB/s (before compression)"),
                            (b, "flush share of the tick", "%")):
        ax.set_xscale("log")
        ax.set_xlabel("particles")
        ax.set_ylabel(unit)
        ax.set_title(f"sim: {title}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    for threads in (1, 2):
        sel = [(n, r) for n, t, r in ecs if t == threads]
        xs = [n for n, _ in sel]
        c.plot(xs, [r["snapshot"] for _, r in sel], "-", marker="o", label=f"snapshot, {threads} thr")
        c.plot(xs, [r["reload"] for _, r in sel], "--", marker="o", label=f"reload, {threads} thr")
    c.set_xscale("log")
    c.set_xlabel("entities (x 3 table components)")
    c.set_ylabel("M entities/s")
    c.set_title("ECS: snapshot and reload")
    c.grid(True, which="both", alpha=0.3)
    c.legend()
    fig.tight_layout()
    fig.savefig(args.png, dpi=110)
    print(f"\nwrote {args.png}")


if __name__ == "__main__":
    main()
