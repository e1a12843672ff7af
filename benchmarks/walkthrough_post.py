"""Pretrain -> SFT -> reward model -> RL on a small task made from the KJV, with the commands.

    python benchmarks/walkthrough_post.py [--out runs/walkthrough] [--steps-scale 1.0]

The task: continue the opening words of a verse. A preference planted in the data says
that continuations naming God are better (the chosen answer of each pair is a verse that
says "God", the rejected one a verse that does not), and RL (at two betas) and DPO should
make the policy say it more often, held near the SFT model by the KL penalty. The share
of 100 held-out prompts whose greedy continuation says "God" measures each. Every stage runs through the `bpe`
command exactly as a user would type it (printed before it runs); the figures are the
last JSON line of each.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shlex
import subprocess
import sys
from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "kjv.txt"


def verses() -> list[str]:
    out = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\w+?\d+:\d+ (.*)", line)
        if m and len(m.group(1).split()) >= 14:
            out.append(m.group(1))
    return out


def write_jsonl(path: Path, rows) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def run(*args) -> dict:
    cmd = [sys.executable, "-m", "bpe", *map(str, args)]
    print("$ bpe " + " ".join(shlex.quote(str(a)) for a in args), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        sys.exit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/walkthrough")
    ap.add_argument("--steps-scale", type=float, default=1.0, help="multiply every stage's steps")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    s = lambda n: max(1, int(n * args.steps_scale))  # noqa: E731
    rng = random.Random(0)
    vs = verses()
    rng.shuffle(vs)
    god = [v for v in vs if re.search(r"\bGod\b", v)]
    other = [v for v in vs if not re.search(r"\bGod\b", v)]

    def split(v, k=6):
        w = v.split()
        return " ".join(w[:k]), " " + " ".join(w[k:k + 10])

    pairs = [dict(zip(("prompt", "response"), split(v))) for v in vs[:4000]]
    prefs = []
    for g, o in zip(god[:1500], other[:1500]):
        prompt = split(o)[0] if rng.random() < 0.5 else split(g)[0]
        prefs.append({"prompt": prompt, "chosen": split(g)[1], "rejected": split(o)[1]})
    prompts = [{"prompt": split(v)[0]} for v in vs[4000:4400]]
    write_jsonl(out / "pairs.jsonl", pairs)
    write_jsonl(out / "prefs.jsonl", prefs)
    write_jsonl(out / "prompts.jsonl", prompts)

    figures = {}
    run("train", CORPUS, "--vocab-size", 2048, "--pattern", "gpt2", "--special", "<|endoftext|>",
        "--special", "<|user|>", "--special", "<|assistant|>", "--special", "<|end|>", "-o", out / "kjv.bpe", "-q")
    figures["pretrain"] = run("lm", "train", "--data", CORPUS, "--tokenizer", out / "kjv.bpe", "--steps", s(600),
                              "--ctx", 64, "--d-model", 96, "--n-layer", 3, "--n-head", 3, "--out", out / "base", "-q")
    figures["sft"] = run("lm", "sft", "--checkpoint", out / "base" / "ckpt.npz", "--data", out / "pairs.jsonl",
                         "--steps", s(300), "--lr", 1e-3, "--out", out / "sft", "-q")
    figures["reward"] = run("lm", "reward", "--checkpoint", out / "sft" / "ckpt.npz", "--data", out / "prefs.jsonl",
                            "--steps", s(300), "--lr", 1e-3, "--out", out / "rm", "-q")
    for beta, name in ((0.05, "rl"), (0.5, "rl-beta0.5")):
        figures[name] = run("lm", "rl", "--checkpoint", out / "sft" / "ckpt.npz", "--reward", out / "rm" / "ckpt.npz",
                            "--prompts", out / "prompts.jsonl", "--beta", beta, "--steps", s(60), "--lr", 3e-4,
                            "--max-new-tokens", 16, "--out", out / name, "-q")
    figures["dpo"] = run("lm", "dpo", "--checkpoint", out / "sft" / "ckpt.npz", "--data", out / "prefs.jsonl",
                         "--beta", 0.1, "--steps", s(200), "--lr", 1e-3, "--out", out / "dpo", "-q")
    names = ("sft", "rl", "rl-beta0.5", "dpo")
    held = [p["prompt"] for p in prompts[-100:]]
    continuations = {name: greedy(out / name / "ckpt.npz", held) for name in names}
    for name in names:
        figures.setdefault(name, {})["says_god"] = round(
            sum(bool(re.search(r"\bGod\b", c)) for c in continuations[name]) / len(held), 3)
    samples = [(p, *(continuations[n][i] for n in names)) for i, p in enumerate(held[:4])]
    keep = {"pretrain": ("val_bpb", "tokens_per_s", "params"),
            "sft": ("val_response_loss_before", "val_response_loss", "tokens_per_s"),
            "reward": ("val_accuracy", "val_loss", "pairs_per_s"),
            "rl": ("reward_before", "reward_after", "kl", "response_tokens_per_s", "says_god"),
            "rl-beta0.5": ("reward_before", "reward_after", "kl", "says_god"),
            "dpo": ("val_loss_before", "val_loss", "val_accuracy", "says_god")}
    keep["sft"] += ("says_god",)
    print(json.dumps({k: {f: figures[k].get(f) for f in v} for k, v in keep.items()}, indent=1))
    for prompt, *texts in samples:
        print(f"\n{prompt!r}" + "".join(f"\n  {n}: {t!r}" for n, t in zip(names, texts)))
    return 0


def greedy(checkpoint: Path, prompts: list[str]) -> list[str]:
    """The greedy continuation (16 tokens at most) of each prompt by a checkpoint."""
    from bpe.lm import chat, sample
    from bpe.lm.cli import _load_stage

    _, gpt, params, enc = _load_stage(str(checkpoint))
    t = chat.ChatTemplate(enc)
    return [t.response_text(list(sample.generate_ids(params, gpt, t.prompt_ids(p), 16, temperature=0, stop=t.end)))
            for p in prompts]


if __name__ == "__main__":
    sys.exit(main())
