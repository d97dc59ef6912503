"""Shopify access tokens: a fixed Admin API token, or one from the client-credentials grant.

Dev Dashboard apps get tokens that expire after about a day and have no refresh token: a new
one is requested with the same call shortly before expiry, or when the API answers 401. The
token only ever leaves this module as a request header; every token seen is registered with
the log redactor.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from shopcrm.config.schema import ShopifyCredentials
from shopcrm.connectors.http import HttpClient
from shopcrm.connectors.shopify.queries import ACCESS_TOKEN_HEADER, TOKEN_REFRESH_MARGIN_S
from shopcrm.errors import AuthError, PlatformError
from shopcrm.log import register_secret

TOKEN_PATH = "/admin/oauth/access_token"  # noqa: S105 - a URL path, not a secret


class ShopifyAuth:
    """The headers that authenticate the next request, renewing the token when it can.

    Args:
        credentials: the shop's configured credentials.
        client: the shop's HTTP client (its base URL is the shop's origin).
        extra_headers: sent with the token request too (e.g. the sandbox's Host).
        clock: monotonic seconds, injectable for tests.
    """

    def __init__(
        self,
        credentials: ShopifyCredentials,
        client: HttpClient,
        *,
        extra_headers: dict[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._credentials = credentials
        self._client = client
        self._extra = extra_headers or {}
        self._clock = clock
        self._token: str | None = None
        self._refresh_at: float | None = None
        if credentials.access_token is not None:
            self._token = credentials.access_token.get_secret_value()

    @property
    def renewable(self) -> bool:
        """True when a refused token can be replaced by asking for a new one."""
        return self._credentials.access_token is None

    def headers(self) -> dict[str, str]:
        """The auth header for the next request, fetching or renewing the token if due."""
        due = self._refresh_at is not None and self._clock() >= self._refresh_at
        if self.renewable and (self._token is None or due):
            self._fetch()
        assert self._token is not None
        return {ACCESS_TOKEN_HEADER: self._token}

    def invalidate(self) -> None:
        """Forget the token after a 401, so the next request asks for a new one."""
        if self.renewable:
            self._token = None

    def _fetch(self) -> None:
        creds = self._credentials
        assert creds.client_id is not None
        assert creds.client_secret is not None
        form = {
            "grant_type": "client_credentials",
            "client_id": creds.client_id,
            "client_secret": creds.client_secret.get_secret_value(),
        }
        body = self._client.json("POST", TOKEN_PATH, data=form, headers=self._extra)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthError(
                f"authentication failed for shop {self._client.shop}: "
                "the token endpoint answered without an access_token"
            )
        register_secret(token)
        self._token = token
        try:
            lifetime = float(body.get("expires_in") or 0)
        except (TypeError, ValueError) as exc:
            raise PlatformError(
                f"shop {self._client.shop}: token endpoint sent a non-numeric expires_in"
            ) from exc
        now = self._clock()
        self._refresh_at = (
            now + lifetime - min(TOKEN_REFRESH_MARGIN_S, lifetime / 2) if lifetime > 0 else None
        )
