"""Statistics a reviewer trusts: cluster-bootstrap intervals, the paired sign-flip test, Holm,
``compare`` and the significance-aware marks, on synthetic clustered values and on real runs of
the demo split (72 blurred images of 9 sharp faces)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import main_inprocess
from test_report_helpers import row, write_run

from faceblur_bench import engine, stats
from faceblur_bench.report import store, tables


def _clustered(n_units: int, per_unit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Values with a strong per-unit effect (sd 2) and small within-unit noise (sd 0.3)."""
    rng = np.random.default_rng(seed)
    effect = rng.normal(25.0, 2.0, n_units)
    labels = np.repeat(np.arange(n_units), per_unit)
    return effect[labels] + rng.normal(0, 0.3, labels.size), labels


# -- the statistics module ------------------------------------------------------------------------------
def test_interval_contains_mean_is_deterministic_and_shrinks_as_one_over_sqrt_units():
    widths = []
    for k in (20, 80, 320):
        v, lab = _clustered(k, 8, seed=k)
        lo, hi = stats.bootstrap_ci(v, lab)
        assert lo < v.mean() < hi
        assert stats.bootstrap_ci(v, lab) == (lo, hi)  # same seed, same interval
        assert stats.bootstrap_ci(v, lab, seed=1) != (lo, hi)
        widths.append(hi - lo)
        # the width is 2 x 1.96 standard errors of the mean over k units: s_units / sqrt(k)
        s_units = np.std([v[lab == u].mean() for u in range(k)], ddof=1)
        assert (hi - lo) / (2 * 1.96 * s_units / np.sqrt(k)) == pytest.approx(1.0, abs=0.2)
    assert widths[0] > widths[1] > widths[2]


def test_single_unit_has_no_interval_and_non_finite_values_are_left_out():
    assert stats.bootstrap_ci([1.0, 2.0, 3.0], [0, 0, 0]) is None
    lo, hi = stats.bootstrap_ci([1.0, np.inf, 3.0, np.nan, 2.0], [0, 0, 1, 1, 2])
    assert 1.0 <= lo <= hi <= 3.0


def test_sign_flip_is_exact_and_identical_runs_give_p_one():
    d = np.array([1.0, 0.5, 2.0, 1.5, 0.7])  # five units, all positive
    # exact: only the all-plus and all-minus patterns are as extreme: 2 / 2^5
    assert stats.sign_flip_p(d, np.arange(5)) == pytest.approx(2 / 32)
    assert stats.sign_flip_p(np.zeros(10), np.arange(10)) == 1.0
    # beyond EXACT_UNITS units: random patterns, p = (1 + hits) / (1 + draws), reproducible
    v, lab = _clustered(40, 3, seed=2)
    p = stats.sign_flip_p(v - 25.0, lab)
    assert p == stats.sign_flip_p(v - 25.0, lab) and 1 / (1 + stats.N_PERMUTATIONS) <= p <= 1


def test_holm_adjustment():
    adj = stats.holm([0.01, 0.04, 0.03, 0.5])
    # sorted 0.01, 0.03, 0.04, 0.5 -> x4, x3, x2, x1, made monotone
    assert adj == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert stats.holm([0.3, 0.2]) == pytest.approx([0.4, 0.4])  # 0.3 x 1 < 0.2 x 2: monotone
    assert stats.holm([0.9, 0.8]) == [1.0, 1.0]


def test_units_follow_the_layout_metadata():
    assert stats.unit_of({"face": "f1", "kernel_id": 3}, "x") == ("ground-truth image", "f1")
    assert stats.unit_of({"subset": "ffhq", "image": "00012"}, "x") == ("ground-truth image", "ffhq/00012")
    assert stats.unit_of({"video": "114", "n_frames": 7}, "x") == ("video", "114")
    assert stats.unit_of({}, "img3") == ("image", "img3")


# -- real runs on the demo split ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory, demo_data_root):
    """wiener (images saved), richardson-lucy, and ``folder`` replaying wiener's saved outputs
    (an identical copy of its restorations) on the demo split, PSNR only (fast)."""
    out = tmp_path_factory.mktemp("stats") / "results"
    cfg = dict(split="demo", data_root=demo_data_root, metrics=["psnr"], results_dir=out,
               device="cpu")
    wiener = engine.evaluate(engine.RunConfig(method="wiener", save_images=True, **cfg))
    engine.evaluate(engine.RunConfig(method="richardson-lucy", **cfg))
    images = Path(wiener["run_dir"]) / "images"
    engine.evaluate(engine.RunConfig(method="folder", method_options={"dir": str(images),
                                                                      "pattern": "{id}.png"}, **cfg))
    return out


def test_summary_stores_interval_and_units(demo_runs):
    (run,) = [r for r in store.load_runs(demo_runs, split="demo") if r.method == "wiener"]
    psnr = run.metrics["psnr"]
    assert psnr.n_units == 9 and psnr.extra["ci"] == {"unit": "ground-truth image",
                                                     "resamples": stats.N_RESAMPLES, "seed": stats.SEED}
    lo, hi = psnr.ci95
    assert lo < psnr.value < hi


def test_cluster_and_naive_bootstrap_differ_on_reused_faces(demo_runs):
    (run,) = [r for r in store.load_runs(demo_runs, split="demo") if r.method == "wiener"]
    rows = store.read_rows(run.run_dir)
    v = np.array([r["metrics"]["psnr"] for r in rows])
    cl = stats.clusters_of(rows)
    assert (cl.unit, cl.n_units, len(v)) == ("ground-truth image", 9, 72)
    lo_c, hi_c = stats.bootstrap_ci(v, cl.labels)
    lo_n, hi_n = stats.bootstrap_ci(v, np.arange(len(v)))  # naive: every blurred image a unit
    # 8 blurred versions of each face are not 8 independent measurements: the honest interval
    # is much wider than the naive one
    assert (hi_c - lo_c) > 1.3 * (hi_n - lo_n)


def test_compare_wiener_vs_richardson_lucy_is_significant(demo_runs, capsys):
    code, out, err = main_inprocess(["compare", "--split", "demo", "--results", str(demo_runs),
                                     "--metric", "psnr", "wiener", "richardson-lucy", "--json"], capsys)
    assert code == 0, err
    res = json.loads(out)
    assert (res["n_images"], res["n_units"]) == (72, 9)
    assert res["p_value"] < 0.05
    lo, hi = res["ci95"]
    assert lo <= res["difference"] <= hi and (hi < 0 or lo > 0)  # the interval excludes 0
    code, text, _ = main_inprocess(["compare", "--split", "demo", "--results", str(demo_runs),
                                    "--metric", "psnr", "wiener", "richardson-lucy"], capsys)
    assert code == 0 and "significantly better" in text and "sign-flip" in text


def test_compare_with_an_identical_copy_is_not_significant(demo_runs, capsys):
    code, out, err = main_inprocess(["compare", "--split", "demo", "--results", str(demo_runs),
                                     "--metric", "psnr", "wiener", "folder", "--json"], capsys)
    assert code == 0, err
    res = json.loads(out)
    assert res["difference"] == 0.0 and res["p_value"] == 1.0 and res["n_images"] == 72
    assert res["ci95"] == [0.0, 0.0]


def test_compare_refuses_unknown_names_and_set_metrics(demo_runs, capsys):
    code, _, err = main_inprocess(["compare", "--split", "demo", "--results", str(demo_runs),
                                   "--metric", "psnr", "wiener", "richardson-lucyy"], capsys)
    assert code == 2 and "did you mean 'richardson-lucy'" in err


def test_table_ci_in_markdown_latex_csv_and_protocol_line(demo_runs, capsys):
    code, md, err = main_inprocess(["table", "--split", "demo", "--results", str(demo_runs), "--ci"], capsys)
    assert code == 0, err
    (run,) = [r for r in store.load_runs(demo_runs, split="demo") if r.method == "wiener"]
    lo, hi = run.metrics["psnr"].ci95
    assert f"\\[{lo:.2f}, {hi:.2f}\\]" in md
    assert "95% CI: percentile cluster bootstrap over 9 ground-truth images, 2000 resamples, seed 0" in md
    code, tex, _ = main_inprocess(["table", "--split", "demo", "--results", str(demo_runs), "--ci",
                                   "-f", "latex"], capsys)
    assert code == 0 and f"[{lo:.2f}, {hi:.2f}]" in tex
    code, csv, _ = main_inprocess(["table", "--split", "demo", "--results", str(demo_runs), "--ci",
                                   "-f", "csv"], capsys)
    head, *body = csv.splitlines()
    assert "PSNR_ci_lo" in head.split(",") and "PSNR_ci_hi" in head.split(",")
    wiener = next(b for b in body if b.startswith("wiener,")).split(",")
    assert float(wiener[head.split(",").index("PSNR_ci_lo")]) == lo


def test_marks_tie_when_not_significant_and_separate_when_significant(demo_runs):
    runs = store.load_summaries(demo_runs, split="demo")
    table = tables.build_summary_table(runs, ["psnr"])
    from faceblur_bench.report.render import marks

    m = marks(table)
    label = {i: r.label for i, r in enumerate(table.rows)}
    best = {label[i] for (i, col), mk in m.items() if col == "psnr" and mk == "best"}
    second = {label[i] for (i, col), mk in m.items() if col == "psnr" and mk == "second"}
    # richardson-lucy is significantly better than wiener and its identical copy (which tie)
    assert best == {"richardson-lucy"} and second == {"folder", "wiener"}
    assert "Every best mark is significant" in " ".join(table.notes)


def _tie_runs(results: Path, gap: float) -> None:
    """Two methods on 4 faces x 2 kernels; B = A + gap on one face only (not significant with 4
    units: the smallest exact p is 2/16)."""
    a = [row(f"f{f}_k{k}", {"psnr": 20.0 + f + k}, face=f"f{f}") for f in range(4) for k in range(2)]
    b = [row(r["id"], {"psnr": r["metrics"]["psnr"] + (gap if r["meta"]["face"] == "f0" else 0.0)},
             face=r["meta"]["face"]) for r in a]
    for name, rows in (("alpha", a), ("beta", b)):
        mean = sum(r["metrics"]["psnr"] for r in rows) / len(rows)
        write_run(results, name, "demo", {"psnr": mean}, rows=rows, total=len(rows))


def test_marks_drop_to_ties_when_the_difference_is_noise(tmp_path, capsys):
    _tie_runs(tmp_path, gap=3.0)
    code, md, err = main_inprocess(["table", "--split", "demo", "--results", str(tmp_path),
                                    "--metrics", "psnr"], capsys)
    assert code == 0, err
    assert "| alpha | **" in md and "| beta | **" in md
    assert "| alpha | <u>" not in md and "| beta | <u>" not in md
    assert "Not significantly different" in md
    # by value alone (the old rule), beta is best and alpha second
    code, md, _ = main_inprocess(["table", "--split", "demo", "--results", str(tmp_path),
                                  "--metrics", "psnr", "--marks", "value"], capsys)
    assert "| beta | **" in md and "| alpha | <u>" in md
    code, _, err = main_inprocess(["table", "--split", "demo", "--results", str(tmp_path),
                                   "--marks", "signif"], capsys)
    assert code == 2 and "did you mean 'significance'" in err


def test_check_tolerance_auto_flags_a_significant_small_drop(tmp_path, capsys):
    base = [row(f"f{f}_k{k}", {"psnr": 25.0 + 0.5 * f + 0.1 * k}, face=f"f{f}")
            for f in range(12) for k in range(3)]
    # every face 0.02 dB worse: within the default 0.1% tolerance, but systematic
    cur = [row(r["id"], {"psnr": r["metrics"]["psnr"] - 0.02 - 0.001 * (hash(r["id"]) % 3)},
               face=r["meta"]["face"]) for r in base]
    for where, rows in (("base", base), ("cur", cur)):
        mean = sum(r["metrics"]["psnr"] for r in rows) / len(rows)
        write_run(tmp_path / where, "wiener", "demo", {"psnr": mean}, rows=rows, total=len(rows))
    args = ["check", "--baseline", str(tmp_path / "base"), "--current", str(tmp_path / "cur")]
    code, out, _ = main_inprocess(args, capsys)
    assert code == 0, out  # the fixed tolerance alone passes it
    code, out, _ = main_inprocess([*args, "--tolerance", "auto"], capsys)
    assert code == 1 and "significantly worse" in out and "12 ground-truth images" in out
    # the same rows as the baseline: nothing significant
    shutil.rmtree(tmp_path / "cur")
    shutil.copytree(tmp_path / "base", tmp_path / "cur")
    code, out, _ = main_inprocess([*args, "--tolerance", "auto"], capsys)
    assert code == 0 and "0 significant" in out


def test_summary_ci95_is_type_checked():
    from faceblur_bench.results import MetricEntry, SummaryFormatError

    e = MetricEntry.parse({"value": 1.0, "ci95": [0.5, 1.5], "n_units": 9}, "s")
    assert e.ci95 == [0.5, 1.5] and e.n_units == 9 and e.to_dict()["ci95"] == [0.5, 1.5]
    for bad in ([1.5, 0.5], [1.0], ["a", "b"], [True, 2]):
        with pytest.raises(SummaryFormatError, match="ci95"):
            MetricEntry.parse({"value": 1.0, "ci95": bad}, "s")
