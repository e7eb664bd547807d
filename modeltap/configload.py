"""Build a :class:`MonitorConfig` once, at start-up: file, then environment, then flags.

Precedence, lowest first: built-in defaults, the YAML file, ``MONITOR_*`` environment
variables (``MONITOR_STORAGE__URL`` sets ``storage.url``; ``MONITOR_MODELS__0__TASK`` sets
``models[0].task``), then command-line flags. The environment is passed in as a mapping
rather than read here, so loading is a pure function that tests can call with any
environment. (pydantic-settings reads ``os.environ`` itself and ranks constructor
arguments above the environment, which is the wrong order for command-line flags.)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modeltap.errors import ConfigError

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

    from modeltap.config import MonitorConfig

ENV_PREFIX = "MONITOR_"
CONFIG_ENV = "MONITOR_CONFIG"


def load_config(
    path: Path | None,
    env: Mapping[str, str],
    overrides: Mapping[str, Any] | None = None,
) -> MonitorConfig:
    """Read, merge and validate the configuration; raise ConfigError naming the bad key.

    >>> load_config(None, {"MONITOR_STORAGE__URL": "sqlite:///x.db"}).storage.url
    'sqlite:///x.db'
    """
    # Imported here, not at the top: `monitor --help` needs the variable's name, not pydantic.
    from pydantic import ValidationError  # noqa: PLC0415

    from modeltap.config import MonitorConfig  # noqa: PLC0415

    if path is None and env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV])
    data = read_yaml(path) if path is not None else {}
    overlay, origins = env_overlay(env)
    merged = deep_merge(deep_merge(data, overlay), dict(overrides or {}))
    try:
        return MonitorConfig.model_validate(merged)
    except ValidationError as exc:
        source = str(path) if path is not None else "configuration"
        raise ConfigError(format_errors(exc, source, origins)) from None


def read_yaml(path: Path) -> dict[str, Any]:
    """The YAML mapping in ``path``; a missing, unreadable or malformed file is a ConfigError."""
    import yaml  # noqa: PLC0415

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist; pass --config FILE or set {CONFIG_ENV} "
            "(config.example.yaml shows every key)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of keys (storage:, models:, ...), "
            f"found a {type(data).__name__}"
        )
    return data


def env_overlay(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Nested overrides from ``MONITOR_A__B__C=value`` variables, and the variable behind each.

    Only variables whose first segment names a top-level key count, so unrelated
    ``MONITOR_*`` variables (such as ``MONITOR_TEST_KAFKA``) are left alone.
    """
    from modeltap.config import MonitorConfig  # noqa: PLC0415

    top_level = set(MonitorConfig.model_fields)
    overlay: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        parts = [part.lower() for part in name.removeprefix(ENV_PREFIX).split("__")]
        if parts[0] not in top_level or not all(parts):
            continue
        _assign(overlay, parts, _env_value(env[name]))
        origins[".".join(parts)] = name
    return overlay, origins


def _env_value(raw: str) -> Any:
    # Lists and mappings arrive as JSON; scalars stay strings and pydantic coerces them,
    # so a password like "no" is never turned into a boolean.
    stripped = raw.strip()
    if stripped[:1] in ("[", "{"):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            return raw
    return raw


def _assign(target: dict[str, Any], parts: list[str], value: Any) -> None:
    node: Any = target
    for index, part in enumerate(parts[:-1]):
        following_is_index = parts[index + 1].isdigit()
        key: Any = int(part) if part.isdigit() else part
        if isinstance(node, list):
            while len(node) <= key:
                node.append({})
            if not isinstance(node[key], dict | list):
                node[key] = [] if following_is_index else {}
        elif key not in node or not isinstance(node[key], dict | list):
            node[key] = [] if following_is_index else {}
        node = node[key]
    last: Any = int(parts[-1]) if parts[-1].isdigit() else parts[-1]
    if isinstance(node, list):
        while len(node) <= last:
            node.append(None)
    node[last] = value


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``; mappings merge key by key, lists merge index by index."""
    merged: dict[str, Any] = dict(base)
    for key, value in top.items():
        merged[key] = _merge_value(merged.get(key), value)
    return merged


def _merge_value(base: Any, top: Any) -> Any:
    if isinstance(base, Mapping) and isinstance(top, Mapping):
        return deep_merge(base, top)
    if (
        isinstance(base, list)
        and isinstance(top, list)
        and all(isinstance(item, Mapping) or item is None for item in top)
    ):
        # MONITOR_MODELS__1__TASK yields [None, {"task": ...}]: patch the file's list.
        result = list(base)
        for index, item in enumerate(top):
            if index >= len(result):
                result.append(item)
            elif item is not None:
                result[index] = _merge_value(result[index], item)
        return result
    return top


def format_errors(exc: ValidationError, source: str, origins: Mapping[str, str]) -> str:
    """One line per problem: the key path, what is wrong, what is allowed."""
    lines = [f"{source} is not valid:"]
    for error in exc.errors():
        loc = tuple(error["loc"])
        path = _dotted(loc)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            message = "unknown key" + (f"; allowed here: {', '.join(allowed)}" if allowed else "")
        # Our own value errors already quote the input; pydantic's do not.
        elif error["type"] not in ("missing", "value_error") and "input" in error:
            message += f" (got {_short(error['input'])})"
        origin = origins.get(".".join(str(part) for part in loc))
        if origin:
            message += f" [from environment variable {origin}]"
        lines.append(f"  {path or '(top level)'}: {message}")
    return "\n".join(lines)


def _dotted(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the model at ``loc`` accepts, found by walking the schema's annotations."""
    from modeltap.config import MonitorConfig  # noqa: PLC0415

    model: type[BaseModel] | None = MonitorConfig
    for part in loc:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        model = _model_in(field.annotation) if field is not None else None
    return list(model.model_fields) if model is not None else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    from pydantic import BaseModel  # noqa: PLC0415

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in getattr(annotation, "__args__", ()):
        found = _model_in(argument)
        if found is not None:
            return found
    return None
