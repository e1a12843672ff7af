"""bpe in tiktoken's place: typical user code, with ``bpe`` installed as ``sys.modules["tiktoken"]``.

Runs in a fresh interpreter (the swap would otherwise leak into the other tests), with a
``tiktoken_ext`` plugin package made by the test on its path.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

PLUGIN = '''
ENCODING_CONSTRUCTORS = {
    "tiny_plugin": lambda: dict(
        name="tiny_plugin",
        pat_str=r"\\S+|\\s+",
        mergeable_ranks={bytes([b]): b for b in range(256)} | {b"hi": 256},
        special_tokens={"<|end|>": 257},
    ),
}
'''

USER_CODE = r'''
import pickle, sys
import bpe
sys.modules["tiktoken"] = bpe
for name in ("load", "model", "registry", "core"):
    sys.modules["tiktoken." + name] = getattr(bpe, name) if hasattr(bpe, name) else __import__("bpe." + name, fromlist=["x"])

import tiktoken
from tiktoken.load import load_tiktoken_bpe, dump_tiktoken_bpe
from tiktoken.model import encoding_for_model, MODEL_TO_ENCODING

enc = tiktoken.get_encoding("cl100k_base")
assert enc.encode("hello world") == [15339, 1917]
assert tiktoken.encoding_for_model("gpt-4o").encode("hello world") == [24912, 2375]
assert encoding_for_model("gpt-4") is enc and MODEL_TO_ENCODING["gpt-4"] == "cl100k_base"

# a custom Encoding from a rank file, as tiktoken's README shows
dump_tiktoken_bpe(enc._mergeable_ranks, "cl100k.tiktoken")
custom = tiktoken.Encoding(name="cl100k_im", pat_str=enc._pat_str,
                           mergeable_ranks=load_tiktoken_bpe("cl100k.tiktoken"),
                           special_tokens={**enc._special_tokens, "<|im_start|>": 100264, "<|im_end|>": 100265})
ids = custom.encode("<|im_start|>user hi<|im_end|>", allowed_special="all")
assert ids[0] == 100264 and ids[-1] == 100265 and custom.decode(ids) == "<|im_start|>user hi<|im_end|>"
try:
    custom.encode("<|im_start|>")
except ValueError as e:
    assert "disallowed special token" in str(e)
else:
    raise AssertionError("special token text must be refused by default")

# pickling: a named encoding by name, a custom one by value
assert pickle.loads(pickle.dumps(enc)).encode("hello world") == [15339, 1917]
assert len(pickle.dumps(enc)) < 200  # by name, not by value
assert pickle.loads(pickle.dumps(custom)).encode("hello") == custom.encode("hello")

# batches, bytes
texts = ["hello world", "goodbye", "中文 text"]
assert enc.encode_batch(texts) == [enc.encode(t) for t in texts]
assert enc.decode_batch(enc.encode_ordinary_batch(texts)) == texts
assert enc.decode_bytes(enc._encode_bytes(b"ab\xff\xfe cd")) == b"ab\xff\xfe cd"

# the plugin made by the test
assert "tiny_plugin" in tiktoken.list_encoding_names()
tiny = tiktoken.get_encoding("tiny_plugin")
assert tiny.encode("hi hi<|end|>", allowed_special="all") == [256, 32, 256, 257]
try:
    tiktoken.get_encoding("no_such_encoding")
except ValueError as e:
    assert str(e).startswith("Unknown encoding no_such_encoding.")
print("drop-in ok")
'''


def test_user_code_runs_with_bpe_as_tiktoken(tmp_path):
    (tmp_path / "plugins" / "tiktoken_ext").mkdir(parents=True)
    (tmp_path / "plugins" / "tiktoken_ext" / "tiny_plugin.py").write_text(textwrap.dedent(PLUGIN))
    code = f"import sys; sys.path.insert(0, {str(tmp_path / 'plugins')!r})\n" + USER_CODE
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().endswith("drop-in ok")


def test_educational_names_over_the_reference(capsys):
    from bpe import _educational, get_encoding

    enc = get_encoding("cl100k_base")
    simple = _educational.SimpleBytePairEncoding.from_tiktoken(enc)
    text = "hello world, 中文 and émigrés"
    assert simple.encode(text, visualise=None) == enc.encode_ordinary(text)
    assert simple.decode(simple.encode(text, visualise=None)) == text
    assert _educational.bpe_encode(enc._mergeable_ranks, b"hello", visualise="simple") == [15339]
    shown = capsys.readouterr().out
    assert "[b'h', b'e', b'l', b'l', b'o']" in shown and "[b'hello']" in shown
    trained = _educational.SimpleBytePairEncoding.train("low lower lowest " * 20, 270, r"\S+|\s+")
    assert len(trained.mergeable_ranks) == 262  # six merges build all three words; then no pair is left
    assert trained.encode("lowest", visualise=None) == [trained.mergeable_ranks[b"lowest"]]
    assert _educational.train_simple_encoding().decode_bytes([104]) == b"h"


def test_encode_bytes_equals_tiktoken_and_round_trips_any_bytes():
    from hypothesis import given, settings, strategies as st

    from conftest import OFFICIAL, oracle, ours

    chunks = st.one_of(st.binary(max_size=12), st.sampled_from(
        [b"\xff", b"\xe4\xb8", b"\xf0\x9f\x91", b" ", b"  \n", b"hello", b"\xc3", "中文".encode()]))

    @settings(max_examples=300, deadline=None)
    @given(parts=st.lists(chunks, max_size=10), name=st.sampled_from(OFFICIAL))
    def check(parts, name):
        data = b"".join(parts)
        enc, tk = ours(name), oracle(name)
        ids = enc._encode_bytes(data)
        assert enc.decode_bytes(ids) == data
        assert ids == tk._encode_bytes(data)

    check()
