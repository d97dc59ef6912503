"""Shared fixtures: a real store on SQLite and on PostgreSQL for every store test.

`store` is parametrized over both databases. PostgreSQL comes from SHOPCRM_TEST_PG_URL or a
throwaway server this session starts on 127.0.0.1 (tests/pg.py); it is never skipped.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from shopcrm.store.db import Store, make_engine, open_store, upgrade
from tests.pg import TempPostgres

PLATFORMS_DIR = Path(
    os.environ.get(
        "SHOPCRM_PLATFORMS_DIR", Path(__file__).resolve().parents[2] / "shared/platforms"
    )
)


@pytest.fixture(scope="session")
def platforms_dir() -> Path:
    """The published platform references (../shared/platforms); required under CI."""
    if not PLATFORMS_DIR.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(
                f"platform references missing at {PLATFORMS_DIR} (set SHOPCRM_PLATFORMS_DIR)"
            )
        pytest.skip(f"platform references not found at {PLATFORMS_DIR}; set SHOPCRM_PLATFORMS_DIR")
    return PLATFORMS_DIR


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """URL of the maintenance database of a PostgreSQL server on 127.0.0.1."""
    configured = os.environ.get("SHOPCRM_TEST_PG_URL")
    if configured:
        yield configured
        return
    server = TempPostgres()
    try:
        yield server.start()
    finally:
        server.stop()


def _admin(url: str) -> psycopg.Connection:
    u = make_url(url)
    return psycopg.connect(
        host=u.host,
        port=u.port,
        user=u.username,
        password=u.password,
        dbname=u.database,
        autocommit=True,
    )


class Databases:
    """Makes empty or schema-ready databases of one kind, and drops them afterwards."""

    def __init__(self, kind: str, tmp: Path, pg_url: str | None) -> None:
        self.kind = kind
        self.tmp = tmp
        self.pg_url = pg_url
        self._made: list[str] = []
        self._template: str | None = None

    def empty(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        if self.kind == "sqlite":
            return f"sqlite:///{self.tmp / (name + '.db')}"
        assert self.pg_url
        with _admin(self.pg_url) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self._made.append(name)
        return make_url(self.pg_url).set(database=name).render_as_string(hide_password=False)

    def ready(self) -> str:
        """A database with the schema at head (copied from a template made once)."""
        if self._template is None:
            self._template = self.empty()
            engine = make_engine(self._template)
            upgrade(engine)
            engine.dispose()
        name = f"t_{uuid.uuid4().hex[:12]}"
        if self.kind == "sqlite":
            src = make_url(self._template).database
            assert src
            dst = self.tmp / (name + ".db")
            shutil.copyfile(src, dst)
            return f"sqlite:///{dst}"
        template = make_url(self._template).database
        with _admin(self.pg_url) as conn:  # type: ignore[arg-type]
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        self._made.append(name)
        return make_url(self.pg_url).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        if self.kind != "postgres" or not self._made:
            return
        with _admin(self.pg_url) as conn:  # type: ignore[arg-type]
            for name in reversed(self._made):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def databases(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Databases]:
    kind = request.param
    pg_url = request.getfixturevalue("pg_server") if kind == "postgres" else None
    dbs = Databases(kind, tmp_path_factory.mktemp(f"db-{kind}"), pg_url)
    yield dbs
    dbs.drop_all()


@pytest.fixture
def db_kind(databases: Databases) -> str:
    return databases.kind


@pytest.fixture
def store(databases: Databases) -> Iterator[Store]:
    """An empty store with the schema at head, on SQLite and on PostgreSQL."""
    st = open_store(databases.ready())
    yield st
    st.close()


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    """The CLI's setup_logging replaces the root handlers; put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
