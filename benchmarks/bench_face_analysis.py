"""What the shared face analysis saves, and how long the CLI's instant commands take.

    python benchmarks/bench_face_analysis.py [--method wiener] [--limit 72] [--rounds 2]
                                             [--readme] [--json OUT]

Face metrics (one process, one run): ``evaluate()`` of ``--method`` on the demo split with

- ``psnr`` alone (the floor: decode, restore, store),
- ``psnr,identity-dlib``,
- ``psnr`` + the five face metrics (``detection-rate``, ``identity-dlib``, ``identity-kept-dlib``,
  ``verification-dlib``, ``identity-consistency-dlib``) with the face analysis shared (the
  default) and with sharing switched off (``RunConfig(share_face_analysis=False)``: every metric
  computes its own detections, landmarks and descriptors — the same values),

each in a fresh results folder (ground-truth side computed in every configuration), the
configurations interleaved over ``--rounds`` rounds in rotating order and the median taken, so
load from other processes hits all of them alike. Printed ratios are of costs above ``psnr``
alone: ``(T(config) - T(psnr)) / (T(psnr,identity-dlib) - T(psnr))``. ``uptime``'s load average
is recorded beside every figure: on a shared machine absolute times are inflated, ratios
measured in one run are what to compare.

CLI (subprocess wall times, median of 3): ``--help``, the listings, a mistyped method, against
``python -c pass`` and ``python -c "import torch"``. ``--readme`` also times the README's first
command (``faceblur-bench run``, every baseline x every default metric) once.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FACE = ("detection-rate", "identity-dlib", "identity-kept-dlib", "verification-dlib",
        "identity-consistency-dlib")
CONFIGS = {
    "psnr": (("psnr",), True),
    "identity-dlib": (("psnr", "identity-dlib"), True),
    "five-shared": (("psnr", *FACE), True),
    "five-unshared": (("psnr", *FACE), False),
}
CLI = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "python -c 'import torch'": [sys.executable, "-c", "import torch"],
    "--help": ["--help"],
    "methods": ["methods"],
    "metrics": ["metrics"],
    "splits": ["splits"],
    "weights": ["weights"],
    "run --method wienr (typo)": ["run", "--method", "wienr"],
}


def load() -> str:
    """``uptime``'s load averages (1, 5, 15 min)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def time_config(name: str, method: str, limit: int, root: Path) -> dict:
    from faceblur_bench.engine import RunConfig, evaluate

    metrics, shared = CONFIGS[name]
    before = load()
    t = time.perf_counter()
    s = evaluate(RunConfig(method=method, split="demo", metrics=list(metrics), limit=limit,
                           results_dir=root, device="cpu", reference_cache=False,
                           share_face_analysis=shared))
    wall = time.perf_counter() - t
    return {"config": name, "wall_s": round(wall, 3),
            "metrics_s": round(s["timings"]["metrics_s"], 3), "load_before": before,
            "load_after": load()}


def time_cli(argv: list[str], repeats: int = 3) -> dict:
    cmd = argv if argv[0] == sys.executable else [sys.executable, "-m", "faceblur_bench", *argv]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    walls, rc, lo = [], None, load()
    for _ in range(repeats):
        t = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, env=env, check=False)
        walls.append(time.perf_counter() - t)
        rc = r.returncode
    return {"wall_s": round(statistics.median(walls), 3), "exit": rc, "load_before": lo}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--method", default="wiener")
    ap.add_argument("--limit", type=int, default=72)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--readme", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from faceblur_bench.data.base import default_data_root
    from faceblur_bench.engine import open_split

    open_split("demo", default_data_root()).samples()  # built before any timing
    out: dict = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                             "platform": platform.platform()},
                 "method": args.method, "images": args.limit, "rounds": args.rounds,
                 "face_metrics": {}, "cli": {}}
    names = list(CONFIGS)
    runs: dict[str, list[dict]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        # warm-up: imports and network files read once before anything is timed
        time_config("five-shared", args.method, 2, Path(tmp) / "warm")
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for n in order:
                rec = time_config(n, args.method, args.limit, Path(tmp) / f"{n}-{r}")
                runs[n].append(rec)
                print(f"round {r} {n:14s} wall {rec['wall_s']:7.2f} s  metrics {rec['metrics_s']:7.2f} s"
                      f"  load {rec['load_before']}", flush=True)
    med = {n: {k: statistics.median(x[k] for x in runs[n]) for k in ("wall_s", "metrics_s")}
           for n in names}
    floor = med["psnr"]["wall_s"]
    ident = med["identity-dlib"]["wall_s"] - floor
    ratios = {n: round((med[n]["wall_s"] - floor) / ident, 3) for n in ("five-shared", "five-unshared")}
    ratios["unshared/shared (metric time)"] = round(
        med["five-unshared"]["metrics_s"] / med["five-shared"]["metrics_s"], 3)
    # the same ratios within each round (its configurations ran minutes apart, not a round
    # apart: less exposed to load that changes over the run), then their median
    per_round = []
    for r in range(args.rounds):
        w = {n: runs[n][r]["wall_s"] for n in names}
        m = {n: runs[n][r]["metrics_s"] for n in names}
        base = w["identity-dlib"] - w["psnr"]
        per_round.append({"five-shared": round((w["five-shared"] - w["psnr"]) / base, 3),
                          "five-unshared": round((w["five-unshared"] - w["psnr"]) / base, 3),
                          "unshared/shared (metric time)": round(m["five-unshared"] / m["five-shared"], 3)})
    ratios["per_round"] = per_round
    ratios["median_of_rounds"] = {k: statistics.median(p[k] for p in per_round) for k in per_round[0]}
    out["face_metrics"] = {"runs": runs, "median": med, "ratio_above_psnr_vs_identity_dlib": ratios}
    print(f"\nmedian over {args.rounds} rounds ({args.limit} images, {args.method}):")
    for n in names:
        print(f"  {n:14s} wall {med[n]['wall_s']:7.2f} s   metrics {med[n]['metrics_s']:7.2f} s")
    print(f"five face metrics vs identity-dlib alone, above psnr: shared {ratios['five-shared']}x, "
          f"unshared {ratios['five-unshared']}x; unshared/shared metric time "
          f"{ratios['unshared/shared (metric time)']}x")
    print(f"median of per-round ratios: {ratios['median_of_rounds']}")

    print("\nCLI wall times (median of 3):")
    for label, argv in CLI.items():
        rec = time_cli(argv)
        out["cli"][label] = rec
        print(f"  {label:28s} {rec['wall_s']:6.2f} s  exit {rec['exit']}  load {rec['load_before']}",
              flush=True)
    if args.readme:
        with tempfile.TemporaryDirectory() as tmp:
            lo = load()
            t = time.perf_counter()
            r = subprocess.run([sys.executable, "-m", "faceblur_bench", "run", "--out", f"{tmp}/results",
                                "--leaderboard", f"{tmp}/lb.md"], capture_output=True, check=False,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
            wall = time.perf_counter() - t
        out["readme_first_command"] = {"wall_s": round(wall, 2), "exit": r.returncode,
                                       "load_before": lo, "load_after": load()}
        print(f"\nREADME first command: {wall:.1f} s (exit {r.returncode}), load {lo} -> {load()}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
