"""The HTML report: escaping and structure in pure Python, then what a person sees in headless Chromium.

The browser tests skip when Chromium, chromedriver or selenium is missing
(scripts/install.sh installs the browser where apt is available), except in CI
(``$CI`` set), where they fail instead: there the report must really be checked.
"""

from __future__ import annotations

import base64
import io
import os
import re
import struct
from html.parser import HTMLParser

import pytest

from riftkit.reports.html import Plot, ReportData, render_html, write_report
from riftkit.reports.screenshot import chromium_driver, missing_binaries, screenshot

LABELS = ["negative", "positive"]
SCRIPT_TEXT = "<script>alert(1)</script> & dull"
EXAMPLES = [
    {"run": "rift-seed0", "attack": "pwws", "uid": "dev.jsonl.gz:17", "label": 1, "outcome": "succeeded",
     "original": "a gripping , funny film", "adversarial": "a gripping , comical film", "substitutions": [[3, "funny", "comical"]],
     "original_prediction": 1, "adversarial_prediction": 0, "original_probs": [0.1, 0.9], "adversarial_probs": [0.7, 0.3]},
    {"run": "rift-seed0", "attack": "pwws", "uid": "dev.jsonl.gz:18", "label": 0, "outcome": "failed",
     "original": SCRIPT_TEXT, "adversarial": SCRIPT_TEXT, "substitutions": [],
     "original_prediction": 0, "adversarial_prediction": 0},  # an older log: no probabilities
    {"run": "rift-seed0", "attack": "textfooler", "uid": "dev.jsonl.gz:19", "label": 1, "outcome": "skipped",
     "original": 'tom & jerry \'s "best" day', "adversarial": 'tom & jerry \'s "best" day', "substitutions": [],
     "original_prediction": 0, "adversarial_prediction": 0, "original_probs": [0.6, 0.4], "adversarial_probs": [0.6, 0.4]},
    {"run": "standard-seed0", "attack": "pwws", "uid": "dev.jsonl.gz:17", "label": 0, "outcome": "succeeded",
     "original": "the plot is dull and < tedious", "adversarial": "the plot is boring and < tiresome",
     "substitutions": [[3, "dull", "boring"], [6, "tedious", "tiresome"]],
     "original_prediction": 0, "adversarial_prediction": 1, "original_probs": [0.8, 0.2], "adversarial_probs": [0.45, 0.55]},
    {"run": "standard-seed0", "attack": "textfooler", "uid": "dev.jsonl.gz:20", "label": 1, "outcome": "succeeded",
     "original": "he plays well", "adversarial": "he performs well", "substitutions": [[1, "plays", "performs"]],
     "original_prediction": 1, "adversarial_prediction": 0, "original_probs": [0.3, 0.7], "adversarial_probs": [0.51, 0.49],
     "context": {"premise": "a man <b>plays</b> guitar"}},
    {"run": "standard-seed0", "attack": "textfooler", "uid": "dev.jsonl.gz:21", "label": 1, "outcome": "failed",
     "original": "a warm , tender story", "adversarial": "a warm , tender story", "substitutions": [],
     "original_prediction": 1, "adversarial_prediction": 1, "original_probs": [0.05, 0.95], "adversarial_probs": [0.2, 0.8]},
]


@pytest.fixture(scope="module")
def png() -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1.5), dpi=50)
    ax.plot([0, 1, 2], [0.9, 0.6, 0.4])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def report(png) -> ReportData:
    return ReportData(
        title="SST-2 robustness <test> & co",
        columns=[("run", "Run"), ("clean", "Clean accuracy"), ("robust", "Robust accuracy"), ("n", "Examples")],
        rows=[{"run": "rift-seed0", "clean": 0.8123, "robust": 0.5, "n": 872},
              {"run": "standard-seed0", "clean": 0.9, "robust": None, "n": 872}],
        plots=[Plot("Robust accuracy vs budget", png, caption="higher is better")],
        examples=EXAMPLES,
        notes=["Attacks ran with a 5 % budget & <no> LM constraint."],
        label_names=LABELS,
    )


class _Structure(HTMLParser):
    """Checks that elements nest properly and collects the text of <script> elements."""

    VOID = {"meta", "img", "input", "br", "col", "hr", "link"}

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.scripts: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        if self.stack and self.stack[-1] == "script":
            self.scripts.append(data)


# ---- pure Python ------------------------------------------------------------------------------


def test_text_is_escaped_and_nothing_from_the_data_runs(report):
    page = render_html(report)
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; dull" in page
    assert "tom &amp; jerry &#x27;s &quot;best&quot; day" in page
    assert "SST-2 robustness &lt;test&gt; &amp; co" in page
    assert "5 % budget &amp; &lt;no&gt; LM constraint." in page
    assert "a man &lt;b&gt;plays&lt;/b&gt; guitar" in page
    parser = _Structure()
    parser.feed(page)
    parser.close()
    assert parser.errors == [] and parser.stack == []
    assert len(parser.scripts) == 1 and "alert" not in parser.scripts[0] and "gripping" not in parser.scripts[0]
    assert page.startswith("<!DOCTYPE html>") and "http://" not in page and "https://" not in page


def test_summary_table_and_plot(report, png):
    page = render_html(report)
    summary = page[page.index('<table id="summary">'):]
    summary = summary[:summary.index("</table>")]
    assert summary.count("<tr>") == 3  # header + 2 rows
    assert "<th>Clean accuracy</th>" in summary
    assert '<td class="num">0.812</td>' in summary and '<td class="num">0.500</td>' in summary
    assert '<td class="num">872</td>' in summary and "<td>\u2013</td>" in summary
    assert f'<img src="data:image/png;base64,{base64.b64encode(png).decode()}"' in page
    assert "<figcaption>Robust accuracy vs budget \u2014 higher is better</figcaption>" in page


def test_examples_show_substitutions_labels_and_predictions(report):
    page = render_html(report)
    assert page.count('<tr class="example"') == len(EXAMPLES)
    rows = re.findall(r'<tr class="example".*?</tr>', page)
    first = rows[0]
    assert '<mark class="sub" title="was: funny">comical</mark>' in first
    assert re.search(r'<mark class="orig"[^>]*>funny</mark>', first)
    assert 'data-run="rift-seed0" data-attack="pwws" data-outcome="succeeded"' in first
    assert '<td class="gold">positive</td>' in first
    assert "positive 0.90 \u2192 negative 0.70" in first
    assert "negative \u2192 negative" in rows[1]  # no probabilities in the log: label only
    assert page.count('<mark class="sub"') == 4
    assert '<mark class="sub" title="was: tedious">tiresome</mark>' in rows[3]
    for select in ("filter-run", "filter-attack", "filter-outcome"):
        assert re.search(f'<select id="{select}"[^>]*><option value="">all</option>', page)
    assert '<input id="filter-text"' in page and '<span id="shown-count">6</span>' in page


def test_bad_input_is_refused(report):
    bad = dict(EXAMPLES[0], substitutions=[[2, "funny", "comical"]])
    with pytest.raises(ValueError, match="does not match"):
        render_html(ReportData("t", [], [], examples=[bad]))
    with pytest.raises(ValueError, match="lacks run"):
        render_html(ReportData("t", [], [], examples=[{k: v for k, v in EXAMPLES[0].items() if k != "run"}]))
    with pytest.raises(ValueError, match="PNG"):
        render_html(ReportData("t", [], [], plots=[Plot("p", b"not a png")]))
    assert "No adversarial examples" in render_html(ReportData("t", [("a", "A")], [{}]))


def test_write_report_and_many_examples(tmp_path):
    many = [dict(EXAMPLES[i % len(EXAMPLES)], uid=f"dev:{i}") for i in range(20_000)]
    path = write_report(ReportData("big \u2192 report", [("a", "A")], [{"a": 1.0}], examples=many, label_names=LABELS), tmp_path / "new" / "dir" / "r.html")
    assert path == tmp_path / "new" / "dir" / "r.html"
    text = path.read_text(encoding="utf-8")
    assert text.count('<tr class="example"') == 20_000 and "big \u2192 report" in text


# ---- in headless Chromium ---------------------------------------------------------------------


def _browser_unavailable() -> str | None:
    missing = missing_binaries()
    if missing:
        return f"{' and '.join(missing)} not found: scripts/install.sh installs chromium and chromium-driver when apt is available"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed"
    return None


@pytest.fixture(scope="module")
def browser():
    reason = _browser_unavailable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"the report's browser test must run in CI: {reason}")
        pytest.skip(reason)
    driver = chromium_driver(1280, 1600)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def report_file(report, tmp_path_factory):
    return write_report(report, tmp_path_factory.mktemp("report") / "report.html")


@pytest.fixture
def page(browser, report_file):
    """The report freshly loaded (filters reset)."""
    browser.get(report_file.as_uri())
    return browser


def _by():
    from selenium.webdriver.common.by import By

    return By


def _shown(driver) -> list[int]:
    """Indices of the example rows a person can see."""
    rows = driver.find_elements(_by().CSS_SELECTOR, "#examples tr.example")
    assert len(rows) == len(EXAMPLES)
    return [i for i, row in enumerate(rows) if row.is_displayed()]


def _count(driver) -> int:
    return int(driver.find_element(_by().ID, "shown-count").text)


def test_browser_shows_table_highlights_and_plot(page):
    By = _by()
    assert page.find_element(By.TAG_NAME, "h1").text == "SST-2 robustness <test> & co"
    assert page.find_element(By.CSS_SELECTOR, "p.note").text == "Attacks ran with a 5 % budget & <no> LM constraint."
    cells = {cell.text: cell for cell in page.find_elements(By.CSS_SELECTOR, "#summary td")}
    assert {"0.812", "0.900", "0.500", "872", "\u2013"} <= set(cells)
    assert cells["0.812"].is_displayed()

    rows = page.find_elements(By.CSS_SELECTOR, "#examples tr.example")
    sub = rows[0].find_element(By.CSS_SELECTOR, "mark.sub")
    assert sub.is_displayed() and sub.text == "comical" and sub.get_attribute("title") == "was: funny"
    assert sub.value_of_css_property("background-color") not in ("rgba(0, 0, 0, 0)", "transparent")
    assert rows[0].find_element(By.CSS_SELECTOR, "mark.orig").text == "funny"
    assert rows[0].find_element(By.CSS_SELECTOR, ".prediction").text == "positive 0.90 \u2192 negative 0.70"
    assert rows[3].find_element(By.CSS_SELECTOR, ".prediction").text == "negative 0.80 \u2192 positive 0.55"
    assert SCRIPT_TEXT in rows[1].text  # shown as text, never run
    assert "premise: a man <b>plays</b> guitar" in rows[4].text

    img = page.find_element(By.CSS_SELECTOR, "figure img")
    assert img.is_displayed()
    assert page.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 0
    assert "higher is better" in page.find_element(By.TAG_NAME, "figcaption").text
    assert _count(page) == 6 and _shown(page) == list(range(6))


def test_browser_filters_hide_rows_and_count_them(page):
    from selenium.webdriver.support.ui import Select

    By = _by()
    outcome = Select(page.find_element(By.ID, "filter-outcome"))
    assert [o.text for o in outcome.options] == ["all", "succeeded", "failed", "skipped"]
    outcome.select_by_value("failed")
    assert _shown(page) == [1, 5] and _count(page) == 2
    Select(page.find_element(By.ID, "filter-run")).select_by_value("standard-seed0")
    assert _shown(page) == [5] and _count(page) == 1
    outcome.select_by_index(0)  # "all"
    assert _shown(page) == [3, 4, 5] and _count(page) == 3
    Select(page.find_element(By.ID, "filter-attack")).select_by_value("pwws")
    assert _shown(page) == [3] and _count(page) == 1


def test_browser_text_filter(page, browser, report_file):
    By = _by()
    page.find_element(By.ID, "filter-text").send_keys("COMICAL")  # adversarial text, other case
    assert _shown(page) == [0] and _count(page) == 1
    browser.get(report_file.as_uri())
    page.find_element(By.ID, "filter-text").send_keys("<script>")
    assert _shown(page) == [1] and _count(page) == 1
    browser.get(report_file.as_uri())
    page.find_element(By.ID, "filter-text").send_keys("a warm , t")  # spans words: plain text is searched
    assert _shown(page) == [5]
    page.find_element(By.ID, "filter-text").send_keys("xyz")
    assert _shown(page) == [] and _count(page) == 0


def test_screenshot(browser, report_file, tmp_path):
    out = screenshot(report_file, tmp_path / "shots" / "report.png", width=800, height=600)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert (width, height) == (800, 600)
