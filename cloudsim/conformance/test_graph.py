"""Microsoft Graph v1.0 over plain HTTP (requests) with an azure-identity token for
https://graph.microsoft.com: applications and service principals, $top paging through
@odata.nextLink, $filter, Graph's error shape, addPassword / removePassword feeding the
client-credentials grant, and B2C trustFramework key sets."""

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential

from conftest import make_credential

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
ROTATING = "c0c0c0c0-1111-4222-8333-444444444444"
ROTATING_OBJECT = "c0c0c0c0-aaaa-4bbb-8ccc-000000000001"
B2C_TENANT = "b2c0b2c0-1111-4222-8333-444444444444"


class Graph:
    def __init__(self, sim, credential):
        self.base = sim.url
        self.ca = sim.ca
        self.credential = credential

    def call(self, method, path_or_url, **kwargs):
        url = path_or_url if path_or_url.startswith("https://") else f"{self.base}/{path_or_url}"
        token = self.credential.get_token(GRAPH_SCOPE).token
        headers = {"Authorization": f"Bearer {token}", "client-request-id": "conformance-1"}
        return requests.request(method, url, headers=headers, verify=self.ca, timeout=30, **kwargs)

    def pages(self, path):
        url, pages = path, []
        while url:
            r = self.call("GET", url)
            assert r.status_code == 200, r.text
            body = r.json()
            pages.append(body["value"])
            url = body.get("@odata.nextLink")
        return pages


@pytest.fixture(scope="module")
def graph(cloudsim, credential):
    return Graph(cloudsim, credential)


def password_credential(sim, client_id, secret):
    return ClientSecretCredential(sim.tenant_id, client_id, secret,
                                  authority=sim.env["AZURE_AUTHORITY_HOST"],
                                  connection_verify=sim.ca, disable_instance_discovery=True)


def test_applications_page_through_odata_next_link_with_top(graph, cloudsim):
    pages = graph.pages("v1.0/applications?$top=2")
    names = [a["displayName"] for page in pages for a in page]
    assert len(pages) == 3 and all(len(p) <= 2 for p in pages)
    assert names[:3] == ["CertifyClouds", "conf-rotating-app", "conf-cert-app"]
    assert len(names) == len(set(names)) == 6
    assert pages[0] and "$skiptoken=" in graph.call("GET", "v1.0/applications?$top=2").json()[
        "@odata.nextLink"]


def test_an_application_carries_graph_shaped_credentials_without_secret_text(graph):
    r = graph.call("GET", f"v1.0/applications/{ROTATING_OBJECT}")
    assert r.status_code == 200
    app = r.json()
    assert app["appId"] == ROTATING and app["@odata.context"].endswith("applications/$entity")
    current, old = app["passwordCredentials"]
    assert current["displayName"] == "current" and current["hint"] == "con"
    assert current["secretText"] is None
    assert set(current) >= {"keyId", "displayName", "startDateTime", "endDateTime", "hint"}
    assert old["endDateTime"] < current["endDateTime"]
    cert_app = graph.call("GET", "v1.0/applications?$filter=appId eq "
                          "'c1c1c1c1-1111-4222-8333-444444444444'").json()["value"][0]
    key = cert_app["keyCredentials"][0]
    assert key["type"] == "AsymmetricX509Cert" and key["usage"] == "Verify"
    assert len(key["customKeyIdentifier"]) == 40


def test_filter_by_app_id_and_get_by_app_id_key(graph):
    r = graph.call("GET", f"v1.0/applications?$filter=appId eq '{ROTATING}'")
    assert [a["id"] for a in r.json()["value"]] == [ROTATING_OBJECT]
    r = graph.call("GET", f"v1.0/applications(appId='{ROTATING}')")
    assert r.status_code == 200 and r.json()["id"] == ROTATING_OBJECT
    r = graph.call("GET", "v1.0/applications?$filter=startswith(displayName,'conf')")
    assert r.status_code == 400 and r.json()["error"]["code"] == "Request_UnsupportedQuery"


def test_service_principals_are_listed_and_fetched(graph, cloudsim):
    sps = [sp for page in graph.pages("v1.0/servicePrincipals") for sp in page]
    mine = next(sp for sp in sps if sp["appId"] == cloudsim.client_id)
    assert mine["servicePrincipalType"] == "Application"
    one = graph.call("GET", f"v1.0/servicePrincipals/{mine['id']}").json()
    assert one["appId"] == cloudsim.client_id


def test_an_unknown_object_gets_graphs_error_shape(graph):
    r = graph.call("GET", "v1.0/applications/00000000-0000-0000-0000-000000000000")
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["code"] == "Request_ResourceNotFound"
    assert set(err["innerError"]) == {"date", "request-id", "client-request-id"}
    assert err["innerError"]["client-request-id"] == "conformance-1"
    assert r.headers["request-id"] == err["innerError"]["request-id"]


def test_graph_refuses_a_missing_or_foreign_token(cloudsim, credential):
    r = requests.get(f"{cloudsim.url}/v1.0/applications", verify=cloudsim.ca, timeout=10)
    assert r.status_code == 401 and r.json()["error"]["code"] == "InvalidAuthenticationToken"
    vault_token = credential.get_token("https://vault.azure.net/.default").token
    r = requests.get(f"{cloudsim.url}/v1.0/applications", verify=cloudsim.ca, timeout=10,
                     headers={"Authorization": f"Bearer {vault_token}"})
    assert r.status_code == 401 and "audience" in r.json()["error"]["message"]


def test_an_expired_secret_fails_and_the_current_one_works(cloudsim):
    with pytest.raises(ClientAuthenticationError) as e:
        password_credential(cloudsim, ROTATING, "conf-app~Old-0").get_token(GRAPH_SCOPE)
    assert "AADSTS7000222" in str(e.value)
    assert password_credential(cloudsim, ROTATING, "conf-app~Secret-1").get_token(GRAPH_SCOPE)


def test_add_password_works_for_tokens_and_remove_password_stops_it(graph, cloudsim):
    r = graph.call("POST", f"v1.0/applications/{ROTATING_OBJECT}/addPassword",
                   json={"passwordCredential": {"displayName": "rotated",
                                                "endDateTime": "2099-01-01T00:00:00Z"}})
    assert r.status_code == 200, r.text
    added = r.json()
    assert added["secretText"] and added["hint"] == added["secretText"][:3]
    assert added["endDateTime"] == "2099-01-01T00:00:00Z"
    token = password_credential(cloudsim, ROTATING, added["secretText"]).get_token(GRAPH_SCOPE)
    assert token.token
    listed = graph.call("GET", f"v1.0/applications/{ROTATING_OBJECT}").json()
    assert added["keyId"] in [p["keyId"] for p in listed["passwordCredentials"]]
    assert all(p["secretText"] is None for p in listed["passwordCredentials"])

    r = graph.call("POST", f"v1.0/applications/{ROTATING_OBJECT}/removePassword",
                   json={"keyId": added["keyId"]})
    assert r.status_code == 204
    with pytest.raises(ClientAuthenticationError) as e:
        password_credential(cloudsim, ROTATING, added["secretText"]).get_token(GRAPH_SCOPE)
    assert "AADSTS7000215" in str(e.value)


def test_the_admin_api_expires_an_app_secret(cloudsim):
    out = cloudsim.admin_ok("POST", f"apps/{ROTATING}/passwordCredentials",
                            {"secret": "conf-app~Admin-2", "expiresInDays": 5})
    assert password_credential(cloudsim, ROTATING, "conf-app~Admin-2").get_token(GRAPH_SCOPE)
    cloudsim.admin_ok("POST", f"apps/{ROTATING}/credentials/{out['keyId']}/expire")
    with pytest.raises(ClientAuthenticationError) as e:
        password_credential(cloudsim, ROTATING, "conf-app~Admin-2").get_token(
            "https://vault.azure.net/.default")
    assert "AADSTS7000222" in str(e.value)


def test_a_b2c_tenant_token_sees_its_apps_and_policy_key_sets(cloudsim):
    cred = ClientSecretCredential(B2C_TENANT, "b2c1b2c1-1111-4222-8333-444444444444",
                                  "b2c~Secret-1", authority=cloudsim.env["AZURE_AUTHORITY_HOST"],
                                  connection_verify=cloudsim.ca, disable_instance_discovery=True)
    b2c = Graph(cloudsim, cred)
    apps = b2c.call("GET", "v1.0/applications").json()["value"]
    assert [a["displayName"] for a in apps] == ["b2c-management"]
    for version in ("beta", "v1.0"):
        sets = b2c.call("GET", f"{version}/trustFramework/keySets").json()["value"]
        assert [s["id"] for s in sets] == ["B2C_1A_TokenSigningKeyContainer",
                                          "B2C_1A_TokenEncryptionKeyContainer"]
    enc = b2c.call("GET", "beta/trustFramework/keySets/B2C_1A_TokenEncryptionKeyContainer").json()
    key = enc["keys"][0]
    assert key["use"] == "enc" and key["exp"] < key["nbf"] + 31 * 86400
    org = b2c.call("GET", "v1.0/organization").json()["value"][0]
    assert org["id"] == B2C_TENANT and org["tenantType"] == "AAD B2C"


def test_the_home_tenant_has_no_trust_framework(graph):
    r = graph.call("GET", "beta/trustFramework/keySets")
    assert r.status_code == 400


def test_an_injected_graph_fault_is_answered_in_graph_shape_with_retry_after(graph, cloudsim):
    cloudsim.admin_ok("POST", "faults", {"target": "graph", "status": 429, "retryAfter": 3})
    r = graph.call("GET", "v1.0/applications")
    assert r.status_code == 429 and r.headers["Retry-After"] == "3"
    assert r.json()["error"]["code"] == "TooManyRequests"
    assert graph.call("GET", "v1.0/applications").status_code == 200
