"""One definition per concept: a shared type or constant has one home that every other module imports."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "riftkit"


def _defined_in(name: str) -> list[str]:
    """The modules of riftkit that assign ``name`` at their top level."""
    homes = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            names += [e.id for t in targets if isinstance(t, ast.Tuple) for e in t.elts if isinstance(e, ast.Name)]
            if name in names:
                homes.append(str(path.relative_to(PACKAGE)))
    return homes


@pytest.mark.parametrize("name, home", [("Segments", "data/examples.py"), ("OUTCOMES", "evaluation/outcomes.py"),
                                        ("SUCCEEDED", "evaluation/outcomes.py")])
def test_defined_once(name, home):
    assert _defined_in(name) == [home]


def test_segments_is_the_one_type_everywhere():
    from riftkit.attacks import base, queries, transformation
    from riftkit.data import examples
    from riftkit.models import words

    assert words.Segments is queries.Segments is transformation.Segments is base.Segments is examples.Segments


def test_the_report_lists_outcomes_in_a_display_order_of_the_one_definition():
    from riftkit.evaluation.outcomes import FAILED, OUTCOME_DISPLAY_ORDER, OUTCOMES, SKIPPED, SUCCEEDED
    from riftkit.reports.html import ReportData, render_html

    assert sorted(OUTCOME_DISPLAY_ORDER) == sorted(OUTCOMES) and OUTCOME_DISPLAY_ORDER == (SUCCEEDED, FAILED, SKIPPED)
    examples = [{"run": "r", "attack": "a", "outcome": o, "label": 0, "original": "x"} for o in (SKIPPED, "odd", FAILED, SUCCEEDED)]
    page = render_html(ReportData("t", [], [], examples=examples))
    filter_html = page[page.index('id="filter-outcome"'):]
    positions = [filter_html.index(f'value="{o}"') for o in (SUCCEEDED, FAILED, SKIPPED, "odd")]
    assert positions == sorted(positions)  # the display order, then others in order of appearance
