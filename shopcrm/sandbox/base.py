"""What every platform sandbox offers: start, stop, a URL and a config entry pointing at it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Any, Self

from shopcrm.sandbox.seed import Dataset
from shopcrm.sandbox.server import SandboxServer


class PlatformSandbox(ABC):
    """Start/stop and context management shared by the platform sandboxes."""

    server: SandboxServer
    dataset: Dataset

    @property
    def url(self) -> str:
        return self.server.url

    @abstractmethod
    def shop_entry(self, name: str) -> tuple[dict[str, Any], dict[str, str]]:
        """A `shops:` entry pointing shopcrm at this sandbox, with `${VAR}` credential
        references, and the environment values for those variables."""

    def start(self) -> Self:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
