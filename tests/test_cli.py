"""The `bpe` command, driven as a user drives it: a subprocess, its output, its exit status."""

from __future__ import annotations

import codecs
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

with contextlib.redirect_stdout(io.StringIO()):
    import this

import bpe
import bpe._view

ZEN = codecs.decode(this.s, "rot13")  # The Zen of Python: varied English, on every machine
TEXT = "".join(f"{line} ({k}) ünïcödé 你好 🙂\n" for k, line in enumerate(ZEN.splitlines()[1:] * 8))


def run(*args, stdin: bytes | None = None, cwd=None):
    """``python -m bpe ARGS``; returns (status, stdout bytes, stderr text)."""
    proc = subprocess.run([sys.executable, "-m", "bpe", *map(str, args)], input=stdin,
                          capture_output=True, cwd=cwd or tempfile.gettempdir(), env={**os.environ, "COLUMNS": "100"})
    return proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A corpus, and a tokenizer trained on it by `bpe train`."""
    folder = tmp_path_factory.mktemp("cli")
    (folder / "a.txt").write_text(TEXT, encoding="utf-8")
    (folder / "b.txt").write_text("second document <|endoftext|> with a special token\n", encoding="utf-8")
    status, out, err = run("train", folder / "a.txt", "--vocab-size", 400, "--pattern", "cl100k",
                           "--special", "<|endoftext|>", "-o", folder / "tok.bpe",
                           "--tokenizer-json", folder / "tokenizer.json")
    assert status == 0, err
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert summary["vocab_size"] == 400 and summary["special_tokens"] == 1
    assert summary["holdout_bytes"] > 0 and summary["holdout_bytes_per_token"] > 1
    return folder


def test_train_writes_what_bpe_load_reads(workdir):
    enc = bpe.Encoding.load(workdir / "tok.bpe")
    assert enc.n_vocab == 400
    assert enc.eot_token == 399
    assert enc.decode(enc.encode(TEXT)) == TEXT


def test_train_summary_names_the_figures(workdir):
    status, out, _ = run("train", workdir / "a.txt", "--vocab-size", 300, "-q", "--holdout", 0,
                         "-o", workdir / "small.bpe")
    assert status == 0
    first = out.decode().splitlines()[0]
    assert first.startswith(f"wrote {workdir / 'small.bpe'}: vocabulary 300")
    assert "nothing held apart" in first


def test_train_max_pieces_bounds_the_counts_and_refuses_one(workdir):
    status, out, err = run("train", workdir / "a.txt", "--vocab-size", 300, "-q", "--holdout", 0,
                           "--max-pieces", 20, "-o", workdir / "bounded.bpe")
    assert status == 0, err
    assert bpe.Encoding.load(workdir / "bounded.bpe").n_vocab <= 300
    status, _, err = run("train", workdir / "a.txt", "--vocab-size", 300, "-q", "--max-pieces", 1,
                         "-o", workdir / "never.bpe")
    assert status != 0 and "max_pieces" in err and not (workdir / "never.bpe").exists()


def test_encode_prints_the_ids_and_decode_gives_the_bytes_back(workdir):
    enc = bpe.Encoding.load(workdir / "tok.bpe")
    status, out, err = run("encode", "-t", workdir / "tok.bpe", workdir / "a.txt")
    assert status == 0, err
    assert [int(x) for x in out.split()] == enc.encode_ordinary(TEXT)
    status, back, err = run("decode", "-t", workdir / "tok.bpe", stdin=out)
    assert status == 0, err
    assert back == TEXT.encode("utf-8")


def test_encode_reads_stdin_and_writes_json(workdir):
    enc = bpe.Encoding.load(workdir / "tok.bpe")
    status, out, _ = run("encode", "-t", workdir / "tok.bpe", "--format", "json", stdin=b"hello world")
    assert status == 0
    assert json.loads(out) == enc.encode_ordinary("hello world")


def test_special_text_is_text_unless_allowed(workdir):
    enc = bpe.Encoding.load(workdir / "tok.bpe")
    args = ("encode", "-t", workdir / "tok.bpe", "--format", "json", workdir / "b.txt")
    text = (workdir / "b.txt").read_text()
    assert json.loads(run(*args)[1]) == enc.encode_ordinary(text)
    assert json.loads(run(*args, "--allow-special")[1]) == enc.encode(text, allowed_special="all")


def test_encode_bin_is_flat_with_end_of_text_between_documents(workdir):
    enc = bpe.Encoding.load(workdir / "tok.bpe")
    out = workdir / "train.bin"
    status, _, err = run("encode", "-t", workdir / "tok.bpe", "--format", "bin", "-o", out,
                         workdir / "a.txt", workdir / "b.txt")
    assert status == 0, err
    ids = np.fromfile(out, dtype=np.uint16)
    expected = (enc.encode_ordinary(TEXT) + [enc.eot_token]
                + enc.encode_ordinary((workdir / "b.txt").read_text()) + [enc.eot_token])
    assert ids.tolist() == expected
    meta = json.loads((workdir / "train.bin.json").read_text())
    assert meta["dtype"] == "uint16" and meta["tokens"] == len(expected) and meta["documents"] == 2
    assert meta["bytes"] == len(TEXT.encode()) + (workdir / "b.txt").stat().st_size
    status, back, _ = run("decode", "-t", workdir / "tok.bpe", "--format", "bin", out)
    assert status == 0 and back.count(b"<|endoftext|>") == 3  # two separators, one in b.txt


def test_encode_bin_streams_a_large_file_exactly(workdir):
    # Several 1 MB chunks, cut where the pattern breaks: the ids equal encoding it whole.
    enc = bpe.Encoding.load(workdir / "tok.bpe")
    big = workdir / "big.txt"
    text = TEXT * 300  # 3.6 MB
    big.write_text(text, encoding="utf-8")
    status, _, err = run("encode", "-t", workdir / "tok.bpe", "--format", "bin", "-o", workdir / "big.bin", big)
    assert status == 0, err
    assert np.fromfile(workdir / "big.bin", dtype=np.uint16).tolist() == enc.encode_ordinary(text) + [enc.eot_token]


def test_count_per_file_and_total(workdir):
    enc = bpe.Encoding.load(workdir / "tok.bpe")
    status, out, _ = run("count", "-t", workdir / "tok.bpe", "--json", workdir / "a.txt", workdir / "b.txt")
    assert status == 0
    rows = json.loads(out)
    assert rows[0]["tokens"] == enc.count(TEXT) and rows[0]["bytes"] == len(TEXT.encode())
    status, out, _ = run("count", "-t", workdir / "tok.bpe", workdir / "a.txt", workdir / "b.txt")
    assert out.decode().splitlines()[-1].split()[:2] == ["total", f"{rows[0]['tokens'] + rows[1]['tokens']:,}"]


def test_show_marks_boundaries_plainly_and_in_colour(workdir):
    enc = bpe.Encoding.load(workdir / "tok.bpe")
    status, out, _ = run("show", "-t", workdir / "tok.bpe", "Beautiful is better 你好")
    assert status == 0
    shown = out.decode().splitlines()[0]
    pieces = [enc.decode([i]) for i in enc.encode("Beautiful is better")]
    assert len(pieces) > 1
    assert shown.startswith("|".join(pieces) + "|")
    assert shown.replace("|", "") == "Beautiful is better 你好"  # a cut character is shown once
    status, out, _ = run("show", "-t", workdir / "tok.bpe", "--color", "always", "Beautiful is")
    assert b"\x1b[30;48;5;" in out and out.count(b"\x1b[0m") == len(enc.encode("Beautiful is"))


def test_show_takes_text_that_cannot_be_a_file_name(workdir):
    long_text = "word " * 2000  # longer than any path may be
    status, out, err = run("show", "-t", workdir / "tok.bpe", long_text)
    assert status == 0, err
    assert out.decode().splitlines()[0].replace("|", "") == long_text


def test_show_html_has_an_id_on_every_token(workdir):
    page = workdir / "show.html"
    status, _, _ = run("show", "-t", workdir / "tok.bpe", "--html", page, workdir / "a.txt")
    assert status == 0
    html = page.read_text()
    enc = bpe.Encoding.load(workdir / "tok.bpe")
    assert html.count('title="id ') == len(bpe._view.units(enc, enc.encode_ordinary(TEXT)))


def test_inspect_reports_the_vocabulary(workdir):
    status, out, _ = run("inspect", "-t", workdir / "tok.bpe", "--json")
    assert status == 0
    report = json.loads(out)
    assert report["n_vocab"] == 400 and report["mergeable_tokens"] == 399
    assert sum(report["length_histogram"].values()) == 399
    assert report["length_histogram"]["1"] == 256
    assert report["scripts"]["LATIN"] > 0
    status, out, _ = run("inspect", "-t", workdir / "tok.bpe")
    assert "longest tokens:" in out.decode()


def test_tokenizer_json_from_train_loads_as_a_tokenizer(workdir):
    enc = bpe.Encoding.load(workdir / "tok.bpe")
    status, out, _ = run("encode", "-t", workdir / "tokenizer.json", "--format", "json", workdir / "a.txt")
    assert status == 0
    assert json.loads(out) == enc.encode_ordinary(TEXT)


def test_named_encoding_and_bench(workdir):
    status, out, _ = run("encode", "-t", "o200k_base", stdin=b"hello world")
    assert status == 0 and out.split() == [b"24912", b"2375"]
    status, out, err = run("bench", "-t", "cl100k_base", workdir / "a.txt", "--repeats", 1)
    assert status == 0, err
    assert b"identical ids: yes" in out


@pytest.mark.parametrize("args, message", [
    (("encode", "-t", "no_such_encoding"), "'no_such_encoding' is neither a named encoding"),
    (("encode", "-t", "{tok}", "missing.txt"), "no such file: missing.txt"),
    (("encode", "-t", "{tok}", "--format", "bin"), "--format bin needs -o OUT"),
    (("encode", "-t", "{a}"), "not a tokenizer file"),
    (("train", "{a}", "--vocab-size", "abc", "-o", "x.bpe"), "'abc' is not an integer"),
    (("train", "{a}", "--vocab-size", "100", "-o", "x.bpe"), "--vocab-size 100 is too small"),
    (("train", "{a}", "--vocab-size", "300", "--pattern", "(unclosed", "-o", "x.bpe"), "pattern"),
    (("train", "{a}", "--vocab-size", "300", "-o", "no/such/dir/x.bpe"), "no such folder"),
    (("decode", "-t", "{tok}", "--format", "bin", "{a}"), "say --dtype"),
    (("show", "-t", "{tok}", "--color", "sometimes", "x"), "invalid choice"),
    (("nosuchcommand",), "invalid choice"),
])
def test_user_mistakes_are_one_line_and_status_2(workdir, args, message):
    args = [a.format(tok=workdir / "tok.bpe", a=workdir / "a.txt") for a in args]
    status, out, err = run(*args, cwd=workdir)
    assert status == 2
    assert len(err.strip().splitlines()) == 1, err
    assert message in err
    assert "Traceback" not in err


def test_decode_names_the_bad_id(workdir):
    status, _, err = run("decode", "-t", workdir / "tok.bpe", stdin=b"1 2\n3 oops")
    assert status == 2 and "line 2: 'oops' is not a token id" in err
    status, _, err = run("decode", "-t", workdir / "tok.bpe", stdin="1 \u00b2".encode())  # a digit, not ASCII
    assert status == 2 and "is not a token id" in err
    status, _, err = run("decode", "-t", workdir / "tok.bpe", stdin=b"1 99999")
    assert status == 2 and "99999" in err


def test_every_subcommand_has_help_with_an_example():
    status, out, _ = run("--help")
    assert status == 0
    commands = ["train", "encode", "decode", "count", "show", "inspect", "bench", "demo", "lm"]
    for command in commands:
        assert command in out.decode()
        status, out_, _ = run(command, "--help")
        assert status == 0, command
        assert "example" in out_.decode(), command


def test_console_script_is_installed():
    import shutil

    exe = shutil.which("bpe", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    if exe is None:
        pytest.skip("the bpe console script is not on PATH (package not installed with pip)")
    proc = subprocess.run([exe, "--help"], capture_output=True)
    assert proc.returncode == 0 and b"bpe train" in proc.stdout
