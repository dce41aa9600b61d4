"""Safe loading: checkpoints and weight files are read with weights_only=True, so a file that
carries code is refused and the code never runs."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol")
import torch
from torch import nn

from faceblur_bench.errors import WeightsIntegrityError
from faceblur_bench.methods.base import TorchMethod
from faceblur_bench.nets.loading import read_state_dict


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def malicious_checkpoint(path: Path, marker: Path) -> Path:
    with open(path, "wb") as f:
        pickle.dump({"model": {"w": _Payload(marker)}}, f)
    return path


class Tiny(TorchMethod):
    name = "tiny"

    def build(self) -> nn.Module:
        return nn.Conv2d(3, 3, 1)

    def restore(self, blurred, meta=None):
        return self.net(blurred).clamp(0, 1)


def test_method_checkpoint_with_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    ck = malicious_checkpoint(tmp_path / "evil.pth", marker)
    with pytest.raises(WeightsIntegrityError) as e:
        Tiny().load(ck, "cpu")
    assert "evil.pth" in str(e.value) and "weights_only=True" in str(e.value)
    assert not marker.exists()


def test_weight_file_with_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    ck = malicious_checkpoint(tmp_path / "VGGFace16.pth", marker)
    with pytest.raises(WeightsIntegrityError, match="VGGFace16.pth"):
        read_state_dict(ck)
    assert not marker.exists()


def test_run_with_malicious_checkpoint_exits_cleanly(tmp_path, demo_data_root):
    marker = tmp_path / "pwned"
    ck = malicious_checkpoint(tmp_path / "sappgan.pth", marker)
    r = subprocess.run([sys.executable, "-m", "faceblur_bench", "run", "--method", "sappgan", "--checkpoint", str(ck),
                        "--limit", "2", "--metrics", "psnr", "--out", str(tmp_path / "r"),
                        "--leaderboard", str(tmp_path / "lb.md")], capture_output=True, text=True, timeout=600)
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "sappgan.pth" in r.stderr
    assert not marker.exists()


def test_genuine_state_dict_loads(tmp_path):
    m = Tiny()
    torch.save({"model": m.net.state_dict()}, tmp_path / "ok.pth")
    m2 = Tiny()
    m2.load(tmp_path / "ok.pth", "cpu")
    assert torch.equal(m2.net.weight, m.net.weight)
