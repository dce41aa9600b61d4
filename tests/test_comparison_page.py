"""``faceblur-bench report``: the HTML comparison page, parsed without a browser (the browser
test is ``test_comparison_page_browser.py``). Runs come from the session's ``stored_demo_runs``
(9 demo images; blurred, wiener with saved images, and a method named with HTML specials whose
output is NaN on the kernel-size-13 images)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image

from cli_helpers import main_inprocess
from faceblur_bench.errors import UsageError
from faceblur_bench.report.comparison_page import write_report
from faceblur_bench.report.store import load_runs, read_rows

BAD_NAME = 'k13 <b>fails</b> & "x"'


class Page(HTMLParser):
    """Elements of a page: every start tag with its attributes, the per-image rows (with their
    cells' text), every ``src``/``href``, and the page-data JSON."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.rows: list[dict[str, str]] = []
        self.cells: list[list[str]] = []
        self.links: list[str] = []
        self.captions: list[str] = []
        self.headings: list[str] = []
        self._in_tbody = False
        self._per_image = False
        self._cell: list[str] | None = None
        self._text_into: list[str] | None = None
        self.data_json = ""
        self._in_data = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if tag == "table":
            self._per_image = "per-image" in a.get("class", "")
        if tag == "tbody" and self._per_image:
            self._in_tbody = True
        if tag == "tr" and self._in_tbody:
            self.rows.append(a)
            self.cells.append([])
        if tag == "td" and self._in_tbody:
            self._cell = []
        for key in ("src", "href"):
            if key in a:
                self.links.append(a[key])
        if tag in ("caption", "h2"):
            self._text_into = []
        if tag == "script" and a.get("id") == "report-data":
            self._in_data = True

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_tbody = False
        if tag == "td" and self._cell is not None:
            self.cells[-1].append("".join(self._cell).strip())
            self._cell = None
        if tag in ("caption", "h2") and self._text_into is not None:
            (self.captions if tag == "caption" else self.headings).append("".join(self._text_into))
            self._text_into = None
        if tag == "script":
            self._in_data = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._text_into is not None:
            self._text_into.append(data)
        if self._in_data:
            self.data_json += data


@pytest.fixture(scope="module")
def page(stored_demo_runs, tmp_path_factory) -> tuple[Path, str, Page]:
    _, results = stored_demo_runs
    out = tmp_path_factory.mktemp("page") / "report"
    index = write_report("demo", results, out)
    text = index.read_text(encoding="utf-8")
    return out, text, Page(text)


def _runs(results: Path) -> dict[str, object]:
    return {r.method: r for r in load_runs(results, split="demo")}


def test_one_row_per_image_with_every_run_and_metric(page, stored_demo_runs):
    out, _, p = page
    runs = _runs(stored_demo_runs[1])
    wiener_rows = {r["id"]: r for r in read_rows(runs["wiener"].run_dir)}
    assert [r["data-id"] for r in p.rows] == list(wiener_rows)  # the split's order
    assert len(p.rows) == 9
    # columns: image, subset, kernel size, failed in, then 3 runs x (PSNR, SSIM) in label order
    order = sorted(runs)  # blurred, k13 <b>..., wiener: the table's order (by run directory)
    for row, cells in zip(p.rows, p.cells):
        r = wiener_rows[row["data-id"]]
        assert cells[1] == r["meta"]["subset"] and cells[2] == str(r["meta"]["kernel_size"])
        w = 4 + 2 * order.index("wiener")
        assert cells[w] == f"{r['metrics']['psnr']:.2f}" and cells[w + 1] == f"{r['metrics']['ssim']:.4f}"
        failing = 4 + 2 * order.index(BAD_NAME)
        if r["meta"]["kernel_size"] == 13:
            assert row["data-failed"] and cells[3] == BAD_NAME and cells[failing] == "–"
        else:
            assert row["data-failed"] == "" and float(cells[failing]) > 0
    assert {r["data-subset"] for r in p.rows} == {"insightface", "skimage"}
    assert sum(1 for r in p.rows if r["data-kernel"] == "13") == 2


def test_split_table_has_the_cells_and_marks_of_the_table_command(page, stored_demo_runs, capsys):
    _, text, p = page
    code, md, _ = main_inprocess(["table", "--split", "demo", "--results", str(stored_demo_runs[1])],
                                 capsys)
    assert code == 0
    table_html = text.split('<section id="split-table">', 1)[1].split("</section>", 1)[0]
    assert re.findall(r"<strong>([^<]+)</strong>", table_html.split("</table>")[0]) \
        == re.findall(r"\*\*([0-9.]+)\*\*", md)
    assert re.findall(r"<u>([^<]+)</u>", table_html.split("</table>")[0]) \
        == re.findall(r"<u>([0-9.]+)</u>", md)
    # the same footnotes: every line under the Markdown table is a line of the HTML one
    from html import unescape

    notes = [unescape(re.sub(r"<[^>]+>", "", n)) for n in re.findall(r"<li>(.*?)</li>", table_html)]
    md_notes = [line.removeprefix("- ").replace("\\", "") for line in md.split("\n\n", 1)[1].splitlines()
                if line and not line.startswith(("Best in", "Protocols:", "Missing cells:", "|"))]
    assert md_notes and all(n in notes for n in md_notes), (md_notes, notes)
    assert any("2 of 9 images failed" in n for n in notes)


def test_everything_is_relative_inside_the_folder_and_nothing_from_the_network(page, stored_demo_runs):
    out, text, p = page
    assert "http://" not in text and "https://" not in text and "//" not in "".join(p.links)
    for link in p.links:
        if link.startswith("#"):
            continue
        target = out / unquote(link)
        assert target.is_file(), link
        assert out.resolve() in target.resolve().parents
    data = json.loads(p.data_json)
    (g,) = data["groups"]
    for img in g["images"].values():
        for rel in [img["input"], img["gt"], img["thumb"], *img["m"].values()]:
            assert (out / unquote(rel)).is_file(), rel
    # viewer images only for the run that saved them
    keys = {r["key"]: r for r in g["runs"]}
    saved = {k for img in g["images"].values() for k in img["m"]}
    assert {keys[k]["label"] for k in saved} == {"wiener"}
    assert all("--save-images" in r["how"] for r in g["runs"] if not r["has_images"])
    # a copy is byte-identical to the run's file
    from faceblur_bench.results import image_path

    run = _runs(stored_demo_runs[1])["wiener"]
    iid = next(iter(g["images"]))
    rel = g["images"][iid]["m"][run.run_key]
    assert (out / unquote(rel)).read_bytes() == image_path(run.run_dir, iid).read_bytes()


def test_user_strings_are_escaped(page):
    _, text, p = page
    assert BAD_NAME not in text and "<b>fails</b>" not in text
    assert "k13 &lt;b&gt;fails&lt;/b&gt; &amp; &#34;x&#34;" in text or \
        "k13 &lt;b&gt;fails&lt;/b&gt; &amp; &quot;x&quot;" in text
    assert "<" not in p.data_json and ">" not in p.data_json
    assert any(r["label"] == BAD_NAME for r in json.loads(p.data_json)["groups"][0]["runs"])
    assert not any(t == "b" for t, _ in p.tags)  # no element made from the name


def test_failures_plots_thumbnails_and_provenance(page, stored_demo_runs):
    out, text, p = page
    run = _runs(stored_demo_runs[1])[BAD_NAME]
    failed = [r for r in read_rows(run.run_dir) if r["status"] != "ok"]
    assert len(failed) == 2
    section = text.split('<section id="failures">', 1)[1].split("</section>", 1)[0]
    for r in failed:
        assert r["id"] in section
        from html import escape

        assert escape(r["reason"]) in section
    for metric in ("psnr", "ssim"):
        with Image.open(out / "plots" / f"g0-kernel-size-{metric}.png") as im:
            assert im.format == "PNG" and im.width > 300
    thumbs = sorted((out / "thumbs" / "g0").iterdir())
    assert len(thumbs) == 9
    with Image.open(thumbs[0]) as im:
        assert max(im.size) == 64
    prov = text.split('<section id="provenance">', 1)[1]
    wiener = _runs(stored_demo_runs[1])["wiener"]
    assert wiener.provenance["packages"]["torch"] in prov and f"run {wiener.run_key}" in prov
    assert "builtin" in prov and "cpu" in prov and wiener.provenance["date"][:10] in prov


def test_images_and_thumbnails_are_made_once_and_links_share_the_file(stored_demo_runs, tmp_path):
    _, results = stored_demo_runs
    out = tmp_path / "page"
    write_report("demo", results, out, images="link")
    files = sorted(p for p in out.rglob("*.png") if "plots" not in p.parts)
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_ctime_ns) for p in files}
    wiener = _runs(results)["wiener"]
    src = next(Path(wiener.run_dir, "images").iterdir())
    linked = next(p for p in files if p.name == src.name and "run-" in p.parent.name)
    assert linked.stat().st_ino == src.stat().st_ino  # a hard link, not a copy
    write_report("demo", results, out, images="link")
    after = {p: (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_ctime_ns) for p in files}
    assert after == before


def test_size_limit_refuses_before_writing(stored_demo_runs, tmp_path):
    _, results = stored_demo_runs
    with pytest.raises(UsageError, match=r"over --max-image-mb 0\.01.*") as exc:
        write_report("demo", results, tmp_path / "page", max_image_mb=0.01)
    assert "--max-image-mb" in exc.value.hint
    assert not (tmp_path / "page").exists()


def test_cli_writes_the_page_and_refuses_bad_input(stored_demo_runs, tmp_path, capsys):
    _, results = stored_demo_runs
    code, out, err = main_inprocess(["report", "--split", "demo", "--results", str(results),
                                     "-o", str(tmp_path / "p"), "--methods", "wiener"], capsys)
    assert code == 0 and (tmp_path / "p" / "index.html").is_file()
    assert len(Page((tmp_path / "p" / "index.html").read_text()).rows) == 9
    code, _, err = main_inprocess(["report", "--split", "demo", "--results", str(results),
                                   "-o", str(tmp_path / "q"), "--images", "cpy"], capsys)
    assert code == 2 and "did you mean 'copy'" in err
    code, _, err = main_inprocess(["report", "--split", "mspl-center", "--results", str(results),
                                   "-o", str(tmp_path / "q")], capsys)
    assert code == 2 and "no runs of split 'mspl-center'" in err
    code, _, err = main_inprocess(["report", "--split", "demo", "--results", str(results),
                                   "-o", str(tmp_path / "q"), "--methods", "wienr"], capsys)
    assert code == 2 and "did you mean 'wiener'" in err
    assert not (tmp_path / "q").exists()


def test_custom_data_and_no_ground_truth_pages_have_their_headings(tmp_path):
    """A make-split run (custom data) and a ``folder:`` run (photos without ground truth, a file
    name with HTML specials) each render under their own heading, with their input images."""
    from skimage import data as skdata

    from faceblur_bench import engine
    from faceblur_bench.data.synth import make_split
    from faceblur_bench.imageio import write_png
    from faceblur_bench.report.tables import FOLDER_HEADING

    rng = np.random.default_rng(0)
    write_png(tmp_path / "sharp" / "me.png", rng.integers(0, 256, (128, 128, 3), dtype=np.uint8))
    make_split(tmp_path / "sharp", "mspl", tmp_path / "made", seed=3)
    res = tmp_path / "res"
    engine.evaluate(engine.RunConfig(method="blurred", split="mspl-center/celeba", metrics=["psnr"],
                                     data_root=tmp_path / "made", results_dir=res, device="cpu",
                                     limit=3, save_images=True))
    index = write_report("mspl-center/celeba", res, tmp_path / "custom")
    p = Page(index.read_text())
    assert any("custom data, not the official test set" in c for c in p.captions)
    assert any(h.startswith("Per image — custom data, not the official test set") for h in p.headings)
    assert len(p.rows) == 3
    data = json.loads(p.data_json)["groups"][0]
    assert all((tmp_path / "custom" / unquote(v["input"])).is_file() and "gt" in v
               for v in data["images"].values())

    photos = tmp_path / "photos"
    photos.mkdir()
    name = 'astro <i>&"q"'
    Image.fromarray(skdata.astronaut()).save(photos / f"{name}.jpg", quality=95)
    engine.evaluate(engine.RunConfig(method="blurred", split=f"folder:{photos}", metrics=["detection-rate"],
                                     data_root=tmp_path / "crops", results_dir=res, device="cpu",
                                     save_images=True))
    index = write_report(f"folder:{photos}", res, tmp_path / "real", data_root=tmp_path / "crops")
    text = index.read_text()
    p = Page(text)
    assert any(f"folder:photos — {FOLDER_HEADING}" in c for c in p.captions)
    assert [r["data-id"] for r in p.rows] == [f"{name}_00"] and "<i>" not in text
    (img,) = json.loads(p.data_json)["groups"][0]["images"].values()
    assert "gt" not in img and (tmp_path / "real" / unquote(img["input"])).is_file()
    assert set(img["m"]) and all((tmp_path / "real" / unquote(v)).is_file() for v in img["m"].values())


def test_html_table_shows_confidence_intervals_where_the_summary_has_them():
    from faceblur_bench.report.render import Table, render
    from faceblur_bench.report.tables import metric_cell, metric_column

    with_ci = metric_cell({"value": 24.3169, "std": 4.5, "status": "ok", "ci95": [23.27, 25.41]})
    without = metric_cell({"value": 25.0, "std": 4.0, "status": "ok"})
    from faceblur_bench.report.render import Row

    html = render(Table("demo", [metric_column("psnr", None)],
                        [Row("a", {"psnr": with_ci}), Row("b", {"psnr": without})]), "html")
    assert html.count('class="ci"') == 1 and "<u>24.32</u><br><span class=\"ci\"" in html and "[23.27, 25.41]" in html
    assert "95 % confidence interval" in html.split("</table>")[1]
