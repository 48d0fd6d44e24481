"""Key Vault data-plane writes through Microsoft's SDKs: set secret (new versions), update
properties and tags, delete, list deleted, recover, purge (and purge protection), create and
rotate keys, key rotation policies, and certificate create, update and delete."""

import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.certificates import CertificatePolicy
from azure.keyvault.keys import (KeyRotationLifetimeAction, KeyRotationPolicy,
                                 KeyRotationPolicyAction)


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_setting_a_secret_twice_makes_two_versions_and_the_last_one_current(secrets):
    client = secrets("kv-conf-writes")
    name = unique("set")
    first = client.set_secret(name, "v1", content_type="text/plain", tags={"a": "1"})
    second = client.set_secret(name, "v2")
    assert first.properties.version != second.properties.version
    assert client.get_secret(name).value == "v2"
    assert client.get_secret(name, first.properties.version).value == "v1"
    versions = {v.version for v in client.list_properties_of_secret_versions(name)}
    assert versions == {first.properties.version, second.properties.version}
    assert name in {s.name for s in client.list_properties_of_secrets()}


def test_updating_secret_properties_changes_tags_and_expiry_but_not_the_value(secrets):
    from datetime import datetime, timedelta, timezone
    client = secrets("kv-conf-writes")
    name = unique("upd")
    created = client.set_secret(name, "value")
    expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=10)
    updated = client.update_secret_properties(name, tags={"owner": "me"}, expires_on=expires,
                                              content_type="password")
    assert updated.version == created.properties.version
    assert updated.tags == {"owner": "me"} and updated.expires_on == expires
    assert updated.updated_on >= created.properties.updated_on
    got = client.get_secret(name)
    assert got.value == "value" and got.properties.content_type == "password"
    disabled = client.update_secret_properties(name, enabled=False)
    assert disabled.enabled is False
    with pytest.raises(HttpResponseError) as e:
        client.get_secret(name)
    assert e.value.status_code == 403


def test_a_deleted_secret_is_listed_recovered_and_purged(secrets):
    client = secrets("kv-conf-writes")
    name = unique("del")
    client.set_secret(name, "doomed")
    deleted = client.begin_delete_secret(name).result()
    assert deleted.name == name and deleted.recovery_id.endswith(f"/deletedsecrets/{name}")
    assert deleted.deleted_date is not None and deleted.scheduled_purge_date is not None
    with pytest.raises(ResourceNotFoundError):
        client.get_secret(name)
    assert name in {d.name for d in client.list_deleted_secrets()}
    assert client.get_deleted_secret(name).name == name
    with pytest.raises(ResourceExistsError):
        client.set_secret(name, "reuse")
    client.begin_recover_deleted_secret(name).result()
    assert client.get_secret(name).value == "doomed"
    client.begin_delete_secret(name).result()
    client.purge_deleted_secret(name)
    assert name not in {d.name for d in client.list_deleted_secrets()}
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_secret(name)


def test_purge_protection_refuses_to_purge_a_deleted_secret(secrets):
    client = secrets("kv-conf-protected")
    name = unique("keep")
    client.set_secret(name, "kept")
    client.begin_delete_secret(name).result()
    with pytest.raises(HttpResponseError) as e:
        client.purge_deleted_secret(name)
    assert e.value.status_code == 403
    assert "purge protection" in e.value.error.message


def test_without_soft_delete_a_deleted_secret_is_gone_at_once(secrets):
    client = secrets("kv-conf-nosoft")
    name = unique("gone")
    client.set_secret(name, "x")
    deleted = client.begin_delete_secret(name).result()
    assert deleted.recovery_id is None
    assert list(client.list_deleted_secrets()) == []
    with pytest.raises(ResourceNotFoundError):
        client.get_secret(name)


def test_keys_are_created_updated_rotated_and_deleted(keys):
    client = keys("kv-conf-writes")
    name = unique("key")
    rsa = client.create_rsa_key(name, size=3072, tags={"purpose": "test"})
    assert rsa.key_type == "RSA" and len(rsa.key.n) == 384
    ec = client.create_ec_key(unique("ec"), curve="P-384")
    assert ec.key.crv == "P-384" and len(ec.key.x) == 48
    updated = client.update_key_properties(name, enabled=False)
    assert updated.properties.enabled is False
    assert updated.properties.tags == {"purpose": "test"}
    rotated = client.rotate_key(name)
    assert rotated.properties.version != rsa.properties.version
    assert len(rotated.key.n) == 384
    assert len(list(client.list_properties_of_key_versions(name))) == 2
    deleted = client.begin_delete_key(name).result()
    assert deleted.name == name
    assert name in {k.name for k in client.list_deleted_keys()}
    client.begin_recover_deleted_key(name).result()
    assert client.get_key(name).properties.version == rotated.properties.version


def test_a_key_rotation_policy_is_read_and_replaced(keys):
    client = keys("kv-conf-writes")
    name = unique("rot")
    client.create_rsa_key(name)
    default = client.get_key_rotation_policy(name)
    assert [a.action for a in default.lifetime_actions] == [KeyRotationPolicyAction.notify]
    policy = client.update_key_rotation_policy(
        name, KeyRotationPolicy(), expires_in="P90D",
        lifetime_actions=[KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate,
                                                    time_after_create="P30D")])
    assert policy.expires_in == "P90D"
    assert policy.lifetime_actions[0].action == KeyRotationPolicyAction.rotate
    assert policy.lifetime_actions[0].time_after_create == "P30D"
    again = client.get_key_rotation_policy(name)
    assert again.expires_in == "P90D" and again.created_on is not None
    rotated = client.rotate_key(name)
    assert rotated.properties.expires_on is not None


def test_a_self_signed_certificate_is_created_updated_and_deleted(certificates, secrets, keys):
    client = certificates("kv-conf-writes")
    name = unique("cert")
    policy = CertificatePolicy(issuer_name="Self", subject="CN=conformance.example",
                               san_dns_names=["conformance.example"], validity_in_months=6)
    cert = client.begin_create_certificate(name, policy).result()
    assert cert.name == name and cert.cer
    assert cert.policy.subject == "CN=conformance.example"
    assert secrets("kv-conf-writes").get_secret(name).properties.managed is True
    assert keys("kv-conf-writes").get_key(name).properties.managed is True
    props = client.update_certificate_properties(name, tags={"t": "1"})
    assert props.properties.tags == {"t": "1"}
    deleted = client.begin_delete_certificate(name).result()
    assert deleted.name == name
    assert name in {c.name for c in client.list_deleted_certificates()}
    with pytest.raises(ResourceNotFoundError):
        secrets("kv-conf-writes").get_secret(name)
    client.begin_recover_deleted_certificate(name).result()
    assert client.get_certificate(name).properties.tags == {"t": "1"}
