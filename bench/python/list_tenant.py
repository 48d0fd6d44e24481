"""The alternative to CertifyClouds' scan: list a tenant's Key Vault inventory with Microsoft's
Azure SDKs for Python, the way an engineer would write it in an afternoon (one thread, one loop).

It reads cloudsim's cloud.env variables from the environment (AZURE_TENANT_ID, AZURE_CLIENT_ID,
AZURE_CLIENT_SECRET, AZURE_AUTHORITY_HOST, AZURE_CA_BUNDLE, CLOUDSIM_URL), enumerates every
subscription and vault through Resource Manager, lists secrets, keys and certificates (skipping
the key and secret that back a certificate, as the product does) and fetches the details of every
key and certificate, the same work as the product's full scan. Values are never read.

The only concessions to cloudsim are the three cloudsim/README.md names: trust its CA,
verify_challenge_resource=False, disable_instance_discovery=True.

Prints one JSON line: {"vaults", "assets", "secrets", "keys", "certificates", "seconds"}.
`--max-vaults N` stops after N vaults (the rate per asset is what the benchmark compares).
"""
import argparse
import json
import os
import time

from azure.identity import ClientSecretCredential
from azure.keyvault.certificates import CertificateClient
from azure.keyvault.keys import KeyClient
from azure.keyvault.secrets import SecretClient
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.resource.subscriptions import SubscriptionClient

ARM_SCOPE = "https://management.azure.com/.default"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-vaults", type=int, default=0, help="0: every vault")
    args = parser.parse_args()

    ca = os.environ["AZURE_CA_BUNDLE"]
    arm = os.environ["CLOUDSIM_URL"]
    os.environ["REQUESTS_CA_BUNDLE"] = ca
    os.environ["SSL_CERT_FILE"] = ca
    started = time.monotonic()
    cred = ClientSecretCredential(
        os.environ["AZURE_TENANT_ID"], os.environ["AZURE_CLIENT_ID"],
        os.environ["AZURE_CLIENT_SECRET"], authority=os.environ["AZURE_AUTHORITY_HOST"],
        connection_verify=ca, disable_instance_discovery=True)

    subs = SubscriptionClient(cred, base_url=arm, connection_verify=ca,
                              credential_scopes=[ARM_SCOPE])
    counts = {"vaults": 0, "secrets": 0, "keys": 0, "certificates": 0}
    inventory = []
    for sub in subs.subscriptions.list():
        kv_mgmt = KeyVaultManagementClient(cred, sub.subscription_id, base_url=arm,
                                           connection_verify=ca, credential_scopes=[ARM_SCOPE])
        for vault in kv_mgmt.vaults.list_by_subscription():
            if args.max_vaults and counts["vaults"] >= args.max_vaults:
                break
            counts["vaults"] += 1
            uri = vault.properties.vault_uri
            secrets = SecretClient(uri, cred, verify_challenge_resource=False,
                                   connection_verify=ca)
            keys = KeyClient(uri, cred, verify_challenge_resource=False, connection_verify=ca)
            certs = CertificateClient(uri, cred, verify_challenge_resource=False,
                                      connection_verify=ca)
            for s in secrets.list_properties_of_secrets():
                if s.managed:
                    continue
                counts["secrets"] += 1
                inventory.append(("secret", s.name, s.expires_on))
            for k in keys.list_properties_of_keys():
                if k.managed:
                    continue
                key = keys.get_key(k.name)
                counts["keys"] += 1
                inventory.append(("key", key.name, key.key_type, key.properties.expires_on))
            for c in certs.list_properties_of_certificates():
                cert = certs.get_certificate(c.name)
                counts["certificates"] += 1
                policy = cert.policy
                inventory.append(("certificate", cert.name, policy.subject if policy else None,
                                  cert.properties.x509_thumbprint, cert.properties.expires_on))
        if args.max_vaults and counts["vaults"] >= args.max_vaults:
            break

    counts["assets"] = counts["secrets"] + counts["keys"] + counts["certificates"]
    counts["seconds"] = time.monotonic() - started
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
