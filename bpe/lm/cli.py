"""``bpe lm``: train the small GPT on a text file, sample from it, score answers, compare vocabularies."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from bpe._files import write_atomic

LM_EXAMPLES = """\
examples:
  bpe lm train --data corpus.txt --tokenizer my.bpe --steps 500 --out runs/my
  bpe lm sample --checkpoint runs/my/ckpt.npz --prompt "In the beginning" --max-tokens 100
  bpe lm score --checkpoint runs/my/ckpt.npz --prompt "The capital of France is" --option " Paris" --option " Rome"
  bpe lm compare --data corpus.txt --tokenizer a.bpe --tokenizer b.bpe --steps 300 --out runs/cmp
  bpe lm sft --checkpoint runs/my/ckpt.npz --data pairs.jsonl --steps 200 --out runs/sft
  bpe lm reward --checkpoint runs/sft/ckpt.npz --data prefs.jsonl --steps 200 --out runs/rm
  bpe lm rl --checkpoint runs/sft/ckpt.npz --reward runs/rm/ckpt.npz --prompts prompts.jsonl --beta 0.1 --steps 100 --out runs/rl
  bpe lm dpo --checkpoint runs/sft/ckpt.npz --data prefs.jsonl --beta 0.1 --steps 200 --out runs/dpo
"""


def _user_error():
    from bpe._cli_common import UserError

    return UserError


def _tokenizer_record(spec: str, enc) -> dict:
    """How a checkpoint remembers its tokenizer: a name, or the whole vocabulary."""
    from bpe.registry import list_encoding_names

    if spec in list_encoding_names():
        return {"name": spec}
    return {"spec": spec, "bpe-tokenizer": enc.to_saved_json()}


def _tokenizer_from_record(record: dict, source: str):
    from bpe.core import Encoding
    from bpe.registry import get_encoding

    if "name" in record:
        return get_encoding(record["name"])
    return Encoding.from_saved_json(record["bpe-tokenizer"], f"{source} (tokenizer)")


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=int, default=1000, help="optimizer steps (default 1000)")
    p.add_argument("--d-model", type=int, default=128, help="width of the residual stream (default 128)")
    p.add_argument("--n-layer", type=int, default=4, help="transformer blocks (default 4)")
    p.add_argument("--n-head", type=int, default=4, help="attention heads (default 4)")
    p.add_argument("--ctx", type=int, default=128, help="context length in tokens (default 128)")
    p.add_argument("--batch", type=int, default=16, help="sequences per step (default 16)")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default 3e-3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial weights and the batches")
    p.add_argument("--eval-tokens", type=int, default=1 << 18,
                   help="validation tokens scored at most (default 262144)")
    p.add_argument("--eval-every", type=int, default=0, help="also evaluate every N steps")
    p.add_argument("--threads", type=int, default=0, help="threads (default: all cores)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress line")


def _configs(args, n_vocab: int):
    from bpe.lm.model import GPTConfig
    from bpe.lm.train import TrainConfig

    try:
        gpt = GPTConfig(vocab_size=n_vocab, ctx=args.ctx, d_model=args.d_model,
                        n_layer=args.n_layer, n_head=args.n_head)
        cfg = TrainConfig(steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed,
                          eval_tokens=args.eval_tokens, eval_every=args.eval_every,
                          save_every=getattr(args, "save_every", 0), threads=args.threads,
                          stop_at=getattr(args, "stop_at", 0))
    except ValueError as e:
        raise _user_error()(str(e)) from None
    return gpt, cfg


def _run(args, spec: str, out: Path) -> dict:
    """Encode --data with the tokenizer ``spec`` into ``out`` and train there."""
    from bpe._cli_common import tokenizer
    from bpe.lm import data
    from bpe.lm.train import train

    if not Path(args.data).is_file():
        raise _user_error()(f"no such file: {args.data}")
    enc = tokenizer(spec)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _user_error()(f"cannot make the folder {out}: {e.strerror}") from None
    try:
        tokens = data.prepare(args.data, enc, out, spec, field=getattr(args, "field", "text"))
    except ValueError as e:  # a bad JSONL line: file and line named
        raise _user_error()(str(e)) from None
    gpt, cfg = _configs(args, enc.n_vocab)
    meta = {"tokenizer": _tokenizer_record(spec, enc), "data": Path(args.data).name}
    try:
        result = train(tokens, gpt, cfg, data.token_byte_lengths(enc), out_dir=out, meta=meta,
                       resume=getattr(args, "resume", None), progress=not args.quiet)
    except ValueError as e:
        raise _user_error()(str(e)) from None
    result["bytes_per_token"] = tokens.n_bytes / max(len(tokens.tokens), 1)
    result["tokenizer"] = spec
    return result


def _public(result: dict) -> dict:
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in result.items()
            if k not in ("history", "params_arrays")}


def cmd_train(args) -> int:
    result = _run(args, args.tokenizer, Path(args.out))
    print(f"val loss {result['val_loss']:.4f} nats/token, perplexity {result['val_ppl']:.2f}, "
          f"{result['val_bpb']:.4f} bits/byte over {result['val_tokens']:,} tokens; "
          f"{result['tokens_per_s']:,.0f} tokens/s; checkpoint {result['checkpoint']}")
    print(json.dumps(_public(result)))
    return 0


def _load(args):
    from bpe.lm.model import GPTConfig
    from bpe.lm.train import load_checkpoint

    if not Path(args.checkpoint).is_file():
        raise _user_error()(f"no such checkpoint: {args.checkpoint}")
    try:
        meta, params, _ = load_checkpoint(args.checkpoint)
        enc = _tokenizer_from_record(meta["tokenizer"], args.checkpoint)
    except (ValueError, KeyError, OSError) as e:
        raise _user_error()(str(e).splitlines()[0]) from None
    return GPTConfig(**meta["model"]), params, enc


def cmd_sample(args) -> int:
    from bpe.lm.sample import generate

    gpt, params, enc = _load(args)
    if args.temperature < 0 or (args.top_p is not None and not 0 < args.top_p <= 1):
        raise _user_error()("--temperature must be >= 0 and --top-p in (0, 1]")
    out = sys.stdout
    out.write(args.prompt)
    out.flush()

    def write(text):
        out.write(text)
        out.flush()

    generate(params, gpt, enc, args.prompt, args.max_tokens, write=write, temperature=args.temperature,
             top_k=args.top_k, top_p=args.top_p, seed=args.seed)
    out.write("\n")
    return 0


def cmd_score(args) -> int:
    from bpe.lm.sample import best, score_options

    gpt, params, enc = _load(args)
    items = []
    if args.file:
        path = Path(args.file)
        if not path.is_file():
            raise _user_error()(f"no such file: {args.file}")
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                items.append((item["prompt"], list(item["options"]), item.get("answer")))
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise _user_error()(f"{args.file}, line {line_no}: expected "
                                    '{"prompt": ..., "options": [...], "answer": index} ({e})') from None
    else:
        if args.prompt is None or len(args.option) < 2:
            raise _user_error()("give --prompt and at least two --option, or --file items.jsonl")
        items.append((args.prompt, args.option, None))
    right = right_norm = answered = 0
    for prompt, options, answer in items:
        try:
            results = score_options(params, gpt, enc, prompt, options)
        except ValueError as e:
            raise _user_error()(str(e)) from None
        picks = best(results)
        record = {"prompt": prompt, "options": results, **picks}
        if answer is not None:
            answered += 1
            right += picks["best"] == answer
            right_norm += picks["best_per_byte"] == answer
            record["answer"] = answer
        if args.file:
            print(json.dumps(record, ensure_ascii=False))
        else:
            for k, r in enumerate(results):
                mark = " <- most likely" if k == picks["best"] else ""
                print(f"{r['logprob']:10.3f} nats  {r['logprob_per_byte']:8.4f} nats/byte  {r['option']!r}{mark}")
    if answered:
        print(json.dumps({"items": answered, "accuracy": right / answered,
                          "accuracy_per_byte": right_norm / answered}))
    return 0


def cmd_compare(args) -> int:
    if len(args.tokenizer) < 2:
        raise _user_error()("give --tokenizer at least twice (the vocabularies to compare)")
    out = Path(args.out)
    results = []
    for k, spec in enumerate(args.tokenizer):
        if not args.quiet:
            print(f"[{k + 1}/{len(args.tokenizer)}] {spec}", file=sys.stderr)
        folder = out / f"{k + 1}-{Path(spec).stem or spec}"
        results.append(_run(args, spec, folder))
    header = f"{'tokenizer':<28} {'vocab':>7} {'bytes/token':>11} {'val bits/byte':>13} {'val loss':>9} {'tokens/s':>9} {'bytes/s':>9}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['tokenizer'][-28:]:<28} {r['n_vocab']:>7,} {r['bytes_per_token']:>11.3f} {r['val_bpb']:>13.4f} "
              f"{r['val_loss']:>9.4f} {r['tokens_per_s']:>9,.0f} {r['tokens_per_s'] * r['bytes_per_token']:>9,.0f}")
    write_atomic(out / "compare.json", json.dumps([_public(r) | {"history": r["history"]} for r in results]))
    png = _plot(results, out / "loss.png")
    print(f"(same {args.steps} steps, batch {args.batch}, context {args.ctx} tokens for each; "
          f"lower bits/byte is better){'; plot ' + str(png) if png else ''}")
    print(json.dumps([_public(r) for r in results]))
    return 0


def _plot(results: list[dict], path: Path) -> Path | None:
    """Training loss in bits per byte against steps, when matplotlib is installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(pip install matplotlib for a loss-curve plot)", file=sys.stderr)
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in results:
        scale = 1 / math.log(2) / r["bytes_per_token"]  # nats per token -> bits per byte (about)
        h = r["history"]
        line, = ax.plot(h["step"], [v * scale for v in h["loss"]], lw=1,
                        label=f"{r['tokenizer']}: train (at the text's mean bytes/token)")
        ax.plot(h["val_step"], h["val_bpb"], "o", ms=5, color=line.get_color(),
                label=f"{r['tokenizer']}: validation")
    ax.set_xlabel("step")
    ax.set_ylabel("bits per byte")
    ax.set_title("loss per byte of text, by vocabulary")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------------------
# Post-training: sft, reward, rl


def _load_stage(path: str, what: str = "checkpoint"):
    """(meta, model config, parameters, tokenizer) of a checkpoint, or a UserError."""
    from bpe.lm.model import GPTConfig
    from bpe.lm.train import load_checkpoint

    if not Path(path).is_file():
        raise _user_error()(f"no such {what}: {path}")
    try:
        meta, params, _ = load_checkpoint(path)
        enc = _tokenizer_from_record(meta["tokenizer"], path)
        gpt = GPTConfig(**meta["model"])
    except (ValueError, KeyError, OSError, TypeError) as e:
        raise _user_error()(f"{path}: {str(e).splitlines()[0]}") from None
    return meta, gpt, params, enc


def _tune_config(args):
    from bpe.lm.finetune import TuneConfig

    fields = {k: getattr(args, k) for k in ("steps", "batch", "lr", "seed", "group", "max_new_tokens",
                                             "epochs", "clip", "beta") if getattr(args, k, None) is not None}
    try:
        return TuneConfig(**fields)
    except ValueError as e:
        raise _user_error()(str(e)) from None


def _stage_out(args) -> Path:
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _user_error()(f"cannot make the folder {out}: {e.strerror}") from None
    return out


def _rows(path: str, fields: tuple[str, ...]):
    from bpe.lm.finetune import read_rows

    if not Path(path).is_file():
        raise _user_error()(f"no such file: {path}")
    try:
        return read_rows(path, fields)
    except ValueError as e:
        raise _user_error()(str(e)) from None


def _stage(args, run, summary) -> int:
    """Load ``--checkpoint``, call ``run(args, meta, gpt, params, enc, cfg, common)`` (common:
    the keyword arguments every stage takes), print ``summary(result, cfg)`` on stderr and
    the result as the last stdout line."""
    meta, gpt, params, enc = _load_stage(args.checkpoint)
    cfg = _tune_config(args)
    common = {"out_dir": _stage_out(args), "resume": args.resume, "progress": not args.quiet,
              "meta": {"tokenizer": meta["tokenizer"], "base": str(args.checkpoint)}}
    try:
        result = run(args, meta, gpt, params, enc, cfg, common)
    except (ValueError, FloatingPointError) as e:
        raise _user_error()(str(e)) from None
    if not args.quiet:
        print(summary(result, cfg), file=sys.stderr)
    result.pop("reward_history", None)
    print(json.dumps(result))
    return 0


def cmd_sft(args) -> int:
    from bpe.lm import finetune

    rows = _rows(args.data, ("prompt", "response"))
    return _stage(args, lambda a, meta, gpt, params, enc, cfg, common: finetune.sft(
        params, gpt, enc, rows, cfg, stop_at=a.stop_at, **common),
        lambda r, cfg: f"sft: response loss {r['val_response_loss_before']:.4f} -> {r['val_response_loss']:.4f} "
                       f"nats per token on {r['val_rows']} held-out rows")


def cmd_reward(args) -> int:
    from bpe.lm import finetune

    rows = _rows(args.data, ("prompt", "chosen", "rejected"))
    return _stage(args, lambda a, meta, gpt, params, enc, cfg, common: finetune.train_reward(
        params, gpt, enc, rows, cfg, **common)[1],
        lambda r, cfg: f"reward model: held-out accuracy {r['val_accuracy']:.3f}, loss {r['val_loss']:.4f}")


def cmd_rl(args) -> int:
    from bpe.lm import finetune

    rm_meta, rm_gpt, rm, _ = _load_stage(args.reward, "reward model")
    if rm_meta.get("stage") != "reward" or "reward.w" not in rm:
        raise _user_error()(f"{args.reward}: not a reward model (make one with `bpe lm reward`)")
    prompts = [r["prompt"] for r in _rows(args.prompts, ("prompt",))]

    def run(a, meta, gpt, params, enc, cfg, common):
        if rm_meta["tokenizer"] != meta["tokenizer"]:
            raise ValueError(f"{a.reward} and {a.checkpoint} use different tokenizers")
        common["meta"]["reward_model"] = str(a.reward)
        return finetune.rl(params, gpt, enc, prompts, finetune.reward_scorer(rm, rm_gpt), cfg,
                           stop_at=a.stop_at, **common)

    return _stage(args, run, lambda r, cfg: f"rl: reward {r['reward_before']:.4f} -> {r['reward_after']:.4f}, "
                                            f"KL to the start {r['kl']:.4f} nats per response (beta {cfg.beta})")


def cmd_dpo(args) -> int:
    from bpe.lm import finetune

    rows = _rows(args.data, ("prompt", "chosen", "rejected"))
    return _stage(args, lambda a, meta, gpt, params, enc, cfg, common: finetune.dpo(
        params, gpt, enc, rows, cfg, **common),
        lambda r, cfg: f"dpo: held-out loss {r['val_loss_before']:.4f} -> {r['val_loss']:.4f}, "
                       f"pairs ranked right {r['val_accuracy']:.3f}")


def _tune_args(p, steps: int, lr: float, batch: int) -> None:
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="the model to start from (its tokenizer comes along)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for ckpt.npz")
    p.add_argument("--steps", type=int, default=steps, help=f"optimizer steps (default {steps})")
    p.add_argument("--batch", type=int, default=batch, help=f"rows per step (default {batch})")
    p.add_argument("--lr", type=float, default=lr, help=f"peak learning rate, after a 10%% warm-up (default {lr:g})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", metavar="CKPT", help="continue this stage from its checkpoint")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress or summary on stderr")


def add_parser(sub, parser_class) -> None:
    """Add ``lm`` and its subcommands to the ``bpe`` command's subparsers."""
    from bpe._cli_common import tokenizer_flag

    lm = sub.add_parser("lm", help="train a small GPT (numpy) on text to judge a vocabulary",
                        description="A small GPT in numpy: train it on text encoded with a vocabulary, "
                        "then sample, score answers, or compare vocabularies by bits per byte.",
                        epilog=LM_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    lm.set_defaults(func=lambda args: (lm.print_help(), 2)[1])
    lsub = lm.add_subparsers(dest="lm_command", metavar="LM_COMMAND", parser_class=parser_class)
    fmt = argparse.RawDescriptionHelpFormatter

    p = lsub.add_parser("train", help="train on a text file; the last line is a JSON summary",
                        epilog="example:\n  bpe lm train --data corpus.txt --tokenizer o200k_base "
                        "--steps 500 --out runs/o200k", formatter_class=fmt)
    p.add_argument("--data", required=True, metavar="FILE",
                   help="a UTF-8 text file, or JSON Lines (.jsonl: a document per line, as `bpe data "
                        "clean` writes); its last 10%% of tokens validate")
    p.add_argument("--field", default="text", help="the text field of a JSONL --data (default text)")
    tokenizer_flag(p)
    p.add_argument("--out", required=True, metavar="DIR", help="folder for tokens.bin and ckpt.npz")
    p.add_argument("--resume", metavar="CKPT", help="continue from this checkpoint to --steps")
    p.add_argument("--save-every", type=int, default=0, help="also save the checkpoint every N steps")
    p.add_argument("--stop-at", type=int, default=0, metavar="STEP",
                   help="stop after this step, keeping the schedule of --steps (--resume goes on later)")
    _model_args(p)
    p.set_defaults(func=cmd_train)

    p = lsub.add_parser("sample", help="write text after a prompt",
                        epilog='example:\n  bpe lm sample --checkpoint runs/my/ckpt.npz --prompt "And God said"',
                        formatter_class=fmt)
    p.add_argument("--checkpoint", required=True, metavar="CKPT")
    p.add_argument("--prompt", default="", help="the text to continue")
    p.add_argument("--max-tokens", type=int, default=200)
    p.add_argument("--temperature", type=float, default=0.8, help="0: always the most likely token")
    p.add_argument("--top-k", type=int, default=None, help="sample among the k most likely tokens")
    p.add_argument("--top-p", type=float, default=None, help="sample among the most likely tokens up to this probability")
    p.add_argument("--seed", type=int, default=None)
    p.set_defaults(func=cmd_sample)

    p = lsub.add_parser("score", help="score the options of a multiple-choice question by likelihood",
                        epilog='example:\n  bpe lm score --checkpoint ckpt.npz --prompt "2 + 2 =" --option " 4" --option " 5"\n'
                        '  bpe lm score --checkpoint ckpt.npz --file items.jsonl   '
                        '(lines of {"prompt": ..., "options": [...], "answer": 0})', formatter_class=fmt)
    p.add_argument("--checkpoint", required=True, metavar="CKPT")
    p.add_argument("--prompt")
    p.add_argument("--option", action="append", default=[], help="an answer (repeat for each)")
    p.add_argument("--file", metavar="JSONL", help="questions, one JSON object a line; prints accuracy")
    p.set_defaults(func=cmd_score)

    p = lsub.add_parser("compare", help="train the same model on each vocabulary and compare bits per byte",
                        epilog="example:\n  bpe lm compare --data corpus.txt --tokenizer gpt2 --tokenizer my.bpe "
                        "--steps 300 --out runs/cmp", formatter_class=fmt)
    p.add_argument("--data", required=True, metavar="FILE", help="text or JSON Lines, as for `bpe lm train`")
    p.add_argument("--field", default="text", help="the text field of a JSONL --data (default text)")
    p.add_argument("--tokenizer", "-t", action="append", required=True, metavar="NAME_OR_PATH",
                   help="a vocabulary to compare (repeat for each)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for each run, compare.json and loss.png")
    _model_args(p)
    p.set_defaults(func=cmd_compare)

    p = lsub.add_parser("sft", help="fine-tune on prompt/response pairs; the loss falls on responses only",
                        description="Supervised fine-tuning: rows {\"prompt\": ..., \"response\": ...} in a chat "
                        "template (special tokens <|user|> <|assistant|> <|end|> when the vocabulary has them, "
                        "else 'User: ' and '\\nAssistant: ' then <|endoftext|>); next-token loss on the response "
                        "and end tokens only. The last 10% of the rows validate.",
                        epilog="example:\n  bpe lm sft --checkpoint runs/base/ckpt.npz --data pairs.jsonl --steps 200 --out runs/sft",
                        formatter_class=fmt)
    _tune_args(p, 200, 3e-4, 8)
    p.add_argument("--data", required=True, metavar="PAIRS.jsonl")
    p.add_argument("--stop-at", type=int, default=0, metavar="STEP", help="stop after this step (--resume goes on)")
    p.set_defaults(func=cmd_sft)

    p = lsub.add_parser("reward", help="train a reward model on preference pairs (Bradley-Terry)",
                        description="A reward model: the GPT with a scalar head on the last token's final hidden "
                        "state, trained on rows {\"prompt\", \"chosen\", \"rejected\"} with the loss "
                        "-log sigmoid(r_chosen - r_rejected). The last 10% of the rows validate.",
                        epilog="example:\n  bpe lm reward --checkpoint runs/sft/ckpt.npz --data prefs.jsonl --steps 200 --out runs/rm",
                        formatter_class=fmt)
    _tune_args(p, 200, 3e-4, 8)
    p.add_argument("--data", required=True, metavar="PREFS.jsonl")
    p.set_defaults(func=cmd_reward)

    p = lsub.add_parser("rl", help="raise a reward model's score with PPO, held near the start by a KL penalty",
                        description="Sample --group responses per prompt from the policy, score them with the reward "
                        "model, take the group-normalised reward as the advantage, and run --epochs PPO passes "
                        "(clipped ratio) with --beta x KL(policy || starting policy) in the loss.",
                        epilog="example:\n  bpe lm rl --checkpoint runs/sft/ckpt.npz --reward runs/rm/ckpt.npz "
                        "--prompts prompts.jsonl --beta 0.1 --steps 100 --out runs/rl", formatter_class=fmt)
    _tune_args(p, 100, 1e-4, 4)
    p.add_argument("--reward", required=True, metavar="RM", help="a checkpoint of `bpe lm reward`")
    p.add_argument("--prompts", required=True, metavar="PROMPTS.jsonl", help='rows {"prompt": ...}; the first 8 also measure')
    p.add_argument("--beta", type=float, default=0.1, help="weight of the KL penalty (default 0.1)")
    p.add_argument("--group", type=int, default=4, help="responses sampled per prompt (default 4)")
    p.add_argument("--max-new-tokens", type=int, default=32, help="tokens per response at most (default 32)")
    p.add_argument("--epochs", type=int, default=2, help="PPO passes over each batch (default 2)")
    p.add_argument("--clip", type=float, default=0.2, help="PPO clip range (default 0.2)")
    p.add_argument("--stop-at", type=int, default=0, metavar="STEP", help="stop after this step (--resume goes on)")
    p.set_defaults(func=cmd_rl)

    p = lsub.add_parser("dpo", help="the direct route: preference pairs straight into the policy (DPO)",
                        description="Direct preference optimisation: on rows {\"prompt\", \"chosen\", "
                        "\"rejected\"}, the loss -log sigmoid(beta (log-ratio of chosen - log-ratio of rejected)), "
                        "the log-ratios against the frozen starting policy. It optimises the objective of `bpe lm rl` "
                        "without a reward model or sampling. The last 10% of the rows validate.",
                        epilog="example:\n  bpe lm dpo --checkpoint runs/sft/ckpt.npz --data prefs.jsonl --beta 0.1 "
                        "--steps 200 --out runs/dpo", formatter_class=fmt)
    _tune_args(p, 200, 3e-4, 8)
    p.add_argument("--data", required=True, metavar="PREFS.jsonl")
    p.add_argument("--beta", type=float, default=0.1, help="how far from the start the policy may move (default 0.1)")
    p.set_defaults(func=cmd_dpo)
