"""Text people type that the service repeats elsewhere: which characters a name may hold, and how
it goes into an e-mail Subject. One rule for file and workspace names alike."""

from __future__ import annotations

import unicodedata

# U+200D (zero-width joiner) is a format character, but emoji sequences such as 👩‍💻 need it.
_ALLOWED_FORMAT = "\u200d"


def _is_control(ch: str, *, line_separators: bool) -> bool:
    category = unicodedata.category(ch)
    if category in {"Cc", "Cf"}:
        return ch not in _ALLOWED_FORMAT
    return line_separators and category in {"Zl", "Zp"}


def has_control_characters(text: str, *, line_separators: bool) -> bool:
    """Whether ``text`` holds a control or format character (Unicode Cc/Cf; ZWJ excepted) and, with
    ``line_separators``, U+2028/U+2029 (Zl/Zp)."""
    return any(_is_control(ch, line_separators=line_separators) for ch in text)


def mail_subject(text: str) -> str:
    """``text`` on one line, every run of whitespace or control characters one space.

    Python's e-mail policy breaks a header at \\v, \\f and \\x1c-\\x1e as well as at CR/LF, so a
    name holding one would write its own, unfolded line into the header block; CR/LF makes Django
    refuse the message (BadHeaderError) after the caller has committed. Names are refused such
    characters on the way in, but rows stored earlier still hold them."""
    spaced = "".join(" " if _is_control(ch, line_separators=True) else ch for ch in text)
    return " ".join(spaced.split())
