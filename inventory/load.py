"""Load an inventory file: YAML → shape (schema.py) → rules (rules.py) → resolved `Cluster`.

Every problem is collected, none stops the others from being found, and each one names the
file, line and column it comes from. `load_inventory` raises `InventoryError` listing them all.
"""

from __future__ import annotations

import copy
import difflib
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from core.errors import InventoryError, Problem
from installer.plan import FileRefused, read_small_file
from inventory.model import Cluster
from inventory.rules import RuleProblem, resolve
from inventory.schema import InventoryFile
from inventory.yamlpos import Locator, PathPart, YamlSyntaxError, load_yaml


def load_inventory(path: Path) -> Cluster:
    """The resolved cluster, or InventoryError with every problem (warnings are kept on it)."""
    cluster, problems = check_inventory(path)
    if cluster is None or any(not p.warning for p in problems):
        raise InventoryError(problems)
    return cluster


def check_inventory(path: Path) -> tuple[Cluster | None, list[Problem]]:
    """Every problem in the file, warnings included; the cluster when there is no error."""
    name = str(path)
    try:
        text = read_small_file(path, "inventory")
    except FileNotFoundError:
        return None, [Problem(name, 1, 1, "", "no such file; give the path of your inventory.yml")]
    except FileRefused as err:
        return None, [Problem(name, 1, 1, "", str(err).removeprefix(f"{path}: "))]
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        return None, [Problem(name, 1, 1, "", f"cannot read it: {reason}")]
    try:
        data, locator = load_yaml(text)
    except YamlSyntaxError as err:
        return None, [Problem(name, err.line, err.column, "", f"YAML syntax: {err.message}")]
    if not isinstance(data, dict):
        return None, [Problem(name, 1, 1, "", "the inventory must be a YAML mapping (cluster:, nodes:, ...)")]
    try:
        shape = InventoryFile.model_validate(data)
    except ValidationError as err:
        shape_problems = [_schema_problem(name, locator, e) for e in err.errors()]
        parsed = _what_parsed(data, err)
        if parsed is None:
            return None, _in_line_order(shape_problems)
        # the cross-field rules on the rest of the file, so that one run shows every problem
        _, found = resolve(parsed, path)
        rules = [_rule_problem(name, locator, p) for p in found]
        return None, _in_line_order(shape_problems + rules)
    cluster, found = resolve(shape, path)
    problems = list(dict.fromkeys(_rule_problem(name, locator, p) for p in found))  # defaults: once
    return (None if any(not p.warning for p in problems) else cluster), _in_line_order(problems)


def _in_line_order(problems: list[Problem]) -> list[Problem]:
    return sorted(dict.fromkeys(problems), key=lambda p: (p.line, p.column))


def _what_parsed(data: dict[str, Any], err: ValidationError) -> InventoryFile | None:
    """The file without the values its shape errors are at, if what is left is a whole inventory (a wrong
    required value leaves none: then only the shape errors are reported)."""
    cleaned = copy.deepcopy(data)
    for error in err.errors():
        _drop(cleaned, [part for part in error["loc"] if part != "[key]"])
    try:
        return InventoryFile.model_validate(cleaned)
    except ValidationError:
        return None


def _drop(data: Any, loc: list[PathPart]) -> None:
    """Remove the value at `loc`, or the deepest one there is on its way."""
    for i, part in enumerate(loc):
        inner = data[part] if isinstance(data, dict) and part in data else \
            data[part] if isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data) else None
        if inner is None or i == len(loc) - 1 or not isinstance(inner, (dict, list)):
            if isinstance(data, dict) and part in data:
                del data[part]
            return
        data = inner


def _rule_problem(name: str, locator: Locator, problem: RuleProblem) -> Problem:
    line, col = locator.position(problem.path, key=problem.at_key)
    return Problem(name, line, col, _dotted(problem.path), problem.message, problem.warning)


def _dotted(path: Sequence[PathPart]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _schema_problem(name: str, locator: Locator, error: ErrorDetails) -> Problem:
    loc = [part for part in error["loc"] if part != "[key]"]
    kind = error["type"]
    if kind == "extra_forbidden":
        line, col = locator.position(loc, key=True)
        key = str(loc[-1])
        allowed = _fields_at(loc[:-1])
        guess = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        hint = f"did you mean '{guess[0]}'?" if guess else f"allowed here: {', '.join(allowed) or 'nothing'}"
        return Problem(name, line, col, _dotted(loc), f"unknown key; {hint}")
    line, col = locator.position(loc)
    return Problem(name, line, col, _dotted(loc), _message(error, loc))


def _message(error: ErrorDetails, loc: Sequence[PathPart]) -> str:
    kind, ctx, value = error["type"], error.get("ctx", {}), error.get("input")
    shown = _shown(value, loc)
    if kind == "missing":
        return "is required; add it"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", error["msg"])).removeprefix("Value error, ")
    if kind == "literal_error":
        return f"{shown} is not allowed; use one of {ctx.get('expected', '')}"
    if kind == "string_pattern_mismatch":
        about = _description(loc)
        return f"{shown} is not valid" + (f"; expected {about}" if about else f" (must match {ctx.get('pattern')})")
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return f"{shown} is out of range; {error['msg'].lower().replace('input should be', 'it must be')}"
    if kind in ("too_short", "too_long"):
        return f"{error['msg'].lower()}"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        wanted = kind.split("_")[0].replace("model", "mapping").replace("dict", "mapping")
        wanted = {"int": "whole number", "bool": "true or false", "str": "string", "list": "list"}.get(wanted, wanted)
        return f"{shown} must be a {wanted}"
    return f"{shown}: {error['msg']}"


def _shown(value: Any, loc: Sequence[PathPart]) -> str:
    if any(part in ("password", "value", "root_password_hash") for part in loc):
        return "the value"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fields_at(loc: Sequence[PathPart]) -> list[str]:
    model = _model_at(loc)
    return list(model.model_fields) if model is not None else []


def _description(loc: Sequence[PathPart]) -> str:
    model = _model_at(loc[:-1])
    if model is None or not isinstance(loc[-1], str) or loc[-1] not in model.model_fields:
        return ""
    return model.model_fields[loc[-1]].description or ""


def _model_at(loc: Sequence[PathPart]) -> type[BaseModel] | None:
    """The pydantic model that describes the mapping at `loc` in the file."""
    current: Any = InventoryFile
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel) and isinstance(part, str):
            field = current.model_fields.get(part)
            if field is None:
                return None
            current = field.annotation
        elif typing.get_origin(current) in (list, dict):
            current = typing.get_args(current)[-1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            models = [a for a in members if isinstance(a, type) and issubclass(a, BaseModel)]
            tp = models[0] if models else members[0]
        else:
            return tp
