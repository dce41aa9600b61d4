"""Weight registry: entries, lookup order, sha256 (full and prefix) checks, fetch, CLI."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import re
import sys
import threading
import zipfile
from dataclasses import replace

import pytest

from faceblur_bench import weights as wts
from faceblur_bench.errors import UsageError, WeightsIntegrityError, WeightsMissingError

EXPECTED = {"vggface16": "VGGFace16.pth", "arcface-resnet18": "arcface_resnet18.pth",
            "mobilefacenet": "model_mobilefacenet.pth", "arcface-r50": "w600k_r50.onnx",
            "lpips-alex-backbone": "alexnet-owt-7be5be79.pth", "lpips-vgg-backbone": "vgg16-397923af.pth",
            "fid-inception": "pt_inception-2015-12-05-6726825d.pth",
            "facenet-vggface2": "20180402-114759-vggface2.pt", "vgg-face-dag": "vgg_face_dag.pth"}


@pytest.fixture()
def homes(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("INSIGHTFACE_HOME", raising=False)
    monkeypatch.delenv("FACEBLUR_WEIGHTS", raising=False)
    for k in list(__import__("os").environ):
        if k.startswith("FACEBLUR_WEIGHTS_"):
            monkeypatch.delenv(k)
    return tmp_path


def test_all_entries_present_with_upstream_names_and_sane_metadata():
    for name, filename in EXPECTED.items():
        e = wts.get_entry(name)
        assert e.filename == filename
        assert e.url.startswith(("https://", "http://"))
        assert e.cache in {"torch-hub", "torch-checkpoints", "faceblur"} or e.cache.startswith("insightface:")
        assert e.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", e.sha256)
        if e.sha256 is None and e.sha256_prefix is None:
            assert "sha256" in e.description, f"{name}: say in the description that no hash is known"
        if not e.downloadable:
            assert e.manual, f"{name}: manual instructions needed"
    # torch-hub files: the prefix checked is the one their file name carries
    for name in ("lpips-alex-backbone", "lpips-vgg-backbone", "fid-inception"):
        e = wts.get_entry(name)
        assert e.cache == "torch-hub"
        assert e.sha256_prefix and e.filename.rsplit(".", 1)[0].endswith("-" + e.sha256_prefix)
    assert wts.get_entry("facenet-vggface2").cache == "torch-checkpoints"
    assert wts.get_entry("arcface-r50").cache == "insightface:buffalo_l"


def test_upstream_cache_locations(homes):
    assert wts.resolve.__doc__
    e = wts.get_entry("lpips-alex-backbone")
    assert wts.upstream_dir(e) == homes / "torch" / "hub" / "checkpoints"
    assert wts.upstream_dir(wts.get_entry("facenet-vggface2")) == homes / "torch" / "checkpoints"
    assert wts.upstream_dir(wts.get_entry("arcface-r50")) == homes / "home" / ".insightface" / "models" / "buffalo_l"
    assert wts.upstream_dir(wts.get_entry("vggface16")) == homes / "cache" / "faceblur_bench" / "weights"


def test_lookup_order_override_env_dir_upstream(homes, monkeypatch):
    e = wts.get_entry("arcface-resnet18")
    up = wts.upstream_dir(e)
    up.mkdir(parents=True)
    (up / e.filename).write_bytes(b"upstream")
    assert wts.resolve("arcface-resnet18") == up / e.filename
    d = homes / "wdir"
    d.mkdir()
    (d / e.filename).write_bytes(b"dir")
    monkeypatch.setenv("FACEBLUR_WEIGHTS", str(d))
    assert wts.resolve("arcface-resnet18") == d / e.filename
    envf = homes / "env.pth"
    envf.write_bytes(b"env")
    monkeypatch.setenv("FACEBLUR_WEIGHTS_ARCFACE_RESNET18", str(envf))
    assert wts.resolve("arcface-resnet18") == envf
    opt = homes / "opt.pth"
    opt.write_bytes(b"opt")
    assert wts.resolve("arcface-resnet18", {"arcface-resnet18": str(opt)}) == opt


def test_prefix_check_accepts_matching_and_refuses_other_content(homes, monkeypatch):
    data = b"pretend weights"
    digest = hashlib.sha256(data).hexdigest()
    e = wts.WeightFile("toy", f"toy-{digest[:8]}.pth", "https://example.invalid/toy.pth", None,
                       "torch-hub", "toy (no full sha256)", sha256_prefix=digest[:8])
    monkeypatch.setitem(wts.KNOWN, "toy", e)
    d = wts.upstream_dir(e)
    d.mkdir(parents=True)
    (d / e.filename).write_bytes(data)
    assert wts.resolve("toy") == d / e.filename
    (d / e.filename).write_bytes(data + b"!")
    with pytest.raises(WeightsIntegrityError, match=f"expected {digest[:8]}"):
        wts.resolve("toy")
    st = wts.status(["toy"])[0]
    assert st.hash_ok is False and st.detail == "sha256 mismatch"


def test_real_torchhub_entry_refuses_a_random_file(homes):
    """A random file under alexnet-owt-7be5be79.pth does not pass the name's sha256 prefix."""
    e = wts.get_entry("lpips-alex-backbone")
    d = wts.upstream_dir(e)
    d.mkdir(parents=True)
    (d / e.filename).write_bytes(b"\x00" * 1000)
    with pytest.raises(WeightsIntegrityError) as ei:
        wts.resolve("lpips-alex-backbone")
    assert "7be5be79" in str(ei.value) and ei.value.hint


def test_missing_error_lists_places_and_manual_steps(homes):
    with pytest.raises(WeightsMissingError) as ei:
        wts.resolve("mobilefacenet")
    msg = str(ei.value)
    assert "model_mobilefacenet.pth" in msg and "FACEBLUR_WEIGHTS_MOBILEFACENET" in msg
    assert "OneDrive" in ei.value.hint


# -- fetch ----------------------------------------------------------------------------------------
class _Server:
    """Local HTTP server serving ``self.files`` (path -> bytes)."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        files = self.files

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = files.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture()
def server():
    srv = _Server()
    yield srv
    srv.httpd.shutdown()


def test_fetch_downloads_checks_prefix_and_is_atomic(homes, server, monkeypatch):
    good = b"weights-v1" * 100
    digest = hashlib.sha256(good).hexdigest()
    e = wts.WeightFile("toy", f"toy-{digest[:8]}.pth", server.url + "/toy.pth", None, "torch-hub", "toy",
                       sha256_prefix=digest[:8])
    monkeypatch.setitem(wts.KNOWN, "toy", e)
    server.files["/toy.pth"] = good
    seen = []
    path = wts.fetch("toy", progress=lambda done, total: seen.append((done, total)))
    assert path == homes / "torch" / "hub" / "checkpoints" / e.filename
    assert path.read_bytes() == good and seen[-1] == (len(good), len(good))
    assert wts.resolve("toy") == path
    # corrupted upstream: refused, nothing left behind
    path.unlink()
    server.files["/toy.pth"] = good + b"x"
    with pytest.raises(WeightsIntegrityError):
        wts.fetch("toy")
    assert list(path.parent.iterdir()) == []


def test_fetch_extracts_member_of_insightface_pack(homes, server, monkeypatch):
    onnx_bytes = b"fake-onnx" * 50
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("det_10g.onnx", b"detector")
        zf.writestr("w600k_r50.onnx", onnx_bytes)
    server.files["/buffalo_l.zip"] = buf.getvalue()
    e = replace(wts.get_entry("arcface-r50"), url=server.url + "/buffalo_l.zip",
                sha256=hashlib.sha256(onnx_bytes).hexdigest())
    monkeypatch.setitem(wts.KNOWN, "arcface-r50", e)
    path = wts.fetch("arcface-r50")
    assert path == homes / "home" / ".insightface" / "models" / "buffalo_l" / "w600k_r50.onnx"
    assert path.read_bytes() == onnx_bytes
    assert sorted(p.name for p in path.parent.iterdir()) == ["w600k_r50.onnx"]


def test_fetch_manual_and_unreachable(homes, monkeypatch):
    with pytest.raises(UsageError) as ei:
        wts.fetch("vggface16")
    assert "Google Drive" in ei.value.hint
    e = replace(wts.get_entry("arcface-resnet18"), url="http://127.0.0.1:9/arcface_resnet18.pth")
    monkeypatch.setitem(wts.KNOWN, "arcface-resnet18", e)
    with pytest.raises(WeightsMissingError, match="could not download arcface-resnet18"):
        wts.fetch("arcface-resnet18", timeout=5)
    assert not (wts.upstream_dir(e) / e.filename).exists()


# -- CLI ------------------------------------------------------------------------------------------
def _cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    from faceblur_bench.cli import main

    monkeypatch.setattr(sys, "argv", ["faceblur-bench", *args])
    monkeypatch.setenv("COLUMNS", "250")
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_cli_weights_table_json_reports_found_missing_and_mismatch(homes, monkeypatch, capsys):
    e = wts.get_entry("arcface-resnet18")
    d = wts.upstream_dir(e)
    d.mkdir(parents=True)
    (d / e.filename).write_bytes(b"x" * 2_000_000)
    a = wts.get_entry("lpips-alex-backbone")
    (wts.upstream_dir(a)).mkdir(parents=True)
    (wts.upstream_dir(a) / a.filename).write_bytes(b"not alexnet")
    code, out, _ = _cli(monkeypatch, capsys, "weights", "--json")
    assert code == 0
    recs = {r["name"]: r for r in json.loads(out)}
    assert set(EXPECTED) <= set(recs)
    assert recs["arcface-resnet18"]["status"] == "found" and recs["arcface-resnet18"]["size_MB"] == 2.0
    assert recs["arcface-resnet18"]["sha256"] == "none published"
    assert "darc" in recs["arcface-resnet18"]["used_by"]
    assert recs["lpips-alex-backbone"]["status"] == "sha256 mismatch"
    assert recs["lpips-alex-backbone"]["sha256"] == "MISMATCH"
    assert recs["vggface16"]["status"] == "missing" and recs["vggface16"]["download"] == "manual"
    assert recs["vggface16"]["path"].endswith("faceblur_bench/weights/VGGFace16.pth")
    code, out, _ = _cli(monkeypatch, capsys, "weights")
    assert code == 0 and "arcface-resnet18" in out and "missing" in out


def test_cli_fetch_errors_have_exit_codes(homes, monkeypatch, capsys):
    code, _, err = _cli(monkeypatch, capsys, "weights", "fetch")
    assert code == 2 and "--all" in err
    code, _, err = _cli(monkeypatch, capsys, "weights", "fetch", "vgface16")
    assert code == 2 and "did you mean" in err and "vggface16" in err
    code, _, err = _cli(monkeypatch, capsys, "weights", "fetch", "vggface16")
    assert code == 1 and "Google Drive" in err
    e = replace(wts.get_entry("arcface-resnet18"), url="http://127.0.0.1:9/arcface_resnet18.pth")
    monkeypatch.setitem(wts.KNOWN, "arcface-resnet18", e)
    code, _, err = _cli(monkeypatch, capsys, "weights", "fetch", "arcface-resnet18", "--timeout", "5")
    assert code == 1 and "could not download" in err and "arcface_resnet18.pth" in err


def test_missing_cell_reason_says_manual_download_where_fetch_cannot(tmp_path, monkeypatch):
    """Table footnotes use ``err.short``: never suggest `weights fetch` for a manual download."""
    for name in ("vggface16", "mobilefacenet"):
        with pytest.raises(WeightsMissingError) as exc:
            wts.resolve(name)  # not in any cache of this test session
        assert "manual download" in exc.value.short and "weights fetch" not in exc.value.short
        assert f"--weights {name}=PATH" in exc.value.short
    with pytest.raises(WeightsMissingError) as exc:
        wts.resolve("arcface-resnet18")
    assert "`faceblur-bench weights fetch arcface-resnet18`" in exc.value.short


def test_override_that_is_a_fifo_socket_or_folder_says_what_it_is(homes, monkeypatch, capsys):
    """Not "does not exist": the override names something, of the wrong kind. Judged by stat
    alone: a FIFO with no writer is never opened (that would block this test forever)."""
    import os
    import socket

    from faceblur_bench.errors import WeightsOverrideError

    e = wts.get_entry("arcface-resnet18")
    up = wts.upstream_dir(e)
    up.mkdir(parents=True)
    (up / e.filename).write_bytes(b"upstream")  # never used in place of a bad override
    fifo, folder, sock = homes / "w.fifo", homes / "w.dir", homes / "w.sock"
    os.mkfifo(fifo)
    folder.mkdir()
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(sock))
        for path, kind in ((fifo, "a FIFO"), (folder, "a directory"), (sock, "a socket")):
            with pytest.raises(WeightsOverrideError) as ei:
                wts.check_overrides({e.name: str(path)})
            assert f"--weights {e.name}={path} for {e.name} ({e.filename}) is {kind}, not a regular file" \
                in ei.value.message
            assert "not a FIFO, socket or folder" in ei.value.hint
            monkeypatch.setenv("FACEBLUR_WEIGHTS_ARCFACE_RESNET18", str(path))
            with pytest.raises(WeightsOverrideError) as ei:
                wts.resolve(e.name)
            assert f"$FACEBLUR_WEIGHTS_ARCFACE_RESNET18={path} for {e.name}" in ei.value.message
            assert f"is {kind}, not a regular file" in ei.value.message
            # the listing shows the override refused, as a run would, not the upstream file
            code, out, _ = _cli(monkeypatch, capsys, "weights", "--no-hash", "--json")
            rec = {r["name"]: r for r in json.loads(out)}[e.name]
            assert code == 0 and rec["status"] == "override refused" and rec["path"] == str(path), rec
            assert rec["detail"].endswith(f"is {kind}, not a regular file")
            monkeypatch.delenv("FACEBLUR_WEIGHTS_ARCFACE_RESNET18")
    with pytest.raises(WeightsOverrideError, match="does not exist"):
        wts.check_overrides({e.name: str(homes / "nope.pth")})
    # a FIFO where the default lookup looks is named in the "not found" list, not read
    a = wts.get_entry("vggface16")
    monkeypatch.setenv("FACEBLUR_WEIGHTS", str(homes))
    os.mkfifo(homes / a.filename)
    with pytest.raises(WeightsMissingError) as ei:
        wts.resolve(a.name)
    assert f"{homes / a.filename}  (is a FIFO, not a regular file)" in ei.value.message
