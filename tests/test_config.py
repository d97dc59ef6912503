"""The YAML config: the documented example loads, errors name the key path, secrets never show."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from shopcrm.cli.main import app
from shopcrm.config.load import load_config, parse_config
from shopcrm.log import setup_logging

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config.example.yaml"

# Distinct, unmistakable values for every variable the example references.
SECRETS = {
    name: f"s3cret-{name.lower()}-value-0123456789"
    for name in sorted(set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", EXAMPLE.read_text())))
}
LITERAL = "shpat_literal_secret_in_the_file_42"


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for value in (*SECRETS.values(), LITERAL):
            assert value not in text, f"secret {value[:10]}... leaked in: {text!r}"


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    """The CLI's setup_logging replaces the root handlers; put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def check(
    config: Path, env: dict[str, str | None] | None = None, *args: str
) -> tuple[int, str, str]:
    """`shopcrm config check` on `config` with exactly `env` (besides the process's)."""
    full_env: dict[str, str | None] = dict.fromkeys(SECRETS)
    full_env.update(env or {})
    result = CliRunner().invoke(
        app, [*args, "--config", str(config), "config", "check"], env=full_env
    )
    return result.exit_code, result.stdout, result.stderr


def test_the_example_loads_with_the_variables_it_references() -> None:
    assert {"SHOPIFY_TOKEN", "WOO_KEY", "WOO_SECRET", "BC_TOKEN"} <= set(SECRETS)
    assert EXAMPLE.is_symlink()
    assert EXAMPLE.resolve() == ROOT / "shopcrm" / "config" / "example.yaml"

    config = load_config(EXAMPLE, env=SECRETS)

    assert [(s.name, s.platform) for s in config.shops] == [
        ("main-store", "shopify"),
        ("eu-store", "woocommerce"),
        ("outlet", "bigcommerce"),
        ("pos", "csv"),
    ]
    woo = config.shop("eu-store")
    assert woo.credentials.consumer_secret.get_secret_value() == SECRETS["WOO_SECRET"]
    assert [rule.name for rule in config.segments] == ["big-spenders"]
    # Relative paths are relative to the file's folder (the symlink's, the repo root).
    assert make_url(config.database).database == str(ROOT / "shopcrm.db")
    assert config.shop("pos").path == ROOT / "exports" / "pos"
    assert_no_secret(repr(config), str(config), json.dumps(config.masked()))


def test_config_check_prints_the_example_masked() -> None:
    code, out, err = check(EXAMPLE, SECRETS)
    assert code == 0, err
    assert "config OK: 4 shop(s)" in out
    assert out.count("'**********'") == 4
    assert_no_secret(out, err)


ERROR_CASES = {
    "missing env var": (
        None,
        "shops[1].credentials.consumer_secret: environment variable WOO_SECRET is not set",
    ),
    "wrong type": (
        "defaults:\n  push:\n    max_change_share: lots\n",
        "defaults.push.max_change_share: Input should be a valid number",
    ),
    "unknown platform": (
        "shops:\n  - name: a\n    platform: magento\n    url: https://m.example\n",
        "shops[0].platform: unknown platform 'magento'",
    ),
    "unknown key": (
        "shops:\n  - name: a\n    platform: bigcommerce\n    store_hash: abc\n"
        "    credentials: {access_token: '${BC_TOKEN}'}\n    colour: red\n",
        "shops[0].colour: unknown key",
    ),
    "duplicate shop name": (
        "shops:\n"
        "  - {name: a, platform: bigcommerce, store_hash: abc,"
        " credentials: {access_token: '${BC_TOKEN}'}}\n"
        f"  - {{name: b, platform: shopify, domain: b.myshopify.com,"
        f" credentials: {{access_token: {LITERAL}}}}}\n"
        "  - {name: a, platform: woocommerce, url: 'https://a.example',"
        " credentials: {consumer_key: '${WOO_KEY}', consumer_secret: '${WOO_SECRET}'}}\n",
        "shops[2].name: duplicate shop name 'a' (also shops[0].name)",
    ),
    "wrong type of a secret's neighbour": (
        "shops:\n  - name: w\n    platform: woocommerce\n    url: 5\n"
        "    credentials: {consumer_key: '${WOO_KEY}', consumer_secret: '${WOO_SECRET}'}\n",
        "shops[0].url: Input should be a valid string",
    ),
}


@pytest.mark.parametrize("case", ERROR_CASES)
def test_a_config_error_exits_2_naming_the_key_path(tmp_path: Path, case: str) -> None:
    text, message = ERROR_CASES[case]
    env = dict(SECRETS)
    if text is None:  # the example itself, with one variable unset
        config = EXAMPLE
        del env["WOO_SECRET"]
    else:
        config = tmp_path / "shopcrm.yaml"
        config.write_text(text, encoding="utf-8")
    code, out, err = check(config, env)
    assert code == 2, (out, err)
    assert message in err
    assert err.startswith("error: ")
    assert "Traceback" not in err
    assert_no_secret(out, err)


def test_a_literal_secret_is_warned_about_without_its_value(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = {
        "shops": [
            {
                "name": "b",
                "platform": "shopify",
                "domain": "b.myshopify.com",
                "credentials": {"access_token": LITERAL},
            }
        ]
    }
    with caplog.at_level(logging.WARNING, logger="shopcrm.config"):
        config = parse_config(data, env={})
    assert "shops[0].credentials.access_token: literal secret in the config file" in caplog.text
    assert config.shops[0].credentials.access_token.get_secret_value() == LITERAL
    assert_no_secret(caplog.text)

    file = tmp_path / "shopcrm.yaml"
    file.write_text(json.dumps(data), encoding="utf-8")
    for fmt in ("text", "json"):
        code, out, err = check(file, {}, "--log-format", fmt)
        assert code == 0
        assert "literal secret in the config file" in err
        assert_no_secret(out, err)


def test_secrets_never_show_in_repr_str_or_dumps() -> None:
    config = load_config(EXAMPLE, env=SECRETS)
    creds = config.shop("eu-store").credentials
    shown = [
        repr(config),
        str(config),
        repr(creds),
        str(creds),
        f"{creds.consumer_secret}",
        repr(creds.consumer_secret),
        config.model_dump_json(),
        str(config.model_dump()),
        json.dumps(config.masked()),
    ]
    assert_no_secret(*shown)
    assert "**********" in repr(creds.consumer_secret)


def test_a_database_password_from_the_environment_stays_hidden_and_intact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    password = "p@ss/w0rd#x:y%z"  # characters that mean something in a URL
    file = tmp_path / "shopcrm.yaml"
    file.write_text(
        'database: "postgresql+psycopg://shop:${PGPASSWORD}@127.0.0.1:5432/crm"\n',
        encoding="utf-8",
    )
    config = load_config(file, env={"PGPASSWORD": password})
    url = make_url(config.database)
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "shop",
        password,
        "127.0.0.1",
        5432,
        "crm",
    )
    assert config.masked()["database"] == "postgresql+psycopg://shop:***@127.0.0.1:5432/crm"

    result = CliRunner().invoke(
        app, ["--config", str(file), "config", "check"], env={"PGPASSWORD": password}
    )
    assert result.exit_code == 0, result.output
    for fragment in (password, "w0rd", "ss/"):
        assert fragment not in result.output

    setup_logging("info", "text")  # the password is registered with the redactor too
    logging.getLogger("shopcrm.test").error("could not connect with %s", password)
    err = capsys.readouterr().err
    assert "could not connect with ***" in err
    assert password not in err


def test_a_relative_sqlite_path_is_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cases = {
        "sqlite:///data/crm.db": str(folder / "data" / "crm.db"),
        "sqlite:///crm.db": str(folder / "crm.db"),
        f"sqlite:///{tmp_path / 'abs.db'}": str(tmp_path / "abs.db"),
        "sqlite:///:memory:": ":memory:",
    }
    for written, expected in cases.items():
        file = folder / "shopcrm.yaml"
        file.write_text(f"database: {written!r}\n", encoding="utf-8")
        for path in (file, Path("..") / "conf" / "shopcrm.yaml"):
            assert make_url(load_config(path, env={}).database).database == expected


def test_log_lines_redact_registered_secrets_even_in_tracebacks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    load_config(EXAMPLE, env=SECRETS)  # registers the secrets with the redactor
    secret = SECRETS["WOO_SECRET"]
    for fmt in ("text", "json"):
        setup_logging("info", fmt)  # type: ignore[arg-type]
        log = logging.getLogger("shopcrm.test")
        log.warning("calling https://shop.example/?consumer_secret=%s", secret)
        try:
            raise RuntimeError(f"401 for url https://shop.example/?consumer_secret={secret}")
        except RuntimeError:
            log.exception("request failed")
        err = capsys.readouterr().err
        assert "consumer_secret=***" in err
        assert "RuntimeError" in err
        assert secret not in err, fmt
