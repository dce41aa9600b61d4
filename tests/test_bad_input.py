"""Bad-input suite: each case ends in a clear error or a recorded per-image failure, the run goes
on where that makes sense, and nothing already computed is lost."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from faceblur_bench import engine
from faceblur_bench.data.base import Sample, Split
from faceblur_bench.errors import DataLayoutError, ImageError, UsageError
from faceblur_bench.imageio import decode, read_image
from faceblur_bench.methods.base import Method
from faceblur_bench.results import read_rows

from test_engine import DirSplit, make_tree


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


# -- image conversion rules ---------------------------------------------------------------------
def test_grayscale_is_replicated_to_rgb():
    g = np.arange(64, dtype=np.uint8).reshape(8, 8)
    out = decode(_png(Image.fromarray(g)))
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8
    assert (out == g[..., None]).all()


def test_rgba_drops_alpha_without_compositing():
    rgba = np.random.default_rng(0).integers(0, 256, (8, 8, 4), dtype=np.uint8)
    out = decode(_png(Image.fromarray(rgba)))
    assert (out == rgba[..., :3]).all()


def test_palette_is_expanded_through_the_palette():
    rgb = np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    p = Image.fromarray(rgb).quantize(colors=16)
    out = decode(_png(p))
    assert (out == np.asarray(p.convert("RGB"))).all() and len(np.unique(out.reshape(-1, 3), axis=0)) <= 16


def test_16bit_is_scaled_by_257():
    a16 = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    im = Image.fromarray(a16)
    assert im.mode.startswith("I;16")
    out = decode(_png(im))
    assert (out[..., 0] == np.clip(np.round(a16 / 257.0), 0, 255).astype(np.uint8)).all()


@pytest.mark.parametrize("data,needle", [(b"", "zero-byte"), (b"\x89PNG\r\n\x1a\nGARBAGE", "cannot decode")])
def test_corrupt_bytes_name_the_file(data, needle):
    with pytest.raises(ImageError) as e:
        decode(data, "faces/x.png")
    assert "faces/x.png" in str(e.value) and needle in str(e.value)


def test_truncated_png_is_refused(tmp_path):
    data = _png(Image.fromarray(np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)))
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="t.png"):
        read_image(tmp_path / "t.png")


# -- method outputs -------------------------------------------------------------------------------
class ReturnsUint8(Method):
    name = "returns-uint8"

    def restore(self, blurred, meta=None):
        return (blurred * 255).to(torch.uint8)


def test_wrong_dtype_output_fails_every_image_with_reason(tmp_path):
    root = make_tree(tmp_path / "d", n=3)
    s = engine.evaluate(engine.RunConfig(method=ReturnsUint8(), split=DirSplit(root), metrics=["psnr"],
                                         results_dir=tmp_path / "r", device="cpu"))
    assert s["counts"]["failed"] == 3
    assert all("dtype torch.uint8" in f["reason"] for f in s["failures"])
    assert s["metrics"]["psnr"]["value"] is None and s["metrics"]["psnr"]["count"] == 0


# -- split-level problems -------------------------------------------------------------------------
class DupSplit(DirSplit):
    def samples(self):
        s = super().samples()
        return s + [Sample(s[0].id, s[1].blurred, s[1].sharp)]


def test_duplicate_sample_ids_are_refused(tmp_path):
    root = make_tree(tmp_path / "d", n=3)
    with pytest.raises(UsageError, match="duplicate sample ids: img0"):
        engine.evaluate(engine.RunConfig(method="blurred", split=DupSplit(root), metrics=["psnr"],
                                         results_dir=tmp_path / "r", device="cpu"))


def test_split_changed_since_manifest_is_refused_and_results_kept(tmp_path):
    from faceblur_bench.data.manifest import verify

    root = make_tree(tmp_path / "d", n=4)
    split = DirSplit(root)
    res = verify(split)
    assert res.created
    first = engine.evaluate(engine.RunConfig(method="blurred", split=split, metrics=["psnr"],
                                             results_dir=tmp_path / "r", device="cpu"))
    rows_before = (Path(first["run_dir"]) / "rows.jsonl").read_bytes()
    im = np.asarray(Image.open(root / "blur" / "img2.png")).copy()
    im[0, 0] ^= 1
    Image.fromarray(im).save(root / "blur" / "img2.png")  # one bit of one pixel
    with pytest.raises(DataLayoutError) as e:
        engine.evaluate(engine.RunConfig(method="blurred", split=DirSplit(root), metrics=["psnr"],
                                         results_dir=tmp_path / "r", device="cpu"))
    assert "changed on disk since its manifest" in str(e.value) and "--rewrite" in str(e.value)
    assert (Path(first["run_dir"]) / "rows.jsonl").read_bytes() == rows_before


def test_same_seed_same_results_on_cpu(tmp_path, demo_data_root):
    """Determinism: two runs of the same configuration give identical per-image values."""
    runs = []
    for k in range(2):
        s = engine.evaluate(engine.RunConfig(method="richardson-lucy", split="demo", data_root=demo_data_root,
                                             metrics=["psnr", "ssim"], results_dir=tmp_path / f"r{k}",
                                             device="cpu", limit=6, seed=3))
        runs.append([(r["id"], r["metrics"]) for r in read_rows(Path(s["run_dir"]) / "rows.jsonl")])
        assert s["provenance"]["seed"] == 3 and "cudnn_deterministic" in s["provenance"]
    assert runs[0] == runs[1] and len(runs[0]) == 6


def test_folder_pattern_cannot_escape(tmp_path):
    from baselines.folder import Folder

    (tmp_path / "outs").mkdir()
    m = Folder(dir=str(tmp_path / "outs"), pattern="../{stem}.png")
    with pytest.raises(UsageError, match="escapes"):
        m.path_for({"id": "a", "blurred_name": "a.png"})


def test_summary_json_is_never_half_written(tmp_path):
    """The summary is replaced atomically: a reader sees the old or the new file, never a mix."""
    from faceblur_bench.results import atomic_write_json

    p = tmp_path / "summary.json"
    atomic_write_json(p, {"a": 1})
    atomic_write_json(p, {"a": 2, "b": [1.5, float("inf")]})
    assert json.loads(p.read_text()) == {"a": 2, "b": [1.5, float("inf")]}
    assert [x.name for x in tmp_path.iterdir()] == ["summary.json"]
