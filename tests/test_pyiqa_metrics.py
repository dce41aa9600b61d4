"""pyiqa no-reference metrics: registered without importing pyiqa, equal to pyiqa called directly,
and every missing file / missing package / unsafe file is an "n/a" reason, never a download.

The NIQE parameter file is format-faithful (MATLAB .mat with ``mu_prisparam`` 1x36 and
``cov_prisparam`` 36x36, random values): values are not meaningful NIQE numbers; only the
equality between the harness and pyiqa on the same file and images is asserted.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image
from skimage import data as skdata

from faceblur_bench import engine
from faceblur_bench.cli.weights import weight_records
from faceblur_bench.data.base import Sample, Split
from faceblur_bench.metrics import pyiqa_nr
from faceblur_bench.metrics.base import Batch, MetricContext
from faceblur_bench.registry import metrics

needs_pyiqa = pytest.mark.skipif(not pyiqa_nr.pyiqa_installed(),
                                 reason="pyiqa is not installed (pip install 'faceblur-bench[iqa]')")


def pyiqa_dir() -> Path:
    # the session TORCH_HOME of conftest: where pyiqa (imported in this process) looks
    return Path(os.environ["TORCH_HOME"]) / "hub" / "pyiqa"


class NoGTSplit(Split):
    """Test split of real-blur style: <root>/<id>.png, no ground truth."""

    name = "no-gt"
    layout = "<id>.png"
    has_reference = False

    def find(self) -> Path:
        return self.data_root

    def samples(self) -> list[Sample]:
        return [Sample(p.stem, p, None) for p in sorted(self.data_root.glob("*.png"))]


def face_images() -> np.ndarray:
    """Two 128x128 RGB crops of skimage's astronaut (sharp and box-blurred), uint8 (2,128,128,3)."""
    img = skdata.astronaut()[30:286, 150:406]
    sharp = np.asarray(Image.fromarray(img).resize((128, 128), Image.BICUBIC))
    k = 5
    pad = np.pad(sharp.astype(np.float64), ((k // 2, k // 2), (k // 2, k // 2), (0, 0)), mode="edge")
    blur = sum(pad[i:i + 128, j:j + 128] for i in range(k) for j in range(k)) / (k * k)
    return np.stack([sharp, np.round(blur).astype(np.uint8)])


@pytest.fixture()
def niqe_file():
    """Random but format-faithful niqe_modelparameters.mat where pyiqa looks for it."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((36, 36))
    path = pyiqa_dir() / "niqe_modelparameters.mat"
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"mu_prisparam": rng.standard_normal((1, 36)),
                            "cov_prisparam": a @ a.T / 36 + np.eye(36)})
    yield path
    path.unlink()


def no_gt_split(tmp_path: Path) -> NoGTSplit:
    tmp_path.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(face_images()):
        Image.fromarray(img).save(tmp_path / f"face{i}.png")
    return NoGTSplit(data_root=tmp_path)


def test_registered_statically_without_importing_pyiqa():
    code = ("import sys; from faceblur_bench.registry import metrics; n = metrics.names(); "
            "assert 'pyiqa' not in sys.modules, 'pyiqa imported'; "
            "c = metrics.get('pyiqa-niqe'); "
            "print(len([m for m in n if m.startswith('pyiqa-')]), c.higher_is_better, "
            "c.needs_reference, c.default, metrics.get('pyiqa-musiq').higher_is_better)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(len(pyiqa_nr.NR_MODELS)), "False", "False", "False", "True"]


@needs_pyiqa
def test_static_list_matches_installed_pyiqa():
    from pyiqa.default_model_configs import DEFAULT_CONFIGS

    for name, arch, lower, _ in pyiqa_nr.NR_MODELS:
        cfg = DEFAULT_CONFIGS[name]
        assert cfg["metric_mode"] == "NR", name
        assert bool(cfg.get("lower_better", False)) == lower, name
        assert cfg["metric_opts"]["type"] == arch, name
        assert metrics.get(f"pyiqa-{name}").higher_is_better is (not lower)


@needs_pyiqa
def test_niqe_equals_pyiqa_directly_through_the_engine(niqe_file, tmp_path):
    import pyiqa

    split = no_gt_split(tmp_path / "imgs")
    s = engine.evaluate(engine.RunConfig(method="blurred", split=split, results_dir=tmp_path / "r",
                                         metrics=["pyiqa-niqe", "psnr"], device="cpu"))
    entry = s["metrics"]["pyiqa-niqe"]
    assert entry["status"] == "ok" and entry["count"] == 2 and entry["higher_is_better"] is False
    assert s["metrics"]["psnr"]["status"] == "not-applicable" and s["has_reference"] is False
    # pyiqa on its own, same file, same images (uint8 / 255)
    direct = pyiqa.create_metric("niqe", device="cpu")
    x = torch.from_numpy(face_images()).permute(0, 3, 1, 2).contiguous().float() / 255.0
    want = direct(x).reshape(-1).double().numpy()
    assert np.isfinite(want).all() and want[0] != want[1]
    assert entry["value"] == pytest.approx(float(want.mean()), rel=1e-12, abs=0)
    # per-image values too (rows.jsonl)
    from faceblur_bench.results import read_rows

    rows = read_rows(Path(s["run_dir"]) / "rows.jsonl")
    got = np.array([r["metrics"]["pyiqa-niqe"] for r in rows])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)


@needs_pyiqa
def test_missing_niqe_file_is_na_naming_the_file_and_place(tmp_path):
    assert not (pyiqa_dir() / "niqe_modelparameters.mat").exists()
    split = no_gt_split(tmp_path / "imgs")
    s = engine.evaluate(engine.RunConfig(method="blurred", split=split, results_dir=tmp_path / "r",
                                         metrics=["pyiqa-niqe"], device="cpu"))
    e = s["metrics"]["pyiqa-niqe"]
    assert e["status"] == "unavailable" and e["value"] is None
    assert e["reason"].startswith("weights missing: niqe_modelparameters.mat")
    assert str(pyiqa_dir()) in e["reason"]


@needs_pyiqa
def test_model_without_a_listed_file_turns_its_download_into_na(tmp_path):
    """ILNIQE has no weight entry of ours: pyiqa's own download attempt is blocked and named."""
    cls = metrics.get("pyiqa-ilniqe")
    with pytest.raises(Exception) as info:
        cls().setup(MetricContext("cpu"))
    err = info.value
    assert type(err).__name__ == "WeightsMissingError"
    assert err.short.startswith("ILNIQE_templateModel.mat (" + str(pyiqa_dir()))
    assert not (pyiqa_dir() / "ILNIQE_templateModel.mat").exists()


class Pickled:
    """A class: torch.load(weights_only=True) refuses to rebuild it."""

    def __init__(self):
        self.sv = torch.zeros(3, 36)


@needs_pyiqa
def test_file_with_pickled_objects_is_rejected_not_executed(tmp_path):
    path = pyiqa_dir() / "brisque_svm_weights.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save((Pickled(), torch.zeros(3)), path)
    try:
        split = no_gt_split(tmp_path / "imgs")
        s = engine.evaluate(engine.RunConfig(method="blurred", split=split, results_dir=tmp_path / "r",
                                             metrics=["pyiqa-brisque"], device="cpu"))
    finally:
        path.unlink()
    e = s["metrics"]["pyiqa-brisque"]
    assert e["status"] == "unavailable" and e["reason"].startswith("weights rejected: ")
    assert "weights_only=True" in e["reason"]


def test_without_pyiqa_the_metrics_say_install_the_extra(tmp_path, monkeypatch):
    monkeypatch.setattr(pyiqa_nr, "pyiqa_installed", lambda: False)
    split = no_gt_split(tmp_path / "imgs")
    s = engine.evaluate(engine.RunConfig(method="blurred", split=split, results_dir=tmp_path / "r",
                                         metrics=["pyiqa-musiq"], device="cpu"))
    e = s["metrics"]["pyiqa-musiq"]
    assert e["status"] == "unavailable" and e["reason"].startswith("install faceblur-bench[iqa]")
    with pytest.raises(Exception, match="faceblur-bench\\[iqa\\]"):
        engine.evaluate(engine.RunConfig(method="blurred", split=split, results_dir=tmp_path / "r2",
                                         metrics=["pyiqa-musiq"], device="cpu", strict=True))


def test_weights_table_lists_the_pyiqa_files(tmp_path):
    recs = {r["name"]: r for r in weight_records(hash_files=False)}
    niqe = recs["pyiqa-niqe-params"]
    assert niqe["status"] == "missing" and "pyiqa-niqe" in niqe["used_by"]
    assert niqe["path"] == str(Path(os.environ["TORCH_HOME"]) / "hub" / "pyiqa" / "niqe_modelparameters.mat")
    clip = recs["clip-rn50"]
    assert clip["path"].endswith(os.path.join("hub", "clip", "RN50.pt")) and "pyiqa-clipiqa" in clip["used_by"]
    # placed where pyiqa looks -> found
    p = pyiqa_dir() / "niqe_modelparameters.mat"
    p.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(p, {"mu_prisparam": np.zeros((1, 36)), "cov_prisparam": np.eye(36)})
    try:
        recs = {r["name"]: r for r in weight_records(hash_files=False)}
        assert recs["pyiqa-niqe-params"]["status"] == "found"
    finally:
        p.unlink()


def test_nr_scores_batch_like_single_images(niqe_file):
    """Chunked batch scoring gives each image the value it gets alone."""
    if not pyiqa_nr.pyiqa_installed():
        pytest.skip("pyiqa is not installed (pip install 'faceblur-bench[iqa]')")
    m = metrics.get("pyiqa-niqe")()
    m.setup(MetricContext("cpu"))
    x = torch.from_numpy(face_images()).permute(0, 3, 1, 2).contiguous()
    both = m.compute(Batch([Sample("a", Path("a")), Sample("b", Path("b"))], x, None))
    one = m.compute(Batch([Sample("b", Path("b"))], x[1:], None))
    assert both[1] == pytest.approx(one[0], rel=1e-12)


def test_run_defaults_add_the_no_reference_set_only_without_ground_truth(tmp_path):
    from faceblur_bench.engine import default_metric_names

    demo = default_metric_names("demo", tmp_path)
    assert "psnr" in demo and not any(n.startswith("pyiqa-") for n in demo)
    real = default_metric_names("lai-real", tmp_path)
    assert [n for n in real if n.startswith("pyiqa-")] == list(pyiqa_nr.DEFAULT_NO_REFERENCE)


def _cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    from faceblur_bench.cli import main

    monkeypatch.setattr(sys, "argv", ["faceblur-bench", *args])
    monkeypatch.setenv("COLUMNS", "250")
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_cli_fetch_through_pyiqa_checks_names_and_the_extra(monkeypatch, capsys):
    code, _, err = _cli(monkeypatch, capsys, "weights", "fetch", "pyiqa-nqie")
    assert code == 2 and "did you mean" in err and "pyiqa-niqe" in err
    monkeypatch.setattr(pyiqa_nr, "pyiqa_installed", lambda: False)
    code, _, err = _cli(monkeypatch, capsys, "weights", "fetch", "pyiqa-niqe")
    assert code == 1 and "faceblur-bench[iqa]" in err


def test_metrics_listing_says_install_the_extra_when_pyiqa_is_absent(monkeypatch, capsys):
    import json

    code, out, _ = _cli(monkeypatch, capsys, "metrics", "--json")
    rec = {r["name"]: r for r in json.loads(out)}["pyiqa-niqe"]
    assert code == 0 and rec["better"] == "↓" and "niqe_modelparameters.mat" in rec["protocol"]
    assert rec["protocol"].endswith("install faceblur-bench[iqa]") is (not pyiqa_nr.pyiqa_installed())
    code, out, _ = _cli(monkeypatch, capsys, "metrics")
    assert code == 0 and ("faceblur-bench[iqa]" in out) is (not pyiqa_nr.pyiqa_installed())


@needs_pyiqa
def test_weights_override_is_the_file_pyiqa_loads(niqe_file, tmp_path):
    """--weights pyiqa-niqe-params=PATH: that file is handed to pyiqa (another file, other values)."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((36, 36))
    other = tmp_path / "elsewhere.mat"
    scipy.io.savemat(other, {"mu_prisparam": rng.standard_normal((1, 36)),
                             "cov_prisparam": a @ a.T / 36 + np.eye(36)})
    x = torch.from_numpy(face_images()).permute(0, 3, 1, 2).contiguous()
    batch = Batch([Sample("a", Path("a")), Sample("b", Path("b"))], x, None)
    values = {}
    for key, overrides in (("own", {}), ("other", {"pyiqa-niqe-params": str(other)})):
        m = metrics.get("pyiqa-niqe")()
        m.setup(MetricContext("cpu", weights_overrides=overrides))
        values[key] = m.compute(batch)
    import pyiqa

    direct = pyiqa.create_metric("niqe", device="cpu", pretrained_model_path=str(other))
    want = direct(x.float() / 255.0).reshape(-1).double().numpy()
    np.testing.assert_allclose(values["other"], want, rtol=1e-12, atol=0)
    assert not np.allclose(values["own"], values["other"])
