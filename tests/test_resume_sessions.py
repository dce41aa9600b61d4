"""Issue 12.1 / 12.2 / 12.5: a resumed run keeps the provenance of rows computed earlier, says what
it reused, merges metrics instead of dropping them, and saves missing images without changing
stored rows. Real method (wiener, deterministic on CPU), real demo files, real run store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faceblur_bench import engine
from faceblur_bench.imageio import read_image
from faceblur_bench.results import image_path, read_rows


def _run(out: Path, metrics: list[str], **kw) -> dict:
    cfg = engine.RunConfig(method="wiener", split="demo", metrics=metrics, results_dir=out,
                           device="cpu", limit=4, batch_size=4, **kw)
    return engine.evaluate(cfg)


@pytest.fixture
def restores(monkeypatch):
    """Count the images wiener really restores (the real restore runs)."""
    from baselines.deconvolution import Wiener

    calls = {"images": 0}
    original = Wiener.restore

    def counting(self, blurred, meta=None):
        calls["images"] += int(blurred.shape[0])
        return original(self, blurred, meta)

    monkeypatch.setattr(Wiener, "restore", counting)
    return calls


def test_noop_resume_keeps_summary_and_says_what_it_reused(tmp_path, demo_data_root, restores):
    first = _run(tmp_path, ["psnr"])
    run_dir = Path(first["run_dir"])
    assert first["this_session"]["session"] == 0 and first["this_session"]["computed"] == 4
    assert [s["rows"] for s in first["sessions"]] == [4]
    # what computed the rows includes the restoration batch size and the thread count (a
    # network's 8-bit output may change with either)
    assert first["sessions"][0]["batch_size"] == 4 == first["provenance"]["batch_size"]
    assert first["sessions"][0]["torch_threads"] >= 1
    assert all(r["session"] == 0 for r in read_rows(run_dir / "rows.jsonl"))
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file() and p.name != ".lock"}
    restores["images"] = 0
    again = _run(tmp_path, ["psnr"])
    assert restores["images"] == 0
    assert again["this_session"]["session"] is None
    assert again["this_session"]["reused"] == {"rows": 4, "dates": [first["provenance"]["date"]]}
    after = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file() and p.name != ".lock"}
    assert after == before  # summary.json (date, versions, timings), rows, sessions untouched


def test_rows_from_before_sessions_keep_their_provenance(tmp_path, demo_data_root):
    first = _run(tmp_path, ["psnr"])
    run_dir = Path(first["run_dir"])
    # the layout of a run stored before sessions existed: no sessions.jsonl, rows without index
    (run_dir / "sessions.jsonl").unlink()
    rows = read_rows(run_dir / "rows.jsonl")
    (run_dir / "rows.jsonl").write_text("".join(
        json.dumps({k: v for k, v in r.items() if k != "session"}) + "\n" for r in rows))
    s = json.loads((run_dir / "summary.json").read_text())
    s.pop("sessions")
    s["provenance"] = {**s["provenance"], "date": "2020-01-02T03:04:05+00:00", "torch": "1.13.1"}
    (run_dir / "summary.json").write_text(json.dumps(s))
    merged = _run(tmp_path, ["ssim"])  # adds a metric: this session computes something
    old, new = merged["sessions"]
    assert (old["index"], old["date"], old["torch"], old["rows"]) == (0, "2020-01-02T03:04:05+00:00", "1.13.1", 4)
    assert old["reconstructed"] and new["index"] == 1 and new["rows"] == 0
    assert new["added_metrics"] == {"ssim": 4} and new["date"] != old["date"]
    assert merged["this_session"]["reused"]["dates"] == ["2020-01-02T03:04:05+00:00"]


def test_narrower_rerun_keeps_metrics_and_new_metric_is_added(tmp_path, demo_data_root, restores):
    first = _run(tmp_path / "a", ["psnr", "ssim"])
    stored = {r["id"]: r["metrics"] for r in read_rows(Path(first["run_dir"]) / "rows.jsonl")}
    narrow = _run(tmp_path / "a", ["psnr"])
    assert list(narrow["metrics"]) == ["psnr", "ssim"]
    assert narrow["metrics"]["ssim"]["value"] == first["metrics"]["ssim"]["value"]
    restores["images"] = 0
    wider = _run(tmp_path / "a", ["psnr-y"])  # images were not saved: restored again, once each
    assert restores["images"] == 4 and wider["this_session"]["rerestored"] == 4
    assert list(wider["metrics"]) == ["psnr", "ssim", "psnr-y"]
    latest = {r["id"]: r for r in read_rows(Path(wider["run_dir"]) / "rows.jsonl")}
    for iid, m in stored.items():  # stored values unchanged, the new one added
        assert {k: latest[iid]["metrics"][k] for k in m} == m
        assert latest[iid]["added_metrics"] == {"psnr-y": wider["this_session"]["session"]}
    fresh = _run(tmp_path / "b", ["psnr", "ssim", "psnr-y"])
    assert wider["metrics"]["psnr-y"]["value"] == pytest.approx(fresh["metrics"]["psnr-y"]["value"], abs=1e-12)
    assert wider["metrics"]["psnr-y"]["count"] == 4


def test_added_metric_reads_saved_images_instead_of_restoring(tmp_path, demo_data_root, restores):
    _run(tmp_path, ["psnr"], save_images=True)
    restores["images"] = 0
    added = _run(tmp_path, ["ssim"])
    assert restores["images"] == 0 and added["this_session"]["rerestored"] == 0
    assert added["metrics"]["ssim"]["count"] == 4 and added["metrics"]["ssim"]["value"] > 0


def test_save_images_on_a_stored_run_writes_images_not_rows(tmp_path, demo_data_root, restores):
    first = _run(tmp_path / "a", ["psnr"])
    run_dir = Path(first["run_dir"])
    rows_before = (run_dir / "rows.jsonl").read_bytes()
    restores["images"] = 0
    saved = _run(tmp_path / "a", ["psnr"], save_images=True)
    assert saved["this_session"]["images_saved"] == 4 and restores["images"] == 4
    assert (run_dir / "rows.jsonl").read_bytes() == rows_before
    assert saved["metrics"]["psnr"]["value"] == first["metrics"]["psnr"]["value"]
    fresh = _run(tmp_path / "b", ["psnr"], save_images=True)
    for r in read_rows(run_dir / "rows.jsonl"):
        a = read_image(image_path(run_dir, r["id"]))
        b = read_image(image_path(fresh["run_dir"], r["id"]))
        assert a.shape == b.shape and np.array_equal(a, b)
    restores["images"] = 0
    _run(tmp_path / "a", ["psnr"], save_images=True)  # all saved now: nothing to do
    assert restores["images"] == 0


def test_default_out_holds_no_committed_runs():
    """12.1: `faceblur-bench run` (default --out results) must compute on a fresh clone, so no
    run is committed under results/runs (the example lives in examples/results, the CI
    baseline in results/ci-baseline)."""
    import shutil
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    if shutil.which("git") is None or not (repo / ".git").exists():
        pytest.skip("not a git checkout: the committed files cannot be listed")
    tracked = subprocess.run(["git", "-C", str(repo), "ls-files", "results"], capture_output=True,
                             text=True, check=True).stdout.split()
    # results/runs/.gitkeep: an empty runs/ so that readers of the default results/ do not
    # descend into results/ci-baseline/runs and show the CI baseline as this machine's runs
    stray = [p for p in tracked if not p.startswith(("results/ci-baseline/", "results/published/"))
             and p != "results/runs/.gitkeep"]
    assert stray == []
    assert any(p.startswith("results/ci-baseline/runs/") for p in tracked)  # .ci/run's baseline stays


def test_leaderboard_provenance_names_every_session(tmp_path, demo_data_root):
    from faceblur_bench.report.leaderboard import build_leaderboard

    first = _run(tmp_path, ["psnr"])
    second = _run(tmp_path, ["ssim"])
    d0, d1 = first["provenance"]["date"], second["provenance"]["date"]
    assert [x["index"] for x in second["sessions"]] == [0, 1]
    text = build_leaderboard(tmp_path, include_published=False)
    assert f"{d0} … {d1} (2 sessions)" in text


def test_unavailable_metric_added_is_listed_with_its_reason(tmp_path, demo_data_root):
    first = _run(tmp_path, ["psnr"])
    later = _run(tmp_path, ["psnr", "dvgg"])  # VGGFace16 is not on this machine: nothing to compute
    assert later["this_session"]["session"] is None
    assert later["metrics"]["dvgg"]["status"] == "unavailable" and "VGGFace16" in later["metrics"]["dvgg"]["reason"]
    assert later["provenance"] == first["provenance"] and later["timings"] == first["timings"]
    assert len(later["sessions"]) == 1
