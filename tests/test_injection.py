"""Terminal and spreadsheet injection (issue 11, item 9): names and free text are checked where
they enter, control characters never reach a terminal raw, CSV cells are never formulas."""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from mcn_cli.domain.errors import InvalidInput
from mcn_cli.domain.text import check_text, spreadsheet_cell, visible
from mcn_cli.sandbox.world import ANNE, PARC
from mcn_cli.status import ExitStatus
from tests.test_ot import DAY, HEADER, PEOPLE

ESC_CLEAR = "\x1b[2J"
RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE
RAW = ("\x1b", RLO, "\x9b", "\x07")  # what must never reach a terminal
HOSTILE_NAME = f"EVIL{ESC_CLEAR}{RLO}TXT.EXE\x9b31m\x07"
FORMULA = '=HYPERLINK("http://x","y")'
PASSWORD = "keystore-pass-1"


def _raw_free(text: str) -> bool:
    return not any(c in text for c in RAW)


# --- output: control characters escaped ------------------------------------------------------


def test_visible_escapes_every_control_and_keeps_plain_text():
    assert visible("Pharmacie du Parc — Liège") == "Pharmacie du Parc — Liège"
    assert visible(f"a{ESC_CLEAR}b{RLO}c\x00\x7f\x85\u2066\udcff") == (
        "a\\x1b[2Jb\\u202ec\\x00\\x7f\\x85\\u2066\\udcff"
    )
    assert visible("one\ntwo\r") == "one\\x0atwo\\x0d"
    assert visible("one\ntwo\r", keep_newlines=True) == "one\ntwo\\x0d"


def test_renderers_escape_what_they_print(capsys):
    from mcn_cli.cli import output

    output.emit_line(f"hello {ESC_CLEAR}")
    output.emit_fields([("name", HOSTILE_NAME), ("lines", "a\nforged: line")], title=f"T{RLO}")
    output.emit_table(("A", "B"), [(HOSTILE_NAME, -12), ("x\ry", None)])
    out = capsys.readouterr().out
    assert _raw_free(out) and "\r" not in out
    assert "hello \\x1b[2J" in out and "EVIL\\x1b[2J\\u202eTXT.EXE\\x9b31m\\x07" in out
    assert "\nforged: line" not in out and "-12" in out
    output.emit_json({"name": HOSTILE_NAME, "n": -3})
    document = capsys.readouterr().out
    assert _raw_free(document) and "\\u202e" in document and "\\u009b" in document
    assert json.loads(document) == {"name": HOSTILE_NAME, "n": -3}  # the same value, escaped


def _hostile_keystore(folder: Path) -> Path:
    """A keystore with a certificate whose subject holds a screen-clearing escape and a bidi
    override, where mcn cert list/show find keystores (the keystore folder, .crt beside it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "BE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Federal Government"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"SSIN={ANNE.niss}"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, HOSTILE_NAME),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "eHealth-platform Belgium"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"SSIN={ANNE.niss}{ESC_CLEAR}{RLO}"),
        ]
    )
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=300))
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    keystore = folder / f"SSIN={ANNE.niss}{ESC_CLEAR}.p12"
    encryption = serialization.BestAvailableEncryption(PASSWORD.encode())
    keystore.write_bytes(
        pkcs12.serialize_key_and_certificates(b"authentication", key, certificate, None, encryption)
    )
    keystore.with_suffix(".crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return keystore


def test_cert_show_and_list_print_no_raw_escape(mcn, mcn_home):
    keystore = _hostile_keystore(mcn_home / "data" / "keystores")
    shown = mcn("cert", "show", str(keystore))
    assert shown.code == 0, shown.err
    assert _raw_free(shown.out) and _raw_free(shown.err)
    assert "EVIL\\x1b[2J\\u202eTXT.EXE" in shown.out  # visible, not acted on
    listed = mcn("cert", "list")
    assert listed.code == 0, listed.err
    assert _raw_free(listed.out) and _raw_free(listed.err) and "\\x1b[2J" in listed.out
    as_json = mcn("cert", "show", str(keystore), "--json")
    assert as_json.code == 0 and _raw_free(as_json.out)
    assert HOSTILE_NAME in as_json.json()["subject"]  # JSON keeps the value, escaped


# --- input: names and references checked where they enter ------------------------------------


def _request(mcn, name: str, *extra: str):
    read, write = os.pipe()
    os.write(write, (PASSWORD + "\n").encode())
    os.close(write)
    try:
        return mcn(
            "cert", "request", "--offline", "--org", "--nihii", PARC.nihii, "--kbo", PARC.kbo, "--name", name,
            "--password-fd", str(read), *extra,
        )  # fmt: skip
    finally:
        os.close(read)


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        pytest.param("P" * 65, "at most 64 characters", id="65-characters"),
        # 66 once upper-cased, as the subject carries it
        pytest.param("ß" * 33, "at most 64 characters", id="longer-upper-cased"),
        pytest.param("P" * 100_000, "at most 64 characters", id="100000-characters"),
        pytest.param(f"Pharmacie{ESC_CLEAR}", "control characters", id="escape"),
        pytest.param(f"Pharmacie {RLO}craP", "control characters", id="bidi-override"),
        pytest.param("Pharmacie\ndu Parc", "control characters", id="newline"),
        pytest.param("Pharmacie\x85", "control characters", id="c1"),
        pytest.param("   ", "blank", id="blank"),
    ],
)
def test_bad_certificate_names_refused_before_anything(mcn, mcn_home, name, rule):
    result = _request(mcn, name)
    assert result.code == ExitStatus.BAD_INPUT
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcn: error: name: ") and rule in lines[0]
    assert _raw_free(result.err)
    keystores = mcn_home / "data" / "keystores"
    assert not keystores.exists() or not list(keystores.iterdir())


def test_json_error_names_the_field_and_rule(mcn):
    result = _request(mcn, "P" * 65, "--json")
    error = result.json()["error"]
    assert result.code == ExitStatus.BAD_INPUT and (error["field"], error["rule"]) == ("name", "length")
    result = _request(mcn, f"P{ESC_CLEAR}", "--json")
    error = result.json()["error"]
    assert (error["field"], error["rule"]) == ("name", "control-character")


def test_a_64_character_name_is_accepted(mcn, mcn_home):
    result = _request(mcn, "P" * 64, "--json")
    assert result.code == 0, result.err
    csr = x509.load_pem_x509_csr(Path(result.json()["csr"]).read_bytes())
    assert "OU=" + "P" * 64 in csr.subject.rfc4514_string()


def test_the_subject_itself_refuses_a_bad_name():
    from mcn_cli.ehealth import certificates as certs

    with pytest.raises(InvalidInput) as caught:
        certs.subject(certs.Holder(certs.ORG, PARC.nihii, "X" * 65))
    assert (caught.value.field, caught.value.rule) == ("name", "length")


def test_e_mail_with_a_control_character_refused(mcn):
    result = _request(mcn, "Pharmacie du Parc", "--email", f"parc{ESC_CLEAR}@example.be")
    assert result.code == ExitStatus.BAD_INPUT and "email" in result.err and _raw_free(result.err)


def test_check_text_rules():
    assert check_text("reference", "REJ-1", max_length=25) == "REJ-1"
    with pytest.raises(InvalidInput) as caught:
        check_text("reference", "R" * 26, max_length=25)
    assert caught.value.rule == "length" and "at most 25" in caught.value.detail
    with pytest.raises(InvalidInput) as caught:
        check_text("reference", f"R{RLO}", max_length=25)
    assert caught.value.rule == "control-character" and "\\u202e at position 2" in caught.value.detail


@pytest.mark.parametrize(
    "rejection",
    [
        pytest.param(f"REJ{ESC_CLEAR}", id="escape"),
        pytest.param(f"REJ{RLO}1", id="bidi-override"),
        pytest.param("R" * 26, id="26-characters"),
    ],
)
def test_ot_rejection_checked_before_any_session_or_network(mcn, rejection):
    result = mcn(
        "ot", "consult", "--rejection", rejection, "--niss", ANNE.niss, "--date", date.today().isoformat()
    )
    assert result.code == ExitStatus.BAD_INPUT, result.err  # not "log in first": nothing was tried
    assert result.err.startswith("mcn: error: rejection: ") and _raw_free(result.err)


# --- CSV: no cell a spreadsheet runs -----------------------------------------------------------


def test_spreadsheet_cells():
    assert spreadsheet_cell(FORMULA) == "'" + FORMULA
    for text in ("+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "  =1+1"):
        assert spreadsheet_cell(text) == "'" + text
    assert spreadsheet_cell("\t=1") == "\\x09=1"  # the tab is escaped: the cell starts with "\"
    assert spreadsheet_cell("\r=1") == "\\x0d=1"
    for kept in ("REJ-1", "-12.50", "+32", "Lambert", ""):
        assert spreadsheet_cell(kept) == kept
    assert spreadsheet_cell(-12) == -12 and spreadsheet_cell(None) is None


def test_ot_batch_csv_has_no_formula_and_no_raw_escape(mcn, office, tmp_path):
    niss = PEOPLE["annex-1"].niss
    rows = [
        [FORMULA, PARC.nihii, niss, "", "", DAY, "INS01"],  # 26 characters: refused, echoed
        ["=1+2", PARC.nihii, niss, "", "", DAY, "@SUM(A1)"],  # a valid reference, consulted
        [f"REJ{ESC_CLEAR}", PARC.nihii, niss, "", "", DAY, "INS01"],  # refused: control character
        ["REJ-4", PARC.nihii, niss, "", "", DAY, f"INS{RLO}01"],  # refused: control character
    ]
    source = io.StringIO()
    csv.writer(source, lineterminator="\n").writerows(rows)
    csv_file = tmp_path / "rejections.csv"
    csv_file.write_text(HEADER + source.getvalue())
    out = tmp_path / "results.csv"
    result = mcn("ot", "batch", str(csv_file), "--output", str(out))
    assert result.code == ExitStatus.BAD_INPUT
    assert _raw_free(result.err)
    assert "line 2: rejection: must have at most 25 characters" in result.err
    assert "line 4: rejection: must not contain control characters" in result.err
    assert "line 5: rejection_code: must not contain control characters" in result.err
    text = out.read_text()
    assert _raw_free(text)
    found = {r["row"]: r for r in csv.DictReader(io.StringIO(text))}
    assert found["2"]["rejection"] == "'" + FORMULA and found["2"]["status"] == "error"
    assert found["3"]["rejection"] == "'=1+2" and found["3"]["rejection_code"] == "'@SUM(A1)"
    assert found["3"]["status"] == "commitment" and found["3"]["exit_status"] == "0"
    assert found["4"]["rejection"] == "REJ\\x1b[2J" and found["5"]["rejection_code"] == "INS\\u202e01"
    for row in found.values():
        for value in row.values():
            assert not value or value[0] not in "=+-@\t\r", row


@pytest.mark.parametrize("reference", ["R\x1b[2J", "R\u202e", "R\x85"])
def test_a_consultation_reference_with_a_control_character_is_refused_before_sending(mcn, sandbox, reference):
    result = mcn("consult", "--niss", "85073003328", "--reference", reference)
    assert result.code == ExitStatus.BAD_INPUT and "reference" in result.err
    assert "\x1b" not in result.err and "\u202e" not in result.err  # the error line escapes them too
