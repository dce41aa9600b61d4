"""LaTeX output compiles with pdflatex: every paper layout and the plain table, including notes
with daggers, option names (``--limit``), comparison signs and failure reasons.

Needs ``pdflatex`` with booktabs (Debian: texlive-latex-base texlive-latex-recommended); the
compile test is skipped, saying so, where it is absent. The escaping itself is tested always.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from test_report_helpers import metric_entry, row, write_run

from faceblur_bench.report import store
from faceblur_bench.report.layouts import LAYOUTS, render_layout
from faceblur_bench.report.render import latex_escape
from faceblur_bench.report.tables import summary_table


def test_escape_plain_text_specials():
    assert latex_escape("--limit") == "-{}-limit"
    assert latex_escape("a > b < c | d") == r"a \textgreater{} b \textless{} c \textbar{} d"
    assert latex_escape("x †") == r"x \textdagger{}"
    assert latex_escape("50% of #1 & $2_a") == r"50\% of \#1 \& \$2\_a"
    assert latex_escape("ok – fine") == "ok -- fine"  # an en dash stays an en dash


def _runs(tmp_path):
    res = tmp_path / "res"
    rows = [row(str(i), {"psnr": 20.0 + i, "ssim": 0.5}, kernel_size=13, n_frames=5) for i in range(3)]
    write_run(res, "wiener", "demo", {"psnr": 25.0, "ssim": 0.8}, rows=rows)
    # a partial (--limit) run with failures, an unavailable metric and a reason holding > and _
    d = write_run(res, "my_method", "demo", {
        "psnr": 24.0, "lpips": metric_entry("lpips", None, status="unavailable",
                                            reason="alexnet_owt.pth not found (size > 0 required)")},
        rows=rows, failed=1, complete=False, run_key="k2")
    import json

    s = json.loads((d / "summary.json").read_text())
    s["limit"], s["partial"] = 3, True
    (d / "summary.json").write_text(json.dumps(s))
    for split in ("mspl-center/celeba", "shen-helen", "shen-celeba", "300vw", "celebahq-sr8"):
        write_run(res, "wiener", split, {"psnr": 25.0, "ssim": 0.8}, rows=rows)
    return store.load_summaries(res)


def _document(bodies: list[str]) -> str:
    return ("\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage[utf8]{inputenc}\n"
            "\\usepackage{booktabs}\n\\begin{document}\n"
            + "\n\\clearpage\n".join(bodies) + "\n\\end{document}\n")


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex not installed (apt-get install texlive-latex-base "
                           "texlive-latex-recommended); LaTeX escaping is still tested")
def test_every_layout_and_the_plain_table_compile(tmp_path):
    summaries = _runs(tmp_path)
    bodies = [f"% layout {name}\n" + render_layout(ly, summaries, fmt="latex")
              for name, ly in LAYOUTS.items()]
    demo = [s for s in summaries if s["split"] == "demo"]
    plain = summary_table(demo, fmt="latex", title="demo", show_std=True)
    assert "\\textdagger{}" in plain and "-{}-limit" in plain and "\\textgreater{}" in plain
    bodies.append(plain)
    tex = tmp_path / "tables.tex"
    tex.write_text(_document(bodies), encoding="utf-8")
    r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name],
                       check=False, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    log = (tmp_path / "tables.log").read_text(errors="replace") if (tmp_path / "tables.log").exists() else ""
    errors = [ln for ln in log.splitlines() if ln.startswith("!") or "not set up for use" in ln]
    assert r.returncode == 0 and not errors, "\n".join(errors) + r.stdout[-3000:]
    assert (tmp_path / "tables.pdf").stat().st_size > 1000
    assert "Missing character" not in log  # no glyph silently dropped
