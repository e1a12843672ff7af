"""Post-training loops: SFT on desired answers, a reward model, and KL-regularised RL (PPO).

Each starts from a checkpoint of ``bpe lm train`` (or of the stage before), saves its own
checkpoint in the same format (``ckpt.npz``, resumable with ``resume=``), draws every
random choice from ``np.random.default_rng([seed, step])`` so that a resumed run equals an
unbroken one, and returns its figures.

* :func:`sft`: next-token loss on the response tokens only (:mod:`bpe.lm.chat` for the
  template), a warm-up then cosine schedule with a lower peak than pretraining.
* :func:`train_reward`: the GPT with a scalar head on the last token's final hidden state,
  trained on preference pairs with the Bradley-Terry loss.
* :func:`rl`: sample ``group`` responses per prompt from the policy, score them with the
  reward model (or any function), take the group-normalised reward as each response's
  advantage (the group is the baseline: no value head), and run ``epochs`` PPO passes
  over the batch with ``beta`` times the KL to the frozen starting policy in the loss.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np

from bpe._progress import Bar
from bpe.lm import optim, post
from bpe.lm._parallel import sum_over_slices
from bpe.lm.chat import ChatTemplate, pad
from bpe.lm.model import GPTConfig
from bpe.lm.train import load_checkpoint, save_checkpoint


@dataclasses.dataclass
class TuneConfig:
    steps: int = 200
    batch: int = 8
    lr: float = 3e-4            # a tenth of pretraining's peak: fine-tuning moves a little
    warmup: float = 0.1
    final_lr: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    seed: int = 0
    # rl only
    group: int = 4              # responses sampled per prompt (the baseline is their mean)
    max_new_tokens: int = 32
    epochs: int = 2             # PPO passes over each batch of samples
    clip: float = 0.2
    beta: float = 0.1           # weight of KL(policy || reference) in the loss
    temperature: float = 1.0

    def __post_init__(self):
        for name in ("steps", "batch", "group", "max_new_tokens", "epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0 or self.beta < 0 or not 0 < self.clip < 1:
            raise ValueError(f"need lr > 0, beta >= 0 and 0 < clip < 1 (got {self.lr}, {self.beta}, {self.clip})")


# ----------------------------------------------------------------------------------------
# Data


def read_rows(path: str | os.PathLike, fields: tuple[str, ...]) -> list[dict]:
    """The JSONL rows of ``path``; a ValueError naming file and line when a field is missing."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                raise ValueError(f"{path}:{lineno}: not JSON ({e})") from None
            if not isinstance(row, dict) or any(not isinstance(row.get(k), str) for k in fields):
                raise ValueError(f"{path}:{lineno}: needs the string fields {', '.join(fields)}")
            rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no rows")
    return rows


def split(rows: list, fraction: float = 0.1) -> tuple[list, list]:
    """(train, validation): the last ``fraction`` of the rows (at least one) validate."""
    n_val = max(1, int(round(len(rows) * fraction))) if len(rows) > 1 else 0
    return (rows[:-n_val], rows[-n_val:]) if n_val else (rows, rows)


def _fit(ids: list[int], limit: int) -> list[int]:
    """``ids`` cut to ``limit`` tokens: the end of a long response falls outside the context."""
    return ids[:limit]


def sft_examples(rows, template: ChatTemplate, cfg: GPTConfig) -> list[tuple[list[int], list[int]]]:
    out = []
    for k, row in enumerate(rows):
        ids, mask = template.example(row["prompt"], row["response"])
        if len(template.prompt_ids(row["prompt"])) >= cfg.ctx:
            raise ValueError(f"row {k}: the prompt alone fills the context of {cfg.ctx} tokens")
        ids = _fit(ids, cfg.ctx + 1)  # inputs ids[:-1] fill the context
        out.append((ids, mask[:len(ids) - 1]))
    return out


def _batch(examples, idx):
    ids, lengths = pad([examples[i][0] for i in idx])
    mask = np.zeros((len(idx), ids.shape[1] - 1), dtype=np.float64)
    for j, i in enumerate(idx):
        m = examples[i][1]
        mask[j, :len(m)] = m
    return ids, mask


def response_loss(params, cfg: GPTConfig, examples) -> float:
    """Mean NLL (nats) of the response tokens of ``examples``."""
    total, count = 0.0, 0
    for lo in range(0, len(examples), 16):
        ids, mask = _batch(examples, range(lo, min(lo + 16, len(examples))))
        t, c = post.masked_nll(params, cfg, ids, mask)
        total, count = total + t, count + c
    return total / max(count, 1)


# ----------------------------------------------------------------------------------------
# One update's loss and gradients, on slices of the batch side by side (as pretraining)


def sft_grads(params, gpt: GPTConfig, ids, mask, threads: int | None = None):
    norm = max(float(mask.sum()), 1.0)
    return sum_over_slices(lambda lo, hi: post.sft_loss_and_grads(params, gpt, ids[lo:hi], mask[lo:hi], norm),
                           len(ids), threads)


def reward_grads(params, gpt: GPTConfig, chosen, c_len, rejected, r_len, threads: int | None = None):
    P = len(chosen)

    def part(lo, hi):
        loss, accuracy, grads = post.bradley_terry(params, gpt, chosen[lo:hi], c_len[lo:hi], rejected[lo:hi],
                                                   r_len[lo:hi], norm=P)
        return loss, grads, accuracy

    loss, grads, accuracy = sum_over_slices(part, P, threads)
    return loss, accuracy, grads


def ppo_grads(params, gpt: GPTConfig, ids, mask, old, ref, adv, clip, beta, threads: int | None = None):
    norm = max(float(mask.sum()), 1.0)
    return sum_over_slices(lambda lo, hi: post.ppo_loss_and_grads(params, gpt, ids[lo:hi], mask[lo:hi], old[lo:hi],
                                                                  ref[lo:hi], adv[lo:hi], clip, beta, norm),
                           len(ids), threads)


# ----------------------------------------------------------------------------------------
# The shared loop


def _start(params, cfg: TuneConfig, out_dir, resume, meta):
    opt = optim.AdamW(params, weight_decay=cfg.weight_decay)
    start = 0
    if resume is not None:
        saved_meta, saved, moments = load_checkpoint(resume)
        if saved_meta.get("stage") != meta["stage"]:
            raise ValueError(f"{resume}: a {saved_meta.get('stage', 'pretraining')} checkpoint, not {meta['stage']}")
        for k in params:
            params[k][...] = saved[k]
        start = int(saved_meta["step"])
        opt.load_state(moments, int(saved_meta.get("adam_t", start)))  # RL steps Adam `epochs` times
    ckpt = Path(out_dir) / "ckpt.npz" if out_dir is not None else None
    return opt, start, ckpt


def _step(params, grads, opt, cfg: TuneConfig, step: int) -> None:
    optim.clip_grads(grads, cfg.grad_clip)
    opt.step(params, grads, optim.lr_at(step, cfg.steps, cfg.lr, cfg.warmup, cfg.final_lr))


# ----------------------------------------------------------------------------------------
# SFT


def sft(params, gpt: GPTConfig, enc, rows: list[dict], cfg: TuneConfig, *, out_dir=None, resume=None,
        meta: dict | None = None, stop_at: int = 0, progress: bool = False) -> dict:
    """Fine-tune ``params`` (changed in place) on ``{"prompt", "response"}`` rows."""
    template = ChatTemplate(enc)
    train_rows, val_rows = split(rows)
    train_ex, val_ex = sft_examples(train_rows, template, gpt), sft_examples(val_rows, template, gpt)
    before = response_loss(params, gpt, val_ex)
    meta = {**(meta or {}), "stage": "sft", "model": dataclasses.asdict(gpt), "tune": dataclasses.asdict(cfg),
            "template": template.kind}
    opt, start, ckpt = _start(params, cfg, out_dir, resume, meta)
    tokens, seconds, loss = 0, 0.0, float("nan")
    last = min(stop_at or cfg.steps, cfg.steps)
    bar = Bar("sft", progress, cfg.steps, "steps")
    for step in range(start, last):
        bar(step)
        t0 = time.perf_counter()
        rng = np.random.default_rng([cfg.seed, step])
        ids, mask = _batch(train_ex, rng.integers(0, len(train_ex), cfg.batch))
        loss, grads = sft_grads(params, gpt, ids, mask)
        if not np.isfinite(loss):
            raise FloatingPointError(f"the SFT loss is {loss} at step {step}: lower lr")
        _step(params, grads, opt, cfg, step)
        seconds += time.perf_counter() - t0
        tokens += ids.size
    bar.close(last)
    if ckpt is not None:
        save_checkpoint(ckpt, params, opt, last, meta)
    return {"val_response_loss_before": round(before, 5),
            "val_response_loss": round(response_loss(params, gpt, val_ex), 5),
            "train_loss": round(float(loss), 5), "tokens_per_s": round(tokens / seconds, 1) if seconds else None,
            "steps": last, "train_rows": len(train_rows), "val_rows": len(val_rows), "template": template.kind,
            "checkpoint": str(ckpt) if ckpt else None}


# ----------------------------------------------------------------------------------------
# Reward model


def preference_examples(rows, template: ChatTemplate, gpt: GPTConfig):
    out = []
    for row in rows:
        p = template.prompt_ids(row["prompt"])
        if len(p) >= gpt.ctx:
            raise ValueError(f"a prompt fills the context of {gpt.ctx} tokens: {row['prompt'][:60]!r}")
        c = _fit(p + template.response_ids(row["chosen"]), gpt.ctx)  # the reward reads whole sequences
        r = _fit(p + template.response_ids(row["rejected"]), gpt.ctx)
        out.append((c, r))
    return out


def _pairs(examples, idx):
    chosen, c_len = pad([examples[i][0] for i in idx])
    rejected, r_len = pad([examples[i][1] for i in idx])
    return chosen, c_len, rejected, r_len


def preference_figures(params, gpt: GPTConfig, examples) -> tuple[float, float]:
    """(mean Bradley-Terry loss, accuracy) over ``examples``."""
    losses, accs, n = 0.0, 0.0, 0
    for lo in range(0, len(examples), 16):
        idx = range(lo, min(lo + 16, len(examples)))
        loss, acc, _ = post.bradley_terry(params, gpt, *_pairs(examples, idx), grads=False)
        losses, accs, n = losses + loss * len(idx), accs + acc * len(idx), n + len(idx)
    return losses / n, accs / n


def train_reward(params, gpt: GPTConfig, enc, rows: list[dict], cfg: TuneConfig, *, out_dir=None,
                 resume=None, meta: dict | None = None, progress: bool = False) -> tuple[dict, dict]:
    """A reward model from ``{"prompt", "chosen", "rejected"}`` rows: (its parameters, figures)."""
    template = ChatTemplate(enc)
    rm = post.init_reward_head(params, params["wte"].dtype)
    train_rows, val_rows = split(rows)
    train_ex, val_ex = preference_examples(train_rows, template, gpt), preference_examples(val_rows, template, gpt)
    meta = {**(meta or {}), "stage": "reward", "model": dataclasses.asdict(gpt), "tune": dataclasses.asdict(cfg)}
    opt, start, ckpt = _start(rm, cfg, out_dir, resume, meta)
    t0, pairs = time.perf_counter(), 0
    bar = Bar("reward model", progress, cfg.steps, "steps")
    for step in range(start, cfg.steps):
        bar(step)
        rng = np.random.default_rng([cfg.seed, step])
        loss, _, grads = reward_grads(rm, gpt, *_pairs(train_ex, rng.integers(0, len(train_ex), cfg.batch)))
        _step(rm, grads, opt, cfg, step)
        pairs += cfg.batch
    bar.close(cfg.steps)
    seconds = time.perf_counter() - t0
    if ckpt is not None:
        save_checkpoint(ckpt, rm, opt, cfg.steps, meta)
    val_loss, val_acc = preference_figures(rm, gpt, val_ex)
    train_loss, train_acc = preference_figures(rm, gpt, train_ex)
    return rm, {"val_accuracy": round(val_acc, 4), "val_loss": round(val_loss, 5),
                "train_accuracy": round(train_acc, 4), "train_loss": round(train_loss, 5),
                "pairs_per_s": round(pairs / seconds, 1) if seconds else None, "steps": cfg.steps,
                "checkpoint": str(ckpt) if ckpt else None}


def reward_scorer(rm, gpt: GPTConfig) -> Callable[[list[list[int]]], np.ndarray]:
    """The reward model as a function of whole sequences (prompt and response ids)."""
    def score(sequences: list[list[int]]) -> np.ndarray:
        ids, lengths = pad(sequences)
        return post.reward_forward(rm, gpt, ids, lengths)[0].astype(np.float64)
    return score


# ----------------------------------------------------------------------------------------
# RL


def sample_group(params, gpt: GPTConfig, prompt: list[int], n: int, max_new: int, stop: int | None,
                 rng: np.random.Generator, temperature: float = 1.0) -> list[list[int]]:
    """``n`` responses to ``prompt``, sampled side by side; each ends at ``stop`` (kept)."""
    from bpe.lm.sample import Decoder

    decoder = Decoder(params, gpt, n)
    logits = decoder.prefill(np.tile(np.asarray(prompt, np.int64), (n, 1)))    # [n, V]
    out: list[list[int]] = [[] for _ in range(n)]
    alive = np.ones(n, bool)
    for _ in range(min(max_new, gpt.ctx - len(prompt))):
        z = logits.astype(np.float64) / temperature
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        u = rng.random(n)
        tokens = np.minimum((p.cumsum(1) < u[:, None]).sum(1), p.shape[1] - 1)     # [n]
        for i in np.flatnonzero(alive):
            out[i].append(int(tokens[i]))
            if tokens[i] == stop:
                alive[i] = False
        if not alive.any():
            break
        logits = decoder.step(tokens)
    return out


def _rollouts(params, gpt, prompts, cfg: TuneConfig, stop, rng):
    seqs, masks_from = [], []
    for p in prompts:
        for r in sample_group(params, gpt, p, cfg.group, cfg.max_new_tokens, stop, rng, cfg.temperature):
            seqs.append(p + r)
            masks_from.append(len(p) - 1)
    ids, lengths = pad(seqs)
    mask = np.zeros((len(seqs), ids.shape[1] - 1), dtype=np.float64)
    for j, (start, n) in enumerate(zip(masks_from, lengths)):
        mask[j, start:n - 1] = 1.0                                   # the response's targets
    return seqs, ids, mask


def sequence_kl(params, ref, gpt, ids, mask) -> float:
    """Mean over sequences of sum_t (log p - log p_ref) on their response tokens."""
    diff = (post.sequence_logprobs(params, gpt, ids) - post.sequence_logprobs(ref, gpt, ids)) * mask
    return float(diff.sum(1).mean())


def evaluate_policy(params, ref, gpt, prompts, cfg: TuneConfig, stop, score, seed: int) -> tuple[float, float]:
    """(mean reward, mean sequence KL to ``ref``) of fresh samples on ``prompts``."""
    rng = np.random.default_rng([seed, 1 << 30])
    seqs, ids, mask = _rollouts(params, gpt, prompts, cfg, stop, rng)
    return float(np.mean(score(seqs))), sequence_kl(params, ref, gpt, ids, mask)


def rl(params, gpt: GPTConfig, enc, prompts: list[str], score: Callable[[list[list[int]]], np.ndarray],
       cfg: TuneConfig, *, out_dir=None, resume=None, meta: dict | None = None, eval_prompts: int = 8,
       stop_at: int = 0, progress: bool = False) -> dict:
    """Maximise ``E[score(x, y)] - beta KL(policy || start)`` over ``prompts`` with PPO.

    ``params`` (changed in place) is the policy and, as it is at the start, the frozen
    reference. ``score`` maps whole sequences (prompt and response ids) to rewards.
    """
    template = ChatTemplate(enc)
    ref = {k: v.copy() for k, v in params.items()}
    encoded = [template.prompt_ids(p) for p in prompts]
    too_long = [i for i, p in enumerate(encoded) if len(p) >= gpt.ctx]
    if too_long:
        raise ValueError(f"prompt {too_long[0]} fills the context of {gpt.ctx} tokens")
    held = encoded[:eval_prompts]
    reward_before, _ = evaluate_policy(params, ref, gpt, held, cfg, template.end, score, cfg.seed)
    meta = {**(meta or {}), "stage": "rl", "model": dataclasses.asdict(gpt), "tune": dataclasses.asdict(cfg)}
    opt, start, ckpt = _start(params, cfg, out_dir, resume, meta)
    history = []
    t0, tokens = time.perf_counter(), 0
    last = min(stop_at or cfg.steps, cfg.steps)
    bar = Bar("rl", progress, cfg.steps, "steps")
    for step in range(start, last):
        bar(step)
        rng = np.random.default_rng([cfg.seed, step])
        batch = [encoded[i] for i in rng.integers(0, len(encoded), cfg.batch)]
        seqs, ids, mask = _rollouts(params, gpt, batch, cfg, template.end, rng)
        rewards = score(seqs).reshape(cfg.batch, cfg.group)          # [P, G]
        adv = (rewards - rewards.mean(1, keepdims=True)) / (rewards.std(1, keepdims=True) + 1e-6)
        old = post.sequence_logprobs(params, gpt, ids)
        ref_logp = post.sequence_logprobs(ref, gpt, ids)
        for _ in range(cfg.epochs):
            loss, grads, stats = ppo_grads(params, gpt, ids, mask, old, ref_logp, adv.reshape(-1),
                                           cfg.clip, cfg.beta)
            _step(params, grads, opt, cfg, step)
        tokens += int(mask.sum())
        history.append(round(float(rewards.mean()), 5))
    bar.close(last)
    seconds = time.perf_counter() - t0
    if ckpt is not None:
        save_checkpoint(ckpt, params, opt, last, {**meta, "adam_t": opt.t, "reward_history": history})
    reward_after, kl = evaluate_policy(params, ref, gpt, held, cfg, template.end, score, cfg.seed)
    return {"reward_before": round(reward_before, 5), "reward_after": round(reward_after, 5), "kl": round(kl, 5),
            "beta": cfg.beta, "steps": last, "response_tokens_per_s": round(tokens / seconds, 1) if seconds else None,
            "reward_history": history, "checkpoint": str(ckpt) if ckpt else None}


# ----------------------------------------------------------------------------------------
# DPO


def _dpo_batch(examples, idx, template: ChatTemplate, prompt_lens):
    rows = [examples[i][0] for i in idx] + [examples[i][1] for i in idx]
    starts = [prompt_lens[i] for i in idx] * 2
    ids, lengths = pad(rows)
    mask = np.zeros((len(rows), ids.shape[1] - 1), dtype=np.float64)
    for j, (start, n) in enumerate(zip(starts, lengths)):
        mask[j, start - 1:n - 1] = 1.0                               # the response's targets
    return ids, mask


def dpo(params, gpt: GPTConfig, enc, rows: list[dict], cfg: TuneConfig, *, out_dir=None, resume=None,
        meta: dict | None = None, progress: bool = False) -> dict:
    """Direct preference optimisation of ``params`` (in place) on ``{"prompt", "chosen",
    "rejected"}`` rows, against the frozen starting policy, with ``cfg.beta``."""
    template = ChatTemplate(enc)
    ref = {k: v.copy() for k, v in params.items()}
    train_rows, val_rows = split(rows)
    examples = {name: preference_examples(r, template, gpt) for name, r in (("train", train_rows), ("val", val_rows))}
    plens = {name: [len(template.prompt_ids(row["prompt"])) for row in r]
             for name, r in (("train", train_rows), ("val", val_rows))}

    def figures(p) -> tuple[float, float]:
        ex, pl = examples["val"], plens["val"]
        ids, mask = _dpo_batch(ex, range(len(ex)), template, pl)
        loss, _, acc = post.dpo_loss_and_grads(p, gpt, ids, mask, post.sequence_logprobs(ref, gpt, ids), cfg.beta)
        return loss, acc

    loss_before, _ = figures(params)
    meta = {**(meta or {}), "stage": "dpo", "model": dataclasses.asdict(gpt), "tune": dataclasses.asdict(cfg)}
    opt, start, ckpt = _start(params, cfg, out_dir, resume, meta)
    bar = Bar("dpo", progress, cfg.steps, "steps")
    for step in range(start, cfg.steps):
        bar(step)
        rng = np.random.default_rng([cfg.seed, step])
        ids, mask = _dpo_batch(examples["train"], rng.integers(0, len(train_rows), cfg.batch), template, plens["train"])
        ref_logp = post.sequence_logprobs(ref, gpt, ids)
        norm = float(cfg.batch)

        def part(lo, hi, ids=ids, mask=mask, ref_logp=ref_logp, norm=norm):  # a slice takes whole pairs
            sel = np.r_[lo:hi, cfg.batch + lo:cfg.batch + hi]
            return post.dpo_loss_and_grads(params, gpt, ids[sel], mask[sel], ref_logp[sel], cfg.beta, norm)

        _, grads, _ = sum_over_slices(part, cfg.batch)
        _step(params, grads, opt, cfg, step)
    bar.close(cfg.steps)
    if ckpt is not None:
        save_checkpoint(ckpt, params, opt, cfg.steps, meta)
    val_loss, val_acc = figures(params)
    return {"val_loss_before": round(loss_before, 5), "val_loss": round(val_loss, 5),
            "val_accuracy": round(val_acc, 4), "beta": cfg.beta, "steps": cfg.steps,
            "checkpoint": str(ckpt) if ckpt else None}
