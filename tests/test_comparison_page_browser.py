"""The comparison page in a real browser: headless Chromium (Debian's ``chromium`` +
``chromium-driver``, driven by Selenium; ``.ci/run`` installs them) opens ``index.html`` from
``file://``, runs its script, and the test clicks through it: the rows, the order after a
click on a column header, the filters, "worst N", the viewer's image sources, zoom, the A/B
swipe and toggle, no console error and no request outside the folder.

Skipped, with the reason, where Chromium, its driver or Selenium is not installed."""

from __future__ import annotations

import shutil

import pytest

from faceblur_bench.report.comparison_page import write_report
from faceblur_bench.report.store import load_runs, read_rows
from faceblur_bench.results import image_name

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
try:
    import selenium  # noqa: F401

    SELENIUM = True
except ImportError:
    SELENIUM = False

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER and SELENIUM),
    reason="needs headless Chromium with its driver and Selenium: `apt-get install chromium "
           "chromium-driver` and `pip install -e .[test]` (.ci/run installs both)"
           f" — found chromium: {bool(CHROMIUM)}, chromedriver: {bool(DRIVER)}, selenium: {SELENIUM}")


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    # --no-sandbox: CI containers run as root; the resolver rule makes any network name fail
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--host-resolver-rules=MAP * ~NOTFOUND"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(stored_demo_runs, tmp_path_factory, browser):
    _, results = stored_demo_runs
    out = tmp_path_factory.mktemp("browser") / "report"
    index = write_report("demo", results, out)
    browser.get(index.resolve().as_uri())
    return out, results


def _visible_ids(driver) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#images-0 table.per-image tbody tr'))"
        ".filter(tr => !tr.hidden).map(tr => tr.dataset.id)")


def _loaded(driver, css: str) -> list[tuple[int, float]]:
    """``(natural width, drawn width)`` of the images matching ``css`` once all have loaded."""
    from selenium.webdriver.support.ui import WebDriverWait

    script = (f"const im = Array.from(document.querySelectorAll({css!r}));"
              "return im.every(i => i.complete && i.naturalWidth > 0) ? "
              "im.map(i => [i.naturalWidth, i.getBoundingClientRect().width]) : null")
    return WebDriverWait(driver, 10).until(lambda d: d.execute_script(script))


def _select(driver, css: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("css selector", css)).select_by_value(value)


def test_page_in_chromium(page, browser):
    from selenium.webdriver.common.by import By

    out, results = page
    d = browser
    runs = {r.method: r for r in load_runs(results, split="demo")}
    wiener = runs["wiener"]
    psnr = {r["id"]: r["metrics"]["psnr"] for r in read_rows(wiener.run_dir)}

    # the rows, in the split's order, and the first image selected in the viewer
    assert _visible_ids(d) == list(psnr)
    assert d.find_element(By.CSS_SELECTOR, ".viewer-id").text == next(iter(psnr))

    # a click on wiener's PSNR header: worst first (ascending PSNR); a second click reverses
    labels = sorted(runs)  # column order of the runs (as the split's table)
    col = 2 * labels.index("wiener")
    head = d.find_element(By.CSS_SELECTOR, f"#images-0 th[data-col='{col}']")
    assert head.get_attribute("title") == "wiener: PSNR"
    head.click()
    assert _visible_ids(d) == sorted(psnr, key=psnr.get)
    assert head.get_attribute("aria-sort") == "ascending"
    head.click()
    assert _visible_ids(d) == sorted(psnr, key=psnr.get, reverse=True)

    # filters: kernel size, failure, subset
    rows = {r["id"]: r for r in read_rows(wiener.run_dir)}
    _select(d, "#images-0 .f-kernel", "13")
    k13 = [i for i in psnr if rows[i]["meta"]["kernel_size"] == 13]
    assert sorted(_visible_ids(d)) == sorted(k13) and len(k13) == 2
    _select(d, "#images-0 .f-kernel", "")
    _select(d, "#images-0 .f-failed", "any")
    assert sorted(_visible_ids(d)) == sorted(k13)  # the failing method fails exactly there
    _select(d, "#images-0 .f-failed", "none")
    assert len(_visible_ids(d)) == 7
    _select(d, "#images-0 .f-failed", "")
    _select(d, "#images-0 .f-subset", "skimage")
    assert sorted(_visible_ids(d)) == sorted(i for i in psnr if rows[i]["meta"]["subset"] == "skimage")
    d.find_element(By.CSS_SELECTOR, "#images-0 button.reset").click()
    assert _visible_ids(d) == list(psnr)

    # worst 3 of wiener by PSNR: one click; the worst image goes to the viewer
    n = d.find_element(By.CSS_SELECTOR, "#images-0 .w-n")
    n.clear()
    n.send_keys("3")
    d.find_element(By.CSS_SELECTOR, f"#images-0 button.worst[data-run='{labels.index('wiener')}']").click()
    worst = sorted(psnr, key=psnr.get)[:3]
    assert _visible_ids(d) == worst
    assert d.find_element(By.CSS_SELECTOR, "#images-0 .count .shown").text == "3"
    assert d.find_element(By.CSS_SELECTOR, ".viewer-id").text == worst[0]

    # the viewer: blurred | each run | ground truth of the picked image, every image loaded
    iid = list(psnr)[4]
    d.find_element(By.CSS_SELECTOR, "#images-0 button.reset").click()
    d.find_element(By.CSS_SELECTOR, f"#images-0 tr[data-id='{iid}'] button.pick").click()
    name = image_name(iid)
    base = out.resolve().as_uri()
    panels = d.find_elements(By.CSS_SELECTOR, "#images-0 .panels figure")
    assert [p.find_element(By.TAG_NAME, "figcaption").text for p in panels] == \
        ["Input (blurred)", *labels, "Ground truth"]
    srcs = {p.get_attribute("data-source"): [i.get_attribute("src") for i in p.find_elements(By.TAG_NAME, "img")]
            for p in panels}
    assert srcs["input"] == [f"{base}/img/g0-input/{name}"]
    assert srcs["gt"] == [f"{base}/img/g0-gt/{name}"]
    assert srcs[f"run:{wiener.run_key}"] == [f"{base}/img/run-{wiener.run_key}/{name}"]
    assert srcs[f"run:{runs['blurred'].run_key}"] == []  # no saved images: the panel says how
    note = d.find_element(By.CSS_SELECTOR, f"#images-0 figure[data-source='run:{runs['blurred'].run_key}'] .missing")
    assert "--save-images" in note.text and "faceblur-bench run -m blurred" in note.text
    sizes = _loaded(d, "#images-0 .panels img")
    assert len(sizes) == 3 and all(w == 128 and shown == 128 for w, shown in sizes)
    scores = d.find_element(By.CSS_SELECTOR, f"#images-0 figure[data-source='run:{wiener.run_key}'] .scores")
    assert f"PSNR {psnr[iid]:.2f}" in scores.text

    # zoom 4x: every panel image is drawn at 4x its pixels
    _select(d, "#images-0 .zoom", "4")
    assert [shown for _, shown in _loaded(d, "#images-0 .panels img")] == [512, 512, 512]
    _select(d, "#images-0 .zoom", "1")

    # A/B: wiener over the ground truth by default; the swipe clips A; the toggle swaps them
    a = d.find_element(By.CSS_SELECTOR, "#images-0 .ab-img-a")
    b = d.find_element(By.CSS_SELECTOR, "#images-0 .ab-img-b")
    assert a.get_attribute("src") == srcs[f"run:{wiener.run_key}"][0] and b.get_attribute("src") == srcs["gt"][0]
    d.execute_script("const s = document.querySelector('#images-0 .ab-swipe'); s.value = 30;"
                     "s.dispatchEvent(new Event('input'))")
    assert a.value_of_css_property("clip-path") == "inset(0px 70% 0px 0px)"
    d.find_element(By.CSS_SELECTOR, "#images-0 .ab-toggle").click()
    assert a.get_attribute("src") == srcs["gt"][0] and b.get_attribute("src") == srcs[f"run:{wiener.run_key}"][0]

    # the failing method's panel on a failed image says so; its name is text, never markup
    failed = next(i for i in psnr if rows[i]["meta"]["kernel_size"] == 13)
    d.find_element(By.CSS_SELECTOR, f"#images-0 tr[data-id='{failed}'] button.pick").click()
    bad = next(r for m, r in runs.items() if m not in ("wiener", "blurred"))
    fig = d.find_element(By.CSS_SELECTOR, f"#images-0 figure[data-source='run:{bad.run_key}']")
    assert fig.find_element(By.TAG_NAME, "figcaption").text == bad.method
    assert fig.find_element(By.CSS_SELECTOR, ".scores").text.startswith("failed: ")
    assert d.execute_script("return document.querySelectorAll('main b').length") == 0

    # no console error; every resource came from inside the folder
    errors = [e for e in d.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    import json
    from urllib.parse import unquote

    sent = [json.loads(e["message"])["message"] for e in d.get_log("performance")]
    urls = {m["params"]["request"]["url"] for m in sent if m["method"] == "Network.requestWillBeSent"}
    assert urls and all(u.startswith(base + "/") for u in urls), urls
    assert all((out / unquote(u[len(base) + 1:])).is_file() for u in urls)
    assert {f"{base}/report.js", f"{base}/report.css", srcs["gt"][0]} <= urls
