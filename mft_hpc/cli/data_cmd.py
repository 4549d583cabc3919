"""`mft-hpc data check|render|demo`: validate task files, render ChatML tokens, build the demo set."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mft_hpc.cli.options import at_least
from mft_hpc.errors import UserError


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("data", help="check, render or build training data")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    check = actions.add_parser("check", help="validate task paths; list every bad line as file:line: reason, exit 2")
    check.add_argument("paths", nargs="+", help="task directories (recursive *.jsonl) or .jsonl files")
    check.set_defaults(func=_check)

    render = actions.add_parser("render", help="write {input_ids, loss_mask} per line of a jsonl file")
    render.add_argument("--tokenizer", required=True, help="model/tokenizer directory (HF, or Qwen-1 qwen.tiktoken)")
    render.add_argument("--in", dest="input", required=True, help="input .jsonl (chat_rounds or prompt/answer)")
    render.add_argument("--out", required=True, help="output .jsonl")
    render.add_argument("--seq-length", type=at_least(2), default=None, help="truncate/drop samples longer than this")
    render.add_argument("--overlong", choices=("truncate", "drop"), default="truncate")
    render.set_defaults(func=_render)

    stats = actions.add_parser("stats", help="tokenize a config's data and report counts and row fill")
    stats.add_argument("config", help="config file (its data section and model.path's tokenizer are used)")
    stats.add_argument("--member", default=None, help="sweep member (default: the first)")
    stats.add_argument("--cache", default=None, help="cache directory for the tokenized data (default: none)")
    stats.set_defaults(func=_stats)

    demo = actions.add_parser("demo", help="build the two-task demo set from MBPP's train split (601-974)")
    demo.add_argument("--benchmarks", required=True, help="benchmark directory holding mbpp/mbpp.jsonl")
    demo.add_argument("--out", required=True, help="output directory (one subdirectory per task)")
    demo.add_argument("--limit", type=at_least(1), default=None, help="use only the first N train problems")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)


def _check(args: argparse.Namespace) -> int:
    from mft_hpc.data.records import read_tasks

    task_records = read_tasks(args.paths)
    n_errors = 0
    for tr in task_records:
        for error in tr.errors:
            print(error)
        n_errors += len(tr.errors)
    for tr in task_records:
        print(f"task {tr.task.name}: {len(tr.records)} valid, {len(tr.errors)} invalid "
              f"({len(tr.task.files)} file{'s' if len(tr.task.files) != 1 else ''})", file=sys.stderr)
    return 2 if n_errors else 0


RENDER_BATCH = 512  # records per tokenizer call: rendering streams, whatever the file's size


def _render(args: argparse.Namespace) -> int:
    from mft_hpc.cli.options import check_not_input, check_output_file
    from mft_hpc.data.records import Record, Task, iter_task, task_errors
    from mft_hpc.extras import require_extras
    from mft_hpc.rundir import atomic_open

    source = Path(args.input)
    if not source.is_file():
        raise UserError(f"--in {args.input}: no such file")
    check_output_file(args.out, "--out")
    check_not_input(args.out, [source])
    require_extras("data render", "tokenize")
    from mft_hpc.data.codec import as_codec, load_tokenizer
    from mft_hpc.data.render import DROPPED, TRUNCATED, ChatMLRenderer

    task = Task(name=source.stem, files=(source,))
    errors, n_errors = task_errors(task, 50)
    if n_errors:
        more = [f"... {n_errors - len(errors)} more (`mft-hpc data check` lists them all)"] if n_errors > len(errors) else []
        raise UserError("\n".join(errors + more + [f"{n_errors} invalid line(s); nothing written"]))
    renderer = ChatMLRenderer(as_codec(load_tokenizer(args.tokenizer)), args.seq_length, args.overlong)
    counts = {"lines": 0, TRUNCATED: 0, DROPPED: 0}

    def flush(batch: list, handle) -> None:
        for record, out in zip(batch, renderer.render_many([r.turns for r in batch])):
            line = {"input_ids": out.input_ids, "loss_mask": out.loss_mask}
            if out.status != "ok":
                line["status"] = out.status
                counts[out.status] += 1
                print(f"{source}:{record.line}: {out.status} (longer than --seq-length {args.seq_length})",
                      file=sys.stderr)
            handle.write(json.dumps(line) + "\n")
            counts["lines"] += 1
        batch.clear()

    with atomic_open(args.out, "w") as handle:
        batch: list = []
        for item in iter_task(task):
            if isinstance(item, Record):
                batch.append(item)
                if len(batch) >= RENDER_BATCH:
                    flush(batch, handle)
        flush(batch, handle)
    print(f"{args.out}: {counts['lines']} lines ({counts[TRUNCATED]} truncated, {counts[DROPPED]} dropped)",
          file=sys.stderr)
    return 0


def _stats(args: argparse.Namespace) -> int:
    from mft_hpc.config import load_config
    from mft_hpc.extras import require_extras

    members = dict(load_config(args.config).members)
    require_extras("data stats", "generate")
    from mft_hpc.data import build_datasets, load_tokenizer

    name = args.member or next(iter(members))
    if name not in members:
        raise UserError(f"--member {name}: no such sweep member; members are {', '.join(members)}")
    config = members[name]
    bundle = build_datasets(config.data, load_tokenizer(config.model.path), args.cache)
    for task_id, info in enumerate(bundle.stats.per_task):
        train = sum(1 for t in bundle.train.row_task if t == task_id)
        valid = sum(1 for t in bundle.valid.row_task if t == task_id)
        print(f"task {info['name']}: {info['records']} records, {info['invalid']} invalid, "
              f"{info['truncated']} truncated, {info['dropped']} dropped; rows train {train} / valid {valid}")
    for error in bundle.errors:
        print(f"skipped {error}", file=sys.stderr)
    print(bundle.stats.summary())
    return 0


def _demo(args: argparse.Namespace) -> int:
    from mft_hpc.cli.options import check_output_dir
    from mft_hpc.data.demo import build_demo

    check_output_dir(args.out, "--out")
    counts = build_demo(args.benchmarks, args.out, limit=args.limit, seed=args.seed)
    for task, n in counts.items():
        print(f"{Path(args.out) / task}: {n} samples")
    return 0
