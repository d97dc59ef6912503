"""The YAML config: validated models, `${ENV_VAR}` secret references, errors with the key path.

Loading happens in three steps, each reporting the key path of what is wrong:
1. YAML is parsed (syntax errors carry the line);
2. `${NAME}` references are replaced from the environment (a missing variable is an error);
3. pydantic validates the tree (unknown keys, wrong types, unknown platforms are errors).

Secrets are `pydantic.SecretStr`: they print as `**********` in repr, str, logs and dumps, and
every resolved secret is registered with the log redactor as a second line of defence.
"""

from __future__ import annotations

import codecs
import logging
import os
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import make_url

from shopcrm.connectors.csv_columns import COLUMNS
from shopcrm.errors import ConfigError, UsageError
from shopcrm.log import register_secret

log = logging.getLogger(__name__)

PLATFORMS = ("shopify", "woocommerce", "bigcommerce", "csv")
DEFAULT_CONFIG_PATH = Path("shopcrm.yaml")
EXAMPLE_PATH = Path(__file__).with_name("config.example.yaml")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `1h`, `2d` as a timedelta."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 30m, 1h or 1d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


class Schedule(_Model):
    """When `shopcrm schedule` runs a shop: an interval or a cron expression, not both."""

    every: str | None = None
    cron: str | None = None

    @field_validator("every")
    @classmethod
    def _every(cls, value: str | None) -> str | None:
        if value is not None and parse_duration(value) < timedelta(minutes=1):
            raise ValueError("must be at least 1m")
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            from apscheduler.triggers.cron import CronTrigger

            CronTrigger.from_crontab(value, timezone="UTC")
        return value

    @model_validator(mode="after")
    def _one(self) -> Schedule:
        if (self.every is None) == (self.cron is None):
            raise ValueError("give exactly one of `every` (e.g. 1h) or `cron` (e.g. '0 * * * *')")
        return self

    @property
    def interval(self) -> timedelta | None:
        return parse_duration(self.every) if self.every else None


class PushSettings(_Model):
    max_change_share: float = Field(default=0.25, gt=0, le=1)


class ClvSettings(_Model):
    horizon_days: int = Field(default=365, ge=1, le=3650)
    annual_discount_rate: float = Field(default=0.10, ge=0, lt=1)
    min_buyers: int = Field(default=500, ge=2)
    min_repeat_buyers: int = Field(default=50, ge=2)
    min_history_days: int = Field(default=180, ge=1)
    max_days_since_last_order: int = Field(default=30, ge=1)


class SyncSettings(_Model):
    overlap: str = "5m"
    bulk_threshold: int = Field(default=10_000, ge=0)

    @field_validator("overlap")
    @classmethod
    def _overlap(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def overlap_window(self) -> timedelta:
        return parse_duration(self.overlap)


class Defaults(_Model):
    schedule: Schedule = Schedule(every="1h")
    tag_prefix: str = Field(default="crm:", min_length=1, max_length=40)
    push: PushSettings = PushSettings()
    clv: ClvSettings = ClvSettings()
    sync: SyncSettings = SyncSettings()


class SegmentRule(_Model):
    """A user-defined segment: a tag-safe name and a rule over the metrics (docs/enrichment.md)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,49}$")
    rule: str = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        from shopcrm.enrich.segments import reserved_name_problem

        problem = reserved_name_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("rule")
    @classmethod
    def _rule(cls, value: str) -> str:
        from shopcrm.enrich.rules import parse_rule

        parse_rule(value)  # RuleError is a ValueError: reported with the key path
        return value


class _ShopBase(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
    enabled: bool = True
    schedule: Schedule | None = None
    tag_prefix: str | None = Field(default=None, min_length=1, max_length=40)
    push: PushSettings | None = None
    segments: list[SegmentRule] = []


class ShopifyCredentials(_Model):
    """An Admin API access token, or a Dev Dashboard app's client id and secret."""

    access_token: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ShopifyCredentials:
        grant = self.client_id is not None or self.client_secret is not None
        if self.access_token is not None and grant:
            raise ValueError("give access_token or client_id/client_secret, not both")
        if self.access_token is None and not (self.client_id and self.client_secret):
            raise ValueError("give access_token, or both client_id and client_secret")
        return self


class ShopifyShop(_ShopBase):
    platform: Literal["shopify"]
    domain: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")
    credentials: ShopifyCredentials
    api_version: str = Field(default="2026-10", pattern=r"^\d{4}-(01|04|07|10)$")
    api_url: str | None = None  # e.g. the sandbox, http://127.0.0.1:8701


class WooCommerceCredentials(_Model):
    consumer_key: SecretStr
    consumer_secret: SecretStr


class WooCommerceShop(_ShopBase):
    platform: Literal["woocommerce"]
    url: str = Field(pattern=r"^https?://")
    credentials: WooCommerceCredentials


class BigCommerceCredentials(_Model):
    access_token: SecretStr


class BigCommerceShop(_ShopBase):
    platform: Literal["bigcommerce"]
    store_hash: str = Field(pattern=r"^[a-z0-9]+$")
    credentials: BigCommerceCredentials
    api_url: str = Field(default="https://api.bigcommerce.com", pattern=r"^https?://")


class CsvShop(_ShopBase):
    """In-store / POS exports: one CSV file or a folder of them."""

    platform: Literal["csv"]
    path: Path
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    timezone: str = "UTC"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    decimal: Literal[".", ","] = "."
    date_format: str | None = None  # strftime format; ISO 8601 when absent
    encoding: str = "utf-8-sig"
    columns: dict[str, str] = {}  # our column name -> the export's header
    skip_invalid: bool = False  # import the valid rows, write the bad ones to <file>.rejects.csv

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError as exc:
            raise ValueError(f"unknown encoding {value!r}") from exc
        return value

    @field_validator("columns")
    @classmethod
    def _columns(cls, value: dict[str, str]) -> dict[str, str]:
        for ours, theirs in value.items():
            if ours not in COLUMNS:
                raise ValueError(f"unknown column {ours!r} (known: {', '.join(COLUMNS)})")
            if not theirs.strip():
                raise ValueError(f"{ours}: the export's header name is empty")
        headers = [h.strip().casefold() for h in value.values()]
        if len(set(headers)) != len(headers):
            raise ValueError("two columns are mapped to the same header")
        return value


ShopConfig = Annotated[
    ShopifyShop | WooCommerceShop | BigCommerceShop | CsvShop, Field(discriminator="platform")
]


class AppConfig(_Model):
    database: str = "sqlite:///shopcrm.db"
    defaults: Defaults = Defaults()
    shops: list[ShopConfig] = []
    segments: list[SegmentRule] = []
    source: Path | None = Field(default=None, exclude=True)

    def shop(self, name: str) -> ShopConfig:
        for shop in self.shops:
            if shop.name == name:
                return shop
        known = ", ".join(s.name for s in self.shops) or "none configured"
        raise UsageError(f"no shop named {name!r} in the config (shops: {known})")

    def selected(self, name: str | None) -> list[ShopConfig]:
        """The shop called `name`, or every enabled shop."""
        return [self.shop(name)] if name else [s for s in self.shops if s.enabled]

    def tag_prefix(self, shop: ShopConfig) -> str:
        return shop.tag_prefix or self.defaults.tag_prefix

    def push_settings(self, shop: ShopConfig) -> PushSettings:
        return shop.push or self.defaults.push

    def schedule(self, shop: ShopConfig) -> Schedule:
        return shop.schedule or self.defaults.schedule

    def segment_rules(self, shop: ShopConfig) -> list[SegmentRule]:
        return [*self.segments, *shop.segments]

    def masked(self) -> dict[str, Any]:
        """The resolved config as plain data, secrets and database password masked."""
        data = self.model_dump(mode="json", exclude_none=True)
        data["database"] = make_url(self.database).render_as_string(hide_password=True)
        return data


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
    for path, secret in _secret_paths(config):
        register_secret(secret.get_secret_value())
        if path not in from_env:
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
    if source is not None:
        shops = [
            s.model_copy(update={"path": source.parent / s.path})
            if isinstance(s, CsvShop) and not s.path.is_absolute()
            else s
            for s in config.shops
        ]
        config = config.model_copy(update={"shops": shops})
    return config.model_copy(update={"database": database})


def load_config(path: Path, *, env: dict[str, str] | None = None) -> AppConfig:
    """Read and validate the config file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} not found (create one with `shopcrm init`, or pass --config)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}{where}: {problem}") from None
    return parse_config(data, env=env, source=path.absolute())
