"""Engine: per-image failures with reasons, nothing lost, resume without recomputation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from faceblur_bench import engine
from faceblur_bench.data.base import Sample, Split
from faceblur_bench.errors import UnknownNameError, UsageError
from faceblur_bench.methods.base import Method
from faceblur_bench.results import read_rows


class DirSplit(Split):
    """Test split: <root>/blur/<id>.png paired with <root>/sharp/<id>.png."""

    name = "dir-split"
    layout = "blur/<id>.png, sharp/<id>.png"

    def find(self) -> Path:
        if not (self.data_root / "blur").is_dir():
            raise self.missing(self.data_root)
        return self.data_root

    def samples(self) -> list[Sample]:
        root = self.find()
        return [Sample(p.stem, p, root / "sharp" / p.name, meta={"n": i})
                for i, p in enumerate(sorted((root / "blur").glob("*.png")))]


def make_tree(root: Path, n: int = 6, size: int = 40, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    (root / "blur").mkdir(parents=True, exist_ok=True)
    (root / "sharp").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        sharp = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        blur = np.clip(sharp.astype(int) + rng.integers(-20, 21, sharp.shape), 0, 255).astype(np.uint8)
        Image.fromarray(sharp).save(root / "sharp" / f"img{i}.png")
        Image.fromarray(blur).save(root / "blur" / f"img{i}.png")
    return root


class Recording(Method):
    """Identity method that records which ids it restored (to detect recomputation)."""

    name = "recording"

    def __init__(self, stop_after: int | None = None):
        super().__init__()  # stop_after is not an option: both runs must share one run key
        self.seen: list[str] = []
        self.stop_after = stop_after

    def restore(self, blurred, meta=None):
        ids = [m["id"] for m in meta]
        if self.stop_after is not None and len(self.seen) >= self.stop_after:
            raise KeyboardInterrupt
        self.seen.extend(ids)
        return blurred.clone()


class Broken(Method):
    """Breaks on chosen ids in chosen ways."""

    name = "broken"

    def restore(self, blurred, meta=None):
        out = blurred.clone()
        for i, m in enumerate(meta):
            how = self.options.get(m["id"])
            if how == "nan":
                out[i, 0, 0, 0] = float("nan")
            elif how == "range255":
                out[i] = out[i] * 255
            elif how == "raise":
                raise RuntimeError(f"cannot restore {m['id']}")
        if self.options.get("shape") and len(meta) == 1 and self.options["shape"] == meta[0]["id"]:
            return out[:, :, :-1]
        return out


def cfg(method, root, out, **kw):
    return engine.RunConfig(method=method, split=DirSplit(root), metrics=["psnr", "ssim"],
                            results_dir=out, batch_size=kw.pop("batch_size", 4), device="cpu", **kw)


def test_values_equal_skimage_and_rows_complete(tmp_path):
    root = make_tree(tmp_path / "d")
    s = engine.evaluate(cfg("blurred", root, tmp_path / "r"))
    rows = {r["id"]: r for r in read_rows(Path(s["run_dir"]) / "rows.jsonl")}
    assert len(rows) == 6 and all(r["status"] == "ok" for r in rows.values())
    for i in range(6):
        a = np.asarray(Image.open(root / "blur" / f"img{i}.png"))
        b = np.asarray(Image.open(root / "sharp" / f"img{i}.png"))
        assert rows[f"img{i}"]["metrics"]["psnr"] == pytest.approx(peak_signal_noise_ratio(b, a), abs=1e-10)
        ref = structural_similarity(b, a, channel_axis=2, data_range=255, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False)
        assert rows[f"img{i}"]["metrics"]["ssim"] == pytest.approx(ref, abs=1e-10)
    assert s["metrics"]["psnr"]["value"] == pytest.approx(np.mean([r["metrics"]["psnr"] for r in rows.values()]))
    assert s["counts"] == {"total": 6, "done": 6, "ok": 6, "failed": 0}
    assert s["complete"] is True and s["provenance"]["device"] == "cpu"


def test_bad_images_and_bad_outputs_are_recorded_and_run_continues(tmp_path):
    root = make_tree(tmp_path / "d", n=8)
    (root / "blur" / "img0.png").write_bytes(b"")  # zero-byte
    data = (root / "blur" / "img1.png").read_bytes()
    (root / "blur" / "img1.png").write_bytes(data[: len(data) // 2])  # truncated
    Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(root / "sharp" / "img2.png")  # size mismatch
    (root / "sharp" / "img7.png").unlink()  # missing ground truth
    method = Broken(img3="nan", img4="range255", img5="raise")
    s = engine.evaluate(cfg(method, root, tmp_path / "r"))
    reasons = {f["id"]: f["reason"] for f in s["failures"]}
    assert set(reasons) == {"img0", "img1", "img2", "img3", "img4", "img5", "img7"}
    assert "zero-byte" in reasons["img0"]
    assert "cannot decode" in reasons["img1"]
    assert "!= ground truth size" in reasons["img2"]
    assert "NaN/inf" in reasons["img3"]
    assert "not [0,1]" in reasons["img4"]
    assert "RuntimeError: cannot restore img5" in reasons["img5"]
    assert "file not found" in reasons["img7"]
    assert s["counts"] == {"total": 8, "done": 8, "ok": 1, "failed": 7}
    assert s["metrics"]["psnr"]["count"] == 1  # only img6 was scored


def test_wrong_shape_output_fails_that_image(tmp_path):
    root = make_tree(tmp_path / "d", n=3)
    s = engine.evaluate(cfg(Broken(shape="img1"), root, tmp_path / "r", batch_size=1))
    assert [f["id"] for f in s["failures"]] == ["img1"]
    assert "shape" in s["failures"][0]["reason"]


def test_resume_after_interrupt_recomputes_nothing_and_matches(tmp_path):
    root = make_tree(tmp_path / "d", n=10)
    full = engine.evaluate(cfg("blurred", root, tmp_path / "full", batch_size=3))

    first = Recording(stop_after=6)
    with pytest.raises(KeyboardInterrupt):
        engine.evaluate(cfg(first, root, tmp_path / "r", batch_size=3))
    run_dir = next((tmp_path / "r").glob("runs/*/*/*"))
    partial = read_rows(run_dir / "rows.jsonl")
    assert [r["id"] for r in partial] == first.seen == [f"img{i}" for i in range(6)]
    assert json.loads((run_dir / "summary.json").read_text())["complete"] is False

    second = Recording()
    s = engine.evaluate(cfg(second, root, tmp_path / "r", batch_size=3))
    assert second.seen == [f"img{i}" for i in range(6, 10)]  # nothing recomputed
    rows = read_rows(run_dir / "rows.jsonl")
    assert [r["id"] for r in rows] == [f"img{i}" for i in range(10)]
    ref = read_rows(Path(full["run_dir"]) / "rows.jsonl")
    assert [r["metrics"] for r in rows] == [r["metrics"] for r in ref]
    assert s["complete"] is True and s["metrics"]["psnr"]["value"] == full["metrics"]["psnr"]["value"]


def test_half_written_row_is_discarded_and_recomputed(tmp_path):
    root = make_tree(tmp_path / "d", n=4)
    s = engine.evaluate(cfg(Recording(), root, tmp_path / "r"))
    rows_path = Path(s["run_dir"]) / "rows.jsonl"
    lines = rows_path.read_bytes().splitlines(keepends=True)
    rows_path.write_bytes(b"".join(lines[:2]) + lines[2][:25])  # crash in the middle of row 3
    assert [r["id"] for r in read_rows(rows_path)] == ["img0", "img1"]
    again = Recording()
    s2 = engine.evaluate(cfg(again, root, tmp_path / "r"))
    assert again.seen == ["img2", "img3"]
    assert [r["id"] for r in read_rows(rows_path)] == ["img0", "img1", "img2", "img3"]
    assert s2["metrics"]["psnr"]["value"] == pytest.approx(s["metrics"]["psnr"]["value"])


def test_different_data_gets_a_different_run(tmp_path):
    root = make_tree(tmp_path / "d", n=3)
    a = engine.evaluate(cfg("blurred", root, tmp_path / "r"))
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(root / "sharp" / "img0.png")  # content + size change
    b = engine.evaluate(cfg("blurred", root, tmp_path / "r"))
    assert a["run_key"] != b["run_key"] and a["split_fingerprint"] != b["split_fingerprint"]


def test_unknown_names_and_missing_split(tmp_path):
    with pytest.raises(UnknownNameError) as e:
        engine.make_method("wienr")
    assert "did you mean 'wiener'" in str(e.value)
    with pytest.raises(UnknownNameError):
        engine.open_split("mspl-centre", tmp_path)
    with pytest.raises(UsageError) as e:
        engine.evaluate(cfg("blurred", tmp_path / "nowhere", tmp_path / "r"))
    assert "blur/<id>.png" in str(e.value)


def test_oracle_baseline_refuses_split_without_kernels(tmp_path):
    root = make_tree(tmp_path / "d", n=2)
    with pytest.raises(UsageError) as e:
        engine.evaluate(cfg("wiener", root, tmp_path / "r"))
    assert "provides none" in str(e.value)


def test_check_output_rules():
    x = torch.rand(2, 3, 8, 8)
    out, reasons = engine.check_output(x * 1.2 - 0.1, (2, 3, 8, 8))
    assert reasons == [None, None] and float(out.min()) >= 0 and float(out.max()) <= 1
    with pytest.raises(Exception, match="dtype"):
        engine.check_output((x * 255).to(torch.uint8), (2, 3, 8, 8))
    with pytest.raises(Exception, match="shape"):
        engine.check_output(x, (2, 3, 16, 16))


def test_runtime_is_measured_and_kept_on_resume(tmp_path):
    root = make_tree(tmp_path / "d", n=2)
    s = engine.evaluate(cfg("blurred", root, tmp_path / "r", runtime=True, runtime_repeats=3))
    rt = s["runtime"]
    assert rt["timer"] == "perf_counter" and rt["parameters"] == 0
    assert [(r["batch"], r["dtype"]) for r in rt["results"]] == [(1, "fp32"), (16, "fp32")]
    assert rt["per_image_s"] == pytest.approx(rt["results"][0]["median_ms"] / 1000)
    again = engine.evaluate(cfg("blurred", root, tmp_path / "r"))  # resumed without --runtime
    assert again["runtime"] == rt


def test_identical_pair_keeps_inf_per_image_and_a_finite_mean(tmp_path):
    """One identical pair: its row says +inf (as skimage), the split's PSNR is the mean of the
    other images with the count of identical pairs stated, in the summary and in the table."""
    import math

    from faceblur_bench.report.tables import summary_table

    root = make_tree(tmp_path / "d", n=4)
    (root / "blur" / "img2.png").write_bytes((root / "sharp" / "img2.png").read_bytes())
    s = engine.evaluate(cfg("blurred", root, tmp_path / "r"))
    rows = {r["id"]: r for r in read_rows(Path(s["run_dir"]) / "rows.jsonl")}
    assert math.isinf(rows["img2"]["metrics"]["psnr"])
    finite = [rows[i]["metrics"]["psnr"] for i in ("img0", "img1", "img3")]
    p = s["metrics"]["psnr"]
    assert p["value"] == pytest.approx(np.mean(finite)) and math.isfinite(p["value"])
    assert p["count"] == 3 and p["extra"]["infinite"] == 1
    assert s["metrics"]["ssim"]["extra"].get("infinite") is None  # SSIM of the pair is 1, finite
    stored = json.loads((Path(s["run_dir"]) / "summary.json").read_text())
    assert stored["metrics"]["psnr"]["extra"]["infinite"] == 1
    md = summary_table([stored], ["psnr"], fmt="md")
    assert f"{np.mean(finite):.2f} (1×∞)" in md and "| ∞ |" not in md
    assert "identical to their reference" in md


def test_identical_pair_in_a_per_kernel_size_cell(tmp_path):
    from test_report_helpers import row, write_run

    from faceblur_bench.report import store
    from faceblur_bench.report.layouts import get_layout, render_layout

    rows = [row("a", {"psnr": 20.0, "ssim": 0.5}, kernel_size=13),
            row("b", {"psnr": float("inf"), "ssim": 1.0}, kernel_size=13),
            row("c", {"psnr": 24.0, "ssim": 0.7}, kernel_size=13)]
    write_run(tmp_path, "m", "shen-helen", {"psnr": 22.0, "ssim": 0.7}, rows=rows)
    text = render_layout(get_layout("shen-t9"), store.load_summaries(tmp_path), split="shen-helen")
    line = next(ln for ln in text.splitlines() if ln.startswith("| m |"))
    assert "22.00 (1×∞)" in line and "identical to their reference" in text
