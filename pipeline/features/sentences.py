"""MMRec's item sentence recipe: title + brand + the first category path + description.

MMRec's ``3feat-encoder`` notebook builds one sentence per item from its metadata and encodes
it with all-MiniLM-L6-v2. We follow the same recipe, with two clean-ups MMRec does not do:
HTML is stripped (Amazon 2018 descriptions and even titles carry tags and entities) and runs of
whitespace, newlines included, become one space.

The functions accept both the ingest table's fields (``categories`` = a list of strings, the first
path; ``description`` = a string) and the raw metadata forms (2014: ``categories`` = a list of
category paths, of which the first is used; 2018: ``description`` = a list of strings, joined
with a space), so the recipe can be checked directly on raw records.
"""

from __future__ import annotations

import html
import re
from typing import Any, Iterable, Sequence

# A tag: '<' then a letter, '/', '!' or '?', up to the next '>' -- or to the end of the text when
# the tag was cut off (Amazon 2018 titles hold fragments like '<span class="a-size-medium"').
_TAG = re.compile(r"<[A-Za-z/!?][^<>]*(?:>|$)")
_SPACE = re.compile(r"\s+")


def strip_html(text: str) -> str:
    """Remove tags (closed or cut off), decode entities, collapse whitespace to single spaces."""
    no_tags = _TAG.sub(" ", text)
    decoded = html.unescape(no_tags)
    # entities can decode to tags ('&lt;br&gt;'); strip once more, then normalise spaces
    decoded = _TAG.sub(" ", decoded)
    return _SPACE.sub(" ", decoded.replace("\xa0", " ")).strip()


def _first_path(categories: Any) -> list[str]:
    """The first category path, from a list of strings (ingest) or a list of paths (2014 meta)."""
    if categories is None:
        return []
    cats = list(categories)
    if cats and not isinstance(cats[0], str):  # 2014: [[path 1], [path 2], ...]
        cats = list(cats[0] or [])
    return [c for c in cats if isinstance(c, str)]


def _text(value: Any) -> str:
    """A text field as one string: None -> '', a list of strings (2018 description) -> joined."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, Iterable):
        return " ".join(v for v in value if isinstance(v, str))
    return str(value)


def item_sentence(
    title: Any = None, brand: Any = None, categories: Any = None, description: Any = None
) -> str:
    """MMRec's sentence for one item: title, brand, first category path, description, space-joined.

    Each part is cleaned with :func:`strip_html`; empty parts are skipped, so an item without any
    text gives ``""``.
    """
    parts = [_text(title), _text(brand), *_first_path(categories), _text(description)]
    cleaned = (strip_html(p) for p in parts)
    return " ".join(p for p in cleaned if p)


def item_sentences(items: Sequence[dict[str, Any]] | Any) -> list[str]:
    """Sentences for the rows of an ``items`` table (a polars frame or a list of dicts), in row order.

    Missing optional columns (title, brand, categories, description) count as empty.
    """
    rows = items.to_dicts() if hasattr(items, "to_dicts") else list(items)
    return [
        item_sentence(r.get("title"), r.get("brand"), r.get("categories"), r.get("description"))
        for r in rows
    ]
