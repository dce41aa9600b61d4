"""Scoring outputs researchers already have: the ``folder`` method's placeholders (one validator
shared with ``score --pattern``), full-photo outputs cut with the split's crop box, sequences
(GIF with a palette, APNG, multi-page TIFF, video) paired frame by frame, single-to-video from
precomputed moments filling ``cfmd-t4``, per-method options, run labels and ``runs``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence
from skimage.metrics import peak_signal_noise_ratio

from cli_helpers import main_inprocess
from faceblur_bench import engine
from faceblur_bench.errors import UsageError
from faceblur_bench.results import read_rows


def _rows(summary: dict) -> dict[str, dict]:
    return {r["id"]: r for r in read_rows(Path(summary["run_dir"]) / "rows.jsonl")}


def _frames(n: int, size: int = 32, seed: int = 0, noise: int = 6) -> list[np.ndarray]:
    """``n`` distinct colour frames (a gradient moving frame to frame, plus noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    out = []
    for i in range(n):
        base = np.stack([(x * 7 + i * 20) % 256, (y * 5 + i * 35) % 256, ((x + y) * 3 + i * 50) % 256], -1)
        out.append(np.clip(base + rng.integers(-noise, noise + 1, base.shape), 0, 255).astype(np.uint8))
    return out


# -- the pattern validator ------------------------------------------------------------------------
@pytest.mark.parametrize("pattern,needle", [
    ("{id.__class__.__name__}.png", "{id.__class__.__name__} uses attribute or index access"),
    ("{id[0]}.png", "{id[0]} uses attribute or index access"),
    ("{kernal}.png", "did you mean {kernel}?"),
    ("{stme}_out.png", "did you mean {stem}"),
    ("{suffix}.png", "uses {suffix}, which is not a placeholder"),  # score's only
    ("{face:s}.png", "cannot be filled in"),
    # padding beyond a file name's length only allocates (a 100 GB string, a MemoryError)
    ("{id:>99999999999}.png", "asks for more than 255 characters"),
    ("{u:.999999999f}.png", "asks for more than 255 characters"),
])
def test_folder_pattern_is_refused_at_the_door(tmp_path, pattern, needle):
    from baselines.folder import Folder

    with pytest.raises(UsageError) as e:
        Folder(dir=str(tmp_path), pattern=pattern)
    assert needle in str(e.value) and e.value.exit_code == 2
    assert "{id}, {stem}, {name}, {subset}, {kernel}, {face}, {k}, {u}" in str(e.value)


def test_bad_folder_pattern_exits_2_on_the_command_line_and_format_specs_pass(tmp_path, capsys):
    code, _, err = main_inprocess(["run", "-m", "folder", "--option", f"dir={tmp_path}", "--option",
                                   "pattern={id.__class__.__name__}.png", "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and "attribute or index access" in err and "{kernel}" in err
    # a moment placeholder needs single-to-video
    code, _, err = main_inprocess(["run", "-m", "folder", "--option", f"dir={tmp_path}", "--option",
                                   "pattern={id}_{k:02d}.png", "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and "{k}" in err and "--protocol s2v" in err


def test_every_placeholder_names_the_output_of_a_demo_sample(demo_data_root, tmp_path):
    """Outputs written under a pattern with {subset} {kernel} {face} {id} {name} (and {stem}) are
    found and score exactly like the live method restoring the same pixels."""
    from faceblur_bench.data.patterns import sample_values

    samples = engine.open_split("demo", demo_data_root).samples()[:3]
    pattern = "{subset}/k{kernel:02d}/{face}-{id}-{name}-{stem}"
    out = tmp_path / "outs"
    for s in samples:
        v = sample_values(s.id, s.meta, s.blurred.name)
        dest = out / s.meta["subset"] / f"k{s.meta['kernel_id']:02d}" / f"{v['face']}-{s.id}-{s.blurred.name}-{s.blurred.stem}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(s.blurred, dest)
    common = dict(split="demo", data_root=demo_data_root, metrics=["psnr"], device="cpu", limit=3,
                  results_dir=tmp_path / "r")
    live = engine.evaluate(engine.RunConfig(method="blurred", **common))
    got = engine.evaluate(engine.RunConfig(method="folder", method_options={"dir": str(out), "pattern": pattern},
                                           **common))
    assert got["counts"]["ok"] == 3
    a, b = _rows(live), _rows(got)
    assert {i: r["metrics"]["psnr"] for i, r in a.items()} == {i: r["metrics"]["psnr"] for i, r in b.items()}
    assert [sample_values(s.id, s.meta, s.blurred.name)["face"] for s in samples] == [0, 0, 0]
    # a label given to a stored run renames it without recomputing anything
    rows_file = Path(live["run_dir"]) / "rows.jsonl"
    before = rows_file.read_bytes()
    again = engine.evaluate(engine.RunConfig(method="blurred", label="Input", **common))
    assert again["this_session"]["session"] is None and rows_file.read_bytes() == before
    assert json.loads((Path(live["run_dir"]) / "summary.json").read_text())["label"] == "Input"


# -- sequences --------------------------------------------------------------------------------------
def _score(restored: Path, reference: Path, tmp_path: Path, pattern: str = "{stem}{suffix}") -> dict:
    from faceblur_bench.data.folders import PairedFolders

    return engine.evaluate(engine.RunConfig(method="blurred", split=PairedFolders(restored, reference, pattern),
                                            metrics=["psnr"], results_dir=tmp_path / "r", device="cpu"))


def _save_sequence(path: Path, frames: list[np.ndarray], **kw) -> None:
    ims = [Image.fromarray(f) for f in frames]
    ims[0].save(path, save_all=True, append_images=ims[1:], **kw)


def test_gif_apng_and_tiff_sequences_are_paired_frame_by_frame(tmp_path):
    ref, out = _frames(4, seed=1), _frames(4, seed=2)
    (tmp_path / "gt").mkdir()
    (tmp_path / "out").mkdir()
    # GIF with an explicit 64-colour palette on every frame
    pal = lambda fs: [Image.fromarray(f).quantize(64) for f in fs]  # noqa: E731
    for d, fs in (("gt", ref), ("out", out)):
        ims = pal(fs)
        assert ims[0].mode == "P"
        ims[0].save(tmp_path / d / "clip.gif", save_all=True, append_images=ims[1:], duration=40, loop=0)
        _save_sequence(tmp_path / d / "anim.png", fs, format="PNG")  # APNG
        _save_sequence(tmp_path / d / "pages.tif", fs)  # multi-page TIFF
    s = _score(tmp_path / "out", tmp_path / "gt", tmp_path)
    rows = _rows(s)
    assert s["counts"] == {**s["counts"], "ok": 12, "failed": 0}
    assert sorted(rows) == sorted(f"{n}@f{i}" for n in ("clip", "anim", "pages") for i in range(4))
    # GIF frames decode exactly as Pillow's RGB conversion of each frame
    gif_gt = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(Image.open(tmp_path / "gt" / "clip.gif"))]
    gif_out = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(Image.open(tmp_path / "out" / "clip.gif"))]
    for i in range(4):
        assert rows[f"clip@f{i}"]["metrics"]["psnr"] == pytest.approx(
            peak_signal_noise_ratio(gif_gt[i], gif_out[i]), abs=1e-9)
        # APNG and TIFF are lossless: frame i of each against the source frames
        for name in ("anim", "pages"):
            assert rows[f"{name}@f{i}"]["metrics"]["psnr"] == pytest.approx(
                peak_signal_noise_ratio(ref[i], out[i]), abs=1e-9)
    assert any("palette" in w for w in rows["clip@f0"]["warnings"])
    assert "warnings" not in rows["anim@f0"]
    # the palette alone costs PSNR: the GIF of the reference against its own source frames
    assert peak_signal_noise_ratio(ref[0], gif_gt[0]) < 60


def test_videos_are_paired_frame_by_frame(tmp_path):
    cv2 = pytest.importorskip("cv2")
    frames = _frames(5, size=64, seed=3, noise=0)  # MJPG is lossy: smooth frames
    (tmp_path / "gt").mkdir()
    (tmp_path / "out").mkdir()
    w = cv2.VideoWriter(str(tmp_path / "gt" / "v.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 64))
    for f in frames:
        w.write(np.ascontiguousarray(f[..., ::-1]))  # OpenCV writes BGR
    w.release()
    shutil.copy(tmp_path / "gt" / "v.avi", tmp_path / "out" / "v.avi")
    from faceblur_bench.imageio import frame_count, read_image

    assert frame_count(tmp_path / "gt" / "v.avi") == 5
    for i, f in enumerate(frames):  # decoded in order and RGB: the right frame beats its neighbour
        got = read_image(tmp_path / "gt" / "v.avi", frame=i)     # and its own channels swapped
        psnr = peak_signal_noise_ratio(f, got)
        assert psnr > peak_signal_noise_ratio(f[..., ::-1], got) + 5
        assert psnr > peak_signal_noise_ratio(frames[(i + 1) % 5], got) + 5
    s = _score(tmp_path / "out", tmp_path / "gt", tmp_path)
    assert s["counts"]["ok"] == 5 and sorted(_rows(s)) == [f"v@f{i}" for i in range(5)]
    assert all(r["metrics"]["psnr"] == float("inf") for r in _rows(s).values())


def test_score_cli_scores_the_rest_when_a_file_is_missing_and_warns_about_gifs(tmp_path, capsys):
    (tmp_path / "gt").mkdir()
    (tmp_path / "out").mkdir()
    for i, f in enumerate(_frames(9, seed=4)):
        Image.fromarray(f).save(tmp_path / "gt" / f"im{i}.png")
        if i != 5:
            Image.fromarray(f).quantize(128).save(tmp_path / "out" / f"im{i}_out.gif")
    code, out, err = main_inprocess(["score", "--restored", str(tmp_path / "out"), "--reference",
                                     str(tmp_path / "gt"), "--pattern", "{stem}_out.gif", "--device", "cpu",
                                     "--json", str(tmp_path / "s.json")], capsys)
    assert code == 1  # one failed image: the results are written, the command fails
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["summary"]["counts"]["ok"] == 8 and data["summary"]["counts"]["failed"] == 1
    failed = next(r for r in data["rows"] if r["status"] == "failed")
    assert failed["id"] == "im5" and "no restored file for im5.png" in failed["reason"]
    assert "8 GIF file(s) scored" in err and "palette" in err


# -- photos with several faces ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def group_photos(tmp_path_factory) -> Path:
    """A group photo with several faces (insightface's t1.jpg) and one with a single face."""
    import insightface
    from skimage import data as skdata

    d = tmp_path_factory.mktemp("group")
    shutil.copy(Path(insightface.__file__).parent / "data" / "images" / "t1.jpg", d / "t1.jpg")
    Image.fromarray(skdata.astronaut()).save(d / "astronaut.png")
    return d


def test_full_photo_outputs_are_cut_with_the_splits_crop_boxes(group_photos, tmp_path):
    """The authors' layout: one restored full photo ``<photo>_deblur.png`` per blurred photo."""
    from faceblur_bench.imageio import read_image

    out = tmp_path / "outs"
    out.mkdir()
    restored = {}
    for p in group_photos.iterdir():
        restored[p.name] = 255 - read_image(p)  # any restoration: here the negative
        Image.fromarray(restored[p.name]).save(out / f"{p.stem}_deblur.png")
    split = f"folder:{group_photos}"
    s = engine.evaluate(engine.RunConfig(method="folder", split=split, data_root=tmp_path / "data",
                                         method_options={"dir": str(out), "pattern": "{stem}_deblur.png"},
                                         metrics=["psnr"], results_dir=tmp_path / "r", device="cpu",
                                         save_images=True))
    samples = engine.open_split(split, tmp_path / "data").samples()
    t1 = [x for x in samples if x.meta["photo"] == "t1.jpg"]
    assert len(t1) >= 3 and [x.meta["face"] for x in t1] == list(range(len(t1)))
    assert s["counts"]["ok"] == len(samples) and s["counts"]["failed"] == 0
    rows = _rows(s)
    for x in samples:
        top, left, side = x.meta["crop"]
        want = np.asarray(Image.fromarray(np.ascontiguousarray(restored[x.meta["photo"]][top:top + side, left:left + side]))
                          .resize((128, 128), Image.BICUBIC))
        got = read_image(Path(s["run_dir"]) / "images" / f"{x.id}.png")
        np.testing.assert_array_equal(got, want)
        assert any("cut with the split's crop box" in w for w in rows[x.id]["warnings"])
    # per-face outputs named by {stem} and {face}; a photo of the wrong size fails, naming both sizes
    faces = tmp_path / "faces"
    faces.mkdir()
    for x in samples:
        shutil.copy(x.blurred, faces / f"{Path(x.meta['photo']).stem}-face{x.meta['face']}.png")
    Image.fromarray(np.zeros((50, 60, 3), np.uint8)).save(faces / f"{Path(t1[0].meta['photo']).stem}-face0.png")
    s2 = engine.evaluate(engine.RunConfig(method="folder", split=split, data_root=tmp_path / "data",
                                          method_options={"dir": str(faces), "pattern": "{stem}-face{face}.png"},
                                          metrics=["psnr"], results_dir=tmp_path / "r", device="cpu"))
    assert s2["counts"]["ok"] == len(samples) - 1
    reason = _rows(s2)[t1[0].id]["reason"]
    assert "restored image is 60x50, the sample is 128x128" in reason


# -- single-to-video from precomputed moments -------------------------------------------------------
def _tiny_300vw(root: Path, monkeypatch) -> list:
    """One 5-frame window of a test video, 32x32 (the layout of docs/cfmd.md)."""
    from faceblur_bench.data import vw300

    monkeypatch.setattr(vw300.VW300, "EXPECTED", {5: 1, 7: 0, 9: 0, 11: 0, 13: 0})
    monkeypatch.setattr(vw300.VW300, "IMAGE_PX", 32)
    frames = _frames(5, seed=6)
    sharp = root / "300vw" / "sharp" / "009" / "blur005" / "000003"
    sharp.mkdir(parents=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(sharp / f"{i + 1:06d}.png")
    blur = root / "300vw" / "blur" / "009" / "blur005"
    blur.mkdir(parents=True)
    Image.fromarray(np.mean(frames, 0).round().astype(np.uint8)).save(blur / "000003.png")
    return frames


def test_s2v_from_precomputed_moments_fills_cfmd_t4(tmp_path, monkeypatch):
    from faceblur_bench.report.layouts import get_layout, render_layout
    from faceblur_bench.report.store import load_summaries

    frames = _tiny_300vw(tmp_path / "data", monkeypatch)
    rng = np.random.default_rng(7)
    moments = [np.clip(f.astype(int) + rng.integers(-9, 10, f.shape), 0, 255).astype(np.uint8) for f in frames]
    out = tmp_path / "outs" / "009" / "blur005"
    out.mkdir(parents=True)
    for k, m in enumerate(moments):  # one file per moment: {id}_{k:02d}.png
        Image.fromarray(m).save(out / f"000003_{k:02d}.png")
    _save_sequence(out / "000003.png", moments, format="PNG")  # and the same as one 5-frame APNG
    _save_sequence(out / "short.png", moments[:4], format="PNG")
    common = dict(split="300vw", data_root=tmp_path / "data", metrics=["psnr"], device="cpu",
                  results_dir=tmp_path / "r", protocol="s2v")
    s = engine.evaluate(engine.RunConfig(method="folder", label="ours (precomputed)", **common,
                                         method_options={"dir": str(tmp_path / "outs"), "pattern": "{id}_{k:02d}.png"}))
    want = [peak_signal_noise_ratio(f, m) for f, m in zip(frames, moments)]
    rows = _rows(s)
    assert [rows[f"009/blur005/000003@k{k}of5"]["metrics"]["psnr"] for k in range(5)] == pytest.approx(want, abs=1e-9)
    seq = engine.evaluate(engine.RunConfig(method="folder", **common,
                                           method_options={"dir": str(tmp_path / "outs"), "pattern": "{id}.png"}))
    assert [r["metrics"]["psnr"] for r in _rows(seq).values()] == pytest.approx(want, abs=1e-9)
    (out / "000003.png").unlink()
    (out / "short.png").rename(out / "000003.png")
    bad = engine.evaluate(engine.RunConfig(method="folder", **{**common, "results_dir": tmp_path / "r2"},
                                           method_options={"dir": str(tmp_path / "outs"), "pattern": "{id}.png"}))
    assert bad["counts"]["failed"] == 5 and "has 4 frame(s); single-to-video needs one per moment (5" in \
        bad["failures"][0]["reason"]
    text = render_layout(get_layout("cfmd-t4"), load_summaries(tmp_path / "r"))
    row5 = next(ln for ln in text.splitlines() if ln.startswith("| ours (precomputed) | 5 |"))
    assert f"{np.mean(want):.4f}" in row5 and "| 5 |" in row5[len("| ours (precomputed) | 5 "):]


# -- per-method options, labels, runs ----------------------------------------------------------------
def test_options_per_method_labels_everywhere_and_runs_rm(demo_data_root, tmp_path, capsys):
    samples = engine.open_split("demo", demo_data_root).samples()[:2]
    out = tmp_path / "outs"
    out.mkdir()
    for s in samples:
        shutil.copy(s.blurred, out / f"{s.id}_deblur.png")
    res = tmp_path / "r"
    base = ["run", "--data-root", str(demo_data_root), "--limit", "2", "--metrics", "psnr", "--out", str(res),
            "--device", "cpu"]
    code, table, err = main_inprocess(base + ["-m", "blurred", "-m", "folder", "--option", f"dir={out}",
                                              "--option", "folder.pattern={id}_deblur.png",
                                              "--label", "folder=Authors' outputs"], capsys)
    assert code == 0, err
    assert "| Authors' outputs † (2/72, --limit 2) |" in table
    # the same folder again under another pattern that finds nothing: a second, failed run
    code, _, _ = main_inprocess(base + ["-m", "folder", "--option", f"dir={out}", "--option",
                                        "pattern={id}_typo.png"], capsys)
    assert code == 1
    # option errors: a METHOD.KEY for a method that does not declare it, a KEY no method takes
    code, _, err = main_inprocess(base + ["-m", "blurred", "-m", "folder", "--option", f"dir={out}",
                                          "--option", "blurred.pattern=x"], capsys)
    assert code == 2 and "unknown option 'pattern' for blurred" in err
    code, _, err = main_inprocess(base + ["-m", "blurred", "-m", "folder", "--option", f"dir={out}",
                                          "--option", "patern=x"], capsys)
    assert code == 2 and "takes option 'patern'; did you mean 'pattern'?" in err
    code, _, err = main_inprocess(base + ["-m", "blurred", "-m", "folder", "--label", "x"], capsys)
    assert code == 2 and "METHOD=NAME" in err

    summaries = {s["label"] if "label" in s else s["method"]: s
                 for s in (json.loads(p.read_text()) for p in res.rglob("summary.json"))}
    labelled = summaries["Authors' outputs"]
    key = labelled["run_key"]
    lb = (res / "leaderboard.md").read_text()
    assert "Authors' outputs" in lb and key in lb  # the name in the table, the hash in the provenance
    code, latex, _ = main_inprocess(["table", "--results", str(res), "--split", "demo", "--format", "latex"], capsys)
    assert code == 0 and "Authors' outputs" in latex and key not in latex

    from faceblur_bench.report.figures import _latest_run
    from faceblur_bench.report.store import load_summaries

    assert _latest_run(load_summaries(res), "Authors' outputs").method == "folder"  # figure -m LABEL

    code, listing, _ = main_inprocess(["runs", "--results", str(res), "--json"], capsys)
    runs = json.loads(listing)
    assert len(runs) == 3 and {r["label"] for r in runs} == {"Authors' outputs", None}
    failed = next(r for r in runs if r["failed"])
    before = sorted(p for p in res.rglob("*") if failed["run"] not in str(p))
    code, _, err = main_inprocess(["runs", "rm", failed["run_key"], "--results", str(res)], capsys)
    assert code == 0, err
    after = sorted(res.rglob("*"))
    assert not Path(failed["run"]).exists()
    kept = [p for p in before if p.name not in ("leaderboard.md", "demo.md")]
    assert [p for p in after if p.name not in ("leaderboard.md", "demo.md")] == kept  # nothing else removed
    assert "typo" not in (res / "leaderboard.md").read_text()
    # containment: a directory outside <results>/runs is never removed
    code, _, err = main_inprocess(["runs", "rm", str(out), "--results", str(res)], capsys)
    assert code == 2 and "is not a run of" in err and out.is_dir()
    code, _, err = main_inprocess(["runs", "rm", "Authors outputs", "--results", str(res)], capsys)
    assert code == 2 and "did you mean \"Authors' outputs\"" in err


def test_runs_rm_takes_the_run_lock_and_prune_removes_only_failed_runs(tmp_path):
    from filelock import FileLock

    from faceblur_bench.engine.stored import list_runs, prune_failed, remove_run
    from faceblur_bench.errors import ResultsLockedError
    from faceblur_bench.results import RunStore

    res = tmp_path / "r"
    for key, status in (("aaa", "ok"), ("bbb", "failed")):
        d = res / "runs" / "demo" / "m" / key
        with RunStore(d) as store:
            store.append_rows([{"id": "x", "status": status, "reason": None if status == "ok" else "boom",
                                "metrics": {}, "meta": {}}])
    with FileLock(str(res / "runs" / "demo" / "m" / "bbb" / ".lock")):  # a run is writing there
        with pytest.raises(ResultsLockedError, match="another faceblur-bench run is writing"):
            remove_run(res, res / "runs" / "demo" / "m" / "bbb")
    assert [r.run_key for r in prune_failed(res, dry_run=True)] == ["bbb"]
    assert [r.run_key for r in prune_failed(res)] == ["bbb"]
    assert [r.run_key for r in list_runs(res)] == ["aaa"]
    # a run reached through a symlink is refused
    (res / "runs" / "demo" / "link").symlink_to(res / "runs" / "demo" / "m")
    with pytest.raises(UsageError, match="symlink"):
        remove_run(res, res / "runs" / "demo" / "link" / "aaa")
    assert (res / "runs" / "demo" / "m" / "aaa").is_dir()
