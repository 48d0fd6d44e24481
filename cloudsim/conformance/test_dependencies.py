"""Resource Manager surfaces that reference Key Vault, over plain HTTP (requests) with an
azure-identity token for Resource Manager: sites with config/appsettings/list and both forms of
@Microsoft.KeyVault(...), Container Apps listSecrets, API Management named values, Application
Gateway certificates, and Resource Graph. Every reference is followed to the data plane with
azure-keyvault-secrets."""

import re

import pytest
import requests

PRIMARY = "11111111-2222-4333-8444-555555555555"
ARM_SCOPE = "https://management.azure.com/.default"
API = "2023-12-01"


class Arm:
    def __init__(self, sim, credential):
        self.sim = sim
        self.credential = credential

    def call(self, method, path, api_version=API, **kwargs):
        url = path if path.startswith("https://") else f"{self.sim.url}{path}"
        params = None if "api-version=" in url else {"api-version": api_version}
        token = self.credential.get_token(ARM_SCOPE).token
        return requests.request(method, url, params=params, verify=self.sim.ca, timeout=30,
                                headers={"Authorization": f"Bearer {token}"}, **kwargs)

    def all(self, path):
        out, url = [], path
        while url:
            r = self.call("GET", url)
            assert r.status_code == 200, r.text
            out.extend(r.json()["value"])
            url = r.json().get("nextLink")
        return out


@pytest.fixture(scope="module")
def arm(cloudsim, credential):
    return Arm(cloudsim, credential)


def rg_path(provider):
    return f"/subscriptions/{PRIMARY}/resourceGroups/rg-conf-apps/providers/{provider}"


def secret_at(secrets, cloudsim, uri):
    """Reads the secret a Key Vault secret URI names, through the SDK."""
    m = re.fullmatch(r"(https://127\.0\.0\.1:\d+)/secrets/([^/]+)/?([0-9a-f]*)", uri)
    assert m, uri
    vault = next(v["name"] for v in cloudsim.admin_ok("GET", "vaults")
                 if v["vaultUri"].rstrip("/") == m.group(1))
    return secrets(vault).get_secret(m.group(2), m.group(3) or None)


def test_sites_list_by_subscription_with_their_kinds(arm):
    sites = arm.all(f"/subscriptions/{PRIMARY}/providers/Microsoft.Web/sites")
    assert {(s["name"], s["kind"]) for s in sites} == {("app-conf-web", "app"),
                                                        ("func-conf-jobs", "functionapp")}
    one = arm.call("GET", rg_path("Microsoft.Web/sites/app-conf-web")).json()
    assert one["type"] == "Microsoft.Web/sites" and one["identity"]["type"] == "SystemAssigned"
    missing = arm.call("GET", rg_path("Microsoft.Web/sites/nope"))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ResourceNotFound"


def test_app_settings_carry_key_vault_references_in_both_forms(arm, cloudsim, secrets):
    r = arm.call("POST", rg_path("Microsoft.Web/sites/app-conf-web/config/appsettings/list"))
    assert r.status_code == 200, r.text
    props = r.json()["properties"]
    pinned = re.fullmatch(r"@Microsoft\.KeyVault\(SecretUri=(.+)\)", props["DB_PASSWORD"]).group(1)
    assert re.search(r"/secrets/db-password/[0-9a-f]{32}$", pinned)
    assert secret_at(secrets, cloudsim, pinned).value == "hunter2"
    latest = props["DB_PASSWORD_LATEST"][len("@Microsoft.KeyVault(SecretUri="):-1]
    assert latest.endswith("/secrets/db-password/")
    assert secret_at(secrets, cloudsim, latest).value == "hunter2"
    assert props["DB_PASSWORD_BY_NAME"] == \
        "@Microsoft.KeyVault(VaultName=kv-conf-main;SecretName=db-password)"
    assert props["GONE"] == \
        "@Microsoft.KeyVault(SecretUri=https://kv-conf-gone.vault.azure.net/secrets/nothing/)"
    assert props["WEBSITE_RUN_FROM_PACKAGE"] == "1"
    func = arm.call("POST", rg_path("Microsoft.Web/sites/func-conf-jobs/config/appsettings/list"))
    assert re.fullmatch(r"@Microsoft\.KeyVault\(VaultName=kv-conf-main;SecretName=api-tls;"
                        r"SecretVersion=[0-9a-f]{32}\)", func.json()["properties"]["TLS"])


def test_container_app_secrets_name_their_vault_url_and_identity(arm, cloudsim, secrets):
    r = arm.call("POST", rg_path("Microsoft.App/containerApps/ca-conf-api/listSecrets"),
                 api_version="2024-03-01")
    db, plain = r.json()["value"]
    assert db["identity"] == "system" and "value" not in db
    assert secret_at(secrets, cloudsim, db["keyVaultUrl"]).value == "hunter2"
    assert plain == {"name": "plain", "value": "not-a-reference"}


def test_api_management_named_values_point_at_key_vault(arm, cloudsim, secrets):
    values = arm.all(rg_path("Microsoft.ApiManagement/service/apim-conf/namedValues"))
    by_name = {v["name"]: v["properties"] for v in values}
    assert by_name["backend-key"]["secret"] is True
    uri = by_name["backend-key"]["keyVault"]["secretIdentifier"]
    assert secret_at(secrets, cloudsim, uri).value == "hunter2"
    assert by_name["greeting"] == {"displayName": "greeting", "secret": False, "tags": [],
                                   "value": "hello"}


def test_application_gateway_certificates_use_key_vault_secret_ids(arm, cloudsim, secrets):
    gw = arm.call("GET", rg_path("Microsoft.Network/applicationGateways/agw-conf"),
                  api_version="2024-05-01").json()
    cert = gw["properties"]["sslCertificates"][0]
    uri = cert["properties"]["keyVaultSecretId"]
    backing = secret_at(secrets, cloudsim, uri)
    assert "BEGIN CERTIFICATE" in backing.value and backing.properties.managed


def graph_query(arm, body):
    return arm.call("POST", "/providers/Microsoft.ResourceGraph/resources",
                    api_version="2022-10-01", json=body)


def test_resource_graph_answers_a_type_filter_with_projection(arm):
    r = graph_query(arm, {"subscriptions": [PRIMARY], "query":
                          "Resources | where type =~ 'Microsoft.Web/sites' | project name, kind"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["totalRecords"] == 2 and body["count"] == 2 and body["resultTruncated"] == "false"
    assert sorted(body["data"], key=lambda x: x["name"]) == [
        {"name": "app-conf-web", "kind": "app"}, {"name": "func-conf-jobs", "kind": "functionapp"}]


def test_resource_graph_pages_with_skip_token_and_lists_vaults(arm):
    query = ("Resources | where type in~ ('microsoft.keyvault/vaults', "
             "'microsoft.network/applicationgateways') | project id, type")
    seen, token = [], None
    while True:
        options = {"$top": 2, **({"$skipToken": token} if token else {})}
        body = graph_query(arm, {"subscriptions": [PRIMARY], "query": query,
                                 "options": options}).json()
        seen.extend(body["data"])
        token = body.get("$skipToken")
        if not token:
            break
    types = [row["type"] for row in seen]
    assert types.count("microsoft.keyvault/vaults") == 5
    assert types.count("microsoft.network/applicationgateways") == 1


def test_resource_graph_refuses_what_it_does_not_parse(arm):
    r = graph_query(arm, {"query": "Resources | summarize count() by type"})
    assert r.status_code == 400
    details = r.json()["error"]["details"]
    assert details[0]["code"] == "InvalidQuery" and "summarize" in details[1]["message"]
