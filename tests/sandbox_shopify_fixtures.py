"""Helpers for the Shopify sandbox tests: a small seeded shop and a plain HTTP client for it.

The client is deliberately not shopcrm's connector: these tests check the sandbox the way any
Admin API client sees it (paths, headers, JSON bodies).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import requests

from shopcrm.sandbox.seed import Dataset, generate
from shopcrm.sandbox.shopify.app import ShopifySandbox

ANCHOR = date(2026, 11, 1)
VERSION = "2026-10"


def small_shop(customers: int = 120, seed: int = 7, **overrides: Any) -> Dataset:
    return generate(customers=customers, seed=seed, anchor=ANCHOR, **overrides)


class Client:
    """Talks to one shop of a sandbox the way an Admin API client does."""

    def __init__(self, sandbox: ShopifySandbox, handle: str = "sandbox", token: str | None = None):
        self.sandbox = sandbox
        self.handle = handle
        self.session = requests.Session()
        self.session.headers["Host"] = sandbox.domain(handle)
        self.token = sandbox.admin_token(handle) if token is None else token

    def post(self, query: str, variables: dict[str, Any] | None = None, *, version: str = VERSION):
        return self.session.post(
            f"{self.sandbox.url}/admin/api/{version}/graphql.json",
            json={"query": query, "variables": variables or {}},
            headers={"X-Shopify-Access-Token": self.token},
            timeout=30,
        )

    def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The JSON body of a successful (HTTP 200) GraphQL call."""
        response = self.post(query, variables)
        assert response.status_code == 200, response.text
        return response.json()

    def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = self.gql(query, variables)
        assert "errors" not in body, body["errors"]
        return body["data"]

    def rest(self, path: str, params: dict[str, Any] | None = None) -> requests.Response:
        url = path if path.startswith("http") else f"{self.sandbox.url}/admin/api/{VERSION}/{path}"
        return self.session.get(
            url, params=params, headers={"X-Shopify-Access-Token": self.token}, timeout=30
        )
