"""Loading the YAML config: `${ENV_VAR}` secret references, errors with the key path.

Loading happens in three steps, each reporting the key path of what is wrong:
1. YAML is parsed (syntax errors carry the line);
2. `${NAME}` references are replaced from the environment (a missing variable is an error);
3. pydantic validates the tree against `shopcrm.config.schema` (unknown keys, wrong types,
   unknown platforms are errors).

Every resolved secret is registered with the log redactor as a second line of defence behind
`SecretStr`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from pydantic import SecretStr, ValidationError
from sqlalchemy.engine import make_url

from shopcrm.config.schema import PLATFORMS, AppConfig, CsvShop
from shopcrm.errors import ConfigError
from shopcrm.log import register_secret

log = logging.getLogger(__name__)

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
ALIASED_NODES_MAX = 10_000


class _AliasBudgetLoader(yaml.SafeLoader):
    """SafeLoader that refuses, while composing, a document whose aliases would expand to more
    than ALIASED_NODES_MAX values: a few lines of nested aliases ("billion laughs") otherwise
    expand to billions of values once walked. Ordinary anchors (`<<: *defaults`) pass."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._sizes: dict[int, int] = {}  # id(node) -> values it expands to
        self._aliased = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        alias = self.peek_event() if self.check_event(yaml.AliasEvent) else None
        node = super().compose_node(parent, index)
        if alias is not None:
            size = self._sizes.get(id(node))
            if size is None:
                raise yaml.composer.ComposerError(
                    None, None, "an alias refers to its own ancestor (recursive)", alias.start_mark
                )
            self._aliased += size
            if self._aliased > ALIASED_NODES_MAX:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"aliases expand to more than {ALIASED_NODES_MAX} values; write them out",
                    alias.start_mark,
                )
            return node
        if isinstance(node, yaml.SequenceNode):
            size = 1 + sum(self._sizes[id(child)] for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            size = 1 + sum(self._sizes[id(k)] + self._sizes[id(v)] for k, v in node.value)
        else:
            size = 1
        self._sizes[id(node)] = size
        return node


def format_path(loc: tuple[str | int, ...]) -> str:
    """('shops', 2, 'credentials', 'x') -> 'shops[2].credentials.x'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _in_url_userinfo(template: str, position: int) -> bool:
    """Whether `position` of a URL template lies in its user:password part."""
    scheme_end = template.find("://")
    at = template.find("@", scheme_end + 3) if scheme_end >= 0 else -1
    return scheme_end < position < at


def _walk_env(node: Any, loc: tuple[str | int, ...], env: dict[str, str], found: set[str]) -> Any:
    if isinstance(node, dict):
        return {k: _walk_env(v, (*loc, str(k)), env, found) for k, v in node.items()}
    if isinstance(node, list):
        return [_walk_env(v, (*loc, i), env, found) for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise ConfigError(f"environment variable {name} is not set", path=format_path(loc))
            if loc == ("database",) and _in_url_userinfo(node, match.start()):
                # A raw password with @ / # : would otherwise break the URL apart (and show
                # its tail as the host in `config check`); SQLAlchemy decodes it again.
                return quote(env[name], safe="")
            return env[name]

        found.add(format_path(loc))
        return _ENV_REF.sub(substitute, node)
    return node


def _clean_loc(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """Drop the discriminator tag pydantic inserts after a shop's index."""
    out: list[str | int] = []
    for i, part in enumerate(loc):
        if part in PLATFORMS and i > 0 and isinstance(loc[i - 1], int):
            continue
        out.append(part)
    return tuple(out)


def _describe(error: Any) -> tuple[str, str]:
    loc = _clean_loc(tuple(error["loc"]))
    kind = error["type"]
    if kind == "extra_forbidden":
        return format_path(loc), "unknown key"
    if kind == "union_tag_invalid":
        tag = error.get("ctx", {}).get("tag", "?")
        return format_path((*loc, "platform")), (
            f"unknown platform {tag!r} (expected one of: {', '.join(PLATFORMS)})"
        )
    if kind == "union_tag_not_found":
        return format_path((*loc, "platform")), (f"missing; give one of: {', '.join(PLATFORMS)}")
    message = error["msg"].removeprefix("Value error, ")
    return format_path(loc), message


def _secret_paths(config: AppConfig) -> Iterator[tuple[str, SecretStr]]:
    for i, shop in enumerate(config.shops):
        creds = getattr(shop, "credentials", None)
        if creds is None:
            continue
        for field, value in creds:
            if isinstance(value, SecretStr):
                yield f"shops[{i}].credentials.{field}", value


def _resolve_database(url: str, base: Path | None) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or base is None:
        return url
    database = parsed.database
    if not database or database == ":memory:" or Path(database).is_absolute():
        return url
    return parsed.set(database=str((base / database).resolve())).render_as_string(
        hide_password=False
    )


def parse_config(
    data: Any, *, env: dict[str, str] | None = None, source: Path | None = None
) -> AppConfig:
    """Validate an already-parsed YAML tree into an AppConfig."""
    return _parse(data, env, source)[0]


def _parse(
    data: Any, env: dict[str, str] | None, source: Path | None
) -> tuple[AppConfig, list[str]]:
    """The AppConfig of a YAML tree, and the key paths of the secrets written literally."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the config must be a mapping of keys (database, defaults, shops, ...)")
    from_env: set[str] = set()
    data = _walk_env(data, (), dict(os.environ) if env is None else env, from_env)
    if source is not None:
        data = {**data, "source": source}
    try:
        config = AppConfig.model_validate(data)
    except ValidationError as exc:
        lines = [f"{path}: {message}" for path, message in map(_describe, exc.errors())]
        first_path, first_message = _describe(exc.errors()[0])
        raise ConfigError(
            "\n".join(lines) if len(lines) > 1 else first_message,
            path=None if len(lines) > 1 else first_path,
        ) from None
    seen: dict[str, int] = {}
    for i, shop in enumerate(config.shops):
        if shop.name in seen:
            raise ConfigError(
                f"duplicate shop name {shop.name!r} (also shops[{seen[shop.name]}].name)",
                path=f"shops[{i}].name",
            )
        seen[shop.name] = i
    literal: list[str] = []
    for path, secret in _secret_paths(config):
        register_secret(secret.get_secret_value())
        if path not in from_env:
            literal.append(path)
            log.warning("%s: literal secret in the config file; prefer ${ENV_VAR}", path)
    try:
        database = _resolve_database(config.database, source.parent if source else None)
        password = make_url(database).password
    except Exception as exc:
        raise ConfigError(
            f"not a database URL ({exc.__class__.__name__})", path="database"
        ) from None
    if password:
        register_secret(str(password))
        if "database" not in from_env:
            literal.append("database")
    if source is not None:
        shops = [
            s.model_copy(update={"path": source.parent / s.path})
            if isinstance(s, CsvShop) and not s.path.is_absolute()
            else s
            for s in config.shops
        ]
        config = config.model_copy(update={"shops": shops})
    return config.model_copy(update={"database": database}), literal


def _warn_if_readable(path: Path, literal: list[str]) -> None:
    """One warning when a file holding literal secrets can be read by group or others."""
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return
    if literal and mode & 0o077:
        log.warning(
            "config file %s holds literal secrets (%s) and is readable by group/others "
            "(mode %03o): chmod 600 it, or use ${ENV_VAR}",
            path,
            ", ".join(literal),
            mode,
        )


def read_yaml(path: Path) -> Any:
    """The YAML tree of the file at `path` (None for an empty file), aliases within budget."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} not found (create one with `shopcrm init`, or pass --config)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        return yaml.load(text, Loader=_AliasBudgetLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}{where}: {problem}") from None


def load_config(path: Path, *, env: dict[str, str] | None = None) -> AppConfig:
    """Read and validate the config file at `path`."""
    config, literal = _parse(read_yaml(path), env, path.absolute())
    _warn_if_readable(path, literal)
    return config
