"""A self-contained HTML report: summary table, plots and browsable adversarial examples.

:func:`render_html` turns a :class:`ReportData` into one HTML page that needs
nothing else to be viewed: plots are embedded as base64 ``data:`` URIs, and the
CSS and the (framework-free) JavaScript are inline, so the file can be opened
from disk or mailed around with no network.

The page shows, in order:

* the title and the notes (plain-text paragraphs);
* the summary table, ``<table id="summary">``, one ``<tr>`` per row, floats as
  ``0.xxx`` and missing values as an en dash;
* each plot as a ``<figure>`` with its caption;
* the adversarial examples, ``<table id="examples">`` with one
  ``<tr class="example">`` per example: run, attack, outcome, gold label, the
  original text with each replaced word in ``<mark class="orig">``, the
  adversarial text with each substitute in ``<mark class="sub" title="was: …">``,
  and both predictions with their probability ("positive 0.90 → negative 0.70").
  Above them, filters by run, attack, outcome and by a substring of the
  original or adversarial text, and a counter ``<span id="shown-count">`` of
  the rows shown. Each filter change is a single O(n) pass over the rows, so
  pages with tens of thousands of examples stay usable.

All text that comes from data is escaped with :func:`html.escape`; no data is
ever written inside the ``<script>`` element.
"""

from __future__ import annotations

import base64
import html
import numbers
from dataclasses import dataclass, field
from pathlib import Path

# The outcomes' one definition; the filter lists them in OUTCOME_DISPLAY_ORDER (others follow in order of appearance).
from ..evaluation.outcomes import OUTCOME_DISPLAY_ORDER, OUTCOMES

MISSING = "\u2013"  # en dash: a value the row does not have
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REQUIRED_EXAMPLE_KEYS = ("run", "attack", "outcome", "label", "original")


@dataclass
class Plot:
    title: str
    png: bytes  # embedded as a base64 data: URI (no network at view time)
    caption: str = ""


@dataclass
class ReportData:
    title: str
    columns: list[tuple[str, str]]  # (key in a row dict, column header shown)
    rows: list[dict]  # str, int, float (shown as 0.xxx) or None (shown as "–")
    plots: list[Plot] = field(default_factory=list)
    examples: list[dict] = field(default_factory=list)  # attack-log records plus "run" and "attack"
    notes: list[str] = field(default_factory=list)  # plain-text paragraphs under the title
    label_names: list[str] = field(default_factory=list)  # class names, index = label id


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def format_value(value) -> str:
    """A table cell's text: floats with 3 decimals, None as an en dash, anything else as ``str``."""
    if value is None:
        return MISSING
    if isinstance(value, bool) or isinstance(value, numbers.Integral):
        return str(value)
    if isinstance(value, numbers.Real):
        return f"{float(value):.3f}"
    return str(value)


def _label(label_names: list[str], label) -> str:
    if isinstance(label, numbers.Integral) and not isinstance(label, bool) and 0 <= int(label) < len(label_names):
        return label_names[int(label)]
    return str(label)


def _prediction(label_names: list[str], prediction, probs) -> str:
    """"positive 0.90", or only the label name when the log has no probabilities."""
    if prediction is None:
        return MISSING
    text = _label(label_names, prediction)
    if probs is not None and isinstance(prediction, numbers.Integral) and 0 <= int(prediction) < len(probs):
        text += f" {float(probs[int(prediction)]):.2f}"
    return text


def _marked(words: list[str], marks: dict[int, tuple[str, str]]) -> str:
    """The words joined by single spaces, those at ``marks`` positions wrapped as ``<mark class=… title=…>``."""
    out = []
    for i, word in enumerate(words):
        if i in marks:
            css, title = marks[i]
            title_attr = f' title="{_e(title)}"' if title else ""
            out.append(f'<mark class="{css}"{title_attr}>{_e(word)}</mark>')
        else:
            out.append(_e(word))
    return " ".join(out)


def _ordered(values, first=()) -> list[str]:
    """Distinct values: those in ``first`` (in that order) that occur, then the rest by first appearance."""
    seen = dict.fromkeys(str(v) for v in values)
    return [v for v in first if v in seen] + [v for v in seen if v not in first]


def _render_example(index: int, example: dict, label_names: list[str]) -> str:
    missing = [key for key in REQUIRED_EXAMPLE_KEYS if key not in example]
    if missing:
        raise ValueError(f"example {index} (uid {example.get('uid', '?')!r}) lacks {', '.join(missing)}")
    original = str(example["original"]).split(" ")
    adversarial_text = example.get("adversarial")
    adversarial = original if adversarial_text is None else str(adversarial_text).split(" ")
    orig_marks: dict[int, tuple[str, str]] = {}
    sub_marks: dict[int, tuple[str, str]] = {}
    for sub in example.get("substitutions") or ():
        position, old, new = int(sub[0]), str(sub[1]), str(sub[2])
        if not (0 <= position < len(original) and position < len(adversarial)) or original[position] != old or adversarial[position] != new:
            raise ValueError(f"example {index} (uid {example.get('uid', '?')!r}): substitution {list(sub)!r} does not match its texts")
        orig_marks[position] = ("orig", f"now: {new}")
        sub_marks[position] = ("sub", f"was: {old}")

    outcome = str(example["outcome"])
    outcome_css = f"outcome-{outcome}" if outcome in OUTCOMES else "outcome-other"
    context = example.get("context") or {}
    context_html = "".join(f'<p class="context"><span class="seg">{_e(name)}:</span> {_e(text)}</p>' for name, text in context.items())
    before = _prediction(label_names, example.get("original_prediction"), example.get("original_probs"))
    after = _prediction(label_names, example.get("adversarial_prediction"), example.get("adversarial_probs"))
    n_subs = len(sub_marks)
    uid = example.get("uid")
    return (
        f'<tr class="example" data-run="{_e(example["run"])}" data-attack="{_e(example["attack"])}" data-outcome="{_e(outcome)}">'
        f'<td class="num">{index + 1}</td>'
        f'<td>{_e(example["run"])}</td>'
        f'<td>{_e(example["attack"])}</td>'
        f'<td><span class="outcome {outcome_css}">{_e(outcome)}</span></td>'
        f'<td class="gold">{_e(_label(label_names, example["label"]))}</td>'
        f"<td>{context_html}"
        f'<p class="text"><span class="seg">original:</span> <span class="original">{_marked(original, orig_marks)}</span></p>'
        f'<p class="text"><span class="seg">adversarial:</span> <span class="adversarial">{_marked(adversarial, sub_marks)}</span></p>'
        f'<p class="meta">{n_subs} substitution{"" if n_subs == 1 else "s"}{f" · {_e(uid)}" if uid is not None else ""}</p></td>'
        f'<td class="prediction">{_e(before)} \u2192 {_e(after)}</td>'
        "</tr>"
    )


def _select(element_id: str, label: str, values: list[str]) -> str:
    options = '<option value="">all</option>' + "".join(f'<option value="{_e(v)}">{_e(v)}</option>' for v in values)
    return f'<label>{_e(label)} <select id="{element_id}" autocomplete="off">{options}</select></label>'


CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1400px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.6em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { display: inline-block; margin: 0.5em 1em 1em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #444; }
#filters { margin: 0.6em 0; display: flex; flex-wrap: wrap; gap: 1em; align-items: center; }
#examples { width: 100%; table-layout: fixed; }
#examples col.c-idx { width: 3.5em; } #examples col.c-run, #examples col.c-attack { width: 9em; }
#examples col.c-outcome { width: 7.5em; } #examples col.c-gold { width: 7em; } #examples col.c-pred { width: 14em; }
#examples td { overflow-wrap: break-word; }
#examples p { margin: 0.15em 0; }
.seg { color: #777; font-size: 0.85em; }
.meta { color: #777; font-size: 0.8em; }
.context { color: #555; }
mark.sub { background: #b6f2b0; font-weight: 600; }
mark.orig { background: #ffd0d0; }
.outcome { padding: 0 0.3em; border-radius: 3px; }
.outcome-succeeded { background: #ffd0d0; } .outcome-failed { background: #d6ecff; } .outcome-skipped { background: #eee; }
"""

# Static code only: no data is ever interpolated here (so nothing can close the script element).
SCRIPT = """
(function () {
  "use strict";
  var rows = Array.prototype.slice.call(document.querySelectorAll("#examples tr.example"));
  var texts = rows.map(function (row) {
    var o = row.querySelector(".original"), a = row.querySelector(".adversarial");
    return ((o ? o.textContent : "") + "\\n" + (a ? a.textContent : "")).toLowerCase();
  });
  var run = document.getElementById("filter-run"), attack = document.getElementById("filter-attack");
  var outcome = document.getElementById("filter-outcome"), text = document.getElementById("filter-text");
  var count = document.getElementById("shown-count");
  function apply() {
    var r = run.value, at = attack.value, oc = outcome.value, q = text.value.toLowerCase(), shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var d = rows[i].dataset;
      var ok = (r === "" || d.run === r) && (at === "" || d.attack === at) && (oc === "" || d.outcome === oc)
        && (q === "" || texts[i].indexOf(q) !== -1);
      rows[i].style.display = ok ? "" : "none";
      if (ok) { shown++; }
    }
    count.textContent = String(shown);
  }
  [run, attack, outcome].forEach(function (el) { el.addEventListener("change", apply); });
  text.addEventListener("input", apply);
  apply();
})();
"""


def render_html(data: ReportData) -> str:
    """Render the report as one self-contained HTML page.

    Args:
        data: what to show. Row values may be str, int, float or None; a row
            without a column's key shows an en dash. Examples need the keys
            ``run``, ``attack``, ``outcome``, ``label`` and ``original``; the
            others (``adversarial``, ``substitutions``, predictions, ``*_probs``,
            ``context``, ``uid``) are optional.

    Returns:
        The HTML document as a string (no external resources).

    Raises:
        ValueError: a plot's ``png`` is not PNG bytes, an example lacks a
            required key, or a substitution's position and words do not match
            the example's original and adversarial texts.
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(data.title)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{_e(data.title)}</h1>",
    ]
    parts += [f'<p class="note">{_e(note)}</p>' for note in data.notes]

    parts.append("<h2>Summary</h2>")
    parts.append('<table id="summary"><thead><tr>' + "".join(f"<th>{_e(header)}</th>" for _, header in data.columns) + "</tr></thead><tbody>")
    for row in data.rows:
        cells = []
        for key, _ in data.columns:
            value = row.get(key)
            numeric = isinstance(value, numbers.Real) and not isinstance(value, bool)
            cells.append(f'<td class="num">{_e(format_value(value))}</td>' if numeric else f"<td>{_e(format_value(value))}</td>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table>")

    if data.plots:
        parts.append("<h2>Plots</h2>")
        for plot in data.plots:
            if not isinstance(plot.png, (bytes, bytearray)) or not bytes(plot.png).startswith(PNG_SIGNATURE):
                raise ValueError(f"plot {plot.title!r}: png must be the bytes of a PNG image")
            encoded = base64.b64encode(bytes(plot.png)).decode("ascii")
            caption = _e(plot.title) + (f" \u2014 {_e(plot.caption)}" if plot.caption else "")
            parts.append(f'<figure><img src="data:image/png;base64,{encoded}" alt="{_e(plot.title)}"><figcaption>{caption}</figcaption></figure>')

    parts.append("<h2>Adversarial examples</h2>")
    if not data.examples:
        parts.append('<p class="note">No adversarial examples in this report.</p>')
    else:
        rendered = [_render_example(i, ex, data.label_names) for i, ex in enumerate(data.examples)]
        total = len(rendered)
        parts.append(
            '<div id="filters">'
            + _select("filter-run", "run", _ordered(ex["run"] for ex in data.examples))
            + _select("filter-attack", "attack", _ordered(ex["attack"] for ex in data.examples))
            + _select("filter-outcome", "outcome", _ordered((ex["outcome"] for ex in data.examples), OUTCOME_DISPLAY_ORDER))
            + '<label>text contains <input id="filter-text" type="search" autocomplete="off" placeholder="word or phrase"></label>'
            + f'<span>showing <span id="shown-count">{total}</span> of {total} examples</span>'
            + "</div>"
        )
        parts.append(
            '<table id="examples"><colgroup><col class="c-idx"><col class="c-run"><col class="c-attack"><col class="c-outcome">'
            '<col class="c-gold"><col class="c-text"><col class="c-pred"></colgroup>'
            "<thead><tr><th>#</th><th>run</th><th>attack</th><th>outcome</th><th>gold label</th><th>text</th>"
            "<th>prediction: original \u2192 adversarial</th></tr></thead><tbody>"
        )
        parts += rendered
        parts.append("</tbody></table>")
        parts.append(f"<script>{SCRIPT}</script>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(data: ReportData, path: str | Path) -> Path:
    """Render the report and write it to ``path`` as UTF-8, creating parent folders.

    Args:
        data: the report's content (see :func:`render_html`).
        path: the HTML file to write; an existing file is replaced.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: as :func:`render_html`.
        OSError: the file or its folder cannot be written.
    """
    path = Path(path)
    text = render_html(data)  # render first: a bad input leaves no half-written file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
