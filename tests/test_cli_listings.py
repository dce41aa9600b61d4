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
