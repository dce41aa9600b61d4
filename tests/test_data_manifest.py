"""verify / manifest round trip, tamper detection, path-escape refusal, manifest location."""

from __future__ import annotations

import json

import pytest

from faceblur_bench.data import shen
from faceblur_bench.data.manifest import load_manifest, manifest_hash, verify
from faceblur_bench.engine import open_split
from faceblur_bench.errors import DataLayoutError

from test_data_layouts import make_shen


@pytest.fixture
def tree(tmp_path, monkeypatch):
    monkeypatch.setattr(shen._Shen, "EXPECTED_IMAGES", 2)
    make_shen(tmp_path, "Helen")
    return tmp_path


def test_round_trip_and_tamper_detection(tree):
    split = open_split("shen-helen", tree)
    first = verify(split)
    assert first.created and first.ok
    assert first.manifest == tree / ".faceblur_manifests" / "shen-helen.json"
    assert first.counts == {"sharp": 2, "blurred": 160} == first.expected
    h = manifest_hash(split)
    assert h == first.hash and len(h) == 64
    again = verify(open_split("shen-helen", tree))
    assert again.ok and not again.created and again.hash == h
    # tamper: change one file's bytes (same name, same size class)
    victim = tree / "Test_data_Helen" / "final_Helen_blur" / "1629243_1_ker05_blur_k21.png"
    data = bytearray(victim.read_bytes())
    data[-20] ^= 0xFF
    victim.write_bytes(bytes(data))
    bad = verify(open_split("shen-helen", tree))
    assert not bad.ok and bad.changed == ["Test_data_Helen/final_Helen_blur/1629243_1_ker05_blur_k21.png"]
    assert manifest_hash(open_split("shen-helen", tree)) != h
    # rewrite accepts the new state
    assert verify(open_split("shen-helen", tree), rewrite=True).created
    assert verify(open_split("shen-helen", tree)).ok


def test_counts_against_release(tree, monkeypatch):
    monkeypatch.setattr(shen._Shen, "EXPECTED_IMAGES", 100)
    with pytest.raises(DataLayoutError, match="the release has 100"):
        verify(open_split("shen-helen", tree))
    res = verify(open_split("shen-helen", tree, allow_partial=True))
    assert not res.ok and any("100" in p for p in res.problems)


def test_escaping_entries_are_refused(tree):
    split = open_split("shen-helen", tree)
    path = verify(split).manifest
    man = json.loads(path.read_text())
    man["files"]["../outside.png"] = "0" * 64
    path.write_text(json.dumps(man))
    with pytest.raises(DataLayoutError, match="escapes the data root"):
        load_manifest(path, tree)
    with pytest.raises(DataLayoutError, match="escapes"):
        verify(open_split("shen-helen", tree))
    man["files"].pop("../outside.png")
    man["files"]["/etc/passwd"] = "0" * 64
    path.write_text(json.dumps(man))
    with pytest.raises(DataLayoutError, match="escapes"):
        manifest_hash(open_split("shen-helen", tree))


def test_read_only_root_uses_cache(tree, tmp_path_factory, monkeypatch):
    from faceblur_bench.data import manifest as man_mod

    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setattr(man_mod.os, "access", lambda path, mode: False)  # data root not writable
    res = verify(open_split("shen-helen", tree))
    assert res.created and str(res.manifest).startswith(str(cache / "faceblur_bench" / "manifests"))
    assert not (tree / ".faceblur_manifests").exists()
