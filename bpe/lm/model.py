"""A decoder-only transformer (GPT) in numpy: forward, and the exact backward, layer by layer.

Each layer is a pair ``forward(...) -> (out, cache)`` and ``backward(dout, cache) -> grads``.
The model reads top to bottom as GPT-2 does: token and position embeddings, ``n_layer``
pre-LayerNorm blocks (causal multi-head self-attention, then a GELU MLP, each added to the
residual stream), a final LayerNorm, and logits from the token embedding itself (tied).
Parameters live in a flat dict of arrays; their dtype decides the arithmetic (float32 to
train, float64 for gradient checks).

>>> cfg = GPTConfig(vocab_size=50, ctx=8, d_model=16, n_layer=1, n_head=2)
>>> params = init_params(cfg, seed=0)
>>> loss, _ = forward(params, cfg, np.zeros((2, 8), np.int64), np.ones((2, 8), np.int64))
>>> abs(loss - np.log(50)) < 0.1
True
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

# ----------------------------------------------------------------------------------------
# Configuration and parameters


@dataclasses.dataclass(frozen=True)
class GPTConfig:
    vocab_size: int
    ctx: int = 128
    d_model: int = 128
    n_layer: int = 4
    n_head: int = 4

    def __post_init__(self):
        for field in ("vocab_size", "ctx", "d_model", "n_layer", "n_head"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be at least 1, got {getattr(self, field)}")
        if self.d_model % self.n_head:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_head ({self.n_head})")


def init_params(cfg: GPTConfig, seed: int = 0, dtype=np.float32) -> dict[str, np.ndarray]:
    """GPT-2's initialisation: normal(0, 0.02) weights, the residual projections scaled down by
    sqrt(2 n_layer), zero biases, unit LayerNorm gains."""
    rng = np.random.default_rng(seed)
    d, std = cfg.d_model, 0.02

    def normal(*shape, scale=std):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    residual = std / math.sqrt(2 * cfg.n_layer)
    p = {"wte": normal(cfg.vocab_size, d), "wpe": normal(cfg.ctx, d)}
    for i in range(cfg.n_layer):
        p[f"h{i}.ln1.g"], p[f"h{i}.ln1.b"] = np.ones(d, dtype), np.zeros(d, dtype)
        p[f"h{i}.attn.w"], p[f"h{i}.attn.b"] = normal(d, 3 * d), np.zeros(3 * d, dtype)
        p[f"h{i}.proj.w"], p[f"h{i}.proj.b"] = normal(d, d, scale=residual), np.zeros(d, dtype)
        p[f"h{i}.ln2.g"], p[f"h{i}.ln2.b"] = np.ones(d, dtype), np.zeros(d, dtype)
        p[f"h{i}.fc.w"], p[f"h{i}.fc.b"] = normal(d, 4 * d), np.zeros(4 * d, dtype)
        p[f"h{i}.fc2.w"], p[f"h{i}.fc2.b"] = normal(4 * d, d, scale=residual), np.zeros(d, dtype)
    p["lnf.g"], p["lnf.b"] = np.ones(d, dtype), np.zeros(d, dtype)
    return p


def n_params(params: dict[str, np.ndarray]) -> int:
    return sum(v.size for v in params.values())


# ----------------------------------------------------------------------------------------
# Layers


def layernorm_forward(x, g, b, eps=1e-5):
    """x [..., d] normalised over its last axis, then scaled by g [d] and shifted by b [d]."""
    xhat = x - x.mean(-1, keepdims=True)                  # [..., d] centred
    var = np.einsum("...i,...i->...", xhat, xhat)[..., None] / xhat.shape[-1]  # [..., 1], no x^2 array
    rstd = 1.0 / np.sqrt(var + eps)                       # [..., 1]
    xhat *= rstd                                          # in place: one array fewer per call
    out = xhat * g
    out += b
    return out, (xhat, rstd, g)


def layernorm_backward(dout, cache):
    xhat, rstd, g = cache
    d = xhat.shape[-1]
    dg = np.einsum("ni,ni->i", dout.reshape(-1, d), xhat.reshape(-1, d))  # [d]
    db = dout.reshape(-1, d).sum(0)                        # [d]
    dxhat = dout * g                                       # [..., d]
    # d/dx of (x - mean) * rstd, through the mean and through rstd
    proj = np.einsum("...i,...i->...", dxhat, xhat)[..., None] / d  # [..., 1]
    dx = dxhat
    dx -= dxhat.mean(-1, keepdims=True)
    dx -= xhat * proj
    dx *= rstd
    return dx, dg, db


def linear_forward(x, w, b):
    """x [..., n_in] @ w [n_in, n_out] + b [n_out].

    One 2-D product over all rows: numpy multiplies a stack [B, T, n] by a matrix one
    [T, n] slice at a time, at half the speed; and the bias goes in in place, since a fresh
    array of this size costs its page faults again (docs/performance.md)."""
    out = x.reshape(-1, x.shape[-1]) @ w                       # [N, n_out]
    out += b
    return out.reshape(*x.shape[:-1], w.shape[1]), (x, w)


def linear_backward(dout, cache):
    x, w = cache
    n_in, n_out = w.shape
    d2 = dout.reshape(-1, n_out)                              # [N, n_out]
    dx = (d2 @ w.T).reshape(x.shape)                          # [..., n_in]
    dw = x.reshape(-1, n_in).T @ d2                           # [n_in, n_out]
    db = d2.sum(0)                                            # [n_out]
    return dx, dw, db


_GELU_C = math.sqrt(2.0 / math.pi)
_GELU_A = 0.044715


def gelu_forward(x):
    """GPT-2's GELU, the tanh approximation: 0.5 x (1 + tanh(c (x + 0.044715 x^3))).

    Written with in-place operations: each pass over the [B, T, 4d] array costs as much as
    the arithmetic, so the fewer temporaries the better.
    """
    t = x * x                                              # [..., n]
    t *= _GELU_A * _GELU_C
    t += _GELU_C
    t *= x                                                 # c (x + a x^3)
    np.tanh(t, out=t)
    out = t + 1.0
    out *= x
    out *= 0.5
    return out, (x, t)


def gelu_backward(dout, cache):
    x, t = cache
    # d/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2)
    inner = x * x
    inner *= 3 * _GELU_A * _GELU_C
    inner += _GELU_C                                       # c (1 + 3 a x^2)
    d = t * t
    np.subtract(1.0, d, out=d)
    d *= x
    d *= inner
    d += t
    d += 1.0
    d *= 0.5
    d *= dout
    return d


#: Row blocks of causal attention: block b's queries see only the keys up to its last row,
#: so the scores right of the diagonal blocks are never computed (4 blocks: 3/8 fewer; 4
#: beat 2 and 8 at context 128, docs/performance.md).
ATTENTION_BLOCKS = 4


@functools.lru_cache(maxsize=64)
def _causal_mask(rows: int, cols: int, first: int, dtype) -> np.ndarray:
    """[rows, cols]: 0 where query first + i may see key j (j <= first + i), -inf after.
    Built once per shape and shared, read-only."""
    mask = np.zeros((rows, cols), dtype)
    mask[np.triu_indices(rows, first + 1, cols)] = -np.inf
    mask.flags.writeable = False
    return mask


def _row_blocks(T: int, blocks: int) -> list[tuple[int, int]]:
    """``_row_blocks(128, 2)`` -> [(0, 64), (64, 128)]: the non-empty blocks of rows."""
    cuts = [T * b // blocks for b in range(blocks + 1)]
    return [(lo, hi) for lo, hi in zip(cuts[:-1], cuts[1:]) if hi > lo]


def attention_forward(qkv, n_head, blocks: int = ATTENTION_BLOCKS):
    """Causal multi-head self-attention of qkv [B, T, 3d] -> y [B, T, d]."""
    B, T, d3 = qkv.shape
    d = d3 // 3
    hd = d // n_head
    heads = qkv.reshape(B, T, 3, n_head, hd).transpose(2, 0, 3, 1, 4)  # [3, B, H, T, hd]
    q, k, v = heads[0], heads[1], heads[2]
    q = q * (1.0 / math.sqrt(hd))
    y = np.empty((B, T, n_head, hd), qkv.dtype)
    atts = []
    for lo, hi in _row_blocks(T, blocks):    # queries lo:hi see keys 0:hi
        att = q[:, :, lo:hi] @ k[:, :, :hi].transpose(0, 1, 3, 2)  # [B, H, hi - lo, hi] scores
        att += _causal_mask(hi - lo, hi, lo, qkv.dtype)
        att -= att.max(-1, keepdims=True)
        np.exp(att, out=att)
        att *= 1.0 / att.sum(-1, keepdims=True)            # rows sum to 1
        y[:, lo:hi] = (att @ v[:, :, :hi]).transpose(0, 2, 1, 3)
        atts.append((lo, hi, att))
    return y.reshape(B, T, d), (heads, atts)


def attention_backward(dy, cache):
    heads, atts = cache
    q, k, v = heads[0], heads[1], heads[2]
    B, H, T, hd = q.shape
    scale = 1.0 / math.sqrt(hd)
    dy = dy.reshape(B, T, H, hd).transpose(0, 2, 1, 3)     # [B, H, T, hd]
    dqkv = np.zeros((B, T, 3, H, hd), dy.dtype)            # q, k, v gradients side by side
    dq, dk, dv = (dqkv[:, :, j].transpose(0, 2, 1, 3) for j in range(3))  # [B, H, T, hd] views
    for lo, hi, att in atts:
        dyb = dy[:, :, lo:hi]
        datt = dyb @ v[:, :, :hi].transpose(0, 1, 3, 2)   # [B, H, hi - lo, hi]
        dv[:, :, :hi] += att.transpose(0, 1, 3, 2) @ dyb
        # softmax: dscores = att * (datt - sum(datt * att)); masked entries have att = 0
        datt -= np.einsum("...ij,...ij->...i", datt, att)[..., None]  # row dots, no product array
        datt *= att
        datt *= scale                                     # d(scores) / d(q . k) with q unscaled
        dq[:, :, lo:hi] = datt @ k[:, :, :hi]
        dk[:, :, :hi] += datt.transpose(0, 1, 3, 2) @ q[:, :, lo:hi]
    return dqkv.reshape(B, T, 3 * H * hd)


def cross_entropy_forward(logits, targets):
    """Mean negative log-likelihood of targets [N] under logits [N, V], and the cache.

    ``logits`` is overwritten with the probabilities (it is the largest array of a step).
    """
    N = len(targets)
    logits -= logits.max(-1, keepdims=True)                # [N, V]
    picked = logits[np.arange(N), targets].astype(np.float64)  # [N] shifted target logits
    probs = np.exp(logits, out=logits)
    total = probs.sum(-1, keepdims=True)                   # [N, 1]
    probs *= 1.0 / total
    # -log p = log(sum exp) - shifted logit: no log of a tiny probability
    nll = np.log(total[:, 0].astype(np.float64)) - picked  # [N]
    return float(nll.mean()), (probs, targets)


def cross_entropy_backward(cache):
    probs, targets = cache
    N = len(targets)
    dlogits = probs                                         # softmax - onehot, in place
    dlogits[np.arange(N), targets] -= 1.0
    dlogits *= 1.0 / N
    return dlogits


# ----------------------------------------------------------------------------------------
# The model


def block_forward(x, p, i, n_head):
    """x + attn(ln1(x)), then + mlp(ln2(.)): x [B, T, d] -> [B, T, d]."""
    h, c_ln1 = layernorm_forward(x, p[f"h{i}.ln1.g"], p[f"h{i}.ln1.b"])
    qkv, c_attn = linear_forward(h, p[f"h{i}.attn.w"], p[f"h{i}.attn.b"])   # [B, T, 3d]
    y, c_att = attention_forward(qkv, n_head)                                # [B, T, d]
    a, c_proj = linear_forward(y, p[f"h{i}.proj.w"], p[f"h{i}.proj.b"])
    x = x + a
    h, c_ln2 = layernorm_forward(x, p[f"h{i}.ln2.g"], p[f"h{i}.ln2.b"])
    f, c_fc = linear_forward(h, p[f"h{i}.fc.w"], p[f"h{i}.fc.b"])           # [B, T, 4d]
    f, c_gelu = gelu_forward(f)
    m, c_fc2 = linear_forward(f, p[f"h{i}.fc2.w"], p[f"h{i}.fc2.b"])        # [B, T, d]
    return x + m, (c_ln1, c_attn, c_att, c_proj, c_ln2, c_fc, c_gelu, c_fc2)


def block_backward(dx, cache, i, grads):
    c_ln1, c_attn, c_att, c_proj, c_ln2, c_fc, c_gelu, c_fc2 = cache
    df, grads[f"h{i}.fc2.w"], grads[f"h{i}.fc2.b"] = linear_backward(dx, c_fc2)
    df = gelu_backward(df, c_gelu)
    dh, grads[f"h{i}.fc.w"], grads[f"h{i}.fc.b"] = linear_backward(df, c_fc)
    dmid, grads[f"h{i}.ln2.g"], grads[f"h{i}.ln2.b"] = layernorm_backward(dh, c_ln2)
    dx = dx + dmid
    dy, grads[f"h{i}.proj.w"], grads[f"h{i}.proj.b"] = linear_backward(dx, c_proj)
    dqkv = attention_backward(dy, c_att)
    dh, grads[f"h{i}.attn.w"], grads[f"h{i}.attn.b"] = linear_backward(dqkv, c_attn)
    dmid, grads[f"h{i}.ln1.g"], grads[f"h{i}.ln1.b"] = layernorm_backward(dh, c_ln1)
    return dx + dmid


def hidden_forward(params, cfg: GPTConfig, idx):
    """Token ids idx [B, T] -> final hidden states [B, T, d] (after the last LayerNorm)."""
    B, T = idx.shape
    if T > cfg.ctx:
        raise ValueError(f"sequence of {T} tokens is longer than the context ({cfg.ctx})")
    x = params["wte"][idx] + params["wpe"][:T]             # [B, T, d]
    blocks = []
    for i in range(cfg.n_layer):
        x, c = block_forward(x, params, i, cfg.n_head)
        blocks.append(c)
    h, c_lnf = layernorm_forward(x, params["lnf.g"], params["lnf.b"])
    return h, (idx, blocks, c_lnf)


def logits_forward(params, cfg: GPTConfig, idx):
    """Token ids idx [B, T] -> next-token logits [B, T, V]."""
    h, _ = hidden_forward(params, cfg, idx)
    return h @ params["wte"].T


def forward(params, cfg: GPTConfig, idx, targets):
    """Mean cross-entropy (nats per token) of targets [B, T] after idx [B, T], and the cache."""
    h, cache = hidden_forward(params, cfg, idx)
    B, T, d = h.shape
    h2 = h.reshape(B * T, d)                               # [N, d]
    logits = h2 @ params["wte"].T                          # [N, V]
    loss, c_ce = cross_entropy_forward(logits, targets.reshape(-1))
    return loss, (cache, h2, c_ce)


def backward(params, cfg: GPTConfig, cache) -> dict[str, np.ndarray]:
    """Gradients of the loss of :func:`forward` with respect to every parameter."""
    hidden_cache, h2, c_ce = cache
    idx = hidden_cache[0]
    B, T = idx.shape
    dlogits = cross_entropy_backward(c_ce)                 # [N, V]
    dwte = dlogits.T @ h2                                   # [V, d] from the tied output layer
    dh = (dlogits @ params["wte"]).reshape(B, T, -1)        # [B, T, d]
    return hidden_backward(params, cfg, hidden_cache, dh, dwte)


def hidden_backward(params, cfg: GPTConfig, cache, dh, dwte=None) -> dict[str, np.ndarray]:
    """Gradients of every parameter from the gradient ``dh`` [B, T, d] at the final hidden
    states of :func:`hidden_forward`; ``dwte`` [V, d] is what the output layer (or nothing)
    already gave the token embedding. The heads of ``bpe.lm.post`` end here too."""
    idx, blocks, c_lnf = cache
    B, T = idx.shape
    grads: dict[str, np.ndarray] = {}
    dx, grads["lnf.g"], grads["lnf.b"] = layernorm_backward(dh, c_lnf)
    for i in reversed(range(cfg.n_layer)):
        dx = block_backward(dx, blocks[i], i, grads)
    grads["wpe"] = np.zeros_like(params["wpe"])
    grads["wpe"][:T] = dx.sum(0)
    dwte = np.zeros_like(params["wte"]) if dwte is None else dwte
    np.add.at(dwte, idx.reshape(-1), dx.reshape(B * T, -1))  # the input embedding's share
    grads["wte"] = dwte
    return grads


def token_nll(params, cfg: GPTConfig, idx, targets) -> np.ndarray:
    """Negative log-likelihood in nats of each target [B, T] after idx [B, T] (no cache kept)."""
    logits = logits_forward(params, cfg, idx)              # [B, T, V]
    logits -= logits.max(-1, keepdims=True)
    picked = np.take_along_axis(logits, targets[..., None], -1)[..., 0].astype(np.float64)
    np.exp(logits, out=logits)
    return np.log(logits.sum(-1, dtype=np.float64)) - picked  # [B, T]
