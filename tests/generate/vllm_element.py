"""One generation element run in the vLLM environment (.venv-vllm); started by test_vllm.py.

    .venv-vllm/bin/python tests/generate/vllm_element.py '<json: model_dir, units, out_dir, gen_cfg, model_name>'
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    args = json.loads(sys.argv[1])
    from mft_hpc.config.sections.generate import GenerateSection
    from mft_hpc.elements import GenerateElement

    results = GenerateElement(args["model_dir"], tuple(map(tuple, args["units"])), args["out_dir"],
                              GenerateSection(**args["gen_cfg"]), args["model_name"])()
    print("RESULTS " + json.dumps(results), flush=True)


if __name__ == "__main__":  # vLLM's engine starts processes that import the main module again
    main()
