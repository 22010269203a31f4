"""Token-to-unit alignment through offsets: properties over many tokenizers and awkward texts."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmbrain.errors import DataError
from lmbrain.features.alignment import align_tokens, join_units, normalize_unit

# letters, accented and CJK characters, digits, quotes, apostrophes, dashes and other punctuation, emoji
ALPHABET = [*list("abcXYZéüñçø日本語ß0123456789.,;:!?'\"“”‘’«»()-—–/&%$…"), "😀", "ﬁ"]
word = st.text(alphabet=ALPHABET, min_size=1, max_size=12)
words = st.lists(word, min_size=1, max_size=12)


def _check_alignment(tokenizer, units):
    joined = join_units(units)
    enc = tokenizer(joined.text, return_offsets_mapping=True, return_special_tokens_mask=True)
    owned = align_tokens(joined.text, joined.spans, enc["offset_mapping"], enc["special_tokens_mask"])
    seen = set()
    for (a, b), tokens in zip(joined.spans, owned, strict=True):
        assert tokens, "every unit gets at least one token"
        covered = set()
        for t in tokens:
            s, e = enc["offset_mapping"][t]
            assert not enc["special_tokens_mask"][t]
            # the token's non-space characters lie inside the unit; a whitespace-only token lies before it
            inner = [i for i in range(s, e) if not joined.text[i].isspace()]
            assert (a <= min(inner) and max(inner) < b) if inner else e <= b
            covered.update(inner)
            assert t not in seen, "units are space-separated: a token belongs to one unit"
            seen.add(t)
        # every character of the unit that the tokenizer keeps is covered by the unit's own tokens
        kept = {i for t in range(len(enc["input_ids"])) for i in range(*enc["offset_mapping"][t])}
        assert {i for i in range(a, b) if i in kept} <= covered
        assert tokens == sorted(tokens)
    # tokens of consecutive units come in order, and the units' tokens partition the non-special tokens
    firsts = [tokens[0] for tokens in owned]
    assert firsts == sorted(firsts)
    assert seen == {
        t for t, m in enumerate(enc["special_tokens_mask"]) if not m and enc["offset_mapping"][t][1] > 0
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(units=words)
def test_byte_level_bpe_alignment_properties(smol_tokenizer, units):
    _check_alignment(smol_tokenizer, units)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(units=words)
def test_wordpiece_with_special_tokens_alignment_properties(minilm_tokenizer, units):
    _check_alignment(minilm_tokenizer, units)


def test_known_split_of_contraction_and_quotes(minilm_tokenizer):
    units = ["“Didn't", "Mary’s", "café…”"]
    joined = join_units(units)
    enc = minilm_tokenizer(joined.text, return_offsets_mapping=True, return_special_tokens_mask=True)
    owned = align_tokens(joined.text, joined.spans, enc["offset_mapping"], enc["special_tokens_mask"])
    pieces = [
        minilm_tokenizer.convert_ids_to_tokens([enc["input_ids"][t] for t in tokens]) for tokens in owned
    ]
    assert pieces == [["“", "didn", "'", "t"], ["mary", "’", "s"], ["cafe", "…", "”"]]
    assert 0 not in owned[0] and len(enc["input_ids"]) - 1 not in owned[-1]  # [CLS] and [SEP] belong to none


def test_normalisation_strips_and_collapses_whitespace():
    assert normalize_unit("  Players call\t it  a\n squeezebox. ") == "Players call it a squeezebox."
    joined = join_units(["a", "bc", "d"])
    assert joined.text == "a bc d" and [joined.text[s:e] for s, e in joined.spans] == ["a", "bc", "d"]


@pytest.mark.parametrize("bad", ["", "   ", None, 3.0])
def test_empty_or_non_text_unit_is_a_data_error(bad):
    with pytest.raises(DataError, match="unit 7"):
        normalize_unit(bad, 7)


def test_unit_the_tokenizer_drops_gets_no_token(minilm_tokenizer):
    joined = join_units(["ok", "\u200b"])  # BERT's normaliser deletes zero-width spaces
    enc = minilm_tokenizer(joined.text, return_offsets_mapping=True, return_special_tokens_mask=True)
    owned = align_tokens(joined.text, joined.spans, enc["offset_mapping"], enc["special_tokens_mask"])
    assert owned[0] and owned[1] == []
