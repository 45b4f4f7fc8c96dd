from __future__ import annotations

import hashlib
import hmac
import os
import resource
import signal
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import core, pkcs12
from cryptography import x509

from mcn_cli.ehealth import certificates as certs
from mcn_cli.ehealth import keystore as p12
from mcn_cli.sandbox.world import ANNE, PARC
from mcn_cli.status import ExitStatus
from tests.conftest import ROOT, SANDBOX_PIN

PASSWORD = "keystore-pass-1"


def pipe(text: str) -> int:
    read, write = os.pipe()
    os.write(write, (text + "\n").encode())
    os.close(write)
    return read


@pytest.fixture
def keystores(mcn_home) -> Path:
    return mcn_home / "data" / "keystores"


def request_org(mcn, nihii=PARC.nihii, kbo=PARC.kbo, name=PARC.name, password=PASSWORD, *extra):
    fd = pipe(password)
    try:
        return mcn(
            "cert",
            "request",
            "--offline",
            "--org",
            "--nihii",
            nihii,
            "--kbo",
            kbo,
            "--name",
            name,
            "--password-fd",
            str(fd),
            "--json",
            *extra,
        )
    finally:
        os.close(fd)


def openssl_reads(path: Path, password: str, legacy: bool = False) -> str:
    args = ["openssl", "pkcs12", "-in", str(path), "-passin", f"pass:{password}", "-info", "-nodes"]
    result = subprocess.run(args + (["-legacy"] if legacy else []), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def test_org_request_writes_keystore_and_csr(mcn, sandbox, keystores):
    result = request_org(
        mcn, "27150201", "0403.019.261", "Pharmacie du Parc", PASSWORD, "--email", "parc@example.be"
    )
    assert result.code == 0, result.err
    data = result.json()
    keystore, csr_path = Path(data["keystore"]), Path(data["csr"])
    assert keystore.name == "NIHII-PHARMACY=27150201.p12" and keystore.parent == keystores
    for path in keystores.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    csr = x509.load_pem_x509_csr(csr_path.read_bytes())
    assert csr.is_signature_valid and csr.signature_hash_algorithm.name == "sha256"
    assert csr.public_key().key_size == 2048
    assert csr.subject.rfc4514_string() == (
        "CN=NIHII-PHARMACY=27150201,OU=eHealth-platform Belgium,OU=PHARMACIE DU PARC,"
        "OU=NIHII-PHARMACY=27150201,O=Federal Government,C=BE"
    )
    # OpenSSL 3 opens it without -legacy; the key waits under alias 'authentication'
    assert "friendlyName: authentication" in openssl_reads(keystore, PASSWORD)
    entry = p12.read(keystore.read_bytes(), PASSWORD).get("authentication")
    assert entry is not None and entry.certificate is None
    assert certs.same_key(
        x509.load_pem_x509_certificates(Path(data["issued"]).read_bytes())[0], entry.private_key
    )


def test_personal_request(mcn, sandbox, keystores):
    fd = pipe(PASSWORD)
    result = mcn(
        "cert",
        "request",
        "--offline",
        "--personal",
        "--niss",
        "75.02.15-046.26",
        "--name",
        "Anne Lambert",
        "--password-fd",
        str(fd),
        "--json",
    )
    os.close(fd)
    assert result.code == 0, result.err
    csr = x509.load_pem_x509_csr(Path(result.json()["csr"]).read_bytes())
    assert "CN=SSIN=75021504626" in csr.subject.rfc4514_string()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--org", "--nihii", "27150202", "--kbo", "0403019261", "--name", "X"], "check digits"),
        (["--org", "--nihii", "27150201", "--kbo", "0403019262", "--name", "X"], "kbo: check digits"),
        (["--org", "--nihii", "27150201", "--kbo", "0403019261"], "--name"),
        (["--personal", "--niss", "7502150462"], "11 digits"),
        (["--personal"], "--niss"),
        (["--org", "--personal", "--niss", ANNE.niss], "one of"),
        (
            ["--org", "--nihii", "27150201", "--kbo", "0403019261", "--name", "X", "--email", "no-at-sign"],
            "e-mail",
        ),
    ],
)
def test_bad_requests_write_nothing(mcn, sandbox, keystores, args, needle):
    fd = pipe(PASSWORD)
    result = mcn("cert", "request", "--offline", *args, "--password-fd", str(fd))
    os.close(fd)
    assert result.code == ExitStatus.BAD_INPUT and needle in result.err
    assert not keystores.exists() or not list(keystores.iterdir())


def test_short_password_and_existing_keystore(mcn, sandbox, keystores):
    assert request_org(mcn, password="short").code == ExitStatus.BAD_INPUT
    assert request_org(mcn).code == 0
    again = request_org(mcn)
    assert again.code == ExitStatus.BAD_INPUT and "exists already" in again.err


def test_unwritable_folder_leaves_nothing(mcn, sandbox, mcn_home):
    blocker = mcn_home / "not-a-folder"
    blocker.write_text("")
    (mcn_home / "config.toml").write_text(f'keystore_dir = "{blocker}/keystores"\n')
    result = request_org(mcn)
    assert result.code == ExitStatus.BAD_INPUT and "cannot write" in result.err


def test_full_disk_leaves_no_half_written_keystore(sandbox, mcn_home, keystores):
    keystores.mkdir(parents=True)

    def small_files() -> None:  # every file write past 2 kB fails, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))

    read, write = os.pipe()
    os.write(write, (PASSWORD + "\n").encode())
    os.close(write)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mcn_cli",
            "cert",
            "request",
            "--offline",
            "--org",
            "--nihii",
            PARC.nihii,
            "--kbo",
            PARC.kbo,
            "--name",
            PARC.name,
            "--password-fd",
            str(read),
        ],
        cwd=ROOT,
        env={**os.environ, "MCN_HOME": str(mcn_home)},
        capture_output=True,
        text=True,
        preexec_fn=small_files,
        pass_fds=(read,),
    )
    os.close(read)
    assert result.returncode == ExitStatus.BAD_INPUT, result.stderr
    assert "nothing was kept" in result.stderr and "Traceback" not in result.stderr
    assert list(keystores.iterdir()) == []


def install(mcn, certificate: Path, password=PASSWORD, *extra):
    fd = pipe(password)
    try:
        return mcn("cert", "install", str(certificate), "--password-fd", str(fd), "--json", *extra)
    finally:
        os.close(fd)


def test_request_issue_install_login_end_to_end(mcn, sandbox, keystores, monkeypatch, tmp_path):
    requested = request_org(mcn).json()
    issued = tmp_path / "from-ehealth.pem"
    manual = mcn("sandbox", "issue", requested["csr"], "--out", str(issued), "--json")
    assert manual.code == 0, manual.err
    result = install(mcn, issued)
    assert result.code == 0, result.err
    data = result.json()
    keystore = Path(data["keystore"])
    store = p12.read(keystore.read_bytes(), PASSWORD)
    assert sorted(e.alias for e in store.entries) == sorted(["authentication", data["encryption_serial"]])
    auth = store.get("authentication")
    assert auth.certificate.subject.rfc4514_string().startswith("CN=NIHII-PHARMACY=27150201")
    assert [c.subject.rfc4514_string() for c in auth.chain] == [
        "CN=mcn sandbox eHealth CA,C=BE",
        "CN=mcn sandbox Root CA,C=BE",
    ]
    encryption = store.get(data["encryption_serial"])
    assert str(encryption.certificate.serial_number) == data["encryption_serial"]
    text = openssl_reads(keystore, PASSWORD)
    assert (
        text.count("friendlyName: authentication") >= 2
        and f"friendlyName: {data['encryption_serial']}" in text
    )
    # the ETK is a CMS SignedData of the encryption certificate, signed with the authentication key
    etk_out = tmp_path / "etk-content.der"
    signer = tmp_path / "signer.pem"
    signer.write_bytes(certs.pem(auth.certificate))
    verified = subprocess.run(
        [
            "openssl",
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-in",
            data["etk"],
            "-binary",
            "-noverify",
            "-certfile",
            str(signer),
            "-out",
            str(etk_out),
        ],
        capture_output=True,
        text=True,
    )
    assert verified.returncode == 0, verified.stderr
    assert x509.load_der_x509_certificate(etk_out.read_bytes()) == encryption.certificate
    listed = {i["name"]: i for i in mcn("cert", "list", "--json").json()}
    assert listed["NIHII-PHARMACY=27150201"]["state"] == "installed"
    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    monkeypatch.setenv("MCN_ORG_PASSWORD", PASSWORD)
    login = mcn("login", "--org", str(keystore), "--json")
    assert login.code == 0, login.err
    assert login.json()["pharmacy"] == PARC.nihii


def test_install_refusals(mcn, sandbox, keystores, tmp_path):
    requested = request_org(mcn).json()
    issued = Path(requested["issued"])
    assert install(mcn, issued, "wrong-password").code == ExitStatus.AUTH_NEEDED
    leaf_only = tmp_path / "leaf.pem"
    leaf_only.write_bytes(certs.pem(x509.load_pem_x509_certificates(issued.read_bytes())[0]))
    incomplete = install(mcn, leaf_only)
    assert incomplete.code == ExitStatus.BAD_INPUT and "no issuer certificate" in incomplete.err
    fd = pipe(PASSWORD)
    other = mcn(
        "cert", "request", "--offline", "--personal", "--niss", ANNE.niss, "--password-fd", str(fd), "--json"
    ).json()
    os.close(fd)
    mismatch = install(mcn, Path(other["issued"]), PASSWORD, "--keystore", requested["keystore"])
    assert mismatch.code == ExitStatus.BAD_INPUT and "does not match the key" in mismatch.err
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello")
    assert install(mcn, garbage).code == ExitStatus.BAD_INPUT
    # nothing changed: the keystore still waits for its certificate
    entry = p12.read(Path(requested["keystore"]).read_bytes(), PASSWORD).get("authentication")
    assert entry.certificate is None


def test_expiry_warning_within_60_days(mcn, sandbox, keystores):
    from mcn_cli.sandbox import pki
    from mcn_cli.sandbox.setup import _keystore, load_ca

    ehealth = load_ca(sandbox, "ehealth")
    soon = pki.issue(
        certs.subject(certs.Holder("SSIN", ANNE.niss, "ANNE LAMBERT")),
        pki.rsa_key(),
        ehealth,
        not_before=datetime.now(UTC) - timedelta(days=300),
        days=330,
    )
    keystores.mkdir(parents=True)
    _keystore(keystores / f"SSIN={ANNE.niss}.p12", soon, [ehealth.certificate])
    result = mcn("cert", "list")
    assert "warning" in result.err and "expires in 29 days" in result.err
    item = next(i for i in mcn("cert", "list", "--json").json() if i["keystore"].startswith(str(keystores)))
    assert item["warning"] is True and item["days_left"] == 29


def test_revocation_in_the_sandbox_makes_the_sts_refuse(mcn, sandbox, monkeypatch):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    keystore = sandbox.personal_keystore(ANNE.niss)
    assert mcn("login", "--fallback", str(keystore)).code == 0
    unconfirmed = mcn("cert", "revoke", "--offline", str(keystore))
    assert unconfirmed.code == ExitStatus.BAD_INPUT and "--yes" in unconfirmed.err
    result = mcn("cert", "revoke", "--offline", str(keystore), "--reason", "card lost", "--yes", "--json")
    assert result.code == 0 and result.json()["revoked"] is True
    assert mcn("cert", "show", str(keystore), "--json").json()["state"] == "revoked"
    refused = mcn("login", "--fallback", str(keystore), "--session", "again")
    assert refused.code == ExitStatus.AUTH_NEEDED and "revoked" in refused.err


def _merge_pfx(first: bytes, second: bytes, password: str) -> bytes:
    """Two PKCS#12 files into one, their bags untouched (as eHealth's tool keeps several keys)."""
    safes = []
    for data in (first, second):
        pfx = pkcs12.Pfx.load(data)
        safes += list(pkcs12.AuthenticatedSafe.load(pfx["auth_safe"]["content"].native))
    content = pkcs12.AuthenticatedSafe(safes).dump()
    salt = os.urandom(8)
    key = p12.pkcs12_kdf(password, salt, 3, 2048, 20, "sha1")
    return pkcs12.Pfx(
        {
            "version": "v3",
            "auth_safe": {"content_type": "data", "content": core.OctetString(content)},
            "mac_data": {
                "mac": {
                    "digest_algorithm": {"algorithm": "sha1"},
                    "digest": hmac.new(key, content, hashlib.sha1).digest(),
                },
                "mac_salt": salt,
                "iterations": 2048,
            },
        }
    ).dump()


def test_legacy_keystore_with_two_keys_from_openssl(mcn, sandbox, tmp_path, monkeypatch):
    """eHealth's tool writes 3DES/RC2 keystores holding extra encryption keys."""
    from cryptography.hazmat.primitives import serialization

    entry = p12.read(sandbox.personal_keystore(ANNE.niss).read_bytes(), "mcn-sandbox").get("authentication")
    (tmp_path / "auth.key").write_bytes(
        entry.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (tmp_path / "auth.pem").write_bytes(b"".join(certs.pem(c) for c in [entry.certificate, *entry.chain]))
    encryption_key = certs.new_key()
    encryption = certs.encryption_certificate(entry.private_key, entry.certificate, encryption_key)
    (tmp_path / "enc.key").write_bytes(
        encryption_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (tmp_path / "enc.pem").write_bytes(certs.pem(encryption))
    for part, name in (("auth", "authentication"), ("enc", str(encryption.serial_number))):
        subprocess.run(
            [
                "openssl",
                "pkcs12",
                "-export",
                "-legacy",
                "-inkey",
                str(tmp_path / f"{part}.key"),
                "-in",
                str(tmp_path / f"{part}.pem"),
                "-name",
                name,
                "-passout",
                "pass:legacy-pw",
                "-out",
                str(tmp_path / f"{part}.p12"),
            ],
            check=True,
            capture_output=True,
        )
    merged = tmp_path / "SSIN=legacy.p12"
    merged.write_bytes(
        _merge_pfx((tmp_path / "auth.p12").read_bytes(), (tmp_path / "enc.p12").read_bytes(), "legacy-pw")
    )
    text = openssl_reads(merged, "legacy-pw", legacy=True)
    assert "pbeWithSHA1And40BitRC2-CBC" in text and "pbeWithSHA1And3-KeyTripleDES-CBC" in text
    assert text.count("BEGIN PRIVATE KEY") == 2
    store = p12.read(merged.read_bytes(), "legacy-pw")
    assert sorted(e.alias for e in store.entries) == sorted(["authentication", str(encryption.serial_number)])
    assert store.get("authentication").certificate == entry.certificate
    monkeypatch.setenv("MCN_KEYSTORE_PASSWORD", "legacy-pw")
    result = mcn("login", "--fallback", str(merged), "--json")
    assert result.code == 0, result.err
    assert result.json()["user"]["niss"] == ANNE.niss


def test_legacy_keystore_with_an_ec_p384_key_logs_in_over_ws_trust(mcn, sandbox, tmp_path, monkeypatch):
    """eHealth issues EC P-384 certificates now: a 3DES/RC2 keystore holding one (as Java tools
    write them) opens, and the pharmacy logs in with it as holder-of-key through WS-Trust."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from mcn_cli.sandbox.world import LINDE, MARC

    entry = p12.read(sandbox.org_keystore(LINDE.nihii).read_bytes(), "mcn-sandbox").get("authentication")
    assert isinstance(entry.private_key, ec.EllipticCurvePrivateKey) and entry.private_key.key_size == 384
    (tmp_path / "org.key").write_bytes(
        entry.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (tmp_path / "org.pem").write_bytes(b"".join(certs.pem(c) for c in [entry.certificate, *entry.chain]))
    legacy = tmp_path / f"NIHII-PHARMACY={LINDE.nihii}.p12"
    subprocess.run(
        [
            "openssl", "pkcs12", "-export", "-legacy",
            "-inkey", str(tmp_path / "org.key"), "-in", str(tmp_path / "org.pem"),
            "-name", "authentication", "-passout", "pass:legacy-pw", "-out", str(legacy),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    assert "pbeWithSHA1And3-KeyTripleDES-CBC" in openssl_reads(legacy, "legacy-pw", legacy=True)
    monkeypatch.setenv("MCN_ORG_PASSWORD", "legacy-pw")
    result = mcn(
        "login", "--fallback", str(sandbox.personal_keystore(MARC.niss)), "--org", str(legacy), "--json"
    )
    assert result.code == 0, result.err
    assert result.json()["pharmacy"] == LINDE.nihii


def test_an_ec_p384_request_is_issued_installed_and_logs_in(mcn, sandbox, keystores, monkeypatch):
    """--key ec (the offline path): an EC P-384 key and a SHA-384 CSR; the sandbox CA issues it,
    the install adds the RSA encryption key and ETK, and the pharmacy logs in over WS-Trust."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    wrong = request_org(mcn, PARC.nihii, PARC.kbo, PARC.name, PASSWORD, "--key", "dsa")
    assert wrong.code == ExitStatus.BAD_INPUT and "key" in wrong.err and not keystores.exists()
    requested = request_org(mcn, PARC.nihii, PARC.kbo, PARC.name, PASSWORD, "--key", "ec")
    assert requested.code == 0, requested.err
    csr = x509.load_pem_x509_csr(Path(requested.json()["csr"]).read_bytes())
    assert isinstance(csr.public_key(), ec.EllipticCurvePublicKey) and csr.public_key().key_size == 384
    assert isinstance(csr.signature_hash_algorithm, hashes.SHA384)
    result = install(mcn, Path(requested.json()["issued"]))
    assert result.code == 0, result.err
    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    monkeypatch.setenv("MCN_ORG_PASSWORD", PASSWORD)
    login = mcn("login", "--org", result.json()["keystore"], "--json")
    assert login.code == 0, login.err
    assert (
        request_org(mcn, PARC.nihii, PARC.kbo, PARC.name, PASSWORD, "--key", "dsa").code
        == ExitStatus.BAD_INPUT
    )
