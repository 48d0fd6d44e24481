"""Entra ID beyond client secrets, through azure-identity: the client-assertion grant
(CertificateCredential, which MSAL signs with PS256 and x5t#S256, and ClientAssertionCredential
with an RS256 assertion signed by the test), its AADSTS errors, and managed identity through
the App Service endpoint (IDENTITY_ENDPOINT + IDENTITY_HEADER) and the IMDS path."""

import base64
import datetime
import hashlib
import json
import os
import time
import uuid

import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import (CertificateCredential, ClientAssertionCredential,
                            ClientSecretCredential, ManagedIdentityCredential)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

CERT_APP = "c1c1c1c1-1111-4222-8333-444444444444"
UAMI = "d0d0d0d0-1111-4222-8333-444444444444"
VAULT_SCOPE = "https://vault.azure.net/.default"


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def make_certificate(days: int = 30):
    """A fresh RSA key and a self-signed certificate for it: (key PEM, cert PEM, cert)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"conf-{uuid.uuid4()}")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=days))
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM), cert


@pytest.fixture(scope="module")
def registered(cloudsim):
    """A certificate registered on conf-cert-app through the admin API."""
    key_pem, cert_pem, cert = make_certificate()
    out = cloudsim.admin_ok("POST", f"apps/{CERT_APP}/keyCredentials",
                            {"certificatePem": cert_pem.decode(), "displayName": "conformance"})
    assert out["thumbprint"] == cert.fingerprint(hashes.SHA1()).hex().upper()
    return key_pem, cert_pem, cert


def certificate_credential(cloudsim, key_pem, cert_pem):
    return CertificateCredential(cloudsim.tenant_id, CERT_APP, certificate_data=key_pem + cert_pem,
                                 authority=cloudsim.env["AZURE_AUTHORITY_HOST"],
                                 connection_verify=cloudsim.ca, disable_instance_discovery=True)


def assertion(cloudsim, key_pem, cert, **overrides):
    now = int(time.time())
    claims = {"aud": f"{cloudsim.url}/{cloudsim.tenant_id}/oauth2/v2.0/token", "iss": CERT_APP,
              "sub": CERT_APP, "jti": str(uuid.uuid4()), "nbf": now, "exp": now + 600}
    claims.update(overrides)
    x5t = base64.urlsafe_b64encode(cert.fingerprint(hashes.SHA1())).decode().rstrip("=")
    return jwt.encode(claims, key_pem, algorithm="RS256", headers={"x5t": x5t})


def assertion_credential(cloudsim, make):
    return ClientAssertionCredential(cloudsim.tenant_id, CERT_APP, make,
                                     authority=cloudsim.env["AZURE_AUTHORITY_HOST"],
                                     connection_verify=cloudsim.ca,
                                     disable_instance_discovery=True)


def test_certificate_credential_gets_a_token_for_the_app_of_the_certificate(cloudsim, registered,
                                                                           secrets):
    key_pem, cert_pem, _ = registered
    cred = certificate_credential(cloudsim, key_pem, cert_pem)
    token = cred.get_token(VAULT_SCOPE)
    claims = claims_of(token.token)
    assert claims["appid"] == CERT_APP and claims["aud"] == "https://vault.azure.net"
    form = [e for e in cloudsim.log("token") if e["status"] == 200]
    assert form, "the token request was not logged"


def test_client_assertion_credential_with_an_rs256_assertion_gets_a_token(cloudsim, registered):
    key_pem, _, cert = registered
    cred = assertion_credential(cloudsim, lambda: assertion(cloudsim, key_pem, cert))
    assert claims_of(cred.get_token(VAULT_SCOPE).token)["appid"] == CERT_APP


@pytest.mark.parametrize("overrides, code", [
    ({"aud": "https://login.microsoftonline.com/other/oauth2/v2.0/token"}, "AADSTS700023"),
    ({"exp": 1_000_000_000, "nbf": 999_999_000}, "AADSTS700024"),
    ({"iss": "someone-else", "sub": "someone-else"}, "AADSTS700021"),
])
def test_a_bad_assertion_is_refused_with_its_aadsts_code(cloudsim, registered, overrides, code):
    key_pem, _, cert = registered
    cred = assertion_credential(cloudsim, lambda: assertion(cloudsim, key_pem, cert, **overrides))
    with pytest.raises(ClientAuthenticationError) as e:
        cred.get_token(VAULT_SCOPE)
    assert code in str(e.value)


def test_an_unregistered_certificate_is_refused_with_aadsts700027(cloudsim, registered):
    key_pem, cert_pem, _ = make_certificate()
    with pytest.raises(ClientAuthenticationError) as e:
        certificate_credential(cloudsim, key_pem, cert_pem).get_token(VAULT_SCOPE)
    assert "AADSTS700027" in str(e.value) and "not registered" in str(e.value)


def test_an_assertion_signed_by_another_key_fails_signature_validation(cloudsim, registered):
    _, _, cert = registered
    other_key, _, _ = make_certificate()
    cred = assertion_credential(cloudsim, lambda: assertion(cloudsim, other_key, cert))
    with pytest.raises(ClientAuthenticationError) as e:
        cred.get_token(VAULT_SCOPE)
    assert "AADSTS700027" in str(e.value) and "signature validation" in str(e.value)


@pytest.fixture
def app_service_env(cloudsim, monkeypatch):
    monkeypatch.setenv("IDENTITY_ENDPOINT", cloudsim.env["CLOUDSIM_IDENTITY_ENDPOINT"])
    monkeypatch.setenv("IDENTITY_HEADER", cloudsim.env["CLOUDSIM_IDENTITY_HEADER"])
    for var in ("AZURE_POD_IDENTITY_AUTHORITY_HOST", "MSI_ENDPOINT", "IDENTITY_SERVER_THUMBPRINT",
                "IMDS_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)


def test_managed_identity_through_the_app_service_endpoint_reads_a_vault(cloudsim, app_service_env,
                                                                        secrets):
    cred = ManagedIdentityCredential(connection_verify=cloudsim.ca)
    token = cred.get_token(VAULT_SCOPE)
    claims = claims_of(token.token)
    assert claims["idtyp"] == "app" and claims["xms_mirid"].endswith("/sites/certifyclouds")
    assert token.expires_on > time.time()
    from azure.keyvault.secrets import SecretClient
    client = SecretClient(cloudsim.vault_url("kv-conf-main"), cred, verify_challenge_resource=False,
                          connection_verify=cloudsim.ca)
    assert client.get_secret("db-password").value == "hunter2"


def test_a_user_assigned_identity_is_chosen_by_client_id(cloudsim, app_service_env):
    cred = ManagedIdentityCredential(client_id=UAMI, connection_verify=cloudsim.ca)
    assert claims_of(cred.get_token(VAULT_SCOPE).token)["appid"] == UAMI


def test_the_app_service_endpoint_refuses_a_wrong_identity_header(cloudsim, app_service_env,
                                                                  monkeypatch):
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-header")
    with pytest.raises(ClientAuthenticationError):
        ManagedIdentityCredential(connection_verify=cloudsim.ca).get_token(VAULT_SCOPE)
    assert any(e["status"] == 401 for e in cloudsim.log("identity"))


def test_managed_identity_through_imds_gets_a_token_with_string_expiry(cloudsim, monkeypatch):
    for var in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", cloudsim.env["CLOUDSIM_IMDS_ENDPOINT"])
    cred = ManagedIdentityCredential(connection_verify=cloudsim.ca)
    token = cred.get_token("https://management.azure.com/.default")
    assert claims_of(token.token)["aud"] == "https://management.azure.com"
    imds = [e for e in cloudsim.log("identity") if e["path"] == "/metadata/identity/oauth2/token"]
    assert imds and imds[-1]["status"] == 200


def test_imds_without_the_metadata_header_answers_400(cloudsim):
    import requests
    url = cloudsim.env["CLOUDSIM_IMDS_ENDPOINT"] + "/metadata/identity/oauth2/token"
    params = {"api-version": "2018-02-01", "resource": "https://vault.azure.net"}
    r = requests.get(url, params=params, verify=cloudsim.ca, timeout=10)
    assert r.status_code == 400
    assert r.json()["error_description"] == "Required metadata header not specified"
    ok = requests.get(url, params=params, headers={"Metadata": "true"}, verify=cloudsim.ca,
                      timeout=10)
    body = ok.json()
    assert ok.status_code == 200 and isinstance(body["expires_on"], str)
    assert int(body["expires_on"]) > time.time()


def test_a_b2c_tenant_issues_tokens_for_its_own_apps(cloudsim):
    cred = ClientSecretCredential("confb2c.onmicrosoft.com", "b2c1b2c1-1111-4222-8333-444444444444",
                                  "b2c~Secret-1", authority=cloudsim.env["AZURE_AUTHORITY_HOST"],
                                  connection_verify=cloudsim.ca, disable_instance_discovery=True)
    claims = claims_of(cred.get_token("https://graph.microsoft.com/.default").token)
    assert claims["tid"] == "b2c0b2c0-1111-4222-8333-444444444444"
    assert claims["iss"].endswith("/b2c0b2c0-1111-4222-8333-444444444444/v2.0")
