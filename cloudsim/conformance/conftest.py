"""Fixtures of cloudsim's conformance suite: one cloudsim process per test session, and
Microsoft's Azure SDK clients for Python pointed at it.

The binary is taken from $CLOUDSIM_BIN, else $CARGO_TARGET_DIR/debug/cloudsim, else
<repo>/target/debug/cloudsim. It is started with `--listen 127.0.0.1:0`, a temporary state
directory and cloudsim/conformance/scenario.json; the fixture waits for its
`cloudsim ready <url>` line and reads cloud.env.

The concessions made to a non-Azure host are the ones cloudsim/README.md documents: the SDKs
trust cloudsim's CA (connection_verify and REQUESTS_CA_BUNDLE / SSL_CERT_FILE), the Key Vault
clients get verify_challenge_resource=False (the vault host is 127.0.0.1, not
*.vault.azure.net), and the credential gets disable_instance_discovery=True (otherwise MSAL asks
login.microsoftonline.com to vouch for the authority host before the first token).
"""

import json
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from azure.identity import ClientSecretCredential
from azure.keyvault.certificates import CertificateClient
from azure.keyvault.keys import KeyClient
from azure.keyvault.secrets import SecretClient
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.resource.subscriptions import SubscriptionClient

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SCENARIO = HERE / "scenario.json"
ARM_SCOPE = "https://management.azure.com/.default"
READY_TIMEOUT_S = 90


def pytest_configure(config):
    # msgraph-sdk's generated modules warn from their class bodies at import time (deprecated
    # *RequestConfiguration classes that the SDK itself still defines); not the suite's doing.
    for message in ("This class is deprecated. Please use the generic RequestConfiguration",
                    "GetQueryParameters is deprecated"):
        config.addinivalue_line("filterwarnings", f"ignore:{message}:DeprecationWarning")


def cloudsim_binary() -> Path:
    if os.environ.get("CLOUDSIM_BIN"):
        return Path(os.environ["CLOUDSIM_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return target / "debug" / "cloudsim"


class Cloudsim:
    """A running cloudsim: its URL, cloud.env and an admin API client."""

    def __init__(self, proc, state_dir: Path, url: str, env: dict):
        self.proc = proc
        self.state_dir = state_dir
        self.url = url
        self.env = env
        self.ca = env["AZURE_CA_BUNDLE"]
        self.tenant_id = env["AZURE_TENANT_ID"]
        self.client_id = env["AZURE_CLIENT_ID"]
        self.client_secret = env["AZURE_CLIENT_SECRET"]
        self.ssl = ssl.create_default_context(cafile=self.ca)

    def admin(self, method: str, path: str, body=None):
        """Calls /_sim/<path>; returns (status, parsed JSON or None)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/_sim/{path}", data=data, method=method)
        req.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.ssl, timeout=30) as resp:
                raw = resp.read()
                return resp.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, (json.loads(raw) if raw else None)

    def admin_ok(self, method: str, path: str, body=None):
        status, out = self.admin(method, path, body)
        assert 200 <= status < 300, f"{method} /_sim/{path}: {status} {out}"
        return out

    def vault(self, name: str) -> dict:
        for v in self.admin_ok("GET", "vaults"):
            if v["name"] == name:
                return v
        raise KeyError(name)

    def vault_url(self, name: str) -> str:
        return self.vault(name)["vaultUri"]

    def log(self, target: str) -> list:
        """The request log entries of one target, oldest first."""
        return [e for e in self.admin_ok("GET", "requests/log") if e["target"] == target]


@pytest.fixture(scope="session")
def cloudsim():
    binary = cloudsim_binary()
    assert binary.is_file(), f"cloudsim binary not found at {binary}: build it or set CLOUDSIM_BIN"
    state_dir = Path(tempfile.mkdtemp(prefix="cloudsim-conformance-"))
    stderr = open(state_dir / "stderr.log", "wb")
    proc = subprocess.Popen(
        [str(binary), "serve", "--listen", "127.0.0.1:0", "--state-dir", str(state_dir),
         "--scenario", str(SCENARIO)],
        stdout=subprocess.PIPE, stderr=stderr, text=True,
    )
    ready = {}
    seen = threading.Event()

    def read_ready():
        for line in proc.stdout:
            if line.startswith("cloudsim ready "):
                ready["url"] = line.split(" ", 2)[2].strip()
                break
        seen.set()
        for _ in proc.stdout:  # keep draining so cloudsim never blocks on stdout
            pass

    threading.Thread(target=read_ready, daemon=True).start()
    seen.wait(READY_TIMEOUT_S)
    if "url" not in ready:
        proc.kill()
        log = (state_dir / "stderr.log").read_text(errors="replace")
        pytest.fail(f"cloudsim did not print its ready line; stderr:\n{log}")
    env = {}
    for line in (state_dir / "cloud.env").read_text().splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            env[key] = value
    saved = {k: os.environ.get(k) for k in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")}
    os.environ["REQUESTS_CA_BUNDLE"] = env["AZURE_CA_BUNDLE"]
    os.environ["SSL_CERT_FILE"] = env["AZURE_CA_BUNDLE"]
    try:
        yield Cloudsim(proc, state_dir, ready["url"], env)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        stderr.close()
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(autouse=True)
def clean_faults(cloudsim):
    """Every test starts without pending faults and with cloudsim's app credentials intact."""
    cloudsim.admin_ok("DELETE", "faults")
    yield
    cloudsim.admin_ok("DELETE", "faults")


def make_credential(sim: Cloudsim, secret=None) -> ClientSecretCredential:
    return ClientSecretCredential(
        sim.tenant_id,
        sim.client_id,
        secret if secret is not None else sim.client_secret,
        authority=sim.env["AZURE_AUTHORITY_HOST"],
        connection_verify=sim.ca,
        # MSAL would otherwise ask login.microsoftonline.com to vouch for a non-Microsoft
        # authority host (instance discovery), a call that must not leave this machine.
        disable_instance_discovery=True,
    )


@pytest.fixture(scope="session")
def credential(cloudsim):
    return make_credential(cloudsim)


@pytest.fixture(scope="session")
def secrets(cloudsim, credential):
    """secrets("kv-name") -> SecretClient for that vault."""

    def make(name: str, **kwargs) -> SecretClient:
        return SecretClient(cloudsim.vault_url(name), credential, verify_challenge_resource=False,
                            connection_verify=cloudsim.ca, **kwargs)

    return make


@pytest.fixture(scope="session")
def keys(cloudsim, credential):
    def make(name: str, **kwargs) -> KeyClient:
        return KeyClient(cloudsim.vault_url(name), credential, verify_challenge_resource=False,
                         connection_verify=cloudsim.ca, **kwargs)

    return make


@pytest.fixture(scope="session")
def certificates(cloudsim, credential):
    def make(name: str, **kwargs) -> CertificateClient:
        return CertificateClient(cloudsim.vault_url(name), credential,
                                 verify_challenge_resource=False, connection_verify=cloudsim.ca,
                                 **kwargs)

    return make


@pytest.fixture(scope="session")
def subscriptions(cloudsim, credential):
    return SubscriptionClient(credential, base_url=cloudsim.url, credential_scopes=[ARM_SCOPE],
                              connection_verify=cloudsim.ca)


@pytest.fixture(scope="session")
def keyvault_mgmt(cloudsim, credential):
    def make(subscription_id: str) -> KeyVaultManagementClient:
        return KeyVaultManagementClient(credential, subscription_id, base_url=cloudsim.url,
                                        credential_scopes=[ARM_SCOPE],
                                        connection_verify=cloudsim.ca)

    return make
