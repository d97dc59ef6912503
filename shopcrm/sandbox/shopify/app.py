"""A local Shopify: the Admin GraphQL API (and the legacy REST lists) over seeded shops.

`ShopifySandbox` serves one or more `Dataset`s on 127.0.0.1, told apart by the Host header
(`{handle}.myshopify.com`; any other host is the first shop), at Shopify's paths:

    POST /admin/api/{version}/graphql.json     X-Shopify-Access-Token; real GraphQL (graphql-core)
    GET  /admin/api/{version}/shop.json        legacy REST
    GET  /admin/api/{version}/customers.json   legacy REST lists, `Link` page_info cursors
    GET  /admin/api/{version}/orders.json
    POST /admin/oauth/access_token             client-credentials grant, tokens that expire
    GET  /bulk-results/{id}.jsonl              bulk operation results (no auth, like a signed URL)

Queries are costed and throttled as Shopify documents (`cost`), errors have Shopify's
shapes, and the schema is a pruned copy of the published one (`schema`). `{version}` is served
as Shopify does (`state.served_version`): supported versions and `unstable` as themselves, older
releases by the oldest supported one; every Admin API response names the version that answered
in `X-Shopify-API-Version`. Bulk operations take the time `bulk.BulkTiming` models.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs

import yaml
from graphql import GraphQLError, GraphQLSchema, execute, parse, validate

from shopcrm.sandbox.base import PlatformSandbox
from shopcrm.sandbox.seed import Dataset
from shopcrm.sandbox.server import SandboxRequest, SandboxResponse, SandboxServer
from shopcrm.sandbox.shopify.bulk import BulkRunner, BulkTiming
from shopcrm.sandbox.shopify.cost import LeakyBucket, QueryCost
from shopcrm.sandbox.shopify.resolvers import Call, Resolvers
from shopcrm.sandbox.shopify.rest import RestApi
from shopcrm.sandbox.shopify.schema import sandbox_schema
from shopcrm.sandbox.shopify.state import (
    API_VERSIONS,
    DEFAULT_API_VERSION,
    DEFAULT_SCOPES,
    INVALID_TOKEN,
    MAX_QUERY_COST,
    RATE_LIMIT_DOCS,
    REST_BUCKET,
    REST_LEAK_RATE,
    STANDARD_BUCKET,
    STANDARD_RESTORE_RATE,
    TOKEN_TTL_S,
    ShopState,
    Token,
    served_version,
)

__all__ = ["DEFAULT_SCOPES", "ShopifySandbox", "banner"]

_API_PATH = re.compile(r"^/admin/api/(?P<version>[^/]+)/(?P<resource>[a-z_]+)\.json$")
_BULK_PATH = re.compile(r"^/bulk-results/(?P<id>\d+)\.jsonl$")
TOKEN_ENV = "SHOPCRM_SANDBOX_SHOPIFY_TOKEN"  # noqa: S105 (a variable name)


def _error(status: int, errors: Any, headers: dict[str, str] | None = None) -> SandboxResponse:
    return SandboxResponse.json({"errors": errors}, status=status, headers=headers)


class ShopifySandbox(PlatformSandbox):
    """Shopify's Admin API for one or more seeded shops, on 127.0.0.1.

    Args:
        datasets: one shop's data (served as handle "sandbox"), or handle -> data.
        port: 0 picks a free port.
        bucket_size: the GraphQL bucket's `maximumAvailable` (Standard plan by default);
            mutable while running, like `restore_rate`.
        restore_rate: points restored per second.
        token_ttl_s: lifetime of client-credentials tokens.
        scopes: the access scopes every token of every shop is granted.
        bulk_ready_after_polls: polls of a bulk operation before it reports COMPLETED.
        bulk_start_delay_s: seconds a bulk operation reports no objects (`BulkTiming`).
        bulk_records_per_s: objects it reports a second after that; None: instant.
            Both 0/None by default, so tests run at full speed; `REALISTIC_BULK_*` in
            `state` are what users report of Shopify.
        latency_s: round-trip delay added to every response (see `SandboxServer`).
    """

    def __init__(
        self,
        datasets: Dataset | Mapping[str, Dataset],
        *,
        port: int = 0,
        bucket_size: float = STANDARD_BUCKET,
        restore_rate: float = STANDARD_RESTORE_RATE,
        token_ttl_s: float = TOKEN_TTL_S,
        scopes: Sequence[str] = DEFAULT_SCOPES,
        bulk_ready_after_polls: int = 1,
        bulk_start_delay_s: float = 0.0,
        bulk_records_per_s: float | None = None,
        latency_s: float = 0.0,
    ) -> None:
        shops = {"sandbox": datasets} if isinstance(datasets, Dataset) else dict(datasets)
        if not shops:
            raise ValueError("a Shopify sandbox needs at least one shop")
        self.shops = {
            handle: ShopState(handle, ds, tuple(scopes), shop_id=60_000_000 + i)
            for i, (handle, ds) in enumerate(shops.items(), start=1)
        }
        self.dataset = next(iter(shops.values()))
        self.bucket_size = bucket_size
        self.restore_rate = restore_rate
        self.token_ttl_s = token_ttl_s
        self.throttled_count = 0
        self.schema: GraphQLSchema = sandbox_schema()
        self.server = SandboxServer(
            self.handle, port=port, name="shopify-sandbox", latency_s=latency_s
        )
        self.bulk = BulkRunner(
            self.schema,
            lambda: self.url,
            ready_after_polls=bulk_ready_after_polls,
            timing=BulkTiming(bulk_start_delay_s, bulk_records_per_s),
        )
        self.rest = RestApi(self.rest_bucket, lambda: self.url)
        self._buckets: dict[tuple[str, str], LeakyBucket] = {}
        self._rest_buckets: dict[tuple[str, str], LeakyBucket] = {}

    # --- PlatformSandbox -------------------------------------------------------------------

    def domain(self, handle: str = "sandbox") -> str:
        return self._shop(handle).domain

    def admin_token(self, handle: str = "sandbox") -> str:
        """The shop's static Admin API access token (valid until `revoke_tokens`)."""
        return self._shop(handle).admin_token

    def client_credentials(self, handle: str = "sandbox") -> tuple[str, str]:
        """(client_id, client_secret) for `POST /admin/oauth/access_token`."""
        shop = self._shop(handle)
        return shop.client_id, shop.client_secret

    def revoke_tokens(self, handle: str = "sandbox") -> None:
        """Every token the shop has issued, the static one included, now gets 401."""
        shop = self._shop(handle)
        with shop.lock:
            shop.tokens.clear()

    def expire_issued_tokens(self, handle: str = "sandbox") -> None:
        """Client-credentials tokens expire now (the static token stays valid)."""
        shop = self._shop(handle)
        with shop.lock:
            for token in shop.tokens.values():
                if token.expires_at is not None:
                    token.expires_at = time.time() - 1

    def shop_entry(
        self, name: str, handle: str = "sandbox"
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """A `shops:` config entry for this sandbox and the environment its token comes from."""
        entry = {
            "name": name,
            "platform": "shopify",
            "domain": self.domain(handle),
            "api_url": self.url,
            "credentials": {"access_token": "${" + TOKEN_ENV + "}"},
        }
        return entry, {TOKEN_ENV: self.admin_token(handle)}

    def stop(self) -> None:
        super().stop()
        self.bulk.close()

    def _shop(self, handle: str) -> ShopState:
        try:
            return self.shops[handle]
        except KeyError:
            raise KeyError(
                f"no shop {handle!r} in this sandbox (has {sorted(self.shops)})"
            ) from None

    # --- routing ---------------------------------------------------------------------------
    def shop_for(self, request: SandboxRequest) -> ShopState:
        """The shop the Host header names; the first shop for any other host."""
        host = request.host.lower()
        handle = host.removesuffix(".myshopify.com") if host.endswith(".myshopify.com") else ""
        return self.shops.get(handle) or next(iter(self.shops.values()))

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        """The sandbox's `Handler`: routes a request to its endpoint."""
        shop = self.shop_for(request)
        bulk = _BULK_PATH.match(request.path)
        if bulk and request.method == "GET":
            return self.bulk.download(int(bulk["id"]))
        if request.path == "/admin/oauth/access_token" and request.method == "POST":
            return self.issue_token(shop, request)
        api = _API_PATH.match(request.path)
        version = served_version(api["version"]) if api else None
        if api is None or version is None:
            return _error(404, "Not Found")
        headers = {"X-Shopify-API-Version": version}
        token = self.authenticate(shop, request)
        if token is None:
            return _error(401, INVALID_TOKEN, headers)
        if api["resource"] == "graphql" and request.method == "POST":
            return self.graphql(shop, token, request, headers)
        if request.method == "GET":
            return self.rest.get(shop, token, version, api["resource"], request, headers)
        return _error(404, "Not Found", headers)

    # --- auth ------------------------------------------------------------------------------
    def authenticate(self, shop: ShopState, request: SandboxRequest) -> Token | None:
        value = request.header("x-shopify-access-token")
        with shop.lock:
            token = shop.tokens.get(value or "")
        if token is None or (token.expires_at is not None and token.expires_at <= time.time()):
            return None
        return token

    def issue_token(self, shop: ShopState, request: SandboxRequest) -> SandboxResponse:
        """The client-credentials grant: a token valid for `token_ttl_s`."""
        content_type = request.header("content-type") or ""
        if "json" in content_type:
            body = request.json() or {}
            form = {k: str(v) for k, v in body.items()} if isinstance(body, dict) else {}
        else:
            form = {k: v[-1] for k, v in parse_qs(request.body.decode(errors="replace")).items()}
        if form.get("grant_type") != "client_credentials":
            return SandboxResponse.json(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant_type must be client_credentials",
                },
                status=400,
            )
        if form.get("client_id") != shop.client_id or not secrets.compare_digest(
            form.get("client_secret", ""), shop.client_secret
        ):
            return SandboxResponse.json(
                {
                    "error": "invalid_client",
                    "error_description": "Client authentication failed: unknown client or secret",
                },
                status=400,
            )
        value = "shpat_" + secrets.token_hex(16)
        with shop.lock:
            shop.tokens[value] = Token(value, shop.scopes, time.time() + self.token_ttl_s)
        ttl = int(self.token_ttl_s)
        return SandboxResponse.json(
            {"access_token": value, "scope": ",".join(shop.scopes), "expires_in": ttl}
        )

    # --- GraphQL ---------------------------------------------------------------------------
    def bucket(self, shop: ShopState, token: Token) -> LeakyBucket:
        """The GraphQL bucket of this (shop, app): one app per shop, all its tokens share it."""
        key = (shop.handle, shop.client_id)
        if key not in self._buckets:
            self._buckets[key] = LeakyBucket(lambda: self.bucket_size, lambda: self.restore_rate)
        return self._buckets[key]

    def rest_bucket(self, shop: ShopState) -> LeakyBucket:
        key = (shop.handle, shop.client_id)
        if key not in self._rest_buckets:
            self._rest_buckets[key] = LeakyBucket(lambda: REST_BUCKET, lambda: REST_LEAK_RATE)
        return self._rest_buckets[key]

    def graphql(
        self, shop: ShopState, token: Token, request: SandboxRequest, headers: dict[str, str]
    ) -> SandboxResponse:
        """Parse, validate, cost, throttle, execute: Shopify's order of checks."""
        try:
            query, variables, operation = _graphql_body(request)
        except ValueError as exc:
            return _error(400, {"query": str(exc)}, headers)
        bucket = self.bucket(shop, token)
        try:
            document = parse(query)
        except GraphQLError as exc:
            return self._respond({"errors": [exc.formatted]}, bucket, 0, 0, headers)
        errors = validate(self.schema, document)
        if errors:
            return self._respond({"errors": [e.formatted for e in errors]}, bucket, 0, 0, headers)
        cost = QueryCost(self.schema, document, variables, operation)
        requested = cost.total()
        if requested > MAX_QUERY_COST:
            return self._respond(_max_cost_error(requested), bucket, requested, None, headers)
        if not bucket.take(requested):
            self.throttled_count += 1
            throttled = {
                "errors": [
                    {
                        "message": "Throttled",
                        "extensions": {"code": "THROTTLED", "documentation": RATE_LIMIT_DOCS},
                    }
                ]
            }
            return self._respond(throttled, bucket, requested, None, headers)
        call = Call(shop=shop, token=token, bulk=self.bulk)
        resolvers = Resolvers(call)
        is_mutation = cost.operation is not None and cost.operation.operation.value == "mutation"
        result = execute(
            self.schema,
            document,
            root_value=resolvers.mutation_root() if is_mutation else resolvers.query_root(),
            context_value=call,
            variable_values=variables,
            operation_name=operation,
            is_awaitable=_never_awaitable,
        )
        actual = requested if is_mutation else cost.total(result.data or {})
        bucket.refund(requested - actual)
        payload: dict[str, Any] = {}
        if result.errors:
            payload["errors"] = [e.formatted for e in result.errors]
        payload["data"] = result.data
        extra = {"search": call.search_warnings} if call.search_warnings else {}
        return self._respond(payload, bucket, requested, actual, headers, extra, write=call.wrote)

    def _respond(
        self,
        payload: dict[str, Any],
        bucket: LeakyBucket,
        requested: int,
        actual: int | None,
        headers: dict[str, str],
        extra: dict[str, Any] | None = None,
        *,
        write: bool = False,
    ) -> SandboxResponse:
        payload["extensions"] = {
            **(extra or {}),
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": actual,
                "throttleStatus": bucket.status(),
            },
        }
        return SandboxResponse.json(payload, headers=headers, write=write)


def _never_awaitable(_value: Any) -> bool:
    """The resolvers are synchronous: skip graphql-core's per-field awaitable check."""
    return False


def _graphql_body(request: SandboxRequest) -> tuple[str, dict[str, Any] | None, str | None]:
    """(query, variables, operationName) from a JSON or application/graphql body."""
    if "application/graphql" in (request.header("content-type") or ""):
        return request.body.decode(), None, None
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise ValueError("Required parameter missing or invalid") from None
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        raise ValueError("Required parameter missing or invalid")
    variables = body.get("variables")
    return (
        body["query"],
        variables if isinstance(variables, dict) else None,
        body.get("operationName"),
    )


def _max_cost_error(cost: int) -> dict[str, Any]:
    return {
        "errors": [
            {
                "message": (
                    f"Query cost is {cost}, which exceeds the single query max cost limit "
                    f"({MAX_QUERY_COST}).\n\nSee {RATE_LIMIT_DOCS} for more information on how "
                    "the cost of a query is calculated.\n\nTo query larger amounts of data with "
                    "fewer limits, bulk operations should be used instead."
                ),
                "extensions": {
                    "code": "MAX_COST_EXCEEDED",
                    "cost": cost,
                    "maxCost": MAX_QUERY_COST,
                    "documentation": RATE_LIMIT_DOCS,
                },
            }
        ]
    }


def banner(sandbox: ShopifySandbox, name: str = "shopify-sandbox") -> str:
    """What `shopcrm sandbox shopify` prints: where it is, credentials, a config snippet."""
    timing = sandbox.bulk.timing
    rate = f"{timing.records_per_s:g} objects/s" if timing.records_per_s else "no rate limit"
    lines = [
        f"Shopify sandbox at {sandbox.url} (Admin API {', '.join(API_VERSIONS)}, older "
        f"releases served as {API_VERSIONS[0]}; bucket {sandbox.bucket_size:g} points, "
        f"restoring {sandbox.restore_rate:g}/s)",
        f"bulk operations: {timing.start_delay_s:g} s to start, then {rate}; "
        f"latency {sandbox.server.latency_s * 1000:g} ms per request",
    ]
    for handle, shop in sandbox.shops.items():
        ds = shop.dataset
        client_id, secret = sandbox.client_credentials(handle)
        lines += [
            f"shop {shop.domain}: {len(ds.customers)} customers, {len(ds.orders)} orders, "
            f"currency {ds.currency}, time zone {ds.timezone}",
            f"  GraphQL:      POST {sandbox.url}/admin/api/{DEFAULT_API_VERSION}/graphql.json "
            f"with Host: {shop.domain}",
            f"  admin token:  {shop.admin_token}   (header X-Shopify-Access-Token)",
            f"  client id:    {client_id}",
            f"  client secret: {secret}   (POST {sandbox.url}/admin/oauth/access_token)",
        ]
    entry, env = sandbox.shop_entry(name)
    exports = "\n".join(f"export {key}={value}" for key, value in env.items())
    snippet = yaml.safe_dump({"shops": [entry]}, sort_keys=False).rstrip()
    return "\n".join(lines) + f"\n\n{exports}\n\n{snippet}\n"
