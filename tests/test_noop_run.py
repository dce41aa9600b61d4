"""A run with nothing left to compute answers from the store (engine.run._stored_run_is_current)
— and takes the full path the moment anything could be computed: a weight file that appeared,
a row that lacks a metric, images to save."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import torchvision
from test_metrics_identity import weight_dirs  # noqa: F401

from faceblur_bench import weights
from faceblur_bench.engine import RunConfig, evaluate
from faceblur_bench.engine import run as engine_run


def config(tmp_path: Path, **kw) -> RunConfig:
    return RunConfig(method="blurred", split="demo", metrics=("psnr", "lpips-alex"), limit=3,
                     results_dir=tmp_path / "results", **kw)


def no_setup(monkeypatch) -> list[int]:
    """Count the full path's metric set-ups (the no-op path must not reach it)."""
    calls: list[int] = []
    real = engine_run.setup_metrics

    def counted(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(engine_run, "setup_metrics", counted)
    return calls


def test_noop_skips_setup_until_weights_appear(tmp_path, demo_data_root, weight_dirs, monkeypatch):  # noqa: F811
    first = evaluate(config(tmp_path))
    assert first["metrics"]["lpips-alex"]["status"] == "unavailable"
    summary = Path(first["run_dir"]) / "summary.json"
    before = summary.read_bytes()
    calls = no_setup(monkeypatch)
    again = evaluate(config(tmp_path))
    assert calls == [] and again["this_session"]["session"] is None
    assert again["this_session"]["reused"]["rows"] == 3
    assert summary.read_bytes() == before
    assert again["metrics"] == first["metrics"]

    # the AlexNet trunk appears (random, format-faithful; hash check off): the full path runs
    ck = Path(weight_dirs["faceblur"]).parents[2] / "torch" / "hub" / "checkpoints"
    ck.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), ck / "alexnet-owt-7be5be79.pth")
    e = weights.KNOWN["lpips-alex-backbone"]
    monkeypatch.setitem(weights.KNOWN, "lpips-alex-backbone", dataclasses.replace(e, sha256=None, sha256_prefix=None))
    third = evaluate(config(tmp_path))
    assert calls == [1]
    assert third["metrics"]["lpips-alex"]["status"] == "ok"
    rows = [json.loads(x) for x in (Path(third["run_dir"]) / "rows.jsonl").read_text().splitlines()]
    assert {r["id"] for r in rows if "lpips-alex" in (r.get("metrics") or {})} == {r["id"] for r in rows}


def test_row_missing_a_value_or_images_to_save_take_the_full_path(tmp_path, demo_data_root, monkeypatch):
    cfg = RunConfig(method="blurred", split="demo", metrics=("psnr",), limit=2, results_dir=tmp_path / "r")
    run_dir = Path(evaluate(cfg)["run_dir"])
    rows_path = run_dir / "rows.jsonl"
    rows = [json.loads(x) for x in rows_path.read_text().splitlines()]
    value = rows[0]["metrics"].pop("psnr")
    rows_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    calls = no_setup(monkeypatch)
    evaluate(cfg)
    assert calls == [1]
    latest = {r["id"]: r for r in map(json.loads, rows_path.read_text().splitlines())}
    assert latest[rows[0]["id"]]["metrics"]["psnr"] == pytest.approx(value)

    evaluate(cfg)  # now complete: the no-op path
    assert calls == [1]
    evaluate(dataclasses.replace(cfg, save_images=True))  # images not on disk: full path
    assert calls == [1, 1]
    assert len(list((run_dir / "images").rglob("*.png"))) == 2


def test_metric_weights_changed_since_stored_rows_refused(tmp_path, demo_data_root, weight_dirs, monkeypatch):  # noqa: F811
    from faceblur_bench.errors import UsageError

    ck = Path(weight_dirs["faceblur"]).parents[2] / "torch" / "hub" / "checkpoints"
    ck.mkdir(parents=True)
    e = weights.KNOWN["lpips-alex-backbone"]
    monkeypatch.setitem(weights.KNOWN, "lpips-alex-backbone", dataclasses.replace(e, sha256=None, sha256_prefix=None))

    def trunk(seed: int) -> None:
        torch.manual_seed(seed)
        torch.save(torchvision.models.alexnet(weights=None).state_dict(), ck / "alexnet-owt-7be5be79.pth")

    trunk(0)
    first = evaluate(config(tmp_path))  # 3 images scored with trunk 0
    assert first["metrics"]["lpips-alex"]["status"] == "ok"
    rows_path = Path(first["run_dir"]) / "rows.jsonl"
    kept = rows_path.read_text().splitlines()[:2]
    rows_path.write_text("".join(x + "\n" for x in kept))  # one image left to score
    trunk(1)  # another file under the same name
    with pytest.raises(UsageError, match="lpips-alex.*not the one its stored values"):
        evaluate(config(tmp_path))
    assert rows_path.read_text().splitlines() == kept  # nothing was added with the other network
    trunk(0)  # the original bytes again: the run goes on
    assert evaluate(config(tmp_path))["counts"]["done"] == 3
