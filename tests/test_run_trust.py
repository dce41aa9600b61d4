"""Issue 12: what `run` prints and writes can be trusted — only --out is written (12.21), the
printed table shows the metrics that have values and names the others once (12.13)."""

from __future__ import annotations

from cli_helpers import main_inprocess as _cli




def test_run_writes_only_under_out_and_prints_columns_with_values(tmp_path, capsys, monkeypatch,
                                                                   demo_data_root):
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    out = tmp_path / "res"
    # dvgg's weights are not on this machine (the test caches are empty): it has no value
    code, stdout, err = _cli(["run", "-m", "blurred", "--limit", "4", "--metrics", "psnr,dvgg",
                              "--out", str(out)], capsys)
    assert code == 0, err
    assert list(cwd.iterdir()) == []  # nothing in the working directory (no ./leaderboard.md)
    assert (out / "leaderboard.md").is_file() and (out / "demo.md").is_file()
    header = stdout.splitlines()[0]
    assert "PSNR ↑" in header and "d\\_VGG" not in header and "d_VGG" not in header
    listed = [ln for ln in stdout.splitlines() if ln.startswith("- d_VGG (dvgg): n/a")]
    # the reason carries the fix: VGGFace16 is a manual download (Google Drive), said so
    assert len(listed) == 1 and "manual download" in listed[0] and "--weights vggface16=PATH" in listed[0]
    assert f"the full table is in {out / 'demo.md'}" in stdout
    # the file keeps the full table, d_VGG column included
    assert "d\\_VGG ↓" in (out / "demo.md").read_text().splitlines()[0]
    # an explicit --leaderboard path is honoured
    lb = tmp_path / "lb" / "board.md"
    code, _, err = _cli(["run", "-m", "blurred", "--limit", "4", "--metrics", "psnr,dvgg",
                         "--out", str(out), "--leaderboard", str(lb)], capsys)
    assert code == 0, err
    assert lb.is_file() and "blurred" in lb.read_text()
    # the resumed run says what it reused and from when (12.1)
    import json

    (summary,) = [json.loads(p.read_text()) for p in out.glob("runs/demo/blurred/*/summary.json")]
    assert (f"blurred on demo: resumed — 4 stored row(s) reused (computed "
            f"{summary['provenance']['date']}); 0 computed now; nothing computed: summary.json "
            "left as it was") in err
    assert list(cwd.iterdir()) == []
