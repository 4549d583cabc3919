"""`mft-hpc postprocess`: re-create the harness's generation files from raw completions (no GPU)."""

from __future__ import annotations

import argparse
from collections import defaultdict

from mft_hpc.cli.options import check_output_dir
from mft_hpc.config.sections.generate import GenerateSection
from mft_hpc.errors import UserError
from mft_hpc.generate.outputs import generations_path, harness_strings, valid_model_name, write_generations
from mft_hpc.generate.rawfile import read_raw
from mft_hpc.tasks import load_problems
from mft_hpc.tasks.names import IM_END, PROMPT_STYLES
from mft_hpc.tasks.registry import check_task


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("postprocess", help="raw completions -> generations_{model}/generations_{task}_{model}.json")
    parser.add_argument("--raw", nargs="+", required=True, metavar="RAW.jsonl", help="raw_{task}.jsonl file(s)")
    parser.add_argument("--benchmarks", required=True, help="benchmark data directory")
    parser.add_argument("--model", required=True, help="model name in the file names (no '_')")
    parser.add_argument("--out", required=True, help="directory that receives generations_{model}/")
    parser.add_argument("--style", choices=PROMPT_STYLES, default="competition", help="prompt style used to generate")
    parser.add_argument("--system-prompt", default=None)
    parser.add_argument("--assistant-newline", action="store_true",
                        help="the ChatML suffix ended with 'assistant' + newline (generate.assistant_newline)")
    parser.add_argument("--eos", default=IM_END, help="eos text (removed from outputs, a stop word)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    check_output_dir(args.out, "--out")
    model = valid_model_name(args.model)
    settings = GenerateSection(prompt_style=args.style, system_prompt=args.system_prompt,
                               assistant_newline=args.assistant_newline)
    by_task: dict[str, dict[int, dict]] = defaultdict(dict)
    sources: dict[str, str] = {}
    for path in args.raw:
        records = read_raw(path)
        if not records:
            raise UserError(f"{path}: no raw completions (file missing or empty)")
        for index, record in records.items():
            task = check_task(record["task"])
            by_task[task].setdefault(index, record)
            sources[task] = path
    for task, records in by_task.items():
        # a partial (--limit) run covers the first N problems
        docs = load_problems(args.benchmarks, task)[: max(records) + 1]
        prompt = settings.prompt_settings(task)
        strings = harness_strings(task, docs, records, sources[task], eos=args.eos, **prompt)
        path = generations_path(args.out, task, model)
        write_generations(path, strings, {"problems": len(strings), "source": "postprocess", "prompt": prompt})
        print(f"{path}: {len(strings)} problems")
    return 0
