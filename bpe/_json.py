"""Reading JSON from files of unknown origin: every failure is a ValueError naming the file.

``json.loads`` alone raises RecursionError on deeply nested input and a ValueError that
names no file for integers of thousands of digits.

>>> loads('{"a": 1}', "x.json")
{'a': 1}
>>> loads("[" * 100000, "deep.json")
Traceback (most recent call last):
ValueError: deep.json: not JSON (nested too deeply)
"""

from __future__ import annotations

import json
from typing import Any


def loads(text: str | bytes, source: str, what: str = "JSON") -> Any:
    """``json.loads(text)``, or a ValueError that starts with ``source``: "not ``what``"."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(f"{source}: not {what} (nested too deeply)") from None
    except ValueError as e:  # JSONDecodeError, an integer too long to convert, bad UTF-8
        raise ValueError(f"{source}: not {what} ({e})") from None


def describe(node: Any) -> str:
    """A short text for a JSON value in an error message."""
    try:
        text = json.dumps(node)
    except (TypeError, ValueError, RecursionError):
        text = repr(node)
    return text if len(text) <= 120 else text[:117] + "..."
