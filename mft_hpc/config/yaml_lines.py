"""Map dotted key paths of a YAML document to line numbers, for error messages."""

from __future__ import annotations

import yaml


def key_lines(text: str) -> dict[tuple, int]:
    """Return {(key, subkey, ...): 1-based line} for every mapping key and sequence item."""
    lines: dict[tuple, int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines

    def walk(node: yaml.Node, path: tuple) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                sub = path + (key_node.value,)
                lines[sub] = key_node.start_mark.line + 1
                walk(value_node, sub)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                sub = path + (index,)
                lines[sub] = item.start_mark.line + 1
                walk(item, sub)

    if root is not None:
        walk(root, ())
    return lines


def duplicate_keys(text: str) -> list[tuple[tuple, int, int]]:
    """Every key given twice in one mapping: (key path, line, line of the first) -- YAML loaders keep
    the last silently, so a config would run with a value its author did not see."""
    found: list[tuple[tuple, int, int]] = []
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return found

    def walk(node: yaml.Node, path: tuple) -> None:
        if isinstance(node, yaml.MappingNode):
            first: dict = {}
            for key_node, value_node in node.value:
                key = key_node.value
                sub = path + (key,)
                if key != "<<" and isinstance(key_node, yaml.ScalarNode):
                    if key in first:
                        found.append((sub, key_node.start_mark.line + 1, first[key]))
                    else:
                        first[key] = key_node.start_mark.line + 1
                walk(value_node, sub)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, path + (index,))

    if root is not None:
        walk(root, ())
    return found


def nearest_line(lines: dict[tuple, int], path: tuple) -> int | None:
    """The line of ``path`` or of its closest ancestor present in the file."""
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None


def format_problem(source, lines: dict[tuple, int], loc: tuple, message: str) -> str:
    """``file:line: key: reason`` (the line of ``loc`` or its closest ancestor; no file when ``source`` is None)."""
    line = nearest_line(lines, loc)
    where = (f"{source}:{line}: " if line else f"{source}: ") if source is not None else ""
    key = ".".join(str(part) for part in loc) or "<top>"
    return f"{where}{key}: {message}"
