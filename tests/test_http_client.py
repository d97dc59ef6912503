"""HttpClient: status translation, retries honouring Retry-After, pacing hook, bodies."""

from __future__ import annotations

import pytest
import requests
import responses

from shopcrm import errors
from shopcrm.connectors.http import HttpClient, parse_json, retry_after_seconds

BASE = "https://shop.example.test/api/"


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(sleeps: Sleeps) -> HttpClient:
    return HttpClient(
        BASE, shop="main", headers={"X-Token": "tok-secret-1234"}, sleep=sleeps, attempts=4
    )


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, errors.AuthError),
        (403, errors.AuthError),
        (404, errors.NotFound),
        (422, errors.PlatformError),
        (400, errors.PlatformError),
    ],
)
@responses.activate
def test_fatal_statuses_are_translated_and_not_retried(client, status, error):
    responses.get(BASE + "customers", status=status, json={"error": "nope"})
    with pytest.raises(error) as info:
        client.json("GET", "customers")
    assert type(info.value) is error
    assert info.value.status == status
    assert len(responses.calls) == 1


@responses.activate
def test_auth_error_names_the_shop_and_never_the_token(client):
    responses.get(BASE + "customers", status=401, body="tok-secret-1234 is revoked")
    with pytest.raises(errors.AuthError) as info:
        client.json("GET", "customers")
    assert "authentication failed for shop main" in str(info.value)


@responses.activate
def test_429_waits_at_least_retry_after_then_succeeds(client, sleeps):
    responses.get(BASE + "orders", status=429, headers={"Retry-After": "7"})
    responses.get(BASE + "orders", json=[{"id": 1}])
    assert client.json("GET", "orders") == [{"id": 1}]
    assert sleeps == [7.0]
    assert client.requests_made == 2


@responses.activate
def test_bigcommerce_reset_header_is_a_retry_after(client, sleeps):
    responses.get(BASE + "orders", status=429, headers={"X-Rate-Limit-Time-Reset-Ms": "1500"})
    responses.get(BASE + "orders", json=[])
    client.json("GET", "orders")
    assert sleeps == [1.5]


@responses.activate
def test_502_then_success_backs_off(client, sleeps):
    responses.get(BASE + "orders", status=502)
    responses.get(BASE + "orders", status=503)
    responses.get(BASE + "orders", json={"ok": True})
    assert client.json("GET", "orders") == {"ok": True}
    assert len(sleeps) == 2
    assert all(0 < s <= 30 for s in sleeps)


@responses.activate
def test_a_retry_is_logged_once_with_the_shop(client, caplog):
    responses.get(BASE + "orders", status=503)
    responses.get(BASE + "orders", json=[])
    with caplog.at_level("WARNING", logger="shopcrm.connectors.http"):
        client.json("GET", "orders")
    (message,) = [r.getMessage() for r in caplog.records]
    assert message.startswith("shop main: GET /api/orders: platform error HTTP 503")
    assert message.count("shop main") == 1
    assert "retry 1 in" in message


@responses.activate
def test_transient_errors_give_up_after_the_attempts(client, sleeps):
    responses.get(BASE + "orders", status=500)
    with pytest.raises(errors.PlatformUnavailable):
        client.json("GET", "orders")
    assert len(responses.calls) == 4
    assert errors.exit_code_for(errors.PlatformUnavailable("x")) == errors.EXIT_TEMPFAIL


@responses.activate
def test_timeout_and_refused_connection_are_transient(client):
    responses.get(BASE + "slow", body=requests.Timeout("read timed out"))
    responses.get(BASE + "down", body=requests.ConnectionError("refused"))
    with pytest.raises(errors.PlatformUnavailable, match="timed out"):
        client.json("GET", "slow")
    with pytest.raises(errors.PlatformUnavailable, match="cannot connect"):
        client.json("GET", "down")
    assert len(responses.calls) == 8


@responses.activate
def test_malformed_json_is_retried_then_reported(client):
    responses.get(BASE + "customers", body='{"data": [1, 2', content_type="application/json")
    with pytest.raises(errors.PlatformUnavailable, match="not JSON"):
        client.json("GET", "customers")
    assert len(responses.calls) == 4


@responses.activate
def test_204_is_an_empty_body(client):
    responses.get(BASE + "orders", status=204)
    assert client.json("GET", "orders") is None


@responses.activate
def test_pacer_sees_every_request_and_response(client):
    seen: list[str] = []

    class Pacer:
        def before_request(self) -> None:
            seen.append("before")

        def after_response(self, response: requests.Response) -> None:
            seen.append(f"after {response.status_code}")

    client.pacer = Pacer()
    responses.get(BASE + "x", status=503)
    responses.get(BASE + "x", json={})
    client.json("GET", "x")
    assert seen == ["before", "after 503", "before", "after 200"]


@responses.activate
def test_headers_are_sent_and_absolute_urls_kept(client):
    responses.get("https://other.example.test/bulk.jsonl", body="{}")
    client.request("GET", "https://other.example.test/bulk.jsonl")
    sent = responses.calls[0].request
    assert sent.headers["X-Token"] == "tok-secret-1234"
    assert sent.headers["User-Agent"].startswith("shopcrm/")


def test_retry_after_parsing_ignores_garbage():
    response = requests.Response()
    response.headers["Retry-After"] = "soon"
    assert retry_after_seconds(response) is None
    response.headers["X-Retry-After"] = "2"
    assert retry_after_seconds(response) == 2.0


def test_parse_json_of_empty_body_is_none():
    response = requests.Response()
    response.status_code = 200
    response._content = b""
    assert parse_json(response, "main") is None
