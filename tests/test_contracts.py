"""Contract tests parametrized over everything registered: methods, metrics, splits, trainers.

A new method package, metric, split or trainer is checked here without writing a test for it:
- every method restores a small batch with the right shape, dtype and range (untrained weights
  through ``init_untrained`` where a network is needed — never a reported number);
- every metric either sets up and returns one finite-or-NaN value per image (also for an image
  without a face or structure), or refuses with WeightsMissingError naming the file;
- every split names its expected layout and reports missing data as DataNotFoundError;
- every trainer runs two steps on its smoke data and a resumed run reproduces the uninterrupted one.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from faceblur_bench.data.base import Sample
from faceblur_bench.errors import DataNotFoundError, WeightsMissingError
from faceblur_bench.methods import checkpoint as ckpt_io
from faceblur_bench.metrics.base import Batch, MetricContext
from faceblur_bench.registry import methods, metrics, splits, trainers

#: methods that restore nothing themselves (they read another codebase's files)
NEEDS_FILES = {"folder"}


def _faces(demo_data_root: Path, n: int, size: int = 32) -> tuple[torch.Tensor, torch.Tensor, list[Sample]]:
    """``n`` demo-split (blurred, sharp) pairs resized to ``size``: uint8 (n, 3, size, size)."""
    from faceblur_bench.engine import open_split
    from faceblur_bench.imageio import read_image

    samples = open_split("demo", demo_data_root).samples()[:: 8][:n]

    def load(p: Path) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(read_image(p))).permute(2, 0, 1)[None].float()
        return torch.nn.functional.interpolate(t, size=(size, size), mode="area").round().to(torch.uint8)[0]

    return (torch.stack([load(s.blurred) for s in samples]), torch.stack([load(s.sharp) for s in samples]), samples)


@pytest.mark.parametrize("name", methods.names())
def test_method_restores_a_batch_with_the_right_shape_and_range(name, demo_data_root):
    if name in NEEDS_FILES:
        pytest.skip(f"{name} restores nothing itself: it reads another codebase's files (tested in test_engine)")
    cls = methods.get(name)
    m = cls()
    m.init_untrained("cpu", tiny=True)
    blurred, _, samples = _faces(demo_data_root, 2)
    x = blurred.float() / 255.0
    k = np.zeros((13, 13))
    k[6, 3:10] = 1 / 7
    meta = [{"id": s.id, "kernel": k, "moment": 0.5} for s in samples]
    y = m.restore(x, meta)
    assert y.shape == (2, 3, 32 * cls.scale, 32 * cls.scale) and y.dtype == torch.float32
    assert torch.isfinite(y).all() and float(y.min()) >= 0.0 and float(y.max()) <= 1.0


@pytest.mark.parametrize("name", metrics.names())
def test_metric_scores_each_image_or_names_its_missing_weights(name, demo_data_root):
    metric = metrics.get(name)()
    _, sharp, samples = _faces(demo_data_root, 3, size=112)
    from faceblur_bench.engine import open_split

    ctx = MetricContext("cpu", split=open_split("demo", demo_data_root))
    try:
        metric.setup(ctx)
    except WeightsMissingError as exc:  # missing files or packages (PackageMissingError is one)
        assert exc.message.strip() and exc.hint, f"{name}: a refusal must say what is missing and the fix"
        text = f"{exc.message} {exc.hint}".lower()
        # harness metrics name their registered weight file; pyiqa's name pyiqa's own files
        # (pyiqa manages them: ``weights`` is empty); a missing package says what to install
        assert (any(w.lower() in text for w in metric.weights) or "install" in text
                or (name.startswith("pyiqa-") and ("pyiqa" in text or "fetch" in text))), (name, text)
        return
    flat = torch.full_like(sharp[:1], 128)  # no face, no structure: NaN or a value, never an error
    restored = torch.cat([sharp[:2], flat])
    batch = Batch(samples=samples, restored=restored, reference=sharp if metric.needs_reference else None,
                  blurred=sharp)
    if metric.kind == "paired":
        v = np.asarray(metric.compute(batch))
        assert v.shape == (3,) and v.dtype == np.float64
        assert not np.isnan(v[:2]).any(), f"{name} could not score a real face against itself"
    else:
        f = np.asarray(metric.features(batch))
        assert f.ndim == 2 and f.shape[0] == 3


@pytest.mark.parametrize("name", splits.names())
def test_split_names_its_layout_and_reports_missing_data(name, tmp_path):
    cls = splits.get(name)
    assert cls.layout.strip(), f"split {name} documents no layout"
    if name == "demo":
        return  # built on first use under any data root
    split = cls(tmp_path / "empty")
    with pytest.raises(DataNotFoundError):
        split.samples()


def _steps(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("name", trainers.names())
def test_trainer_two_steps_and_exact_resume(name, tmp_path, monkeypatch):
    from faceblur_bench.methods.dfpg.vggface import save_random_vggface16
    from faceblur_bench.train.loop import train

    save_random_vggface16(tmp_path / "w" / "VGGFace16.pth")  # format-faithful, random (perceptual losses)
    monkeypatch.setenv("FACEBLUR_WEIGHTS", str(tmp_path / "w"))
    cls = trainers.get(name)
    root = cls.write_smoke_data(tmp_path / "data")
    kw = {"tiny": True, "progress": False, "batch_size": 1}
    full = train(name, root, tmp_path / "full", epochs=2, **kw)
    assert full.epochs_done == 2 and full.steps >= 2
    train(name, root, tmp_path / "half", epochs=1, **kw)
    resumed = train(name, root, tmp_path / "half", epochs=2, resume=True, progress=False)
    assert resumed.steps == full.steps
    a, b = ckpt_io.load(tmp_path / "full" / "checkpoints" / "last.pth"), ckpt_io.load(
        tmp_path / "half" / "checkpoints" / "last.pth")
    for mod, state in a["modules"].items():
        assert all(torch.equal(state[k], b["modules"][mod][k]) for k in state), f"{name}: {mod} differs after resume"
    sa, sb = _steps(tmp_path / "full" / "steps.csv"), _steps(tmp_path / "half" / "steps.csv")
    assert sa == sb, f"{name}: logged losses differ between the uninterrupted and the resumed run"
    best = tmp_path / "full" / "checkpoints" / "best.pth"
    if best.is_file():
        exported = ckpt_io.load(best)
        assert set(exported["modules"]) == set(cls.inference_modules) and "optimizers" not in exported
    assert cls.method in methods, f"trainer {name} names method {cls.method!r}, which is not registered"
    assert os.path.isfile(tmp_path / "full" / "config.json")
