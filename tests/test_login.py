from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from mcn_cli.sandbox.world import ANNE, LINDE, MARC, PARC, PIETER
from mcn_cli.status import ExitStatus
from tests.conftest import ROOT, SANDBOX_PIN


def annex_1_niss() -> str:
    from datetime import date

    from mcn_cli.sandbox import population

    return next(p.niss for p in population.population(date.today()) if p.scenario == "annex-1")


def sessions_in_db(mcn_home) -> int:
    import sqlite3

    path = mcn_home / "data" / "mcn.sqlite3"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as c:
        return c.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]


def test_eid_login_with_softhsm(mcn, sandbox, mcn_home, monkeypatch):
    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    result = mcn("login", "--json")
    assert result.code == 0, result.err
    shown = mcn("session", "show", "--json").json()
    assert shown["user"] == {"niss": ANNE.niss, "name": "Anne Lambert"}
    assert shown["pharmacy"] == PARC.nihii
    assert shown["holder_nihii"] == ANNE.nihii11
    expires = datetime.fromisoformat(shown["expires"])
    assert timedelta(hours=11, minutes=58) < expires - datetime.now(UTC) <= timedelta(hours=12)
    # the PIN is nowhere on disk
    for path in mcn_home.rglob("*"):
        if path.is_file():
            assert SANDBOX_PIN.encode() not in path.read_bytes(), path
    # the session file is owner-only and holds no token in clear
    database = mcn_home / "data" / "mcn.sqlite3"
    assert database.stat().st_mode & 0o077 == 0
    assert b"NIHII-PHARMACY" not in database.read_bytes()


def test_ec_card_of_the_second_pharmacist(mcn, sandbox, monkeypatch):
    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    result = mcn("login", "--user", PIETER.niss, "--session", "pieter", "--json")
    assert result.code == 0, result.err
    assert result.json()["user"]["name"] == "Pieter Claes"


def test_pin_from_a_file_descriptor(mcn, sandbox):
    read, write = os.pipe()
    os.write(write, (SANDBOX_PIN + "\n").encode())
    os.close(write)
    try:
        assert mcn("login", "--pin-fd", str(read)).code == 0
    finally:
        os.close(read)


def test_wrong_pin_writes_no_session(mcn, sandbox, mcn_home, monkeypatch):
    monkeypatch.setenv("MCN_PIN", "0000")
    result = mcn("login")
    assert result.code == ExitStatus.AUTH_NEEDED
    assert "wrong eID PIN" in result.err and "Traceback" not in result.err
    assert sessions_in_db(mcn_home) == 0


def test_no_pin_and_no_terminal(mcn, sandbox, monkeypatch):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    result = mcn("login")
    assert result.code == ExitStatus.AUTH_NEEDED and "MCN_PIN" in result.err


def test_fallback_login_without_any_pkcs11_module(mcn, sandbox, mcn_home):
    (mcn_home / "config.toml").write_text('pkcs11_module = "/nonexistent/libbeidpkcs11.so"\n')
    result = mcn("login", "--fallback", str(sandbox.personal_keystore(ANNE.niss)), "--json")
    assert result.code == 0, result.err
    assert result.json()["user"]["niss"] == ANNE.niss
    # and the eID path does need the module
    assert mcn("login", "--session", "eid").code == ExitStatus.BAD_INPUT


def test_wrong_keystore_password(mcn, sandbox, mcn_home, monkeypatch):
    monkeypatch.setenv("MCN_KEYSTORE_PASSWORD", "not-the-password")
    copy = mcn_home / "SSIN=mine.p12"
    copy.write_bytes(sandbox.personal_keystore(ANNE.niss).read_bytes())
    result = mcn("login", "--fallback", str(copy))
    assert result.code == ExitStatus.AUTH_NEEDED and "wrong password" in result.err
    assert sessions_in_db(mcn_home) == 0


def test_another_pharmacys_certificate_is_refused(mcn, sandbox, mcn_home, monkeypatch):
    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    result = mcn("login", "--org", str(sandbox.org_keystore(LINDE.nihii)))
    assert result.code == ExitStatus.AUTH_NEEDED
    assert "linked" in result.err
    assert sessions_in_db(mcn_home) == 0


def test_pharmacist_not_linked_to_the_pharmacy_is_refused(mcn, sandbox, mcn_home):
    result = mcn("login", "--fallback", str(sandbox.personal_keystore(MARC.niss)))
    assert result.code == ExitStatus.AUTH_NEEDED and "linked" in result.err
    assert sessions_in_db(mcn_home) == 0
    # but at his own pharmacy he is welcome
    own = mcn(
        "login",
        "--fallback",
        str(sandbox.personal_keystore(MARC.niss)),
        "--org",
        str(sandbox.org_keystore(LINDE.nihii)),
    )
    assert own.code == 0, own.err


def test_expired_certificate_is_refused(mcn, sandbox, mcn_home):
    result = mcn("login", "--fallback", str(sandbox.expired_keystore(ANNE.niss)))
    assert result.code == ExitStatus.AUTH_NEEDED and "expired" in result.err
    assert sessions_in_db(mcn_home) == 0


def test_sessions_side_by_side_one_user_each_and_logout(mcn, sandbox, monkeypatch):
    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    assert mcn("login").code == 0
    assert mcn("login", "--session", "counter-2", "--user", PIETER.niss).code == 0
    names = [s["session"] for s in mcn("session", "list", "--json").json()]
    assert names == ["counter-2", "default"]
    taken = mcn("login", "--user", PIETER.niss)
    assert taken.code == ExitStatus.BAD_INPUT and "belongs to Anne Lambert" in taken.err
    assert mcn("logout", "--session", "counter-2", "--json").json() == {"closed": 1}
    assert mcn("logout", "--all", "--json").json() == {"closed": 1}
    missing = mcn("session", "show")
    assert missing.code == ExitStatus.AUTH_NEEDED and "mcn login" in missing.err


def test_expired_session_needs_a_new_login(mcn, sandbox, monkeypatch):
    from mcn_cli.actions.local import open_cache
    from mcn_cli.store import sessions

    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    assert mcn("login").code == 0
    cache = open_cache()
    current = sessions.require(cache.db, cache.vault, "default")
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat(timespec="seconds")
    from dataclasses import replace

    sessions.save(cache.db, cache.vault, replace(current, expires=past))
    assert mcn("cache", "purge", "--json").json()["sessions"] == 1  # cron removes the token and key
    sessions.save(cache.db, cache.vault, replace(current, expires=past))
    result = mcn("session", "show", "--json")
    assert result.code == ExitStatus.AUTH_NEEDED and result.json()["error"]["hint"] == "mcn login"


def test_against_a_separate_sandbox_server_process(mcn, sandbox, mcn_home):
    env = {**os.environ, "MCN_HOME": str(mcn_home)}
    server = subprocess.Popen(
        [sys.executable, "-m", "mcn_cli", "sandbox", "serve", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline()
        assert "sandbox serving on https://127.0.0.1:" in line
        from mcn_cli.sandbox import runtime

        url = runtime.running_url(sandbox)
        assert url and url in line
        result = mcn("login", "--fallback", str(sandbox.personal_keystore(PIETER.niss)))
        assert result.code == 0, result.err
        assert not runtime._IN_PROCESS, "the client should have used the running server"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_sandbox_init_is_idempotent_and_changes_the_pin(mcn, sandbox, monkeypatch):
    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    first = mcn("sandbox", "init", "--json").json()
    assert first["created"] is False and first["tokens"] == "kept"
    monkeypatch.setenv("MCN_PIN", "246813")
    changed = mcn("sandbox", "init", "--json").json()
    assert changed["tokens"] == "created"
    assert mcn("login").code == 0
    monkeypatch.setenv("MCN_PIN", "12ab")
    assert mcn("sandbox", "init").code == ExitStatus.BAD_INPUT


@pytest.mark.parametrize("env", ["acc", "prod"])
def test_real_environments_need_the_holder_before_any_network(mcn, sandbox, env, monkeypatch):
    monkeypatch.setenv("MCN_KEYSTORE_PASSWORD", "mcn-sandbox")
    monkeypatch.setenv("MCN_ORG_PASSWORD", "mcn-sandbox")
    result = mcn(
        "--env",
        env,
        "login",
        "--fallback",
        str(sandbox.personal_keystore(ANNE.niss)),
        "--org",
        str(sandbox.org_keystore(PARC.nihii)),
    )
    assert result.code == ExitStatus.BAD_INPUT and "pharmacy_holder" in result.err
    assert mcn("--env", "test", "session", "list").code == ExitStatus.BAD_INPUT


def test_the_retired_pinned_sts_certificate_setting_is_refused_with_a_reason(mcn, mcn_home):
    mcn_home.mkdir(parents=True, exist_ok=True)
    (mcn_home / "config.toml").write_text('sts_certificate = "sts.pem"\n')
    result = mcn("login")
    assert result.code == ExitStatus.BAD_INPUT and "trusted by chain" in result.err


def test_sessions_survive_a_rekey_to_a_passphrase(mcn, sandbox, monkeypatch):
    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    assert mcn("login").code == 0
    monkeypatch.setenv("MCN_CACHE_NEW_PASSPHRASE", "a long enough passphrase")
    assert mcn("cache", "rekey", "--passphrase").code == 0
    monkeypatch.setenv("MCN_CACHE_PASSPHRASE", "a long enough passphrase")
    shown = mcn("session", "show", "--json")
    assert shown.code == 0 and shown.json()["user"]["niss"] == ANNE.niss
    monkeypatch.setenv("MCN_CACHE_PASSPHRASE", "the wrong passphrase!")
    assert mcn("session", "show").code == ExitStatus.DATA_INTEGRITY


def test_a_non_titular_pharmacist_logs_in_with_the_titular_as_holder(mcn, sandbox, monkeypatch):
    """Pieter works at the Parc, whose titular is Anne: the session's holder values are the ones
    eHealth certified for Anne, and a consultation names her as the care provider."""
    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    himself = mcn("login", "--user", PIETER.niss, "--holder", PIETER.niss)
    assert himself.code == ExitStatus.AUTH_NEEDED and "linked" in himself.err
    result = mcn("login", "--user", PIETER.niss, "--holder", ANNE.niss, "--json")
    assert result.code == 0, result.err
    assert result.json()["user"]["niss"] == PIETER.niss and result.json()["holder_nihii"] == ANNE.nihii11
    # the sandbox refuses a care provider other than the certified holder: this answer proves it
    assert mcn("consult", "--niss", annex_1_niss()).code == 0


def test_the_holder_comes_from_the_setting_and_is_checked_before_anything(
    mcn, sandbox, mcn_home, monkeypatch
):
    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    (mcn_home / "config.toml").write_text(f'pharmacy_holder = "{MARC.niss}"\n')
    refused = mcn("login")  # Marc is not the Parc's titular
    assert refused.code == ExitStatus.AUTH_NEEDED and "linked" in refused.err
    (mcn_home / "config.toml").write_text('pharmacy_holder = "12345678901"\n')
    bad = mcn("login")
    assert bad.code == ExitStatus.BAD_INPUT and "pharmacy_holder" in bad.err
    assert sessions_in_db(mcn_home) == 0


@pytest.mark.parametrize("protocol", ["wstrust", "saml"])
def test_both_sts_variants_open_a_session_that_consults(mcn, sandbox, mcn_home, monkeypatch, protocol):
    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    (mcn_home / "config.toml").write_text(f'sts_protocol = "{protocol}"\n')
    result = mcn("login", "--json")
    assert result.code == 0, result.err
    assert result.json()["holder_nihii"] == ANNE.nihii11
    assert mcn("consult", "--niss", annex_1_niss()).code == 0


def test_ec_keys_end_to_end_need_ws_trust(mcn, sandbox, mcn_home, tmp_path):
    """Marc's personal certificate and his pharmacy's organisation certificate hold EC P-384 keys,
    as eHealth issues them now: WS-Trust gives a session (challenge answered with the EC key);
    the SAML variant is refused before anything is sent."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from mcn_cli.ehealth.signers import load_keystore

    org = load_keystore(sandbox.org_keystore(LINDE.nihii), "mcn-sandbox")
    assert (
        isinstance(org.private_key, ec.EllipticCurvePrivateKey) and org.private_key.curve.name == "secp384r1"
    )
    args = (
        "--fallback",
        str(sandbox.personal_keystore(MARC.niss)),
        "--org",
        str(sandbox.org_keystore(LINDE.nihii)),
    )
    trace = tmp_path / "trace"
    assert mcn("login", *args, "--trace", str(trace)).code == 0
    steps = sorted(p.name.split("-STS-")[1] for p in trace.glob("*-request.xml"))
    assert steps == ["1-RequestSecurityToken-request.xml", "2-Challenge-request.xml"]
    (mcn_home / "config.toml").write_text('sts_protocol = "saml"\n')
    refused = mcn("login", *args, "--session", "saml", "--trace", str(tmp_path / "saml"))
    assert refused.code == ExitStatus.BAD_INPUT and "wstrust" in refused.err
    assert not (tmp_path / "saml").exists()  # nothing was sent


def test_login_trace_is_owner_only_and_warned(mcn, sandbox, monkeypatch, tmp_path):
    import stat

    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    trace = tmp_path / "trace"
    result = mcn("login", "--trace", str(trace))
    assert result.code == 0 and "personal data" in result.err
    files = sorted(trace.iterdir())
    assert len(files) == 4  # request and answer, twice (the challenge round trip)
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert SANDBOX_PIN.encode() not in path.read_bytes()


def test_unknown_sts_protocol_is_bad_input(mcn, sandbox, mcn_home, monkeypatch):
    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    (mcn_home / "config.toml").write_text('sts_protocol = "legacy"\n')
    result = mcn("login")
    assert result.code == ExitStatus.BAD_INPUT and "sts_protocol" in result.err


def test_a_sandbox_of_the_older_layout_is_recreated_by_init(mcn, sandbox, monkeypatch):
    sandbox.layout_file.write_text("1\n")
    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    stale = mcn("login")
    assert stale.code == ExitStatus.BAD_INPUT and "mcn sandbox init" in stale.err
    assert mcn("sandbox", "init", "--json").json()["created"] is True  # MCN_PIN gives the PIN
    assert mcn("login").code == 0


def test_renewal_through_ws_trust_keeps_the_session_and_extends_it(mcn, sandbox, monkeypatch, tmp_path):
    from mcn_cli.actions.local import open_cache
    from mcn_cli.store import sessions

    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    assert mcn("login", "--user", PIETER.niss, "--session", "c2").code == 0
    cache = open_cache()
    before = sessions.require(cache.db, cache.vault, "c2")
    trace = tmp_path / "trace"
    renewed = mcn("login", "--renew", "--session", "c2", "--trace", str(trace), "--json")
    assert renewed.code == 0, renewed.err
    after = sessions.require(cache.db, cache.vault, "c2")
    assert after.token != before.token and after.user_niss == PIETER.niss
    assert after.holder_niss == ANNE.niss and after.holder_nihii11 == ANNE.nihii11
    assert after.expires >= before.expires
    request = next(trace.glob("*STS-1-RequestSecurityToken-request.xml")).read_bytes()
    assert b"/ws-trust/200512/Renew</" in request and b"RenewTarget" in request
    assert mcn("consult", "--niss", annex_1_niss(), "--session", "c2").code == 0
    assert mcn("login", "--renew", "--session", "c2", "--org", "x.p12").code == ExitStatus.BAD_INPUT


def test_renewal_needs_ws_trust_and_a_valid_session(mcn, sandbox, mcn_home, monkeypatch):
    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    missing = mcn("login", "--renew")
    assert missing.code == ExitStatus.AUTH_NEEDED
    assert mcn("login").code == 0
    (mcn_home / "config.toml").write_text('sts_protocol = "saml"\n')
    refused = mcn("login", "--renew")
    assert refused.code == ExitStatus.BAD_INPUT and "wstrust" in refused.err


def test_an_office_renews_without_any_secret(mcn, sandbox, monkeypatch):
    monkeypatch.setenv("MCN_ORG_PASSWORD", "mcn-sandbox")
    assert mcn("login", "--org", str(sandbox.ot_keystore()), "--session", "ot").code == 0
    monkeypatch.delenv("MCN_ORG_PASSWORD")
    renewed = mcn("login", "--renew", "--session", "ot", "--json")
    assert renewed.code == 0, renewed.err
    assert renewed.json()["kind"] == "ot"


def test_a_vendor_test_rig_is_reached_through_settings_alone(mcn, sandbox, mcn_home, tmp_path, monkeypatch):
    """acc pointed at a stand-in (here the sandbox server) by settings only: its address, its
    TLS CA added to the system's, its token CAs and signer name. Without the TLS CA, nothing is
    sent and the error says why."""
    from mcn_cli.sandbox import runtime
    from mcn_cli.sandbox.world import STS_SIGNER

    base = runtime.base_url(sandbox)
    anchors = tmp_path / "rig-sts-cas.pem"
    anchors.write_bytes(sandbox.ca_cert("root").read_bytes() + sandbox.ca_cert("ehealth").read_bytes())
    settings = "\n".join(
        [
            f'sts_url = "{base}/IAM/SecurityTokenService/v1"',
            f'insurability_url = "{base}/Insurability/v2"',
            f'sts_trust_anchors = "{anchors}"',
            f'sts_signer = "{STS_SIGNER}"',
            f'pharmacy_holder = "{ANNE.niss}"',
            f'org_keystore = "{sandbox.org_keystore(PARC.nihii)}"',
        ]
    )
    monkeypatch.setenv("MCN_KEYSTORE_PASSWORD", "mcn-sandbox")
    monkeypatch.setenv("MCN_ORG_PASSWORD", "mcn-sandbox")
    login = ("--env", "acc", "login", "--fallback", str(sandbox.personal_keystore(ANNE.niss)), "--json")
    (mcn_home / "config.toml").write_text(settings + "\n")
    untrusted = mcn(*login)
    assert untrusted.code == ExitStatus.SERVICE_UNAVAILABLE and "TLS" in untrusted.err
    assert "the eHealth STS: its TLS certificate is not trusted" in untrusted.err
    assert base.split("//")[1] not in untrusted.err  # the service is named, not its address
    (mcn_home / "config.toml").write_text(settings + f'\ntls_ca_bundle = "{sandbox.ca_cert("root")}"\n')
    result = mcn(*login)
    assert result.code == 0, result.err
    assert result.json()["env"] == "acc" and result.json()["holder_nihii"] == ANNE.nihii11
    (mcn_home / "config.toml").write_text(
        settings.replace(STS_SIGNER, "CBE=0809394427, IAMACC")
        + f'\ntls_ca_bundle = "{sandbox.ca_cert("root")}"\n'
    )
    impostor = mcn(*login)  # the stand-in's token is not signed by the name acc expects
    assert impostor.code == ExitStatus.AUTH_NEEDED and "not by the STS" in impostor.err


def test_login_warns_of_a_certificate_expiring_within_60_days(mcn, sandbox, mcn_home):
    from datetime import UTC, datetime, timedelta

    from mcn_cli.sandbox import pki
    from mcn_cli.sandbox.setup import load_ca, personal_subject

    ehealth = load_ca(sandbox, "ehealth")
    soon = pki.issue(
        personal_subject(ANNE.niss, "ANNE LAMBERT"),
        pki.rsa_key(),
        ehealth,
        not_before=datetime.now(UTC) - timedelta(days=700),
        days=730,
    )
    keystore = sandbox.keystores / "soon" / f"SSIN={ANNE.niss}.p12"
    keystore.parent.mkdir(parents=True)
    keystore.write_bytes(pki.keystore_bytes(soon, [ehealth.certificate], "mcn-sandbox"))
    result = mcn("login", "--fallback", str(keystore))
    assert result.code == 0, result.err
    assert "warning: the identification certificate expires in 29 days" in result.err


def test_an_unreachable_sts_is_named_not_its_address(mcn, sandbox, mcn_home, monkeypatch):
    import socket

    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    (mcn_home / "config.toml").write_text(f'sts_url = "https://127.0.0.1:{port}/IAM/SecurityTokenService/v1"\n')
    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    result = mcn("login")
    assert result.code == ExitStatus.SERVICE_UNAVAILABLE, result.err
    assert "cannot reach the eHealth STS: the network or the service is down" in result.err
    assert f"127.0.0.1:{port}" not in result.err
