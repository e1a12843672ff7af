"""The numpy GPT: every backward against finite differences, learning, sampling, scoring, CLI."""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import io
import json
import math
import os
import platform
import subprocess
import sys
import tempfile

import numpy as np
import pytest

import bpe
from bpe.lm import data, model, optim, sample
from bpe.lm._parallel import loss_and_grads
from bpe.lm.model import GPTConfig
from bpe.lm.train import TrainConfig, load_checkpoint, train

with contextlib.redirect_stdout(io.StringIO()):
    import this

ZEN = codecs.decode(this.s, "rot13")
CORPUS = "".join(f"{line}\n" for _ in range(60) for line in ZEN.splitlines()[2:])  # ~50 KB


def numeric_grad(f, x, eps=1e-6):
    """Central differences of the scalar f() with respect to every entry of x (float64)."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        up = f()
        x[i] = old - eps
        down = f()
        x[i] = old
        g[i] = (up - down) / (2 * eps)
    return g


def rel_error(a, b):
    return float(np.abs(a - b).max() / max(np.abs(a).max(), np.abs(b).max(), 1e-12))


RNG = np.random.default_rng(0)


def check_layer(forward, backward, inputs: list[np.ndarray], out_shape=None):
    """Compare backward with finite differences of sum(forward(*inputs) * R)."""
    out, cache = forward(*inputs)
    weights = RNG.standard_normal(out.shape)
    grads = backward(weights.copy(), cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    worst = 0.0
    for x, g in zip(inputs, grads):
        num = numeric_grad(lambda: float((forward(*inputs)[0] * weights).sum()), x)
        worst = max(worst, rel_error(num, g))
    return worst


def test_layernorm_backward():
    x, g, b = RNG.standard_normal((2, 3, 5)), RNG.standard_normal(5), RNG.standard_normal(5)
    err = check_layer(model.layernorm_forward, model.layernorm_backward, [x, g, b])
    print(f"layernorm max relative error {err:.1e}")
    assert err < 1e-5


def test_linear_backward():
    x, w, b = RNG.standard_normal((2, 3, 4)), RNG.standard_normal((4, 6)), RNG.standard_normal(6)
    err = check_layer(model.linear_forward, model.linear_backward, [x, w, b])
    print(f"linear max relative error {err:.1e}")
    assert err < 1e-5


def test_gelu_backward():
    x = RNG.standard_normal((2, 3, 8)) * 2
    err = check_layer(model.gelu_forward, model.gelu_backward, [x])
    print(f"gelu max relative error {err:.1e}")
    assert err < 1e-5


@pytest.mark.parametrize("blocks", [1, 2, 3, 7])  # 7 > T: empty blocks are left out
def test_attention_backward(blocks):
    qkv = RNG.standard_normal((2, 5, 3 * 6))
    err = check_layer(lambda q: model.attention_forward(q, 2, blocks), model.attention_backward, [qkv])
    print(f"attention ({blocks} blocks) max relative error {err:.1e}")
    assert err < 1e-5


def test_attention_blocks_change_nothing():
    """Row blocks skip scores that the mask would zero, so every split gives one answer."""
    qkv = RNG.standard_normal((2, 16, 3 * 8))
    dy = RNG.standard_normal((2, 16, 8))
    y1, c1 = model.attention_forward(qkv, 2, 1)
    d1 = model.attention_backward(dy, c1)
    for blocks in (2, 4, 16):
        y, c = model.attention_forward(qkv, 2, blocks)
        assert np.allclose(y, y1, atol=1e-12) and np.allclose(model.attention_backward(dy, c), d1, atol=1e-12)


def test_attention_is_causal():
    qkv = RNG.standard_normal((1, 6, 3 * 4))
    y, _ = model.attention_forward(qkv.copy(), 2)
    changed = qkv.copy()
    changed[:, 4:] += 1.0  # the future of positions 0..3
    y2, _ = model.attention_forward(changed, 2)
    assert np.allclose(y[:, :4], y2[:, :4]) and not np.allclose(y[:, 4:], y2[:, 4:])


def test_cross_entropy_backward():
    logits, targets = RNG.standard_normal((6, 7)), RNG.integers(0, 7, 6)
    loss, cache = model.cross_entropy_forward(logits.copy(), targets)
    grad = model.cross_entropy_backward(cache)
    num = numeric_grad(lambda: model.cross_entropy_forward(logits.copy(), targets)[0], logits)
    assert rel_error(num, grad) < 1e-5
    expected = -np.mean([logits[i, t] - np.log(np.exp(logits[i]).sum()) for i, t in enumerate(targets)])
    assert abs(loss - expected) < 1e-12


def test_whole_model_backward():
    cfg = GPTConfig(vocab_size=13, ctx=5, d_model=8, n_layer=2, n_head=2)
    params = model.init_params(cfg, seed=3, dtype=np.float64)
    for k in params:  # non-zero biases and non-unit gains, so that every path carries gradient
        params[k] += RNG.standard_normal(params[k].shape) * 0.1
    idx, targets = RNG.integers(0, 13, (2, 4)), RNG.integers(0, 13, (2, 4))
    loss, cache = model.forward(params, cfg, idx, targets)
    grads = model.backward(params, cfg, cache)
    worst = 0.0
    for name, p in params.items():
        num = numeric_grad(lambda: model.forward(params, cfg, idx, targets)[0], p)
        err = rel_error(num, grads[name])
        worst = max(worst, err)
        assert err < 1e-5, f"{name}: relative error {err:.1e}"
    print(f"whole model max relative error {worst:.1e}")


def test_threaded_step_equals_one_thread():
    cfg = GPTConfig(vocab_size=50, ctx=16, d_model=16, n_layer=2, n_head=2)
    params = model.init_params(cfg, seed=0)
    idx, targets = RNG.integers(0, 50, (6, 16)), RNG.integers(0, 50, (6, 16))
    loss1, g1 = loss_and_grads(params, cfg, idx, targets, threads=1)
    loss3, g3 = loss_and_grads(params, cfg, idx, targets, threads=3)
    assert abs(loss1 - loss3) < 1e-5
    for k in g1:
        assert np.allclose(g1[k], g3[k], atol=1e-6), k
    from bpe.lm._parallel import token_nll

    assert np.allclose(token_nll(params, cfg, idx, targets, threads=3),
                       model.token_nll(params, cfg, idx, targets), atol=1e-5)


_FAULTS_OF_A_STEP = """
import resource, numpy as np
from bpe.lm import model
from bpe.lm._parallel import loss_and_grads
from bpe.lm.model import GPTConfig
cfg = GPTConfig(vocab_size=256, ctx=128, d_model=64, n_layer=1, n_head=2)
p = model.init_params(cfg)
x = np.zeros((8, 128), np.int64)
for _ in range(2):
    loss_and_grads(p, cfg, x, x, threads=1)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
loss_and_grads(p, cfg, x, x, threads=1)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.memory  # page faults: meaningless under AddressSanitizer's own allocator
@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="mallopt is glibc's; elsewhere keep_freed_memory does nothing")
def test_training_steps_keep_freed_memory():
    """The third step of a small model reuses the memory the steps before it freed: no page
    faults, against about 2,100 when malloc is left alone (BPE_LM_KEEP_MEMORY=0)."""
    def faults(keep):
        env = {**os.environ, "BPE_LM_KEEP_MEMORY": keep}
        # from a folder of its own: in the project root, `import bpe` would find the sources
        proc = subprocess.run([sys.executable, "-c", _FAULTS_OF_A_STEP], env=env, capture_output=True,
                              text=True, cwd=tempfile.gettempdir())
        assert proc.returncode == 0, proc.stderr
        return int(proc.stdout.split()[-1])

    left_alone, kept = faults("0"), faults("1")
    assert left_alone > 500, left_alone
    assert kept < 100, kept


def test_loss_at_initialisation_is_ln_vocab():
    for vocab in (256, 4096):
        cfg = GPTConfig(vocab_size=vocab, ctx=32, d_model=32, n_layer=2, n_head=2)
        params = model.init_params(cfg, seed=1)
        idx, targets = RNG.integers(0, vocab, (4, 32)), RNG.integers(0, vocab, (4, 32))
        loss, _ = model.forward(params, cfg, idx, targets)
        assert abs(loss - math.log(vocab)) < 0.05, (vocab, loss)


def test_a_tiny_batch_overfits():
    cfg = GPTConfig(vocab_size=40, ctx=16, d_model=32, n_layer=2, n_head=2)
    params = model.init_params(cfg, seed=0)
    opt = optim.AdamW(params, weight_decay=0.0)
    idx, targets = RNG.integers(0, 40, (2, 16)), RNG.integers(0, 40, (2, 16))
    for step in range(200):
        loss, grads = loss_and_grads(params, cfg, idx, targets)
        optim.clip_grads(grads, 1.0)
        opt.step(params, grads, 1e-2)
    assert loss < 0.05


def test_schedule_and_clipping():
    lrs = [optim.lr_at(s, 100, 1.0) for s in range(100)]
    assert lrs[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])  # linear warm-up
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))                # then only down
    assert lrs[-1] == pytest.approx(0.1, abs=1e-3)                       # to 10% of the peak
    grads = {"a": np.full(4, 3.0), "b": np.full(1, 4.0)}
    norm = optim.clip_grads(grads, 1.0)
    assert norm == pytest.approx(math.sqrt(36 + 16))
    assert math.sqrt(sum((g * g).sum() for g in grads.values())) == pytest.approx(1.0, abs=1e-5)


def test_adamw_matches_its_formula():
    p = {"w": np.array([[1.0, -2.0]]), "b": np.array([0.5])}
    g = {"w": np.array([[0.1, 0.2]]), "b": np.array([-0.3])}
    opt = optim.AdamW({k: v.copy() for k, v in p.items()}, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    new = {k: v.copy() for k, v in p.items()}
    opt.step(new, g, lr=0.01)
    for k in p:
        m, v = 0.1 * g[k] / 0.1, 0.05 * g[k] ** 2 / 0.05        # bias-corrected first step
        decay = 0.1 if p[k].ndim >= 2 else 0.0
        expected = p[k] * (1 - 0.01 * decay) - 0.01 * m / (np.sqrt(v) + 1e-8)
        assert np.allclose(new[k], expected)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lm")
    (folder / "zen.txt").write_text(CORPUS)
    enc = bpe.train([CORPUS], vocab_size=300, pattern="gpt2", special_tokens=["<|endoftext|>"], progress=False)
    enc.save(folder / "tok.bpe")
    return folder, enc


SMALL = dict(ctx=32, d_model=32, n_layer=2, n_head=2)


def test_short_run_beats_the_unigram_entropy(corpus):
    folder, enc = corpus
    tokens = data.prepare(folder / "zen.txt", enc, folder, "tok.bpe")
    counts = np.bincount(np.asarray(tokens.train), minlength=enc.n_vocab)
    p = counts[counts > 0] / counts.sum()
    unigram = float(-(p * np.log(p)).sum())
    gpt = GPTConfig(vocab_size=enc.n_vocab, **SMALL)
    result = train(tokens, gpt, TrainConfig(steps=150, batch=8, lr=3e-3), data.token_byte_lengths(enc),
                   progress=False)
    print(f"val loss {result['val_loss']:.3f} nats/token, unigram entropy {unigram:.3f}")
    assert result["val_loss"] < unigram
    assert result["val_bpb"] == pytest.approx(
        result["val_loss"] * result["val_tokens"] / math.log(2) / result["val_bytes"])
    assert result["val_ppl"] == pytest.approx(math.exp(result["val_loss"]))


def test_data_split_and_bytes(corpus):
    folder, enc = corpus
    tokens = data.prepare(folder / "zen.txt", enc, folder, "tok.bpe")
    ids = enc.encode_ordinary(CORPUS)
    assert np.asarray(tokens.tokens).tolist() == ids
    assert len(tokens.val) == round(len(ids) * 0.1) and len(tokens.train) + len(tokens.val) == len(ids)
    assert tokens.n_bytes == len(CORPUS.encode())
    lengths = data.token_byte_lengths(enc)
    assert lengths[np.asarray(tokens.tokens)].sum() == len(CORPUS.encode())


def test_special_token_text_in_the_data_is_text(corpus, tmp_path):
    folder, enc = corpus
    (tmp_path / "s.txt").write_text("Beautiful <|endoftext|> is better\n" * 50)
    tokens = data.prepare(tmp_path / "s.txt", enc, tmp_path, "tok.bpe")
    assert np.asarray(tokens.tokens).tolist() == enc.encode_ordinary((tmp_path / "s.txt").read_text())


def test_resume_takes_the_same_steps(corpus, tmp_path):
    folder, enc = corpus
    tokens = data.prepare(folder / "zen.txt", enc, tmp_path, "tok.bpe")
    gpt = GPTConfig(vocab_size=enc.n_vocab, **SMALL)
    lengths = data.token_byte_lengths(enc)
    cfg = TrainConfig(steps=12, batch=4, lr=3e-3, eval_tokens=256)
    whole = train(tokens, gpt, cfg, lengths, progress=False)
    # the same run in two parts: the first 5 steps of the 12-step schedule, then the rest
    part = train(tokens, gpt, dataclasses.replace(cfg, stop_at=5), lengths, out_dir=tmp_path, progress=False)
    assert part["steps"] == 5
    meta, _, _ = load_checkpoint(tmp_path / "ckpt.npz")
    assert meta["step"] == 5
    resumed = train(tokens, gpt, cfg, lengths, out_dir=tmp_path, resume=tmp_path / "ckpt.npz", progress=False)
    for k in whole["params_arrays"]:
        assert np.array_equal(whole["params_arrays"][k], resumed["params_arrays"][k]), k
    assert resumed["history"]["loss"] == whole["history"]["loss"]
    assert resumed["val_loss"] == whole["val_loss"]


def test_stream_never_writes_half_a_character():
    enc = bpe.train(["héllo wörld 你好 🙂"] * 3, vocab_size=258, pattern="gpt2", progress=False)
    ids = enc.encode_ordinary("héllo 你好 🙂 wörld")
    assert any(len(enc.decode_single_token_bytes(i)) == 1 and enc.decode_single_token_bytes(i)[0] >= 0x80
               for i in ids)  # some characters are cut into single bytes
    written = []
    sample.stream_text(enc, iter(ids), written.append)
    assert "".join(written) == "héllo 你好 🙂 wörld"
    assert all("\ufffd" not in w for w in written)


def test_top_k_and_top_p():
    logits = np.log(np.array([0.4, 0.3, 0.2, 0.1]))
    assert np.count_nonzero(sample.next_token_distribution(logits, top_k=2)) == 2
    p = sample.next_token_distribution(logits, top_p=0.75)
    assert np.count_nonzero(p) == 3 and p.sum() == pytest.approx(1.0)
    greedy = sample.next_token_distribution(logits, temperature=0)
    assert greedy.tolist() == [1.0, 0.0, 0.0, 0.0]


def test_score_is_the_log_likelihood_of_the_option(corpus):
    folder, enc = corpus
    gpt = GPTConfig(vocab_size=enc.n_vocab, ctx=8, d_model=16, n_layer=1, n_head=2)
    params = model.init_params(gpt, seed=0)
    prompt, options = "Beautiful is better than", [" ugly.", " pretty and long, longer than the context."]
    results = sample.score_options(params, gpt, enc, prompt, options)
    for option, r in zip(options, results):
        ids = enc.encode_ordinary(prompt + option)
        n = len(ids) - len(enc.encode_ordinary(prompt))
        # score each option token with up to ctx tokens before it, one at a time
        expected = 0.0
        for j in range(len(ids) - n, len(ids)):
            x = np.asarray(ids[max(0, j - gpt.ctx):j])[None]
            expected -= model.token_nll(params, gpt, x, np.asarray(ids[max(0, j - gpt.ctx) + 1:j + 1])[None])[0, -1]
        assert r["logprob"] == pytest.approx(expected, rel=1e-4), option
        assert r["logprob_per_byte"] == pytest.approx(r["logprob"] / len(option.encode()))
    assert sample.best(results)["best"] in (0, 1)


# ----------------------------------------------------------------------------------------
# The command


def run(*args, cwd=None):
    # Not from the project folder, where `-m bpe` would find the uncompiled sources first.
    proc = subprocess.run([sys.executable, "-m", "bpe", "lm", *map(str, args)], capture_output=True,
                          cwd=cwd or tempfile.gettempdir(), text=True)
    return proc.returncode, proc.stdout, proc.stderr


def test_lm_commands(corpus, tmp_path):
    folder, enc = corpus
    status, out, err = run("train", "--data", folder / "zen.txt", "--tokenizer", folder / "tok.bpe",
                           "--steps", 20, "--d-model", 32, "--n-layer", 2, "--n-head", 2, "--ctx", 32,
                           "--batch", 4, "--lr", 3e-3, "--seed", 0, "--out", tmp_path / "run")
    assert status == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    for key in ("val_loss", "val_bpb", "tokens_per_s"):
        assert summary[key] > 0
    ckpt = tmp_path / "run" / "ckpt.npz"
    status, out, err = run("sample", "--checkpoint", ckpt, "--prompt", "Beautiful", "--max-tokens", 10, "--seed", 1)
    assert status == 0, err
    assert out.startswith("Beautiful") and len(out) > len("Beautiful")
    status, out, err = run("sample", "--checkpoint", ckpt, "--max-tokens", 5, "--seed", 1)  # no prompt
    assert status == 0 and out.strip(), err
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps({"prompt": "Beautiful is better than", "options": [" ugly.", " zzqx"], "answer": 0}) + "\n")
    status, out, err = run("score", "--checkpoint", ckpt, "--file", items)
    assert status == 0, err
    assert json.loads(out.strip().splitlines()[-1])["items"] == 1
    status, out, err = run("compare", "--data", folder / "zen.txt", "--tokenizer", folder / "tok.bpe",
                           "--tokenizer", folder / "tok.bpe", "--steps", 5, "--d-model", 16, "--n-layer", 1,
                           "--n-head", 2, "--ctx", 16, "--batch", 2, "--out", tmp_path / "cmp", "-q")
    assert status == 0, err
    assert "val bits/byte" in out
    rows = json.loads(out.strip().splitlines()[-1])
    assert len(rows) == 2 and rows[0]["val_bpb"] == rows[1]["val_bpb"]  # same vocabulary, same seed
    assert (tmp_path / "cmp" / "compare.json").is_file()


@pytest.mark.parametrize("args, message", [
    (("train", "--data", "missing.txt", "--tokenizer", "gpt2", "--out", "x"), "no such file: missing.txt"),
    (("train", "--data", "{zen}", "--tokenizer", "{tok}", "--out", "{tmp}/y", "--d-model", "30", "--n-head", "4"),
     "multiple of n_head"),
    (("sample", "--checkpoint", "{zen}"), "not a bpe lm checkpoint"),
    (("score", "--checkpoint", "missing.npz", "--prompt", "a"), "no such checkpoint"),
    (("compare", "--data", "{zen}", "--tokenizer", "{tok}", "--out", "{tmp}/z"), "at least twice"),
])
def test_lm_mistakes_are_one_line(corpus, tmp_path, args, message):
    folder, _ = corpus
    args = [a.format(zen=folder / "zen.txt", tok=folder / "tok.bpe", tmp=tmp_path) for a in args]
    status, _, err = run(*args, cwd=tmp_path)
    assert status == 2 and message in err and "Traceback" not in err, err
