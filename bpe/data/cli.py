"""``bpe data``: clean a corpus (duplicates, boilerplate, quality rules) and mix domains."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DATA_EXAMPLES = """\
examples:
  bpe data clean pages/*.html.gz -o clean.jsonl --rejected rejected/
  bpe data clean dump.jsonl.zst --field content -o clean.jsonl --no-rule stop_words
  bpe data clean fortunes --split-on % -o fortunes.jsonl
  bpe data mix web.jsonl code.jsonl --weights web=0.7,code=0.3 --tokens 50000000 -t o200k_base -o mix.jsonl
  bpe train clean.jsonl --vocab-size 32768 -o my.bpe

Inputs are JSONL (.jsonl, .ndjson, .json: the text in --field), HTML (.html, .htm; needs
trafilatura) or UTF-8 text (one document per file, or per --split-on block), each also as
.gz or .zst. The output is JSONL in input order, every other field kept. The last line on
stdout is a JSON report.
"""


def _user_error():
    from bpe._cli_common import UserError

    return UserError


def _fraction(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0.0 <= x <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not in [0, 1]")
    return x


def cmd_clean(args) -> int:
    from bpe.data import cleaning as _clean
    from bpe.data import quality as _quality

    UserError = _user_error()
    try:
        q = None if args.no_quality else _quality.QualityConfig(
            min_words=args.min_words, max_words=args.max_words, min_alphabetic=args.min_alphabetic,
            max_duplicate_lines=args.max_duplicate_lines, disabled=set(args.no_rule))
        cfg = _clean.CleanConfig(
            field=args.field, split_on=args.split_on, exact=not args.no_exact,
            boilerplate=not args.no_boilerplate, boilerplate_min_docs=args.boilerplate_min_docs,
            boilerplate_min_chars=args.boilerplate_min_chars, near=not args.no_near,
            num_perm=args.num_perm, bands=args.bands, ngram=args.ngram, char_ngram=args.char_ngram,
            quality=q, workers=args.workers)
        _check_output(args.output)
        report = _clean.clean(args.files, args.output, cfg, rejected=args.rejected,
                              progress=not args.quiet)
    except ValueError as e:
        raise UserError(str(e)) from None
    if not args.quiet:
        f = report["filtered"]
        print(f"wrote {args.output}: {report['documents_out']:,} of {report['documents_in']:,} documents "
              f"({report['exact_duplicates']:,} exact and {report['near_duplicates']:,} near duplicates, "
              f"{sum(f.values()):,} filtered, {report['boilerplate_lines']:,} boilerplate lines removed) "
              f"in {report['seconds']:.1f} s", file=sys.stderr)
    print(json.dumps(report))
    return 0


def cmd_mix(args) -> int:
    from bpe._cli_common import tokenizer
    from bpe.data import mixing as _mix

    UserError = _user_error()
    enc = tokenizer(args.tokenizer)
    try:
        weights = _mix.parse_weights(args.weights)
        _check_output(args.output)
        report = _mix.mix(args.files, args.output, weights=weights, budget=args.tokens, enc=enc,
                          by=args.by, field=args.field, split_on=args.split_on, seed=args.seed,
                          max_epochs=args.max_epochs)
    except ValueError as e:
        raise UserError(str(e)) from None
    for name, d in report["domains"].items():
        if d["shortfall_tokens"] and not args.quiet:
            print(f"bpe data mix: note: domain {name} has {d['available_tokens']:,} tokens; "
                  f"{d['epochs']} epochs of it give {d['tokens']:,} of its {d['target_tokens']:,} "
                  "(raise --max-epochs to repeat it more)", file=sys.stderr)
    print(json.dumps(report))
    return 0


def _check_output(path: str) -> None:
    if not Path(path).resolve().parent.is_dir():
        raise ValueError(f"no such folder for -o: {Path(path).parent}")


def add_parser(sub, parser_class) -> None:
    """Add ``data`` and its subcommands to the ``bpe`` command's subparsers."""
    from bpe._cli_common import positive, tokenizer_flag
    from bpe.data.quality import RULES

    fmt = argparse.RawDescriptionHelpFormatter
    data = sub.add_parser("data", help="prepare a corpus: deduplicate, filter, mix",
                          description="Corpus preparation before `bpe train`: exact and near "
                          "duplicates, boilerplate lines, quality rules, and mixing by domain.",
                          epilog=DATA_EXAMPLES, formatter_class=fmt)
    data.set_defaults(func=lambda args: (data.print_help(), 2)[1])
    dsub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND", parser_class=parser_class)

    p = dsub.add_parser("clean", help="remove duplicates, boilerplate and low-quality documents",
                        description="Remove exact duplicates (after NFC and whitespace normalisation), "
                        "boilerplate lines found in many documents, documents failing the quality rules, "
                        "and near duplicates (MinHash + LSH), in that order.",
                        epilog=DATA_EXAMPLES, formatter_class=fmt)
    p.add_argument("files", nargs="+", metavar="FILE", help="inputs (see below)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.jsonl", help="the kept documents")
    p.add_argument("--field", default="text", help="the text field of JSONL inputs and of the output (default text)")
    p.add_argument("--split-on", metavar="SEP",
                   help="cut text files into documents at lines equal to SEP ('' : at blank lines)")
    p.add_argument("--rejected", metavar="DIR", help="write what each step dropped to DIR/REASON.jsonl")
    p.add_argument("--workers", type=positive, default=None, help="processes (default: every core)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    g = p.add_argument_group("duplicates")
    g.add_argument("--no-exact", action="store_true", help="keep exact duplicate documents")
    g.add_argument("--no-boilerplate", action="store_true", help="keep lines repeated across documents")
    g.add_argument("--boilerplate-min-docs", type=positive, default=3, metavar="K",
                   help="a line in at least K documents is boilerplate, removed from all but the first (default 3)")
    g.add_argument("--boilerplate-min-chars", type=positive, default=30, metavar="C",
                   help="only lines of at least C characters count (default 30)")
    g.add_argument("--no-near", action="store_true", help="keep near duplicates")
    g.add_argument("--num-perm", type=positive, default=128, help="MinHash permutations (default 128)")
    g.add_argument("--bands", type=positive, default=32,
                   help="LSH bands of NUM_PERM/BANDS rows each (default 32 of 4: a pair of Jaccard "
                        "similarity 0.3 joins with probability 0.23, 0.5 with 0.87, 0.6 with 0.99)")
    g.add_argument("--ngram", type=positive, default=5, help="words per shingle (default 5)")
    g.add_argument("--char-ngram", type=positive, default=5,
                   help="characters per shingle in scripts without spaces (default 5)")
    g = p.add_argument_group("quality rules", f"rules, checked in this order: {', '.join(RULES)}")
    g.add_argument("--no-quality", action="store_true", help="apply no quality rule")
    g.add_argument("--no-rule", action="append", default=[], metavar="RULE", choices=RULES,
                   help="turn one rule off (repeat for more)")
    g.add_argument("--min-words", type=int, default=50, help="fewer words is dropped (default 50)")
    g.add_argument("--max-words", type=int, default=100_000, help="more words is dropped (default 100000)")
    g.add_argument("--min-alphabetic", type=_fraction, default=0.8,
                   help="share of words holding a letter, at least (default 0.8)")
    g.add_argument("--max-duplicate-lines", type=_fraction, default=0.3,
                   help="share of lines repeating an earlier line of the document, at most (default 0.3)")
    p.set_defaults(func=cmd_clean)

    p = dsub.add_parser("mix", help="sample documents by domain to weights and a token budget",
                        description="Sample documents by domain (a field, or the input file's name) "
                        "to target weights and a token budget counted with a tokenizer; write them "
                        "shuffled. Domains short of their share are repeated up to --max-epochs.",
                        epilog="example:\n  bpe data mix web.jsonl code.jsonl --weights web=0.7,code=0.3 "
                        "--tokens 50000000 -t o200k_base -o mix.jsonl", formatter_class=fmt)
    p.add_argument("files", nargs="+", metavar="FILE", help="inputs, as for `bpe data clean`")
    p.add_argument("-o", "--output", required=True, metavar="OUT.jsonl")
    tokenizer_flag(p)
    p.add_argument("--weights", required=True, metavar="D=W,...",
                   help="domain weights, e.g. web=0.7,code=0.3 (normalised to sum to 1)")
    p.add_argument("--tokens", type=positive, required=True, metavar="N", help="the token budget")
    p.add_argument("--by", metavar="FIELD", help="the JSONL field naming the domain (default: the input file)")
    p.add_argument("--field", default="text", help="the text field (default text)")
    p.add_argument("--split-on", metavar="SEP", help="as for `bpe data clean`")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-epochs", type=positive, default=4,
                   help="times a small domain may be repeated to reach its share (default 4)")
    p.add_argument("--quiet", "-q", action="store_true", help="no notes on stderr")
    p.set_defaults(func=cmd_mix)
