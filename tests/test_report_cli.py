"""CLI: table (layouts, formats, errors), leaderboard."""

from __future__ import annotations

from cli_helpers import main_inprocess
from test_report_helpers import row, write_run


def test_table_layout_md_csv_latex(tmp_path, capsys):
    write_run(tmp_path, "shen", "shen-helen", {"psnr": 25.0, "ssim": 0.8},
              rows=[row("a", {"psnr": 25.0, "ssim": 0.8}, kernel_size=13)])
    code, out, _ = main_inprocess(["table", "--split", "shen-helen", "--layout", "shen-t9",
                         "--results", str(tmp_path)], capsys)
    assert code == 0
    assert "| shen | 25.00 | 0.8000 | – (" in out
    assert "| Ours | **27.58** | **0.905** |" in out
    code, out, _ = main_inprocess(["table", "--split", "shen-helen", "--layout", "shen-t9", "-f", "csv",
                         "--results", str(tmp_path)], capsys)
    lines = out.splitlines()
    assert lines[0].startswith("Method,13×13/PSNR,13×13/SSIM,15×15/PSNR")
    assert lines[-1].startswith("shen,25.0,0.8,,")
    code, out, _ = main_inprocess(["table", "--layout", "dfpg-t3", "-f", "latex",
                         "--results", str(tmp_path)], capsys)
    assert code == 0 and "DFPG-A (ours) & \\underline{96.41} & \\textbf{89.87}" in out
    # the split alone picks the split's default layout
    code, out, _ = main_inprocess(["table", "--split", "shen-helen", "--results", str(tmp_path)], capsys)
    assert "Table 9" in out


def test_table_plain_and_methods_filter(tmp_path, capsys):
    write_run(tmp_path, "a", "demo", {"psnr": 25.0})
    write_run(tmp_path, "b", "demo", {"psnr": 26.0})
    code, out, _ = main_inprocess(["table", "--split", "demo", "--results", str(tmp_path), "-m", "b"],
                        capsys)
    assert code == 0 and "| b | 26.00 |" in out and "| a |" not in out


def test_table_errors_exit_2(tmp_path, capsys):
    code, _, err = main_inprocess(["table", "--layout", "sappgan-t9", "--results", str(tmp_path)], capsys)
    assert code == 2 and "unknown layout 'sappgan-t9'" in err
    code, _, err = main_inprocess(["table", "--split", "demo", "--results", str(tmp_path)], capsys)
    assert code == 2 and "no runs of split 'demo'" in err
    code, _, err = main_inprocess(["table", "--layout", "sappgan-t1", "--split", "300vw"], capsys)
    assert code == 2 and "does not cover split '300vw'" in err
    code, _, err = main_inprocess(["table", "--split", "demo", "-f", "html"], capsys)
    assert code == 2 and "unknown --format 'html'" in err


def test_leaderboard_command(tmp_path, capsys):
    write_run(tmp_path / "res", "a", "shen-celeba", {"psnr": 25.0})
    out_md = tmp_path / "lb.md"
    code, _, err = main_inprocess(["leaderboard", "--results", str(tmp_path / "res"), "-o", str(out_md)],
                        capsys)
    assert code == 0 and f"wrote {out_md}" in err
    text = out_md.read_text()
    sec = text.split("## shen-celeba")[1].split("\n## ")[0]
    # published whole-split PSNR of the Shen CelebA set share the column with the run
    assert "| a | 25.00 \\[25.00, 25.00\\] | reproduced |" in sec  # with its 95 % interval
    assert "| DFPG-A (ours) | <u>26.56</u> | reported, DFPGnet (Jung et al.), Table 1 |" in sec
    assert "| Yasarla et al. \\[42\\] | **26.62** |" in sec  # Markdown-escaped: renders [42]
    # "Ours" of a paper is named after the paper in the mixed leaderboard
    assert '| Shen et al. 2020 ("Ours") | 24.89 ± 2.32 | reported, Shen et al. 2020, Table 10 |' in sec


def test_misspelt_methods_and_metrics_get_did_you_mean(tmp_path, capsys):
    write_run(tmp_path, "wiener", "demo", {"psnr": 25.0},
              rows=[row("a", {"psnr": 25.0}, kernel_size=13)])
    write_run(tmp_path, "my-plugin", "demo", {"psnr": 24.0},
              rows=[row("a", {"psnr": 24.0}, kernel_size=13)])
    res = ["--results", str(tmp_path)]
    for cmd in (["table", "--split", "demo"], ["plot", "--split", "demo", "-o", str(tmp_path / "p.png")],
                ["figure", "--split", "demo", "-o", str(tmp_path / "f.png")]):
        code, _, err = main_inprocess([*cmd, "--methods", "wienr", *res], capsys)
        assert code == 2 and "unknown method 'wienr'; did you mean 'wiener'" in err, (cmd, err)
        assert "run first" not in err and "run -m wienr" not in err
    # a method known only from the stored runs (a plugin not installed here) is suggested too
    code, _, err = main_inprocess(["table", "--split", "demo", "--methods", "my-plugn", *res], capsys)
    assert code == 2 and "did you mean 'my-plugin'" in err
    code, _, err = main_inprocess(["plot", "--split", "demo", "--metric", "psnrr", *res,
                         "-o", str(tmp_path / "p.png")], capsys)
    assert code == 2 and "unknown metric 'psnrr'; did you mean 'psnr'" in err
    code, _, err = main_inprocess(["plot", "--split", "demo", "--metric", "psnr", *res,
                         "-o", str(tmp_path / "p.png")], capsys)
    assert code == 0 and (tmp_path / "p.png").is_file()


def test_methods_filter_accepts_published_method_names(tmp_path, capsys):
    code, out, err = main_inprocess(["table", "--layout", "shen-t9", "--split", "shen-helen", "--methods", "shen",
                           "--results", str(tmp_path)], capsys)
    assert code == 0, err
    assert "Shen et al." in out or "Ours" in out


def test_blurred_input_is_shown_but_never_marked_best(tmp_path, capsys):
    # the degraded input is a reference row (like the papers' "Blurred" rows): it can win a metric
    # trivially (identity consistency with the input is 0 for it), so it is never marked
    write_run(tmp_path, "blurred", "demo", {"psnr": 30.0})
    write_run(tmp_path, "wiener", "demo", {"psnr": 24.0})
    write_run(tmp_path, "richardson-lucy", "demo", {"psnr": 26.0})
    code, out, _ = main_inprocess(["table", "--split", "demo", "--results", str(tmp_path), "--marks", "value"], capsys)
    assert code == 0
    lines = {ln.split("|")[1].strip(): ln for ln in out.splitlines() if ln.startswith("| ") and "---" not in ln}
    assert "| 30.00 |" in lines["blurred"] and "**" not in lines["blurred"] and "<u>" not in lines["blurred"]
    assert "**26.00**" in lines["richardson-lucy"] and "<u>24.00</u>" in lines["wiener"]
    assert "reference row: not marked best or second" in out
