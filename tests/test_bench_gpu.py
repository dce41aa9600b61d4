"""``benchmarks/bench_gpu.py`` at its smallest size on CPU: every part runs (or, CUDA-only, says
why not), a failing part is recorded without stopping the others, and the entry points are found
when the package is only on ``PYTHONPATH`` (as on the GPU machine)."""

from __future__ import annotations

import importlib.metadata as ilm
import json
import subprocess
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "bench_gpu.py"
PARTS = ("synthesis", "run_suite", "inference", "score", "train", "sharded_run", "nccl_speedup")


def _bench(tmp_path: Path, demo_data_root: Path, *extra: str) -> dict:
    out = tmp_path / "gpu_cpu.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--images", "16", "--quick", "--tiny",
         "--metrics", "psnr,ssim", "--faces", str(demo_data_root / "demo" / "sharp"),
         "--work", str(tmp_path / "work"), "--json", str(out), *extra],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert not (tmp_path / "work").exists(), "the work folder is removed without --keep"
    return json.loads(out.read_text())


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0


def test_every_part_runs_on_cpu_or_says_why_not(tmp_path, demo_data_root):
    from faceblur_bench import engine
    from faceblur_bench.registry import methods, trainers

    res = _bench(tmp_path, demo_data_root)
    parts = res["parts"]
    assert tuple(parts) == PARTS
    errors = {k: v.get("error") for k, v in parts.items() if v["status"] == "error"}
    assert not errors, errors
    # the only part that cannot run on CPU: NCCL needs two GPUs, and the record says so
    skipped = {k for k, v in parts.items() if v["status"] == "skipped"}
    assert skipped == {"nccl_speedup"} and ">= 2 GPUs" in parts["nccl_speedup"]["reason"]

    syn = parts["synthesis"]
    assert syn["images"] == 80 and syn["sharp_faces"] == 1 and _number(syn["images_per_s"])
    assert syn["synthetic"] and syn["manifest_synthesised"]
    for name in ("run_suite", "sharded_run"):
        r = parts[name]
        assert _number(r["images_per_s"]) and r["images"] == 16 and r["counts"]["ok"] == 16, r
        # a run on the synthesised split never poses as the official MSPL release
        assert r["data_origin"] == "synthesised"
        assert set(r["metrics_computed"]) == {"psnr", "ssim"}
    assert parts["sharded_run"]["nproc"] == 1 and "torchrun" in parts["sharded_run"]["launcher"]
    assert parts["run_suite"]["projected_19200_s"] > 0 and parts["run_suite"]["meets_target"] in (True, False)
    assert _number(parts["score"]["images_per_s"]) and parts["score"]["images"] == 16

    learned = {n for n in methods.names() if n != "folder" and (engine.make_method(n).num_parameters() or 0) > 0}
    inf = parts["inference"]["methods"]
    assert set(inf) == learned and {"sappgan", "dfpg", "mspl-gan", "cfmd-gan", "yun", "shen"} <= learned
    assert all(_number(r["fp32"]) and "bf16" not in r for r in inf.values()), inf  # bf16: CUDA only
    assert inf["yun"]["input"] == 32 and inf["sappgan"]["input"] == 128
    tr = parts["train"]["trainers"]
    assert set(tr) == set(trainers.names()) and all(_number(r["fp32"]) for r in tr.values()), tr
    assert parts["train"]["random_weights"] and parts["inference"]["random_weights"]
    assert res["environment"]["device"] == "cpu" and res["environment"]["gpus"] == 0


def test_a_failing_part_is_recorded_and_the_others_go_on(tmp_path, demo_data_root):
    res = _bench(tmp_path, demo_data_root, "--baseline", "no-such-method",
                 "--only", "synthesis,run_suite,score")
    parts = res["parts"]
    assert parts["run_suite"]["status"] == "error" and "exited 2" in parts["run_suite"]["error"]
    assert "no-such-method" in parts["run_suite"]["error"]
    assert parts["synthesis"]["status"] == parts["score"]["status"] == "ok"
    assert _number(parts["score"]["images_per_s"])
    for name in ("inference", "train", "sharded_run", "nccl_speedup"):
        assert parts[name] == {"status": "skipped", "reason": "not selected (--only)", "part_wall_s": 0.0}


def test_entry_points_without_an_install(tmp_path, monkeypatch):
    """On the GPU machine the package is only on PYTHONPATH: the script writes a dist-info from
    pyproject.toml so that the baselines (entry points) are registered."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import bench_gpu
    finally:
        sys.path.remove(str(REPO / "benchmarks"))

    def missing(name):
        raise ilm.PackageNotFoundError(name)

    monkeypatch.setattr(bench_gpu.ilm, "distribution", missing)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("PYTHONPATH", "")
    site = bench_gpu.ensure_distribution(tmp_path)
    assert site and sys.path[0] == site
    (dist,) = list(ilm.distributions(path=[site]))
    eps = {ep.name: ep.value for ep in dist.entry_points if ep.group == "faceblur_bench.methods"}
    assert eps["wiener"] == "baselines.deconvolution:Wiener" and eps["blurred"] == "baselines.identity:Blurred"
    assert dist.metadata["Name"] == "faceblur-bench"
    assert site in bench_gpu.os.environ["PYTHONPATH"].split(":")
