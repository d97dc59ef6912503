"""OAuth 1.0a one-legged verification, the way WooCommerce checks it over plain HTTP.

Follows `WC_REST_Authentication` (woocommerce/includes/class-wc-rest-authentication.php):
parameters are PHP's `$_GET` merged with `oauth_*` from an `Authorization: OAuth` header; the
signature base is `METHOD&rawurlencode(site URL + path)&` the sorted parameters, each key and
value rawurlencoded, joined as `k=v`, rawurlencoded again and joined with `%26`; the key is
`consumer_secret&`. Then the timestamp must be within 15 minutes and the nonce unused, and a
key with `read` permission may only GET/HEAD. Error codes and messages are the server's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, unquote_plus

OAUTH_PARAMS = (
    "oauth_consumer_key",
    "oauth_timestamp",
    "oauth_nonce",
    "oauth_signature",
    "oauth_signature_method",
)
WINDOW_S = 15 * 60
AUTH_ERROR = "woocommerce_rest_authentication_error"
_HEADER_PARAM = re.compile(r'(oauth_[a-z_-]*)=(?:"([^"]*)"|([^,]*))')
_ALGORITHMS = {"HMAC-SHA1": hashlib.sha1, "HMAC-SHA256": hashlib.sha256}

PhpParams = dict[str, "str | dict[str, str]"]


class OAuthFailure(Exception):
    """A refused request: WooCommerce's error code and message (always HTTP 401)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


def rawurlencode(text: str) -> str:
    """PHP's rawurlencode (RFC 3986: only unreserved characters kept)."""
    return quote(text, safe="-_.~")


def php_query(raw_query: str) -> PhpParams:
    """A query string parsed like PHP's `$_GET`: last value wins, `a[k]=v` makes an array."""
    params: PhpParams = {}
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        key, value = unquote_plus(name), unquote_plus(value)
        base, bracket, rest = key.partition("[")
        if bracket and rest.endswith("]"):
            inner = params.get(base)
            array = inner if isinstance(inner, dict) else {}
            index = rest[:-1] or str(len(array))
            array[index] = value
            params[base] = array
        else:
            params[key] = value
    return params


def header_params(header: str | None) -> dict[str, str]:
    """`oauth_*` values of an `Authorization: OAuth ...` header (urldecoded, as PHP does)."""
    if not header or not header.strip().startswith("OAuth "):
        return {}
    found = {}
    for name, quoted, bare in _HEADER_PARAM.findall(header.strip()):
        found[name] = unquote_plus(quoted or bare)
    return found


def _joined(params: PhpParams) -> list[str]:
    pairs: list[str] = []
    for key in sorted(params):
        value = params[key]
        if isinstance(value, dict):
            for sub, item in value.items():
                name = f"{rawurlencode(key)}%5B{rawurlencode(sub)}%5D"
                pairs.append(rawurlencode(f"{name}={rawurlencode(item)}"))
        else:
            pairs.append(rawurlencode(f"{rawurlencode(key)}={rawurlencode(value)}"))
    return pairs


def signature(method: str, url: str, params: PhpParams, secret: str, algorithm: str) -> str:
    """The base64 signature WooCommerce computes for a request (oauth_signature excluded)."""
    signed = {k: v for k, v in params.items() if k != "oauth_signature"}
    base = f"{method.upper()}&{rawurlencode(url)}&{'%26'.join(_joined(signed))}"
    digest = hmac.new(f"{secret}&".encode(), base.encode(), _ALGORITHMS[algorithm]).digest()
    return base64.b64encode(digest).decode()


@dataclass
class ApiKey:
    consumer_secret: str
    permissions: str = "read_write"  # read | write | read_write


@dataclass
class OAuthVerifier:
    """Checks signed requests against a site's API keys; remembers nonces like the server."""

    keys: dict[str, ApiKey]
    clock: Callable[[], float] = time.time
    _nonces: dict[str, dict[str, int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def authenticate(
        self, method: str, url: str, params: PhpParams, authorization: str | None
    ) -> str | None:
        """The consumer key that signed the request, None when it is not OAuth-signed at all.

        Raises:
            OAuthFailure: a signed request that WooCommerce would refuse (code, message).
        """
        merged: PhpParams = {**params, **header_params(authorization)}
        missing = [name for name in OAUTH_PARAMS if not merged.get(name)]
        if len(missing) == len(OAUTH_PARAMS):
            return None
        if missing:
            noun = "parameter" if len(missing) == 1 else "parameters"
            raise OAuthFailure(
                "woocommerce_rest_authentication_missing_parameter",
                f"Missing OAuth {noun} {', '.join(missing)}",
            )
        values = {name: str(merged[name]) for name in OAUTH_PARAMS}
        key = self.keys.get(values["oauth_consumer_key"])
        if key is None:
            raise OAuthFailure(AUTH_ERROR, "Consumer key is invalid.")
        algorithm = values["oauth_signature_method"]
        if algorithm not in _ALGORITHMS:
            raise OAuthFailure(AUTH_ERROR, "Invalid signature - signature method is invalid.")
        given = unquote(values["oauth_signature"].replace(" ", "+"))
        expected = signature(method, url, merged, key.consumer_secret, algorithm)
        if not hmac.compare_digest(expected.encode(), given.encode()):
            raise OAuthFailure(AUTH_ERROR, "Invalid signature - provided signature does not match.")
        self._check_timestamp_and_nonce(values)
        if key.permissions == "read" and method.upper() not in ("GET", "HEAD"):
            raise OAuthFailure(AUTH_ERROR, "The API key provided does not have write permissions.")
        return values["oauth_consumer_key"]

    def _check_timestamp_and_nonce(self, values: dict[str, str]) -> None:
        now = int(self.clock())
        try:
            stamp = int(values["oauth_timestamp"])
        except ValueError:
            stamp = 0
        if stamp < now - WINDOW_S or stamp > now + WINDOW_S:
            raise OAuthFailure(AUTH_ERROR, "Invalid timestamp.")
        with self._lock:
            used = self._nonces.setdefault(values["oauth_consumer_key"], {})
            if values["oauth_nonce"] in used:
                raise OAuthFailure(AUTH_ERROR, "Invalid nonce - nonce has already been used.")
            used[values["oauth_nonce"]] = stamp
            if len(used) > 10_000:  # forget expired nonces now and then, not on every request
                for nonce, when in list(used.items()):
                    if when < now - WINDOW_S:
                        del used[nonce]
