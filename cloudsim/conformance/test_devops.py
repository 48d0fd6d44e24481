"""Azure DevOps over plain HTTP (requests): projects with $top and x-ms-continuationtoken paging,
service endpoints with their service principal and subscription, variable groups (a Key Vault
linked one included), bearer Entra tokens for Azure DevOps' resource id, PAT basic auth and
the 203 sign-in page a wrong PAT gets."""

import base64

import pytest
import requests

ADO_SCOPE = "499b84ac-1321-427f-aa17-267ca6975798/.default"
PAT = "conf-pat-0123456789"
PRIMARY = "11111111-2222-4333-8444-555555555555"


@pytest.fixture(scope="module")
def ado(cloudsim, credential):
    token = credential.get_token(ADO_SCOPE).token

    def call(path, auth="bearer", **params):
        headers = {}
        if auth == "bearer":
            headers["Authorization"] = f"Bearer {token}"
        elif auth is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(f":{auth}".encode()).decode()
        params.setdefault("api-version", "7.1")
        return requests.get(f"{cloudsim.url}/conf-org/{path}", params=params, headers=headers,
                            verify=cloudsim.ca, timeout=30, allow_redirects=False)

    return call


def test_projects_page_with_continuation_tokens(ado):
    first = ado("_apis/projects", **{"$top": 2})
    assert first.status_code == 200 and first.json()["count"] == 2
    token = first.headers["x-ms-continuationtoken"]
    rest = ado("_apis/projects", **{"$top": 2, "continuationToken": token})
    assert "x-ms-continuationtoken" not in rest.headers
    names = [p["name"] for p in first.json()["value"] + rest.json()["value"]]
    assert names == ["payments", "web", "data"]
    assert all(p["state"] == "wellFormed" for p in first.json()["value"])


def test_a_pat_in_basic_auth_works_and_a_wrong_one_gets_the_sign_in_page(ado):
    assert ado("_apis/projects", auth=PAT).status_code == 200
    wrong = ado("_apis/projects", auth="not-the-pat")
    assert wrong.status_code == 203 and wrong.headers["content-type"].startswith("text/html")
    anonymous = ado("_apis/projects", auth=None)
    assert anonymous.status_code == 401 and anonymous.json()["typeKey"] == \
        "UnauthorizedRequestException"


def test_service_endpoints_name_their_service_principal_and_subscription(ado, cloudsim):
    r = ado("payments/_apis/serviceendpoint/endpoints")
    endpoints = {e["name"]: e for e in r.json()["value"]}
    primary = endpoints["sc-primary"]
    assert primary["type"] == "azurerm" and primary["data"]["subscriptionId"] == PRIMARY
    assert primary["data"]["subscriptionName"] == "Conformance Primary"
    params = primary["authorization"]["parameters"]
    assert params["serviceprincipalid"] == "c0c0c0c0-1111-4222-8333-444444444444"
    assert params["tenantid"] == cloudsim.tenant_id
    wif = endpoints["sc-wif"]
    assert wif["authorization"]["scheme"] == "WorkloadIdentityFederation"
    assert wif["authorization"]["parameters"]["serviceprincipalid"] == cloudsim.client_id
    one = ado(f"payments/_apis/serviceendpoint/endpoints/{primary['id']}")
    assert one.json()["name"] == "sc-primary"


def test_variable_groups_include_a_key_vault_linked_one(ado):
    groups = {g["name"]: g for g in ado("payments/_apis/distributedtask/variablegroups")
              .json()["value"]}
    assert set(groups) == {"vg-plain", "vg-keyvault", "vg-extra"}
    kv = groups["vg-keyvault"]
    assert kv["type"] == "AzureKeyVault" and kv["providerData"]["vault"] == "kv-conf-main"
    endpoint_ids = {e["name"]: e["id"] for e in ado("payments/_apis/serviceendpoint/endpoints")
                    .json()["value"]}
    assert kv["providerData"]["serviceEndpointId"] == endpoint_ids["sc-primary"]
    assert kv["variables"]["db-password"]["isSecret"] is True
    assert kv["variables"]["db-password"]["value"] is None
    plain = groups["vg-plain"]
    assert plain["type"] == "Vsts" and plain["variables"]["ENV"] == {"value": "test"}
    assert plain["variables"]["TOKEN"] == {"isSecret": True, "value": None}
    page = ado("payments/_apis/distributedtask/variablegroups", **{"$top": 1})
    assert page.json()["count"] == 1 and page.headers["x-ms-continuationtoken"] == "1"
    named = ado("payments/_apis/distributedtask/variablegroups", groupName="vg-k*").json()
    assert [g["name"] for g in named["value"]] == ["vg-keyvault"]


def test_an_unknown_project_gets_azure_devops_error_shape(ado):
    r = ado("nope/_apis/serviceendpoint/endpoints")
    assert r.status_code == 404
    assert r.json()["typeKey"] == "ProjectDoesNotExistWithNameException"
    assert "TF200016" in r.json()["message"]
