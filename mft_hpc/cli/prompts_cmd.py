"""`mft-hpc prompts`: write the exact model input of every problem (no model, no GPU)."""

from __future__ import annotations

import argparse
import json

from mft_hpc.cli.options import at_least, check_output_file
from mft_hpc.config.sections.generate import GenerateSection
from mft_hpc.rundir import atomic_open
from mft_hpc.tasks import TASK_NAMES, load_problems
from mft_hpc.tasks.names import PROMPT_STYLES
from mft_hpc.tasks.prompts import model_input
from mft_hpc.tasks.registry import check_task


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("prompts", help="write the exact text fed to the tokenizer, one JSON line per problem")
    parser.add_argument("--benchmarks", required=True, help="benchmark data directory")
    parser.add_argument("--tasks", nargs="+", default=list(TASK_NAMES), metavar="TASK", help="default: all 13")
    parser.add_argument("--style", choices=PROMPT_STYLES, default="competition", help="prompt style (default: competition)")
    parser.add_argument("--system-prompt", default=None, help="system message of ChatML-wrapped prompts")
    parser.add_argument("--assistant-newline", action="store_true",
                        help="end the ChatML suffix with 'assistant' + newline, as training renders it "
                             "(generate.assistant_newline; no effect on tasks without ChatML)")
    parser.add_argument("--limit", type=at_least(1), default=None, help="first N problems per task")
    parser.add_argument("--out", required=True, help="output .jsonl file")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    check_output_file(args.out, "--out")
    for task in args.tasks:
        check_task(task)  # fail before writing anything
    settings = GenerateSection(prompt_style=args.style, system_prompt=args.system_prompt,
                               assistant_newline=args.assistant_newline)
    count = 0
    with atomic_open(args.out, "w") as out:
        for task in args.tasks:
            for index, doc in enumerate(load_problems(args.benchmarks, task)[: args.limit]):
                text = model_input(task, doc, **settings.prompt_settings(task))
                out.write(json.dumps({"task": task, "index": index, "text": text}) + "\n")
                count += 1
    print(f"{args.out}: {count} prompts ({len(args.tasks)} task{'s' if len(args.tasks) != 1 else ''})")
    return 0
