from riftkit.data import detokenize, words


def test_lowercases_and_splits_punctuation():
    assert words("This movie is TERRIBLE!") == ["this", "movie", "is", "terrible", "!"]


def test_removes_imdb_line_breaks():
    assert words("Great.<br /><br />Really<br/>good<BR>") == ["great", ".", "really", "good"]


def test_keeps_inner_apostrophes_and_splits_other_symbols():
    assert words("Don't rate it 10/10, it's (just) ok...") == [
        "don't", "rate", "it", "10", "/", "10", ",", "it's", "(", "just", ")", "ok", ".", ".", ".",
    ]


def test_unicode_letters_and_normalisation():
    # NFKC folds the ligature; accented letters stay letters of one word
    assert words("Café ﬁlm naïve") == ["café", "film", "naïve"]


def test_idempotent_on_its_own_output():
    text = "It's a GREAT film!<br />Don't miss it -- 10/10 (really)."
    once = words(text)
    assert words(detokenize(once)) == once


def test_whitespace_only_is_empty():
    assert words("  \n\t ") == []
    assert words("<br />") == []
