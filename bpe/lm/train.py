"""Train the numpy GPT on token ids: one loop, AdamW, warm-up then cosine, clipping, checkpoints.

Laid out as nanoGPT's train.py: the settings with their defaults, then ``evaluate``, then
the loop. Runs are reproducible: the parameters come from ``seed`` and the batch of step s
from ``(seed, s)``, so a run resumed from a checkpoint takes the steps it would have taken.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from bpe._files import open_atomic
from bpe.lm import data, model, optim
from bpe.lm._parallel import default_threads, loss_and_grads
from bpe.lm._parallel import token_nll as parallel_nll
from bpe.lm.model import GPTConfig


@dataclasses.dataclass
class TrainConfig:
    steps: int = 1000
    batch: int = 16
    lr: float = 3e-3
    seed: int = 0
    warmup: float = 0.1          # share of the steps with a linear warm-up
    final_lr: float = 0.1        # cosine decay ends at this share of lr
    weight_decay: float = 0.1    # on matrices only
    grad_clip: float = 1.0
    eval_every: int = 0          # 0: only at the end
    eval_tokens: int = 1 << 18   # validation tokens scored (at most)
    save_every: int = 0          # 0: only at the end
    threads: int = 0             # 0: all cores (at most 8)
    stop_at: int = 0             # stop after this step, keeping the schedule of `steps`
                                 # (a long run in parts: resume from the checkpoint later)

    def __post_init__(self):
        for field in ("steps", "batch"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be at least 1, got {getattr(self, field)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")


def evaluate(params, cfg: GPTConfig, tokens: np.ndarray, token_bytes: np.ndarray,
             max_tokens: int | None = None, batch: int = 16, threads: int | None = None) -> dict:
    """Loss (nats per token), perplexity and bits per byte over ``tokens``.

    Bits per byte = total nats / ln 2 / UTF-8 bytes of the tokens scored.
    """
    total_nats, n_scored, n_bytes = 0.0, 0, 0
    pending_x, pending_y = [], []

    def flush():
        nonlocal total_nats, n_scored, n_bytes
        x, y = np.concatenate(pending_x), np.concatenate(pending_y)
        total_nats += float(parallel_nll(params, cfg, x, y, threads).sum())
        n_scored += y.size
        n_bytes += int(token_bytes[y].sum())
        pending_x.clear()
        pending_y.clear()

    for x, y in data.windows(tokens, cfg.ctx, max_tokens):
        if pending_x and x.shape[1] != pending_x[0].shape[1]:
            flush()
        pending_x.append(x)
        pending_y.append(y)
        if len(pending_x) == batch:
            flush()
    if pending_x:
        flush()
    if n_scored == 0:
        raise ValueError("no validation tokens to score: the text is too short")
    loss = total_nats / n_scored
    return {"val_loss": loss, "val_ppl": math.exp(min(loss, 700)),
            "val_bpb": total_nats / math.log(2) / max(n_bytes, 1),
            "val_tokens": n_scored, "val_bytes": n_bytes}


# ----------------------------------------------------------------------------------------
# Checkpoints: .npz with the parameters, AdamW's moments and the settings as JSON


def save_checkpoint(path, params, opt: optim.AdamW, step: int, meta: dict) -> None:
    arrays = {f"p/{k}": v for k, v in params.items()} | opt.state()
    meta = {**meta, "step": step}
    with open_atomic(path) as f:  # np.savez to a file object adds no ".npz" to the name
        np.savez(f, meta=np.array(json.dumps(meta)), **arrays)


def load_checkpoint(path) -> tuple[dict, dict, dict]:
    """(meta, parameters, optimizer arrays) of a checkpoint; ValueError naming the file."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            params = {k[2:]: z[k] for k in z.files if k.startswith("p/")}
            opt = {k: z[k] for k in z.files if k[:2] in ("m/", "v/")}
    except (OSError, KeyError, ValueError) as e:
        raise ValueError(f"{path}: not a bpe lm checkpoint ({e})") from None
    return meta, params, opt


# ----------------------------------------------------------------------------------------
# The loop


def _progress(enabled: bool):
    last = [0.0]
    tty = sys.stderr.isatty()

    def show(step, total, loss, lr, tok_s, force=False):
        now = time.perf_counter()
        if not enabled or (not force and now - last[0] < (0.2 if tty else 10)):
            return
        last[0] = now
        line = f"step {step:>6,}/{total:,}  loss {loss:.4f}  lr {lr:.2e}  {tok_s:,.0f} tokens/s"
        print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)
        if tty and force:
            print(file=sys.stderr)

    return show


def train(tokens: data.TokenData, gpt: GPTConfig, cfg: TrainConfig, token_bytes: np.ndarray,
          out_dir: str | os.PathLike | None = None, meta: dict | None = None,
          resume: str | os.PathLike | None = None, progress: bool = True,
          on_eval: Callable[[int, dict], None] | None = None) -> dict:
    """Train, evaluate on the validation tokens, save ``out_dir/ckpt.npz``; returns the figures
    (``val_loss``, ``val_ppl``, ``val_bpb``, ``tokens_per_s`` ...) and the loss history."""
    train_tokens, val_tokens = tokens.train, tokens.val
    if len(train_tokens) <= gpt.ctx + 1:
        raise ValueError(f"{len(train_tokens)} training tokens: fewer than one window of "
                         f"{gpt.ctx + 1}; use more text or a shorter --ctx")
    threads = cfg.threads or default_threads()
    params = model.init_params(gpt, cfg.seed)
    opt = optim.AdamW(params, weight_decay=cfg.weight_decay)
    start_step, history = 0, {"step": [], "loss": [], "val_step": [], "val_loss": [], "val_bpb": []}
    if resume is not None:
        saved_meta, saved, moments = load_checkpoint(resume)
        if saved_meta.get("model") != dataclasses.asdict(gpt):
            raise ValueError(f"{resume}: its model {saved_meta.get('model')} is not this run's "
                             f"{dataclasses.asdict(gpt)}")
        for k in params:
            params[k][...] = saved[k]
        start_step = int(saved_meta["step"])
        opt.load_state(moments, start_step)
        history = saved_meta.get("history", history)
    meta = {**(meta or {}), "model": dataclasses.asdict(gpt), "train": dataclasses.asdict(cfg)}
    ckpt = Path(out_dir) / "ckpt.npz" if out_dir is not None else None

    show = _progress(progress)
    tokens_seen, train_seconds = 0, 0.0
    loss = float("nan")
    last = min(cfg.stop_at or cfg.steps, cfg.steps)
    for step in range(start_step, last):
        t0 = time.perf_counter()
        x, y = data.get_batch(train_tokens, cfg.batch, gpt.ctx, np.random.default_rng([cfg.seed, step]))
        lr = optim.lr_at(step, cfg.steps, cfg.lr, cfg.warmup, cfg.final_lr)
        loss, grads = loss_and_grads(params, gpt, x, y, threads)
        if not math.isfinite(loss):
            raise FloatingPointError(f"the loss is {loss} at step {step}: lower --lr")
        optim.clip_grads(grads, cfg.grad_clip)
        opt.step(params, grads, lr)
        train_seconds += time.perf_counter() - t0
        tokens_seen += x.size
        history["step"].append(step + 1)
        history["loss"].append(round(loss, 5))
        show(step + 1, cfg.steps, loss, lr, tokens_seen / max(train_seconds, 1e-9))
        if cfg.eval_every and (step + 1) % cfg.eval_every == 0 and step + 1 < cfg.steps:
            figures = evaluate(params, gpt, val_tokens, token_bytes, cfg.eval_tokens, threads=threads)
            history["val_step"].append(step + 1)
            history["val_loss"].append(round(figures["val_loss"], 5))
            history["val_bpb"].append(round(figures["val_bpb"], 5))
            if on_eval:
                on_eval(step + 1, figures)
        if ckpt is not None and cfg.save_every and (step + 1) % cfg.save_every == 0:
            save_checkpoint(ckpt, params, opt, step + 1, {**meta, "history": history})
    show(last, cfg.steps, loss, optim.lr_at(last - 1, cfg.steps, cfg.lr, cfg.warmup, cfg.final_lr),
         tokens_seen / max(train_seconds, 1e-9), force=True)

    figures = evaluate(params, gpt, val_tokens, token_bytes, cfg.eval_tokens, threads=threads)
    history["val_step"].append(last)
    history["val_loss"].append(round(figures["val_loss"], 5))
    history["val_bpb"].append(round(figures["val_bpb"], 5))
    if ckpt is not None:
        save_checkpoint(ckpt, params, opt, last, {**meta, "history": history})
    return {
        **figures,
        "train_loss": loss,
        "tokens_per_s": tokens_seen / train_seconds if train_seconds else None,
        "steps": last,
        "params": model.n_params(params),
        "n_vocab": gpt.vocab_size,
        "train_tokens": int(len(train_tokens)),
        "threads": threads,
        "checkpoint": str(ckpt) if ckpt is not None else None,
        "history": history,
        "params_arrays": params,
    }
