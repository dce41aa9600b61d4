"""Transcribed published numbers: spot checks against the paper text, and a full cross-check
against the seed texts when they are available (``../shared/seeds`` relative to the repo)."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from faceblur_bench.report import names, published

ENTRIES = published.load(published.published_dir())
SEEDS = Path(__file__).resolve().parents[1].parent / "shared" / "seeds"
SEED_FILES = {"sappgan": "000_", "yun": "001_", "dfpg": "002_", "cfmd": "003_", "shen": "004_"}


def one(**where) -> published.Entry:
    hits = published.select(ENTRIES, **where)
    assert len(hits) == 1, (where, hits)
    return hits[0]


# Values below are typed in from the papers' tables (not read from the CSVs).
SPOT = [
    # SAPPGAN Table 1
    (dict(paper="sappgan", table="1", method="Ours", split="mspl-center", subset="celeba",
          metric="d_vgg"), "12.33"),
    (dict(paper="sappgan", table="1", method="Jung et al. [19]", split="mspl-random",
          subset="ffhq", metric="ssim"), "0.951"),
    (dict(paper="sappgan", table="1", method="Lee et al. [18]", split="mspl-center",
          subset="celeba-hq", metric="lpips"), "0.097"),
    (dict(paper="sappgan", table="1", method="*Yasarla et al.", split="mspl-random",
          subset="celeba-hq", metric="d_vgg"), "58.89"),
    (dict(paper="sappgan", table="1", method="Zhang et al. [57]", split="mspl-center",
          subset="ffhq", metric="d_arc"), ""),
    # SAPPGAN Table 2 / 3
    (dict(paper="sappgan", table="2", method="Ours", metric="verification_acc"), "90.64"),
    (dict(paper="sappgan", table="2", method="Lu et al. [61]", metric="runtime_s"), "0.02"),
    (dict(paper="sappgan", table="2", method="GT", metric="verification_acc"), "93.47"),
    (dict(paper="sappgan", table="3", method="S0", metric="d_arc"), "0.4909"),
    (dict(paper="sappgan", table="3", method="S5", metric="psnr"), "28.4088"),
    # Yun Tables 1-3
    (dict(paper="yun", table="1", method="Ours", metric="fid"), "15.30"),
    (dict(paper="yun", table="1", method="SRFBN", metric="ssim"), "0.7656"),
    (dict(paper="yun", table="2", method="DICGAN*", group="threshold 0.8"), "91.93"),
    (dict(paper="yun", table="2", method="FSRNet*", group="threshold 0.6"), "0.167"),
    (dict(paper="yun", table="3", method="Model 2", metric="fid"), "17.7264"),
    # DFPGnet Tables 1-4
    (dict(paper="dfpg", table="1", method="Yasarla et al. [42]", split="shen-helen",
          metric="d_vgg"), "86.87"),
    (dict(paper="dfpg", table="1", method="DFPG-A (ours)", split="shen-celeba",
          metric="lpips"), "0.1052"),
    (dict(paper="dfpg", table="1", method="Shen et al. [33]", split="shen-celeba",
          metric="ssim"), "0.875"),
    (dict(paper="dfpg", table="2", method="Lee et al. [18]", split="mspl-center",
          subset="celeba", metric="psnr"), "28.07"),
    (dict(paper="dfpg", table="2", method="DFPG-B (ours)", split="mspl-center",
          subset="celeba-hq", metric="d_vgg"), "20.95"),
    (dict(paper="dfpg", table="2", method="Lu et al. [23]", split="mspl-random",
          subset="celeba", metric="d_vgg"), "46.05"),
    (dict(paper="dfpg", table="3", method="DFPG-A (ours)", metric="detection_rate"), "96.41"),
    (dict(paper="dfpg", table="4", method="B4", metric="psnr"), "28.67"),
    # CFMD-GAN Tables 1-5
    (dict(paper="cfmd", table="1", n_frames="9", metric="n_sharp"), "23445"),
    (dict(paper="cfmd", table="1", group="Total", metric="n_blurred"), "13058"),
    (dict(paper="cfmd", table="2", method="MIMO*", metric="psnr"), "34.8496"),
    (dict(paper="cfmd", table="3", method="CFMD-GAN ₁₂₈", metric="lpips"), "0.04910"),
    (dict(paper="cfmd", table="4", method="CFMD-GAN", n_frames="13", metric="arcface"), "1.2367"),
    (dict(paper="cfmd", table="4", method="CFMD-GAN", n_frames="", metric="fid"), "4.0948"),
    (dict(paper="cfmd", table="4", method="Jin et al. [34]", metric="n_pairs"), "18739"),
    (dict(paper="cfmd", table="5", row=3, metric="fid"), "9.6110"),
    # Shen et al. Tables 1-12
    (dict(paper="shen", table="1", method="Testing", metric="n_kernels"), "80"),
    (dict(paper="shen", table="1", method="Training", metric="n_blurred"), "130 M"),
    (dict(paper="shen", table="2", row=3, metric="fscore"), "0.615"),
    (dict(paper="shen", table="3", method="Deblurred", group="teeth"), "0.337"),
    (dict(paper="shen", table="4", row=3, split="shen-celeba", metric="ssim"), "0.874"),
    (dict(paper="shen", table="5", row=4, split="shen-helen", metric="psnr"), "24.74"),
    (dict(paper="shen", table="6", row=2, split="shen-celeba", metric="psnr"), "25.14"),
    (dict(paper="shen", table="7", method="13×13", metric="params_m"), "14.92 M"),
    (dict(paper="shen", table="8", method="2 (shared)", metric="runtime_s"), "0.11"),
    (dict(paper="shen", table="9", method="Ours", split="shen-helen", kernel_size="27",
          metric="ssim"), "0.799"),
    (dict(paper="shen", table="9", method="Tao et al. (2018)", split="shen-celeba",
          kernel_size="17", metric="psnr"), "25.7"),
    (dict(paper="shen", table="10", method="Ours", split="shen-helen", metric="psnr_worst"),
     "13.55"),
    (dict(paper="shen", table="11", method="Ours", metric="top5"), "74.2"),
    (dict(paper="shen", table="12", method="Li et al. (2018)", metric="params_m"), "558K"),
]


@pytest.mark.parametrize("where,value", SPOT, ids=[f"{w['paper']}-T{w['table']}-{i}"
                                                    for i, (w, _) in enumerate(SPOT)])
def test_spot_values_equal_paper(where, value):
    assert one(**where).value == value


def test_std_and_parsed_units():
    e = one(paper="shen", table="10", method="Ours", split="shen-helen", metric="psnr")
    assert (e.value, e.std) == ("25.91", "2.91")
    e = one(paper="shen", table="10", method="Cho and Lee (2009)", split="shen-celeba",
            metric="ssim")
    assert (e.value, e.std) == ("0.445", "0.098")
    assert one(paper="shen", table="12", method="Li et al. (2018)", metric="params_m").number \
        == pytest.approx(0.558)
    assert one(paper="shen", table="1", method="Training", metric="n_blurred").number == 130e6
    assert math.isnan(one(paper="shen", table="12", method="Shan et al. (2008)",
                          metric="params_m").number)


# table -> number of printed numeric cells (rows x columns of the paper's table)
EXPECTED_CELLS = {
    ("sappgan", "1"): (10 + 9) * 15, ("sappgan", "2"): 2 + 7 * 3, ("sappgan", "3"): 6 * 4,
    ("yun", "1"): 3 * 11, ("yun", "2"): 3 * 11, ("yun", "3"): 3 * 6,
    ("dfpg", "1"): 9 * 8, ("dfpg", "2"): 2 * 9 * 12, ("dfpg", "3"): 8 * 2, ("dfpg", "4"): 6 * 2,
    ("cfmd", "1"): 6 * 2, ("cfmd", "2"): 7 * 5, ("cfmd", "3"): 6 * 5, ("cfmd", "4"): 7 * 6,
    ("cfmd", "5"): 4 * 5,
    ("shen", "1"): 2 * 5, ("shen", "2"): 4 * 3, ("shen", "3"): 11 * 3, ("shen", "4"): 3 * 4,
    ("shen", "5"): 4 * 4, ("shen", "6"): 3 * 4, ("shen", "7"): 4 * 5, ("shen", "8"): 5 * 6,
    ("shen", "9"): 2 * 14 * 16, ("shen", "10"): 14 * 8, ("shen", "11"): 16 * 4,
    ("shen", "12"): 14 * 2,
}


def test_every_table_complete():
    counts = Counter((e.paper, e.table) for e in ENTRIES)
    assert dict(counts) == EXPECTED_CELLS


def test_names_map_onto_harness_names():
    for e in ENTRIES:
        assert e.paper in names.PAPERS
        assert e.scope in ("main", "ablation", "dataset"), e
        if e.split:
            assert e.split in names.SPLITS, e
            subsets = names.SPLITS[e.split]["subsets"]
            assert (e.subset in subsets) if e.subset else True, e
        assert e.metric in names.QUANTITIES, e
        assert e.arrow in ("", "↑", "↓")
        if e.arrow:
            assert (e.arrow == "↑") == names.QUANTITIES[e.metric].higher_is_better, e
        if e.value:
            assert not math.isnan(e.number), e
        else:
            assert e.note, f"{e.file}:{e.line}: empty value without a note"
        assert e.protocol, e


def test_kernel_sizes_and_frame_counts():
    ks = {e.kernel_size for e in ENTRIES if e.kernel_size}
    assert ks == {"13", "15", "17", "19", "21", "23", "25", "27"}
    nf = {e.n_frames for e in ENTRIES if e.n_frames}
    assert nf == {"5", "7", "9", "11", "13"}


# ---------------------------------------------------------------------------------------------
def _numbers(line: str) -> list[str]:
    line = re.sub(r"</?(u|b|i)>", "", line)
    return re.findall(r"\d[\d,]*(?:\.\d+)?", line)


def _num(value: str) -> str:
    return re.sub(r"[ MK%]", "", value)


def _contains(seq: list[str], tokens: list[str]) -> bool:
    n = len(seq)
    return any(tokens[i:i + n] == seq for i in range(len(tokens) - n + 1))


@pytest.mark.skipif(not SEEDS.is_dir(), reason="seed texts not available (../shared/seeds)")
def test_every_value_is_in_the_seed_text_in_printed_order():
    """Each printed row (per split for side-by-side blocks) is a contiguous run of numbers on one
    line of the seed text; for Yun et al. (methods as columns) each metric line is."""
    texts = {}
    for paper, prefix in SEED_FILES.items():
        (path,) = SEEDS.glob(prefix + "*.txt")
        texts[paper] = [_numbers(ln) for ln in path.read_text().split("\n")]
    groups: dict[tuple, list[str]] = defaultdict(list)
    for e in ENTRIES:
        if not e.value:
            continue
        if e.paper == "yun":
            key = (e.paper, e.table, e.metric, e.group)
        else:
            key = (e.paper, e.table, e.row, e.split)
        groups[key].append(_num(e.value))
        if e.std:
            groups[key].append(_num(e.std))
    missing = [(k, seq) for k, seq in groups.items()
               if not any(_contains(seq, toks) for toks in texts[k[0]])]
    assert not missing, missing[:5]
    assert len(groups) > 150


def _section(text: str, title: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index(f"## {title}")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


def test_leaderboard_merges_rows_two_papers_print_identically(tmp_path):
    from faceblur_bench.report.leaderboard import build_leaderboard

    (tmp_path / "none").mkdir()  # an empty results directory: published rows only
    sec = _section(build_leaderboard(tmp_path / "none"), "mspl-center/celeba")
    rows = [ln for ln in sec if ln.startswith("| ") and not ln.startswith("| Method")]
    labels = [ln.split("|")[1].strip() for ln in rows]
    # DFPGnet Table 2 and SAPPGAN Table 1 print the same MSPL rows: one row each, citing both
    assert labels.count("\\*Zhang et al.") == 1 and labels.count("Shen et al.") == 1  # "*" is Markdown-escaped
    shen = next(ln for ln in rows if ln.startswith("| Shen et al. |"))
    assert "DFPGnet (Jung et al.), Table 2; SAPPGAN (Han et al. 2023), Table 1" in shen
    assert "| 1.141 |" in shen  # d_ARC, printed only by SAPPGAN, fills the merged row
    jung = next(ln for ln in rows if ln.startswith("| Jung et al. |"))  # DFPG-B (ours) = Jung et al. [19]
    assert "**29.06**" in jung and "DFPG-B" not in " ".join(labels)
    # Lee et al. is printed 28.07 in one paper and 28.08 in the other: both kept, and said why
    assert labels.count("Lee et al. \\[18\\]") == 2  # "[" "]" are Markdown-escaped
    assert any("print different values (psnr 28.07 vs 28.08)" in ln for ln in sec)
    # the papers' asterisk is explained
    assert any(ln.startswith("\\* before a method name") and "retrained on the MSPL training set" in ln
               for ln in sec)


def test_layout_tables_explain_the_asterisk_and_cite_without_notes():
    from faceblur_bench.report.layouts import get_layout, render_layout

    text = render_layout(get_layout("dfpg-t2"), [], split="mspl-center")
    assert "*Yasarla et al." in text and "* before a method name" in text
    for p in names.PAPERS.values():
        assert "seed" not in p.citation and "not printed" not in p.citation
