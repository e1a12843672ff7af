"""tiktoken's API surface: special-token policy, decoding, errors, pickling, extras."""

from __future__ import annotations

import os
import pickle
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bpe
from conftest import OFFICIAL, oracle, ours


@pytest.mark.parametrize(
    "text,kwargs",
    [
        ("hi <|endoftext|> there", {}),
        ("hi <|endoftext|> there", {"allowed_special": "all"}),
        ("hi <|endoftext|> there", {"disallowed_special": ()}),
        ("<|endofprompt|><|endoftext|>", {"allowed_special": {"<|endoftext|>"}}),
        ("<|endofprompt|><|endoftext|>", {"allowed_special": {"<|endoftext|>"}, "disallowed_special": ()}),
        ("<|endoftext|>", {"allowed_special": {"<|endoftext|>"}, "disallowed_special": "all"}),
        ("x<|endoftext|>y", {"disallowed_special": {"<|endofprompt|>"}}),
        ("x<|endoftext|>y", {"allowed_special": {"<|no_such|>"}, "disallowed_special": ()}),
        ("plain text", {"disallowed_special": "all"}),
        ("a<|endoftext|><|endoftext|>  b\n\n", {"allowed_special": "all"}),
    ],
)
def test_special_token_policy_case_by_case(text, kwargs):
    for name in OFFICIAL:
        enc, tk = ours(name), oracle(name)
        try:
            want = tk.encode(text, **kwargs)
        except ValueError as e:
            with pytest.raises(ValueError) as got:
                enc.encode(text, **kwargs)
            assert str(got.value) == str(e)
            with pytest.raises(ValueError):
                enc.encode_batch([text], **kwargs)
            continue
        assert enc.encode(text, **kwargs) == want
        assert enc.encode_batch([text, text], **kwargs) == [want, want]
        assert enc.encode_to_numpy(text, **kwargs).tolist() == want
        assert enc.count(text, **kwargs) == len(want)


def test_properties_match_tiktoken(pair):
    enc, tk = pair
    assert enc.n_vocab == tk.n_vocab
    assert enc.max_token_value == tk.max_token_value
    assert enc.eot_token == tk.eot_token
    assert enc.special_tokens_set == tk.special_tokens_set
    assert enc.is_special_token(enc.eot_token) and not enc.is_special_token(0)
    assert enc.token_byte_values() == tk.token_byte_values()
    assert repr(enc) == f"<Encoding {enc.name!r}>"


def test_decoding_matches_tiktoken(pair):
    enc, tk = pair
    ids = tk.encode("héllo 世界 \U0001f600!", allowed_special="all") + [enc.eot_token]
    assert enc.decode_bytes(ids) == tk.decode_bytes(ids)
    assert enc.decode(ids) == tk.decode(ids)
    assert enc.decode_tokens_bytes(ids) == tk.decode_tokens_bytes(ids)
    assert enc.decode_with_offsets(ids) == tk.decode_with_offsets(ids)
    assert enc.decode_batch([ids, ids[:3]]) == tk.decode_batch([ids, ids[:3]])
    assert enc.decode_bytes_batch([ids]) == tk.decode_bytes_batch([ids])
    cut = ids[:4]  # may end inside a character
    for errors in ("replace", "ignore", "backslashreplace"):
        assert enc.decode(cut, errors=errors) == tk.decode(cut, errors=errors)
    assert enc.decode_bytes(np.array(ids, dtype=np.uint32)) == tk.decode_bytes(ids)


@pytest.mark.parametrize("bad", [[10**6], [-1], [2**32], ["a"], [1.5]])
def test_decode_errors_have_tiktoken_types(pair, bad):
    enc, tk = pair
    with pytest.raises(Exception) as theirs:
        tk.decode_bytes(bad)
    with pytest.raises(type(theirs.value)) as mine:
        enc.decode_bytes(bad)
    if isinstance(theirs.value, KeyError):
        assert str(mine.value) == str(theirs.value)


def test_single_token_calls(pair):
    enc, tk = pair
    for item in ("hello", b"hello", "<|endoftext|>", b"\xff", " world"):
        assert enc.encode_single_token(item) == tk.encode_single_token(item)
    with pytest.raises(KeyError) as e:
        enc.encode_single_token("zzzzqqqq")
    assert e.value.args == (b"zzzzqqqq",)
    assert enc.decode_single_token_bytes(enc.eot_token) == b"<|endoftext|>"
    with pytest.raises(KeyError):
        enc.decode_single_token_bytes(10**7)


@pytest.mark.parametrize(
    "text",
    ["hello fanta", "hello", "hello ", "x\n\n", "  ", "12", "don'", "<|endoftext|>", "日本", "a \u3000"],
)
def test_encode_with_unstable_matches_tiktoken(pair, text):
    enc, tk = pair
    want_stable, want_completions = tk.encode_with_unstable(text, allowed_special="all")
    stable, completions = enc.encode_with_unstable(text, allowed_special="all")
    assert stable == want_stable
    assert sorted(map(tuple, completions)) == sorted(map(tuple, want_completions))


def test_pickle_round_trip():
    enc = ours("o200k_base")
    assert pickle.loads(pickle.dumps(enc)) is not None
    assert pickle.loads(pickle.dumps(enc)).encode("hello world") == [24912, 2375]
    custom = bpe.Encoding("mine", pat_str=enc._pat_str, mergeable_ranks=enc._mergeable_ranks,
                          special_tokens={"<|x|>": enc.n_vocab})
    again = pickle.loads(pickle.dumps(custom))
    assert again.name == "mine" and again.encode("<|x|> hi", allowed_special="all")[0] == enc.n_vocab


def test_registry():
    assert bpe.list_encoding_names() == [
        "gpt2", "r50k_base", "p50k_base", "p50k_edit", "cl100k_base", "o200k_base", "o200k_harmony"]
    assert bpe.encoding_name_for_model("gpt-4o") == "o200k_base"
    assert bpe.encoding_name_for_model("gpt-4-0613") == "cl100k_base"
    assert bpe.encoding_name_for_model("text-davinci-003") == "p50k_base"
    with pytest.raises(KeyError):
        bpe.encoding_name_for_model("no-such-model")
    with pytest.raises(ValueError, match="Unknown encoding"):
        bpe.get_encoding("o300k")
    assert bpe.encoding_for_model("gpt-4") is ours("cl100k_base")
    harmony = bpe.get_encoding("o200k_harmony")
    assert harmony.encode("<|start|>", allowed_special="all") == [200006]


def test_numpy_outputs(pair):
    enc, tk = pair
    texts = ["hello world", "", "多语言 text\n", "x" * 300]
    ids, offsets = enc.encode_batch_to_numpy(texts)
    assert ids.dtype == np.uint32 and offsets.dtype == np.int64
    assert len(offsets) == len(texts) + 1 and offsets[0] == 0
    for k, text in enumerate(texts):
        assert ids[offsets[k] : offsets[k + 1]].tolist() == tk.encode_ordinary(text)
    assert enc.encode_to_numpy("hello world").tolist() == tk.encode("hello world")
    with pytest.raises(ValueError):
        enc.encode_batch_to_numpy(["<|endoftext|>"])
    # a disallowed special token in any text of a batch is refused, wherever it stands
    batch = ["a < b", "plain <|"] * 10 + ["tail <|endoftext|>"]
    with pytest.raises(ValueError, match=r"'<\|endoftext\|>'"):
        enc.encode_batch_to_numpy(batch, num_threads=2)
    with pytest.raises(ValueError, match=r"'<\|endoftext\|>'"):
        enc.count_batch(batch, num_threads=2)
    for threads in (1, 2):  # one part or several: an array of its own, writable like encode_to_numpy's
        ids, _ = enc.encode_batch_to_numpy(batch[:-1], num_threads=threads, disallowed_special="all")
        assert ids.flags.writeable and ids.tolist() == [t for text in batch[:-1] for t in tk.encode(text)]


@pytest.mark.threads
def test_threads_share_one_encoding(pair):
    enc, tk = pair
    texts = [f"thread text {i} " * (i + 1) + "中文 \U0001f600" for i in range(64)]
    want = [tk.encode_ordinary(t) for t in texts]
    errors = []

    def work(offset):
        for k in range(200):
            i = (k + offset) % len(texts)
            if enc.encode_ordinary(texts[i]) != want[i]:
                errors.append(i)

    threads = [threading.Thread(target=work, args=(o,)) for o in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert enc.encode_ordinary_batch(texts, num_threads=4) == want


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="explicit_n_vocab"):
        bpe.Encoding("x", pat_str=r"\S+", mergeable_ranks={b"a": 0}, special_tokens={}, explicit_n_vocab=5)
    with pytest.raises(ValueError, match="two tokens"):
        bpe.Encoding("x", pat_str=r"\S+", mergeable_ranks={b"a": 0, b"b": 0}, special_tokens={})
    # a ValueError naming the pattern, as tiktoken raises (not the regex module's own error)
    with pytest.raises(ValueError, match=r"split pattern '\(unclosed' does not compile"):
        bpe.Encoding("x", pat_str=r"(unclosed", mergeable_ranks={b"a": 0}, special_tokens={})


def test_counts_of_texts_longer_than_the_count_loops_scratch_space(pair):
    # counting keeps at most a few thousand ranks before adding them up; merged pieces (the
    # CJK runs, the accented words) land on both sides of each flush
    enc, tk = pair
    text = " ".join(f"word{i} 中文字符{i % 7} Ünïcödé" for i in range(3000))
    want = len(tk.encode_ordinary(text))
    assert want > 3 * 4096
    assert enc.count(text) == want == len(enc.encode_ordinary(text))
    assert enc.count_batch([text, text[:5000]], num_threads=2) == [want, len(tk.encode_ordinary(text[:5000]))]


def test_compiled_batches_run_on_no_more_threads_than_usable_cpus(monkeypatch):
    """num_threads=8 (the default) on 2 CPUs ran 8 threads taking turns, slower than 2."""
    enc = bpe.get_encoding("o200k_base")
    texts = [f"text {i}" for i in range(100)]
    seen: list = []

    def batch(chunk):
        seen.append((threading.current_thread().name, len(chunk)))
        return len(chunk)

    monkeypatch.setattr(bpe.core, "usable_cpus", lambda: 2)
    assert enc._in_chunks(batch, texts, 8) == [50, 50]
    assert len(seen) == 2
    seen.clear()
    monkeypatch.setattr(bpe.core, "usable_cpus", lambda: 1)
    assert enc._in_chunks(batch, texts, 8) == [100]
    assert seen == [(threading.current_thread().name, 100)]  # on the calling thread


@pytest.mark.threads
def test_threaded_batches_equal_one_thread(pair):
    enc, tk = pair
    texts = [f"document {i}: " + "word " * (i % 50) + "中文\n" * (i % 3) for i in range(500)]
    want = [tk.encode_ordinary(t) for t in texts]
    for threads in (1, 2, 3, 8):
        ids, offsets = enc.encode_batch_to_numpy(texts, num_threads=threads)
        assert [ids[offsets[k] : offsets[k + 1]].tolist() for k in range(len(texts))] == want
        assert enc.count_batch(texts, num_threads=threads) == [len(w) for w in want]
    assert enc.count_batch(["a<|endoftext|>"], allowed_special="all") == [2]
    with pytest.raises(ValueError):
        enc.count_batch(["<|endoftext|>"])


_SPECIAL_SETS = [{"<|a|>": 300, "<|b|>": 301}, {"x": 300, "<y>": 301}, {}]


@pytest.mark.parametrize("special", _SPECIAL_SETS, ids=["shared start", "no shared start", "none"])
@given(st.text(alphabet="<|ab>xy z\u00e9\U0001f600", max_size=30))
@settings(max_examples=300, deadline=None)
def test_default_encode_shortcut_matches_the_full_check(special, text):
    """encode() with the default arguments skips the special-token search when no special
    token's start is in the text; it must give what the full check gives (the same ids, or
    the same refusal) on text full of near misses."""
    enc = bpe.Encoding("bytes", pat_str=r"\S+|\s+", mergeable_ranks={bytes([b]): b for b in range(256)},
                       special_tokens=special)
    full = frozenset(special)  # a frozenset, not "all": the full path
    try:
        expected = enc.encode(text, disallowed_special=full)
    except ValueError as e:
        with pytest.raises(ValueError) as got:
            enc.encode(text)
        assert str(got.value) == str(e)
    else:
        assert enc.encode(text) == expected


@pytest.mark.parametrize("special", _SPECIAL_SETS, ids=["shared start", "no shared start", "none"])
@given(st.lists(st.tuples(st.text(alphabet="<|ab>xy z\u00e9\U0001f600", max_size=20),
                          st.sampled_from(["", "", "<|a|>", "<|b|>", "x", "<y>", "<|a", "<|"]),
                          st.text(alphabet="<|ab>xy z\u00e9", max_size=8)).map("".join), max_size=12),
       st.sampled_from([1, 2]))
@settings(max_examples=300, deadline=None)
def test_batch_refusals_match_the_full_check_of_each_text(special, texts, threads):
    """The compiled batches look for the disallowed tokens' shared start in each thread, on
    the texts' UTF-8, and search only the texts that hold it: they must refuse the first
    token the full check of each text in turn refuses (whichever part of the batch holds
    it), and give that check's ids otherwise. With no shared start every text is checked
    in Python first."""
    enc = bpe.Encoding("bytes", pat_str=bpe.patterns.O200K_PATTERN,
                       mergeable_ranks={bytes([b]): b for b in range(256)}, special_tokens=special)
    assert enc._fast_path(set())  # the compiled scanner, so the compiled batches run
    full = frozenset(special)
    expected, error = [], None
    for text in texts:
        try:
            expected.append(enc.encode(text, disallowed_special=full))
        except ValueError as e:
            error = str(e)
            break
    for call in (enc.encode_batch_to_numpy, enc.count_batch):
        if error is not None:
            with pytest.raises(ValueError) as got:
                call(texts, num_threads=threads)
            assert str(got.value) == error
    if error is None:
        ids, offsets = enc.encode_batch_to_numpy(texts, num_threads=threads)
        assert [ids[offsets[k] : offsets[k + 1]].tolist() for k in range(len(texts))] == expected
        assert enc.count_batch(texts, num_threads=threads) == [len(e) for e in expected]


def test_batches_refuse_the_first_disallowed_token_of_the_batch(pair):
    # Texts that hold the tokens' shared start but no token, in 2-byte and 4-byte strs, go
    # through; the first token refused is the batch's first, in order, on any thread count.
    enc, tk = pair
    near = ["中文 <|endof nothing", "plain <| x", "\U0001f600 <|endoftex|>"] * 7
    # the first token past the middle, so that on two threads it is in the second part
    batch = near * 2 + ["ü <|endofprompt|> then <|endoftext|>"] + near + ["<|endoftext|>"]
    for threads in (1, 2, 3):
        for call in (enc.encode_batch_to_numpy, enc.count_batch):
            with pytest.raises(ValueError, match=r"'<\|endofprompt\|>'"):
                call(batch, num_threads=threads)
        # refusing only <|endofprompt|>: <|endoftext|> is ordinary text
        only = {"<|endofprompt|>"}
        tail = batch[2 * len(near) + 1 :]
        want = [tk.encode(t, disallowed_special=only) for t in tail]
        ids, offsets = enc.encode_batch_to_numpy(tail, num_threads=threads, disallowed_special=only)
        assert [ids[offsets[k] : offsets[k + 1]].tolist() for k in range(len(tail))] == want
        assert enc.count_batch(tail, num_threads=threads, disallowed_special=only) == [len(w) for w in want]
        with pytest.raises(ValueError, match=r"'<\|endofprompt\|>'"):
            enc.count_batch(batch, num_threads=threads, disallowed_special=only)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
# Python 3.12+ warns on any fork of a process with threads: forking one is what this tests
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_batch_calls_keep_their_threads_and_work_in_a_forked_child():
    from bpe._pools import SHORT_ITEMS, shared_pool, usable_cpus

    if usable_cpus() < 2:
        pytest.skip("one usable CPU: batch calls run on the calling thread, the pool is never made")
    enc = bpe.get_encoding("o200k_base")
    texts = ["hello world " * (SHORT_ITEMS // 10)] * 8  # long enough to go to the pool
    want = [enc.encode_ordinary(texts[0])] * 8
    assert enc.encode_ordinary_batch(texts, num_threads=2) == want
    assert shared_pool(2) is shared_pool(2)  # kept, not started again per call
    assert any(t.name.startswith("bpe") for t in threading.enumerate())
    pid = os.fork()
    if pid == 0:  # the parent's pool threads do not exist here: a new pool must be made
        code = 1
        try:
            if enc.encode_ordinary_batch(texts, num_threads=2) == want:
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_batch_maps_keep_order_and_raise_the_first_error_on_threads_and_off_them():
    from bpe._pools import SHORT_ITEMS, map_in_chunks

    long_items = [str(k) * SHORT_ITEMS for k in range(50)]  # to threads when there are CPUs
    short_items = [str(k) for k in range(50)]  # on the calling thread
    for items in (long_items, short_items):
        assert map_in_chunks(len, items, 8) == [len(x) for x in items]
        assert map_in_chunks(len, iter(items), 3) == [len(x) for x in items]

        def fail_from_7(x, items=items):
            if items.index(x) >= 7:
                raise KeyError(items.index(x))
            return x

        with pytest.raises(KeyError) as err:
            map_in_chunks(fail_from_7, items, 4)
        assert err.value.args == (7,)
    with pytest.raises(ValueError, match="num_threads must be 1 or more, got 0"):
        map_in_chunks(len, long_items, 0)
    # items without a length still map, in order
    assert map_in_chunks(sum, [iter(range(k)) for k in range(20)], 2) == [sum(range(k)) for k in range(20)]
