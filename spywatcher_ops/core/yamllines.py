"""YAML read with the line of every value, for files people edit (drill suites,
maintenance plans): a problem is reported as `file:line: what is wrong; accepted: ...`.

PyYAML's composer, not `safe_load`: the nodes keep their marks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class YamlError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass
class Node:
    """A value and the line (1-based) it starts on. A mapping's value is
    {key: (Node, line of the key)}; a sequence's is [Node]; else the scalar."""

    value: Any
    line: int

    def plain(self) -> Any:
        if isinstance(self.value, dict):
            return {k: v.plain() for k, (v, _line) in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        return self.value


def compose(text: str) -> Node | None:
    """The document as Nodes; None when it is empty. YamlError names the line of a syntax error."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None

        def walk(node: Any) -> Node:
            line = node.start_mark.line + 1
            if isinstance(node, yaml.MappingNode):
                return Node(
                    {
                        str(loader.construct_object(k)): (walk(v), k.start_mark.line + 1)
                        for k, v in node.value
                    },
                    line,
                )
            if isinstance(node, yaml.SequenceNode):
                return Node([walk(v) for v in node.value], line)
            return Node(loader.construct_object(node), line)

        return walk(root)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise YamlError(
            mark.line + 1 if mark is not None else 1,
            f"not valid YAML: {getattr(exc, 'problem', None) or exc}",
        ) from None
    finally:
        loader.dispose()
