"""Bad-input suite: each case ends in a clear error or a recorded per-image failure, the run goes
on where that makes sense, and nothing already computed is lost."""

from __future__ import annotations

import dataclasses
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_engine import DirSplit, make_tree

from faceblur_bench import engine
from faceblur_bench.data.base import Sample
from faceblur_bench.errors import DataLayoutError, ImageError, UsageError
from faceblur_bench.imageio import decode, read_image
from faceblur_bench.methods.base import Method
from faceblur_bench.results import read_rows


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


# -- issue 13: adversarial inputs ---------------------------------------------------------------
def _score_tree(root: Path, n: int = 3, size: int = 32) -> tuple[Path, Path]:
    """``root/out/img{i}.png`` (restored) == ``root/gt/img{i}.png`` (reference) plus noise."""
    rng = np.random.default_rng(5)
    (root / "out").mkdir(parents=True)
    (root / "gt").mkdir(parents=True)
    for i in range(n):
        ref = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        out = np.clip(ref.astype(int) + rng.integers(-8, 9, ref.shape), 0, 255).astype(np.uint8)
        Image.fromarray(ref).save(root / "gt" / f"img{i}.png")
        Image.fromarray(out).save(root / "out" / f"img{i}.png")
    return root / "out", root / "gt"


def _score(restored, reference, tmp_path, pattern="{stem}{suffix}", metrics=("psnr",)) -> dict:
    from faceblur_bench.data.folders import PairedFolders

    split = PairedFolders(restored, reference, pattern)
    return engine.evaluate(engine.RunConfig(method="blurred", split=split, metrics=list(metrics),
                                            results_dir=tmp_path / "res", device="cpu"))


def _rows(summary: dict) -> dict[str, dict]:
    return {r["id"]: r for r in read_rows(Path(summary["run_dir"]) / "rows.jsonl")}


def _bomb_png(path: Path, side: int = 14000) -> Path:
    """A 1-bit PNG of side x side pixels: ~24 KB on disk, 196 M pixels once decoded."""
    Image.new("1", (side, side)).save(path)
    return path


def test_decompression_bomb_is_a_per_image_failure_in_every_resume(tmp_path):
    out, gt = _score_tree(tmp_path / "d")
    _bomb_png(out / "img1.png")
    for _ in range(2):  # the run and its resume: both finish, the bomb is never decoded
        s = _score(out, gt, tmp_path)
        assert s["counts"] == {"total": 3, "done": 3, "ok": 2, "failed": 1}
        (f,) = s["failures"]
        assert f["id"] == "img1" and "196,000,000 pixels" in f["reason"] and "pixel limit of 89,478,485" in f["reason"]
    with pytest.raises(ImageError) as e:
        read_image(out / "img1.png")
    assert "FACEBLUR_MAX_IMAGE_PIXELS" in str(e.value)  # the hint says how to raise the limit


def test_pixel_limit_is_set_by_environment(tmp_path, monkeypatch):
    from faceblur_bench.imageio import image_size

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored afterwards
    p = tmp_path / "a.png"
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(p)
    monkeypatch.setenv("FACEBLUR_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(ImageError, match=r"40x30 = 1,200 pixels, over the pixel limit of 1,000"):
        read_image(p)
    with pytest.raises(ImageError, match="pixel limit"):
        image_size(p)  # header reads (layout size checks) apply the same limit
    monkeypatch.setenv("FACEBLUR_MAX_IMAGE_PIXELS", "1200")
    assert read_image(p).shape == (30, 40, 3)
    monkeypatch.setenv("FACEBLUR_MAX_IMAGE_PIXELS", "0")  # off: even beyond Pillow's own error limit
    assert read_image(_bomb_png(tmp_path / "big.png", 13500)).shape == (13500, 13500, 3)
    monkeypatch.setenv("FACEBLUR_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(UsageError, match="FACEBLUR_MAX_IMAGE_PIXELS='lots' is not a pixel count"):
        read_image(p)


def _jpeg_with_orientation(path: Path, stored: np.ndarray, orientation: int) -> np.ndarray:
    """Write ``stored`` as a JPEG tagged with EXIF ``orientation``; return its decoded stored pixels."""
    exif = Image.Exif()
    exif[274] = orientation
    Image.fromarray(stored).save(path, format="JPEG", quality=95, exif=exif.tobytes())
    with Image.open(path) as im:  # the pixels as stored in the file, before any orientation
        return np.asarray(im.convert("RGB"))


@pytest.mark.parametrize("h,w", [(32, 32), (32, 48)])
def test_exif_orientation_is_applied_on_both_sides(tmp_path, h, w):
    from faceblur_bench.imageio import image_size

    rng = np.random.default_rng(7)
    (tmp_path / "gt").mkdir()
    (tmp_path / "out").mkdir()
    stored = _jpeg_with_orientation(tmp_path / "gt" / "face.jpg",
                                    rng.integers(0, 256, (h, w, 3), dtype=np.uint8), 6)
    # orientation 6: a viewer turns the stored pixels 90 degrees clockwise; the restored PNG was
    # saved as displayed
    shown = np.ascontiguousarray(np.rot90(stored, k=-1))
    Image.fromarray(shown).save(tmp_path / "out" / "face.png")
    assert (read_image(tmp_path / "gt" / "face.jpg") == shown).all()
    assert image_size(tmp_path / "gt" / "face.jpg") == (h, w)  # (width, height) as displayed
    s = _score(tmp_path / "out", tmp_path / "gt", tmp_path, pattern="{stem}.png")
    assert s["counts"]["ok"] == 1 and s["metrics"]["psnr"]["value"] > 60  # identical pixels
    # and the same JPEG as the restored side (a camera file scored against a PNG reference)
    (tmp_path / "gt2").mkdir()
    Image.fromarray(shown).save(tmp_path / "gt2" / "face.png")
    s2 = _score(tmp_path / "gt", tmp_path / "gt2", tmp_path / "b", pattern="{stem}.jpg")
    assert s2["counts"]["ok"] == 1 and s2["metrics"]["psnr"]["value"] > 60


def test_animated_output_against_a_still_reference_is_a_failed_row_naming_both_counts(tmp_path):
    """Sequences are paired frame by frame: a 3-frame APNG is not silently cut to its first
    frame when its reference is one image; the other pair is scored."""
    out, gt = _score_tree(tmp_path / "d", n=2)
    first = np.asarray(Image.open(out / "img0.png").convert("RGB"))
    frames = [Image.fromarray(first)] + [Image.fromarray(255 - first) for _ in range(2)]
    frames[0].save(out / "img0.png", save_all=True, append_images=frames[1:])
    s = _score(out, gt, tmp_path)
    rows = _rows(s)
    assert s["counts"]["ok"] == 1 and s["counts"]["failed"] == 1
    assert rows["img0"]["reason"] == ("img0.png has 3 frame(s), the reference img0.png has 1: "
                                      "sequences are paired frame by frame")
    assert rows["img1"]["status"] == "ok"


def test_score_folders_with_different_parents_and_relative_paths(tmp_path, monkeypatch):
    """Both user-given folders are roots: neither must lie under the other's parent."""
    out, _ = _score_tree(tmp_path / "p1")
    _, gt = _score_tree(tmp_path / "p2")
    s = _score(out, gt, tmp_path)
    assert s["counts"]["ok"] == 3 and s["split"] == "folders:gt"
    monkeypatch.chdir(gt)  # cd gt && score --restored ../../p1/out --reference .
    s = _score(Path("../../p1/out"), Path("."), tmp_path)
    assert s["counts"]["ok"] == 3 and s["split"] == "folders:gt"


@pytest.mark.parametrize("pattern,needle", [
    ("{}", "has a positional field {}"),
    ("{0}", "has a positional field {0}"),
    ("{foo}", "uses {foo}, which is not a placeholder"),
    ("{nmae}", "did you mean {name}?"),
    ("{stem.upper}", "{stem.upper} uses attribute or index access"),
    ("{stem.__class__.__name__}", "uses attribute or index access"),
    ("{stem[0]}", "{stem[0]} uses attribute or index access"),
    ("{stem!r}", "has a conversion"),
    ("{stem:{name}}", "holds a nested field"),
    ("{stem", "is not a valid template"),
    ("stem}", "is not a valid template"),
    ("out.png", "has no placeholder"),
    ("{stem:d}", "cannot be filled in"),
    ("{stem:>999999999}", "asks for more than 255 characters"),
])
def test_bad_pattern_is_a_usage_error_naming_the_placeholders(tmp_path, pattern, needle):
    out, gt = _score_tree(tmp_path / "d", n=1)
    with pytest.raises(UsageError) as e:
        _score(out, gt, tmp_path, pattern=pattern)
    assert needle in str(e.value) and "{stem}, {suffix}, {name}" in str(e.value)
    assert e.value.exit_code == 2


def test_bad_pattern_exits_2_on_the_command_line(tmp_path, monkeypatch, capsys):
    import sys

    from faceblur_bench.cli import app, run_app

    out, gt = _score_tree(tmp_path / "d", n=1)
    monkeypatch.setattr(sys, "argv", ["faceblur-bench", "score", "--restored", str(out), "--reference",
                                      str(gt), "--pattern", "{foo}", "--device", "cpu"])
    with pytest.raises(SystemExit) as e:
        run_app(app)
    err = capsys.readouterr().err
    assert e.value.code == 2 and "{foo}" in err and "{stem}, {suffix}, {name}" in err
    assert "Traceback" not in err


def test_symlink_out_of_the_restored_folder_is_named(tmp_path):
    out, gt = _score_tree(tmp_path / "d")
    elsewhere = tmp_path / "elsewhere.png"
    (out / "img1.png").rename(elsewhere)
    (out / "img1.png").symlink_to(elsewhere)
    with pytest.raises(DataLayoutError) as e:
        _score(out, gt, tmp_path)
    msg = str(e.value)
    assert f"restored file {out / 'img1.png'} is a symlink to {elsewhere}, outside {out}" in msg
    assert "pattern" not in msg.splitlines()[0]
    # a symlink that stays inside the folder is an ordinary file
    (out / "img1.png").unlink()
    elsewhere.rename(out / "real1.png")
    (out / "img1.png").symlink_to(out / "real1.png")
    assert _score(out, gt, tmp_path)["counts"]["ok"] == 3


def test_directory_named_like_an_image_is_skipped_with_a_warning(tmp_path):
    out, gt = _score_tree(tmp_path / "d")
    (gt / "d.png").mkdir()
    with pytest.warns(UserWarning, match=r"d\.png: not an image file \(a directory\); skipped"):
        s = _score(out, gt, tmp_path)
    assert s["counts"] == {"total": 3, "done": 3, "ok": 3, "failed": 0}


def _non_utf8(p: Path) -> Path:
    return Path(os.fsdecode(os.fsencode(p) + b"\xff.png"))


def test_non_utf8_file_name_is_refused_by_name_in_score_and_run(tmp_path):
    from faceblur_bench.data.synth import read_sharp_dir

    out, gt = _score_tree(tmp_path / "d", n=2)
    for d in (out, gt):
        (d / "img1.png").rename(_non_utf8(d / "img"))
    with pytest.raises(DataLayoutError) as e:  # score
        _score(out, gt, tmp_path)
    assert "img\\xff.png: file name is not valid UTF-8" in str(e.value) and "rename" in str(e.value)
    # run on a split whose files carry such a name (e.g. a make-split output): same refusal
    root = make_tree(tmp_path / "tree", n=2, size=16)
    for sub in ("blur", "sharp"):
        (root / sub / "img1.png").rename(_non_utf8(root / sub / "img"))
    with pytest.raises(DataLayoutError, match=r"img\\xff\.png: file name is not valid UTF-8"):
        engine.evaluate(engine.RunConfig(method="blurred", split=DirSplit(root), metrics=["psnr"],
                                         results_dir=tmp_path / "r", device="cpu"))
    # and make-split refuses it before writing anything
    with pytest.raises(DataLayoutError, match=r"img\\xff\.png: file name is not valid UTF-8"):
        read_sharp_dir(root / "sharp", size=16)


def test_kernel_npy_holding_an_object_array_is_refused_by_name(tmp_path):
    from faceblur_bench.data.layout import KernelStore

    kdir = tmp_path / "kernels"
    kdir.mkdir()
    np.save(kdir / "blur_k13.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(DataLayoutError) as e:
        KernelStore(kdir).get(13, 1)
    assert f"{kdir / 'blur_k13.npy'}: kernel file holds an object array" in str(e.value)
    np.save(kdir / "blur_k15.npy", np.full((2, 15, 15), "x"))
    with pytest.raises(DataLayoutError, match=r"blur_k15\.npy: kernel file holds dtype <U1"):
        KernelStore(kdir).get(15, 1)


def test_hand_edited_manifest_hash_verify_and_run_agree(tmp_path):
    from faceblur_bench.data.manifest import manifest_path, verify

    root = make_tree(tmp_path / "d", n=3, size=16)
    assert verify(DirSplit(root)).created
    mp = manifest_path(DirSplit(root))
    man = json.loads(mp.read_text())
    man["hash"] = "0" * 64
    mp.write_text(json.dumps(man))
    res = verify(DirSplit(root))
    assert not res.ok and not res.changed  # the data side is unchanged ...
    assert any("was edited: its 'hash' field 0000000000000000" in p for p in res.problems)  # ... the manifest is not
    with pytest.raises(DataLayoutError) as e:
        engine.evaluate(engine.RunConfig(method="blurred", split=DirSplit(root), metrics=["psnr"],
                                         results_dir=tmp_path / "r", device="cpu"))
    assert "was edited: its 'hash' field" in str(e.value) and "--rewrite" in str(e.value)
    assert verify(DirSplit(root), rewrite=True).created and verify(DirSplit(root)).ok
    assert engine.evaluate(engine.RunConfig(method="blurred", split=DirSplit(root), metrics=["psnr"],
                                            results_dir=tmp_path / "r", device="cpu"))["counts"]["ok"] == 3


def test_markdown_cells_are_escaped_and_control_characters_stripped(tmp_path):
    from faceblur_bench.report.leaderboard import build_leaderboard
    from faceblur_bench.report.render import md_escape

    root = make_tree(tmp_path / "d", n=2, size=16)

    class Evil(Method):
        name = "evil\n## injected heading"

        def restore(self, blurred, meta=None):
            return blurred

    s = engine.evaluate(engine.RunConfig(method=Evil(), split=DirSplit(root), metrics=["psnr"],
                                         results_dir=tmp_path / "res", device="cpu"))
    summary_path = Path(s["run_dir"]) / "summary.json"
    summ = json.loads(summary_path.read_text())
    summ["metrics"]["psnr"].update(value=None, status="error",
                                   reason="\x1b[31mCUDA error\x1b[0m: <b>bad</b> | [x](http://e)")
    summary_path.write_text(json.dumps(summ))
    text = build_leaderboard(tmp_path / "res", include_published=False)
    assert "\x1b" not in text and "[31m" not in text
    assert not any(line.startswith("## injected") for line in text.splitlines())
    assert "| evil \\#\\# injected heading |" in text  # the name stays on its row, as literal text
    assert "CUDA error: \\<b\\>bad\\</b\\> \\| \\[x\\](http://e)" in text
    assert md_escape("a\tb\x00c\u202ed") == "a bcd"


# -- issue 13 items 2, 4, 5, 10 (run store) --------------------------------------------------------
def _ids_tree(root: Path, ids: list[str], size: int = 32) -> Path:
    """DirSplit tree whose sample ids are ``ids`` (distinct random content per id)."""
    rng = np.random.default_rng(11)
    for sub in ("blur", "sharp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in ids:
        img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(img).save(root / "blur" / f"{i}.png")
        Image.fromarray(img).save(root / "sharp" / f"{i}.png")
    return root


def test_save_images_keeps_one_file_per_id_when_escaping_collides(tmp_path):
    """Ids ``a b`` and ``a_b`` escape to the same characters: both images are kept, each under
    its own name (``results.image_path``), with its own pixels."""
    from faceblur_bench.results import image_path

    root = _ids_tree(tmp_path / "d", ["a b", "a_b", "a+b"])
    s = engine.evaluate(engine.RunConfig(method="blurred", split=DirSplit(root), metrics=["psnr"],
                                         results_dir=tmp_path / "res", device="cpu", save_images=True))
    assert s["counts"]["ok"] == 3
    saved = sorted((Path(s["run_dir"]) / "images").iterdir())
    assert len(saved) == 3  # one file per id, none overwritten
    for i in ("a b", "a_b", "a+b"):
        p = image_path(s["run_dir"], i)
        assert np.array_equal(np.asarray(Image.open(p)), np.asarray(Image.open(root / "blur" / f"{i}.png")))
    assert len({image_path(s["run_dir"], i) for i in ("a b", "a_b", "a+b")}) == 3


def _engine_cfg(method, root, out, **kw):
    return engine.RunConfig(method=method, split=DirSplit(root), metrics=kw.pop("metrics", ["psnr", "ssim"]),
                            results_dir=out, device="cpu", batch_size=kw.pop("batch_size", 4), **kw)


class _Recording(Method):
    name = "recording"

    def __init__(self):
        super().__init__()
        self.seen: list[str] = []

    def restore(self, blurred, meta=None):
        self.seen.extend(m["id"] for m in meta)
        return blurred.clone()


def test_malformed_rows_are_discarded_with_a_warning_and_rescored(tmp_path):
    """Hand-edited rows (a metric value that is a string, ``metrics`` not an object, an ``id``
    that is not a string) never crash a resume or ``check``: each is discarded like a torn line,
    with a warning naming the file and line, and its image is scored again."""
    from faceblur_bench.errors import ResultsWarning
    from faceblur_bench.report.check import compare

    root = make_tree(tmp_path / "d", n=5, size=24)
    full = engine.evaluate(_engine_cfg("blurred", root, tmp_path / "full"))
    s = engine.evaluate(_engine_cfg(_Recording(), root, tmp_path / "r"))
    rows_path = Path(s["run_dir"]) / "rows.jsonl"
    rows = [json.loads(x) for x in rows_path.read_text().splitlines()]
    rows[0]["metrics"]["psnr"] = "27.1 dB"
    rows[1]["metrics"] = [1, 2]
    rows[2]["id"] = 2
    rows[4]["status"] = None  # the last line too: a complete line is never cut, only discarded
    rows_path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    again = _Recording()
    with pytest.warns(ResultsWarning) as w:
        s2 = engine.evaluate(_engine_cfg(again, root, tmp_path / "r"))
    msgs = [str(x.message) for x in w]
    for line, why in ((1, "metric 'psnr' is not a number"), (2, "'metrics' is not an object"),
                      (3, "'id' is not a string"), (5, "'status' is not a string")):
        assert any(f"{rows_path}:{line}: row discarded ({why}" in m for m in msgs), msgs
    assert again.seen == ["img0", "img1", "img2", "img4"]  # the discarded rows' images only
    assert s2["complete"] and s2["counts"]["ok"] == 5 and s2["rows_discarded"] == 4
    assert s2["metrics"]["psnr"]["value"] == full["metrics"]["psnr"]["value"]
    import shutil

    base = tmp_path / "base-run"  # check pairs only runs of the same method: a copy of this one
    shutil.copytree(s2["run_dir"], base)
    with pytest.warns(ResultsWarning):
        res = compare(base, s2["run_dir"])  # check reads the same rows: no crash
    assert res.exit_code == 0 and res.compared_images == 5


def test_conflicting_duplicate_row_is_reported_not_taken(tmp_path):
    from faceblur_bench.errors import ResultsWarning
    from faceblur_bench.report.store import read_rows as report_rows

    root = make_tree(tmp_path / "d", n=3, size=24)
    s = engine.evaluate(_engine_cfg("blurred", root, tmp_path / "r"))
    rows_path = Path(s["run_dir"]) / "rows.jsonl"
    first = json.loads(rows_path.read_text().splitlines()[0])
    forged = dict(first, metrics={**first["metrics"], "psnr": 99.0})
    with rows_path.open("a") as f:
        f.write(json.dumps(forged) + "\n")
    with pytest.warns(ResultsWarning, match=r"second row for 'img0' disagrees.*psnr: kept"):
        s2 = engine.evaluate(_engine_cfg("blurred", root, tmp_path / "r"))
    assert s2["row_conflicts"] == [{"id": "img0", "metric": "psnr", "kept": first["metrics"]["psnr"],
                                    "ignored": 99.0}]
    assert s2["metrics"]["psnr"]["value"] == s["metrics"]["psnr"]["value"]
    with pytest.warns(ResultsWarning, match="img0"):
        assert report_rows(s2["run_dir"])[0]["metrics"]["psnr"] == first["metrics"]["psnr"]


def test_summary_with_wrong_types_is_skipped_by_readers_and_rebuilt_by_run(tmp_path):
    """A corrupt summary.json of one run never blocks the tables of the others: readers skip it
    with a warning naming the file; the next run rebuilds it from the rows."""
    from faceblur_bench.errors import ResultsWarning
    from faceblur_bench.report import store
    from faceblur_bench.report.check import compare
    from faceblur_bench.report.leaderboard import build_leaderboard
    from faceblur_bench.report.tables import summary_table

    root = make_tree(tmp_path / "d", n=3, size=24)
    res = tmp_path / "res"
    good = engine.evaluate(_engine_cfg("blurred", root, res))
    bad = engine.evaluate(_engine_cfg(_Recording(), root, res))
    bad_path = Path(bad["run_dir"]) / "summary.json"
    for corrupt in ({"counts": {"ok": "3"}}, {"metrics": {"psnr": {"value": "high"}}},
                    {"provenance": []}, {"complete": "yes"}):
        summ = {**json.loads(json.dumps(good)), **corrupt, "method": "recording"}
        bad_path.write_text(json.dumps(summ))
        with pytest.raises(store.ResultsInputError, match="summary.json"):
            store.load_summary(bad["run_dir"])  # asked for by name: a clear error, no traceback
        with pytest.warns(ResultsWarning, match=f"skipped run {Path(bad['run_dir'])}"):
            runs = store.load_summaries(res)
        assert [r["method"] for r in runs] == ["blurred"]
        with pytest.warns(ResultsWarning):
            assert "| blurred |" in build_leaderboard(res, include_published=False)
        assert "blurred" in summary_table(runs)
        import shutil

        shutil.rmtree(tmp_path / "baseline", ignore_errors=True)  # (a loop: a fresh copy each time)
        shutil.copytree(res, tmp_path / "baseline")  # a baseline of its own (check refuses res vs res)
        with pytest.warns(ResultsWarning):
            assert compare(tmp_path / "baseline", res).exit_code == 0
    bad_path.write_text("[1, 2]")  # not even an object: the run still resumes and rewrites it
    again = engine.evaluate(_engine_cfg(_Recording(), root, res))
    assert store.load_summary(again["run_dir"])["counts"]["ok"] == 3


def _random_alexnet_home(home: Path, monkeypatch) -> None:
    """$TORCH_HOME with a random torchvision AlexNet under its upstream name (LPIPS 'alex'); the
    unused classifier matrices are stride-0 expansions, so the file stays small. A random file
    cannot carry upstream's sha256 prefix: the test entry skips that check."""
    import dataclasses

    import torchvision

    from faceblur_bench import weights

    torch.manual_seed(0)
    sd = {k: (torch.randn(1).expand(v.shape) if k.startswith("classifier") else v)
          for k, v in torchvision.models.alexnet(weights=None).state_dict().items()}
    ck = home / "hub" / "checkpoints"
    ck.mkdir(parents=True)
    torch.save(sd, ck / "alexnet-owt-7be5be79.pth")
    monkeypatch.setenv("TORCH_HOME", str(home))
    e = weights.KNOWN["lpips-alex-backbone"]
    monkeypatch.setitem(weights.KNOWN, e.name, dataclasses.replace(e, sha256=None, sha256_prefix=None))


def test_paired_metric_values_do_not_depend_on_the_batch(tmp_path, demo_data_root, monkeypatch):
    """Batch 1 vs 3 vs 8 on 8 images (singles, full batches with a short last one, one batch):
    identical bits for every registered paired metric that can run here (ssim-matlab-rgb
    reduced over a batch differed in the last bits)."""
    from faceblur_bench.metrics.base import MetricContext
    from faceblur_bench.registry import metrics as metric_registry

    _random_alexnet_home(tmp_path / "torch", monkeypatch)

    split = engine.open_split("demo", demo_data_root)
    ctx = MetricContext("cpu", split=split)
    names = []
    for name, cls in metric_registry.items():
        if cls.kind != "paired" or name.startswith("pyiqa-"):  # pyiqa: optional [iqa] extra
            continue
        try:
            cls().setup(ctx)
        except Exception:  # noqa: BLE001, S112 — weights or packages this machine lacks: cannot run here
            continue
        names.append(name)
    assert {"psnr", "ssim", "ssim-matlab-rgb", "psnr-y", "ssim-y", "identity-dlib",
            "lpips-alex"} <= set(names)
    runs = []
    for bs in (1, 3, 8):
        s = engine.evaluate(engine.RunConfig(method="blurred", split="demo", limit=8, metrics=names,
                                             batch_size=bs, results_dir=tmp_path / f"b{bs}",
                                             device="cpu", data_root=demo_data_root))
        rows = read_rows(Path(s["run_dir"]) / "rows.jsonl")
        assert len(rows) == 8 and all(r["status"] == "ok" for r in rows)
        runs.append({r["id"]: r["metrics"] for r in rows})
    for name in names:
        for i in runs[0]:
            a, b, c = (np.float64(r[i].get(name, np.nan)) for r in runs)
            assert a.tobytes() == b.tobytes() == c.tobytes(), (name, i, a, b, c)


def test_stored_values_never_depend_on_the_batch_whatever_the_metric_does(tmp_path, monkeypatch):
    """The protocol scores each image on its own: even a metric whose batched computation
    depends on the batch (here openly: its value carries the batch size) stores the same bits
    at --batch-size 1, 3 and 6, so an interrupted or re-batched run resumes bit-exactly."""
    from faceblur_bench.metrics.base import Metric
    from faceblur_bench.registry import metrics as metric_registry

    class BatchSensitive(Metric):
        name = "batch-sensitive"
        needs_reference = True

        def compute(self, batch):
            return (batch.restored.double().mean((1, 2, 3)) + 1e-9 * len(batch)).cpu().numpy()

    metric_registry.get("psnr")  # load the registry before adding a test-only entry
    monkeypatch.setitem(metric_registry._entries, "batch-sensitive", BatchSensitive)
    root = make_tree(tmp_path / "d", n=6, size=16)
    values = []
    for bs in (1, 3, 6):
        s = engine.evaluate(_engine_cfg("blurred", root, tmp_path / f"b{bs}", batch_size=bs,
                                        metrics=["batch-sensitive"]))
        values.append([r["metrics"]["batch-sensitive"] for r in read_rows(Path(s["run_dir"]) / "rows.jsonl")])
    assert values[0] == values[1] == values[2]


def test_options_that_cannot_be_stored_are_refused_before_any_work(tmp_path):
    root = make_tree(tmp_path / "d", n=2, size=16)
    for bad in ({"kernel": torch.zeros(3)}, {"ids": {"a", "b"}}, {"obj": object()}):
        with pytest.raises(UsageError, match=f"option '{next(iter(bad))}' of method 'blurred' cannot be stored"):
            engine.evaluate(_engine_cfg("blurred", root, tmp_path / "res", method_options=bad))
    assert not (tmp_path / "res").exists()  # refused before the run directory was made

    class Opts(_Recording):
        name = "opts"

    m = Opts()
    m.options = {"scale": torch.ones(1)}
    with pytest.raises(UsageError, match="option 'scale' of method 'opts'"):
        engine.evaluate(_engine_cfg(m, root, tmp_path / "res"))
    assert m.seen == []


def test_system_exit_in_restore_is_that_images_failure(tmp_path):
    """A plugin calling sys.exit() inside restore() fails that image; the run and its summary go on."""

    class Exits(Method):
        name = "exits"

        def restore(self, blurred, meta=None):
            if any(m["id"] == "img1" for m in meta):
                raise SystemExit(3)
            return blurred.clone()

    root = make_tree(tmp_path / "d", n=4, size=16)
    s = engine.evaluate(_engine_cfg(Exits(), root, tmp_path / "res"))
    assert s["counts"] == {"total": 4, "done": 4, "ok": 3, "failed": 1}
    assert s["failures"] == [{"id": "img1", "reason": "restore() raised SystemExit(3) (sys.exit / exit() in the method)"}]
    assert (Path(s["run_dir"]) / "summary.json").is_file()


def test_run_summary_is_typed_and_names_the_wrong_field(tmp_path):
    """RunSummary.parse reads what `run` writes (every field typed) and refuses a wrong type by
    file and field; to_dict round-trips."""
    from faceblur_bench.report.store import load_run
    from faceblur_bench.results import MetricEntry, RunSummary, SummaryFormatError

    root = make_tree(tmp_path / "d", n=2, size=16)
    s = engine.evaluate(_engine_cfg("blurred", root, tmp_path / "res", limit=1))
    run = load_run(s["run_dir"])
    assert (run.method, run.split, run.partial, run.limit, run.complete) == ("blurred", "dir-split", True, 1, True)
    assert run.counts.total == 1 and run.counts.ok == 1 and run.run_dir == s["run_dir"]
    assert isinstance(run.metrics["psnr"], MetricEntry) and run.metrics["psnr"].value == s["metrics"]["psnr"]["value"]
    assert run.metrics["psnr"].higher_is_better is True and run.weights_used["method"] == []
    assert RunSummary.parse(run.to_dict()) == run
    stored = json.loads((Path(s["run_dir"]) / "summary.json").read_text())
    for field_, bad, needle in (("limit", "1", "'limit' is str"), ("partial", 1, "'partial' is int"),
                                ("counts", {"ok": 1.5}, "'ok' is float"),
                                ("metrics", {"psnr": {"count": True}}, "'count' is bool"),
                                ("metrics", {"psnr": 3}, "metric 'psnr': not an object"),
                                ("method", None, "'method' is NoneType")):
        with pytest.raises(SummaryFormatError, match=needle) as e:
            RunSummary.parse({**stored, field_: bad}, "X/summary.json")
        assert str(e.value).startswith("X/summary.json") and e.value.exit_code == 2


def test_set_metric_features_do_not_depend_on_the_batch(tmp_path, demo_data_root, monkeypatch):
    """The per-image state of every registered set metric (FID/KID Inception features, the
    verification and identification embeddings) is stored with the same bits at --batch-size 1
    and 4 (4 + 2 on six images): a set value must not change when a run is re-batched or
    resumed. Weight files are format-faithful random files; features are compared only with
    themselves (no value here is a metric's real value)."""
    from test_fid import _fake_inception_state
    from test_metrics_identity import make_arcface_onnx
    from test_verification import _save_random_mobilefacenet

    from faceblur_bench import weights
    from faceblur_bench.data.demo import DemoSplit
    from faceblur_bench.registry import metrics as metric_registry
    from faceblur_bench.results import read_features

    e = weights.KNOWN["fid-inception"]  # random file: skip the upstream sha256-prefix check
    monkeypatch.setitem(weights.KNOWN, e.name, dataclasses.replace(e, sha256=None, sha256_prefix=None))
    torch.save(_fake_inception_state(), tmp_path / "inception.pth")
    _save_random_mobilefacenet(tmp_path)
    overrides = {"fid-inception": str(tmp_path / "inception.pth"),
                 "arcface-r50": str(make_arcface_onnx(tmp_path)),
                 "mobilefacenet": str(tmp_path / "model_mobilefacenet.pth")}

    class TwoPeople(DemoSplit):
        """Three images of each of the demo's first two faces, identity = the face (the LFW
        and identification metrics need identities)."""

        def samples(self):
            s = super().samples()
            return [dataclasses.replace(s[i], meta={**s[i].meta, "identity": str(s[i].sharp.stem)})
                    for i in (0, 1, 2, 8, 9, 10)]

    names = [n for n, c in metric_registry.items() if c.kind == "set"]
    assert {"fid", "kid", "verification-dlib", "verification-lfw", "verification-paper"} <= set(names)
    feats = []
    for bs in (1, 4):
        s = engine.evaluate(engine.RunConfig(method="blurred", split=TwoPeople(demo_data_root),
                                             metrics=names, batch_size=bs, device="cpu",
                                             results_dir=tmp_path / f"b{bs}",
                                             weights_overrides=overrides))
        run_dir = Path(s["run_dir"])
        ids = [r["id"] for r in read_rows(run_dir / "rows.jsonl")]
        assert len(ids) == 6
        stored = {n: read_features(run_dir, n, ids) for n in names}
        # every set metric ran and stored a state for each image (none skipped as unavailable)
        assert all(f is not None and f.shape[0] == 6 for f in stored.values()), {
            n: s["metrics"][n].get("reason") for n, f in stored.items() if f is None}
        feats.append(stored)
    # before each image was scored alone, verification-paper's MobileFaceNet embeddings differed
    # in the last bits between the two batchings
    assert all(feats[0][n].dtype == feats[1][n].dtype for n in names)
    differ = [n for n in names if feats[0][n].tobytes() != feats[1][n].tobytes()]
    assert not differ, differ
