"""Missing values in CSV text: the tokens that mean "no value", the same for training data and batch input.

The tokens are pandas.read_csv's default `na_values` (checked against pandas 3.1.1 in the tests), so a CSV
reads here as it does in a notebook. Cells are compared after stripping spaces, case-sensitively, as pandas
does. JSON input has its own missing value, null; a JSON string is always a value.
"""

from __future__ import annotations

from collections.abc import Iterable

NA_VALUES = frozenset(
    {
        "",
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    }
)


def missing_tokens(extra: Iterable[str] = ()) -> frozenset[str]:
    """The default tokens plus the caller's own (for example '?' or '-')."""
    extra = [t.strip() for t in extra]
    return NA_VALUES | frozenset(extra) if extra else NA_VALUES


def parse_tokens(text: str | None) -> tuple[str, ...]:
    """A comma-separated option value as tokens: '?,-' -> ('?', '-')."""
    if not text:
        return ()
    return tuple(t.strip() for t in text.split(",") if t.strip())
