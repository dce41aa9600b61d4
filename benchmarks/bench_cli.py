"""How long the CLI's instant commands take: listings, ``--help``, typos with "did you mean",
bad option values (usage errors, exit 2).

    python benchmarks/bench_cli.py [--repeats 5] [--baseline DIR [--baseline-label TEXT]]
                                   [--json OUT]

Every command is a fresh ``python -m faceblur_bench ...`` subprocess (what a user waits for);
its wall time is the median of ``--repeats`` runs. The commands and the two references —
``python -c pass`` (interpreter start) and ``python -c "import torch"`` (what a command pays
for importing torch alone) — are timed in the same run, interleaved (each repeat visits them in
a rotated order), so load from other processes falls on all of them alike; the printed ratios
(command / ``import torch``; with ``--baseline``, this tree / the baseline tree) are what to
compare across machines, absolute times are inflated on a shared one. ``uptime``'s load average
is recorded beside every figure.

``--baseline DIR``: a checkout of the package before a change (e.g. ``git archive main | tar -x
-C DIR``); every command is then also timed with ``PYTHONPATH=DIR`` in the same run.

Each command is also run once under ``python -X importtime`` to record whether it imports torch
(the target: none of these does, and each answers in at most 1 s on an idle 2-core machine).
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
TARGET_S = 1.0

REFERENCES = {
    "python -c pass": ["-c", "pass"],
    "python -c 'import torch'": ["-c", "import torch"],
}
#: label -> faceblur-bench arguments (listings, help, typos, bad values; every one should answer
#: at once)
COMMANDS = {
    "--help": ["--help"],
    "run --help": ["run", "--help"],
    "train --help": ["train", "--help"],
    "train cfmd --help": ["train", "cfmd", "--help"],
    "methods": ["methods"],
    "methods wiener": ["methods", "wiener"],
    "metrics": ["metrics"],
    "splits": ["splits"],
    "data status": ["data", "status"],
    "weights --no-hash": ["weights", "--no-hash"],
    "train presets": ["train", "presets"],
    "runs (empty results)": ["runs", "--results", "{tmp}"],
    "run --method sapgan (typo)": ["run", "--method", "sapgan"],
    "run --metrics psnrr (typo)": ["run", "-m", "blurred", "--metrics", "psnrr"],
    "run --split demoo (typo)": ["run", "-m", "blurred", "--split", "demoo"],
    "run --option balanse (typo)": ["run", "-m", "wiener", "--option", "balanse=0.1"],
    "run --metrix (option typo)": ["run", "-m", "blurred", "--metrix", "psnr"],
    "methods sapgan (typo)": ["methods", "sapgan"],
    "train presets shne (typo)": ["train", "presets", "shne"],
    # bad option values (issue 29): answered from static records before torch, like names
    "run --device cudda (bad value)": ["run", "-m", "wiener", "--device", "cudda"],
    "run --option balance=abc (bad value)": ["run", "-m", "wiener", "--option", "balance=abc"],
    "run --protocol paperr (bad value)": ["run", "-m", "wiener", "--protocol", "paperr"],
    "run --protocol s2v (unfit method)": ["run", "-m", "wiener", "--protocol", "s2v"],
    "run --weights nonexist.pth (not NAME=PATH)": ["run", "-m", "sappgan", "--weights", "nonexist.pth"],
    "runtime --dtype fp3 (bad value)": ["runtime", "-m", "wiener", "--dtype", "fp3"],
    "table --methods wienr (typo)": ["table", "--split", "demo", "--methods", "wienr", "--results", "{tmp}"],
    "figure --split demoo (typo)": ["figure", "--split", "demoo", "--methods", "wiener", "--results", "{tmp}"],
    "plot --metric psnrr (typo)": ["plot", "--split", "demo", "--metric", "psnrr", "--results", "{tmp}"],
    "make-split --protocol msp (typo)": ["make-split", "--sharp", "{tmp}", "--protocol", "msp", "--out", "{tmp}/o"],
    "data verify demoo (typo)": ["data", "verify", "demoo"],
    "train cfmd --preset nop (typo)": ["train", "cfmd", "--data-root", "{tmp}", "--out", "{tmp}/t", "--preset", "nop"],
    "train wienr (a method's typo)": ["train", "wienr"],
}


def load() -> str:
    """``uptime``'s load averages (1, 5, 15 min)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def argv_of(label: str, tmp: str) -> list[str]:
    if label in REFERENCES:
        return [sys.executable, *REFERENCES[label]]
    return [sys.executable, "-m", "faceblur_bench", *(a.format(tmp=tmp) for a in COMMANDS[label])]


def env_for(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree), "COLUMNS": "120"}


#: working directory of every subprocess: ``python -m`` puts it first on ``sys.path``, so it
#: must hold no package tree (the tree timed is the one on PYTHONPATH)
NEUTRAL_CWD = tempfile.gettempdir()


def once(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    t = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, env=env, cwd=NEUTRAL_CWD, check=False)
    return time.perf_counter() - t, r.returncode


def imports_torch(argv: list[str], env: dict[str, str]) -> bool:
    r = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], capture_output=True, text=True,
                       env=env, cwd=NEUTRAL_CWD, check=False)
    # lines "import time: self | cumulative | <indent>module": torch at any nesting depth
    return any(line.startswith("import time:") and line.rsplit("|", 1)[-1].strip() == "torch"
               for line in r.stderr.splitlines())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--baseline", type=Path, help="package tree to compare with (PYTHONPATH)")
    ap.add_argument("--baseline-label", help="what the baseline tree is (e.g. its commit), recorded")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "cli_cpu.json")
    args = ap.parse_args()

    trees = {"this": ROOT} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
    jobs = [(label, "this") for label in REFERENCES] + \
        [(label, tree) for label in COMMANDS for tree in trees]
    walls: dict[tuple[str, str], list[float]] = {j: [] for j in jobs}
    codes: dict[tuple[str, str], int] = {}
    loads: list[str] = [load()]
    with tempfile.TemporaryDirectory() as tmp:
        for j in jobs:  # warm-up: file caches, .pyc files
            once(argv_of(j[0], tmp), env_for(trees[j[1]]))
        for r in range(args.repeats):
            for j in jobs[r % len(jobs):] + jobs[:r % len(jobs)]:
                wall, codes[j] = once(argv_of(j[0], tmp), env_for(trees[j[1]]))
                walls[j].append(wall)
            loads.append(load())
            print(f"repeat {r + 1}/{args.repeats} done, load {loads[-1]}", flush=True)
        torch_imported = {j: imports_torch(argv_of(j[0], tmp), env_for(trees[j[1]]))
                          for j in jobs if j[0] in COMMANDS}

    med = {j: statistics.median(w) for j, w in walls.items()}
    torch_s = med[("python -c 'import torch'", "this")]
    rows = []
    print(f"\nmedian wall of {args.repeats} runs; ratio = command / `import torch` ({torch_s:.2f} s)")
    for label in REFERENCES:
        print(f"  {label:44s} {med[(label, 'this')]:6.2f} s")
    for label in COMMANDS:
        rec = {"command": label, "argv": COMMANDS[label]}
        line = f"  {label:44s}"
        for tree in trees:
            j = (label, tree)
            rec[tree] = {"wall_s": round(med[j], 3), "walls_s": [round(w, 3) for w in walls[j]],
                         "exit": codes[j], "imports_torch": torch_imported[j],
                         "ratio_to_import_torch": round(med[j] / torch_s, 3)}
            line += (f" {tree} {med[j]:5.2f} s ({med[j] / torch_s:4.2f}x torch, exit {codes[j]}"
                     f"{', imports torch' if torch_imported[j] else ''})")
        if "baseline" in trees:
            rec["this_over_baseline"] = round(med[(label, "this")] / med[(label, "baseline")], 3)
            line += f"  this/baseline {rec['this_over_baseline']:.2f}"
        rows.append(rec)
        print(line)
    worst = max(med[(label, "this")] for label in COMMANDS)
    print(f"\nslowest command {worst:.2f} s (target {TARGET_S:.0f} s); "
          f"{sum(r['this']['imports_torch'] for r in rows)} of {len(rows)} import torch")
    out = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                       "platform": platform.platform()},
           "repeats": args.repeats, "loads": loads, "target_s": TARGET_S,
           "references": {label: {"wall_s": round(med[(label, "this")], 3),
                                  "walls_s": [round(w, 3) for w in walls[(label, "this")]]}
                          for label in REFERENCES},
           "baseline": str(args.baseline) if args.baseline else None,
           "baseline_label": args.baseline_label,
           "commands": rows, "slowest_s": round(worst, 3)}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
