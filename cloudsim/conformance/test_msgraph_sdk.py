"""Microsoft Graph v1.0 through msgraph-sdk, Microsoft's Graph SDK for Python, pointed at cloudsim.

The SDK takes a custom host without patching: its GraphServiceClient uses the request adapter's
base URL and only falls back to https://graph.microsoft.com/v1.0 when that is empty
(msgraph/generated/base_graph_service_client.py), and the adapter takes it from the httpx client
(kiota_http/httpx_request_adapter.py). So the client here is an httpx.AsyncClient with
base_url=<cloudsim>/v1.0 that trusts cloudsim's CA, given Graph's default middleware by
msgraph_core.GraphClientFactory. Kiota's AzureIdentityAuthenticationProvider sends the token to
any host when allowed_hosts is empty (kiota_abstractions AllowedHostsValidator), and the scope
is passed explicitly, as it would otherwise be derived from the request host
(https://127.0.0.1/.default). Every request the SDK sends is checked to go to cloudsim's
loopback address: nothing reaches graph.microsoft.com.
"""

import asyncio
import datetime
import json
import ssl
import uuid
from urllib.parse import urlsplit

import httpx
import pytest
from azure.core.exceptions import ClientAuthenticationError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.applications.applications_request_builder import (
    ApplicationsRequestBuilder,
)
from msgraph.generated.applications.item.add_password.add_password_post_request_body import (
    AddPasswordPostRequestBody,
)
from msgraph.generated.applications.item.remove_password.remove_password_post_request_body \
    import RemovePasswordPostRequestBody
from msgraph.generated.models.application import Application
from msgraph.generated.models.application_collection_response import (
    ApplicationCollectionResponse,
)
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_credential import PasswordCredential
from msgraph.graph_request_adapter import options as graph_middleware_options
from msgraph_core import GraphClientFactory
from msgraph_core.tasks.page_iterator import PageIterator

from conftest import SCENARIO
from test_graph import GRAPH_SCOPE, ROTATING, ROTATING_OBJECT, password_credential

MISSING = "00000000-0000-0000-0000-000000000000"


def run(sim, credential, body):
    """Runs `await body(client)` with a GraphServiceClient aimed at cloudsim, in a fresh event
    loop (httpx's async connection pool belongs to the loop that opened it)."""
    host = urlsplit(sim.url).hostname
    sent = []

    async def only_cloudsim(request: httpx.Request):
        assert request.url.host == host, f"msgraph-sdk tried to reach {request.url}"
        sent.append(request)

    async def main():
        http = httpx.AsyncClient(
            base_url=f"{sim.url}/v1.0",
            verify=ssl.create_default_context(cafile=sim.ca),
            http2=True,
            timeout=httpx.Timeout(30),
            event_hooks={"request": [only_cloudsim]},
        )
        http = GraphClientFactory.create_with_default_middleware(
            client=http, options=graph_middleware_options)
        auth = AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH_SCOPE])
        client = GraphServiceClient(request_adapter=GraphRequestAdapter(auth, http))
        try:
            return await body(client)
        finally:
            await http.aclose()

    out = asyncio.run(main())
    assert sent, "msgraph-sdk sent no request"
    return out


def test_the_sdk_pages_applications_through_odata_next_link(cloudsim, credential):
    async def body(client):
        config = RequestConfiguration(
            query_parameters=ApplicationsRequestBuilder.ApplicationsRequestBuilderGetQueryParameters(
                top=2, select=["id", "appId", "displayName"]))
        page = await client.applications.get(request_configuration=config)
        pages = [page]
        while page.odata_next_link:
            page = await client.applications.with_url(page.odata_next_link).get()
            pages.append(page)

        # The SDK's own iterator over the same collection.
        seen = []
        first = await client.applications.get(request_configuration=config)
        iterator = PageIterator(first, client.request_adapter)
        await iterator.iterate(lambda app: seen.append(app) or True)
        return pages, seen

    before = len(cloudsim.log("graph"))
    pages, iterated = run(cloudsim, credential, body)
    assert all(isinstance(p, ApplicationCollectionResponse) for p in pages)
    assert len(pages) == 3 and all(len(p.value) <= 2 for p in pages)
    assert "$skiptoken=" in pages[0].odata_next_link and pages[-1].odata_next_link is None
    names = [a.display_name for p in pages for a in p.value]
    assert names[:3] == ["CertifyClouds", "conf-rotating-app", "conf-cert-app"]
    assert len(names) == len(set(names)) == 6
    assert all(isinstance(a, Application) for p in pages for a in p.value)
    assert [a.display_name for a in iterated] == names
    # cloudsim served every page, and the SDK sent its nextLink back unchanged.
    served = cloudsim.log("graph")[before:]
    assert [e["status"] for e in served] == [200] * 6
    assert all(e["path"].endswith("/applications") and "$top=2" in e["query"] for e in served)
    assert sum("$skiptoken=" in e["query"] for e in served) == 4


def test_the_sdk_gets_an_application_by_id_with_typed_credentials(cloudsim, credential):
    app = run(cloudsim, credential,
              lambda client: client.applications.by_application_id(ROTATING_OBJECT).get())
    assert isinstance(app, Application)
    assert app.id == ROTATING_OBJECT and app.app_id == ROTATING
    assert app.display_name == "conf-rotating-app"
    current = next(p for p in app.password_credentials if p.display_name == "current")
    assert isinstance(current, PasswordCredential) and current.secret_text is None
    assert isinstance(current.key_id, uuid.UUID) and current.hint == "con"
    assert isinstance(current.end_date_time, datetime.datetime)
    assert current.end_date_time.tzinfo is not None


def test_add_password_through_the_sdk_gets_tokens_until_remove_password(cloudsim, credential):
    end = datetime.datetime(2099, 1, 1, tzinfo=datetime.timezone.utc)

    async def add(client):
        body = AddPasswordPostRequestBody(
            password_credential=PasswordCredential(display_name="sdk-rotated", end_date_time=end))
        return await client.applications.by_application_id(ROTATING_OBJECT).add_password.post(
            body)

    added = run(cloudsim, credential, add)
    assert isinstance(added, PasswordCredential) and isinstance(added.key_id, uuid.UUID)
    assert added.secret_text and added.hint == added.secret_text[:3]
    assert added.display_name == "sdk-rotated" and added.end_date_time == end

    # The new secret works for the client-credentials grant against cloudsim's Entra, and the
    # token it gets is accepted by Graph through the SDK.
    rotated = password_credential(cloudsim, ROTATING, added.secret_text)
    assert rotated.get_token(GRAPH_SCOPE).token
    app = run(cloudsim, rotated,
              lambda client: client.applications.by_application_id(ROTATING_OBJECT).get())
    assert added.key_id in [p.key_id for p in app.password_credentials]
    assert all(p.secret_text is None for p in app.password_credentials)

    async def remove(client):
        body = RemovePasswordPostRequestBody(key_id=added.key_id)
        return await client.applications.by_application_id(
            ROTATING_OBJECT).remove_password.post(body)

    assert run(cloudsim, credential, remove) is None  # 204 No Content
    with pytest.raises(ClientAuthenticationError) as e:
        password_credential(cloudsim, ROTATING, added.secret_text).get_token(GRAPH_SCOPE)
    assert "AADSTS7000215" in str(e.value)
    app = run(cloudsim, credential,
              lambda client: client.applications.by_application_id(ROTATING_OBJECT).get())
    assert added.key_id not in [p.key_id for p in app.password_credentials]


def test_the_sdk_lists_service_principals(cloudsim, credential):
    async def body(client):
        listed = await client.service_principals.get()
        sps = list(listed.value)
        while listed.odata_next_link:
            listed = await client.service_principals.with_url(listed.odata_next_link).get()
            sps.extend(listed.value)
        mine = next(sp for sp in sps if sp.app_id == cloudsim.client_id)
        one = await client.service_principals.by_service_principal_id(mine.id).get()
        return mine, one

    mine, one = run(cloudsim, credential, body)
    assert mine.service_principal_type == "Application"
    assert mine.id == json.loads(SCENARIO.read_text())["servicePrincipalObjectId"]
    assert one.id == mine.id and one.app_id == cloudsim.client_id


def test_a_missing_application_raises_the_sdks_odata_error(cloudsim, credential):
    async def body(client):
        with pytest.raises(ODataError) as e:
            await client.applications.by_application_id(MISSING).get()
        return e.value

    err = run(cloudsim, credential, body)
    assert err.response_status_code == 404
    assert err.error.code == "Request_ResourceNotFound"
    assert MISSING in err.error.message
    inner = err.error.inner_error
    assert inner is not None and inner.request_id
    assert isinstance(inner.date, datetime.datetime)
