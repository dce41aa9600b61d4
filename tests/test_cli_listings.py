"""The instant CLI (issue 29): listings, ``--help`` and name typos answer from static metadata.

- The static catalogs (``faceblur_bench/methods/catalog.py``, ``faceblur_bench/metrics/catalog.py``)
  equal what the built code reports: every built-in method is built and counted, every built-in
  metric class read.
- The listing and typo commands, run in a real interpreter, import neither torch nor any other
  network stack, and print what the loaded registry would (the listing as it was before).
- Names registered in code in the user's process are listed and suggested like built-ins.
"""

from __future__ import annotations

import json

import pytest
from cli_helpers import probe

from faceblur_bench.methods import catalog as method_catalog
from faceblur_bench.methods import trainer_catalog
from faceblur_bench.metrics import catalog as metric_catalog
from faceblur_bench.registry import methods as method_registry
from faceblur_bench.registry import metrics as metric_registry
from faceblur_bench.registry import trainers as trainer_registry

def _builtin(name: str, registry) -> bool:
    origin = registry.origin(name)
    return origin.startswith("faceblur_bench.") or origin.startswith("entry point baselines.")


def _built(registry, catalog) -> dict[str, dict]:
    """``catalog.record`` of every built-in entry of ``registry``, from its loaded class."""
    return {n: catalog.record(n, cls, registry.origin(n)) for n, cls in registry.items()
            if _builtin(n, registry)}


@pytest.fixture(scope="module")
def built_methods() -> dict[str, dict]:
    """Every built-in method's record from its class, networks built (the slow way)."""
    return _built(method_registry, method_catalog)


# -- (b) the static metadata equals what the built code reports ---------------------------------
@pytest.mark.parametrize("kind", ["method", "metric", "trainer"])
def test_static_catalog_equals_the_built_code(kind, request):
    registry, catalog = {"method": (method_registry, method_catalog),
                         "metric": (metric_registry, metric_catalog),
                         "trainer": (trainer_registry, trainer_catalog)}[kind]
    built = request.getfixturevalue("built_methods") if kind == "method" else _built(registry, catalog)
    assert set(built) == set(catalog.CATALOG)
    for name, rec in built.items():
        assert rec == catalog.CATALOG[name], (f"{catalog.__name__}.CATALOG[{name!r}] is stale: run "
                                              f"`python tests/test_cli_listings.py` (new entry {rec!r})")


def test_parameter_counts_are_those_of_the_built_networks(built_methods):
    dfpg = method_registry.get("dfpg")()
    dfpg.init_untrained("cpu")  # the paper-size network, built (only its size is read here)
    assert built_methods["dfpg"]["params"] == sum(p.numel() for p in dfpg.net.parameters()) > 10**7
    assert built_methods["wiener"]["params"] == 0
    assert built_methods["folder"]["params"] is None  # needs --option dir=PATH to be built


def test_demo_noise_is_mspl_training_noise():
    from faceblur_bench.data.make_split_args import NOISE_PRESETS
    from faceblur_bench.data.demo import NOISE_SIGMA

    assert NOISE_SIGMA == NOISE_PRESETS["mspl-train"]


# -- (a) listings, help and typos in a fresh interpreter: no torch, the same answers ------------
def test_listings_import_no_network_stack_and_match_the_loaded_registry(built_methods):
    res = {" ".join(r["argv"]): r for r in probe([
        ["methods", "--json"], ["metrics", "--json"], ["methods", "wiener", "--json"],
        ["methods", "yun", "--json"], ["methods"], ["metrics"], ["splits", "--json"],
        ["weights", "--no-hash", "--json"], ["train", "presets", "--json"], ["data", "status", "--json"]])}
    for cmd, r in res.items():
        assert r["code"] == 0, (cmd, r["err"])
        assert r["heavy"] == [], (cmd, r["heavy"])
    listed = {m["name"]: m for m in json.loads(res["methods --json"]["out"])}
    assert set(listed) == set(method_registry.names())
    for name, cls in method_registry.items():  # the listing as computed from the built code
        n = built_methods[name]["params"]
        assert listed[name] == {"name": name, "params_M": None if n is None else round(n / 1e6, 3),
                                "scale": cls.scale, "description": cls.description,
                                "origin": method_registry.origin(name)}
    metrics = {m["name"]: m for m in json.loads(res["metrics --json"]["out"])}
    assert list(metrics) == metric_registry.names()
    for name, cls in metric_registry.items():
        assert metrics[name] == {"name": name, "better": cls.arrow(), "family": cls.family,
                                 "kind": cls.kind, "weights": ", ".join(cls.weights) or None,
                                 "protocol": cls.protocol}
    for name in ("wiener", "yun"):
        [shown] = json.loads(res[f"methods {name} --json"]["out"])
        specs = method_registry.get(name).option_specs
        assert [o["option"] for o in shown["options"]] == sorted(specs)
        for o in shown["options"]:
            spec = specs[o["option"]]
            assert (o["type"], o["meaning"]) == (spec.type_name(), spec.help)
            assert o["default"] == ("–" if spec.default is None else spec.default)
    assert "dfpg" in res["methods"]["out"] and "44.661" in res["methods"]["out"]
    assert "lpips-alex" in res["metrics"]["out"]
    splits = {s["name"] for s in json.loads(res["splits --json"]["out"])}
    assert {"demo", "mspl-center"} <= splits
    weights = {w["name"]: w for w in json.loads(res["weights --no-hash --json"]["out"])}
    users = {m for m, cls in metric_registry.items() if "vggface16" in cls.weights}
    assert users and set(weights["vggface16"]["used_by"].split(", ")) >= users
    presets = json.loads(res["train presets --json"]["out"])
    assert presets == [{"trainer": t, "preset": p, "default": p == cls.default_preset,
                        "description": cls.preset_descriptions.get(p, ""), "overrides": over}
                       for t, cls in trainer_registry.items() for p, over in cls.presets.items()]


def test_listing_stored_runs_imports_no_network_stack(tmp_path, demo_data_root):
    from faceblur_bench import engine
    from faceblur_bench.engine.stored import list_runs

    engine.evaluate(engine.RunConfig(method="blurred", split="demo", metrics=["psnr"], limit=2,
                                     data_root=demo_data_root, results_dir=tmp_path, device="cpu"))
    [r] = probe([["runs", "--results", str(tmp_path), "--json"]])
    assert r["code"] == 0 and r["heavy"] == [], (r["err"], r["heavy"])
    listed = json.loads(r["out"])
    assert len(listed) == 1 and listed[0]["method"] == "blurred" and listed[0]["ok"] == 2
    assert listed == json.loads(json.dumps([x.to_dict() for x in list_runs(tmp_path)], default=str))


def test_help_and_typos_answer_without_torch():
    res = probe([["--help"], ["run", "--help"], ["train", "--help"], ["train", "cfmd", "--help"],
                 ["run", "--method", "sapgan"], ["run", "-m", "blurred", "--metrics", "psnr,lpisp-alex"],
                 ["run", "-m", "blurred", "--split", "demoo"], ["run", "-m", "blurred", "--split", "mspl-center/ffqh"],
                 ["run", "-m", "blurred", "--metrix", "psnr"], ["methods", "sapgan"],
                 ["score", "--restored", ".", "--reference", ".", "--metrics", "ssimm"],
                 ["weights", "fetch", "pyiqa-nqie"], ["run", "-m", "wiener", "-o", "balanse=0.1"],
                 ["run", "-m", "wiener", "-m", "blurred", "-o", "wienr.balance=0.1"],
                 ["train", "presets", "shne"]])
    for r in res:
        assert r["heavy"] == [], (r["argv"], r["heavy"])
    helps, typos = res[:4], res[4:]
    assert all(r["code"] == 0 for r in helps), [r["err"] for r in helps]
    assert "--metrics" in helps[1]["out"] and "dfpg" in helps[2]["out"]
    assert "--frame-order" in helps[3]["out"] and "no-fmr" in helps[3]["out"]
    expected = ["did you mean 'sappgan'", "did you mean 'lpips-alex'", "did you mean 'demo'",
                "did you mean 'ffhq'", "--metrics", "did you mean 'sappgan'", "did you mean 'ssim'",
                "did you mean 'pyiqa-niqe'", "did you mean 'balance'", "did you mean 'wiener'",
                "did you mean 'shen'"]
    assert len(typos) == len(expected)
    for r, want in zip(typos, expected):
        assert r["code"] == 2 and want in r["err"], (r["argv"], r["err"])


def test_every_help_page_answers_without_torch():
    """``--help`` of every command and sub-command (trainers included), in one interpreter."""
    import typer

    from faceblur_bench.cli import app

    def walk(cmd, path: list[str]) -> list[list[str]]:  # typer's own click: groups by interface
        out = [path + ["--help"]]
        if callable(getattr(cmd, "list_commands", None)):
            ctx = cmd.context_class(cmd)
            for name in cmd.list_commands(ctx):
                out += walk(cmd.get_command(ctx, name), path + [name])
        return out

    pages = walk(typer.main.get_command(app), [])
    assert ["train", "dfpg", "--help"] in pages and ["runs", "prune", "--help"] in pages
    for r in probe(pages):
        assert r["code"] == 0 and r["out"] and r["heavy"] == [], (r["argv"], r["err"], r["heavy"])


def test_checkpoint_for_a_method_that_takes_none_is_refused_before_torch(tmp_path):
    """``--checkpoint`` was ignored by wiener/blurred, yet its hash entered the run identity:
    refused from the static records (exit 2, no torch), naming the methods that take one."""
    out = str(tmp_path / "res")
    wiener, mixed, nproc, runtime, dfpg = probe([
        ["run", "-m", "wiener", "--checkpoint", "x.pth", "--out", out],
        ["run", "-m", "dfpg", "-m", "blurred", "--checkpoint", "x.pth", "--out", out],
        ["run", "-m", "blurred", "--nproc", "2", "--checkpoint", "x.pth", "--out", out],
        ["runtime", "-m", "wiener", "--checkpoint", "x.pth"],
        ["run", "-m", "dfpg", "--checkpoint", str(tmp_path / "nope.pth"), "--out", out]])
    for r in (wiener, mixed, nproc, runtime):
        assert r["code"] == 2 and r["heavy"] == [] and "Traceback" not in r["err"], (r["argv"], r["err"])
        assert "methods that take a checkpoint: cfmd-gan, dfpg," in " ".join(r["err"].split()), r["err"]
    assert "wiener takes no checkpoint (it would be ignored)" in wiener["err"]
    assert "drop --checkpoint;" in wiener["err"]
    assert "blurred takes no checkpoint" in mixed["err"] and "dfpg" not in mixed["err"].split("fix:")[0]
    assert "run blurred in a command of its own" in mixed["err"]
    assert "blurred takes no checkpoint" in nproc["err"]  # refused before any rank starts
    assert dfpg["code"] == 2 and "takes no checkpoint" not in dfpg["err"]  # dfpg reads it: its own error
    assert not (tmp_path / "res").exists()
    recs = method_catalog.CATALOG
    assert [n for n in recs if not recs[n]["checkpoint"]] == ["blurred", "folder", "richardson-lucy", "wiener"]


# -- in-process registrations (a notebook, a wrapper script) are names like any other -----------
REGISTER_IN_CODE = """
from faceblur_bench.methods.base import Method
from faceblur_bench.registry import methods

@methods.register("slow-identity")
class Slow(Method):
    description = "registered in code"

    def restore(self, blurred, meta=None):
        return blurred.clone()
"""


def test_methods_registered_in_code_are_listed_and_suggested():
    listed, shown, typo, known, ck = probe(
        [["methods", "--json"], ["methods", "slow-identity", "--json"], ["run", "--method", "slow-identty"],
         ["run", "--method", "sapgan"], ["run", "--method", "slow-identity", "--checkpoint", "x.pth"]],
        preamble=REGISTER_IN_CODE)
    rec = {m["name"]: m for m in json.loads(listed["out"])}["slow-identity"]
    assert rec == {"name": "slow-identity", "params_M": None, "scale": 1, "description": "registered in code",
                   "origin": "__main__"}
    assert json.loads(shown["out"])[0]["options"] is None
    assert typo["code"] == 2 and "did you mean 'slow-identity'" in typo["err"]
    # it does not override Method.load: a checkpoint would be ignored, and is refused
    assert ck["code"] == 2 and "slow-identity takes no checkpoint" in ck["err"], ck["err"]
    assert known["code"] == 2 and "did you mean 'sappgan'" in known["err"]


# -- regeneration: `python tests/test_cli_listings.py` rewrites the three catalogs from the code --
def _literal(records: dict[str, dict]) -> str:
    """``CATALOG`` as Python source, one entry per name (lines within the 100-column limit)."""
    import pprint

    lines = ["CATALOG: dict[str, dict[str, Any]] = {"]
    for name, rec in records.items():
        lines.append(f"    {name!r}: {{")
        for key, value in rec.items():
            prefix = f"        {key!r}: "
            body = pprint.pformat(value, width=99 - len(prefix), sort_dicts=False, underscore_numbers=True)
            lines.append(prefix + body.replace("\n", "\n" + " " * len(prefix)) + ",")
        lines.append("    },")
    return "\n".join(lines + ["}"]) + "\n"


def regenerate() -> None:
    """Replace the ``CATALOG = {...}`` literal of each catalog module with the records the loaded
    code gives (pyiqa metrics stay computed from their model list, after the literal)."""
    from pathlib import Path

    for registry, catalog in ((method_registry, method_catalog), (metric_registry, metric_catalog),
                              (trainer_registry, trainer_catalog)):
        records = {n: r for n, r in sorted(_built(registry, catalog).items())
                   if r.get("origin") != "faceblur_bench.metrics.pyiqa_nr"}
        path = Path(catalog.__file__)
        text = path.read_text()
        start = text.index("CATALOG: dict[str, dict[str, Any]] = {\n")
        end = text.index("\n}\n", start) + 3
        path.write_text(text[:start] + _literal(records) + text[end:])
        print(f"wrote {path} ({len(records)} entries)")


if __name__ == "__main__":
    regenerate()
