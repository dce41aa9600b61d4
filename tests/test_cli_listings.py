"""``faceblur-bench methods`` answers from static metadata (faceblur_bench/methods/catalog.py):
the committed parameter counts equal those of the built networks, every built-in method has
one, and listing builds no network."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from faceblur_bench.cli import app
from faceblur_bench.methods.catalog import PARAMETER_COUNTS, UNCOUNTED
from faceblur_bench.registry import methods as method_registry


def _builtin(name: str) -> bool:
    origin = method_registry.origin(name)
    return origin.startswith("faceblur_bench.") or origin.startswith("entry point baselines.")


@pytest.mark.parametrize("name", sorted(PARAMETER_COUNTS))
def test_static_parameter_count_matches_the_built_network(name):
    assert method_registry.get(name)().num_parameters() == PARAMETER_COUNTS[name]


def test_every_builtin_method_has_static_metadata():
    builtin = {n for n, _ in method_registry.items() if _builtin(n)}
    assert builtin and builtin == set(PARAMETER_COUNTS) | UNCOUNTED


def test_listing_methods_builds_no_network(monkeypatch):
    built = []
    init = torch.nn.Module.__init__

    def counting_init(self, *a, **k):
        built.append(type(self).__name__)
        init(self, *a, **k)

    monkeypatch.setattr(torch.nn.Module, "__init__", counting_init)
    r = CliRunner().invoke(app, ["methods", "--json"])
    assert r.exit_code == 0, r.output
    recs = {x["name"]: x for x in json.loads(r.output)}
    assert built == []
    for name, n in PARAMETER_COUNTS.items():
        assert recs[name]["params_M"] == round(n / 1e6, 3)
    assert recs["folder"]["params_M"] is None


PROBE = """
import atexit, json, sys
atexit.register(lambda: sys.stderr.write("LOADED=" + json.dumps(
    [m for m in ("torch", "torchvision", "facenet_pytorch", "dlib", "lpips", "insightface")
     if m in sys.modules]) + "\\n"))
sys.argv = ["faceblur-bench", *{argv!r}]
from faceblur_bench.cli import main
main()
"""


@pytest.mark.parametrize("argv", [["run", "--method", "wienr"], ["--help"], ["run", "--help"]])
def test_typo_and_help_import_no_network_package(argv):
    """A mistyped method is refused with "did you mean" and exit 2, and --help answers, without
    importing torch or any network package (checked in a fresh interpreter)."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True,
                       text=True, timeout=600, check=False)
    loaded = json.loads(next(x for x in r.stderr.splitlines() if x.startswith("LOADED="))[7:])
    assert loaded == [], loaded
    if argv[0] == "run" and argv[1] == "--method":
        assert r.returncode == 2 and "did you mean 'wiener'" in r.stderr, r.stderr
    else:
        assert r.returncode == 0 and "Usage" in r.stdout


def test_static_names_refuse_exactly_what_the_loaded_registry_refuses():
    from faceblur_bench.errors import UnknownNameError
    from faceblur_bench.registry import Registry

    fresh = Registry("method", "faceblur_bench.methods",
                     builtin_modules=("faceblur_bench.methods.builtin",),
                     builtin_names=lambda: sorted(set(PARAMETER_COUNTS) | UNCOUNTED))
    for name in method_registry.names():
        fresh.check_name(name)  # every registered name passes
    with pytest.raises(UnknownNameError) as ei:
        fresh.check_name("wienr")
    with pytest.raises(UnknownNameError) as loaded:
        method_registry.get("wienr")
    assert str(ei.value) == str(loaded.value)
