"""AdamW, the learning-rate schedule and gradient clipping, for parameter dicts of numpy arrays.

>>> lr_at(0, 100, 1e-3), lr_at(10, 100, 1e-3), round(lr_at(100, 100, 1e-3), 6)
(0.0001, 0.001, 0.0001)
"""

from __future__ import annotations

import math

import numpy as np


def lr_at(step: int, total: int, peak: float, warmup: float = 0.1, final: float = 0.1) -> float:
    """Linear warm-up over the first ``warmup`` share of the steps, then cosine decay to
    ``final`` x peak at the last step. ``step`` counts from 0."""
    n_warm = max(1, int(round(warmup * total)))
    if step < n_warm:
        return peak * (step + 1) / n_warm
    progress = min(1.0, (step - n_warm) / max(1, total - n_warm))
    return peak * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress)))


def clip_grads(grads: dict[str, np.ndarray], max_norm: float) -> float:
    """Scale all gradients down together so that their global L2 norm is at most ``max_norm``;
    returns the norm before clipping."""
    norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))
    if norm > max_norm:
        scale = max_norm / (norm + 1e-6)
        for g in grads.values():
            g *= scale
    return norm


class AdamW:
    """Adam with decoupled weight decay on matrices (embeddings and weights), not on biases
    or LayerNorm gains: ``p -= lr * (m_hat / (sqrt(v_hat) + eps) + wd * p)``."""

    def __init__(self, params: dict[str, np.ndarray], betas=(0.9, 0.95), eps: float = 1e-8,
                 weight_decay: float = 0.1):
        self.beta1, self.beta2 = betas
        self.eps, self.weight_decay = eps, weight_decay
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float) -> None:
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for k, p in params.items():
            g, m, v = grads[k], self.m[k], self.v[k]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            if p.ndim >= 2 and self.weight_decay:
                p *= 1 - lr * self.weight_decay
            update = np.sqrt(v / c2)
            update += self.eps
            np.divide(m, update, out=update)
            update *= lr / c1
            p -= update

    def state(self) -> dict[str, np.ndarray]:
        return {**{f"m/{k}": v for k, v in self.m.items()}, **{f"v/{k}": v for k, v in self.v.items()}}

    def load_state(self, arrays: dict[str, np.ndarray], t: int) -> None:
        for k in self.m:
            self.m[k][...] = arrays[f"m/{k}"]
            self.v[k][...] = arrays[f"v/{k}"]
        self.t = t
