"""cloudsim's admin API mutations, observed through Microsoft's SDKs: adding a vault, adding
and changing items (new versions, expiry, tags), denying the identity, and reset."""

import time

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

SECONDARY = "66666666-7777-4888-9999-000000000000"


def test_an_added_vault_gets_its_own_port_and_shows_up_in_resource_manager(cloudsim, secrets,
                                                                          keyvault_mgmt):
    entry = cloudsim.admin_ok("POST", "vaults", {
        "subscriptionId": SECONDARY, "name": "kv-conf-added", "resourceGroup": "rg-added",
        "secrets": [{"name": "greeting", "value": "hi", "expiresInDays": 3}],
        "fill": {"secrets": 3, "keys": 2}})
    assert entry["vaultUri"].startswith("https://127.0.0.1:")
    assert entry["counts"] == {"secrets": 4, "keys": 2, "certificates": 0}
    client = secrets("kv-conf-added")
    assert client.get_secret("greeting").value == "hi"
    assert len(list(client.list_properties_of_secrets())) == 4
    vault = keyvault_mgmt(SECONDARY).vaults.get("rg-added", "kv-conf-added")
    assert vault.properties.vault_uri == entry["vaultUri"]
    status, _ = cloudsim.admin("POST", "vaults", {"subscriptionId": SECONDARY,
                                                  "name": "kv-conf-added"})
    assert status == 409


def test_posting_an_existing_item_adds_a_new_current_version(cloudsim, secrets):
    client = secrets("kv-conf-main")
    before = client.get_secret("db-password").properties
    time.sleep(1.1)
    out = cloudsim.admin_ok("POST", "vaults/kv-conf-main/secrets",
                            {"name": "db-password", "value": "rotated", "expiresInDays": 90})
    after = client.get_secret("db-password")
    assert after.value == "rotated"
    assert after.properties.version == out["version"] != before.version
    assert after.properties.updated_on > before.updated_on
    versions = list(client.list_properties_of_secret_versions("db-password"))
    assert before.version in {v.version for v in versions}


def test_expiring_an_item_moves_its_expiry_into_the_past_and_bumps_updated(cloudsim, secrets,
                                                                          keys, certificates):
    stats = cloudsim.admin_ok("GET", "stats")
    cloudsim.admin_ok("POST", "vaults/kv-conf-main/secrets", {"name": "to-expire", "value": "x"})
    s = cloudsim.admin_ok("POST", "vaults/kv-conf-main/secrets/to-expire/expire")
    assert s["exp"] < time.time()
    props = secrets("kv-conf-main").get_secret("to-expire").properties
    assert props.expires_on.timestamp() < time.time()
    k = cloudsim.admin_ok("PATCH", "vaults/kv-conf-main/keys/ec-key",
                          {"expiresInDays": 5, "tags": {"changed": "yes"}})
    key = keys("kv-conf-main").get_key("ec-key")
    assert key.properties.tags == {"changed": "yes"}
    assert abs(key.properties.expires_on.timestamp() - k["exp"]) < 1
    old = certificates("kv-conf-main").get_certificate("self-signed")
    c = cloudsim.admin_ok("POST", "vaults/kv-conf-main/certificates/self-signed/expire")
    cert = certificates("kv-conf-main").get_certificate("self-signed")
    assert cert.properties.version == c["version"] != old.properties.version
    assert cert.properties.expires_on.timestamp() < time.time()
    after = cloudsim.admin_ok("GET", "stats")
    assert after["secrets"] == stats["secrets"] + 1
    assert after["expired"] >= stats["expired"] + 2


def test_denying_a_vault_at_run_time_answers_forbidden_by_rbac(cloudsim, secrets):
    client = secrets("kv-conf-faults")
    assert client.get_secret("one").name == "one"
    cloudsim.admin_ok("PATCH", "vaults/kv-conf-faults", {"denyAccess": True})
    try:
        with pytest.raises(HttpResponseError) as e:
            client.get_secret("one")
        assert e.value.error.innererror["code"] == "ForbiddenByRbac"
        assert cloudsim.vault("kv-conf-faults")["denyAccess"] is True
    finally:
        cloudsim.admin_ok("PATCH", "vaults/kv-conf-faults", {"denyAccess": False})
    assert client.get_secret("one").name == "one"


def test_reset_restores_the_scenario_and_forgets_added_vaults_faults_and_counters(cloudsim,
                                                                                secrets):
    cloudsim.admin_ok("POST", "vaults/kv-conf-writes/secrets", {"name": "ephemeral"})
    cloudsim.admin_ok("POST", "vaults", {"subscriptionId": SECONDARY, "name": "kv-conf-temp"})
    cloudsim.admin_ok("POST", "faults", {"target": "arm", "status": 503, "count": 9})
    cloudsim.admin_ok("POST", "reset")
    assert cloudsim.admin_ok("GET", "faults") == []
    assert cloudsim.admin_ok("GET", "requests/log") == []
    names = [v["name"] for v in cloudsim.admin_ok("GET", "vaults")]
    assert "kv-conf-temp" not in names and "kv-conf-added" not in names
    with pytest.raises(ResourceNotFoundError):
        secrets("kv-conf-writes").get_secret("ephemeral")
    assert secrets("kv-conf-main").get_secret("db-password").value == "hunter2"
