"""The layers and losses of post-training, each a forward and its exact backward.

1. **Token log-probabilities** of chosen tokens, whose backward takes any per-token
   coefficient: SFT, PPO and the KL penalty are all sums of ``c_t * log p(y_t)`` terms.
2. **SFT loss**: the mean negative log-likelihood over the tokens where ``mask`` is 1 (the
   response); the other tokens get no gradient at all.
3. **Reward head**: a scalar from the final hidden state of each sequence's last token, and
   the Bradley-Terry loss ``-log sigmoid(r_chosen - r_rejected)``.
4. **PPO with a KL penalty**: the clipped surrogate ``min(rho A, clip(rho, 1-eps, 1+eps) A)``
   with ``rho = p/p_old``, plus ``beta`` times the per-token estimate of KL(p || p_ref)
   ``exp(q) - q - 1``, ``q = log p_ref - log p`` (never negative; its mean is the KL).
5. **DPO**: ``-log sigmoid(beta (log-ratio of chosen - log-ratio of rejected))``, the
   log-ratios taken against the frozen reference (Rafailov et al., 2023).

Sequences are rows of a padded batch ``ids [B, L]``: inputs ``ids[:, :-1]``, targets
``ids[:, 1:]``, and ``mask [B, L-1]`` marks the targets that count.

>>> import numpy as np
>>> from bpe.lm.model import GPTConfig, init_params
>>> cfg = GPTConfig(vocab_size=20, ctx=8, d_model=8, n_layer=1, n_head=2)
>>> p = init_params(cfg, 0, np.float64)
>>> ids = np.array([[1, 2, 3, 4]]); mask = np.array([[0, 1, 1]])
>>> loss, grads = sft_loss_and_grads(p, cfg, ids, mask)
>>> round(loss, 1)  # about log(20) before training
3.0
"""

from __future__ import annotations

import numpy as np

from bpe.lm import model

# ----------------------------------------------------------------------------------------
# 1. Token log-probabilities


def logprob_forward(params, cfg: model.GPTConfig, ids: np.ndarray):
    """``log p(ids[:, t+1] | ids[:, :t+1])`` for every t: ``[B, L-1]``, and the cache."""
    inputs, targets = ids[:, :-1], ids[:, 1:]
    h, hidden_cache = model.hidden_forward(params, cfg, inputs)    # [B, T, d]
    B, T, d = h.shape
    h2 = h.reshape(B * T, d)                                       # [N, d]
    logits = h2 @ params["wte"].T                                  # [N, V]
    logits -= logits.max(-1, keepdims=True)
    flat = targets.reshape(-1)
    picked = logits[np.arange(B * T), flat]                        # [N]
    probs = np.exp(logits, out=logits)
    total = probs.sum(-1)                                          # [N]
    probs /= total[:, None]
    logp = (picked - np.log(total)).reshape(B, T)                  # [B, T]
    return logp, (hidden_cache, h2, probs, flat)


def logprob_backward(params, cfg: model.GPTConfig, cache, dlogp: np.ndarray) -> dict[str, np.ndarray]:
    """Gradients of ``sum(dlogp * logp)`` for the ``logp`` of :func:`logprob_forward`."""
    hidden_cache, h2, probs, flat = cache
    B, T = hidden_cache[0].shape
    c = dlogp.reshape(-1).astype(probs.dtype)                      # [N]
    dlogits = probs                                                # d logp / d logits = onehot - p
    dlogits *= -c[:, None]
    dlogits[np.arange(len(flat)), flat] += c
    dwte = dlogits.T @ h2                                          # [V, d]
    dh = (dlogits @ params["wte"]).reshape(B, T, -1)               # [B, T, d]
    return model.hidden_backward(params, cfg, hidden_cache, dh, dwte)


def sequence_logprobs(params, cfg: model.GPTConfig, ids: np.ndarray) -> np.ndarray:
    """:func:`logprob_forward` without the cache: ``[B, L-1]``."""
    return logprob_forward(params, cfg, ids)[0]


# ----------------------------------------------------------------------------------------
# 2. SFT


def sft_loss_and_grads(params, cfg: model.GPTConfig, ids: np.ndarray, mask: np.ndarray,
                       norm: float | None = None):
    """Mean NLL over the masked targets and its gradients (zero from unmasked targets).

    ``norm`` (default: this batch's masked count) divides the sum, so that slices of a
    batch add up to the whole batch's mean."""
    logp, cache = logprob_forward(params, cfg, ids)
    w = mask.astype(np.float64)
    n = norm if norm is not None else max(w.sum(), 1.0)
    loss = float(-(w * logp).sum() / n)
    return loss, logprob_backward(params, cfg, cache, -w / n)


def masked_nll(params, cfg: model.GPTConfig, ids: np.ndarray, mask: np.ndarray) -> tuple[float, int]:
    """(total NLL in nats, number of tokens) over the masked targets; no gradients."""
    logp = sequence_logprobs(params, cfg, ids)
    return float(-(logp * mask).sum()), int(mask.sum())


# ----------------------------------------------------------------------------------------
# 3. Reward head and Bradley-Terry


def init_reward_head(params, dtype=np.float32) -> dict[str, np.ndarray]:
    """The policy's parameters plus a zero scalar head (every reward 0 at the start)."""
    d = params["wte"].shape[1]
    return {**{k: v.copy() for k, v in params.items()},
            "reward.w": np.zeros(d, dtype), "reward.b": np.zeros(1, dtype)}


def reward_forward(params, cfg: model.GPTConfig, ids: np.ndarray, lengths: np.ndarray):
    """The reward of each sequence ``ids[b, :lengths[b]]``: ``[B]``, and the cache."""
    h, hidden_cache = model.hidden_forward(params, cfg, ids)      # [B, L, d]
    rows = np.arange(len(ids))
    last = h[rows, lengths - 1]                                     # [B, d]
    r = last @ params["reward.w"] + params["reward.b"][0]          # [B]
    return r, (hidden_cache, h.shape, last, lengths)


def reward_backward(params, cfg: model.GPTConfig, cache, dr: np.ndarray) -> dict[str, np.ndarray]:
    """Gradients of ``sum(dr * r)`` for the rewards ``r`` of :func:`reward_forward`."""
    hidden_cache, shape, last, lengths = cache
    dh = np.zeros(shape, dtype=last.dtype)                         # [B, L, d]
    dh[np.arange(len(lengths)), lengths - 1] = dr[:, None] * params["reward.w"]
    body = {k: v for k, v in params.items() if not k.startswith("reward.")}
    grads = model.hidden_backward(body, cfg, hidden_cache, dh)
    grads["reward.w"] = (dr[:, None] * last).sum(0).astype(last.dtype)
    grads["reward.b"] = np.array([dr.sum()], dtype=last.dtype)
    return grads


def bradley_terry(params, cfg: model.GPTConfig, chosen, chosen_len, rejected, rejected_len,
                  grads: bool = True, norm: float | None = None):
    """Mean ``-log sigmoid(r_c - r_r)`` over the pairs, accuracy (r_c > r_r), and gradients
    (``norm``, default the number of pairs, divides the sums)."""
    P = len(chosen)
    n = norm if norm is not None else P
    L = max(chosen.shape[1], rejected.shape[1])
    ids = np.zeros((2 * P, L), dtype=np.int64)
    ids[:P, :chosen.shape[1]] = chosen
    ids[P:, :rejected.shape[1]] = rejected
    lengths = np.concatenate([chosen_len, rejected_len])
    r, cache = reward_forward(params, cfg, ids, lengths)
    margin = (r[:P] - r[P:]).astype(np.float64)                    # [P]
    loss = float(np.logaddexp(0.0, -margin).sum() / n)             # softplus(-margin)
    accuracy = float((margin > 0).sum() / n)
    if not grads:
        return loss, accuracy, None
    dmargin = -1.0 / (1.0 + np.exp(margin)) / n                    # d softplus(-m) / dm
    dr = np.concatenate([dmargin, -dmargin])
    return loss, accuracy, reward_backward(params, cfg, cache, dr)


# ----------------------------------------------------------------------------------------
# 4. PPO with a KL penalty


def ppo_loss_and_grads(params, cfg: model.GPTConfig, ids, mask, old_logp, ref_logp, advantages,
                       clip: float = 0.2, beta: float = 0.1, norm: float | None = None):
    """The clipped PPO loss plus ``beta`` x the KL estimate, averaged over the masked tokens
    (``norm``, default their count, divides the sums).

    ``advantages [B]`` is one value per sequence. Returns ``(loss, grads, stats)`` where
    stats holds the share of clipped tokens and the mean KL estimate.
    """
    logp, cache = logprob_forward(params, cfg, ids)
    w = mask.astype(np.float64)
    n = norm if norm is not None else max(w.sum(), 1.0)
    A = advantages.astype(np.float64)[:, None]                     # [B, 1]
    ratio = np.exp(logp - old_logp)                                # [B, T]
    clipped = np.clip(ratio, 1 - clip, 1 + clip)
    unclipped_wins = ratio * A <= clipped * A                      # min picks the unclipped term
    surrogate = np.where(unclipped_wins, ratio * A, clipped * A)
    q = ref_logp - logp
    kl = np.exp(q) - q - 1.0                                       # >= 0, mean KL(p || ref)
    loss = float((w * (-surrogate + beta * kl)).sum() / n)
    dsurrogate = np.where(unclipped_wins, ratio * A, 0.0)          # d surrogate / d logp
    dkl = 1.0 - np.exp(q)                                          # d kl / d logp
    dlogp = w * (-dsurrogate + beta * dkl) / n
    stats = {"clipped": float((w * ~unclipped_wins).sum() / n), "kl_estimate": float((w * kl).sum() / n)}
    return loss, logprob_backward(params, cfg, cache, dlogp), stats


# ----------------------------------------------------------------------------------------
# 5. DPO: the same objective as RL with a KL penalty, reached without sampling


def dpo_loss_and_grads(params, cfg: model.GPTConfig, ids, mask, ref_logp, beta: float = 0.1,
                       norm: float | None = None):
    """Direct preference optimisation over pairs stacked as rows ``[chosen; rejected]``.

    With ``d = sum log p(chosen) - sum log p(rejected)`` over the response tokens (``mask``)
    and ``d_ref`` the same under the reference, the loss is
    ``-log sigmoid(beta (d - d_ref))``, averaged over pairs (``norm``, default their count).
    Returns ``(loss, grads, accuracy)``, accuracy being the share of pairs with ``d > d_ref``.
    """
    P = len(ids) // 2
    n = norm if norm is not None else P
    logp, cache = logprob_forward(params, cfg, ids)
    w = mask.astype(np.float64)
    seq = (logp * w).sum(1)                                        # [2P]
    ref = (ref_logp * w).sum(1)
    z = beta * ((seq[:P] - seq[P:]) - (ref[:P] - ref[P:]))         # [P]
    loss = float(np.logaddexp(0.0, -z).sum() / n)
    dz = -1.0 / (1.0 + np.exp(z)) / n                              # d softplus(-z) / dz
    coef = np.concatenate([beta * dz, -beta * dz])                 # d loss / d seq
    return loss, logprob_backward(params, cfg, cache, coef[:, None] * w), float((z > 0).sum() / n)
