"""Trainer ``cfmd`` on a tiny 300VW-layout tree the test writes (synthetic frames of a moving
spot; never quality numbers), then single-to-video evaluation on the test videos of that tree."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torchvision
from cli_helpers import main_inprocess

from faceblur_bench import weights
from faceblur_bench.data import vw300
from faceblur_bench.data.moments import expand_moments
from faceblur_bench.engine import RunConfig, evaluate, make_method, open_split
from faceblur_bench.errors import DataNotFoundError, UsageError
from faceblur_bench.imageio import read_image
from faceblur_bench.methods import checkpoint as ckpt_io
from faceblur_bench.methods.base import Method
from faceblur_bench.methods.cfmd import data as D
from faceblur_bench.methods.cfmd import losses as L
from faceblur_bench.registry import trainers
from faceblur_bench.results import read_rows
from faceblur_bench.train.loop import train

#: one step per epoch: 2 triples per epoch at batch 2
STEP = {"data": {"samples_per_epoch": 2}}
TEST_WINDOWS = {"009": [(5, 1)], "037": [(7, 3)]}


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """<root>/300vw with two training videos (train_filelist.txt) and two test videos
    (test_filelist.txt, FMR order), 32x32 frames."""
    root = tmp_path_factory.mktemp("vw")
    top = root / "300vw"
    trainers.get("cfmd").write_smoke_data(top)
    D.write_synthetic_tree(top, TEST_WINDOWS, size=32, seed=5, list_name=vw300.FILE_LIST)
    return root


@pytest.fixture()
def small_split(monkeypatch):
    monkeypatch.setattr(vw300.VW300, "IMAGE_PX", 32)
    monkeypatch.setattr(vw300.VW300, "EXPECTED", None)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# -- data ---------------------------------------------------------------------------------------------
def test_triples_follow_the_fmr_list_and_u_grid(tree):
    top = tree / "300vw"
    listed = vw300.read_file_list(top / D.TRAIN_LIST)
    wins = D.list_windows(top, "all-but-test", "fmr")
    assert {(w.video, w.n, w.mid) for w in wins} == set(listed)  # test videos excluded
    for w in wins:
        assert tuple(p.stem for p in w.frames) == listed[(w.video, w.n, w.mid)]
    assert any(tuple(p.stem for p in w.frames) != tuple(sorted(p.stem for p in w.frames)) for w in wins), \
        "the synthetic motion must make FMR order differ from time order"
    tr = D.triples(wins)
    assert len(tr) == sum(w.n for w in wins)
    assert [u for (w, i, u) in tr if w == 0] == [i / (wins[0].n - 1) for i in range(wins[0].n)]
    temporal = D.list_windows(top, "all-but-test", "temporal")
    assert all(list(w.frames) == sorted(w.frames) for w in temporal)
    # the smoke tree's videos 001 and 002 are among the release's 83 training videos
    assert {w.video for w in D.list_windows(top, "train", "fmr")} == {"001", "002"}


def test_without_the_list_fmr_training_is_refused(tmp_path):
    D.write_synthetic_tree(tmp_path, {"001": [(5, 1)]}, size=32, list_name=None)
    with pytest.raises(DataNotFoundError, match="FMR frame order"):
        D.list_windows(tmp_path, "train", "fmr")
    assert len(D.list_windows(tmp_path, "train", "temporal")) == 1


def test_items_are_scaled_cropped_together_and_reproducible(tree):
    wins = D.list_windows(tree / "300vw", "all-but-test", "fmr")
    cfg = {"crop": 24, "scale_min": 1.0, "scale_max": 1.5, "samples_per_epoch": 0}
    ds = D.MomentTrainSet(wins, cfg, seed=3)
    assert len(ds) == sum(w.n for w in wins)
    a, b = ds[4], ds[4]
    assert a["blurred"].shape == a["sharp"].shape == (3, 24, 24)
    assert torch.equal(a["blurred"], b["blurred"]) and float(a["u"]) == float(b["u"])
    ds.set_epoch(1)
    assert not torch.equal(ds[4]["blurred"], a["blurred"])
    # scale 1 and a full-size crop: exactly the stored images
    ds1 = D.MomentTrainSet(wins, {"crop": 32, "scale_min": 1.0, "scale_max": 1.0, "samples_per_epoch": 0})
    w, k, u = ds1.index(0)
    item = ds1[0]
    want = torch.from_numpy(read_image(wins[w].frames[k]).copy()).permute(2, 0, 1).float() / 255
    assert torch.equal(item["sharp"], want) and float(item["u"]) == pytest.approx(u)
    with pytest.raises(UsageError, match="data.crop"):
        D.MomentTrainSet(wins, {"crop": 64, "scale_min": 1.0, "scale_max": 1.5})


# -- training -----------------------------------------------------------------------------------------
def test_two_steps_then_resume_reproduces_next_loss(tree, tmp_path):
    root = tree / "300vw"
    full = train("cfmd", root, tmp_path / "full", tiny=True, config=STEP, epochs=2, batch_size=2, progress=False)
    assert full.epochs_done == 2 and full.steps == 2
    half = train("cfmd", root, tmp_path / "half", tiny=True, config=STEP, epochs=1, batch_size=2, progress=False)
    assert half.steps == 1
    resumed = train("cfmd", root, tmp_path / "half", epochs=2, resume=True, progress=False)
    assert resumed.epochs_done == 2
    a, b = _rows(tmp_path / "full" / "steps.csv"), _rows(tmp_path / "half" / "steps.csv")
    assert len(a) == len(b) == 2
    for key in ("g_total", "g_pixel", "g_adv", "g_ar", "d_enc", "d_dec", "d_q", "u_mean"):
        assert a[1][key] == b[1][key], key
    assert a[0]["g_total"] != a[1]["g_total"]
    ck = ckpt_io.load(tmp_path / "full" / "checkpoints" / "last.pth")
    assert ck["trainer"] == "cfmd" and ck["preset"] == "paper" and set(ck["modules"]) == {"generator", "discriminator"}
    gb = ckpt_io.load(tmp_path / "half" / "checkpoints" / "last.pth")["modules"]["generator"]
    assert all(torch.equal(ck["modules"]["generator"][k], gb[k]) for k in gb)
    log = _rows(tmp_path / "full" / "log.csv")
    assert float(log[1]["lr_generator"]) == pytest.approx(1e-4 * 0.99)
    assert float(log[1]["lr_discriminator"]) == pytest.approx(1e-4 * 0.99)
    assert np.isfinite(float(log[1]["val_psnr"]))
    # the trained generator runs as the cfmd-gan method, moment by moment
    m = make_method("cfmd-gan")
    m.load(tmp_path / "full" / "checkpoints" / "last.pth", "cpu")
    assert m.trained["preset"] == "paper" and m.generator_config.base_channels == 8


def test_presets_change_the_objective_and_the_network(tree, tmp_path):
    from faceblur_bench.train.config import build_config

    paper, rel = build_config("cfmd"), build_config("cfmd", "released")
    assert (paper["loss"]["pixel"], paper["loss"]["lambda_adv"], paper["loss"]["lambda_per"]) == ("charbonnier", 0.1, 0.01)
    assert (paper["optim"]["lr"], paper["optim"]["gamma"], paper["batch_size"], paper["epochs"]) == (1e-4, 0.99, 8, 200)
    assert (rel["loss"]["pixel"], rel["loss"]["lambda_adv"], rel["loss"]["lambda_per"]) == ("l1", 0.01, 0.0)
    assert build_config("cfmd", "caca-only")["model"]["generator"]["cadc"] is False
    assert build_config("cfmd", "no-fmr")["data"]["frame_order"] == "temporal"
    with pytest.raises(UsageError, match="did you mean"):
        build_config("cfmd", "cadc_only")
    with pytest.raises(UsageError, match="data.crop"):
        build_config("cfmd", tiny=True, overrides={"data": {"crop": 36}})
    r = train("cfmd", tree / "300vw", tmp_path / "rel", preset="released", tiny=True, config=STEP,
              epochs=1, batch_size=2, progress=False)
    row = _rows(tmp_path / "rel" / "steps.csv")[0]
    # released D loss = ½(GAN terms) + ½ L_Q; G = L1 + 0.01 adv + 0.05 ar
    d = 0.5 * (float(row["d_enc"]) + float(row["d_dec"])) + 0.5 * float(row["d_q"])
    assert float(row["d_total"]) == pytest.approx(d, rel=1e-5)
    g = float(row["g_pixel"]) + 0.01 * float(row["g_adv"]) + 0.05 * float(row["g_ar"])
    assert float(row["g_total"]) == pytest.approx(g, rel=1e-5)
    assert r.steps == 1


def test_paper_objective_with_the_lpips_term(tree, tmp_path, monkeypatch):
    torch.manual_seed(0)
    alex = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), alex)
    e = weights.KNOWN[L.LPIPS_BACKBONE]  # random test weights cannot carry upstream's hash
    monkeypatch.setitem(weights.KNOWN, L.LPIPS_BACKBONE, dataclasses.replace(e, sha256=None, sha256_prefix=None))
    train("cfmd", tree / "300vw", tmp_path / "p", tiny=True, config={**STEP, "loss": {"lambda_per": 0.01}},
          epochs=1, batch_size=2, progress=False, weights_overrides={L.LPIPS_BACKBONE: str(alex)})
    row = _rows(tmp_path / "p" / "steps.csv")[0]
    g = (float(row["g_pixel"]) + 0.1 * float(row["g_adv"]) + 0.05 * float(row["g_ar"])
         + 0.01 * float(row["g_lpips"]))
    assert float(row["g_total"]) == pytest.approx(g, rel=1e-5)
    d = float(row["d_enc"]) + float(row["d_dec"]) + 0.05 * float(row["d_q"])
    assert float(row["d_total"]) == pytest.approx(d, rel=1e-5)


# -- single-to-video evaluation -----------------------------------------------------------------------
class FrameOracle(Method):
    """Test method: returns the FMR-ordered sharp frame selected by u (+1 grey level), so each row
    scores 48.13 dB exactly (MSE 1) when output k is paired with frame k. Optionally interrupts."""

    name = "frame-oracle"
    accepts_moment = True

    def __init__(self, frames: dict[tuple[str, int], np.ndarray], stop_at: int | None = None):
        super().__init__()
        self.frames, self.stop_at, self.calls = frames, stop_at, 0

    def restore(self, blurred: torch.Tensor, meta: Any = None) -> torch.Tensor:
        self.calls += 1
        if self.stop_at is not None and self.calls == self.stop_at:
            raise KeyboardInterrupt
        out = []
        for m in meta:
            n = int(m["n_frames"])
            img = self.frames[(m["window"], round(float(m["moment"]) * (n - 1)))]
            off = np.where(img < 255, 1.0, -1.0)  # |error| = 1 grey level everywhere
            out.append(torch.from_numpy((img.astype(np.float32) + off.astype(np.float32)) / 255.0).permute(2, 0, 1))
        return torch.stack(out).clamp(0, 1)


def _oracle_frames(tree: Path) -> dict[tuple[str, int], np.ndarray]:
    top = tree / "300vw"
    out = {}
    for (vid, n, mid), frames in vw300.read_file_list(top / vw300.FILE_LIST).items():
        for k, f in enumerate(frames):
            out[(f"{vid}/blur{n:03d}/{mid}", k)] = read_image(top / "sharp" / vid / f"blur{n:03d}" / mid / f"{f}.png")
    return out


def test_s2v_rows_pair_output_k_with_fmr_frame_k_and_resume(tree, tmp_path, small_split):
    frames = _oracle_frames(tree)
    n_total = sum(n for wins in TEST_WINDOWS.values() for n, _ in wins)
    cfg: dict[str, Any] = {"split": "300vw", "data_root": tree, "results_dir": tmp_path / "res", "device": "cpu",
                           "batch_size": 4, "metrics": ("psnr",), "protocol": "s2v"}
    with pytest.raises(KeyboardInterrupt):
        evaluate(RunConfig(method=FrameOracle(frames, stop_at=2), **cfg))
    again = FrameOracle(frames)
    s = evaluate(RunConfig(method=again, **cfg))
    assert again.calls == 2  # the 4 rows stored before the interrupt are not restored again
    assert s["counts"] == {"total": n_total, "done": n_total, "ok": n_total, "failed": 0}
    assert s["protocol"] == "s2v" and s["frame_order"] == ["fmr-list"] and s["protocol_note"] is None
    rows = read_rows(Path(s["run_dir"]) / "rows.jsonl")
    assert len(rows) == n_total  # 4 rows before the interrupt + 8 after, none twice
    for r in rows:
        k, n = r["meta"]["moment_index"], r["meta"]["n_moments"]
        assert r["id"] == f"{r['meta']['window']}@k{k}of{n}"
        assert r["meta"]["moment"] == pytest.approx(k / (n - 1))
        assert r["metrics"]["psnr"] == pytest.approx(20 * np.log10(255.0), abs=0.01)
    listed = vw300.read_file_list(tree / "300vw" / vw300.FILE_LIST)
    for r in rows:
        vid, nn, mid = r["meta"]["window"].split("/")
        assert r["meta"]["frame"] == listed[(vid, int(nn[4:]), mid)][r["meta"]["moment_index"]]
    # the s2s run of the same method is another run (u = 0.5 vs. the middle frame)
    s2s = evaluate(RunConfig(method=FrameOracle(frames), **{**cfg, "protocol": "s2s"}))
    assert s2s["counts"]["total"] == 2 and s2s["run_dir"] != s["run_dir"] and s2s["protocol"] == "s2s"


def test_s2v_refuses_methods_without_a_moment(tree, tmp_path, small_split):
    with pytest.raises(UsageError, match="never done"):
        evaluate(RunConfig(method="blurred", split="300vw", data_root=tree, results_dir=tmp_path,
                           device="cpu", metrics=("psnr",), protocol="s2v"))
    with pytest.raises(UsageError, match="did you mean 's2v'"):
        evaluate(RunConfig(method="blurred", split="300vw", data_root=tree, results_dir=tmp_path,
                           device="cpu", metrics=("psnr",), protocol="s2vv"))
    with pytest.raises(UsageError, match="sharp frame"):
        expand_moments([dataclasses.replace(open_split("300vw", tree).samples()[0], frames=())])


def test_s2v_with_the_trained_cfmd_gan_and_temporal_order_flag(tree, tmp_path, small_split):
    run = train("cfmd", tree / "300vw", tmp_path / "t", tiny=True, config=STEP, epochs=1, batch_size=2,
                progress=False)
    s = evaluate(RunConfig(method="cfmd-gan", split="300vw", data_root=tree, results_dir=tmp_path / "res",
                           device="cpu", batch_size=16, metrics=("psnr", "ssim"), protocol="s2v",
                           checkpoint=run.checkpoint))
    n_total = sum(n for wins in TEST_WINDOWS.values() for n, _ in wins)
    assert s["counts"]["ok"] == n_total and s["method"] == "cfmd-gan"
    rows = read_rows(Path(s["run_dir"]) / "rows.jsonl")
    by_window: dict[str, list[float]] = {}
    for r in rows:
        by_window.setdefault(r["meta"]["window"], []).append(r["metrics"]["psnr"])
    assert sorted(len(v) for v in by_window.values()) == [5, 7]
    # without the authors' list the frames are in time order, and the summary says so
    temporal = tmp_path / "temporal"
    D.write_synthetic_tree(temporal / "300vw", TEST_WINDOWS, size=32, seed=5, list_name=None)
    s2 = evaluate(RunConfig(method="cfmd-gan", split="300vw", data_root=temporal, results_dir=tmp_path / "res",
                            device="cpu", metrics=("psnr",), protocol="s2v", checkpoint=run.checkpoint))
    assert s2["frame_order"] == ["temporal"] and "not comparable" in s2["protocol_note"]


def test_cli_s2v_table_and_moments_figure(tree, tmp_path, small_split, capsys):
    from test_cfmd_official import random_state

    ck = tmp_path / "model_best.pth"
    torch.save(random_state(), ck)  # the authors' key layout, random values, reduced width
    res = tmp_path / "res"
    common = ["--split", "300vw", "--data-root", str(tree), "--out", str(res), "--device", "cpu",
              "--metrics", "psnr,ssim", "--leaderboard", str(tmp_path / "lb.md")]
    code, _, err = main_inprocess(["run", "-m", "blurred", "--protocol", "s2v", *common], capsys)
    assert code == 2 and "cannot be evaluated single-to-video" in err
    code, _, err = main_inprocess(["run", "-m", "cfmd-gan", "--checkpoint", str(ck), "--protocol", "s2v", "--save-images",
                         *common], capsys)
    assert code == 0, err
    code, _, _ = main_inprocess(["run", "-m", "cfmd-gan", "--checkpoint", str(ck), *common], capsys)  # s2s
    assert code == 0
    code, out, err = main_inprocess(["table", "--layout", "cfmd-t4", "--results", str(res)], capsys)
    assert code == 0, err
    lines = [ln for ln in out.splitlines() if ln.startswith("| cfmd-gan |")]
    assert [ln.split("|")[2:4] for ln in lines] == [[" 5 ", " 5 "], [" 7 ", " 7 "], [" ALL ", " 12 "]]
    assert "| CFMD-GAN | ALL | 116188 |" in out  # the published row beside ours
    fig = tmp_path / "moments.png"
    code, _, err = main_inprocess(["figure", "--moments", "-s", "300vw", "-m", "cfmd-gan", "--results", str(res),
                         "--data-root", str(tree), "-o", str(fig), "--ids", "037/blur007/000006"], capsys)
    assert code == 0, err
    from PIL import Image

    w, h = Image.open(fig).size
    assert w > 1.5 * h  # one window: 2 rows, 1 + 7 columns
    code, _, err = main_inprocess(["figure", "--moments", "-s", "300vw", "-m", "blurred", "--results", str(res),
                         "--data-root", str(tree), "-o", str(fig)], capsys)
    assert code == 2 and "--protocol s2v --save-images" in err
