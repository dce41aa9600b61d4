"""A third-party plugin distribution (examples/plugin) registers a method and a split through
entry points; the CLI finds both and runs them end to end in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory) -> dict:
    """Install examples/plugin (a separate distribution) into a private target directory."""
    tmp = tmp_path_factory.mktemp("plugin")
    src = tmp / "src"
    shutil.copytree(REPO / "examples" / "plugin", src)
    target = tmp / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(src)], check=True, capture_output=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(target) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _cli(args, env, **kw):
    return subprocess.run([sys.executable, "-m", "faceblur_bench", *args], env=env, capture_output=True,
                          text=True, timeout=600, **kw)


def test_plugin_method_and_split_are_listed(plugin_env):
    r = _cli(["methods", "--json"], plugin_env)
    assert r.returncode == 0, r.stderr
    methods = {m["name"]: m for m in json.loads(r.stdout)}
    assert methods["unsharp"]["origin"] == "entry point faceblur_plugin_example:UnsharpMask"
    assert methods["unsharp"]["params_M"] == 0
    assert methods["blurred"]["origin"] == "entry point baselines.identity:Blurred"
    r = _cli(["splits", "--json"], plugin_env)
    assert r.returncode == 0, r.stderr
    splits = {s["name"]: s for s in json.loads(r.stdout)}
    assert splits["example-pairs"]["found"] is False
    assert "example-pairs/" in splits["example-pairs"]["layout"]


def test_typos_suggest_plugin_names(plugin_env):
    """Names declared by a plugin's entry points are suggested like built-in ones (the static
    catalogs cover only the built-ins; plugin names come from the package metadata)."""
    from cli_helpers import probe

    cases = [(["run", "--method", "unsharpp"], "did you mean 'unsharp'"),
             (["methods", "unshrp"], "did you mean 'unsharp'"),
             (["run", "-m", "blurred", "--split", "example-pair"], "did you mean 'example-pairs'"),
             (["train", "presets", "residual-cn"], "did you mean 'residual-cnn'")]
    res = probe([a for a, _ in cases] + [["methods", "unsharp", "--json"],
                                         ["train", "presets", "residual-cnn", "--json"]], env=plugin_env)
    for r, (args, want) in zip(res, cases):
        assert r["code"] == 2 and want in r["err"], (args, r["err"])
    shown, presets = res[len(cases):]
    assert shown["code"] == 0 and [o["option"] for o in json.loads(shown["out"])[0]["options"]] == ["amount"]
    assert presets["code"] == 0 and {p["preset"] for p in json.loads(presets["out"])} == {"small", "wide"}


def test_plugin_runs_end_to_end(plugin_env, tmp_path):
    rng = np.random.default_rng(3)
    root = tmp_path / "data" / "example-pairs"
    for sub in ("blur", "sharp"):
        (root / sub).mkdir(parents=True)
    for i in range(3):
        sharp = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
        blur = (sharp.astype(np.float64) * 0.5 + 64).astype(np.uint8)
        Image.fromarray(sharp).save(root / "sharp" / f"f{i}.png")
        Image.fromarray(blur).save(root / "blur" / f"f{i}.png")
    out = tmp_path / "res"
    r = _cli(["run", "--method", "unsharp", "--split", "example-pairs", "--data-root", str(tmp_path / "data"),
              "--metrics", "psnr,ssim", "--out", str(out), "--leaderboard", str(tmp_path / "lb.md"),
              "--option", "amount=0.5"], plugin_env)
    assert r.returncode == 0, r.stderr + r.stdout
    summaries = list(out.glob("runs/example-pairs/unsharp/*/summary.json"))
    assert len(summaries) == 1
    s = json.loads(summaries[0].read_text())
    assert s["counts"] == {"total": 3, "done": 3, "ok": 3, "failed": 0}
    assert s["method_options"] == {"amount": 0.5}
    # the plugin's declared option is checked like a built-in one
    r = _cli(["run", "--method", "unsharp", "--split", "example-pairs", "--data-root", str(tmp_path / "data"),
              "--out", str(out), "--option", "amout=0.5"], plugin_env)
    assert r.returncode == 2 and "did you mean 'amount'" in r.stderr, r.stderr
    # the stored PSNR is that of the plugin's own output, recomputed here with scikit-image
    import torch
    from skimage.metrics import peak_signal_noise_ratio

    sys.path.insert(0, plugin_env["PYTHONPATH"].split(os.pathsep)[0])
    try:
        from faceblur_plugin_example import UnsharpMask
    finally:
        sys.path.pop(0)
    lines = (summaries[0].parent / "rows.jsonl").read_text().splitlines()
    rows = {json.loads(line)["id"]: json.loads(line) for line in lines}
    m = UnsharpMask(amount=0.5)
    for i in range(3):
        blur = np.asarray(Image.open(root / "blur" / f"f{i}.png"))
        x = torch.from_numpy(blur).permute(2, 0, 1)[None].float() / 255
        y = torch.round(m.restore(x) * 255).clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()
        ref = np.asarray(Image.open(root / "sharp" / f"f{i}.png"))
        assert rows[f"f{i}"]["metrics"]["psnr"] == pytest.approx(peak_signal_noise_ratio(ref, y), abs=1e-9)


def test_plugin_trainer_trains_resumes_and_runs(plugin_env, tmp_path):
    """A third-party trainable method: listed by `train --help`, trained, resumed, then run."""
    r = _cli(["train", "--help"], plugin_env)
    assert r.returncode == 0 and "residual-cnn" in r.stdout
    data = tmp_path / "data" / "example-pairs"
    rng = np.random.default_rng(5)
    for sub in ("blur", "sharp"):
        (data / sub).mkdir(parents=True)
    for i in range(4):
        sharp = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
        Image.fromarray(sharp).save(data / "sharp" / f"f{i}.png")
        Image.fromarray((sharp * 0.5 + 64).astype(np.uint8)).save(data / "blur" / f"f{i}.png")
    base = ["train", "residual-cnn", "--data-root", str(data), "--preset", "small", "--no-progress",
            "--set", "data.num_workers=0", "--batch-size", "1"]
    full = _cli(base + ["--out", str(tmp_path / "full"), "--epochs", "2"], plugin_env)
    assert full.returncode == 0, full.stderr + full.stdout
    half = _cli(base + ["--out", str(tmp_path / "half"), "--epochs", "1"], plugin_env)
    assert half.returncode == 0, half.stderr
    again = _cli(["train", "residual-cnn", "--data-root", str(data), "--out", str(tmp_path / "half"),
                  "--epochs", "2", "--resume", "--no-progress"], plugin_env)
    assert again.returncode == 0, again.stderr
    import torch

    a = torch.load(tmp_path / "full" / "checkpoints" / "last.pth", weights_only=True)
    b = torch.load(tmp_path / "half" / "checkpoints" / "last.pth", weights_only=True)
    assert a["preset"] == "small" and a["config"]["model"]["width"] == 8 and a["epoch"] == b["epoch"] == 2
    assert all(torch.equal(a["modules"]["generator"][k], v) for k, v in b["modules"]["generator"].items())
    typo = _cli(["train", "residual-cnn", "--data-root", str(data), "--out", str(tmp_path / "t"),
                 "--preset", "smal"], plugin_env)
    assert typo.returncode == 2 and "did you mean 'small'" in typo.stderr
    out = tmp_path / "res"
    r = _cli(["run", "--method", "residual-cnn", "--split", "example-pairs", "--data-root", str(tmp_path / "data"),
              "--checkpoint", str(tmp_path / "full" / "checkpoints" / "best.pth"), "--metrics", "psnr",
              "--out", str(out), "--leaderboard", str(tmp_path / "lb.md")], plugin_env)
    assert r.returncode == 0, r.stderr + r.stdout
    s = json.loads(next(out.glob("runs/example-pairs/residual-cnn/*/summary.json")).read_text())
    assert s["counts"]["ok"] == 4
