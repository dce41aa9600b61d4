"""Issue 12.3: make-split output is marked synthesised, a run records its data's origin, and
tables and the leaderboard never place a run on custom data in an official split's table."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from faceblur_bench import engine
from faceblur_bench.data.base import open_split
from faceblur_bench.data.origin import split_origin
from faceblur_bench.data.synth import make_split
from faceblur_bench.imageio import write_png


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """A make-split output of one random 128x128 face (MSPL protocol, CelebA subset)."""
    tmp = tmp_path_factory.mktemp("made")
    rng = np.random.default_rng(0)
    write_png(tmp / "sharp" / "me.png", rng.integers(0, 256, (128, 128, 3), dtype=np.uint8))
    make_split(tmp / "sharp", "mspl", tmp / "data", seed=3)
    return tmp / "data"


def test_make_split_manifest_says_synthesised(made):
    man = json.loads((made / "Test_data_center/Test_data_CelebA/make_split.json").read_text())
    assert man["synthesised"] is True and "make-split" in man["origin"]
    split = open_split("mspl-center/celeba", made)
    o = split_origin(split, split.samples())
    assert o["kind"] == "synthesised" and "seed 3" in o["reason"] and o["data_root"] == str(made.resolve())


def test_official_only_when_counts_match_the_release(made, tmp_path, monkeypatch):
    from faceblur_bench.data.mspl import _MSPL

    copy = tmp_path / "data"
    shutil.copytree(made, copy)
    (copy / "Test_data_center/Test_data_CelebA/make_split.json").unlink()  # not made here now
    monkeypatch.setattr(_MSPL, "EXPECTED_IMAGES", 1)  # a release of one face: counts match
    split = open_split("mspl-center/celeba", copy)
    assert split_origin(split, split.samples())["kind"] == "official"
    monkeypatch.setattr(_MSPL, "EXPECTED_IMAGES", 2)  # the release has more faces than found
    split = open_split("mspl-center/celeba", copy, allow_partial=True)
    o = split_origin(split, split.samples())
    assert o["kind"] == "custom" and "subset of the release: 1 of 2 sharp" in o["reason"]


def test_run_on_synthesised_data_stays_out_of_official_tables(made, tmp_path):
    from faceblur_bench.report.layouts import get_layout, render_layout
    from faceblur_bench.report.leaderboard import build_leaderboard
    from faceblur_bench.report.store import load_summaries
    from faceblur_bench.report.tables import split_table

    res = tmp_path / "res"
    s = engine.evaluate(engine.RunConfig(method="blurred", split="mspl-center/celeba", metrics=["psnr"],
                                         data_root=made, results_dir=res, device="cpu", limit=3))
    assert s["data_origin"]["kind"] == "synthesised"
    assert s["data_origin"]["data_root"] == str(made.resolve())
    stored = json.loads((Path(s["run_dir"]) / "summary.json").read_text())
    assert stored["data_origin"] == s["data_origin"]

    board = build_leaderboard(res)
    official = board.split("## mspl-center/celeba\n", 1)[1].split("\n## ", 1)[0]
    assert "_No reproduced run stored for this split" in official  # published rows only
    assert "| blurred" not in official
    custom_key = f"## mspl-center/celeba (custom data: {made.resolve()})"
    section = board.split(custom_key, 1)[1].split("\n## ", 1)[0]
    assert "| blurred" in section and "not the official test set" in section
    assert "reported" not in section  # the papers' numbers are not set beside it

    text = render_layout(get_layout("sappgan-t1"), load_summaries(res), split="mspl-center")
    assert "reproduced" not in text and "1 run(s) on custom data left out" in text

    plain = split_table(load_summaries(res), split="mspl-center/celeba")
    assert "custom data, not the official test set" in plain.splitlines()[0]
