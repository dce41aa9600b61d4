"""measure_runtime and the `runtime` command with small real methods (CPU; CUDA path when present)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence

import pytest
import torch
from torch import nn

from faceblur_bench.methods.base import Method, TorchMethod
from faceblur_bench.metrics.runtime import measure_runtime, time_calls


class TinyNet(TorchMethod):
    name = "tiny-net"

    def build(self) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1)
        )

    def __init__(self, **kw):
        super().__init__(**kw)
        self.calls = 0
        self.autocast_seen: list[tuple[bool, torch.dtype]] = []

    def restore(self, blurred: torch.Tensor, meta: Sequence[dict] | None = None) -> torch.Tensor:
        self.calls += 1
        y = self.net(blurred)
        self.autocast_seen.append((torch.is_autocast_enabled(blurred.device.type), y.dtype))
        return torch.sigmoid(y.float())


class Sleeper(Method):
    name = "sleeper"
    uses_kernel = True

    def __init__(self, **kw):
        super().__init__(**kw)
        self.metas: list = []

    def restore(self, blurred, meta=None):
        self.metas.append(meta)
        time.sleep(0.004)
        return blurred.clone()


class WrongSize(Method):
    name = "wrong-size"
    scale = 2

    def restore(self, blurred, meta=None):
        return blurred  # claims x2 but returns x1


def test_structure_counts_and_parameters():
    m = TinyNet()
    m.load(None, "cpu")
    info = measure_runtime(
        m, "cpu", sizes=((32, 48),), batches=(1, 3), dtypes=("fp32", "bf16"), repeats=4, warmup=2
    )
    assert info["device_type"] == "cpu" and info["timer"] == "perf_counter" and info["device"]
    n = sum(p.numel() for p in m.net.parameters())
    assert info["parameters"] == n and info["parameters_m"] == pytest.approx(n / 1e6, abs=1e-3)
    rows = info["results"]
    assert [(r["batch"], r["dtype"]) for r in rows] == [
        (1, "fp32"),
        (1, "bf16"),
        (3, "fp32"),
        (3, "bf16"),
    ]
    for r in rows:
        assert "error" not in r, r
        assert r["size"] == [32, 48]
        assert 0 < r["min_ms"] <= r["p10_ms"] <= r["median_ms"] <= r["p90_ms"]
        assert r["per_image_ms"] == pytest.approx(r["median_ms"] / r["batch"])
    # one shape check + warm-up + repeats per configuration
    assert m.calls == 4 * (1 + 2 + 4)
    # bf16 rows ran under autocast (conv output in bfloat16), fp32 rows did not
    seen = m.autocast_seen
    per = 1 + 2 + 4
    assert all(s == (False, torch.float32) for s in seen[:per])
    assert all(s == (True, torch.bfloat16) for s in seen[per : 2 * per])


def test_median_reflects_call_time_and_kernel_meta():
    m = Sleeper()
    info = measure_runtime(
        m, "cpu", sizes=((16, 16),), batches=(2,), dtypes=("fp32",), repeats=5, warmup=1
    )
    r = info["results"][0]
    assert r["median_ms"] >= 4.0
    assert info["parameters"] is None and info["parameters_m"] is None
    # an oracle method receives one unit-sum kernel per image
    meta = m.metas[-1]
    assert len(meta) == 2 and abs(meta[0]["kernel"].sum() - 1.0) < 1e-12


def test_wrong_output_shape_is_reported_not_timed():
    info = measure_runtime(
        WrongSize(), "cpu", sizes=((8, 8),), batches=(1,), dtypes=("fp32",), repeats=2, warmup=0
    )
    assert "expected (1, 3, 16, 16)" in info["results"][0]["error"]
    assert "median_ms" not in info["results"][0]


def test_bad_arguments():
    with pytest.raises(ValueError, match="dtype"):
        measure_runtime(TinyNet(), "cpu", dtypes=("fp16",), repeats=1, warmup=0)
    with pytest.raises(ValueError, match="repeats"):
        measure_runtime(TinyNet(), "cpu", repeats=0)


def test_time_calls_counts():
    calls = []
    t = time_calls(lambda: calls.append(1), torch.device("cpu"), repeats=7, warmup=3)
    assert len(t) == 7 and len(calls) == 10 and all(v >= 0 for v in t)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_events_path():
    m = TinyNet()
    m.load(None, "cuda")
    info = measure_runtime(m, "cuda", sizes=((128, 128),), batches=(1, 16), repeats=50, warmup=10)
    assert info["timer"] == "cuda-events" and info["device_type"] == "cuda"
    assert info["device"] == torch.cuda.get_device_name(0)
    assert len(info["results"]) == 4
    for r in info["results"]:
        assert "error" not in r and r["median_ms"] > 0


def _cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    from faceblur_bench.cli import main

    monkeypatch.setattr(sys, "argv", ["faceblur-bench", *args])
    with pytest.raises(SystemExit) as ei:
        main()
    cap = capsys.readouterr()
    return ei.value.code, cap.out, cap.err


def test_cli_runtime_json_and_errors(monkeypatch, capsys):
    code, out, err = _cli(
        monkeypatch,
        capsys,
        "runtime",
        "--method",
        "blurred",
        "--device",
        "cpu",
        "--repeats",
        "3",
        "--warmup",
        "0",
        "--batch",
        "2",
        "--size",
        "16x24",
        "--json",
    )
    assert code == 0, err
    info = json.loads(out)
    # bf16 autocast changes nothing for a method without a torch network: fp32 only by default
    assert info["method"] == "blurred" and [(r["batch"], r["dtype"]) for r in info["results"]] == [(2, "fp32")]
    assert info["results"][0]["size"] == [16, 24]
    assert "timing blurred" in err and "4/4" in err  # progress: 1 check + 0 warm-up + 3 timed calls
    code, out, err = _cli(monkeypatch, capsys, "runtime", "--method", "blurred", "--dtype", "fp16")
    assert code == 2 and "fp16" in err
    code, out, err = _cli(monkeypatch, capsys, "runtime", "--method", "blurd")
    assert code == 2 and "did you mean" in err
    code, out, err = _cli(monkeypatch, capsys, "runtime", "--method", "blurred", "--size", "abc")
    assert code == 2 and "HxW" in err


def test_default_dtypes_follow_the_method():
    from faceblur_bench.methods.base import TorchMethod
    from faceblur_bench.metrics.runtime import applicable_dtypes
    from faceblur_bench.registry import methods

    class Tiny(TorchMethod):
        def build(self):
            return torch.nn.Conv2d(3, 3, 1)

        def restore(self, blurred, meta=None):
            return self.net(blurred)

    assert applicable_dtypes(Tiny()) == ("fp32", "bf16")
    assert applicable_dtypes(methods.get("wiener")()) == ("fp32",)


def test_cli_runtime_of_untrained_learned_method_points_to_untrained(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("FACEBLUR_CHECKPOINTS", str(tmp_path))
    code, _, err = _cli(monkeypatch, capsys, "runtime", "--method", "sappgan", "--device", "cpu")
    err = " ".join(err.split())
    assert code != 0 and "sappgan needs trained weights" in err and "--untrained" in err
