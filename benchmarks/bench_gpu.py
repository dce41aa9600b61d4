"""One prepared GPU benchmark of the whole flow: synthesise an MSPL-Center-sized split, then time
``run`` (full default metric suite), every learned method's ``restore()``, ``score``, every
trainer's ``train_step`` and the sharded (torchrun / NCCL) run, writing one JSON of images/s.

    python benchmarks/bench_gpu.py --device cuda                       # 19,200 images (3 x 80 x 80)
    python benchmarks/bench_gpu.py --device cpu --images 64 --quick    # every code path, CPU, ~2 min

Parts (each isolated: a part that fails records ``{"status": "error", "error": ...}`` and the
others go on; a part that cannot run here records ``{"status": "skipped", "reason": ...}``):

1. ``synthesis`` — sharp 128x128 faces (``--faces DIR``, default the demo split's sharp faces)
   tiled with flips / shifts / brightness steps to ``ceil(images / 80)`` faces, spread over the
   three MSPL subsets, blurred by :func:`faceblur_bench.data.synth.make_split` (``make-split``;
   on CUDA its batched FFT path) with the 80 kernels of each subset. **Synthetic data**: the
   split carries ``make_split.json`` and every run on it records ``data_origin.kind =
   "synthesised"``; it is never the official MSPL release, and no quality number is read from it.
2. ``run_suite`` — ``faceblur-bench run --method wiener`` (``--baseline``) on that split with the
   full default metric suite, ``--limit images``: wall time, images/s, and the 60 s target.
3. ``inference`` — each learned method (``faceblur-bench methods``: those with a network) built
   with random-init weights (:meth:`Method.init_untrained`, the paper-size network; ``--tiny``:
   the contract tests' small one) and timed through ``restore()`` by
   :func:`~faceblur_bench.metrics.runtime.measure_runtime` at batch 16 (``--quick`` on CPU:
   batch 1), fp32 and bf16 autocast (bf16 on CUDA only). Speed only.
4. ``score`` — ``faceblur-bench score`` of the blurred folder against the ground truth with the
   same metric list: images/s.
5. ``train`` — every registered trainer: its own dataset (``write_smoke_data``) and the same
   ``train_step`` the training loop calls, under the loop's bf16 autocast on CUDA; perceptual
   feature networks are format-faithful random files (VGGFace16, vgg-face-dag, VGG-19, AlexNet)
   written here. images/s per trainer (median step). Speed only.
6. ``sharded_run`` — the run of part 2 through torchrun with one rank per GPU (``--nproc N``;
   ``N = 1`` or CPU: ``torchrun --nproc-per-node 1`` started directly, since ``--nproc 1`` does
   not launch torchrun); ``nccl_speedup`` — N >= 2 GPUs: N ranks against one (skipped otherwise,
   with the reason).

Weights are random everywhere a network is timed: the JSON holds speeds, never a quality number.
Output: ``--json`` (default ``benchmarks/results/gpu_<device>.json``), written after every part.

Device call (the ``run`` tool; cwd = repository root, ``$OUT`` = the folder that comes back).
First, on the CPU machine: ``python benchmarks/bench_gpu.py --prepare .bench-gpu`` (copies the
demo split's sharp faces and downloads the cp312 wheels the image lacks into the ignored folder
``.bench-gpu/``; name it in ``carry``). Then, as ONE command, ``carry=[".bench-gpu"]``,
``timeout_s=540``::

    set -o pipefail; python3 -m pip install -q --no-index --no-deps --target /tmp/site .bench-gpu/wheels/*.whl; export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 FACEBLUR_WEIGHTS=$PWD/.bench-gpu/weights; nvidia-smi -L; python3 benchmarks/bench_gpu.py --device cuda --faces .bench-gpu/faces --work /tmp/bgpu --json $OUT/gpu_cuda.json --budget 400 2>&1 | tee $OUT/bench_gpu.log

then copy ``gpu_cuda.json`` / ``bench_gpu.log`` from the returned files into
``benchmarks/results/``. With ``--budget S`` each CLI part gets a share of what is left of S
(``run`` / ``score`` past it are stopped with SIGTERM and report the rate of the rows they stored,
``"timed_out": true``) and parts that would start after S seconds are recorded as skipped, so the
command ends inside the tool's 10-minute limit (the JSON is rewritten after every part).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata as ilm
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: blurred images per sharp face in the MSPL test layout (8 kernel sizes x 10 kernels)
PER_FACE = 80
#: the issue's target for the full suite on MSPL-Center-sized data
TARGET_S = 60.0
#: packages of the default dependencies that the GPU machine's image lacks (cp312 wheels)
DEVICE_WHEELS = ("dlib-bin", "lpips", "facenet-pytorch==2.5.3", "pytorch-fid")
#: dlib's model files that fit the device call's 64 MiB (the 99 MB 68-point one does not)
DEVICE_DLIB_FILES = ("dlib_face_recognition_resnet_model_v1.dat", "shape_predictor_5_face_landmarks.dat")


# -- environment ---------------------------------------------------------------------------------
def ensure_distribution(tmp: Path) -> str | None:
    """Make ``faceblur-bench``'s entry points (the baselines) visible when the package is only on
    ``PYTHONPATH`` (the GPU machine gets the working tree, not an install): write a minimal
    ``dist-info`` from ``pyproject.toml`` under ``tmp`` and put it on ``sys.path`` and
    ``PYTHONPATH`` (for the CLI subprocesses). Returns that folder, or None when installed."""
    try:
        if ilm.distribution("faceblur-bench").entry_points:
            return None
    except ilm.PackageNotFoundError:
        pass
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    proj = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    info = tmp / "site" / f"faceblur_bench-{proj['version']}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: faceblur-bench\nVersion: {proj['version']}\n")
    lines = []
    for group, eps in proj.get("entry-points", {}).items():
        lines += [f"[{group}]"] + [f"{k} = {v}" for k, v in eps.items()] + [""]
    (info / "entry_points.txt").write_text("\n".join(lines))
    site = str(info.parent)
    sys.path.insert(0, site)
    os.environ["PYTHONPATH"] = os.pathsep.join([site, str(ROOT), os.environ.get("PYTHONPATH", "")])
    return site


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT), env.get("PYTHONPATH", "")] if p)
    env.setdefault("COLUMNS", "200")
    return env


def cli(args: list[str], log: Path, timeout: float, module: list[str] | None = None) -> tuple[int, float, bool]:
    """``python -m faceblur_bench ARGS`` (the real CLI; ``module`` replaces ``-m faceblur_bench``);
    (exit code, wall seconds, timed out). Output -> ``log``.

    Past ``timeout`` the process group gets SIGTERM — ``run`` / ``score`` then store the rows
    they have and exit 143, so the images done so far still give a rate — and SIGKILL 30 s later."""
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, *(module or ["-m", "faceblur_bench"]), *args], stdout=fh,
                                stderr=subprocess.STDOUT, env=cli_env(), start_new_session=True)
        try:
            return proc.wait(timeout=max(1.0, timeout)), time.perf_counter() - t0, False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            return proc.returncode, time.perf_counter() - t0, True


def rows_done(out: Path) -> int:
    """Rows stored under a results folder (``rows.jsonl`` and the ranks' row shards)."""
    n = 0
    for p in out.glob("runs/**/rows*.jsonl"):
        with open(p, "rb") as fh:
            n += sum(1 for line in fh if line.strip())
    return n


def over_budget(a: argparse.Namespace, st: dict) -> bool:
    return bool(a.budget) and time.perf_counter() - st["t_start"] > a.budget


def time_left(a: argparse.Namespace, st: dict, share: float) -> float:
    """Seconds a CLI part may take: ``--timeout``, and with ``--budget`` that ``share`` of what
    is left of it (so the parts after it still get their turn)."""
    if not a.budget:
        return a.timeout
    return min(a.timeout, max(20.0, share * (a.budget - (time.perf_counter() - st["t_start"]))))


def tail(path: Path, n: int = 6) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").strip().splitlines()[-n:])
    except OSError:
        return ""


# -- part 1: synthetic MSPL-Center-sized split ----------------------------------------------------
def demo_faces(data_root: Path | None) -> Path:
    """The demo split's sharp faces (built on first use; needs insightface + facenet-pytorch)."""
    from faceblur_bench.data.base import default_data_root
    from faceblur_bench.data.demo import ensure_demo

    return ensure_demo(data_root or default_data_root()) / "sharp"


def tiled_faces(faces: list, n: int) -> list[tuple[str, Any]]:
    """``n`` distinct 128x128 uint8 faces from ``faces`` ``[(stem, array)]``: copy ``v`` of each
    is mirrored when ``v`` is odd, shifted by ``v // 2`` pixels (edge padded) and scaled in
    brightness by ``1 - 0.01 * (v % 5)`` — enough to make every file differ, as a test set would."""
    import numpy as np

    out = []
    for i in range(n):
        stem, img = faces[i % len(faces)]
        v = i // len(faces)
        x = img[:, ::-1] if v % 2 else img
        s = (v // 2) % 16
        if s:
            x = np.pad(x, ((s, 0), (s, 0), (0, 0)), mode="edge")[:128, :128]
        x = np.clip(np.rint(x.astype(np.float32) * (1.0 - 0.01 * (v % 5))), 0, 255).astype(np.uint8)
        out.append((f"syn{i:04d}", np.ascontiguousarray(x)))
    return out


def part_synthesis(a: argparse.Namespace, st: dict) -> dict:
    from faceblur_bench.data.mspl import MSPL_SUBSETS
    from faceblur_bench.data.synth import make_split, read_sharp_dir
    from faceblur_bench.imageio import write_png

    src = Path(a.faces) if a.faces else demo_faces(None)
    faces = read_sharp_dir(src)
    n_faces = max(1, math.ceil(a.images / PER_FACE))
    subsets = list(MSPL_SUBSETS)[:3 if n_faces >= 3 else 1]
    tiles = tiled_faces(faces, n_faces)
    data = st["work"] / "data"
    made, t_blur = [], 0.0
    for j, sub in enumerate(subsets):
        sharp = st["work"] / "sharp" / sub
        sharp.mkdir(parents=True, exist_ok=True)
        for name, img in tiles[j::len(subsets)]:
            write_png(sharp / f"{name}.png", img)
        t0 = time.perf_counter()
        m = make_split(sharp, "mspl", data, seed=0, subset=sub, variant="center", device=a.device)
        t_blur += time.perf_counter() - t0
        made.append(m)
    n_blurred = sum(len(m["images"]) for m in made) * PER_FACE
    st["split"] = "mspl-center" if len(subsets) == 3 else f"mspl-center/{subsets[0]}"
    st["data_root"] = data
    st["n_split"] = n_blurred
    return {"images": n_blurred, "sharp_faces": n_faces, "source_faces": len(faces), "source": str(src),
            "subsets": subsets, "split": st["split"], "seconds": round(t_blur, 3),
            "images_per_s": round(n_blurred / t_blur, 2), "blur_engine": made[0]["blur"],
            "synthetic": True, "manifest_synthesised": all(m["synthesised"] for m in made),
            "note": "synthetic faces tiled from the source folder; make_split.json marks the split "
                    "synthesised (never the official MSPL release); PNG encoding included"}


# -- parts 2 and 6: run ---------------------------------------------------------------------------
def run_args(a: argparse.Namespace, st: dict, out: Path) -> list[str]:
    return ["run", "--method", a.baseline, "--split", st["split"], "--data-root", str(st["data_root"]),
            "--device", a.device, "--out", str(out), "--limit", str(min(a.images, st["n_split"])),
            "--batch-size", str(a.batch)] + (["--metrics", a.metrics] if a.metrics else [])


def _run_summary(out: Path) -> dict:
    found = sorted(out.glob("runs/*/*/*/summary.json"))
    return json.loads(found[0].read_text()) if found else {}


def _run_result(code: int, wall: float, n: int, out: Path, log: Path, timed_out: bool = False) -> dict:
    if timed_out:  # stopped at its time cap: the rate of the images it stored
        done = rows_done(out)
        if not done:
            raise RuntimeError(f"run stopped at its time cap ({wall:.0f} s) before storing a row: {tail(log)}")
        return {"images": done, "images_requested": n, "timed_out": True, "exit_code": code,
                "wall_s": round(wall, 3), "images_per_s": round(done / wall, 2)}
    if code not in (0, 1):  # 1: the run ran and some images failed (counted below)
        raise RuntimeError(f"run exited {code}: {tail(log)}")
    s = _run_summary(out)
    mets = s.get("metrics") or {}
    # which metrics were computed and why the others were not: names and reasons, never values
    return {"images": n, "exit_code": code, "wall_s": round(wall, 3), "images_per_s": round(n / wall, 2),
            "counts": s.get("counts"), "data_origin": (s.get("data_origin") or {}).get("kind"),
            "metrics_computed": sorted(k for k, v in mets.items() if v.get("status") == "ok"),
            "metrics_unavailable": {k: v.get("reason") for k, v in mets.items() if v.get("status") != "ok"},
            "timings": s.get("timings")}


def part_run_suite(a: argparse.Namespace, st: dict) -> dict:
    out, log = st["work"] / "run_suite", st["work"] / "run_suite.log"
    n = min(a.images, st["n_split"])
    code, wall, late = cli(run_args(a, st, out), log, time_left(a, st, 0.45))
    r = _run_result(code, wall, n, out, log, late)
    st["suite_rate"] = r["images_per_s"]
    scale = 19200 / r["images"]
    r.update(method=a.baseline, metrics=a.metrics or "full default suite", target_s=TARGET_S,
             projected_19200_s=round(wall * scale, 1), meets_target=wall * scale <= TARGET_S)
    return r


def part_sharded(a: argparse.Namespace, st: dict) -> dict:
    import torch

    n_gpu = torch.cuda.device_count() if a.device.startswith("cuda") else 0
    nproc = max(1, n_gpu)
    out, log = st["work"] / "run_sharded", st["work"] / "run_sharded.log"
    args = run_args(a, st, out)
    cap = time_left(a, st, 0.9)
    if nproc > 1:
        code, wall, late = cli(args + ["--nproc", str(nproc)], log, cap)
        how = f"faceblur-bench run --nproc {nproc} (NCCL)"
    else:  # --nproc 1 does not launch torchrun: start it directly, one rank
        code, wall, late = cli(args, log, cap, module=["-m", "torch.distributed.run", "--standalone",
                                                       "--nproc-per-node", "1", "-m", "faceblur_bench"])
        how = "torchrun --standalone --nproc-per-node 1 (world size 1: no process group, so no NCCL)"
    r = _run_result(code, wall, min(a.images, st["n_split"]), out, log, late)
    r.update(nproc=nproc, gpus=n_gpu, launcher=how)
    st["sharded"] = r
    return r


def part_nccl_speedup(a: argparse.Namespace, st: dict) -> dict:
    sh = st.get("sharded")
    if sh is None or sh["nproc"] < 2:
        return {"status": "skipped",
                "reason": "NCCL sharding needs >= 2 GPUs"
                          + (f" (this machine has {sh['gpus']})" if sh else "")
                          + "; sharded_run exercised the torchrun path with one rank"}
    return {"nproc": sh["nproc"], "speedup_vs_1": round(sh["images_per_s"] / st["suite_rate"], 3),
            "images_per_s": sh["images_per_s"]}


def each_item(a: argparse.Namespace, st: dict, names: list[str],
              measure: Callable[[str], tuple[dict, str | None]], key: str) -> dict:
    """``{key: {name: row}}`` of ``measure(name)`` -> (row, error or None) for each name, each
    isolated (an exception is that name's error); past ``--budget`` the rest are listed as
    ``skipped_for_budget``. ``status`` "error" (naming each failure) when any failed."""
    import torch

    rows, errors, late = {}, {}, []
    for name in names:
        if over_budget(a, st):
            late.append(name)
            continue
        try:
            rows[name], err = measure(name)
            if err:
                errors[name] = err
            print(f"  {key} {name:14s} {rows[name]}", flush=True)
        except Exception as exc:
            errors[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    out: dict[str, Any] = {key: rows}
    if late:
        out["skipped_for_budget"] = late
        if not (rows or errors):
            out.update(status="skipped", reason=f"--budget {a.budget:g} s spent before the first one")
    if errors:
        out.update(status="error", error="; ".join(f"{k}: {v}" for k, v in errors.items()), failed=sorted(errors))
    return out


# -- part 3: every learned method's restore() -----------------------------------------------------
def learned_methods() -> list[str]:
    from faceblur_bench import engine
    from faceblur_bench.registry import methods

    names = []
    for n in methods.names():
        try:
            if (engine.make_method(n).num_parameters() or 0) > 0:  # baselines report 0 or None
                names.append(n)
        except Exception:  # a method that needs options (folder) has no network to time
            continue
    return names


def part_inference(a: argparse.Namespace, st: dict) -> dict:
    import torch

    from faceblur_bench import engine
    from faceblur_bench.metrics.runtime import applicable_dtypes, measure_runtime

    dev = torch.device(a.device)
    cpu_quick = a.quick and dev.type == "cpu"
    batch = 1 if cpu_quick else 16

    def measure(name: str) -> tuple[dict, str | None]:
        m = engine.make_method(name)
        m.init_untrained(dev, tiny=a.tiny)
        size = 128 if m.scale == 1 else 256 // m.scale
        dtypes = [d for d in applicable_dtypes(m) if dev.type == "cuda" or d == "fp32"]
        info = measure_runtime(m, dev, sizes=[(size, size)], batches=[batch], dtypes=dtypes,
                               repeats=1 if cpu_quick else (5 if a.quick else 20),
                               warmup=0 if cpu_quick else 3)
        row = {"parameters_m": info["parameters_m"], "input": size, "batch": batch,
               **{r["dtype"]: (round(r["images_per_s"], 2) if "images_per_s" in r else r["error"])
                  for r in info["results"]}}
        return row, next((r["error"] for r in info["results"] if "error" in r), None)

    return {"unit": "images/s", "tiny_networks": a.tiny, "random_weights": True,
            **each_item(a, st, learned_methods(), measure, "methods")}


# -- part 4: score --------------------------------------------------------------------------------
def part_score(a: argparse.Namespace, st: dict) -> dict:
    """The blurred images as the "restored" folder; the reference folder holds a hard link to
    each one's ground truth under the blurred file's name (one-to-one pairs, as ``score`` wants)."""
    from faceblur_bench.data.base import open_split
    from faceblur_bench.engine.run import default_metric_names

    samples = open_split(st["split"], st["data_root"]).samples()[:a.images]
    restored, ref = st["work"] / "score_restored", st["work"] / "score_reference"
    for d in (restored, ref):
        d.mkdir(parents=True, exist_ok=True)
    for s in samples:
        name = s.blurred.name
        for src, dst in ((s.blurred, restored / name), (s.sharp, ref / name)):
            if not dst.exists():
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copyfile(src, dst)
    metrics = a.metrics or ",".join(default_metric_names(st["split"], st["data_root"]))
    js, log = st["work"] / "score.json", st["work"] / "score.log"
    code, wall, late = cli(["score", "--restored", str(restored), "--reference", str(ref), "--metrics", metrics,
                      "--device", a.device, "--json", str(js), "--batch-size", str(a.batch),
                      "--out", str(st["work"] / "score_results")], log, time_left(a, st, 0.5))
    if late:
        return {**_run_result(code, wall, len(samples), st["work"] / "score_results", log, late),
                "metrics": metrics.split(",")}
    if code not in (0, 1):
        raise RuntimeError(f"score exited {code}: {tail(log)}")
    return {"images": len(samples), "exit_code": code, "wall_s": round(wall, 3),
            "images_per_s": round(len(samples) / wall, 2), "metrics": metrics.split(",")}


# -- part 5: every trainer's train_step -----------------------------------------------------------
def random_feature_weights(d: Path) -> dict[str, str]:
    """Format-faithful random files for every perceptual network a trainer loads (speed only)."""
    import torch
    import torchvision

    from faceblur_bench import weights
    from faceblur_bench.methods.cfmd.losses import LPIPS_BACKBONE
    from faceblur_bench.methods.dfpg.vggface import save_random_vggface16
    from faceblur_bench.methods.shen.vggface import save_random_dag
    from faceblur_bench.methods.yun.vgg19 import save_random_vgg19

    d.mkdir(parents=True, exist_ok=True)
    # names without the published files' hash prefixes: a random file must never pass for them
    alex = d / "alexnet_random.pth"
    trunk = {k: v for k, v in torchvision.models.alexnet(weights=None).state_dict().items()
             if k.startswith("features.")}  # LPIPS reads only the conv trunk (10 MB, not 233)
    torch.save(trunk, alex)
    files = {"vggface16": str(save_random_vggface16(d / "VGGFace16.pth")),
             "vgg-face-dag": str(save_random_dag(d / "vgg_face_dag.pth")),
             "vgg19": str(save_random_vgg19(d / "vgg19_random.pth")), LPIPS_BACKBONE: str(alex)}
    # random files cannot carry the published hashes (torchvision's VGG-19 and AlexNet): drop
    # them for this process only (the trainers timed here); the CLI parts run in their own
    # processes and keep every check
    for name in files:
        entry = weights.KNOWN.get(name)
        if entry is not None and entry.hash_known:
            weights.KNOWN[name] = dataclasses.replace(entry, sha256=None, sha256_prefix=None)
    return files


def _autocast(dev: Any, bf16: bool):
    import torch

    return torch.autocast(dev.type, dtype=torch.bfloat16) if bf16 else nullcontext()


def train_one(name: str, a: argparse.Namespace, dev: Any, work: Path, overrides: dict[str, str]) -> dict:
    """Median seconds of ``train_step`` on batches of the trainer's own smoke dataset."""
    import torch

    from faceblur_bench.methods.training import StepContext, merge_config
    from faceblur_bench.registry import trainers
    from faceblur_bench.train.config import build_config

    cls = trainers.get(name)
    preset = None
    if name == "cfmd":
        try:
            import lpips  # noqa: F401  (the paper preset's LPIPS term)
        except ImportError:
            preset = "released"
    cfg = build_config(name, preset, tiny=a.tiny)
    val = cfg.get("data", {}).get("val_images", 0)
    if isinstance(val, int) and val > 1:  # the smoke tree is small: hold out one
        cfg = build_config(name, preset, tiny=a.tiny, overrides={"data": {"val_images": 1}})
    if name == "cfmd" and not a.tiny:  # its smoke tree is 32x32; the paper crops 256x256 windows
        from faceblur_bench.methods.cfmd.data import write_synthetic_tree

        if a.quick and dev.type == "cpu":  # a 256² step takes minutes on two cores: 64² crops
            cfg = merge_config(cfg, {"data": {"crop": 64}})

        root = write_synthetic_tree(work / f"train_{name}", {"001": [(5, 1), (5, 6)], "002": [(7, 1)]}, size=256)
    else:
        root = cls.write_smoke_data(work / f"train_{name}")
    cfg = cls.prepare_config(cfg, root, False)
    task = cls(cfg, dev, weights_overrides=overrides)
    ds, _ = task.build_data(root, rank=0, world=1)
    if hasattr(ds, "set_epoch"):
        ds.set_epoch(0)
    bs = 2 if (a.quick and dev.type == "cpu") else 16  # 2: batch norm in training needs > 1
    batch = torch.utils.data.default_collate([ds[i % len(ds)] for i in range(bs)])
    batch = {k: (v.to(dev) if torch.is_tensor(v) else v) for k, v in batch.items()}
    task.train_mode(True)
    out: dict[str, Any] = {"batch": bs, "preset": cfg.get("preset"), "tiny_networks": a.tiny,
                           "item_shapes": {k: list(v.shape[1:]) for k, v in batch.items() if torch.is_tensor(v)}}
    reps = 1 if dev.type == "cpu" else (3 if a.quick else 8)
    for bf16 in ([False, True] if dev.type == "cuda" else [False]):
        ctx = StepContext(epoch=0, iteration=0, step=0, epochs=int(cfg["epochs"]), seed=0, rank=0, world=1,
                          device=dev, nets=task.modules, autocast=lambda bf16=bf16: _autocast(dev, bf16))
        times = []
        for i in range(reps + 1):  # the first step (allocations, cudnn autotune) is not timed
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            t0 = time.perf_counter()
            task.train_step(dict(batch), ctx)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            if i:
                times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        out["bf16" if bf16 else "fp32"] = round(bs / med, 2)
    return out


def part_train(a: argparse.Namespace, st: dict) -> dict:
    import torch

    from faceblur_bench.registry import trainers

    dev = torch.device(a.device)
    overrides = random_feature_weights(st["work"] / "random_weights")
    return {"unit": "images/s (median train_step)", "random_weights": True,
            **each_item(a, st, trainers.names(), lambda n: (train_one(n, a, dev, st["work"], overrides), None),
                        "trainers")}


# -- driver ---------------------------------------------------------------------------------------
PARTS: list[tuple[str, Callable[[argparse.Namespace, dict], dict], bool]] = [
    # (name, function, needs the synthesised split)
    ("synthesis", part_synthesis, False),
    ("run_suite", part_run_suite, True),
    ("inference", part_inference, False),
    ("score", part_score, True),
    ("train", part_train, False),
    ("sharded_run", part_sharded, True),
    ("nccl_speedup", part_nccl_speedup, True),
]


def environment(a: argparse.Namespace) -> dict:
    import torch

    cuda = a.device.startswith("cuda") and torch.cuda.is_available()
    return {"device": a.device, "device_name": torch.cuda.get_device_name(0) if cuda else
            (platform.processor() or platform.machine()), "gpus": torch.cuda.device_count() if cuda else 0,
            "cpus": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
            "images": a.images, "quick": a.quick, "tiny": a.tiny, "baseline": a.baseline,
            "metrics": a.metrics or "full default suite",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def run_parts(a: argparse.Namespace) -> dict:
    out = Path(a.json or ROOT / "benchmarks" / "results" / f"gpu_{a.device.split(':')[0]}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="bench_gpu_"))
    if work.exists() and a.work:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    st: dict[str, Any] = {"work": work, "t_start": time.perf_counter()}
    dist = ensure_distribution(work)
    result: dict[str, Any] = {"benchmark": "bench_gpu", "environment": environment(a), "parts": {}}
    if dist:
        result["environment"]["dist_info"] = "written (package not installed; entry points from pyproject.toml)"
    t_start = st["t_start"]
    only = set(a.only.split(",")) if a.only else None
    for name, fn, needs_split in PARTS:
        t0 = time.perf_counter()
        if only and name not in only:
            rec = {"status": "skipped", "reason": "not selected (--only)"}
        elif needs_split and "split" not in st:
            rec = {"status": "skipped", "reason": "no synthesised split (synthesis did not run or failed)"}
        elif a.budget and t0 - t_start > a.budget:
            rec = {"status": "skipped", "reason": f"--budget {a.budget:g} s spent before this part"}
        else:
            print(f"[{time.perf_counter() - t_start:7.1f} s] {name} ...", flush=True)
            try:
                rec = fn(a, st)
                rec.setdefault("status", "ok")
            except Exception as exc:
                rec = {"status": "error", "error": f"{type(exc).__name__}: {exc}",
                       "traceback": traceback.format_exc(limit=4)[-1500:]}
        rec["part_wall_s"] = round(time.perf_counter() - t0, 3)
        result["parts"][name] = rec
        short = {k: rec[k] for k in ("status", "images_per_s", "reason", "error") if k in rec}
        print(f"[{time.perf_counter() - t_start:7.1f} s] {name}: {json.dumps(short)[:400]}", flush=True)
        result["total_s"] = round(time.perf_counter() - t_start, 3)
        out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {out} ({result['total_s']:.1f} s)")
    return result


# -- --prepare: the folder the device call carries --------------------------------------------------
def prepare(dest: Path) -> None:
    """Fill ``dest`` (an ignored folder of the repository, named in the device call's ``carry``):
    ``faces/`` (the demo split's sharp faces), ``wheels/`` (cp312 manylinux wheels of the
    dependencies the GPU image lacks, from PyPI) and ``weights/`` (dlib's descriptor and 5-point
    model files from the installed face-recognition-models; ``FACEBLUR_WEIGHTS`` points there)."""
    dest.mkdir(parents=True, exist_ok=True)
    faces = dest / "faces"
    shutil.copytree(demo_faces(None), faces, dirs_exist_ok=True)
    wheels = dest / "wheels"
    plats = [a for n in ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
                         "manylinux2014_x86_64", "manylinux1_x86_64") for a in ("--platform", n)]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp", *plats, "-d", str(wheels),
                    *DEVICE_WHEELS], check=True)
    try:
        import face_recognition_models as frm  # noqa: F401 (its files only)

        models = Path(frm.__file__).parent / "models"
    except Exception:  # it imports pkg_resources; find the folder without importing it
        import importlib.util

        spec = importlib.util.find_spec("face_recognition_models")
        models = Path(spec.submodule_search_locations[0]) / "models"
    (dest / "weights").mkdir(exist_ok=True)
    for f in DEVICE_DLIB_FILES:
        shutil.copyfile(models / f, dest / "weights" / f)
    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    print(f"prepared {dest}: {len(list(faces.iterdir()))} faces, {len(list(wheels.iterdir()))} wheels, "
          f"{len(DEVICE_DLIB_FILES)} dlib files, {size / 2**20:.1f} MiB (the device call carries at most 64 MiB "
          "with the working tree); add it to .git/info/exclude")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda | cuda:N | cpu")
    ap.add_argument("--images", type=int, default=19200, help="images to synthesise (80 per sharp face) and to "
                    "run / score (default 19,200 = MSPL-Center: 3 subsets x 80 faces x 80 kernels)")
    ap.add_argument("--quick", action="store_true", help="fewer timed repeats (CPU: batch 1, one repeat)")
    ap.add_argument("--tiny", action="store_true", help="the contract tests' small networks in inference/train "
                    "(tests only: checks the code paths, not the paper-size speed)")
    ap.add_argument("--faces", default=None, help="folder of 128x128 sharp faces (default: the demo split's)")
    ap.add_argument("--baseline", default="wiener", help="method of the run / sharded parts (default wiener)")
    ap.add_argument("--metrics", default=None, help="metric list of run / score (default: the full default "
                    "suite; the test passes psnr,ssim)")
    ap.add_argument("--batch", type=int, default=16, help="--batch-size of run / score")
    ap.add_argument("--only", default=None, help="comma-separated parts to run (others are recorded as skipped)")
    ap.add_argument("--budget", type=float, default=0.0, help="skip parts that would start after this many "
                    "seconds (0: no limit)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds allowed per CLI subprocess")
    ap.add_argument("--work", default=None, help="work folder (emptied first; default a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--json", default=None, help="output JSON (default benchmarks/results/gpu_<device>.json)")
    ap.add_argument("--prepare", default=None, metavar="DIR", help="fill DIR for the device call and exit")
    a = ap.parse_args(argv)
    if a.prepare:
        prepare(Path(a.prepare))
        return 0
    if a.images < 1:
        ap.error("--images must be >= 1")
    if a.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            ap.error("--device cuda: no CUDA device here; use --device cpu")
        torch.backends.cudnn.benchmark = True
    run_parts(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
