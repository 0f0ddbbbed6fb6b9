import json

import pytest

from riftkit.data import Example
from riftkit.substitutions import SubstitutionSet, load_substitutions


def test_counterfitted_set_from_the_data_directory(data_dir):
    subs = load_substitutions("counterfitted", data_dir)
    assert len(subs) == 25591  # words with at least one substitute (PROVENANCE.md)
    assert "dreadful" in subs["terrible"] and len(subs["terrible"]) <= 8
    assert subs["the"] == () and subs["no-such-word-xyz"] == ()


def test_lookup_removes_self_and_duplicates_and_restricts():
    subs = SubstitutionSet({"good": ["good", "fine", "nice", "fine"], "bad": ["poor"], "the": []})
    assert subs["good"] == ("fine", "nice") and "the" not in subs and len(subs) == 2
    small = subs.restrict({"good", "nice", "bad"})
    assert small["good"] == ("nice",) and "bad" not in small


def test_coverage_counts_words_of_the_chosen_segment():
    subs = SubstitutionSet({"good": ["fine", "nice"], "film": ["movie"]})
    examples = [Example((("a", "good", "film"), ("good",)), 0), Example((("the", "end"), ("x",)), 1)]
    everything = subs.coverage(examples)
    assert everything["words"] == 7 and everything["share_of_words_with_substitutes"] == pytest.approx(3 / 7)
    hypothesis = subs.coverage(examples, segment=1)
    assert hypothesis["words"] == 2 and hypothesis["substitutes_per_substitutable_word"] == 2.0


def test_bad_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="RIFTKIT_DATA_DIR"):
        load_substitutions("counterfitted", tmp_path)
    bad = tmp_path / "s.json"
    bad.write_text('{"good": ["fine",]}')
    with pytest.raises(ValueError, match="s.json, line 1"):
        load_substitutions(str(bad))
    bad.write_text(json.dumps({"good": "fine"}))
    with pytest.raises(ValueError, match="entry 'good'"):
        load_substitutions(str(bad))
