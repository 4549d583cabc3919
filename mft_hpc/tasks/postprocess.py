"""From raw completion to the string the harness writes into the generations file.

``harness_output`` replays ``complete_code`` (prefix slice, suffix → "\\n", eos text removed) on
``model input + completion`` (the harness decodes prompt and generation together; Qwen's BPE
decodes losslessly), then the task's ``postprocess_generation``.
"""

from __future__ import annotations

from mft_hpc.tasks.names import IM_END, PromptStyle
from mft_hpc.tasks.prompts import model_input, prefix_suffix, prompt_base, task_prompt
from mft_hpc.tasks.registry import language_of
from mft_hpc.tasks.stops import open_braces, stop_words


def cut_at_stop_words(code: str, stops: tuple[str, ...]) -> str:
    """Cut at the earliest occurrence of any stop word (the harness's sequential cuts amount to this)."""
    cut = len(code)
    for word in stops:
        index = code.find(word)
        if index != -1 and index < cut:
            cut = index
    return code[:cut]


def remove_last_block(task: str, code: str, stops: tuple[str, ...]) -> str:
    """HumanEvalPack's ``remove_last_block``: end the completion where the target function ends."""
    code = cut_at_stop_words(code, stops)
    language = language_of(task)
    if language == "python":
        lines = code.split("\n")
        for i, line in enumerate(lines):
            if line.strip() and line[0] not in " \t":
                return "\n".join(lines[:i])
        return code
    depth = open_braces(task)
    for i, char in enumerate(code):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        if depth == 0:
            return code[: i + 1]
    if language == "java":
        main_at = code.find("public static void main")
        if main_at != -1:
            code = code[:main_at] + "}"
        if "}" in code:
            code = code[: code.rfind("}")] + "}"
        if code.count("{") - 1 == code.count("}"):
            code += "\n}"  # close class Solution
    elif "}" in code:
        code = code[: code.rfind("}")] + "}"
    return code


def pick_code_block(text: str) -> str:
    """MBPP's ``_pick_code_block``: the first fenced block, else the first top-level ``def`` block."""
    picked = ""
    in_code = False
    if "```" in text:
        for line in text.split("\n"):
            if not in_code and line.startswith("```"):
                in_code = True
                continue
            if in_code:
                if line.rstrip().endswith("```"):
                    picked += line.rstrip()[:-3] + "\n"
                    break
                picked += line + "\n"
        return picked
    for line in text.split("\n"):
        if not in_code and line.startswith("def "):
            in_code = True
            picked += line + "\n"
            continue
        if in_code:
            if line and line[0].strip() != "" and not line.startswith("def"):
                break
            picked += line + "\n"
    return picked


def postprocess_generation(task: str, doc: dict, generation: str, eos: str = IM_END) -> str:
    """The task's ``postprocess_generation`` on the text that ``complete_code`` hands it."""
    prompt = task_prompt(task, doc)
    stops = stop_words(task, eos)
    if task == "mbpp":
        code = pick_code_block(generation[len(prompt):])
        return prompt + cut_at_stop_words(code, stops)
    body = remove_last_block(task, generation[len(prompt):].rstrip(), stops)
    return prompt_base(task, doc).rstrip() + body


def decoded_to_generation(decoded: str, prefix: str, suffix: str, eos: str = IM_END) -> str:
    """``complete_code``'s cleanup of the decoded sequence (prompt + completion)."""
    text = decoded[len(prefix):]
    if suffix:
        text = text.replace(suffix, "\n")
    return text.replace(eos, "")


def harness_output(task: str, doc: dict, completion: str, style: PromptStyle = "competition",
                   system_prompt: str | None = None, eos: str = IM_END, assistant_newline: bool = False) -> str:
    """The generations-file string for one problem from its raw completion.

    With ``assistant_newline`` the longer suffix (``...assistant\\n``) is what becomes "\\n", as the harness
    treats whatever suffix it is given; for mbpp the program equals the competition path's for the same
    answer (there preceded by the model's own newline), since code extraction skips leading blank lines.
    """
    prefix, suffix = prefix_suffix(task, style, system_prompt, assistant_newline)
    decoded = model_input(task, doc, style, system_prompt, assistant_newline) + completion
    return postprocess_generation(task, doc, decoded_to_generation(decoded, prefix, suffix, eos), eos)
