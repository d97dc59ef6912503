"""The Shopify sandbox's platform constants and per-shop state (data, tokens, bulk operations).

Every Shopify number the sandbox enforces lives here, next to the documentation it follows
(/work/shared/platforms/shopify/README.md, shopify.dev "API rate limits" and "Bulk operations").
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from shopcrm.sandbox.seed import Dataset
from shopcrm.sandbox.shopify.index import ShopIndex

API_VERSIONS = ("2025-10", "2026-01", "2026-04", "2026-07", "2026-10")  # supported, oldest first
DEFAULT_API_VERSION = "2026-10"
UNSTABLE = "unstable"
FIRST_RELEASE = "2019-04"  # "our first stable version, `2019-04`" (changelog, 2019-04-09)
_RELEASE = re.compile(r"^\d{4}-(01|04|07|10)$")  # quarterly, at the start of the quarter
DEFAULT_SCOPES = ("read_customers", "write_customers", "read_orders", "read_all_orders")
MAX_PAGE = 250  # `first` on connections, `limit` on REST lists
REST_DEFAULT_LIMIT = 50
MAX_QUERY_COST = 1000
MUTATION_COST = 10
CONNECTION_COST = 2
STANDARD_BUCKET = 2000.0  # maximumAvailable on the Standard plan
STANDARD_RESTORE_RATE = 100.0  # points per second
REST_BUCKET = 40  # legacy REST: requests, leaking 2 per second
REST_LEAK_RATE = 2.0
TOKEN_TTL_S = 86399.0
MAX_TAG_LENGTH = 255
MAX_TAGS = 250
PRESENTMENT_SHARE = 5  # one order in five was paid in another currency
PRESENTMENT_RATE = Decimal("0.92")
RATE_LIMIT_DOCS = "https://shopify.dev/api/usage/rate-limits"
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"  # noqa: S105
SCOPE_DESCRIPTIONS = {
    "read_customers": "Read customers",
    "write_customers": "Modify customers",
    "read_orders": "Read orders",
    "write_orders": "Modify orders",
    "read_all_orders": "Read all orders",
}


# Bulk operations: Shopify publishes no durations (the Airbyte connector's maintainer says the
# same, github.com/airbytehq/airbyte/pull/36723), so the realistic model comes from reports:
# - Airbyte's Shopify bulk jobs run "in avg 150 - 600 sec" (same thread), each job stopped at
#   200,000 JSONL lines by default (github.com/airbytehq/airbyte/pull/42095);
# - a shop with "a handful" of products took about 6 minutes for gatsby-source-shopify's few
#   bulk operations (github.com/PostHog/posthog.com/pull/9754): a fixed cost of tens of seconds;
# - 10k+ products with nested connections took 2-3 hours (Shopify/shopify-api-ruby#876): the
#   slow tail.
# 30 s to start plus 1,000 objects/s puts a 200,000-line job at 230 s, inside Airbyte's range.
REALISTIC_BULK_START_DELAY_S = 30.0
REALISTIC_BULK_RECORDS_PER_S = 1000.0


def served_version(requested: str) -> str | None:
    """The Admin API version that answers a request for `requested`; None: 404.

    shopify.dev "About Shopify API versioning" (docs/api/usage/versioning): "if your app uses a
    stable version that is no longer supported, then Shopify falls forward and responds to your
    request with the same behaviour as the oldest supported stable version", and the
    `X-Shopify-Api-Version` response header says which version executed the request ("If the
    returned version is different, then your app is out of date", help.shopify.com/en/api/
    versioning/migration-guide). Versions are released quarterly (YYYY-01/04/07/10) since
    2019-04, so another month (2025-05) or an earlier year never existed and 404s like a
    malformed version (a user's 404 on /admin/api/2022-06/products.json,
    github.com/WalkingPizza/strapi-plugin-shopify-fields/issues/1). `unstable` is a public
    version (`publicApiVersions`: "supported versions, the release candidate, and unstable
    versions") and is served with the sandbox's one schema.
    Versions newer than the newest supported 404: the sandbox has no release candidate.
    """
    if requested in API_VERSIONS or requested == UNSTABLE:
        return requested
    if _RELEASE.match(requested) and FIRST_RELEASE <= requested < API_VERSIONS[0]:
        return API_VERSIONS[0]
    return None


def presentment_currency(shop_currency: str) -> str:
    return "EUR" if shop_currency != "EUR" else "USD"


def _secret(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:32]


@dataclass
class Token:
    value: str
    scopes: tuple[str, ...]
    expires_at: float | None  # time.time(); None: the static Admin API token


@dataclass
class ShopState:
    """One sandbox shop: its data, its app's credentials and tokens, its bulk operations."""

    handle: str
    dataset: Dataset
    scopes: tuple[str, ...]
    shop_id: int
    index: ShopIndex = field(init=False)
    admin_token: str = field(init=False)
    client_id: str = field(init=False)
    client_secret: str = field(init=False)
    tokens: dict[str, Token] = field(default_factory=dict)
    bulk: list[BulkOperation] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        # deterministic per (handle, seed): a restarted `shopcrm sandbox shopify` keeps its
        # credentials, so a pasted config keeps working
        seed = self.dataset.spec.seed
        self.index = ShopIndex(self.dataset)
        self.admin_token = "shpat_" + _secret("admin", self.handle, seed)
        self.client_id = _secret("client", self.handle, seed)
        self.client_secret = "shpss_" + _secret("secret", self.handle, seed)
        self.tokens[self.admin_token] = Token(self.admin_token, self.scopes, None)

    @property
    def domain(self) -> str:
        return f"{self.handle}.myshopify.com"


@dataclass
class BulkOperation:
    id: int
    shop: str
    query: str
    created_at: datetime
    path: Path
    status: str = "CREATED"
    error_code: str | None = None
    completed_at: datetime | None = None
    object_count: int = 0
    root_object_count: int = 0
    file_size: int = 0
    polls: int = 0
    started: float = 0.0  # the runner's clock at creation
    started_wall: datetime = field(default_factory=lambda: datetime.now(UTC))
    generated_after: float = 0.0  # seconds from creation until the file was written
    finished: threading.Event = field(default_factory=threading.Event)
