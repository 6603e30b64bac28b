"""Shared pydantic plumbing: closed models, YAML loading and ``key.path=value`` overrides."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError

M = TypeVar("M", bound="StrictModel")


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the offending field."""


class StrictModel(BaseModel):
    """Base for every config object: unknown keys are errors, assignments re-validate."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @classmethod
    def from_dict(cls: type[M], data: dict[str, Any], *, source: str = "<dict>") -> M:
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise ConfigError(format_validation_error(e, cls.__name__, source)) from None

    @classmethod
    def from_yaml(cls: type[M], path: str | Path, overrides: Iterable[str] = ()) -> M:
        path = Path(path)
        data = load_yaml_file(path)
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
        return cls.from_dict(apply_overrides(data, overrides), source=str(path))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json", exclude_none=True), sort_keys=False)


def load_yaml_file(path: Path) -> Any:
    """A YAML file's content (``{}`` when empty); any problem reading or parsing it is one ``ConfigError``
    line, ``<path>: <problem>``, that a CLI prints as it is."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a file") from None
    except PermissionError:
        raise ConfigError(f"{path}: permission denied") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start})") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {yaml_problem(e)}") from None


def yaml_problem(err: yaml.YAMLError) -> str:
    """A YAML error in one line: the problem, its context and where (``line L, column C``, 1-based)."""
    if isinstance(err, yaml.MarkedYAMLError):
        parts = [p for p in (err.context, err.problem) if p]
        mark = err.problem_mark or err.context_mark
        text = ": ".join(parts) or type(err).__name__
        if mark is not None:
            text += f" (line {mark.line + 1}, column {mark.column + 1})"
    else:
        text = str(err) or type(err).__name__
    return " ".join(text.split())


def key_error(key: str, message: str) -> PydanticCustomError:
    """An error about a key inside the value being validated (a key of a dict field, an extra key):
    raised from a validator, ``format_validation_error`` names it as ``<field>.<key>: <message>``."""
    return PydanticCustomError("config_key", "{message}", {"message": message, "key": key})


def validation_problems(err: ValidationError) -> list[str]:
    """Each error of a pydantic ``ValidationError`` as ``<field.path>: <message>``."""
    problems = []
    for item in err.errors():
        loc = [str(p) for p in item["loc"]]
        if item["type"] == "config_key":
            loc.append(str((item.get("ctx") or {}).get("key", "")))
        where = ".".join(p for p in loc if p) or "<root>"
        msg = item["msg"]
        if item["type"] == "extra_forbidden":
            msg = "unknown field (not allowed)"
        problems.append(f"{where}: {msg}")
    return problems


def format_validation_error(err: ValidationError, model: str, source: str) -> str:
    return "\n".join([f"invalid {model} in {source}:", *(f"  - {p}" for p in validation_problems(err))])


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides; values are parsed as YAML (so ``3``, ``true``, ``[1,2]`` work)."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} must look like key.path=value")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a mapping")
            node = child
        node[parts[-1]] = value
    return data
