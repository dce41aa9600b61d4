"""`faceblur-bench make-split`, `data verify`, `data status` through the real CLI app."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from faceblur_bench.cli import app
from faceblur_bench.imageio import write_png

runner = CliRunner()


def test_make_split_then_verify_and_tamper(tmp_path):
    rng = np.random.default_rng(0)
    write_png(tmp_path / "sharp" / "me.png", rng.integers(0, 256, (128, 128, 3), dtype=np.uint8))
    out = tmp_path / "data"
    r = runner.invoke(app, ["make-split", "--sharp", str(tmp_path / "sharp"), "--protocol", "mspl",
                            "--out", str(out), "--seed", "3", "--subset", "ffhq"])
    assert r.exit_code == 0, r.output
    assert "mspl-center/ffhq" in r.output
    r = runner.invoke(app, ["data", "verify", "mspl-center/ffhq", "--data-root", str(out), "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    assert res["created"] and res["ok"] and res["counts"] == {"sharp": 1, "blurred": 80}
    victim = out / "Test_data_center/Test_data_FFHQ/FFHQ_blur/me_ker25_blur_k17.png"
    victim.write_bytes(victim.read_bytes() + b"\0")
    r = runner.invoke(app, ["data", "verify", "mspl-center/ffhq", "--data-root", str(out), "--json"])
    assert r.exit_code == 1
    assert json.loads(r.output)["changed"] == ["Test_data_center/Test_data_FFHQ/FFHQ_blur/me_ker25_blur_k17.png"]
    r = runner.invoke(app, ["data", "status", "--data-root", str(out), "--json"])
    recs = {x["name"]: x for x in json.loads(r.output)}
    assert recs["mspl-center"]["found"] and recs["mspl-center"]["error"] and not recs["shen-helen"]["found"]


def test_make_split_bad_input_exit_code(tmp_path):
    write_png(tmp_path / "sharp" / "wide.png", np.zeros((128, 160, 3), np.uint8))
    r = runner.invoke(app, ["make-split", "--sharp", str(tmp_path / "sharp"), "--protocol", "shen",
                            "--out", str(tmp_path / "o")])
    assert r.exit_code != 0
    assert "160x128" in str(r.exception) or "160x128" in r.output
