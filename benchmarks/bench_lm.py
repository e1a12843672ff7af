"""bpe.lm (numpy) against the same GPT in PyTorch: tokens/s and validation bits per byte.

Both models have the same architecture, initialisation scheme, AdamW settings, schedule,
gradient clipping, data split and batches (the batch of step s comes from (seed, s) for
both). They train in alternating slices of steps, so both see the same machine, and are
scored on the same validation windows. The ratio column divides the whole run's tokens/s;
the median slice ratio is the median over slices of torch's time / bpe.lm's. Both run in
one process, so the malloc settings of bpe.lm's first step (``bpe/lm/_memory.py``) hold
for torch's steps too.

    pip install torch==2.13.0          # the CPU build; a benchmark dependency only
    python benchmarks/bench_lm.py --steps 300
    python benchmarks/bench_lm.py --vocab 256 4096 --steps 300 --corpus ../shared/corpus/kjv.txt
    python benchmarks/bench_lm.py --vocab 256 4096 --stages    # SFT, reward model and PPO updates
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import bpe
from bpe.lm import data, model, optim
from bpe.lm._parallel import default_threads, loss_and_grads
from bpe.lm.model import GPTConfig
from bpe.lm.train import evaluate

HERE = Path(__file__).resolve().parent
DEFAULT_CORPUS = HERE.parent.parent / "shared" / "corpus" / "kjv.txt"


class Run:
    """Steps of one implementation, timed; the batch of step s comes from (seed, s)."""

    def __init__(self, gpt, args, tokens):
        self.gpt, self.args, self.tokens = gpt, args, tokens
        self.seconds, self.step = 0.0, 0

    def train(self, n: int) -> float:
        for _ in range(n):
            t0 = time.perf_counter()
            x, y = data.get_batch(self.tokens.train, self.args.batch, self.gpt.ctx,
                                  np.random.default_rng([self.args.seed, self.step]))
            loss = self.update(x, y, optim.lr_at(self.step, self.args.steps, self.args.lr))
            self.seconds += time.perf_counter() - t0
            self.step += 1
        return loss


class NumpyRun(Run):
    def __init__(self, gpt, args, tokens):
        super().__init__(gpt, args, tokens)
        self.params = model.init_params(gpt, args.seed)
        self.opt = optim.AdamW(self.params, weight_decay=0.1)

    def update(self, x, y, lr):
        loss, grads = loss_and_grads(self.params, self.gpt, x, y, default_threads())
        optim.clip_grads(grads, 1.0)
        self.opt.step(self.params, grads, lr)
        return loss

    def evaluate(self, lengths):
        return evaluate(self.params, self.gpt, self.tokens.val, lengths, self.args.eval_tokens)


def torch_run_class():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Block(nn.Module):
        def __init__(self, d, n_head):
            super().__init__()
            self.n_head = n_head
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.attn, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.fc, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

        def forward(self, x):
            B, T, d = x.shape
            q, k, v = self.attn(self.ln1(x)).split(d, dim=2)
            q, k, v = (t.view(B, T, self.n_head, d // self.n_head).transpose(1, 2) for t in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(y.transpose(1, 2).reshape(B, T, d))
            return x + self.fc2(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self, cfg: GPTConfig):
            super().__init__()
            d = cfg.d_model
            self.wte, self.wpe = nn.Embedding(cfg.vocab_size, d), nn.Embedding(cfg.ctx, d)
            self.h = nn.ModuleList(Block(d, cfg.n_head) for _ in range(cfg.n_layer))
            self.lnf = nn.LayerNorm(d)
            for name, p in self.named_parameters():  # GPT-2's initialisation, as bpe.lm's
                if p.dim() >= 2:
                    std = 0.02 / math.sqrt(2 * cfg.n_layer) if name.endswith(("proj.weight", "fc2.weight")) else 0.02
                    nn.init.normal_(p, 0.0, std)
                elif name.endswith("bias"):
                    nn.init.zeros_(p)

        def hidden(self, idx):
            x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
            for block in self.h:
                x = block(x)
            return self.lnf(x)

        def forward(self, idx, targets=None, reduction="mean"):
            logits = self.hidden(idx) @ self.wte.weight.T
            return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction=reduction)

    class TorchRun(Run):
        def __init__(self, gpt, args, tokens):
            super().__init__(gpt, args, tokens)
            torch.manual_seed(args.seed)
            torch.set_num_threads(default_threads())
            self.model = GPT(gpt)
            decay = [p for p in self.model.parameters() if p.dim() >= 2]
            other = [p for p in self.model.parameters() if p.dim() < 2]
            self.opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                                          {"params": other, "weight_decay": 0.0}],
                                         lr=args.lr, betas=(0.9, 0.95), eps=1e-8)

        def update(self, x, y, lr):
            for group in self.opt.param_groups:
                group["lr"] = lr
            loss = self.model(torch.from_numpy(x), torch.from_numpy(y))
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.opt.step()
            return float(loss)

        @torch.no_grad()
        def evaluate(self, lengths):
            nats, n, n_bytes = 0.0, 0, 0
            for x, y in data.windows(self.tokens.val, self.gpt.ctx, self.args.eval_tokens):
                nats += float(self.model(torch.from_numpy(x), torch.from_numpy(y), reduction="sum"))
                n += y.size
                n_bytes += int(lengths[y].sum())
            return {"val_loss": nats / n, "val_bpb": nats / math.log(2) / n_bytes}

    TorchRun.GPT = GPT
    return TorchRun


# ----------------------------------------------------------------------------------------
# --stages: one update step of SFT, the reward model and PPO, numpy against torch, on the
# same parameters (copied from numpy into torch, so the first losses must agree) and batch.


def load_numpy_params(net, params) -> None:
    """Copy bpe.lm's parameters into the torch GPT (weights transposed: torch's are [out, in])."""
    import torch

    names = {"wte": "wte.weight", "wpe": "wpe.weight", "lnf.g": "lnf.weight", "lnf.b": "lnf.bias"}
    for key in params:
        if key.startswith("h"):
            i, layer, kind = key.split(".")
            names[key] = f"h.{i[1:]}.{layer}.{'weight' if kind in ('w', 'g') else 'bias'}"
    state = net.state_dict()
    for key, name in names.items():
        value = torch.from_numpy(np.ascontiguousarray(params[key]))
        state[name].copy_(value.T if key.endswith(".w") else value)


def stage_rows(args, gpt, tokens) -> list[tuple]:
    import torch
    import torch.nn.functional as F

    from bpe.lm import finetune, post

    TorchRun = torch_run_class()
    torch.set_num_threads(default_threads())
    rng = np.random.default_rng(args.seed)
    B, T = args.batch, gpt.ctx
    starts = rng.integers(0, len(tokens.train) - T - 1, B)
    ids = np.stack([np.asarray(tokens.train[s:s + T + 1], np.int64) for s in starts])      # [B, T+1]
    mask = np.zeros((B, T))
    mask[:, T // 2:] = 1.0                                                                 # the "response"
    lengths = np.full(B // 2, T)  # the reward model reads ids[:, :T], a whole context
    params = model.init_params(gpt, args.seed)
    rows = []

    def timed(step_a, step_b, n):
        ta = tb = 0.0
        for k in range(0, n, 5):
            t0 = time.perf_counter()
            for _ in range(5):
                step_a()
            ta += time.perf_counter() - t0
            t0 = time.perf_counter()
            for _ in range(5):
                step_b()
            tb += time.perf_counter() - t0
        return ta, tb

    for stage in ("sft", "reward", "ppo"):
        p = {k: v.copy() for k, v in params.items()}
        net = TorchRun.GPT(gpt)
        load_numpy_params(net, p)
        head = torch.nn.Linear(gpt.d_model, 1)
        if stage == "reward":
            p = post.init_reward_head(p)
            p["reward.w"][:] = rng.standard_normal(gpt.d_model).astype(np.float32) * 0.1
            with torch.no_grad():
                head.weight.copy_(torch.from_numpy(p["reward.w"])[None, :])
                head.bias.zero_()
        opt = optim.AdamW(p, weight_decay=0.0)
        topt = torch.optim.AdamW(list(net.parameters()) + list(head.parameters()), lr=1e-4, betas=(0.9, 0.95),
                                 eps=1e-8, weight_decay=0.0)
        x, y, m = torch.from_numpy(ids[:, :-1]), torch.from_numpy(ids[:, 1:]), torch.from_numpy(mask)
        logp0 = post.sequence_logprobs(p, gpt, ids) if stage == "ppo" else None
        old = (logp0 + rng.normal(0, 0.1, logp0.shape)) if stage == "ppo" else None
        ref = (logp0 + rng.normal(0, 0.1, logp0.shape)) if stage == "ppo" else None
        adv = rng.standard_normal(B) if stage == "ppo" else None

        def numpy_loss_grads():  # what the loops of bpe.lm.finetune call
            if stage == "sft":
                return finetune.sft_grads(p, gpt, ids, mask)
            if stage == "reward":
                loss, _, g = finetune.reward_grads(p, gpt, ids[:B // 2, :T], lengths, ids[B // 2:, :T], lengths)
                return loss, g
            loss, g, _ = finetune.ppo_grads(p, gpt, ids, mask, old, ref, adv, 0.2, 0.1)
            return loss, g

        def torch_loss():
            if stage == "reward":
                h = net.hidden(x)[:, -1]                                                       # [B, d]
                r = head(h)[:, 0]
                return F.softplus(-(r[:B // 2] - r[B // 2:])).mean()
            logits = net.hidden(x) @ net.wte.weight.T
            logp = -F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(B, T)
            if stage == "sft":
                return -(logp * m).sum() / m.sum()
            ratio = torch.exp(logp - torch.from_numpy(old))
            A = torch.from_numpy(adv)[:, None]
            surrogate = torch.minimum(ratio * A, torch.clamp(ratio, 0.8, 1.2) * A)
            q = torch.from_numpy(ref) - logp
            kl = torch.exp(q) - q - 1
            return (m * (-surrogate + 0.1 * kl)).sum() / m.sum()

        first_numpy = numpy_loss_grads()[0]
        first_torch = float(torch_loss().detach())

        def step_numpy():
            _, g = numpy_loss_grads()
            optim.clip_grads(g, 1.0)
            opt.step(p, g, 1e-4)

        def step_torch():
            loss = torch_loss()
            topt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(list(net.parameters()) + list(head.parameters()), 1.0)
            topt.step()

        step_numpy(), step_torch()  # warm-up
        ta, tb = timed(step_numpy, step_torch, args.stage_steps)
        n_tok = args.stage_steps * B * T
        rows.append((stage, n_tok / ta, n_tok / tb, first_numpy, first_torch))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    parser.add_argument("--vocab", type=int, nargs="+", default=[4096], help="vocabulary sizes to train and run")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--slice", type=int, default=10, help="steps of one before switching to the other")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--ctx", type=int, default=128)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--n-head", type=int, default=4)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-tokens", type=int, default=1 << 16)
    parser.add_argument("--stages", action="store_true",
                        help="time one update of SFT, the reward model and PPO against torch instead")
    parser.add_argument("--stage-steps", type=int, default=40, help="updates of each stage (--stages)")
    args = parser.parse_args()
    try:
        TorchRun = torch_run_class()
        import torch
    except ImportError:
        print("PyTorch is not installed: pip install torch==2.13.0 (a CPU build)", file=sys.stderr)
        return 2

    if args.stages:
        return main_stages(args)
    rows = []
    for vocab in args.vocab:
        enc = bpe.train(args.corpus, vocab_size=vocab, pattern="o200k", progress=False, name=f"kjv-{vocab}")
        with tempfile.TemporaryDirectory() as scratch:
            tokens = data.prepare(args.corpus, enc, scratch, enc.name)
            tokens = data.TokenData(np.array(tokens.tokens), tokens.n_vocab, tokens.n_bytes)
        lengths = data.token_byte_lengths(enc)
        gpt = GPTConfig(vocab_size=enc.n_vocab, ctx=args.ctx, d_model=args.d_model,
                        n_layer=args.n_layer, n_head=args.n_head)
        ours, theirs = NumpyRun(gpt, args, tokens), TorchRun(gpt, args, tokens)
        ours.train(2), theirs.train(2)  # warm-up steps, timed too but negligible over the run
        slice_ratios = []  # torch's seconds / ours, slice by slice: the machine drifts between them
        while ours.step < args.steps:
            n = min(args.slice, args.steps - ours.step)
            t_ours, t_theirs = ours.seconds, theirs.seconds
            a, b = ours.train(n), theirs.train(n)
            slice_ratios.append((theirs.seconds - t_theirs) / (ours.seconds - t_ours))
            print(f"\rvocab {vocab}: step {ours.step}/{args.steps}  loss numpy {a:.3f} torch {b:.3f}",
                  end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        e_ours, e_theirs = ours.evaluate(lengths), theirs.evaluate(lengths)
        rows.append((vocab, ours.step * args.batch * args.ctx / ours.seconds,
                     theirs.step * args.batch * args.ctx / theirs.seconds, statistics.median(slice_ratios),
                     e_ours["val_bpb"], e_theirs["val_bpb"]))

    print(f"\n{args.steps} steps, d_model {args.d_model}, {args.n_layer} layers, {args.n_head} heads, "
          f"context {args.ctx}, batch {args.batch}, {default_threads()} threads, torch {torch.__version__}, "
          f"numpy {np.__version__}; corpus {Path(args.corpus).name}")
    print("| vocab | bpe.lm tokens/s | torch tokens/s | ratio | median slice ratio | bpe.lm val bits/byte "
          "| torch val bits/byte | difference |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for vocab, a, b, median_ratio, bpb_a, bpb_b in rows:
        print(f"| {vocab} | {a:,.0f} | {b:,.0f} | {a / b:.2f}x | {median_ratio:.2f}x | {bpb_a:.4f} | {bpb_b:.4f} | "
              f"{(bpb_a - bpb_b) / bpb_b:+.1%} |")
    return 0


def main_stages(args) -> int:
    import torch

    print("| vocab | stage | bpe.lm tokens/s | torch tokens/s | ratio | first loss bpe.lm | first loss torch |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for vocab in args.vocab:
        enc = bpe.train(args.corpus, vocab_size=vocab, pattern="o200k", progress=False, name=f"kjv-{vocab}")
        with tempfile.TemporaryDirectory() as scratch:
            tokens = data.prepare(args.corpus, enc, scratch, enc.name)
            tokens = data.TokenData(np.array(tokens.tokens), tokens.n_vocab, tokens.n_bytes)
        gpt = GPTConfig(vocab_size=enc.n_vocab, ctx=args.ctx, d_model=args.d_model,
                        n_layer=args.n_layer, n_head=args.n_head)
        for stage, a, b, la, lb in stage_rows(args, gpt, tokens):
            print(f"| {vocab} | {stage} | {a:,.0f} | {b:,.0f} | {a / b:.2f}x | {la:.5f} | {lb:.5f} |", flush=True)
    print(f"\n{args.stage_steps} updates each, d_model {args.d_model}, {args.n_layer} layers, {args.n_head} heads, "
          f"context {args.ctx}, batch {args.batch}, {default_threads()} threads, torch {torch.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
