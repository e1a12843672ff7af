"""Rank files: byte-exact read/write, errors that name file and line, and the lookup order."""

from __future__ import annotations

import hashlib
import http.server
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bpe
from bpe.load import fetch_verified
from conftest import official_bytes


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
def test_official_files_round_trip_byte_exactly(tmp_path, name):
    from bpe import registry

    source = tmp_path / f"{name}.tiktoken"
    source.write_bytes(official_bytes(name))
    ranks = bpe.load_tiktoken_bpe(source)
    sha = registry.RANK_FILES[name][1]
    assert bpe.load_tiktoken_bpe(source, expected_hash=sha) == ranks
    out = tmp_path / "copy.tiktoken"
    bpe.dump_tiktoken_bpe(ranks, out)
    assert out.read_bytes() == source.read_bytes()


def test_tiktoken_reads_what_we_write(tmp_path):
    tiktoken_load = pytest.importorskip("tiktoken.load", reason="tiktoken is the oracle: pip install '.[test]'")
    ranks = {bytes([b]): b for b in range(256)} | {b"hello": 256, b" \xff": 257}
    bpe.dump_tiktoken_bpe(ranks, tmp_path / "x.tiktoken")
    assert tiktoken_load.load_tiktoken_bpe(str(tmp_path / "x.tiktoken")) == ranks


@pytest.mark.parametrize(
    "content,problem",
    [
        (b"aGk= 0\naGk 1\n", "line 2: invalid base64"),
        (b"aGk= 0\nYQ== x\n", "line 2: rank must be"),
        (b"aGk= 0\nYQ== -1\n", "line 2: rank must be"),
        (b"aGk= 0\nYQ==\n", "line 2: expected"),
        (b"aGk= 0\nYQ== 1 2\n", "line 2: expected"),
        (b"aGk= 0\naGk= 1\n", "line 2: token b'hi' appears twice"),
        (b"aGk= 0\nYQ== 0\n", "line 2: rank 0 already given on line 1"),
        (b"aGk= 0\n\xff\xfe 1\n", "line 2: invalid base64"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, content, problem):
    path = tmp_path / "bad.tiktoken"
    path.write_bytes(content)
    with pytest.raises(ValueError) as e:
        bpe.load_tiktoken_bpe(path)
    assert str(path) in str(e.value) and problem in str(e.value)


def test_hash_mismatch_names_both_hashes(tmp_path):
    path = tmp_path / "x.tiktoken"
    path.write_bytes(b"YQ== 0\n")
    actual = hashlib.sha256(b"YQ== 0\n").hexdigest()
    with pytest.raises(ValueError) as e:
        bpe.load_tiktoken_bpe(path, expected_hash="0" * 64)
    assert "0" * 64 in str(e.value) and actual in str(e.value)


class _Server:
    """A one-file HTTP server on 127.0.0.1 that counts its requests."""

    def __init__(self, payload: bytes):
        self.payload = payload
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.requests += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(outer.payload)))
                self.end_headers()
                self.wfile.write(outer.payload)

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/enc.tiktoken"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.delenv("BPE_VOCAB_DIR", raising=False)
    monkeypatch.setenv("BPE_CACHE_DIR", str(tmp_path / "bpe-cache"))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tiktoken-cache"))
    return tmp_path


def test_download_is_verified_then_cached(isolated):
    payload = b"YQ== 0\nYg== 1\n"
    sha = hashlib.sha256(payload).hexdigest()
    server = _Server(payload)
    try:
        assert fetch_verified("enc.tiktoken", server.url, sha) == payload
        assert (isolated / "bpe-cache" / "enc.tiktoken").read_bytes() == payload
        assert fetch_verified("enc.tiktoken", server.url, sha) == payload
        assert server.requests == 1  # the second call came from the cache
    finally:
        server.close()


def test_download_with_wrong_hash_is_not_kept(isolated):
    server = _Server(b"YQ== 0\n")
    try:
        with pytest.raises(ValueError, match="sha256 mismatch"):
            fetch_verified("enc.tiktoken", server.url, "1" * 64)
        assert not (isolated / "bpe-cache" / "enc.tiktoken").exists()
    finally:
        server.close()


def test_lookup_order(isolated, monkeypatch):
    payload = b"YQ== 0\n"
    sha = hashlib.sha256(payload).hexdigest()
    url = "http://127.0.0.1:9/never-contacted.tiktoken"
    # 3. tiktoken's cache, under the sha1 of the URL
    tk_cache = isolated / "tiktoken-cache" / hashlib.sha1(url.encode()).hexdigest()
    tk_cache.parent.mkdir()
    tk_cache.write_bytes(payload)
    assert fetch_verified("enc.tiktoken", url, sha) == payload
    # a corrupt cached file is passed over (and the download then fails loudly)
    tk_cache.write_bytes(b"corrupt")
    with pytest.raises(OSError, match="cannot find enc.tiktoken"):
        fetch_verified("enc.tiktoken", url, sha)
    # 2. bpe's cache comes before tiktoken's
    (isolated / "bpe-cache").mkdir()
    (isolated / "bpe-cache" / "enc.tiktoken").write_bytes(payload)
    assert fetch_verified("enc.tiktoken", url, sha) == payload
    # 1. BPE_VOCAB_DIR comes first, and a wrong file there is an error, not skipped
    folder = isolated / "vocab"
    folder.mkdir()
    (folder / "enc.tiktoken").write_bytes(b"YQ== 1\n")
    monkeypatch.setenv("BPE_VOCAB_DIR", str(folder))
    with pytest.raises(ValueError, match="sha256 mismatch"):
        fetch_verified("enc.tiktoken", url, sha)
    (folder / "enc.tiktoken").write_bytes(payload)
    assert fetch_verified("enc.tiktoken", url, sha) == payload


def test_named_encoding_from_local_server(tmp_path, monkeypatch):
    from bpe import registry

    from bpe import load

    payload = official_bytes("cl100k_base")
    monkeypatch.delenv("BPE_VOCAB_DIR", raising=False)
    monkeypatch.setattr(load, "SHIPPED", tmp_path / "nothing-shipped")
    monkeypatch.setenv("BPE_CACHE_DIR", str(tmp_path / "bpe-cache"))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tiktoken-cache"))
    server = _Server(payload)
    try:
        monkeypatch.setitem(registry.RANK_FILES, "cl100k_base",
                            (server.url, hashlib.sha256(payload).hexdigest()))
        ranks = registry._ranks("cl100k_base")
        assert len(ranks) == 100256 and server.requests == 1
    finally:
        server.close()


def test_shipped_files_come_after_vocab_dir_and_before_the_caches(isolated, monkeypatch):
    import gzip

    from bpe import load

    payload = b"YQ== 0\n"
    sha = hashlib.sha256(payload).hexdigest()
    shipped = isolated / "shipped"
    shipped.mkdir()
    monkeypatch.setattr(load, "SHIPPED", shipped)
    (shipped / "enc.tiktoken.gz").write_bytes(gzip.compress(payload))
    server = _Server(b"never served")
    try:
        assert fetch_verified("enc.tiktoken", server.url, sha) == payload
        assert server.requests == 0 and not (isolated / "bpe-cache").exists()
        # a damaged install is an error naming the file, not a silent download
        (shipped / "enc.tiktoken.gz").write_bytes(gzip.compress(b"YQ== 1\n"))
        with pytest.raises(ValueError, match=r"sha256 mismatch for .*enc\.tiktoken\.gz"):
            fetch_verified("enc.tiktoken", server.url, sha)
        # $BPE_VOCAB_DIR comes first
        (isolated / "vocab").mkdir()
        (isolated / "vocab" / "enc.tiktoken").write_bytes(payload)
        monkeypatch.setenv("BPE_VOCAB_DIR", str(isolated / "vocab"))
        assert fetch_verified("enc.tiktoken", server.url, sha) == payload
    finally:
        server.close()


def test_o200k_and_cl100k_work_offline_with_nothing_set(tmp_path):
    """As a fresh install on a machine without network: no variable, empty caches, no route."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("BPE_VOCAB_DIR", "TIKTOKEN_CACHE_DIR")}
    env.update(HOME=str(tmp_path), BPE_CACHE_DIR=str(tmp_path / "cache"),
               DATA_GYM_CACHE_DIR=str(tmp_path / "gym"), https_proxy="http://127.0.0.1:9",
               http_proxy="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
    code = ("import bpe\n"
            "print(bpe.get_encoding('o200k_base').encode('hello world'))\n"
            "print(bpe.get_encoding('cl100k_base').encode('hello world'))\n"
            "try:\n    bpe.get_encoding('r50k_base')\nexcept OSError as e:\n    print('OSError', e)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[:2] == ["[24912, 2375]", "[15339, 1917]"]
    assert lines[2].startswith("OSError cannot find r50k_base.tiktoken") and "downloading" in lines[2]
    # The one thing written: the two engines' built tables, for the next start.
    from bpe import registry

    written = sorted(p.relative_to(tmp_path / "cache").as_posix() for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert written == sorted(f"engines/{registry.RANK_FILES[n][1]}.v{bpe._image.VERSION}.bin"
                             for n in ("o200k_base", "cl100k_base"))
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                           cwd=tmp_path, timeout=300)
    assert again.stdout == run.stdout


# The compiled parser (bpe._ranks.RankTable.from_tiktoken) against the line parser it stands
# in for: where it accepts, the same dict in the same order; where the line parser refuses,
# it declines too. (It also declines what the line parser accepts in some Python versions
# only, and ranks too sparse for its bitmap; the line parser then gives the dict.)

TOKENS = [b"IQ==", b"Ig==", b"QUJD", b"QUJD==", b"QUJD=", b"QR==", b"QUI=", b"QUI==", b"QUI", b"QQ",
          b"QQ=", b"Q", b"=", b"==", b"===", b"QQ==QQ==", b"Q!==", b"aGVsbG8=", b"////", b"+/+/",
          b"\xd9\xa3", b"QUJDRA==", b"QUJDRA=", b"aGk="]
RANKS = [b"0", b"1", b"2", b"007", b"4294967294", b"4294967295", b"99999999999999999999", b"-1", b"1.5", b"\xd9\xa3"]
SPACES = [b" ", b"\t", b"\x0b", b"\x0c", b"  ", b" \t"]
ENDS = [b"\n", b"\r\n", b"\r", b"\n\n", b"\r\r\n"]

# A line is mostly "token rank" with odd spacing (so that whole files parse often enough
# for the accepting side to be tested), sometimes any run of fields.
CANONICAL = [b"IQ==", b"Ig==", b"QUJD", b"QUI=", b"aGk=", b"QUJDRA==", b"////", b"+/+/", b"aGVsbG8=", b"eA==",
             b"eHk=", b"eHl6", b"dw==", b"MTIz"]
LINE = st.one_of(
    st.tuples(st.sampled_from([b"", b" "]), st.sampled_from(CANONICAL), st.sampled_from(SPACES),
              st.integers(0, 40).map(lambda r: b"%d" % r), st.sampled_from([b"", b"\t"])).map(b"".join),
    st.tuples(st.sampled_from([b"", b" ", b"\t"]), st.sampled_from(TOKENS), st.sampled_from(SPACES),
              st.sampled_from(RANKS), st.sampled_from([b"", b" ", b"\x0c"])).map(b"".join),
    st.lists(st.sampled_from(TOKENS + RANKS + SPACES), max_size=4).map(b" ".join),
)


@given(st.lists(st.tuples(LINE, st.sampled_from(ENDS)), max_size=6), st.booleans())
@settings(max_examples=3000, deadline=None)
def test_compiled_parser_agrees_with_the_line_parser(lines, final_end):
    from bpe import _ranks
    from bpe.load import _parse_lines

    content = b"".join(line + end for line, end in lines)
    if not final_end:
        content = content.rstrip(b"\r\n")
    table = _ranks.RankTable.from_tiktoken(content)
    try:
        expected = _parse_lines(content, "f")
    except ValueError:
        assert table is None, content
        return
    if table is not None:
        assert list(table.to_dict().items()) == list(expected.items()), content
        assert len(table) == len(expected)


def test_compiled_parser_takes_canonical_base64_and_leaves_the_rest():
    """The compiled parser accepts canonical base64 with any spacing and line ends (so the
    property test above is not passing by declining everything), and declines the forms
    Python's versions decode differently (3.13 refuses padding after whole quads, 3.12
    ignores it), which the line parser then reads as the running Python does."""
    from bpe import _ranks
    from bpe.load import _parse_lines, parse_tiktoken_bpe

    content = b"QUJD 0\r\nQQ== 1\rQUI= 2\x0b\x0c\n\n aGk=\t\x0b 0003\nQUJDRA== 4"
    table = _ranks.RankTable.from_tiktoken(content)
    assert table is not None
    assert table.to_dict() == _parse_lines(content, "f") == {b"ABC": 0, b"A": 1, b"AB": 2, b"hi": 3, b"ABCD": 4}
    for odd in (b"QUJD== 0", b"QUJD= 0", b"QUI== 0", b"QR== 0", b"QUJ= 0"):
        assert _ranks.RankTable.from_tiktoken(odd) is None, odd
        try:
            expected = _parse_lines(odd, "f")
        except ValueError:
            continue
        assert parse_tiktoken_bpe(odd) == expected  # the line parser's answer, whatever it is


def test_a_named_encoding_makes_its_dict_only_when_asked():
    from bpe import registry

    enc = bpe.Encoding(**registry.ENCODING_CONSTRUCTORS["cl100k_base"]())
    assert enc._ranks._dict is None  # the engine came from the parsed table
    assert enc.encode("hello world") == [15339, 1917]
    assert enc.n_vocab == 100277
    assert enc._ranks._dict is None
    ranks = enc.mergeable_ranks
    assert type(ranks) is dict
    assert list(ranks.items()) == list(bpe.load.parse_tiktoken_bpe(official_bytes("cl100k_base")).items())
    assert enc._mergeable_ranks is ranks  # made once


def test_a_table_is_checked_like_a_dict():
    """Encoding's id checks hold for a Ranks as for the dict it stands for."""
    from bpe.load import parse_tiktoken_ranks

    content = b"".join(b"%s %d\n" % (__import__("base64").b64encode(bytes([b])), b) for b in range(256))
    ranks = parse_tiktoken_ranks(content)
    enc = bpe.Encoding("bytes", pat_str=r"\S+|\s+", mergeable_ranks=ranks, special_tokens={"<e>": 256})
    assert enc.encode("hi <e>", allowed_special="all") == [104, 105, 32, 256]
    for special in ({"<e>": 7}, {"": 300}):
        with pytest.raises(ValueError) as table_error:
            bpe.Encoding("bytes", pat_str=r"\S+|\s+", mergeable_ranks=ranks, special_tokens=special)
        with pytest.raises(ValueError) as dict_error:
            bpe.Encoding("bytes", pat_str=r"\S+|\s+", mergeable_ranks=dict(ranks), special_tokens=special)
        assert str(table_error.value) == str(dict_error.value)
