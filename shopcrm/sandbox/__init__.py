"""Local stand-ins of the platforms' APIs, for the demo, the tests and anyone's curl.

Each platform module (`shopify`, `woocommerce`, `bigcommerce`) offers a class that follows
`PlatformSandbox`: it serves one or more seeded `Dataset`s on 127.0.0.1 through a
`SandboxServer` (fault injection in `.server.faults`, request counts in `.server.stats`) and can
describe itself as a shop entry for the config file.
"""

from __future__ import annotations

from typing import Any, Protocol, Self

from shopcrm.sandbox.seed import Dataset
from shopcrm.sandbox.server import SandboxServer


class PlatformSandbox(Protocol):
    server: SandboxServer
    dataset: Dataset

    @property
    def url(self) -> str: ...

    def shop_entry(self, name: str) -> tuple[dict[str, Any], dict[str, str]]:
        """A `shops:` entry pointing shopcrm at this sandbox, with `${VAR}` credential
        references, and the environment values for those variables."""
        ...

    def start(self) -> Self: ...

    def stop(self) -> None: ...
