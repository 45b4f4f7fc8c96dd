"""Hostile keystores (issue 11, item 6): crafted PKCS#12 files and special files are refused
within a second, with one line and exit 2 (not a keystore mcn reads) or 4 (wrong password),
never a hang, a memory blow-up or a traceback.

Every input is built here: asn1crypto structures with huge iteration counts in the MAC, in a
PBES2 bag, in a PKCS#12-PBE (RC2, 3DES) bag, a 5-byte RC2 blob, garbage key and certificate
bags, truncations and mutations of a valid keystore, and special files (a FIFO, /dev/zero, a
directory, an empty or oversize file).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import random
import stat
import time
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import algos, cms, core, keys, pkcs12
from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.x509.oid import NameOID

from mcn_cli.domain.errors import AuthenticationNeeded, InvalidInput
from mcn_cli.ehealth import keystore as p12
from mcn_cli.ehealth.signers import load_keystore
from mcn_cli.status import ExitStatus

PASSWORD = "hostile-pw"
HUGE = 2**31 - 1  # what the attack review used: hours of hashing before any password check
SECOND = 1.0


# --- building keystores ------------------------------------------------------------------------


@cache
def identity() -> tuple[Any, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hostile test")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def pkcs8(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def tlv(tag: int, content: bytes) -> bytes:
    """A DER element, for contents asn1crypto would not let us build."""
    if len(content) < 0x80:
        return bytes([tag, len(content)]) + content
    size = len(content).to_bytes((len(content).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def raw_bag(bag_id: str, value: bytes) -> bytes:
    """A SafeBag whose [0] value is ``value`` as given (garbage included)."""
    oid = core.ObjectIdentifier(pkcs12.BagId.unmap(bag_id)).dump()
    return tlv(0x30, oid + tlv(0xA0, value))


def safe_contents(*bags: bytes) -> bytes:
    return tlv(0x30, b"".join(bags))


def key_bag(key: Any, alias: str = "authentication") -> bytes:
    return pkcs12.SafeBag(
        {
            "bag_id": "key_bag",
            "bag_value": keys.PrivateKeyInfo.load(pkcs8(key)),
            "bag_attributes": [{"type": "friendly_name", "values": [alias]}],
        }
    ).dump()


def cert_bag(certificate: x509.Certificate) -> bytes:
    der = certificate.public_bytes(serialization.Encoding.DER)
    return pkcs12.SafeBag(
        {"bag_id": "cert_bag", "bag_value": {"cert_id": "x509", "cert_value": core.ParsableOctetString(der)}}
    ).dump()


def shrouded_bag(algorithm: Any, encrypted: bytes) -> bytes:
    return pkcs12.SafeBag(
        {
            "bag_id": "pkcs8_shrouded_key_bag",
            "bag_value": keys.EncryptedPrivateKeyInfo(
                {"encryption_algorithm": algorithm, "encrypted_data": encrypted}
            ),
            "bag_attributes": [{"type": "friendly_name", "values": ["authentication"]}],
        }
    ).dump()


def pkcs12_pbe(name: str, iterations: int) -> Any:
    """pkcs12_sha1_rc2_40, pkcs12_sha1_rc2_128, pkcs12_sha1_tripledes_3key or _2key."""
    return algos.EncryptionAlgorithm(
        {"algorithm": name, "parameters": {"salt": b"saltsalt", "iterations": iterations}}
    )


def pbes2(iterations: int, iv: bytes = b"\x01" * 16, key_length: int | None = None) -> Any:
    kdf: dict[str, Any] = {
        "salt": algos.Pbkdf2Salt(name="specified", value=core.OctetString(b"s" * 16)),
        "iteration_count": iterations,
        "prf": {"algorithm": "sha256"},
    }
    if key_length is not None:
        kdf["key_length"] = key_length
    return algos.EncryptionAlgorithm(
        {
            "algorithm": "pbes2",
            "parameters": {
                "key_derivation_func": {"algorithm": "pbkdf2", "parameters": kdf},
                "encryption_scheme": {"algorithm": "aes256_cbc", "parameters": iv},
            },
        }
    )


def pbes2_encrypt(plain: bytes, iterations: int = 1000, password: str = PASSWORD) -> tuple[Any, bytes]:
    algorithm = pbes2(iterations)
    key = hashlib.pbkdf2_hmac("sha256", password.encode(), b"s" * 16, iterations, 32)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(b"\x01" * 16)).encryptor()
    return algorithm, encryptor.update(padded) + encryptor.finalize()


def plain_safe(contents: bytes) -> dict[str, Any]:
    return {"content_type": "data", "content": core.OctetString(contents)}


def encrypted_safe(algorithm: Any, encrypted: bytes) -> dict[str, Any]:
    return {
        "content_type": "encrypted_data",
        "content": cms.EncryptedData(
            {
                "version": "v0",
                "encrypted_content_info": {
                    "content_type": "data",
                    "content_encryption_algorithm": algorithm,
                    "encrypted_content": encrypted,
                },
            }
        ),
    }


def pfx(
    *safes: dict[str, Any],
    mac_iterations: int | None = 1,
    password: str = PASSWORD,
    content: bytes | None = None,
) -> bytes:
    """A PFX of ``safes`` (or of ``content`` as its AuthenticatedSafe); its MAC right for
    ``password`` when computable, else only stated; no MAC when ``mac_iterations`` is None."""
    content = content if content is not None else pkcs12.AuthenticatedSafe(list(safes)).dump()
    value: dict[str, Any] = {
        "version": "v3",
        "auth_safe": {"content_type": "data", "content": core.OctetString(content)},
    }
    if mac_iterations is not None:
        salt = b"macsalt!"
        if 1 <= mac_iterations <= 10_000:
            key = p12.pkcs12_kdf(password, salt, 3, mac_iterations, 32, "sha256")
            digest = hmac.new(key, content, "sha256").digest()
        else:
            digest = b"\x00" * 32  # never computed: the count is refused first
        value["mac_data"] = {
            "mac": {"digest_algorithm": {"algorithm": "sha256"}, "digest": digest},
            "mac_salt": salt,
            "iterations": mac_iterations,
        }
    return pkcs12.Pfx(value).dump()


def valid_plain() -> bytes:
    key, certificate = identity()
    return pfx(plain_safe(safe_contents(key_bag(key), cert_bag(certificate))))


def refused(data: bytes, password: str = PASSWORD) -> Exception:
    """The error reading ``data`` ends with, checked to be one of the two, on one line, fast."""
    start = time.perf_counter()
    with pytest.raises((p12.KeystoreUnreadable, p12.KeystoreError)) as caught:
        p12.read(data, password)
    elapsed = time.perf_counter() - start
    assert elapsed < SECOND, f"took {elapsed:.2f} s"
    message = str(caught.value)
    assert message and "\n" not in message and "Traceback" not in message
    return caught.value


def unreadable(data: bytes, rule: str | None = None, password: str = PASSWORD) -> p12.KeystoreUnreadable:
    error = refused(data, password)
    assert isinstance(error, p12.KeystoreUnreadable), error
    assert isinstance(error, InvalidInput)  # exit 2
    if rule is not None:
        assert error.rule == rule, error
    return error


# --- the building blocks are sound --------------------------------------------------------------


def test_the_valid_keystores_built_here_open():
    key, certificate = identity()
    store = p12.read(valid_plain(), PASSWORD)
    assert store.get("authentication").certificate == certificate
    algorithm, encrypted = pbes2_encrypt(pkcs8(key))
    store = p12.read(
        pfx(
            plain_safe(safe_contents(shrouded_bag(algorithm, encrypted))),
            plain_safe(safe_contents(cert_bag(certificate))),
        ),
        PASSWORD,
    )
    assert store.get("authentication").certificate == certificate
    assert p12.read(p12.write(store, "other"), "other").get("authentication").certificate == certificate


def test_the_bounds_are_documented_constants():
    assert p12.MAX_ITERATIONS == 1_000_000
    assert p12.MAX_TOTAL_ITERATIONS >= p12.MAX_ITERATIONS
    assert p12.MAX_KEYSTORE_BYTES == 1 << 20
    source = Path(p12.__file__).read_text()
    assert "MAX_ITERATIONS = 1_000_000" in source and "# An iteration count is" in source


# --- iteration counts ------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [p12.MAX_ITERATIONS + 1, HUGE, 2**4000])
def test_a_huge_mac_iteration_count_is_refused_before_any_derivation(count):
    error = unreadable(pfx(plain_safe(safe_contents()), mac_iterations=count), "iterations")
    assert "unreasonable iteration count" in str(error) and "MAC" in str(error)


def _bags_with_huge_counts() -> dict[str, bytes]:
    _, certificate = identity()
    certificates = safe_contents(cert_bag(certificate))
    return {
        "pbes2 encrypted contents": pfx(encrypted_safe(pbes2(HUGE), b"\x00" * 64)),
        "pbes2 shrouded key": pfx(plain_safe(safe_contents(shrouded_bag(pbes2(HUGE), b"\x00" * 64)))),
        "rc2-40 encrypted contents": pfx(
            encrypted_safe(pkcs12_pbe("pkcs12_sha1_rc2_40", HUGE), b"\x00" * 64)
        ),
        "rc2-128 encrypted contents": pfx(
            encrypted_safe(pkcs12_pbe("pkcs12_sha1_rc2_128", HUGE), b"\x00" * 64)
        ),
        "3des shrouded key": pfx(
            plain_safe(
                safe_contents(shrouded_bag(pkcs12_pbe("pkcs12_sha1_tripledes_3key", HUGE), b"\0" * 64))
            ),
            plain_safe(certificates),
        ),
        "2-key 3des shrouded key": pfx(
            plain_safe(
                safe_contents(shrouded_bag(pkcs12_pbe("pkcs12_sha1_tripledes_2key", HUGE), b"\0" * 64))
            )
        ),
        "no MAC, rc2-40": pfx(
            encrypted_safe(pkcs12_pbe("pkcs12_sha1_rc2_40", HUGE), b"\x00" * 64), mac_iterations=None
        ),
        "just above the bound": pfx(
            encrypted_safe(pkcs12_pbe("pkcs12_sha1_rc2_40", p12.MAX_ITERATIONS + 1), b"\x00" * 64)
        ),
    }


@pytest.mark.parametrize("where", list(_bags_with_huge_counts()))
@pytest.mark.parametrize("password", [PASSWORD, "not-the-password"])
def test_a_huge_bag_iteration_count_is_refused_before_any_derivation(where, password):
    """Refused as unreadable (exit 2) whatever the password: every count in sight is checked
    before the MAC's derivation."""
    error = unreadable(_bags_with_huge_counts()[where], "iterations", password)
    assert "unreasonable iteration count" in str(error)


def test_a_huge_count_hidden_inside_encrypted_contents_is_refused():
    """The key bag's count is seen only once its contents are decrypted (cheaply here)."""
    hidden = safe_contents(shrouded_bag(pkcs12_pbe("pkcs12_sha1_tripledes_3key", HUGE), b"\x00" * 64))
    algorithm, encrypted = pbes2_encrypt(hidden)
    for mac in (1, None):
        error = unreadable(pfx(encrypted_safe(algorithm, encrypted), mac_iterations=mac), "iterations")
        assert "unreasonable iteration count" in str(error)


def test_a_zero_or_negative_count_is_malformed():
    for count in (0, -5):
        unreadable(pfx(encrypted_safe(pbes2(count), b"\x00" * 64)), "malformed")
        unreadable(pfx(plain_safe(safe_contents()), mac_iterations=count), "malformed")


def test_the_bound_is_inclusive_and_the_counts_of_a_file_add_up(monkeypatch):
    """Scaled down (the real bound costs seconds to reach): the MAC, the certificates and the
    key of p12.write's keystores ask 2048 each."""
    monkeypatch.setattr(p12, "ITERATIONS", 2048)
    key, certificate = identity()
    data = p12.write(p12.Keystore([p12.KeyEntry("authentication", key, certificate)]), PASSWORD)
    monkeypatch.setattr(p12, "MAX_ITERATIONS", 2048)
    monkeypatch.setattr(p12, "MAX_TOTAL_ITERATIONS", 3 * 2048)
    assert p12.read(data, PASSWORD).get("authentication").certificate == certificate
    monkeypatch.setattr(p12, "MAX_ITERATIONS", 2047)
    assert "unreasonable iteration count" in str(unreadable(data, "iterations"))
    monkeypatch.setattr(p12, "MAX_ITERATIONS", 2048)
    monkeypatch.setattr(p12, "MAX_TOTAL_ITERATIONS", 3 * 2048 - 1)
    assert "in total" in str(unreadable(data, "iterations"))


def test_many_bags_at_a_high_count_cannot_add_up_to_a_hang():
    """The total is the hashing asked: a count times the digest blocks derived (3 for a PKCS#12
    3DES bag, 1 for PBES2 AES-256 with SHA-256), all refused before the first derivation."""
    safes = [encrypted_safe(pbes2(p12.MAX_ITERATIONS), b"\x00" * 64) for _ in range(4)]
    assert "in total" in str(unreadable(pfx(*safes), "iterations"))
    triple_des = pkcs12_pbe("pkcs12_sha1_tripledes_3key", p12.MAX_ITERATIONS)
    key_at_bound = plain_safe(safe_contents(shrouded_bag(triple_des, b"\x00" * 64)))
    error = unreadable(pfx(key_at_bound, mac_iterations=p12.MAX_ITERATIONS), "iterations")
    assert "in total" in str(error)


# --- malformed contents -------------------------------------------------------------------------


@pytest.mark.parametrize("mac", [1, None])
@pytest.mark.parametrize("size", [5, 0, 13])
def test_an_rc2_blob_of_no_whole_block_is_refused(mac, size):
    data = pfx(encrypted_safe(pkcs12_pbe("pkcs12_sha1_rc2_40", 2048), b"\x42" * size), mac_iterations=mac)
    assert "8-byte" in str(unreadable(data, "malformed"))


def test_an_oversize_rc2_blob_is_refused_before_decrypting():
    size = p12.MAX_RC2_BYTES + 8
    unreadable(pfx(encrypted_safe(pkcs12_pbe("pkcs12_sha1_rc2_40", 1), b"\x42" * size)), "size")


def test_pbes2_with_a_stated_key_length_or_iv_that_does_not_fit_is_refused():
    unreadable(pfx(encrypted_safe(pbes2(1000, key_length=2**31), b"\x00" * 64)), "malformed")
    unreadable(pfx(encrypted_safe(pbes2(1000, iv=b"\x01" * 5), b"\x00" * 64)), "malformed")


def test_garbage_key_bags_are_refused():
    _, certificate = identity()
    certificates = cert_bag(certificate)
    garbage = [
        tlv(0x30, tlv(0x02, b"\x01")),  # a SEQUENCE of one INTEGER
        tlv(0x04, b"not a key"),
        b"\xff" * 9,
    ]
    for value in garbage:
        refused(pfx(plain_safe(safe_contents(raw_bag("key_bag", value), certificates))))
    # DER that parses but is no key mcn uses
    dsa_key = dsa.generate_private_key(1024)
    error = unreadable(pfx(plain_safe(safe_contents(key_bag(dsa_key), certificates))), "unsupported")
    assert "RSA and EC" in str(error)


def test_an_rsa_key_too_big_to_check_quickly_is_refused_before_loading():
    """8192 bits and more: OpenSSL's check of the primes would take seconds (or hours)."""
    n = (1 << 16383) | 1
    rsa = keys.RSAPrivateKey(
        {
            "version": 0,
            "modulus": n,
            "public_exponent": 65537,
            "private_exponent": n - 2,
            "prime1": (1 << 8191) | 1,
            "prime2": (1 << 8191) | 3,
            "exponent1": 3,
            "exponent2": 3,
            "coefficient": 3,
        }
    )
    info = keys.PrivateKeyInfo(
        {"version": 0, "private_key_algorithm": {"algorithm": "rsa"}, "private_key": rsa}
    ).dump()
    assert "RSA over 4096" in str(
        unreadable(pfx(plain_safe(safe_contents(raw_bag("key_bag", info)))), "key-size")
    )


def test_garbage_certificate_bags_are_refused():
    key, _ = identity()
    for value in (b"\x30\x03\x02\x01\x01", b"\x00" * 40, os.urandom(300)):
        cert_value = tlv(
            0x30, core.ObjectIdentifier("1.2.840.113549.1.9.22.1").dump() + tlv(0xA0, tlv(0x04, value))
        )
        data = pfx(plain_safe(safe_contents(key_bag(key), raw_bag("cert_bag", cert_value))))
        assert "certificate" in str(refused(data))


def test_encrypted_garbage_is_damage_when_the_mac_proves_the_password_and_a_wrong_password_when_not():
    algorithm, encrypted = pbes2_encrypt(b"\x30\x03\x02\x01\x01 garbage, not SafeContents")
    damaged = refused(pfx(encrypted_safe(algorithm, encrypted)))
    assert isinstance(damaged, p12.KeystoreUnreadable)
    unconfirmed = refused(pfx(encrypted_safe(algorithm, encrypted), mac_iterations=None))
    assert isinstance(unconfirmed, p12.KeystoreError) and "wrong password" in str(unconfirmed)
    # a key that decrypts to garbage
    algorithm, encrypted = pbes2_encrypt(b"\x30\x03\x02\x01\x01")
    bag = plain_safe(safe_contents(shrouded_bag(algorithm, encrypted)))
    assert isinstance(refused(pfx(bag)), p12.KeystoreUnreadable)
    assert isinstance(refused(pfx(bag, mac_iterations=None)), p12.KeystoreError)


def test_a_wrong_password_is_a_keystore_error():
    error = refused(valid_plain(), "not-the-password")
    assert isinstance(error, p12.KeystoreError) and "wrong password" in str(error)


def test_a_signed_keystore_and_unknown_algorithms_are_unsupported():
    unreadable(
        pfx(encrypted_safe(algos.EncryptionAlgorithm({"algorithm": "pbes1_md5_des", "parameters": {
            "salt": b"12345678", "iterations": 1}}), b"\x00" * 64)),
        "unsupported",
    )  # fmt: skip
    signed = bytearray(valid_plain())
    data_oid = core.ObjectIdentifier("1.2.840.113549.1.7.1").dump()
    at = signed.index(data_oid)
    signed[at : at + len(data_oid)] = core.ObjectIdentifier("1.2.840.113549.1.7.2").dump()
    refused(bytes(signed))


def test_truncations_of_a_valid_keystore_are_refused():
    key, certificate = identity()
    algorithm, encrypted = pbes2_encrypt(pkcs8(key), iterations=1)
    data = pfx(plain_safe(safe_contents(shrouded_bag(algorithm, encrypted), cert_bag(certificate))))
    start = time.perf_counter()
    for end in range(len(data)):
        refused(data[:end])
    assert time.perf_counter() - start < 5


def test_random_bytes_are_not_a_keystore():
    generator = random.Random(11)
    for size in (1, 2, 3, 16, 100, 1000, 50_000):
        for _ in range(20):
            unreadable(generator.randbytes(size))
    unreadable(b"\x30\x80" * 20000)  # deep indefinite-length nesting
    unreadable(b"", "empty")
    unreadable(b"\x00" * (p12.MAX_KEYSTORE_BYTES + 1), "size")


def test_mutations_of_a_valid_keystore_open_or_are_refused_cleanly():
    """Bytes changed, cut or inserted inside the (MAC-protected) contents, the MAC made right
    again: the key and certificate bags themselves are hostile."""
    key, certificate = identity()
    base = safe_contents(key_bag(key), cert_bag(certificate))
    generator = random.Random(6)
    outcomes = set()
    for _ in range(400):
        mutated = bytearray(base)
        for _ in range(generator.randint(1, 3)):
            at = generator.randrange(len(mutated))
            choice = generator.random()
            if choice < 0.6:
                mutated[at] = generator.randrange(256)
            elif choice < 0.8:
                del mutated[at : at + generator.randint(1, 8)]
            else:
                mutated[at:at] = generator.randbytes(generator.randint(1, 8))
        data = pfx(plain_safe(bytes(mutated)))
        start = time.perf_counter()
        try:
            p12.read(data, PASSWORD)
            outcomes.add("read")
        except (p12.KeystoreUnreadable, p12.KeystoreError) as error:
            assert "\n" not in str(error)
            outcomes.add(type(error).__name__)
        assert time.perf_counter() - start < SECOND
    assert "KeystoreUnreadable" in outcomes


def test_too_many_bags_are_refused():
    _, certificate = identity()
    many = safe_contents(*[cert_bag(certificate)] * (p12.MAX_BAGS + 1))
    unreadable(pfx(plain_safe(many)), "size")


# --- files ---------------------------------------------------------------------------------------


def _load(path: Path, field: str = "fallback") -> Exception:
    start = time.perf_counter()
    with pytest.raises((InvalidInput, AuthenticationNeeded)) as caught:
        load_keystore(path, PASSWORD, field)
    assert time.perf_counter() - start < SECOND
    message = str(caught.value)
    assert message.startswith(f"{field}") and "\n" not in message
    return caught.value


def test_special_files_are_refused_without_reading_them(tmp_path):
    fifo = tmp_path / "pipe.p12"
    os.mkfifo(fifo)
    directory = tmp_path / "folder.p12"
    directory.mkdir()
    empty = tmp_path / "empty.p12"
    empty.write_bytes(b"")
    oversize = tmp_path / "big.p12"
    with oversize.open("wb") as handle:
        handle.truncate(p12.MAX_KEYSTORE_BYTES + 1)  # sparse: costs no disk
    cases = {fifo: "not-a-file", directory: "not-a-file", empty: "empty", oversize: "size"}
    cases[tmp_path / "absent.p12"] = "missing"
    link = tmp_path / "link.p12"
    link.symlink_to(fifo)
    cases[link] = "not-a-file"
    if Path("/dev/zero").exists():
        cases[Path("/dev/zero")] = "not-a-file"
    cases[Path(f"{tmp_path}/nul\0.p12")] = "unreadable"
    for path, rule in cases.items():
        error = _load(path)
        assert isinstance(error, InvalidInput) and error.rule == rule, (path, error)
        with pytest.raises(p12.KeystoreUnreadable):
            p12.read_file(path)


def test_a_fifo_swapped_in_after_the_check_does_not_block(tmp_path, monkeypatch):
    """The file is checked, then opened non-blocking and checked again: a FIFO put in its place
    between the two (simulated: os.stat lies) is refused at once instead of waiting for a writer."""
    fifo = tmp_path / "swapped.p12"
    os.mkfifo(fifo)
    regular = tmp_path / "regular"
    regular.write_bytes(b"x")
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda path, *a, **k: real_stat(regular if Path(path) == fifo else path))
    error = _load(fifo)
    assert isinstance(error, InvalidInput) and error.rule == "not-a-file" and "named pipe" in str(error)


def test_dev_zero_is_refused():
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero here")
    error = _load(Path("/dev/zero"))
    assert "character device" in str(error)


def test_a_file_name_with_control_characters_stays_on_one_line(tmp_path):
    path = tmp_path / "evil\n\x1b[31mname.p12"
    path.write_bytes(b"\x00" * 10)
    error = _load(path)
    assert "\\n" in str(error) and "\x1b" not in str(error)


def test_load_keystore_maps_wrong_password_to_authentication_needed(tmp_path):
    path = tmp_path / "ok.p12"
    path.write_bytes(valid_plain())
    assert load_keystore(path, PASSWORD).certificate == identity()[1]
    with pytest.raises(AuthenticationNeeded, match="wrong password"):
        load_keystore(path, "nope")


# --- through the command line --------------------------------------------------------------------


def test_mcn_login_refuses_hostile_keystores_with_one_line(mcn, sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("MCN_KEYSTORE_PASSWORD", PASSWORD)
    key, _ = identity()
    fifo = tmp_path / "fifo.p12"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.p12"
    folder.mkdir()
    oversize = tmp_path / "oversize.p12"
    with oversize.open("wb") as handle:
        handle.truncate(p12.MAX_KEYSTORE_BYTES + 1)
    garbage_cert = tlv(
        0x30, core.ObjectIdentifier("1.2.840.113549.1.9.22.1").dump() + tlv(0xA0, tlv(0x04, b"\0" * 9))
    )
    files: dict[str, tuple[bytes | Path, int]] = {
        "huge MAC count": (pfx(plain_safe(safe_contents()), mac_iterations=HUGE), ExitStatus.BAD_INPUT),
        "huge RC2 count": (_bags_with_huge_counts()["rc2-40 encrypted contents"], ExitStatus.BAD_INPUT),
        "huge PBES2 count": (_bags_with_huge_counts()["pbes2 shrouded key"], ExitStatus.BAD_INPUT),
        "5-byte RC2 blob": (
            pfx(encrypted_safe(pkcs12_pbe("pkcs12_sha1_rc2_40", 2048), b"\x42" * 5)),
            ExitStatus.BAD_INPUT,
        ),
        "garbage key": (
            pfx(plain_safe(safe_contents(raw_bag("key_bag", b"\x30\x00")))),
            ExitStatus.BAD_INPUT,
        ),
        "garbage certificate": (
            pfx(plain_safe(safe_contents(key_bag(key), raw_bag("cert_bag", garbage_cert)))),
            ExitStatus.BAD_INPUT,
        ),
        "truncated": (valid_plain()[:200], ExitStatus.BAD_INPUT),
        "random": (random.Random(3).randbytes(4000), ExitStatus.BAD_INPUT),
        "empty": (b"", ExitStatus.BAD_INPUT),
        "wrong password": (valid_plain(), ExitStatus.AUTH_NEEDED),
        "fifo": (fifo, ExitStatus.BAD_INPUT),
        "directory": (folder, ExitStatus.BAD_INPUT),
        "oversize": (oversize, ExitStatus.BAD_INPUT),
    }
    if Path("/dev/zero").exists():
        files["/dev/zero"] = (Path("/dev/zero"), ExitStatus.BAD_INPUT)
    for name, (content, expected) in files.items():
        if isinstance(content, Path):
            path = content
        else:
            path = tmp_path / f"{name.replace('/', '_')}.p12"
            path.write_bytes(content)
        if name == "wrong password":
            monkeypatch.setenv("MCN_KEYSTORE_PASSWORD", "not-the-password")
        start = time.perf_counter()
        result = mcn("login", "--fallback", str(path))
        elapsed = time.perf_counter() - start
        monkeypatch.setenv("MCN_KEYSTORE_PASSWORD", PASSWORD)
        assert result.code == expected, (name, result.code, result.err)
        lines = result.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("mcn: error: fallback"), (name, result.err)
        assert "Traceback" not in result.err and "Error:" not in result.err, (name, result.err)
        assert elapsed < SECOND, (name, elapsed)
    # the organisation's keystore is read the same way
    monkeypatch.setenv("MCN_ORG_PASSWORD", PASSWORD)
    result = mcn("login", "--org", str(fifo), "--fallback", str(tmp_path / "empty.p12"))
    assert result.code == ExitStatus.BAD_INPUT and result.err.count("\n") == 1 and "org" in result.err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_cert_install_refuses_a_special_file_as_keystore(mcn, sandbox, tmp_path, kind):
    """`mcn cert install --keystore` reads the keystore the same guarded way as login."""
    from tests.test_certificates import PASSWORD, install, request_org

    requested = request_org(mcn).json()
    if kind == "fifo":
        special = tmp_path / "ks.p12"
        os.mkfifo(special)
    else:
        special = Path("/dev/zero")
        if not special.exists():
            pytest.skip("no /dev/zero on this system")
    start = time.perf_counter()
    result = install(mcn, Path(requested["issued"]), PASSWORD, "--keystore", str(special))
    assert time.perf_counter() - start < 2
    assert result.code == ExitStatus.BAD_INPUT and result.err.count("\n") == 1, result.err


def test_an_rsa_key_with_lopsided_primes_is_refused_before_openssl_tests_them():
    """OpenSSL tests both primes of a key it loads: a 4094-bit prime with q = 3 costs seconds a key
    whatever the password (a keystore without MAC). Real keys have primes of half the modulus."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    big = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_numbers().p
    lopsided = keys.RSAPrivateKey(
        {
            "version": 0,
            "modulus": big * 3,
            "public_exponent": 65537,
            "private_exponent": 1,
            "prime1": big,
            "prime2": 3,
            "exponent1": 1,
            "exponent2": 1,
            "coefficient": 1,
        }
    )
    info = keys.PrivateKeyInfo.wrap(lopsided, "rsa")
    bag = pkcs12.SafeBag({"bag_id": "key_bag", "bag_value": info}).dump()
    unreadable(pfx(plain_safe(safe_contents(bag)), mac_iterations=None), "malformed")
