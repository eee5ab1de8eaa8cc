"""Apps talk through public doors (issue 18.2): no module imports a ``_private`` name of another
app, whether by ``from x import _name`` or as ``module._name``.  (import-linter checks the
layers and the views; this checks the names.)"""

from __future__ import annotations

import ast
from pathlib import Path

import tidings

SRC = Path(tidings.__file__).parent


# Django's documented model API starts with an underscore but is nobody's private state:
# the Model _meta API, and the managers Django itself uses (_base_manager, _default_manager).
DJANGO_MODEL_API = {"_meta", "_base_manager", "_default_manager"}


def _app(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else ""


def _private_reaches() -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        relative = path.relative_to(SRC)
        own = relative.parts[0] if len(relative.parts) > 1 else ""
        tree = ast.parse(path.read_text())
        other_modules: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and not node.level and node.module:
                if not node.module.startswith("tidings.") or _app(node.module + ".x") == own:
                    continue
                for alias in node.names:
                    if alias.name.startswith("_"):
                        found.append(f"{relative}:{node.lineno} {node.module}.{alias.name}")
                    other_modules[alias.asname or alias.name] = node.module
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in other_modules
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and node.attr not in DJANGO_MODEL_API
            ):
                found.append(f"{relative}:{node.lineno} {node.value.id}.{node.attr}")
    return found


def test_no_app_reaches_into_another_apps_private_names():
    assert _private_reaches() == []
