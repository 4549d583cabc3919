"""`mft-hpc model import SRC DST`: convert a Qwen-1 checkpoint into a native Qwen2 directory."""

from __future__ import annotations

import argparse

QWEN1_TOKENIZER_SIZE = 151_851  # qwen.tiktoken's 151,643 ranks + Qwen-1's 208 special tokens


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("model", help="convert model checkpoints (Qwen-1 -> native Qwen2)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    imp = actions.add_parser(
        "import", help="Qwen-1 (model_type qwen, qwen.tiktoken) -> Qwen2ForCausalLM + fast tokenizer",
        description="Convert a Qwen-1 checkpoint directory into a transformers Qwen2ForCausalLM directory "
                    "(same weights, same dtype, sharded safetensors) with a fast tokenizer giving Qwen-1's "
                    "ids; streams tensor by tensor. Refuses settings it cannot map exactly (exit 2).")
    imp.add_argument("src", help="Qwen-1 checkpoint directory (config.json, qwen.tiktoken, *.safetensors)")
    imp.add_argument("dst", help="new directory for the native model (written atomically, marked DST.done)")
    imp.add_argument("--check", action="store_true", help="validate SRC only; write nothing")
    imp.set_defaults(func=_import)


def _import(args: argparse.Namespace) -> int:
    from mft_hpc.model.qwen1_import import import_qwen1, inspect_qwen1
    from mft_hpc.rundir import is_done

    source = inspect_qwen1(args.src)
    shape = source.shape
    print(f"Qwen-1 checkpoint {args.src}: {shape.layers} layers, hidden {shape.hidden_size}, "
          f"{shape.heads} heads, MLP {shape.mlp_width}, vocab {shape.vocab_size}, {source.dtype}, "
          f"exact up to {shape.max_positions} tokens")
    if shape.vocab_size < QWEN1_TOKENIZER_SIZE:
        print(f"note: vocab_size {shape.vocab_size} is below the tokenizer's {QWEN1_TOKENIZER_SIZE} ids: "
              f"ids from {shape.vocab_size} on (all special tokens among them) have no embedding")
    if args.check:
        return 0
    finished_before = is_done(args.dst)
    out = import_qwen1(args.src, args.dst, source=source)  # refuses a DST imported from another source
    if finished_before:
        print(f"{out}: already a finished import of {args.src}; nothing to do")
    else:
        print(f"wrote {out} (Qwen2ForCausalLM; load with AutoModelForCausalLM / AutoTokenizer, no remote code)")
    return 0
