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
                        "--leaderboard", str(tmp_path / "lb.md")], check=False, capture_output=True, text=True, timeout=600)
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "sappgan.pth" in r.stderr
    assert not marker.exists()


def test_genuine_state_dict_loads(tmp_path):
    m = Tiny()
    torch.save({"model": m.net.state_dict()}, tmp_path / "ok.pth")
    m2 = Tiny()
    m2.load(tmp_path / "ok.pth", "cpu")
    assert torch.equal(m2.net.weight, m.net.weight)


# -- issue 13: files that expand, shapes that do not fit, symlink loops ---------------------------
def _deflated_zeros(nbytes: int, chunk: int = 1 << 24) -> tuple[bytes, int]:
    """(raw deflate stream of ``nbytes`` zero bytes, their crc32), built from one compressed
    chunk repeated (full flushes make every chunk's output identical), so writing a stream that
    inflates to 2 GiB costs ~1 s and ~20 MB here."""
    import zlib

    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(bytes(chunk)) + c.flush(zlib.Z_FULL_FLUSH)
    n, rest = divmod(nbytes, chunk)
    tail = c.compress(bytes(rest)) + c.flush(zlib.Z_FINISH)
    crc, zeros = 0, bytes(chunk)
    for _ in range(n):
        crc = zlib.crc32(zeros, crc)
    return block * n + tail, zlib.crc32(bytes(rest), crc)


def write_inflating_pth(path: Path, key: str, numel: int) -> Path:
    """A torch zip checkpoint ``{key: float32 zeros(numel)}`` whose tensor record is deflated:
    torch.load inflates it (compressed records are legal zip) to ``4 * numel`` bytes."""
    import collections
    import io
    import struct
    import zlib

    class _Storage:
        pass

    storage = _Storage()

    class _Tensor:
        def __reduce__(self):
            return (torch._utils._rebuild_tensor_v2,
                    (storage, 0, (numel,), (1,), False, collections.OrderedDict()))

    buf = io.BytesIO()
    pk = pickle.Pickler(buf, protocol=2)
    pk.persistent_id = lambda o: ("storage", torch.FloatStorage, "0", "cpu", numel) if o is storage else None
    pk.dump({key: _Tensor()})
    data, crc = _deflated_zeros(4 * numel)
    records = [(name, 0, d, zlib.crc32(d), len(d)) for name, d in
               (("archive/data.pkl", buf.getvalue()), ("archive/byteorder", b"little"), ("archive/version", b"3\n"))]
    records.append(("archive/data/0", 8, data, crc, 4 * numel))
    out, central = bytearray(), bytearray()
    for name, method, d, c, usize in records:
        nb = name.encode()
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, c, len(d), usize,
                               len(nb), 0, 0, 0, 0, 0, len(out)) + nb
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, c, len(d), usize, len(nb), 0) + nb + d
    out += central + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(records), len(records), len(central),
                                 len(out), 0)
    path.write_bytes(bytes(out))
    return path


def test_small_file_inflating_to_2gib_is_refused_before_it_is_inflated(tmp_path):
    bomb = write_inflating_pth(tmp_path / "VGGFace16.pth", "features.0.weight", 2**29)  # 2 GiB of float32
    assert bomb.stat().st_size < 3 * 2**20
    # the loader runs in a child whose data segment is capped at +512 MiB: a regression fails fast
    # (allocation error) instead of taking 2 GiB of this machine
    code = (
        "import resource, sys\n"
        "from faceblur_bench.nets.vggface import load_vggface16_features\n"
        "from faceblur_bench.errors import WeightsIntegrityError\n"
        "vm = int(next(l for l in open('/proc/self/status') if l.startswith('VmData')).split()[1])\n"
        "resource.setrlimit(resource.RLIMIT_DATA, ((vm + 512 * 1024) * 1024, resource.RLIM_INFINITY))\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    load_vggface16_features(sys.argv[1])\n"
        "    print('LOADED')\n"
        "except WeightsIntegrityError as e:\n"
        "    print('REFUSED', e.message)\n"
        "print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n")
    r = subprocess.run([sys.executable, "-c", code, str(bomb)], capture_output=True, text=True, timeout=600,
                       check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in r.stdout.strip().splitlines())
    assert "holds 2,048.0 MiB of records (compressed); VGGFace16 needs at most" in lines["REFUSED"]
    assert "refused before reading it" in lines["REFUSED"]
    assert int(lines["PEAK_KB"]) < 64 * 1024  # peak memory grew by < 64 MiB (was +1.9 GiB)


def test_tensor_of_the_wrong_shape_is_named_before_anything_is_copied(tmp_path):
    torch.save({"w": torch.zeros(3, 3), "b": torch.ones(2)}, tmp_path / "f.pth")
    with pytest.raises(WeightsIntegrityError) as e:
        read_state_dict(tmp_path / "f.pth", expected={"w": (2, 2), "b": (2,)}, what="Tiny")
    assert "tensor 'w' has shape (3, 3), Tiny expects (2, 2)" in str(e.value)
    sd = read_state_dict(tmp_path / "f.pth", expected={"w": (3, 3), "b": (2,)})
    assert torch.equal(sd["b"], torch.ones(2)) and sd["w"].shape == (3, 3)
    # more data than the architecture can hold is refused from the zip directory alone
    torch.save({"w": torch.zeros(300_000)}, tmp_path / "big.pth")
    with pytest.raises(WeightsIntegrityError, match=r"holds 1\.1 MiB of records; Tiny needs at most 1\.0 MiB"):
        read_state_dict(tmp_path / "big.pth", expected={"w": (2, 2)}, what="Tiny")


def test_symlink_loop_is_named_as_such(tmp_path):
    from faceblur_bench import weights
    from faceblur_bench.errors import WeightsMissingError

    a, b = tmp_path / "a.pth", tmp_path / "b.pth"
    a.symlink_to(b)
    b.symlink_to(a)
    with pytest.raises(WeightsMissingError, match=r"a\.pth is a symlink loop"):
        read_state_dict(a)
    with pytest.raises(WeightsMissingError) as e:
        weights.resolve("vggface16", {"vggface16": str(a)})
    assert f"at {a} is a symlink loop" in str(e.value) and "not found" not in str(e.value)


# -- issue 13 item 1: an explicit override never falls through; every run records its files ------
def _cli(argv: list[str], monkeypatch, capsys) -> tuple[int, str]:
    from faceblur_bench.cli import app, run_app

    monkeypatch.setattr(sys, "argv", ["faceblur-bench", *argv])
    with pytest.raises(SystemExit) as e:
        run_app(app)
    return int(e.value.code or 0), capsys.readouterr().err.replace("\n", "")  # undo rich's wrapping


def _vggface16_dir(tmp_path: Path) -> Path:
    from test_metrics_identity import _save_vggface16

    d = tmp_path / "weights-dir"
    d.mkdir()
    _save_vggface16(d)
    return d


@pytest.mark.parametrize("strict", [True, False])
def test_missing_override_is_an_error_not_a_fall_through(tmp_path, monkeypatch, capsys,
                                                         demo_data_root, strict):
    """`--weights vggface16=/typo.pth` with $FACEBLUR_WEIGHTS holding VGGFace16.pth: exit 2
    naming the override, before any image is scored (never d_VGG from the directory)."""
    monkeypatch.setenv("FACEBLUR_WEIGHTS", str(_vggface16_dir(tmp_path)))
    typo = tmp_path / "typo.pth"
    out = tmp_path / "res"
    rc, err = _cli(["run", "--method", "blurred", "--split", "demo", "--limit", "2", "--metrics",
                    "dvgg", "--weights", f"vggface16={typo}", "--device", "cpu", "--out", str(out),
                    "--leaderboard", str(tmp_path / "lb.md"), *(["--strict"] if strict else [])],
                   monkeypatch, capsys)
    assert rc == 2, err
    assert f"--weights vggface16={typo}" in err and "does not exist" in err
    assert "Traceback" not in err
    assert not (out / "runs").exists()  # refused before any work


def test_missing_environment_override_is_an_error(tmp_path, monkeypatch):
    from faceblur_bench import weights
    from faceblur_bench.errors import WeightsOverrideError

    monkeypatch.setenv("FACEBLUR_WEIGHTS", str(tmp_path))
    (tmp_path / "VGGFace16.pth").write_bytes(b"x")  # would be found if the override fell through
    monkeypatch.setenv("FACEBLUR_WEIGHTS_VGGFACE16", str(tmp_path / "nope.pth"))
    with pytest.raises(WeightsOverrideError, match=r"\$FACEBLUR_WEIGHTS_VGGFACE16.*nope\.pth"):
        weights.resolve("vggface16")


def test_summary_records_the_files_each_metric_and_the_method_used(tmp_path, monkeypatch,
                                                                   demo_data_root):
    from faceblur_bench import engine
    from faceblur_bench.files import sha256_file

    wdir = _vggface16_dir(tmp_path)
    monkeypatch.setenv("FACEBLUR_WEIGHTS", str(wdir))
    net = nn.Conv2d(3, 3, 1)
    with torch.no_grad():
        net.weight.copy_(torch.eye(3).reshape(3, 3, 1, 1))
        net.bias.zero_()
    ck = tmp_path / "tiny.pth"
    torch.save(net.state_dict(), ck)
    alt = tmp_path / "elsewhere" / "my-vggface.pth"
    alt.parent.mkdir()
    alt.write_bytes((wdir / "VGGFace16.pth").read_bytes())

    def run(res: str = "res", **kw):
        return engine.evaluate(engine.RunConfig(method=Tiny(), split="demo", limit=2,
                                                metrics=["psnr", "dvgg"], checkpoint=ck,
                                                results_dir=tmp_path / res, device="cpu", **kw))

    s = run()
    assert s["metrics"]["dvgg"]["status"] == "ok"
    used = {"name": "vggface16", "path": str(wdir / "VGGFace16.pth"),
            "sha256": sha256_file(wdir / "VGGFace16.pth")}
    assert s["metrics"]["dvgg"]["weights"] == [used]
    assert s["weights_used"]["metrics"] == {"psnr": [], "dvgg": [used]}
    assert s["weights_used"]["method"] == [{"name": "checkpoint", "path": str(ck),
                                            "sha256": sha256_file(ck)}]
    # a no-op re-run keeps recording the file that computed the stored values; a run that
    # computes with an override records the override
    assert run(weights_overrides={"vggface16": str(alt)})["metrics"]["dvgg"]["weights"] == [used]
    s2 = run("res2", weights_overrides={"vggface16": str(alt)})
    assert s2["metrics"]["dvgg"]["weights"] == [{"name": "vggface16", "path": str(alt),
                                                 "sha256": sha256_file(alt)}]
