"""Map dotted key paths of a YAML document to line numbers, for error messages."""

from __future__ import annotations

import yaml


def _nodes(text: str):
    """(key path, node, parent node) for every mapping key and sequence item of the document."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return

    def walk(node: yaml.Node, path: tuple):
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                yield path + (key_node.value,), key_node, node
                yield from walk(value_node, path + (key_node.value,))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                yield path + (index,), item, node
                yield from walk(item, path + (index,))

    if root is not None:
        yield from walk(root, ())


def key_lines(text: str) -> dict[tuple, int]:
    """Return {(key, subkey, ...): 1-based line} for every mapping key and sequence item."""
    return {path: node.start_mark.line + 1 for path, node, _ in _nodes(text)}


def duplicate_keys(text: str) -> list[tuple[tuple, int, int]]:
    """Every key given twice in one mapping: (key path, line, line of the first) -- YAML loaders keep
    the last silently, so a config would run with a value its author did not see."""
    first: dict[tuple, int] = {}
    found = []
    for path, node, parent in _nodes(text):
        if isinstance(parent, yaml.MappingNode) and isinstance(node, yaml.ScalarNode) and node.value != "<<":
            line, seen = node.start_mark.line + 1, (id(parent), node.value)
            if seen in first:
                found.append((path, line, first[seen]))
            else:
                first[seen] = line
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
