"""`mcn cert list` warns of expired certificates too, and `--check` gives cron an exit status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mcn_cli.ehealth import certificates as certs
from mcn_cli.sandbox.world import ANNE, PARC
from mcn_cli.status import ExitStatus


@pytest.fixture
def keystores(mcn_home) -> Path:
    folder = mcn_home / "data" / "keystores"
    folder.mkdir(parents=True)
    return folder


def place(sandbox, folder: Path, holder: certs.Holder, *, age_days: int, days: int) -> Path:
    from mcn_cli.sandbox import pki
    from mcn_cli.sandbox.setup import _keystore, load_ca

    ehealth = load_ca(sandbox, "ehealth")
    issued = pki.issue(
        certs.subject(holder),
        pki.rsa_key(),
        ehealth,
        not_before=datetime.now(UTC) - timedelta(days=age_days),
        days=days,
    )
    path = folder / f"{holder.label}.p12"
    _keystore(path, issued, [ehealth.certificate])
    return path


def mine(result, folder: Path) -> list[dict]:
    return [i for i in result.json() if i["keystore"].startswith(str(folder))]


def test_an_expired_certificate_is_warned_of_and_check_exits_4(mcn, sandbox, keystores):
    place(sandbox, keystores, certs.Holder("SSIN", ANNE.niss, "ANNE LAMBERT"), age_days=400, days=390)
    listed = mcn("cert", "list")
    assert listed.code == 0
    assert "warning" in listed.err and "expired on" in listed.err and ANNE.niss in listed.err
    item = mine(mcn("cert", "list", "--json"), keystores)[0]
    assert item["state"] == "expired" and item["warning"] is True and item["days_left"] < 0
    checked = mcn("cert", "list", "--check")
    assert checked.code == ExitStatus.AUTH_NEEDED == 4 and "expired on" in checked.err
    as_json = mcn("cert", "list", "--check", "--json")
    assert as_json.code == 4 and mine(as_json, keystores)[0]["state"] == "expired"


def test_one_expiring_within_60_days_is_warned_of_and_check_exits_4(mcn, sandbox, keystores):
    place(sandbox, keystores, certs.Holder("SSIN", ANNE.niss, "ANNE LAMBERT"), age_days=300, days=330)
    checked = mcn("cert", "list", "--check")
    assert checked.code == 4 and "expires in 29 days" in checked.err


def test_check_is_0_and_silent_when_every_certificate_has_more_than_60_days(mcn, sandbox, keystores):
    place(sandbox, keystores, certs.Holder("NIHII-PHARMACY", PARC.nihii, PARC.name), age_days=1, days=365)
    result = mcn("cert", "list", "--check")
    assert result.code == 0, result.err
    assert "warning" not in result.err
