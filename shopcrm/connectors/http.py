"""The one way connectors speak HTTP: a pooled session, timeouts, retries and pacing.

Statuses are translated here, once, into the error tree: 401/403 -> AuthError, 404 -> NotFound,
429 -> RateLimited (with the wait the platform asked for), 5xx / timeouts / refused connections /
unreadable bodies -> PlatformUnavailable, other 4xx -> PlatformError. Transient errors are
retried with exponential backoff that never waits less than the platform's Retry-After.
A `Pacer` sees every request and response, so a connector can keep under the platform's
published limit instead of hitting it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_random,
)

from shopcrm import __version__
from shopcrm.errors import (
    AuthError,
    NotFound,
    PlatformError,
    PlatformUnavailable,
    RateLimited,
    TransientError,
)
from shopcrm.log import redact

log = logging.getLogger(__name__)

T = TypeVar("T")
USER_AGENT = f"shopcrm/{__version__}"
DEFAULT_TIMEOUT = (5.0, 60.0)  # connect, read (seconds)
_RETRY_AFTER_HEADERS = ("Retry-After", "X-Retry-After")


class Pacer(Protocol):
    """Keeps a client under a platform's rate limit."""

    def before_request(self) -> None:
        """Wait, if needed, before the next request is sent."""
        ...

    def after_response(self, response: requests.Response) -> None:
        """Learn the platform's current allowance from a response."""
        ...


def retry_after_seconds(response: requests.Response) -> float | None:
    """The wait a response asks for: Retry-After / X-Retry-After (seconds) or BigCommerce's
    X-Rate-Limit-Time-Reset-Ms."""
    for name in _RETRY_AFTER_HEADERS:
        value = response.headers.get(name)
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                continue
    reset_ms = response.headers.get("X-Rate-Limit-Time-Reset-Ms")
    if reset_ms:
        try:
            return max(0.0, float(reset_ms) / 1000)
        except ValueError:
            return None
    return None


def raise_for_status(response: requests.Response, shop: str) -> None:
    """Translate an error status into the error tree (no-op for 2xx/3xx)."""
    status = response.status_code
    if status < 400:
        return
    where = f"shop {shop}: {response.request.method} {urlsplit(response.url).path}"
    excerpt = redact(response.text[:300]) if response.text else ""
    if status in (401, 403):
        raise AuthError(
            f"authentication failed for shop {shop} (HTTP {status}): {excerpt}", status=status
        )
    if status == 404:
        raise NotFound(f"{where}: not found (HTTP 404)", status=status)
    if status == 429:
        raise RateLimited(
            f"{where}: rate limited (HTTP 429)",
            status=status,
            retry_after=retry_after_seconds(response),
        )
    if status >= 500:
        raise PlatformUnavailable(
            f"{where}: platform error HTTP {status}: {excerpt}",
            status=status,
            retry_after=retry_after_seconds(response),
        )
    raise PlatformError(f"{where}: HTTP {status}: {excerpt}", status=status)


class _Wait:
    """Exponential backoff with jitter, but never shorter than what the platform asked."""

    def __init__(self, initial: float, maximum: float) -> None:
        self._backoff = wait_exponential(multiplier=initial, max=maximum) + wait_random(0, initial)
        self._maximum = maximum

    def __call__(self, state: RetryCallState) -> float:
        backoff = self._backoff(state)
        exc = state.outcome.exception() if state.outcome else None
        asked = getattr(exc, "retry_after", None)
        if asked is not None:
            return min(max(asked, 0.05), max(self._maximum, asked))
        return backoff


class HttpClient:
    """A pooled session bound to one shop's base URL.

    Args:
        base_url: prefix of every relative path, e.g. `https://x.myshopify.com/admin/api/2026-10/`.
        shop: the shop's config name, used in error messages.
        headers: sent with every request (auth headers belong here; they are never logged).
        pacer: optional rate-limit pacing.
        attempts: tries per request, counting the first.
        max_wait: give up retrying after this many seconds in total.
        sleep: injectable for tests.
    """

    def __init__(
        self,
        base_url: str,
        *,
        shop: str,
        headers: Mapping[str, str] | None = None,
        pacer: Pacer | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        attempts: int = 6,
        max_wait: float = 300.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.shop = shop
        self.pacer = pacer
        self.timeout = timeout
        self.requests_made = 0
        self._sleep = sleep
        self._retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(attempts) | stop_after_delay(max_wait),
            wait=_Wait(backoff_initial, backoff_max),
            sleep=sleep,
            reraise=True,
            before_sleep=self._log_retry,
        )
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=8, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        if headers:
            self.session.headers.update(headers)

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0
        message = redact(str(exc))
        if not message.startswith(f"shop {self.shop}"):
            message = f"shop {self.shop}: {message}"
        log.warning("%s; retry %d in %.1fs", message, state.attempt_number, wait)

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else urljoin(self.base_url, path)

    def send_once(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request, paced, with errors translated; no retry."""
        if self.pacer is not None:
            self.pacer.before_request()
        kwargs.setdefault("timeout", self.timeout)
        url = self.url(path)
        self.requests_made += 1
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.Timeout as exc:
            raise PlatformUnavailable(f"shop {self.shop}: {method} timed out") from exc
        except requests.ConnectionError as exc:
            raise PlatformUnavailable(
                f"shop {self.shop}: cannot connect to {urlsplit(url).netloc}"
            ) from exc
        except requests.RequestException as exc:
            reason = exc.__class__.__name__
            raise PlatformError(f"shop {self.shop}: {method} failed: {reason}") from exc
        path_only = urlsplit(url).path
        log.debug("shop %s: %s %s -> %d", self.shop, method, path_only, response.status_code)
        if self.pacer is not None:
            self.pacer.after_response(response)
        raise_for_status(response, self.shop)
        return response

    def retrying(self, call: Callable[[], T]) -> T:
        """Run `call` under the retry policy (for checks of a body, e.g. GraphQL THROTTLED)."""
        return self._retrying(call)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A request retried on transient errors."""
        return self.retrying(lambda: self.send_once(method, path, **kwargs))

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """A retried request whose body must be JSON (204 gives None)."""

        def call() -> Any:
            response = self.send_once(method, path, **kwargs)
            return parse_json(response, self.shop)

        return self.retrying(call)

    def close(self) -> None:
        self.session.close()


def parse_json(response: requests.Response, shop: str) -> Any:
    """The JSON body, or PlatformUnavailable for a truncated or non-JSON body (retryable)."""
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError as exc:
        raise PlatformUnavailable(
            f"shop {shop}: unreadable response body from {urlsplit(response.url).path} "
            f"({len(response.content)} bytes, not JSON)"
        ) from exc
