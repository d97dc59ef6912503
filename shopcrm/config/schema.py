"""The config's shape: pydantic models with their defaults and value checks.

Every model forbids unknown keys and is frozen. Loading (YAML, `${ENV_VAR}` references, errors
with the key path) is `shopcrm.config.load`. What only another stage can judge is checked
through the small interfaces that stage owns: segment names and rules through
`shopcrm.enrich.syntax`, a CSV shop's column mapping through `shopcrm.connectors.csv.columns`.
Secrets are `pydantic.SecretStr`: they print as `**********` in repr, str, logs and dumps.
"""

from __future__ import annotations

import codecs
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import make_url

from shopcrm.connectors.csv.columns import mapping_problem
from shopcrm.enrich.syntax import rule_problem, segment_name_problem
from shopcrm.errors import ConfigError, UsageError

PLATFORMS = ("shopify", "woocommerce", "bigcommerce", "csv")
DEFAULT_CONFIG_PATH = Path("shopcrm.yaml")
EXAMPLE_PATH = Path(__file__).with_name("example.yaml")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
V = TypeVar("V")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _unless(problem: str | None, value: V) -> V:
    """`value`, unless another stage's check found a problem (reported with the key path)."""
    if problem:
        raise ValueError(problem)
    return value


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

    def trigger(self) -> Any:
        """This schedule as an APScheduler trigger in UTC (for `schedule` and `status`)."""
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        if self.interval is not None:
            return IntervalTrigger(seconds=self.interval.total_seconds(), timezone="UTC")
        return CronTrigger.from_crontab(self.cron or "", timezone="UTC")


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
    max_throttle_wait: str = "10m"  # a throttled query waits this long in all, then exit 75

    @field_validator("overlap", "max_throttle_wait")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def overlap_window(self) -> timedelta:
        return parse_duration(self.overlap)

    @property
    def throttle_wait_limit(self) -> timedelta:
        return parse_duration(self.max_throttle_wait)


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
        return _unless(segment_name_problem(value), value)

    @field_validator("rule")
    @classmethod
    def _rule(cls, value: str) -> str:
        return _unless(rule_problem(value), value)


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
        return _unless(mapping_problem(value), value)


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

    def require_shops(self) -> AppConfig:
        """This config, unless it has no shops: a command that works on shops would otherwise
        do nothing, exit 0 and create an empty store."""
        if not self.shops:
            where = self.source or "the config"
            raise ConfigError(
                f"no shops configured in {where}: add one under `shops:` (see config.example.yaml)"
            )
        return self

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
