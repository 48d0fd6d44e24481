"""Key Vault data plane, read side, through Microsoft's azure-keyvault-* SDKs: listing across
pages (empty ones included), versions, gets, certificates with their policy, the 401 challenge,
and the SDK's error types for 404 and 403."""

import base64
import hashlib

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError


def test_secrets_list_pages_through_more_than_one_page_and_matches_the_ground_truth(
        cloudsim, secrets):
    client = secrets("kv-conf-main")
    names = [s.name for s in client.list_properties_of_secrets(max_page_size=7)]
    # 42 own secrets + 1 backing secret per certificate (4).
    assert len(names) == 46
    assert names == sorted(names, key=str.lower)
    assert cloudsim.vault("kv-conf-main")["counts"]["secrets"] == 42


def test_listing_survives_empty_pages_that_still_carry_a_next_link(cloudsim, secrets, keys,
                                                                   certificates):
    cloudsim.admin_ok("DELETE", "requests")
    assert len(list(secrets("kv-conf-pages").list_properties_of_secrets())) == 30 + 26
    assert len(list(keys("kv-conf-pages").list_properties_of_keys())) == 27 + 26
    assert len(list(certificates("kv-conf-pages").list_properties_of_certificates())) == 26
    pages = [e for e in cloudsim.log("vault:kv-conf-pages")
             if e["path"] == "/certificates" and e["status"] == 200]
    # empty, 25, empty, 1: the SDK followed every nextLink, empty pages included.
    assert len(pages) >= 4


def test_the_sdk_answers_the_401_challenge_with_a_token_for_the_vault(cloudsim, secrets):
    # No other test talks to this vault, so the SDK has no cached challenge for it yet.
    cloudsim.admin_ok("DELETE", "requests")
    secret = secrets("kv-conf-challenge").get_secret("first-contact")
    assert secret.value == "hello"
    log = cloudsim.log("vault:kv-conf-challenge")
    assert [e["status"] for e in log][:2] == [401, 200], log


def test_secret_versions_are_listed_and_each_can_be_fetched(secrets):
    client = secrets("kv-conf-main")
    versions = list(client.list_properties_of_secret_versions("db-password"))
    assert len(versions) == 3
    current = client.get_secret("db-password")
    assert current.properties.version in {v.version for v in versions}
    assert current.properties.content_type == "text/plain"
    assert current.properties.tags == {"env": "test"}
    assert current.properties.expires_on is not None
    oldest = min(versions, key=lambda v: v.created_on)
    old = client.get_secret("db-password", oldest.version)
    assert old.properties.version == oldest.version
    assert old.properties.expires_on < current.properties.expires_on


def test_a_missing_secret_raises_resource_not_found_with_secret_not_found(secrets):
    with pytest.raises(ResourceNotFoundError) as e:
        secrets("kv-conf-main").get_secret("no-such-secret")
    assert e.value.status_code == 404
    assert e.value.error.code == "SecretNotFound"


def test_missing_keys_and_certificates_raise_their_not_found_codes(keys, certificates):
    with pytest.raises(ResourceNotFoundError) as e:
        keys("kv-conf-main").get_key("no-such-key")
    assert e.value.error.code == "KeyNotFound"
    with pytest.raises(ResourceNotFoundError) as e:
        certificates("kv-conf-main").get_certificate("no-such-cert")
    assert e.value.error.code == "CertificateNotFound"


def test_a_disabled_secret_value_is_forbidden(secrets):
    with pytest.raises(HttpResponseError) as e:
        secrets("kv-conf-main").get_secret("disabled-secret")
    assert e.value.status_code == 403
    assert e.value.error.code == "Forbidden"


def test_keys_come_back_with_their_public_material(keys):
    client = keys("kv-conf-main")
    rsa = client.get_key("rsa-key")
    assert rsa.key_type == "RSA"
    assert len(rsa.key.n) == 256 and rsa.key.e == b"\x01\x00\x01"
    ec = client.get_key("ec-key")
    assert ec.key_type == "EC" and ec.key.crv == "P-256"
    assert len(ec.key.x) == 32 and len(ec.key.y) == 32
    assert len(list(client.list_properties_of_key_versions("rsa-key"))) == 2
    names = {k.name for k in client.list_properties_of_keys()}
    assert {"rsa-key", "ec-key", "api-tls"} <= names


def test_a_certificate_carries_its_der_thumbprint_and_policy(certificates, secrets):
    client = certificates("kv-conf-main")
    cert = client.get_certificate("api-tls")
    assert cert.properties.x509_thumbprint == hashlib.sha1(cert.cer).digest()
    assert cert.policy.subject == "CN=api.contoso.com, O=Contoso" or \
        set(cert.policy.subject.split(", ")) == {"CN=api.contoso.com", "O=Contoso"}
    assert cert.policy.san_dns_names == ["api.contoso.com", "www.contoso.com"]
    assert cert.policy.issuer_name == "Unknown"
    assert cert.key_id.endswith(f"/keys/api-tls/{cert.properties.version}")
    assert cert.secret_id.endswith(f"/secrets/api-tls/{cert.properties.version}")
    policy = client.get_certificate_policy("api-tls")
    assert policy.san_dns_names == cert.policy.san_dns_names
    assert policy.validity_in_months >= 1
    assert client.get_certificate_policy("self-signed").issuer_name == "Self"
    versions = list(client.list_properties_of_certificate_versions("api-tls"))
    assert len(versions) == 2
    backing = secrets("kv-conf-main").get_secret("api-tls")
    assert "BEGIN CERTIFICATE" in backing.value
    assert base64.b64encode(cert.cer).decode()[:40] in backing.value.replace("\n", "")


def test_a_firewalled_vault_answers_403_forbidden_by_firewall_after_the_challenge(secrets):
    with pytest.raises(HttpResponseError) as e:
        list(secrets("kv-conf-firewall").list_properties_of_secrets())
    assert e.value.status_code == 403
    assert e.value.error.code == "Forbidden"
    assert e.value.error.innererror["code"] == "ForbiddenByFirewall"


def test_an_rbac_vault_that_denies_the_identity_answers_forbidden_by_rbac(secrets):
    with pytest.raises(HttpResponseError) as e:
        secrets("kv-conf-rbac-deny").get_secret("forbidden")
    assert e.value.status_code == 403
    assert e.value.error.innererror["code"] == "ForbiddenByRbac"
    assert "Microsoft.KeyVault/vaults/secrets/getSecret/action" in e.value.error.message


def test_an_access_policy_vault_that_denies_the_identity_answers_forbidden_by_policy(secrets):
    with pytest.raises(HttpResponseError) as e:
        list(secrets("kv-conf-policy-deny").list_properties_of_secrets())
    assert e.value.status_code == 403
    assert e.value.error.innererror["code"] == "ForbiddenByPolicy"
    assert "does not have secrets list permission" in e.value.error.message


@pytest.mark.parametrize("api_version", ["7.0", "7.2", "7.4", "7.5", "7.6", "2025-07-01",
                                         "2026-04-01"])
def test_every_supported_api_version_lists_and_gets(secrets, api_version):
    client = secrets("kv-conf-main", api_version=api_version)
    assert len(list(client.list_properties_of_secrets())) == 46
    assert client.get_secret("db-password").value == "hunter2"


def test_responses_echo_the_client_request_id(secrets):
    client = secrets("kv-conf-main")
    seen = {}

    def hook(response):
        seen.update(response.http_response.headers)

    client.get_secret("db-password", headers={"x-ms-client-request-id": "conformance-42"},
                      raw_response_hook=hook)
    assert seen["x-ms-client-request-id"] == "conformance-42"
    assert seen["x-ms-request-id"]
    assert seen["x-ms-keyvault-service-version"]
