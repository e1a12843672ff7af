"""Post-training on the numpy GPT: exact backward passes, SFT, the reward model, PPO with KL."""

from __future__ import annotations

import doctest
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

import bpe
from bpe.lm import chat, finetune, model, post
from bpe.lm.model import GPTConfig
from bpe.lm.train import save_checkpoint

CFG = GPTConfig(vocab_size=40, ctx=12, d_model=16, n_layer=2, n_head=2)
CHECKED = ["wte", "wpe", "h0.attn.w", "h1.fc2.w", "h1.ln2.g", "lnf.b"]


def fd_check(params, loss_fn, grads, names=CHECKED, n=8, eps=1e-6, seed=0):
    """Worst, over the named parameters, of max|numeric - analytic| / max(|numeric|, |analytic|)
    on ``n`` sampled entries each (the measure tests/test_lm.py uses), numeric being the
    central difference of ``loss_fn``."""
    rng = np.random.default_rng(seed)
    worst = 0.0
    for name in names:
        flat = params[name].reshape(-1)
        picks = rng.choice(flat.size, size=min(n, flat.size), replace=False)
        numeric = np.empty(len(picks))
        for k, j in enumerate(picks):
            old = flat[j]
            flat[j] = old + eps
            up = loss_fn()
            flat[j] = old - eps
            down = loss_fn()
            flat[j] = old
            numeric[k] = (up - down) / (2 * eps)
        analytic = grads[name].reshape(-1)[picks]
        # some are exactly 0 (a bias both rewards of a pair share): there, central differences
        # are roundoff of about 1e-10, which the floor keeps below the tolerance
        scale = max(np.abs(numeric).max(), np.abs(analytic).max(), 1e-4)
        worst = max(worst, float(np.abs(numeric - analytic).max() / scale))
    return worst


def batch(seed=0, B=3, L=10):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, CFG.vocab_size, (B, L))
    mask = np.zeros((B, L - 1))
    mask[:, 4:] = 1.0
    mask[1, 7:] = 0.0  # a shorter response
    return ids, mask


@pytest.fixture
def params():
    return model.init_params(CFG, seed=1, dtype=np.float64)


def test_module_examples():
    for module in (post, chat):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0


# ----------------------------------------------------------------------------------------
# Exactness of every new backward


def test_masked_cross_entropy_gradient(params):
    ids, mask = batch()
    loss, grads = post.sft_loss_and_grads(params, CFG, ids, mask)
    err = fd_check(params, lambda: post.sft_loss_and_grads(params, CFG, ids, mask)[0], grads)
    print(f"masked cross-entropy: max relative error {err:.2e}")
    assert err < 1e-5


def test_prompt_tokens_contribute_no_gradient(params):
    ids, mask = batch()
    logp, cache = post.logprob_forward(params, CFG, ids)
    probs = cache[2]  # the backward turns it into d loss / d logits, in place
    post.logprob_backward(params, CFG, cache, -mask / mask.sum())
    dlogits = probs.reshape(mask.shape + (-1,))                 # [B, T, V]
    assert np.all(dlogits[mask == 0] == 0)                      # prompt (and padding) targets
    assert np.all(np.abs(dlogits[mask == 1]).sum(-1) > 0)       # every response target
    loss, _ = post.sft_loss_and_grads(params, CFG, ids, mask)
    assert loss == pytest.approx(-(logp * mask).sum() / mask.sum())


def test_reward_head_and_bradley_terry_gradients(params):
    rm = post.init_reward_head(params, np.float64)
    rng = np.random.default_rng(2)
    rm["reward.w"][:] = rng.standard_normal(CFG.d_model) * 0.5
    rm["reward.b"][:] = 0.3
    chosen, c_len = chat.pad([list(rng.integers(0, 40, n)) for n in (6, 9, 4)])
    rejected, r_len = chat.pad([list(rng.integers(0, 40, n)) for n in (7, 5, 10)])
    loss, acc, grads = post.bradley_terry(rm, CFG, chosen, c_len, rejected, r_len)
    err = fd_check(rm, lambda: post.bradley_terry(rm, CFG, chosen, c_len, rejected, r_len, grads=False)[0],
                   grads, CHECKED + ["reward.w", "reward.b"])
    print(f"reward head + Bradley-Terry: max relative error {err:.2e}")
    assert err < 1e-5
    # the reward reads the last real token: padding after it changes nothing
    ids, lengths = chat.pad([[1, 2, 3], [4, 5, 6, 7, 8]])
    r1 = post.reward_forward(rm, CFG, ids, lengths)[0]
    ids2 = np.concatenate([ids, np.full((2, 3), 9)], axis=1)
    assert np.allclose(post.reward_forward(rm, CFG, ids2, lengths)[0], r1)


def test_ppo_and_kl_gradients_with_clipped_tokens(params):
    ids, mask = batch(3)
    rng = np.random.default_rng(4)
    logp = post.sequence_logprobs(params, CFG, ids)
    # old log-probabilities that put ratios well inside and well outside [0.8, 1.2]: no kinks
    old = logp + rng.choice([-0.9, -0.05, 0.04, 0.7], size=logp.shape)
    ref = logp + rng.normal(0, 0.3, size=logp.shape)
    adv = np.array([1.5, -0.7, 0.4])
    loss, grads, stats = post.ppo_loss_and_grads(params, CFG, ids, mask, old, ref, adv, 0.2, 0.5)
    assert 0.1 < stats["clipped"] < 0.9 and stats["kl_estimate"] > 0

    def f():
        return post.ppo_loss_and_grads(params, CFG, ids, mask, old, ref, adv, 0.2, 0.5)[0]

    err = fd_check(params, f, grads)
    print(f"PPO clipped surrogate + KL: max relative error {err:.2e}")
    assert err < 1e-5
    # the KL term alone (no advantage): zero at the reference, positive away from it
    zero = post.ppo_loss_and_grads(params, CFG, ids, mask, logp, logp, np.zeros(3), 0.2, 1.0)
    assert zero[0] == pytest.approx(0.0, abs=1e-12) and zero[2]["kl_estimate"] == pytest.approx(0.0, abs=1e-12)


def test_dpo_gradient(params):
    ids, mask = batch(6, B=4)
    rng = np.random.default_rng(8)
    ref = post.sequence_logprobs(params, CFG, ids) + rng.normal(0, 0.5, (4, ids.shape[1] - 1))
    loss, grads, acc = post.dpo_loss_and_grads(params, CFG, ids, mask, ref, 0.7)
    err = fd_check(params, lambda: post.dpo_loss_and_grads(params, CFG, ids, mask, ref, 0.7)[0], grads)
    print(f"DPO: max relative error {err:.2e}")
    assert err < 1e-5
    # at the reference itself the loss is log 2 for every pair
    at_ref = post.dpo_loss_and_grads(params, CFG, ids, mask, post.sequence_logprobs(params, CFG, ids), 0.7)
    assert at_ref[0] == pytest.approx(np.log(2))


# ----------------------------------------------------------------------------------------
# The stages learn what was planted


@pytest.fixture(scope="module")
def enc():
    text = ("good answers are kind and clear. bad answers are rude and wrong. "
            "what is two plus two? four. say yes. yes yes. say no. no no. ") * 20
    return bpe.train([text], vocab_size=300, pattern="gpt2", progress=False,
                     special_tokens=list(chat.MARKERS))


def tiny(enc, seed=0):
    gpt = GPTConfig(vocab_size=enc.n_vocab, ctx=32, d_model=32, n_layer=1, n_head=2)
    return gpt, model.init_params(gpt, seed=seed)


def test_chat_template_uses_special_markers_when_the_vocabulary_has_them(enc):
    t = chat.ChatTemplate(enc)
    ids, mask = t.example("say yes.", " yes")
    assert t.kind == "special" and ids[0] == enc.special_tokens["<|user|>"]
    assert ids[-1] == enc.special_tokens["<|end|>"]
    assert len(mask) == len(ids) - 1
    n_resp = len(enc.encode_ordinary(" yes")) + 1
    assert mask == [0] * (len(ids) - 1 - n_resp) + [1] * n_resp


def test_sft_lowers_the_response_loss_and_resumes_exactly(enc, tmp_path):
    rows = [{"prompt": f"say {w}.", "response": f" {w} {w}."} for w in ("yes", "no") * 12]
    gpt, p = tiny(enc)
    cfg = finetune.TuneConfig(steps=40, batch=8, lr=3e-3, seed=3)
    result = finetune.sft(p, gpt, enc, rows, cfg, out_dir=tmp_path / "a")
    assert result["val_response_loss"] < 0.6 * result["val_response_loss_before"]
    gpt, q = tiny(enc)
    finetune.sft(q, gpt, enc, rows, cfg, out_dir=tmp_path / "b", stop_at=15)
    gpt, r = tiny(enc)
    again = finetune.sft(r, gpt, enc, rows, cfg, out_dir=tmp_path / "b", resume=tmp_path / "b" / "ckpt.npz")
    assert again["val_response_loss"] == result["val_response_loss"]
    for k in p:
        assert np.array_equal(p[k], r[k]), k


def test_reward_model_learns_a_planted_preference(enc):
    rows = [{"prompt": f"say {k}.", "chosen": " good answers are kind.", "rejected": " bad answers are rude."}
            for k in range(40)]
    for i in range(0, 40, 2):  # half the pairs in the other order of length
        rows[i] = {"prompt": "what is two plus two?", "chosen": " four, kind and clear.", "rejected": " rude."}
    gpt, p = tiny(enc)
    _, figures = finetune.train_reward(p, gpt, enc, rows, finetune.TuneConfig(steps=60, batch=8, lr=3e-3))
    assert figures["val_accuracy"] == 1.0 and figures["val_loss"] < 0.3


def test_dpo_learns_a_planted_preference(enc):
    rows = [{"prompt": f"say {k}.", "chosen": " good answers are kind.", "rejected": " bad answers are rude."}
            for k in range(30)]
    gpt, p = tiny(enc)
    figures = finetune.dpo(p, gpt, enc, rows, finetune.TuneConfig(steps=30, batch=4, lr=3e-3, beta=0.5))
    assert figures["val_loss_before"] == pytest.approx(np.log(2), abs=1e-5)  # rounded to 5 places
    assert figures["val_loss"] < 0.3 and figures["val_accuracy"] == 1.0


def test_long_rows_are_cut_to_the_context(enc):
    gpt, p = tiny(enc)
    long = " good answers are kind and clear." * 20
    template = chat.ChatTemplate(enc)
    ((c, r),) = finetune.preference_examples([{"prompt": "say yes.", "chosen": long, "rejected": long}],
                                             template, gpt)
    assert len(c) == len(r) == gpt.ctx
    (ids, mask), = finetune.sft_examples([{"prompt": "say yes.", "response": long}], template, gpt)
    assert len(ids) == gpt.ctx + 1 and len(mask) == gpt.ctx
    _, figures = finetune.train_reward(p, gpt, enc, [{"prompt": "say yes.", "chosen": long, "rejected": " no."}] * 4,
                                       finetune.TuneConfig(steps=2, batch=2))
    assert figures["steps"] == 2


def _planted_score(enc):
    """The share of a sequence's tokens that spell " yes" or " good"."""
    good = set(enc.encode_ordinary(" yes")) | set(enc.encode_ordinary(" good"))

    def score(seqs):
        return np.array([sum(t in good for t in s) / len(s) for s in seqs])
    return score


def test_rl_raises_a_planted_reward_and_beta_bounds_the_kl(enc, tmp_path):
    prompts = ["say yes.", "say no.", "what is two plus two?", "good answers are"]
    figures = {}
    for beta in (0.0, 2.0):
        gpt, p = tiny(enc, seed=7)
        cfg = finetune.TuneConfig(steps=25, batch=4, group=4, max_new_tokens=8, lr=1e-2, beta=beta,
                                  epochs=2, seed=1)
        figures[beta] = finetune.rl(p, gpt, enc, prompts, _planted_score(enc), cfg, eval_prompts=4)
    free, held = figures[0.0], figures[2.0]
    print(json.dumps({str(k): {x: v[x] for x in ("reward_before", "reward_after", "kl")} for k, v in figures.items()}))
    assert free["reward_after"] > free["reward_before"] + 0.1
    assert free["kl"] > held["kl"] and held["kl"] >= 0


def test_rl_is_reproducible_and_resumable(enc, tmp_path):
    prompts = ["say yes.", "say no."]
    cfg = finetune.TuneConfig(steps=6, batch=2, group=3, max_new_tokens=5, lr=1e-2, beta=0.1, seed=2)
    runs = []
    for name in ("a", "b"):
        gpt, p = tiny(enc, seed=4)
        runs.append((finetune.rl(p, gpt, enc, prompts, _planted_score(enc), cfg, out_dir=tmp_path / name), p))
    assert runs[0][0]["reward_history"] == runs[1][0]["reward_history"]
    gpt, p = tiny(enc, seed=4)
    finetune.rl(p, gpt, enc, prompts, _planted_score(enc), cfg, out_dir=tmp_path / "c", stop_at=3)
    gpt, q = tiny(enc, seed=4)  # the reference is the starting policy, as in the unbroken run
    finetune.rl(q, gpt, enc, prompts, _planted_score(enc), cfg, out_dir=tmp_path / "c",
                resume=tmp_path / "c" / "ckpt.npz")
    for k in q:
        assert np.array_equal(q[k], runs[0][1][k]), k


# ----------------------------------------------------------------------------------------
# The command line


def _cli(*args):
    """``python -m bpe lm ARGS`` from a folder away from the sources (whose bpe is not built)."""
    proc = subprocess.run([sys.executable, "-m", "bpe", "lm", *map(str, args)], capture_output=True,
                          cwd=tempfile.gettempdir(), env={**os.environ, "COLUMNS": "100"}, check=False)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def test_cli_sft_reward_rl(enc, tmp_path):
    gpt, p = tiny(enc)
    import dataclasses

    from bpe.lm.cli import _tokenizer_record
    from bpe.lm.optim import AdamW

    enc.save(tmp_path / "tok.bpe")
    meta = {"model": dataclasses.asdict(gpt), "tokenizer": _tokenizer_record(str(tmp_path / "tok.bpe"), enc)}
    save_checkpoint(tmp_path / "base.npz", p, AdamW(p), 0, meta)
    with open(tmp_path / "pairs.jsonl", "w") as f:
        for w in ("yes", "no") * 6:
            f.write(json.dumps({"prompt": f"say {w}.", "response": f" {w}."}) + "\n")
    with open(tmp_path / "prefs.jsonl", "w") as f:
        for _ in range(10):
            f.write(json.dumps({"prompt": "say yes.", "chosen": " yes.", "rejected": " no."}) + "\n")
    with open(tmp_path / "prompts.jsonl", "w") as f:
        for w in ("yes", "no"):
            f.write(json.dumps({"prompt": f"say {w}."}) + "\n")
    status, out, err = _cli("sft", "--checkpoint", tmp_path / "base.npz", "--data", tmp_path / "pairs.jsonl",
                            "--steps", 5, "--out", tmp_path / "sft", "-q")
    assert status == 0, err
    assert {"val_response_loss_before", "val_response_loss", "tokens_per_s"} <= set(json.loads(out.splitlines()[-1]))
    status, out, err = _cli("reward", "--checkpoint", tmp_path / "sft" / "ckpt.npz", "--data", tmp_path / "prefs.jsonl",
                            "--steps", 5, "--out", tmp_path / "rm", "-q")
    assert status == 0, err
    assert {"val_accuracy", "val_loss"} <= set(json.loads(out.splitlines()[-1]))
    status, out, err = _cli("rl", "--checkpoint", tmp_path / "sft" / "ckpt.npz", "--reward", tmp_path / "rm" / "ckpt.npz",
                            "--prompts", tmp_path / "prompts.jsonl", "--beta", 0.1, "--steps", 2, "--batch", 2,
                            "--group", 2, "--max-new-tokens", 4, "--out", tmp_path / "rl", "-q")
    assert status == 0, err
    assert {"reward_before", "reward_after", "kl"} <= set(json.loads(out.splitlines()[-1]))
    status, out, err = _cli("dpo", "--checkpoint", tmp_path / "sft" / "ckpt.npz", "--data", tmp_path / "prefs.jsonl",
                            "--steps", 3, "--out", tmp_path / "dpo", "-q")
    assert status == 0, err
    assert {"val_loss_before", "val_loss", "val_accuracy"} <= set(json.loads(out.splitlines()[-1]))
    status, _, err = _cli("sft", "--checkpoint", tmp_path / "base.npz", "--data", tmp_path / "prefs.jsonl",
                          "--steps", 5, "--out", tmp_path / "x", "-q")
    assert status == 2 and "prefs.jsonl:1: needs the string fields prompt, response" in err


def test_kv_cache_decoder_gives_the_full_forward_logits_and_slides_past_the_context():
    from bpe.lm.sample import Decoder

    cfg = GPTConfig(vocab_size=30, ctx=5, d_model=12, n_layer=2, n_head=3)
    p = model.init_params(cfg, seed=2, dtype=np.float64)
    rng = np.random.default_rng(0)
    seq = rng.integers(0, 30, (2, 12))
    d = Decoder(p, cfg, 2)
    for t in range(seq.shape[1]):
        got = d.step(seq[:, t])
        window = seq[:, max(0, t + 1 - cfg.ctx):t + 1]  # the last ctx tokens, as generation slides
        want = model.logits_forward(p, cfg, window)[:, -1]
        assert np.allclose(got, want, rtol=1e-10, atol=1e-12), t
