"""Reports from stored results: paper tables, leaderboard, figures, plots and the CI gate.

Library entry points (the CLI in ``faceblur_bench/cli/report.py`` only wraps these):

- :func:`faceblur_bench.report.tables.summary_table` — method × metric table of run summaries;
- :func:`faceblur_bench.report.leaderboard.write_leaderboard` — ``leaderboard.md``;
- :func:`faceblur_bench.report.comparison_page.write_report` — the HTML comparison page of a
  split (``faceblur-bench report``);
- :mod:`faceblur_bench.report.store` — readers of ``summary.json`` (typed
  :class:`faceblur_bench.results.RunSummary`) / ``rows.jsonl``;
- :mod:`faceblur_bench.report.published` — the papers' numbers (``results/published/*.csv``).
"""

from .leaderboard import build_leaderboard, write_leaderboard
from .store import load_run, load_runs, load_summaries, load_summary, read_rows, rows_frame
from .tables import summary_table

__all__ = ["build_leaderboard", "load_run", "load_runs", "load_summaries", "load_summary",
           "read_rows", "rows_frame", "summary_table", "write_leaderboard"]
