"""The HTTP server every platform sandbox runs on: 127.0.0.1 only, threaded, with faults.

A platform sandbox is a `Handler`: a function from `SandboxRequest` to `SandboxResponse`. This
module serves it, counts reads and writes, and injects faults on demand (a status for the next
N requests, a share of 5xx, delays past the client's timeout, truncated bodies) so tests and the
demo can show how shopcrm behaves when a platform misbehaves.

Real shops are not on 127.0.0.1: `latency_s` adds a round-trip delay to every response, faults
included, so request counts cost time the way they do over the internet. It is 0 by default
(tests stay fast); `REALISTIC_LATENCY_S` is the figure for benchmarks.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
# A round trip to a hosted platform plus a light query: a conservative floor. Full pages cost
# more (a user reports 0.6-0.8 s per 250-product Shopify REST page,
# github.com/skuvault-integrations/shopifyAccess/pull/19); benchmarks pass this explicitly.
REALISTIC_LATENCY_S = 0.150


@dataclass
class SandboxRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    raw_query: str = ""

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The last value of a query parameter (PHP-style last-wins)."""
        values = self.query.get(name)
        return values[-1] if values else default

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    @property
    def host(self) -> str:
        return (self.header("host") or "").split(":")[0]


@dataclass
class SandboxResponse:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    write: bool = False  # the request changed the platform's data

    @classmethod
    def json(
        cls,
        data: Any,
        status: int = 200,
        headers: dict[str, str] | None = None,
        *,
        write: bool = False,
    ) -> SandboxResponse:
        return cls(
            status=status,
            body=json.dumps(data, separators=(",", ":")).encode(),
            headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})},
            write=write,
        )


Handler = Callable[[SandboxRequest], SandboxResponse]


@dataclass
class Faults:
    """Fault injection knobs; safe to change while the server runs."""

    fail_next: list[int] = field(default_factory=list)  # statuses for the next requests
    fail_all: int | None = None  # answer every request with this status
    error_rate: float = 0.0  # share of requests answered 503
    delay_s: float = 0.0  # sleep before answering (a timeout when > the client's)
    delay_next: int = 0  # ... only for this many requests when > 0
    truncate_next: int = 0  # cut the body of this many responses in half
    retry_after_s: float = 1.0  # Retry-After sent with injected 429/503
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def reset(self) -> None:
        self.fail_next.clear()
        self.fail_all = None
        self.error_rate = 0.0
        self.delay_s = 0.0
        self.delay_next = 0
        self.truncate_next = 0


@dataclass
class Stats:
    """What the sandbox has been asked: totals, by kind and by path."""

    reads: int = 0
    writes: int = 0
    faults: int = 0
    by_path: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        return self.reads + self.writes + self.faults

    def reset(self) -> None:
        self.reads = self.writes = self.faults = 0
        self.by_path.clear()
        self.statuses.clear()


class SandboxServer:
    """Serves a Handler on 127.0.0.1 in a background thread (or the foreground).

    Args:
        handler: the platform sandbox.
        port: 0 picks a free port.
        name: for logs and thread names.
        latency_s: round-trip delay added to every response (mutable while running).
    """

    def __init__(
        self, handler: Handler, *, port: int = 0, name: str = "sandbox", latency_s: float = 0.0
    ) -> None:
        if latency_s < 0:
            raise ValueError(f"latency_s must be >= 0, got {latency_s}")
        self.handler = handler
        self.name = name
        self.latency_s = latency_s
        self.faults = Faults()
        self.stats = Stats()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((HOST, port), self._request_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name=f"{self.name}-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _injected(self) -> tuple[SandboxResponse | None, float, bool]:
        """The fault to apply to this request: (response, delay, truncate)."""
        f = self.faults
        with self._lock:
            delay = f.delay_s
            if delay and f.delay_next > 0:
                f.delay_next -= 1
                if f.delay_next == 0:
                    f.delay_s = 0.0
            truncate = f.truncate_next > 0
            if truncate:
                f.truncate_next -= 1
            status = None
            if f.fail_next:
                status = f.fail_next.pop(0)
            elif f.fail_all is not None:
                status = f.fail_all
            elif f.error_rate and f._rng.random() < f.error_rate:
                status = 503
        if status is None:
            return None, delay, truncate
        headers = {"Retry-After": str(f.retry_after_s)} if status in (429, 503) else {}
        return (
            SandboxResponse.json({"errors": "injected fault"}, status=status, headers=headers),
            delay,
            truncate,
        )

    def dispatch(self, request: SandboxRequest) -> tuple[SandboxResponse, float, bool]:
        injected, delay, truncate = self._injected()
        if injected is not None:
            with self._lock:
                self.stats.faults += 1
                self.stats.statuses[injected.status] += 1
            return injected, delay, truncate
        try:
            response = self.handler(request)
        except Exception:
            log.exception("%s: handler failed on %s %s", self.name, request.method, request.path)
            response = SandboxResponse.json({"errors": "Internal Server Error"}, status=500)
        with self._lock:
            if response.write:
                self.stats.writes += 1
            else:
                self.stats.reads += 1
            self.stats.by_path[f"{request.method} {request.path}"] += 1
            self.stats.statuses[response.status] += 1
        return response, delay, truncate

    def _request_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Request(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body go out as two writes: without this, Nagle holds the body back
            # until the client's delayed ACK (~40 ms per keep-alive request)
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("%s: " + format, server.name, *args)

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = SandboxRequest(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    raw_query=parts.query,
                )
                response, delay, truncate = server.dispatch(request)
                wait = delay + server.latency_s
                if wait:
                    time.sleep(wait)
                payload = response.body
                if truncate and payload:
                    payload = payload[: len(payload) // 2]
                try:
                    self.send_response(response.status)
                    for name, value in response.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if payload and self.command != "HEAD":
                        self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    log.debug("%s: client went away", server.name)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

        return _Request
