"""Entra ID tokens through azure-identity, and Resource Manager through azure-mgmt-resource
(subscriptions) and azure-mgmt-keyvault (vaults: list with paging, list by resource group, get),
including the SDKs' error types."""

import pytest
from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError

from conftest import make_credential

PRIMARY = "11111111-2222-4333-8444-555555555555"
SECONDARY = "66666666-7777-4888-9999-000000000000"


def test_the_credential_gets_a_token_for_key_vault_and_resource_manager(credential):
    for scope in ("https://vault.azure.net/.default", "https://management.azure.com/.default"):
        token = credential.get_token(scope)
        assert token.token.count(".") == 2
        assert token.expires_on > 0


def test_a_wrong_secret_raises_client_authentication_error_with_aadsts7000215(cloudsim):
    with pytest.raises(ClientAuthenticationError) as e:
        make_credential(cloudsim, secret="not-the-secret").get_token(
            "https://vault.azure.net/.default")
    assert "AADSTS7000215" in str(e.value)


def test_an_expired_secret_raises_client_authentication_error_with_aadsts7000222(cloudsim):
    cloudsim.admin_ok("POST", "app", {"clientSecretExpired": True})
    try:
        with pytest.raises(ClientAuthenticationError) as e:
            make_credential(cloudsim).get_token("https://vault.azure.net/.default")
        assert "AADSTS7000222" in str(e.value)
    finally:
        cloudsim.admin_ok("POST", "app", {"clientSecretExpired": False})
    assert make_credential(cloudsim).get_token("https://vault.azure.net/.default").token


def test_subscriptions_are_listed_and_fetched(subscriptions):
    subs = list(subscriptions.subscriptions.list())
    assert [s.display_name for s in subs] == [
        "Conformance Primary", "Conformance Secondary", "Conformance Empty"]
    assert all(s.state == "Enabled" for s in subs)
    one = subscriptions.subscriptions.get(PRIMARY)
    assert one.subscription_id == PRIMARY and one.display_name == "Conformance Primary"
    assert [t.tenant_id for t in subscriptions.tenants.list()] == [subs[0].tenant_id]


def test_vaults_list_by_subscription_pages_through_next_link(cloudsim, keyvault_mgmt):
    cloudsim.admin_ok("DELETE", "requests")
    vaults = list(keyvault_mgmt(PRIMARY).vaults.list_by_subscription())
    assert [v.name for v in vaults] == [
        "kv-conf-main", "kv-conf-pages", "kv-conf-firewall", "kv-conf-rbac-deny",
        "kv-conf-policy-deny"]
    arm = [e for e in cloudsim.log("arm") if e["path"].endswith("/vaults")]
    assert len(arm) == 3, arm  # armPageSize 2: three pages
    assert all(v.properties.vault_uri.startswith("https://127.0.0.1:") for v in vaults)
    firewalled = next(v for v in vaults if v.name == "kv-conf-firewall")
    assert firewalled.properties.public_network_access == "Disabled"


def test_the_generic_vault_list_uses_the_resources_endpoint(keyvault_mgmt):
    names = [v.name for v in keyvault_mgmt(SECONDARY).vaults.list()]
    assert "kv-conf-writes" in names and len(names) == 6


def test_vaults_list_by_resource_group_and_get(keyvault_mgmt):
    client = keyvault_mgmt(PRIMARY)
    assert [v.name for v in client.vaults.list_by_resource_group("rg-conf")] == [
        "kv-conf-main", "kv-conf-pages"]
    vault = client.vaults.get("rg-conf", "kv-conf-main")
    assert vault.properties.enable_rbac_authorization is True
    assert vault.properties.sku.name == "standard"
    assert vault.id.endswith("/resourceGroups/rg-conf/providers/Microsoft.KeyVault/vaults/"
                             "kv-conf-main")


def test_a_missing_vault_or_resource_group_raises_resource_not_found(keyvault_mgmt):
    client = keyvault_mgmt(PRIMARY)
    with pytest.raises(ResourceNotFoundError) as e:
        client.vaults.get("rg-conf", "kv-nope")
    assert e.value.error.code == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError) as e:
        list(client.vaults.list_by_resource_group("rg-nope"))
    assert e.value.error.code == "ResourceGroupNotFound"
