from __future__ import annotations

import stat
from datetime import UTC, date, datetime, timedelta

import pytest
from lxml import etree

from mcn_cli.domain.commitment import InsurabilityPeriod, commitment_for
from mcn_cli.ehealth.xmldsig import SignatureInvalid
from mcn_cli.sandbox import population
from mcn_cli.status import ExitStatus
from tests.conftest import REFERENCE, ROOT, SANDBOX_PIN, needs_reference
from tests.test_wssec import xmlsec1_verifies

TODAY = date.today()
PEOPLE = {p.scenario: p for p in population.population(TODAY)}


@pytest.fixture(scope="module")
def schema():
    if not REFERENCE.is_dir():
        pytest.skip("needs ../shared/reference (eHealth's real schemas) beside the project; CI has it")
    xsd = REFERENCE / "ehealth" / "ehealth-insurability" / "XSD" / "insurabilityservices_protocol-2_0.xsd"
    return etree.XMLSchema(file=str(xsd))


@pytest.fixture
def logged_in(mcn, sandbox, monkeypatch):
    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    assert mcn("login").code == 0
    return sandbox


def consult(mcn, scenario: str, *extra: str):
    patient = PEOPLE[scenario]
    who = (
        ["--niss", patient.niss]
        if patient.niss
        else ["--mutuality", patient.mutuality, "--member-number", patient.member]
    )
    day = TODAY + timedelta(days=patient.try_date)
    return mcn("consult", *who, "--date", day.isoformat(), "--json", *extra)


def expected(scenario: str):
    patient = PEOPLE[scenario]
    periods = [InsurabilityPeriod(ct, s, e) for ct, s, e in patient.periods_on(TODAY)]
    return commitment_for(TODAY + timedelta(days=patient.try_date), TODAY, periods)


@pytest.mark.parametrize(
    "scenario",
    [
        "annex-1",
        "annex-2",
        "annex-3",
        "annex-4",
        "annex-5",
        "annex-6",
        "ct-change",
        "member-only",
        "newborn",
        "third-party-none",
        "third-party-elevated",
    ],
)
def test_commitment_scenarios(mcn, logged_in, scenario):
    result = consult(mcn, scenario)
    assert result.code == 0, result.err
    data = result.json()
    want = expected(scenario)
    assert data["outcome"] == "commitment"
    assert data["commitment"]["coverage"] == {
        "start": want.coverage.start.isoformat(),
        "end": want.coverage.end.isoformat(),
    }
    assert data["commitment"]["reusable"] is want.reusable
    assert (data["commitment"]["ct1"], data["commitment"]["ct2"]) == (
        want.entitlement.ct1,
        want.entitlement.ct2,
    )
    assert data["third_party"] == PEOPLE[scenario].regime.value
    verification = data["verification"]
    assert len(verification["payment_approval"]) == 32 and len(verification["seed"]) == 10
    assert len(verification["ot_check"]) == 2
    listed = mcn("cache", "list", "--json").json()
    assert data["record"] in [r["id"] for r in listed]


def test_annex_situations_reuse_as_the_brochure_says(mcn, logged_in):
    assert consult(mcn, "annex-4").json()["commitment"]["reusable"] is False
    assert consult(mcn, "annex-5").json()["commitment"]["reusable"] is False
    assert (
        consult(mcn, "annex-6").json()["commitment"]["coverage"]["end"] == (TODAY + timedelta(30)).isoformat()
    )
    assert (
        consult(mcn, "ct-change").json()["commitment"]["coverage"]["end"]
        == (TODAY + timedelta(9)).isoformat()
    )


def test_human_output_shows_the_commitment(mcn, logged_in):
    patient = PEOPLE["annex-1"]
    result = mcn("consult", "--niss", patient.niss)
    assert result.code == 0
    for label in ("CT1/CT2", "third-party payer", "coverage", "payment approval", "seed", "OT check code"):
        assert label in result.out


def test_deceased_and_no_right(mcn, logged_in):
    deceased = consult(mcn, "deceased")
    assert (
        deceased.code == 0 and deceased.json()["patient"]["deceased"] == (TODAY - timedelta(10)).isoformat()
    )
    after = mcn("consult", "--niss", PEOPLE["deceased"].niss, "--json")
    assert after.code == ExitStatus.NO_COMMITMENT and after.json()["outcome"] == "no-right"
    none = consult(mcn, "no-right")
    assert none.code == ExitStatus.NO_COMMITMENT and none.json()["commitment"] is None
    assert "no right at" in none.err


def test_multiple_insurers_and_unknown_patient(mcn, logged_in):
    several = consult(mcn, "multiple-io")
    assert several.code == ExitStatus.NO_COMMITMENT
    assert several.json()["multiple_io"] == ["1", "3"]
    assert "several insurers know the patient: Christian Mutualities, Solidaris" in several.err
    assert "mcn: hint: ask the patient which insurer is theirs" in several.err
    assert "--mutuality" in several.err
    unknown = mcn("consult", "--niss", "85073003427", "--json")  # valid, but nobody the insurers know
    assert unknown.code == ExitStatus.NO_COMMITMENT and unknown.json()["outcome"] == "unknown"


def test_every_answer_and_failure_is_audited(mcn, logged_in):
    consult(mcn, "annex-1")
    consult(mcn, "no-right")
    consult(mcn, "fault-soap")
    report = mcn("audit", "report", "--month", TODAY.strftime("%Y-%m"), "--json").json()
    assert report["answered"] == 2 and report["refused_or_failed"] == 1
    assert mcn("audit", "verify").code == 0


@pytest.mark.parametrize(
    ("scenario", "needle"),
    [
        ("fault-soap", "MyCareNet is failing"),
        ("fault-http-500", "HTTP 500"),
        ("fault-malformed", "malformed"),
    ],
)
def test_per_request_faults(mcn, logged_in, scenario, needle):
    result = consult(mcn, scenario)
    assert result.code == ExitStatus.SERVICE_UNAVAILABLE
    assert needle in result.err
    assert "mcn fallback --no-network" in result.err
    assert result.json()["error"]["hint"]


def test_faults_say_what_to_do_next(logged_in):
    """The consultation's own hint: MyCareNet failing means the emergency flow; MyCareNet
    throttling (HTTP 429, Retry-After: 60) means wait and consult again, never "network down"."""
    from mcn_cli.actions.consult import consult as run_consult
    from mcn_cli.domain.errors import ServiceUnavailable
    from mcn_cli.domain.identifiers import parse_niss

    def hint_for(scenario: str) -> str:
        patient = PEOPLE[scenario]
        with pytest.raises(ServiceUnavailable) as failed:
            run_consult(parse_niss(patient.niss), TODAY + timedelta(days=patient.try_date))
        assert failed.value.hint is not None
        return failed.value.hint

    failing = hint_for("fault-soap")
    assert "emergency flow" in failing
    assert f"mcn fallback --no-network --niss {PEOPLE['fault-soap'].niss}" in failing
    throttled = hint_for("fault-throttled")
    assert throttled.startswith("consult again in 60 s")
    assert "network" not in throttled and "fallback" not in throttled


def test_network_down_hint_offers_the_cached_commitment(mcn, logged_in):
    assert consult(mcn, "annex-1").code == 0
    assert mcn("sandbox", "fault", "refused", "--times", "1").code == 0
    result = consult(mcn, "annex-1")
    assert result.code == ExitStatus.SERVICE_UNAVAILABLE
    assert "cannot reach" in result.err and "trying again (2/2)" in result.err
    assert "mcn reuse --niss" in result.err
    assert consult(mcn, "annex-1").code == 0  # the switch was for one request


def test_slow_answer_times_out(mcn, logged_in, mcn_home):
    (mcn_home / "config.toml").write_text("timeout_seconds = 1\n")
    assert mcn("sandbox", "fault", "slow", "--seconds", "3", "--times", "1").code == 0
    result = consult(mcn, "annex-1")
    assert result.code == ExitStatus.SERVICE_UNAVAILABLE and "did not answer within 1 s" in result.err


def test_no_session_means_authentication_needed_and_no_network(mcn, sandbox):
    from mcn_cli.sandbox import runtime

    result = consult(mcn, "annex-1")
    assert result.code == ExitStatus.AUTH_NEEDED and "mcn login" in result.err
    assert not runtime._IN_PROCESS


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--niss", "85073003328", "--date", (TODAY + timedelta(1)).isoformat()], "after today"),
        (["--niss", "85073003328", "--reference", "x" * 26], "25 characters"),
        (["--date", TODAY.isoformat()], "give --niss"),
        (["--niss", "85073003329"], "check digits"),
        (["--mutuality", "812", "--member-number", "1"], "insurer union"),
    ],
)
def test_bad_input_is_refused_before_sending(mcn, logged_in, args, needle):
    from mcn_cli.actions.local import open_database
    from mcn_cli.store import audit

    result = mcn("consult", *args)
    assert result.code == ExitStatus.BAD_INPUT and needle in result.err
    with open_database() as db:
        assert not list(audit.entries(db.connection))


def test_burst_of_patients_is_refused_locally(mcn, logged_in, mcn_home):
    (mcn_home / "config.toml").write_text("burst_patients = 3\nburst_minutes = 10\n")
    for scenario in ("annex-1", "annex-2", "annex-6"):
        assert consult(mcn, scenario).code == 0
    assert consult(mcn, "annex-1").code == 0  # the same patient again is fine
    refused = consult(mcn, "ct-change")
    assert refused.code == ExitStatus.POLICY_REFUSED and "brochure 7.2" in refused.err
    assert len(mcn("cache", "list", "--json").json()) == 4


def test_trace_keeps_the_signed_request_and_a_redacted_copy(mcn, logged_in, tmp_path):
    from mcn_cli.ehealth import token, wssec
    from mcn_cli.sandbox.world import Files, sts_trust

    trace = tmp_path / "trace"
    assert consult(mcn, "annex-1", "--trace", str(trace)).code == 0
    request = next(trace.glob("*-request.xml"))
    redacted = next(trace.glob("*-request.redacted.xml"))
    response = next(trace.glob("*-response.xml"))
    for path in (request, redacted, response):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert SANDBOX_PIN.encode() not in path.read_bytes()
    text = redacted.read_text()
    assert "sandbox-licence" not in text and "mcn-sandbox" not in text and "***" in text
    # the exact copy is what was sent: its signature still verifies, ours and xmlsec1's
    trust = sts_trust(Files())
    verified = wssec.verify_envelope(
        request.read_bytes(), holder_of_key=lambda a: token.verify(a, trust, datetime.now(UTC)).holder_of_key
    )
    assert b"sandbox-licence" in request.read_bytes()
    assert xmlsec1_verifies(request.read_bytes(), verified.certificate, tmp_path)
    with pytest.raises(SignatureInvalid):
        wssec.verify_envelope(
            redacted.read_bytes(),
            holder_of_key=lambda a: token.verify(a, trust, datetime.now(UTC)).holder_of_key,
        )


def test_every_sandbox_answer_conforms_to_the_real_schema(mcn, logged_in, tmp_path, schema):
    trace = tmp_path / "trace"
    for scenario in ("annex-4", "member-only", "deceased", "no-right", "multiple-io", "third-party-elevated"):
        consult(mcn, scenario, "--trace", str(trace))
    unknown = mcn("consult", "--niss", "85073003427", "--trace", str(trace))
    assert unknown.code == ExitStatus.NO_COMMITMENT
    files = sorted(trace.glob("*.xml"))
    assert len(files) == 21  # request, its redacted copy and the answer, 7 times
    for path in files:
        body = etree.parse(str(path)).getroot().find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
        schema.assertValid(body[0])


@needs_reference
def test_the_real_v1_sample_parses():
    from mcn_cli.ehealth import insurability, xmldsig

    sample = REFERENCE / "samples" / "insurability-pharmacist-response-v1-connector-mock.xml"
    answer = insurability.parse_answer(xmldsig.parse(sample.read_bytes()))
    assert answer.care_receiver.niss == "55081332511" and answer.care_receiver.last_name == "FELKSEN"
    assert answer.coverage.start == date(2010, 10, 7) and answer.coverage.end == date(2010, 11, 6)
    assert (answer.coverage.end - answer.coverage.start).days == 30
    assert str(answer.entitlement) == "121/121" and answer.third_party.value == "elevated"
    assert answer.verification.seed == "5765675776" and answer.verification.ot_check == "SR"
    assert answer.return_code.ok and answer.record_reference == "12345123451234"


def test_sandbox_refuses_a_message_not_signed_by_the_holder_of_key(logged_in):
    from mcn_cli.actions.local import open_cache
    from mcn_cli.domain.identifiers import parse_niss
    from mcn_cli.ehealth import insurability
    from mcn_cli.sandbox.server import Sandbox
    from mcn_cli.store import sessions
    from tests.test_wssec import software_signer

    cache = open_cache()
    session = sessions.require(cache.db, cache.vault, "default")
    envelope = insurability.request_envelope(
        insurability.Origin("mcn", "mcn-sandbox", "sandbox-licence"),
        insurability.Requester(session.organisation, session.user_niss, session.holder_nihii11),
        parse_niss(PEOPLE["annex-1"].niss),
        TODAY,
        reference="20260101000000",
        user_reference=None,
        is_test=True,
        wsse=insurability.HolderOfKey(software_signer("rsa"), session.token_xml()),  # not the key it names
    )
    reply = Sandbox(logged_in).insurability(etree.tostring(envelope), {})
    assert reply.status == 500 and b"InvalidSecurity" in reply.body


def test_demo_runs_the_main_job(mcn, sandbox, monkeypatch):
    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    result = mcn("demo", "--json")
    assert result.code == 0, result.err
    assert [c["outcome"] for c in result.json()["consultations"]] == ["commitment", "commitment"]


def test_real_environments_need_the_software_licence(mcn, logged_in, monkeypatch):
    patient = PEOPLE["annex-1"].niss
    missing = mcn("--env", "acc", "consult", "--niss", patient)
    assert missing.code == ExitStatus.BAD_INPUT and "license_username" in missing.err
    monkeypatch.setenv("MCN_LICENSE_USERNAME", "vendor")
    monkeypatch.setenv("MCN_LICENSE_PASSWORD", "secret")
    other_env = mcn("--env", "acc", "consult", "--niss", patient)
    assert other_env.code == ExitStatus.AUTH_NEEDED and "opened in sandbox" in other_env.err


def test_the_answer_cap_setting_reaches_the_transport(mcn, logged_in, mcn_home):
    (mcn_home / "config.toml").write_text("max_answer_bytes = 512\n")
    result = consult(mcn, "annex-1")
    assert result.code == ExitStatus.SERVICE_UNAVAILABLE and "512" in result.err


def test_a_failure_outside_mcns_errors_is_audited_too(mcn, logged_in, tmp_path):
    """The request left before the trace folder failed: the audit trail still has it."""
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the trace folder should be")
    result = consult(mcn, "annex-1", "--trace", str(blocked / "traces"))
    assert result.code != 0
    report = mcn("audit", "report", "--month", TODAY.strftime("%Y-%m"), "--json").json()
    assert report["refused_or_failed"] == 1


def test_the_network_down_hint_does_not_record_a_reuse(mcn, logged_in):
    assert consult(mcn, "annex-1").code == 0
    assert mcn("sandbox", "fault", "refused", "--times", "2").code == 0
    assert consult(mcn, "annex-1").code == ExitStatus.SERVICE_UNAVAILABLE  # the hint looked
    report = mcn("audit", "report", "--month", TODAY.strftime("%Y-%m"), "--json").json()
    assert report["reuses"] == 0
    reused = mcn("reuse", "--niss", PEOPLE["annex-1"].niss, "--date", TODAY.isoformat())
    assert reused.code == 0, reused.err  # a pharmacist's reuse is recorded
    report = mcn("audit", "report", "--month", TODAY.strftime("%Y-%m"), "--json").json()
    assert report["reuses"] == 1


def test_the_burst_guard_holds_across_parallel_processes(mcn, logged_in, mcn_home):
    """8 consultations of 8 patients at once, a limit of 3: at most 3 reach MyCareNet."""
    import os
    import subprocess
    import sys

    (mcn_home / "config.toml").write_text("burst_patients = 3\nburst_minutes = 10\n")
    patients = [p.niss for p in population.population(TODAY) if p.niss and p.fault is None][:8]
    assert len(patients) == 8
    env = {**os.environ, "MCN_HOME": str(mcn_home)}
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "mcn_cli", "consult", "--niss", niss],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for niss in patients
    ]
    codes = [run.wait(timeout=120) for run in runs]
    assert codes.count(ExitStatus.POLICY_REFUSED) >= 5, codes
    assert sum(1 for code in codes if code != ExitStatus.POLICY_REFUSED) <= 3, codes


def test_consult_waits_with_a_spinner_on_a_terminal_only(mcn, logged_in, monkeypatch):
    import time

    from mcn_cli.actions import consult as action

    original = action.consult

    def slow(*args, **kwargs):
        time.sleep(0.3)
        return original(*args, **kwargs)

    monkeypatch.setattr(action, "consult", slow)
    monkeypatch.setattr("mcn_cli.cli.spinner.DELAY", 0.05)
    monkeypatch.setattr("mcn_cli.cli.spinner._is_terminal", lambda stream: True)
    niss = PEOPLE["annex-1"].niss
    shown = mcn("consult", "--niss", niss)
    assert shown.code == 0 and "Consulting MyCareNet…" in shown.err
    assert shown.err.endswith("\r\x1b[K") and "Consulting" not in shown.out
    assert "Consulting" not in mcn("consult", "--niss", niss, "--json").err
    monkeypatch.setattr("mcn_cli.cli.spinner._is_terminal", lambda stream: False)
    assert "Consulting" not in mcn("consult", "--niss", niss).err


def test_consult_session_defaults_to_mcn_session(mcn, logged_in, monkeypatch):
    monkeypatch.setenv("MCN_SESSION", "elsewhere")
    result = mcn("consult", "--niss", PEOPLE["annex-1"].niss)
    assert result.code == ExitStatus.AUTH_NEEDED and "elsewhere" in result.err
    assert mcn("consult", "--niss", PEOPLE["annex-1"].niss, "--session", "default").code == 0
    help_text = mcn("consult", "--help").out
    assert "[default:" not in help_text and "MCN_SESSION" in help_text
