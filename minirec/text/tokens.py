"""Token bounds and estimates for OpenAI embedding requests without a tokenizer.

The exact count needs the model's BPE tokenizer (tiktoken), which minirec does not depend on.
Two cheaper numbers replace it:

* ``token_upper_bound`` is the text's UTF-8 byte count. Every byte-level BPE token covers
  at least one byte, so no text has more tokens than bytes. Limits enforced with it
  (input truncation, tokens per request) therefore always hold.
* ``estimate_tokens`` is one token per four UTF-8 bytes, rounded up, which is a common rule
  of thumb for English text. It is used only to estimate cost. It can be far off for
  other scripts, for numbers and for code.
"""

import math

BYTES_PER_TOKEN_ESTIMATE = 4


def token_upper_bound(text: str) -> int:
    """Return an upper bound on the BPE token count of ``text`` (its UTF-8 byte count)."""
    return len(text.encode("utf-8"))


def estimate_tokens(text: str) -> int:
    """Estimate the token count of ``text`` as ceil(UTF-8 bytes / 4).

    This is a rough estimate for cost reporting, not a bound: use ``token_upper_bound``
    for anything that must stay under an API limit.
    """
    return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN_ESTIMATE)


def truncate_to_token_bound(text: str, max_tokens: int) -> tuple[str, bool]:
    """Cut ``text`` so that its token upper bound is at most ``max_tokens``.

    The cut keeps the longest prefix of at most ``max_tokens`` UTF-8 bytes and never
    splits a multi-byte character. Because the bound counts bytes, a text past
    ``max_tokens`` bytes is cut even when its real token count would fit.

    Returns
    -------
    tuple of (str, bool)
        The possibly shortened text, and whether it was cut.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    encoded = text.encode("utf-8")
    if len(encoded) <= max_tokens:
        return text, False
    # errors="ignore" drops the partial character that the byte cut may leave at the end.
    return encoded[:max_tokens].decode("utf-8", errors="ignore"), True
