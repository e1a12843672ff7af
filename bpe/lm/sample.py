"""Use a trained model: generate text, and score the options of a multiple-choice question.

Generation is the loop tokenize -> forward -> next-token distribution -> sample ->
detokenize. Tokens are bytes, and a character may be cut between two tokens, so the text
goes out through an incremental UTF-8 decoder that holds a partial character back until
it is whole: what is printed is never a broken character.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from bpe.lm import model
from bpe.lm.model import GPTConfig


def next_token_distribution(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
                            top_p: float | None = None) -> np.ndarray:
    """Probabilities [V] to sample from: logits / temperature, then only the ``top_k`` most
    likely, then only the smallest set whose probability reaches ``top_p``.

    >>> p = next_token_distribution(np.log(np.array([0.5, 0.3, 0.2])), top_p=0.7)
    >>> np.round(p, 3).tolist()
    [0.625, 0.375, 0.0]
    """
    if temperature <= 0:
        probs = np.zeros(len(logits))
        probs[int(np.argmax(logits))] = 1.0
        return probs
    z = logits.astype(np.float64) / temperature
    if top_k is not None and 0 < top_k < len(z):
        kth = np.partition(z, -top_k)[-top_k]
        z[z < kth] = -np.inf
    z -= z.max()
    probs = np.exp(z)
    probs /= probs.sum()
    if top_p is not None and 0 < top_p < 1:
        order = np.argsort(-probs, kind="stable")
        cumulative = np.cumsum(probs[order])
        keep = order[: int(np.searchsorted(cumulative, top_p) + 1)]  # reach top_p, then stop
        mask = np.zeros_like(probs, bool)
        mask[keep] = True
        probs[~mask] = 0.0
        probs /= probs.sum()
    return probs


class Decoder:
    """The model one position at a time, for generation: the keys and values of the positions
    before are kept (a KV cache), so each new token costs one position's work, not the
    whole window's. ``step`` gives the same logits as :func:`model.logits_forward` over the
    sequence so far (the tests hold it to that); once the context is full, the window slides
    as in ``generate_ids`` before: the cache is rebuilt from the last ``ctx - 1`` tokens.

    >>> cfg = GPTConfig(vocab_size=20, ctx=8, d_model=8, n_layer=1, n_head=2)
    >>> p = model.init_params(cfg, 0, np.float64)
    >>> d = Decoder(p, cfg, 1)
    >>> last = [d.step(np.array([t])) for t in (3, 1, 4)][-1]
    >>> bool(np.allclose(last, model.logits_forward(p, cfg, np.array([[3, 1, 4]]))[:, -1]))
    True
    """

    def __init__(self, params, cfg: GPTConfig, batch: int):
        self.p, self.cfg = params, cfg
        self.H, self.hd = cfg.n_head, cfg.d_model // cfg.n_head
        dtype = params["wte"].dtype
        self.k = [np.zeros((batch, self.H, cfg.ctx, self.hd), dtype) for _ in range(cfg.n_layer)]
        self.v = [np.zeros((batch, self.H, cfg.ctx, self.hd), dtype) for _ in range(cfg.n_layer)]
        self.t = 0
        self.history: list[np.ndarray] = []

    def step(self, tokens: np.ndarray) -> np.ndarray:
        """Logits [B, V] of the next token after appending ``tokens`` [B]."""
        cfg, p = self.cfg, self.p
        if self.t == cfg.ctx:  # slide: the last ctx - 1 tokens again, then this one
            keep = self.history[1 - cfg.ctx:] if cfg.ctx > 1 else []
            self.t, self.history = 0, []
            for old in keep:
                self.step(old)
        self.history.append(tokens)
        t, B = self.t, len(tokens)
        x = p["wte"][tokens] + p["wpe"][t]                                     # [B, d]
        for i in range(cfg.n_layer):
            h, _ = model.layernorm_forward(x, p[f"h{i}.ln1.g"], p[f"h{i}.ln1.b"])
            qkv = (h @ p[f"h{i}.attn.w"] + p[f"h{i}.attn.b"]).reshape(B, 3, self.H, self.hd)
            self.k[i][:, :, t] = qkv[:, 1]
            self.v[i][:, :, t] = qkv[:, 2]
            q = qkv[:, 0][:, :, None, :] * (1.0 / np.sqrt(self.hd))               # [B, H, 1, hd]
            att = q @ self.k[i][:, :, :t + 1].transpose(0, 1, 3, 2)              # [B, H, 1, t+1]
            att -= att.max(-1, keepdims=True)
            np.exp(att, out=att)
            att /= att.sum(-1, keepdims=True)
            y = (att @ self.v[i][:, :, :t + 1]).reshape(B, cfg.d_model)          # [B, d]
            x = x + (y @ p[f"h{i}.proj.w"] + p[f"h{i}.proj.b"])
            h, _ = model.layernorm_forward(x, p[f"h{i}.ln2.g"], p[f"h{i}.ln2.b"])
            f, _ = model.gelu_forward(h @ p[f"h{i}.fc.w"] + p[f"h{i}.fc.b"])
            x = x + (f @ p[f"h{i}.fc2.w"] + p[f"h{i}.fc2.b"])
        h, _ = model.layernorm_forward(x, p["lnf.g"], p["lnf.b"])
        self.t += 1
        return h @ p["wte"].T                                                  # [B, V]

    def prefill(self, ids: np.ndarray) -> np.ndarray:
        """Feed ``ids`` [B, t] (t >= 1); the logits after the last."""
        for j in range(ids.shape[1]):
            logits = self.step(ids[:, j])
        return logits


def generate_ids(params, cfg: GPTConfig, ids: list[int], max_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
                 stop: int | None = None) -> Iterator[int]:
    """Yield ``max_tokens`` sampled ids after the prompt ``ids`` (not empty; fewer if ``stop``
    comes)."""
    if not ids:
        raise ValueError("generation needs at least one token of context")
    rng = np.random.default_rng(seed)
    decoder = Decoder(params, cfg, 1)
    logits = decoder.prefill(np.asarray(ids[-cfg.ctx:], np.int64)[None, :])[0]   # [V]
    for _ in range(max_tokens):
        probs = next_token_distribution(logits, temperature, top_k, top_p)
        token = int(rng.choice(len(probs), p=probs))
        if token == stop:
            return
        yield token
        logits = decoder.step(np.array([token]))[0]


def generate(params, cfg: GPTConfig, enc, prompt: str, max_tokens: int = 200,
             write: Callable[[str], object] | None = None, **sampling) -> str:
    """Text the model writes after ``prompt``; ``write`` receives it as it comes, in whole
    characters. ``sampling``: temperature, top_k, top_p, seed."""
    eot = enc.special_tokens.get("<|endoftext|>")
    ids = enc.encode_ordinary(prompt)
    if not ids:  # nothing to continue: start as a new document does
        ids = [eot if eot is not None and eot < cfg.vocab_size else 0]
    out: list[str] = []

    def both(text):
        out.append(text)
        if write:
            write(text)

    stream_text(enc, generate_ids(params, cfg, ids, max_tokens, stop=eot, **sampling), both)
    return "".join(out)


def stream_text(enc, ids, write: Callable[[str], object]) -> None:
    """Hand the text of ``ids`` to ``write`` as it comes, in whole characters only: the bytes
    of a character cut between tokens wait for the rest. Special tokens are not text."""
    from bpe._stream import StreamDecoder

    decoder = StreamDecoder(enc)
    for token in ids:
        if token >= enc.n_vocab or enc.is_special_token(token):
            continue
        text = decoder.feed([token])
        if text:
            write(text)
    tail = decoder.flush()
    if tail:
        write(tail)


def score_options(params, cfg: GPTConfig, enc, prompt: str, options: list[str]) -> list[dict]:
    """Log-likelihood of each option after ``prompt``, as multiple-choice benchmarks score.

    The prompt and the option are encoded together (so the tokens at the seam are those the
    model would see) and the option's tokens are those after the prompt's. Each is scored
    with up to a context's worth of tokens before it. Returns per
    option: ``logprob`` (nats, total), ``bytes``, ``logprob_per_byte``, ``tokens``.
    """
    context = enc.encode_ordinary(prompt)
    results = []
    for option in options:
        full = enc.encode_ordinary(prompt + option)
        if full[: len(context)] == context:
            cont = full[len(context):]
        else:  # the seam merged across prompt and option: score the option on its own tokens
            full, cont = context + enc.encode_ordinary(option), enc.encode_ordinary(option)
        if not cont:
            raise ValueError(f"option {option!r} is empty")
        if not context:
            eot = enc.special_tokens.get("<|endoftext|>", 0)
            full, ctx_len = [eot] + full, 1
        else:
            ctx_len = len(full) - len(cont)
        ids = np.asarray(full, np.int64)
        # Each option token is scored with as many tokens before it as the context holds:
        # those within the first window in one pass, later ones each in a window of its own.
        head = min(len(ids), cfg.ctx + 1)
        nll = model.token_nll(params, cfg, ids[None, : head - 1], ids[None, 1:head])[0]
        total = -float(nll[ctx_len - 1:].sum()) if ctx_len < head else 0.0
        later = np.arange(max(head, ctx_len), len(ids))
        if len(later):
            x = np.stack([ids[j - cfg.ctx : j] for j in later])        # [m, ctx]
            y = np.stack([ids[j - cfg.ctx + 1 : j + 1] for j in later])
            total -= float(model.token_nll(params, cfg, x, y)[:, -1].sum())
        n_bytes = len(option.encode("utf-8"))
        results.append({"option": option, "logprob": total, "bytes": n_bytes,
                        "logprob_per_byte": total / max(n_bytes, 1), "tokens": len(cont)})
    return results


def best(results: list[dict]) -> dict:
    """Indices of the most likely option, by total log-likelihood and per byte."""
    return {"best": int(np.argmax([r["logprob"] for r in results])),
            "best_per_byte": int(np.argmax([r["logprob_per_byte"] for r in results]))}

