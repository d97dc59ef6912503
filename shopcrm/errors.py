"""One exception hierarchy for shopcrm, branched by what the caller can do about it.

    ShopcrmError
     ├── ConfigError              the config file is wrong: fix it and rerun          exit 2
     ├── UsageError               the command line is wrong                           exit 2
     ├── StoreError               the local store failed                              exit 1
     │    └── SchemaOutOfDate     the store needs `shopcrm db upgrade`                exit 2
     ├── InputError               a source file (CSV export) has bad rows             exit 1
     ├── PlatformError            the platform answered with an error                 exit 1
     │    ├── AuthError           credentials refused: fatal for that shop            exit 1
     │    ├── NotFound            the record does not exist (any more)                exit 1
     │    └── TransientError      worth retrying later                                exit 75
     │         ├── RateLimited    throttled (429 / THROTTLED); may carry retry_after
     │         └── PlatformUnavailable  5xx, timeout, connection refused, bad body
     ├── NoMatch                  nobody in the store matches (forget, export)        exit 1
     ├── PushRefused              a push exceeded the safety limit                    exit 1
     ├── RunFailed                one or more shops failed in a run                   exit 1
     ├── RunInterrupted           a stop was requested; ended after a committed page  exit 1
     └── LockHeld                 another process is running this shop                exit 75

Third-party exceptions are translated once, at the boundary where they are raised
(`raise ... from exc`). The CLI maps this tree to exit codes in `exit_code_for`, nowhere else.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TEMPFAIL = 75


class ShopcrmError(Exception):
    """Root of every error shopcrm raises on purpose."""

    exit_code = EXIT_FAILED


class ConfigError(ShopcrmError):
    """The configuration is invalid; the message names the key path."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class UsageError(ShopcrmError):
    """The command line asks for something that cannot be done (unknown shop, bad option)."""

    exit_code = EXIT_USAGE


class StoreError(ShopcrmError):
    """The local store could not be read or written."""


class SchemaOutOfDate(StoreError):
    """The store's schema is behind the code; `shopcrm db upgrade` fixes it."""

    exit_code = EXIT_USAGE


class InputError(ShopcrmError):
    """A source file has records that cannot be imported; nothing was written."""


class PlatformError(ShopcrmError):
    """A platform answered with an error that retrying will not fix."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class AuthError(PlatformError):
    """The platform refused the credentials (401/403, revoked or wrong token)."""


class NotFound(PlatformError):
    """The platform says the record does not exist."""


class TransientError(PlatformError):
    """A failure that may pass: retried with backoff, then reported as temporarily unable."""

    exit_code = EXIT_TEMPFAIL

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, status=status)


class RateLimited(TransientError):
    """The platform throttled us (HTTP 429 or GraphQL THROTTLED)."""


class PlatformUnavailable(TransientError):
    """5xx, timeout, refused connection or an unreadable body."""


class NoMatch(ShopcrmError):
    """Nobody in the store matches the person or customer asked for."""


class PushRefused(ShopcrmError):
    """A push would change more customers than the safety limit allows."""


class RunFailed(ShopcrmError):
    """At least one shop of a run failed; the others ran."""


class RunInterrupted(ShopcrmError):
    """A stop was requested; the shop's run ended after its last committed page."""


class LockHeld(ShopcrmError):
    """Another process holds a lock this work needs (a shop's run, or the store's enrichment)."""

    exit_code = EXIT_TEMPFAIL


def exit_code_for(exc: BaseException) -> int:
    """The process exit code for an error reaching the CLI."""
    if isinstance(exc, ShopcrmError):
        return exc.exit_code
    return EXIT_FAILED
