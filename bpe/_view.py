"""What `bpe show` and `bpe inspect` print: token boundaries in a text, vocabulary statistics.

>>> units_ = [(b"Hi", [1]), (b" there", [2])]
>>> plain(units_)
'Hi| there'
"""

from __future__ import annotations

import collections
import html as _html
import unicodedata

_BACKGROUNDS = (153, 186, 217, 152, 223)  # light xterm-256 colours that keep text readable


def units(enc, ids: list[int]) -> list[tuple[bytes, list[int]]]:
    """Tokens grouped so that each group is whole UTF-8 text: a character cut between two
    tokens is shown once, with both ids. ``[(token bytes, [ids]), ...]``"""
    out: list[tuple[bytes, list[int]]] = []
    pending, pending_ids = b"", []
    for token_id in ids:
        pending += enc.decode_single_token_bytes(token_id)
        pending_ids.append(token_id)
        try:
            pending.decode("utf-8")
        except UnicodeDecodeError as e:
            if e.reason == "unexpected end of data" and len(pending) - e.start < 4:
                continue  # the character goes on in the next token
        out.append((pending, pending_ids))
        pending, pending_ids = b"", []
    if pending:
        out.append((pending, pending_ids))
    return out


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def plain(units_: list[tuple[bytes, list[int]]]) -> str:
    """The text with ``|`` between tokens."""
    return "|".join(_text(data) for data, _ in units_)


def terminal(units_: list[tuple[bytes, list[int]]]) -> str:
    """The text with each token on a background colour, alternating."""
    parts = []
    for k, (data, _) in enumerate(units_):
        colour = f"\x1b[30;48;5;{_BACKGROUNDS[k % len(_BACKGROUNDS)]}m"
        # Newlines end the colour first, so that it does not fill the rest of the line.
        lines = _text(data).split("\n")
        parts.append("\n".join(colour + line.replace("\t", "→   ") + "\x1b[0m" if line else "" for line in lines))
    return "".join(parts)


def html(units_: list[tuple[bytes, list[int]]], name: str, text: str) -> str:
    """A page with the text, each token a coloured span whose tooltip gives its id."""
    spans = []
    for k, (data, ids) in enumerate(units_):
        title = ", ".join(f"id {i}" for i in ids) + f" · {len(data)} bytes · {data!r}"
        spans.append(f'<span class="t{k % len(_BACKGROUNDS)}" title="{_html.escape(title)}">'
                     f"{_html.escape(_text(data))}</span>")
    n_tokens = sum(len(ids) for _, ids in units_)
    colours = "\n".join(
        f".t{k} {{ background: hsl({k * 72 + 190}, 70%, 85%); }}" for k in range(len(_BACKGROUNDS)))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{_html.escape(name)}: {n_tokens} tokens</title>
<style>
body {{ font: 15px/1.6 ui-monospace, monospace; margin: 2em; }}
pre {{ white-space: pre-wrap; word-break: break-all; }}
span:hover {{ outline: 2px solid #333; }}
{colours}
</style></head><body>
<p>{_html.escape(name)}: {n_tokens:,} tokens, {len(text.encode('utf-8')):,} bytes. Hover a token for its id.</p>
<pre>{''.join(spans)}</pre>
</body></html>
"""


def _script(ch: str) -> str:
    """A rough script name from the character's Unicode name: 'LATIN', 'CJK', 'CYRILLIC'..."""
    try:
        name = unicodedata.name(ch)
    except ValueError:
        return "unnamed"
    return name.split(" ")[0]


def inspect(enc, top: int = 10) -> dict:
    """Statistics of a vocabulary, as a dict (``bpe inspect --json`` prints it)."""
    tokens = enc.mergeable_ranks
    lengths = collections.Counter(len(t) for t in tokens)
    longest = sorted(tokens, key=lambda t: (-len(t), tokens[t]))[:top]
    scripts: collections.Counter = collections.Counter()
    valid = leading_space = digits = 0
    for t in tokens:
        leading_space += t.startswith(b" ")
        try:
            text = t.decode("utf-8")
        except UnicodeDecodeError:
            continue
        valid += 1
        letter = next((c for c in text if c.isalpha()), None)
        if letter is not None:
            scripts[_script(letter)] += 1
        elif any(c.isdigit() for c in text):
            digits += 1
    n = len(tokens)
    return {
        "name": enc.name,
        "n_vocab": enc.n_vocab,
        "mergeable_tokens": n,
        "special_tokens": dict(sorted(enc.special_tokens.items(), key=lambda kv: kv[1])),
        "pattern": enc.pat_str,
        "length_histogram": {str(k): lengths[k] for k in sorted(lengths)},
        "mean_length": round(sum(k * v for k, v in lengths.items()) / max(n, 1), 3),
        "longest": [{"id": tokens[t], "bytes": len(t), "text": _text(t)} for t in longest],
        "leading_space_share": round(leading_space / max(n, 1), 4),
        "valid_utf8_share": round(valid / max(n, 1), 4),
        "tokens_with_digits_only": digits,
        "scripts": dict(scripts.most_common()),
    }


def format_report(r: dict) -> str:
    """The report of :func:`inspect` for a terminal."""
    lines = [f"{r['name']}: {r['n_vocab']:,} ids, {r['mergeable_tokens']:,} mergeable tokens, "
             f"{len(r['special_tokens'])} special"]
    for text, token_id in r["special_tokens"].items():
        lines.append(f"  special {token_id:>8}  {text}")
    lines.append(f"mean token length {r['mean_length']} bytes; {r['leading_space_share']:.1%} start "
                 f"with a space; {r['valid_utf8_share']:.1%} are whole UTF-8 text")
    lines.append("token length (bytes):")
    hist = {int(k): v for k, v in r["length_histogram"].items()}
    peak = max(hist.values())
    for k in sorted(hist):
        if k > 24 and hist[k] * 1000 < peak:
            continue
        lines.append(f"  {k:>4}  {hist[k]:>8,}  {'#' * max(1, round(40 * hist[k] / peak))}")
    longer = sum(v for k, v in hist.items() if k > 24 and v * 1000 < peak)
    if longer:
        lines.append(f"  (and {longer:,} rarer tokens longer than 24 bytes)")
    lines.append("longest tokens:")
    for t in r["longest"]:
        lines.append(f"  {t['id']:>8}  {t['bytes']:>4} bytes  {t['text']!r}")
    lines.append("scripts (by the first letter of each token):")
    total = sum(r["scripts"].values()) or 1
    shown = list(r["scripts"].items())
    for name, count in shown[:15]:
        lines.append(f"  {name:<14} {count:>8,}  {count / total:6.1%}")
    if len(shown) > 15:
        rest = sum(c for _, c in shown[15:])
        lines.append(f"  {len(shown) - 15} more scripts: {rest:,} tokens")
    return "\n".join(lines)
