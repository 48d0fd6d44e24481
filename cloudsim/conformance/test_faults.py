"""Faults injected through cloudsim's admin API, seen through Microsoft's SDKs: the SDK's own
retry on 429 and 503 (with and without Retry-After), Key Vault's per-vault throttling,
dropped connections, latency, error rates, and the request log."""

import time

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError


def statuses(cloudsim, target, path=None):
    return [e["status"] for e in cloudsim.log(target) if path is None or e["path"] == path]


def test_the_sdk_retries_a_throttled_vault_and_succeeds(cloudsim, secrets):
    client = secrets("kv-conf-faults")
    client.get_secret("one")  # settle the challenge first
    cloudsim.admin_ok("DELETE", "requests")
    cloudsim.admin_ok("POST", "faults",
                      {"target": "vault:kv-conf-faults", "status": 429, "count": 2,
                       "retryAfter": 1})
    started = time.monotonic()
    assert client.get_secret("two").name == "two"
    assert time.monotonic() - started >= 2  # it honoured Retry-After twice
    assert cloudsim.admin_ok("GET", "requests")["vault:kv-conf-faults"] == {"429": 2, "200": 1}


def test_the_sdk_retries_a_throttled_resource_manager_without_retry_after(cloudsim,
                                                                         subscriptions):
    cloudsim.admin_ok("DELETE", "requests")
    cloudsim.admin_ok("POST", "faults", {"target": "arm", "status": 429, "count": 2})
    assert len(list(subscriptions.subscriptions.list())) == 3
    assert cloudsim.admin_ok("GET", "requests")["arm"] == {"429": 2, "200": 1}


def test_the_sdk_retries_503_from_a_vault(cloudsim, keys):
    client = keys("kv-conf-faults")
    list(client.list_properties_of_keys())
    cloudsim.admin_ok("DELETE", "requests")
    cloudsim.admin_ok("POST", "faults",
                      {"target": "vault:kv-conf-faults", "status": 503, "count": 1})
    assert list(client.list_properties_of_keys()) == []
    assert statuses(cloudsim, "vault:kv-conf-faults") == [503, 200]


def test_more_429s_than_the_sdk_retries_surface_as_http_response_error_throttled(cloudsim,
                                                                                secrets):
    client = secrets("kv-conf-faults", retry_total=1, retry_backoff_factor=0.1)
    client.get_secret("one")
    cloudsim.admin_ok("POST", "faults",
                      {"target": "vault:kv-conf-faults", "status": 429, "count": 5,
                       "retryAfter": 0})
    with pytest.raises(HttpResponseError) as e:
        client.get_secret("one")
    assert e.value.status_code == 429
    assert e.value.error.code == "Throttled"


def test_key_vault_throttling_per_window_answers_429_and_the_sdk_waits_it_out(cloudsim,
                                                                             secrets):
    client = secrets("kv-conf-throttle")
    client.get_secret("one")
    cloudsim.admin_ok("POST", "throttle",
                      {"vault": "kv-conf-throttle", "limit": 2, "windowSeconds": 2})
    try:
        cloudsim.admin_ok("DELETE", "requests")
        for _ in range(3):
            assert client.get_secret("one").name == "one"
        seen = statuses(cloudsim, "vault:kv-conf-throttle")
        assert seen.count(429) >= 1 and seen.count(200) == 3, seen
        throttled = [e for e in cloudsim.log("vault:kv-conf-throttle") if e["status"] == 429]
        assert throttled
    finally:
        cloudsim.admin_ok("DELETE", "throttle")


def test_throttling_without_retry_after_still_recovers_through_the_sdk_backoff(cloudsim,
                                                                              secrets):
    client = secrets("kv-conf-throttle", retry_backoff_factor=0.5)
    client.get_secret("two")
    cloudsim.admin_ok("POST", "throttle",
                      {"vault": "kv-conf-throttle", "limit": 1, "windowSeconds": 1,
                       "retryAfter": False})
    try:
        cloudsim.admin_ok("DELETE", "requests")
        assert client.get_secret("two").name == "two"
        assert client.get_secret("two").name == "two"
        assert 429 in statuses(cloudsim, "vault:kv-conf-throttle")
    finally:
        cloudsim.admin_ok("DELETE", "throttle")


def test_a_dropped_connection_is_retried_by_the_sdk(cloudsim, secrets):
    client = secrets("kv-conf-faults")
    client.get_secret("one")
    cloudsim.admin_ok("DELETE", "requests")
    cloudsim.admin_ok("POST", "faults",
                      {"target": "vault:kv-conf-faults", "status": 0, "count": 1})
    assert client.get_secret("one").name == "one"
    assert statuses(cloudsim, "vault:kv-conf-faults") == [0, 200]


def test_drops_beyond_the_retry_budget_raise_a_service_error(cloudsim, secrets):
    client = secrets("kv-conf-faults", retry_total=0)
    client.get_secret("one")
    cloudsim.admin_ok("POST", "faults",
                      {"target": "vault:kv-conf-faults", "drop": True, "count": 3})
    with pytest.raises((ServiceRequestError, ServiceResponseError)):
        client.get_secret("one")


def test_latency_delays_answers_without_failing_them(cloudsim, secrets):
    client = secrets("kv-conf-faults")
    client.get_secret("one")
    cloudsim.admin_ok("POST", "faults",
                      {"target": "vault:kv-conf-faults", "latencyMs": 400, "count": 2})
    started = time.monotonic()
    client.get_secret("one")
    client.get_secret("two")
    assert time.monotonic() - started >= 0.8


def test_an_error_rate_fails_about_that_share_of_requests(cloudsim, secrets):
    client = secrets("kv-conf-faults", retry_total=0)
    client.get_secret("one")
    cloudsim.admin_ok("POST", "faults",
                      {"target": "vault:kv-conf-faults", "status": 500, "rate": 0.5})
    failures = 0
    for _ in range(60):
        try:
            client.get_secret("one")
        except HttpResponseError as e:
            assert e.status_code == 500
            failures += 1
    assert 10 <= failures <= 50, failures


def test_the_request_log_records_method_path_query_status_and_time(cloudsim, secrets):
    client = secrets("kv-conf-faults")
    client.get_secret("one")
    cloudsim.admin_ok("DELETE", "requests")
    before = int(time.time() * 1000)
    client.get_secret("two")
    entries = cloudsim.admin_ok("GET", "requests/log?target=vault:kv-conf-faults")
    assert len(entries) == 1
    e = entries[0]
    assert (e["method"], e["path"], e["status"]) == ("GET", "/secrets/two/", 200)
    assert e["query"].startswith("api-version=")
    assert before - 5 <= e["timestamp"] <= int(time.time() * 1000) + 5
