"""What the face metrics cost, before and after this tree's speed-ups, measured in one run.

    python benchmarks/bench_face_analysis.py [--method wiener] [--limit 72] [--rounds 2]
                                             [--configs face|gt] [--env KEY=VALUE ...]
                                             [--readme] [--cli] [--baseline-tree DIR] [--json OUT]

Every configuration is one ``evaluate()`` of ``--method`` on the demo split in its own fresh
Python process (fresh results folder, ground-truth side computed in every configuration):

- ``psnr`` alone (the floor: decode, restore, store),
- ``psnr,identity-dlib``,
- ``psnr`` + the five face metrics (``detection-rate``, ``identity-dlib``, ``identity-kept-dlib``,
  ``verification-dlib``, ``identity-consistency-dlib``), face analysis shared,

or with ``--configs gt`` (the ground-truth side and the luma, shared per image since issue #29):
``psnr`` alone; ``psnr,psnr-y,ssim-y,identity-dlib,lmd-dlib``; every default metric of ``run``
(those whose weights are absent are n/a and cost their setup only),

each under two settings of the same code, so before and after are measured side by side:

- **before**: OpenMP threads spin-wait (``GOMP_SPINCOUNT=300000``, libgomp's default) and dlib
  descriptors are computed in the scoring process (``FACEBLUR_DLIB_WORKERS=0``) — as the harness
  ran before; with ``--baseline-tree DIR`` (e.g. a checkout of the previous commit) that tree's
  code runs instead, with its own defaults;
- **after**: this tree's defaults (passive OpenMP wait, descriptor batches shared out over
  worker processes where there are cores for them).

Configurations are interleaved over ``--rounds`` rounds in rotating order and medians taken,
so load from other processes hits all of them alike. Ratios are of costs above ``psnr`` alone:
``(T(five) - T(psnr)) / (T(identity-dlib) - T(psnr))``, within one setting. Every configuration's
per-image values are hashed: before and after must hash the same (the speed-ups change no bit),
which the script checks. ``--readme`` also times the README's first command (``faceblur-bench
run``: every baseline x every default metric) once per setting and compares its stored values.
``--cli`` times ``--help``, the listings and a mistyped method (median of 3 subprocesses).
Beside each wall time: the CPU seconds of the process and its workers (less exposed to load
than wall time; spin-waiting counts, as it is CPU the run burns). And the number of images MTCNN ran on
and its seconds (its ``detect`` wrapped in the child: what sharing the ground truth's detections saves). ``uptime``'s load average is recorded beside every figure: the machine is shared, so absolute
times are inflated by other work and ratios measured in one run are what to compare.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FACE = ("detection-rate", "identity-dlib", "identity-kept-dlib", "verification-dlib",
        "identity-consistency-dlib")
CONFIG_SETS = {
    "face": {"psnr": ("psnr",), "identity-dlib": ("psnr", "identity-dlib"), "five": ("psnr", *FACE)},
    "gt": {"psnr": ("psnr",), "luma-dlib-lmd": ("psnr", "psnr-y", "ssim-y", "identity-dlib", "lmd-dlib"),
           "default": ("default",)},
}
CONFIGS = CONFIG_SETS["face"]
SETTINGS = ("before", "after")
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
#: environment of the "before" setting on this tree (libgomp's default spin count, no workers)
BEFORE_ENV = {"GOMP_SPINCOUNT": "300000", "FACEBLUR_DLIB_WORKERS": "0"}
#: ``--env KEY=VALUE``: set in both settings' processes (e.g. ``FACEBLUR_DLIB_WORKERS=0``)
EXTRA_ENV: dict[str, str] = {}

# one configuration, run in a child process: prints one JSON line
_CHILD = r"""
import hashlib, json, sys, time
from pathlib import Path
from faceblur_bench.engine import RunConfig, evaluate
from faceblur_bench.results import read_features, read_rows
from faceblur_bench.nets.align import MTCNNDetector
detect, mtcnn = MTCNNDetector.detect, {"images": 0, "s": 0.0}
def counted(self, images):  # images MTCNN runs on, and its time (same in both trees' code)
    t0 = time.perf_counter()
    out = detect(self, images)
    mtcnn["images"] += len(out)
    mtcnn["s"] += time.perf_counter() - t0
    return out
MTCNNDetector.detect = counted
method, limit, root, metrics = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4].split(",")
if metrics == ["default"]:  # run's metric set without --metrics
    from faceblur_bench.engine.run import default_metric_names
    metrics = default_metric_names("demo")
t = time.perf_counter()
s = evaluate(RunConfig(method=method, split="demo", metrics=metrics, limit=limit, results_dir=root,
                       device="cpu", reference_cache=False))
wall = time.perf_counter() - t
run = Path(s["run_dir"])
rows = sorted(read_rows(run / "rows.jsonl"), key=lambda r: r["id"])
h = hashlib.sha256(json.dumps([[r["id"], r["metrics"]] for r in rows], sort_keys=True).encode())
if "verification-dlib" in metrics:
    h.update(read_features(run, "verification-dlib", [r["id"] for r in rows]).tobytes())
print(json.dumps({"wall_s": round(wall, 3), "metrics_s": round(s["timings"]["metrics_s"], 3),
                  "values_sha256": h.hexdigest()[:16], "mtcnn_images": mtcnn["images"],
                  "mtcnn_s": round(mtcnn["s"], 3)}))
"""


def load() -> str:
    """``uptime``'s load averages (1, 5, 15 min)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes so far (theirs included)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def setting_env(setting: str, baseline_tree: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "FACEBLUR_DLIB_WORKERS")}
    tree = ROOT
    if setting == "before":
        if baseline_tree is None:
            env.update(BEFORE_ENV)
        else:
            tree = baseline_tree
    env["PYTHONPATH"] = str(tree)
    env.update(EXTRA_ENV)  # --env: the same for both settings
    return env


def child_cwd(env: dict[str, str]) -> str:
    """The working directory of a setting's child: its tree (``python -c``/``-m`` put the working
    directory before ``PYTHONPATH`` on ``sys.path``, so run from this checkout a baseline child
    would import this tree's code)."""
    return env["PYTHONPATH"]


def time_config(name: str, setting: str, args: argparse.Namespace, root: Path) -> dict:
    before, cpu = load(), children_cpu()
    env = setting_env(setting, args.baseline_tree)
    r = subprocess.run([sys.executable, "-c", _CHILD, args.method, str(args.limit), str(root),
                        ",".join(CONFIGS[name])], capture_output=True, text=True, check=False,
                       env=env, cwd=child_cwd(env))
    if r.returncode != 0:
        raise SystemExit(f"{name}/{setting} failed:\n{r.stderr[-3000:]}")
    rec = json.loads(r.stdout.strip().splitlines()[-1])
    return {"config": name, "setting": setting, **rec, "cpu_s": round(children_cpu() - cpu, 2),
            "load_before": before, "load_after": load()}


def readme_command(setting: str, args: argparse.Namespace) -> dict:
    """The README's first command (``faceblur-bench run``) once, with a hash of its values."""
    env = setting_env(setting, args.baseline_tree)
    with tempfile.TemporaryDirectory() as tmp:
        lo, cpu = load(), children_cpu()
        t = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "faceblur_bench", "run", "--out", f"{tmp}/results",
                            "--leaderboard", f"{tmp}/lb.md"], capture_output=True, check=False,
                           env=env, cwd=child_cwd(env))
        wall, cpu = time.perf_counter() - t, children_cpu() - cpu
        h = hashlib.sha256()
        for f in sorted(Path(tmp, "results").rglob("rows.jsonl")):
            rows = sorted((json.loads(line) for line in f.read_text().splitlines() if line.strip()),
                          key=lambda row: row["id"])
            h.update(json.dumps([f.parent.name, [[row["id"], row["metrics"]] for row in rows]],
                                sort_keys=True).encode())
    return {"setting": setting, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "exit": r.returncode,
            "values_sha256": h.hexdigest()[:16], "load_before": lo, "load_after": load()}


def time_cli(argv: list[str], repeats: int = 3) -> dict:
    """Median wall time of a CLI command (subprocess) over ``repeats``."""
    cmd = argv if argv[0] == sys.executable else [sys.executable, "-m", "faceblur_bench", *argv]
    walls, rc, lo = [], None, load()
    for _ in range(repeats):
        t = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, env=setting_env("after", None), check=False)
        walls.append(time.perf_counter() - t)
        rc = r.returncode
    return {"wall_s": round(statistics.median(walls), 3), "exit": rc, "load_before": lo}


def ratios(w: dict[str, float]) -> float:
    """Five face metrics vs identity-dlib alone, both above psnr alone."""
    return round((w["five"] - w["psnr"]) / (w["identity-dlib"] - w["psnr"]), 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--method", default="wiener")
    ap.add_argument("--limit", type=int, default=72)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--readme", action="store_true")
    ap.add_argument("--cli", action="store_true", help="also time --help, the listings and a typo")
    ap.add_argument("--baseline-tree", type=Path, help="code of the 'before' setting (default: "
                    "this tree with the previous thread and worker settings)")
    ap.add_argument("--configs", choices=sorted(CONFIG_SETS), default="face",
                    help="which metric sets to time (default: face)")
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                    help="environment variable set for both settings (repeatable)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    global CONFIGS
    CONFIGS = CONFIG_SETS[args.configs]
    EXTRA_ENV.update(kv.split("=", 1) for kv in args.env)

    subprocess.run([sys.executable, "-c", "from faceblur_bench.data.base import default_data_root;"
                    "from faceblur_bench.engine import open_split;"
                    "open_split('demo', default_data_root()).samples()"],
                   check=True, env=setting_env("after", None))  # the demo split, built untimed
    out: dict = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                             "platform": platform.platform()},
                 "method": args.method, "images": args.limit, "rounds": args.rounds,
                 "configs": {n: list(m) for n, m in CONFIGS.items()}, "env": EXTRA_ENV,
                 "before": (f"code of {args.baseline_tree}" if args.baseline_tree else
                            f"this tree with {BEFORE_ENV}"), "after": "this tree, defaults"}
    jobs = [(n, s) for s in SETTINGS for n in CONFIGS]
    runs: dict[tuple[str, str], list[dict]] = {j: [] for j in jobs}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = jobs[r % len(jobs):] + jobs[:r % len(jobs)]
            for n, s in order:
                rec = time_config(n, s, args, Path(tmp) / f"{n}-{s}-{r}")
                runs[n, s].append(rec)
                print(f"round {r} {s:6s} {n:13s} wall {rec['wall_s']:7.2f} s  metrics "
                      f"{rec['metrics_s']:7.2f} s  cpu {rec['cpu_s']:7.2f} s  MTCNN {rec['mtcnn_images']} images "
                      f"{rec['mtcnn_s']:5.2f} s  values {rec['values_sha256']}  load "
                      f"{rec['load_before']}", flush=True)
    med = {s: {n: statistics.median(x["wall_s"] for x in runs[n, s]) for n in CONFIGS}
           for s in SETTINGS}
    same = {n: len({x["values_sha256"] for s in SETTINGS for x in runs[n, s]}) == 1 for n in CONFIGS}
    summary = {
        "median_wall_s": med,
        "median_metrics_s": {s: {n: statistics.median(x["metrics_s"] for x in runs[n, s]) for n in CONFIGS}
                             for s in SETTINGS},
        "median_cpu_s": {s: {n: statistics.median(x["cpu_s"] for x in runs[n, s]) for n in CONFIGS}
                         for s in SETTINGS},
        "mtcnn_images": {s: {n: runs[n, s][0]["mtcnn_images"] for n in CONFIGS} for s in SETTINGS},
        "median_mtcnn_s": {s: {n: statistics.median(x["mtcnn_s"] for x in runs[n, s]) for n in CONFIGS}
                           for s in SETTINGS},
        "speedup_before_over_after": {n: round(med["before"][n] / med["after"][n], 3) for n in CONFIGS},
        "values_identical_before_after": same,
    }
    if args.configs == "face":
        summary["five_vs_identity_dlib_above_psnr"] = {s: ratios(med[s]) for s in SETTINGS}
        summary["five_vs_identity_dlib_per_round"] = [
            {s: ratios({n: runs[n, s][r]["wall_s"] for n in CONFIGS}) for s in SETTINGS}
            for r in range(args.rounds)]
    out["face_metrics"] = {"runs": {f"{n}/{s}": runs[n, s] for n, s in jobs}, **summary}
    print(f"\nmedian wall over {args.rounds} rounds ({args.limit} images, {args.method}):")
    for n in CONFIGS:
        print(f"  {n:13s} before {med['before'][n]:7.2f} s   after {med['after'][n]:7.2f} s   "
              f"x{summary['speedup_before_over_after'][n]}  (metrics "
              f"{summary['median_metrics_s']['before'][n]:.2f} -> {summary['median_metrics_s']['after'][n]:.2f} s)"
              f"  cpu {summary['median_cpu_s']['before'][n]:.2f} -> {summary['median_cpu_s']['after'][n]:.2f} s"
              f"  MTCNN {summary['mtcnn_images']['before'][n]} -> {summary['mtcnn_images']['after'][n]} images"
              f"  values identical: {same[n]}")
    if args.configs == "face":
        print(f"five face metrics vs identity-dlib alone (above psnr): before "
              f"{summary['five_vs_identity_dlib_above_psnr']['before']}x, after "
              f"{summary['five_vs_identity_dlib_above_psnr']['after']}x; per round "
              f"{summary['five_vs_identity_dlib_per_round']}")
    if args.readme:
        rd = {s: readme_command(s, args) for s in SETTINGS}
        rd["values_identical_before_after"] = rd["before"]["values_sha256"] == rd["after"]["values_sha256"]
        out["readme_first_command"] = rd
        for s in SETTINGS:
            print(f"README first command, {s:6s}: {rd[s]['wall_s']:.1f} s wall, {rd[s]['cpu_s']:.1f} s "
                  f"CPU (exit {rd[s]['exit']}), "
                  f"values {rd[s]['values_sha256']}, load {rd[s]['load_before']} -> {rd[s]['load_after']}")
    if args.cli:
        out["cli"] = {}
        print("\nCLI wall times (median of 3):")
        for label, argv in CLI.items():
            rec = out["cli"][label] = time_cli(argv)
            print(f"  {label:28s} {rec['wall_s']:6.2f} s  exit {rec['exit']}  load {rec['load_before']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    if not all(same.values()) or (args.readme and not out["readme_first_command"]
                                  ["values_identical_before_after"]):
        raise SystemExit("values differ between before and after")


if __name__ == "__main__":
    main()
