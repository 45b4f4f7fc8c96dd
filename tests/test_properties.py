"""Property-based tests (Hypothesis) over the parsers and verifiers (issue 11, "Deliver" 8).

Valid signed envelopes, tokens, STS requests, insurability answers and keystores are mutated at
random, as bytes and as trees (XML elements, ASN.1 values). Every mutation must be either
refused with the documented exception, or accepted *unchanged in meaning*: never another
exception (a crash), never a hang, never a different reading (a silent misread).

Reproducible and bounded: examples are derandomized, no example database is written, every
call runs under a time limit (``signal`` for XML; keystores in a forked child that is killed,
as PBKDF2 runs in C where no signal reaches it). The whole file stays within 30 s. A longer
random search: ``MCN_PROPERTY_SCALE=50 python3 -m pytest tests/test_properties.py``.

A property that fails on the code as it stands keeps its failing example as an ``@example``
and is marked ``xfail(strict=True)`` with the bug in its reason: fixing the bug makes it pass,
and the mark must then go.
"""

from __future__ import annotations

import atexit
import base64
import copy
import functools
import hashlib
import hmac
import os
import pickle
import re
import resource
import select
import shutil
import signal
import subprocess
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import core, pkcs12
from asn1crypto import keys as asn1_keys
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, Phase, assume, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from lxml import etree

from mcn_cli.domain.errors import InvalidInput, ServiceUnavailable
from mcn_cli.ehealth import insurability, keystore, ns, saml, token, wssec, wstrust, xmldsig
from mcn_cli.ehealth.ns import q
from mcn_cli.ehealth.token import TokenRefused
from mcn_cli.ehealth.xmldsig import SignatureInvalid
from mcn_cli.sandbox import pki
from mcn_cli.sandbox.world import ANNE, PARC
from tests.test_saml import ASKED, NOW, issue, make_sts
from tests.test_wssec import software_signer

# The STS side refuses some claims with its own type (a SAML error status) once it exists.
CLAIM_REFUSALS: tuple[type[Exception], ...] = (
    SignatureInvalid,
    getattr(saml, "ClaimRefused", SignatureInvalid),
)
LIMIT = 2.0  # seconds per call: far above any honest input here (a few ms)
# A longer, random search (e.g. MCN_PROPERTY_SCALE=50 before a release): every budget times
# this, with fresh random examples instead of the fixed ones of the normal test run.
SCALE = int(os.environ.get("MCN_PROPERTY_SCALE", "1"))

# Hypothesis keeps caches (and would write patches of failing examples) under .hypothesis/ in
# the working directory: kept out of the checkout.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "mcn-hypothesis")


def budget(examples: int) -> Any:
    """Hypothesis settings of one property: a fixed number of derandomized examples, no database.
    The hang guard is ``bounded``/``in_child`` (it stops the call); the deadline is a backstop."""
    return settings(
        max_examples=examples * SCALE,
        deadline=timedelta(seconds=5),
        derandomize=SCALE == 1,
        database=None,
        print_blob=False,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),  # no database, no patch files
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,  # conftest's autouse MCN_HOME: not used here
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )


# --- time limits ---------------------------------------------------------------------------------


class _Hang(BaseException):
    """Raised by the alarm; a BaseException so that no ``except Exception`` swallows it."""


def bounded(call: Callable[..., Any], *args: Any, limit: float = LIMIT, **kwargs: Any) -> Any:
    """``call(*args, **kwargs)``, failing the property when it runs longer than ``limit``."""

    def alarm(signum: int, frame: Any) -> None:
        raise _Hang

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    start = time.perf_counter()
    try:
        result = call(*args, **kwargs)
    except _Hang:
        raise AssertionError(f"{call.__qualname__} still ran after {limit} s: a hang") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    elapsed = time.perf_counter() - start
    assert elapsed <= limit, f"{call.__qualname__} took {elapsed:.1f} s (limit {limit} s)"
    return result


@dataclass(frozen=True)
class Outcome:
    kind: str  # "ok", "refused" (a documented exception) or "crash"
    value: Any = None  # the result (ok), "Type: message" (refused) or the traceback (crash)


def in_child(
    call: Callable[..., Any], *args: Any, refusals: tuple[type[BaseException], ...], limit: float = LIMIT
) -> Outcome:
    """Run ``call`` in a forked child, killed after ``limit`` seconds (a hang fails the property);
    memory is capped so that a memory bomb shows as a MemoryError, not as the OOM killer."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(reader)
            used = int(re.search(rb"VmSize:\s+(\d+)", Path("/proc/self/status").read_bytes())[1]) * 1024
            resource.setrlimit(resource.RLIMIT_AS, (used + (1 << 30), resource.RLIM_INFINITY))
            try:
                outcome = Outcome("ok", call(*args))
            except refusals as error:
                outcome = Outcome("refused", f"{type(error).__name__}: {error}")
            except BaseException:
                outcome = Outcome("crash", traceback.format_exc())
            data = pickle.dumps(outcome)
            while data:
                data = data[os.write(writer, data) :]
        finally:
            os._exit(0)
    os.close(writer)
    chunks: list[bytes] = []
    deadline = time.monotonic() + limit
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([reader], [], [], remaining)[0]:
                os.kill(pid, signal.SIGKILL)
                raise AssertionError(f"{call.__qualname__} still ran after {limit} s: a hang")
            chunk = os.read(reader, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(reader)
        os.waitpid(pid, 0)
    assert chunks, f"{call.__qualname__} ended its process without an answer (a crash of the interpreter)"
    return pickle.loads(b"".join(chunks))


# --- XML mutations -------------------------------------------------------------------------------
#
# A mutation is a plain tuple (name, numbers..., text) so that a failing one can be kept as an
# explicit @example. Numbers pick an element, a position or a choice modulo what is there.

SNIPPETS = (
    b"<",
    b">",
    b"&",
    b"&amp;",
    b'"',
    b"'",
    b"<!---->",
    b"<?pi x?>",
    b" ",
    b"\n",
    b"\x00",
    b"\xff",
    b"]]>",
    b"<![CDATA[x]]>",
    b"<a/>",
    b"</a>",
    b'<ds:Object xmlns:ds="http://www.w3.org/2000/09/xmldsig#"/>',
    b' xmlns="urn:x"',
    b' xmlns:ds="urn:x"',
    b' xmlns:wsu="urn:x"',
    b' Id="x"',
    b"&#0;",
    b"&#x41;",
    b"&e;",
    b'<!DOCTYPE x [<!ENTITY e "v">]>',
    b'<!DOCTYPE x SYSTEM "file:///etc/passwd">',
    b"<?xml version='1.0' encoding='UTF-16'?>",
    b"\xef\xbb\xbf",
)
TEXTS = (
    "",
    " ",
    "\n",
    "true",
    "false",
    "0",
    "1",
    "#",
    "AAAA",
    "not base64!",
    ANNE.niss,
    PARC.nihii,
    "2999-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "2024-02-30",
    ns.ENVELOPED,
    ns.EXC_C14N,
    ns.SHA1,
    ns.RSA_SHA1,
    ns.SAML_ID,
    ns.HOLDER_OF_KEY,
    ns.IDENTIFICATION_NS,
    ns.CERTIFIED_NS,
    "urn:oasis:names:tc:SAML:1.0:cm:bearer",
)
EXTRA_NAMES = (
    q(ns.DS, "Object"),
    q(ns.DS, "Signature"),
    q(ns.DS, "KeyInfo"),
    q(ns.SOAP, "Body"),
    q(ns.SOAP, "Header"),
    q(ns.WSU, "Timestamp"),
    q(ns.WSSE, "Security"),
    q(ns.SAML, "Assertion"),
    q(ns.SAML, "Attribute"),
    q(ns.SAML, "SubjectConfirmation"),
    "{urn:x}x",
    "x",
)
# Relative namespace URIs: canonical XML cannot write them, so a verifier must refuse them.
RELATIVE_NAMESPACES = ("test", "../x")
NAMESPACES = (
    *RELATIVE_NAMESPACES,
    "",
    "urn:x",
    "http://x/../y",
    ns.SOAP,
    ns.DS,
    ns.WSSE,
    ns.WSU,
    ns.SAML,
    ns.SAMLP,
    wstrust.WST,
    wstrust.AUTH,
    insurability.PROTOCOL.format(2),
    insurability.CORE.format(2),
    insurability.PROTOCOL.format(1),
    insurability.CORE.format(1),
)
ATTRIBUTES = (
    q(ns.WSU, "Id"),
    "Id",
    "ID",
    "AssertionID",
    "RequestID",
    "URI",
    "Algorithm",
    "AttributeName",
    "AttributeNamespace",
    "ValueType",
    "NotBefore",
    "NotOnOrAfter",
    "Issuer",
    "MajorVersion",
    "Context",
    "Uri",
    "PrefixList",
    q(ns.SOAP, "mustUnderstand"),
    q(ns.XSI, "type"),
    "{urn:x}Id",
)

Op = tuple[Any, ...]


def _elements(root: etree._Element) -> list[etree._Element]:
    return [e for e in root.iter() if isinstance(e.tag, str)]


def _pick(items: Sequence[Any], index: int) -> Any:
    return items[index % len(items)] if items else None


def _local(tag: str) -> str:
    return etree.QName(tag).localname


def _split_text(element: etree._Element, position: int, node: etree._Element) -> None:
    """Put ``node`` (a comment, PI or entity) inside the element's text at ``position``."""
    text = element.text or ""
    at = position % (len(text) + 1)
    element.text = text[:at]
    node.tail = text[at:] or None
    element.insert(0, node)


def _op_dup(root: etree._Element, i: int) -> None:
    element = _pick(_elements(root), i)
    parent = element.getparent()
    if parent is not None:
        parent.insert(parent.index(element) + 1, copy.deepcopy(element))


def _op_drop(root: etree._Element, i: int) -> None:
    element = _pick(_elements(root), i)
    if element.getparent() is not None:
        element.getparent().remove(element)


def _op_move(root: etree._Element, i: int, j: int) -> None:
    elements = _elements(root)
    element, target = _pick(elements, i), _pick(elements, j)
    if element is root or target is element or any(a is element for a in target.iterancestors()):
        return
    target.append(element)


def _op_wrap(root: etree._Element, i: int, k: int) -> None:
    element = _pick(_elements(root), i)
    parent = element.getparent()
    if parent is None:
        return
    namespace = _pick(NAMESPACES, k)
    wrapper = etree.Element(f"{{{namespace}}}Wrapper" if namespace else "Wrapper")
    parent.replace(element, wrapper)
    wrapper.append(element)


def _op_retag(root: etree._Element, i: int, k: int) -> None:
    names = sorted({e.tag for e in _elements(root)}) + list(EXTRA_NAMES)
    _pick(_elements(root), i).tag = _pick(names, k)


def _op_renamespace(root: etree._Element, i: int, k: int) -> None:
    element = _pick(_elements(root), i)
    namespace = _pick(NAMESPACES, k)
    element.tag = f"{{{namespace}}}{_local(element.tag)}" if namespace else _local(element.tag)


def _op_relative(root: etree._Element, i: int, k: int) -> None:
    element = _pick(_elements(root), i)
    element.tag = f"{{{_pick(RELATIVE_NAMESPACES, k)}}}{_local(element.tag)}"


def _op_text(root: etree._Element, i: int, text: str) -> None:
    _pick(_elements(root), i).text = text


def _op_tail(root: etree._Element, i: int, text: str) -> None:
    element = _pick(_elements(root), i)
    if element is not root:
        element.tail = text


def _op_comment(root: etree._Element, i: int, k: int) -> None:
    _split_text(_pick(_elements(root), i), k, etree.Comment(" "))


def _op_pi(root: etree._Element, i: int, k: int) -> None:
    _split_text(_pick(_elements(root), i), k, etree.ProcessingInstruction("pi", "x"))


def _op_cdata(root: etree._Element, i: int) -> None:
    element = _pick(_elements(root), i)
    if element.text:
        element.text = etree.CDATA(element.text)


def _op_attr_set(root: etree._Element, i: int, k: int, text: str) -> None:
    _pick(_elements(root), i).set(_pick(ATTRIBUTES, k), text)


def _op_attr_copy(root: etree._Element, i: int, j: int) -> None:
    elements = _elements(root)
    target = _pick(elements, i)
    for name, value in _pick(elements, j).attrib.items():
        target.set(name, value)


def _op_attr_drop(root: etree._Element, i: int, k: int) -> None:
    element = _pick(_elements(root), i)
    names = list(element.attrib)
    if names:
        del element.attrib[_pick(names, k)]


def _op_attr_rename(root: etree._Element, i: int, k: int, j: int) -> None:
    """Move an attribute to another name (Id -> wsu:Id, AttributeNamespace -> x:...)."""
    element = _pick(_elements(root), i)
    names = list(element.attrib)
    if names:
        name = _pick(names, k)
        value = element.attrib.pop(name)
        element.set(_pick(ATTRIBUTES, j), value)


def _op_object(root: etree._Element, i: int) -> None:
    """A copy of any element inside a new ds:Object of the first ds:Signature (unsigned there)."""
    signature = next(root.iter(q(ns.DS, "Signature")), None)
    if signature is not None:
        element = _pick(_elements(root), i)
        etree.SubElement(signature, q(ns.DS, "Object")).append(copy.deepcopy(element))


def _op_spoil(root: etree._Element, i: int, part: str) -> None:
    """The base64 certificate in the element's text with one part spoiled, so that it still
    loads (cryptography parses lazily) but that part does not: ``key`` (a bit of the key's first
    byte), ``subject`` or ``issuer`` (the first name value tagged [12], an unknown string type)."""
    element = _pick(_elements(root), i)
    try:
        certificate = der_read(base64.b64decode("".join((element.text or "").split()), validate=True))[0]
        tbs = certificate.children[0]
        fields = tbs.children[1:] if tbs.children[0].tag == b"\xa0" else tbs.children
        if part == "key":
            key = fields[5].children[1]
            key.content = key.content[:1] + bytes([key.content[1] ^ 1]) + key.content[2:]
        else:
            name = fields[4 if part == "subject" else 2]
            name.children[0].children[0].children[1].tag = b"\xcc"
    except (ValueError, TypeError, IndexError):
        return
    element.text = base64.b64encode(certificate.encode()).decode()


TREE_OPS: dict[str, Callable[..., None]] = {
    "dup": _op_dup,
    "drop": _op_drop,
    "move": _op_move,
    "wrap": _op_wrap,
    "retag": _op_retag,
    "renamespace": _op_renamespace,
    "relative": _op_relative,
    "text": _op_text,
    "tail": _op_tail,
    "comment": _op_comment,
    "pi": _op_pi,
    "cdata": _op_cdata,
    "attr_set": _op_attr_set,
    "attr_copy": _op_attr_copy,
    "attr_drop": _op_attr_drop,
    "attr_rename": _op_attr_rename,
    "object": _op_object,
    "spoil": _op_spoil,
}


def _raw_flip(data: bytes, at: int, mask: int) -> bytes:
    if not data:
        return data
    at %= len(data)
    return data[:at] + bytes([data[at] ^ mask]) + data[at + 1 :]


def _raw_insert(data: bytes, at: int, k: int) -> bytes:
    at %= len(data) + 1
    return data[:at] + _pick(SNIPPETS, k) + data[at:]


def _raw_delete(data: bytes, at: int, size: int) -> bytes:
    at %= len(data) + 1
    return data[:at] + data[at + size :]


def _raw_prefix(data: bytes, k: int, new: str) -> bytes:
    """Rename a declared namespace prefix everywhere it is written as one."""
    prefixes = sorted(set(re.findall(rb"xmlns:([A-Za-z_][\w.-]*)=", data)))
    if not prefixes or new.encode() in prefixes:  # never two declarations of one prefix
        return data
    old = re.escape(_pick(prefixes, k))
    data = re.sub(rb"xmlns:" + old + rb"=", b"xmlns:" + new.encode() + b"=", data)
    return re.sub(rb"(?<=[<\s/])" + old + rb":", new.encode() + b":", data)


def _raw_entity(data: bytes, i: int, k: int) -> bytes:
    """Replace one character of an element's text by a reference to an internal entity whose
    value is that character (the same document once entities are expanded)."""
    matches = list(re.finditer(rb">([^<>&\s]+)<", data))
    if not matches or b"<!DOCTYPE" in data:  # one entity declared once
        return data
    found = _pick(matches, i)
    text = found.group(1)
    at = found.start(1) + k % len(text)
    character = data[at : at + 1]
    declaration = b'<!DOCTYPE x [<!ENTITY e "' + character.replace(b'"', b"&#34;") + b'">]>'
    body = data[:at] + b"&e;" + data[at + 1 :]
    if body.startswith(b"<?xml"):
        end = body.index(b"?>") + 2
        return body[:end] + declaration + body[end:]
    return declaration + body


RAW_OPS: dict[str, Callable[..., bytes]] = {
    "flip": _raw_flip,
    "insert": _raw_insert,
    "delete": _raw_delete,
    "prefix": _raw_prefix,
    "entity": _raw_entity,
}


def mutate(data: bytes, ops: Sequence[Op]) -> bytes:
    """Apply the mutations in turn, raw ones to the bytes, tree ones to the parsed document (a
    tree mutation of a document that no longer parses does nothing)."""
    for name, *args in ops:
        if name in RAW_OPS:
            data = RAW_OPS[name](data, *args)
            continue
        try:
            root = etree.fromstring(data, xmldsig.parser())
        except etree.XMLSyntaxError:
            continue
        try:
            TREE_OPS[name](root, *args)
        except ValueError:  # lxml refuses the value (a control character, a bad name): no mutation
            continue
        doctype = re.search(rb"<!DOCTYPE[^\[>]*(?:\[.*?\])?\s*>", data, re.DOTALL)
        if doctype is None:
            data = etree.tostring(root.getroottree())
        else:  # lxml keeps no internal subset (load_dtd=False): its entities must stay declared
            data = etree.tostring(root, doctype=doctype.group().decode("utf-8", "replace"))
    return data


index = st.integers(0, 400)
texts = st.one_of(st.sampled_from(TEXTS), st.text(max_size=12))
prefixes = st.sampled_from(("a", "ds", "wsu", "wsse", "saml", "soapenv", "xml", "xmlns", "Z"))
raw_op = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 16), st.integers(1, 255)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 16), index),
    st.tuples(st.just("delete"), st.integers(0, 1 << 16), st.integers(1, 64)),
    st.tuples(st.just("prefix"), index, prefixes),
)
structure_op = st.one_of(
    st.tuples(st.just("dup"), index),
    st.tuples(st.just("drop"), index),
    st.tuples(st.just("move"), index, index),
    st.tuples(st.just("wrap"), index, index),
    st.tuples(st.just("retag"), index, index),
    st.tuples(st.just("renamespace"), index, index),
    st.tuples(st.just("object"), index),
    st.tuples(st.just("attr_set"), index, index, texts),
    st.tuples(st.just("attr_copy"), index, index),
    st.tuples(st.just("attr_drop"), index, index),
    st.tuples(st.just("attr_rename"), index, index, index),
)
text_op = st.one_of(
    st.tuples(st.just("text"), index, texts),
    st.tuples(st.just("tail"), index, texts),
    st.tuples(st.just("comment"), index, index),
    st.tuples(st.just("pi"), index, index),
    st.tuples(st.just("cdata"), index),
    st.tuples(st.just("entity"), index, index),
)
# Mutations after which the document means the same to an XML reader (comments and PIs are no
# character data, CDATA and entity references are the same characters, prefixes are names).
same_meaning_op = st.one_of(
    st.tuples(st.just("comment"), index, index),
    st.tuples(st.just("pi"), index, index),
    st.tuples(st.just("cdata"), index),
    st.tuples(st.just("entity"), index, index),
    st.tuples(st.just("prefix"), index, st.sampled_from(("a", "b", "Z"))),
)
any_op = st.one_of(raw_op, structure_op, text_op)


def ops_of(op: st.SearchStrategy[Op], most: int = 3) -> st.SearchStrategy[list[Op]]:
    return st.lists(op, min_size=1, max_size=most)


def view(element: etree._Element, inner: bool = False) -> Any:
    """What a reader of the tree sees: names, attributes, text and tails as lxml hands them out
    (a comment splits a text), children elements only (the element's own tail is outside it)."""
    return (
        element.tag,
        sorted(element.attrib.items()),
        element.text,
        [view(child, True) for child in element if isinstance(child.tag, str)],
        element.tail if inner else None,
    )


# --- the valid inputs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    data: bytes
    certificate: Any  # the signer's
    body_c14n: bytes
    body_view: Any
    created: Any
    token: Any = None  # what the assertion says (holder-of-key messages)
    holder_of_key: Callable[[etree._Element], Any] | None = None


def _envelope(root: etree._Element, certificate: Any, holder_of_key: Any = None) -> Envelope:
    data = wssec.to_bytes(root)
    verified = wssec.verify_envelope(data, now=NOW, holder_of_key=holder_of_key)
    assert verified.certificate == certificate
    assertion = verified.assertion
    return Envelope(
        data,
        certificate,
        xmldsig.c14n(verified.body),
        view(verified.body),
        verified.created,
        _token_meaning(token.verify(assertion, sts().trust, NOW)) if assertion is not None else None,
        holder_of_key,
    )


def _ping() -> etree._Element:
    return etree.fromstring(
        b'<m:Ping xmlns:m="urn:test" m:kind="x"><m:Text>bonjour</m:Text>'
        b"<m:Niss>" + ANNE.niss.encode() + b"</m:Niss></m:Ping>"
    )


@functools.cache
def sts() -> Any:
    return make_sts()


@functools.cache
def holder() -> Any:
    return software_signer("rsa")


@functools.cache
def x509_envelope(kind: str) -> Envelope:
    signer = software_signer(kind)
    return _envelope(wssec.sign_envelope(wssec.envelope(_ping()), signer, now=NOW), signer.certificate)


@functools.cache
def saml_envelope() -> Envelope:
    authority, signer = sts(), holder()

    def holder_of_key(assertion: etree._Element) -> Any:
        return token.verify(assertion, authority.trust, NOW).holder_of_key

    root = wssec.sign_envelope(wssec.envelope(_ping()), signer, assertion=issue(authority, signer), now=NOW)
    return _envelope(root, signer.certificate, holder_of_key)


@functools.cache
def token_bytes(linked: str) -> bytes:
    return etree.tostring(issue(sts(), holder(), linked=linked))


@functools.cache
def saml_request() -> bytes:
    identification, signer = software_signer("ec"), holder()
    request = saml.attribute_query(identification.certificate, signer.certificate, ASKED, now=NOW)
    saml.sign_request(request, signer, signer.certificate)
    return etree.tostring(request)


@functools.cache
def rst() -> bytes:
    return etree.tostring(wstrust.issue_request(holder().certificate, ASKED, now=NOW))


@functools.cache
def answer(scenario: str) -> bytes:
    """A sandbox insurability answer (what `mcn consult` reads), in a SOAP envelope."""
    from mcn_cli.domain.identifiers import parse_niss
    from mcn_cli.sandbox import insurability as service
    from mcn_cli.sandbox import population

    today = date.today()
    patient = next(p for p in population.population(today) if p.scenario == scenario)
    request = insurability.request_envelope(
        insurability.Origin("mcn", *service.LICENSE),
        insurability.Requester(PARC.nihii, ANNE.niss, ANNE.nihii11),
        parse_niss(patient.niss),
        today + timedelta(days=patient.try_date),
        reference="26010112000000",
        user_reference="REF-1",
        is_test=True,
    )
    caller = service.Caller(
        PARC.nihii,
        "pharmacy",
        {
            (ns.CERTIFIED_NS, saml.CERTIFIED_HOLDER_NIHII): ANNE.nihii11,
            (ns.IDENTIFICATION_NS, saml.CLAIM_HOLDER): ANNE.niss,
        },
    )
    body = request.find(q(ns.SOAP, "Body"))[0]
    return wssec.to_bytes(wssec.envelope(service.answer(body, caller, b"secret", today)))


ANSWERS = ("annex-1", "deceased", "multiple-io", "third-party-elevated")


# --- 1. WS-Security envelopes --------------------------------------------------------------------


def check_envelope(original: Envelope, data: bytes) -> None:
    try:
        verified = bounded(wssec.verify_envelope, data, now=NOW, holder_of_key=original.holder_of_key)
    except SignatureInvalid:
        event("refused")
        return
    event("accepted")  # --hypothesis-show-statistics: how often each way
    assert verified.certificate == original.certificate, "accepted with another signer"
    assert xmldsig.c14n(verified.body) == original.body_c14n, "accepted with another Body"
    assert view(verified.body) == original.body_view, "the Body reads differently"
    assert verified.created == original.created, "accepted with another Timestamp"
    if original.token is not None:
        assert verified.assertion is not None, "a holder-of-key message accepted without its assertion"
        read = token.verify(verified.assertion, sts().trust, NOW)
        assert _token_meaning(read) == original.token, "accepted with another token"


@budget(120)
@given(kind=st.sampled_from(("rsa", "ec")), ops=ops_of(raw_op))
def test_envelope_byte_mutations(kind, ops):
    original = x509_envelope(kind)
    check_envelope(original, mutate(original.data, ops))


@budget(200)
@given(ops=ops_of(structure_op))
def test_envelope_structure_mutations(ops):
    original = x509_envelope("rsa")
    check_envelope(original, mutate(original.data, ops))


@budget(120)
@given(ops=ops_of(st.one_of(text_op, same_meaning_op)))
def test_envelope_text_mutations(ops):
    original = x509_envelope("rsa")
    check_envelope(original, mutate(original.data, ops))


@budget(150)
@given(ops=ops_of(any_op))
def test_holder_of_key_envelope_mutations(ops):
    original = saml_envelope()
    check_envelope(original, mutate(original.data, ops))


SIGNED = {
    "envelope": lambda: x509_envelope("rsa").data,
    "token": lambda: token_bytes("true"),
    "request": saml_request,
}


def _signed_meaning(target: str, data: bytes) -> Any:
    """What a verifier reads from a signed document (raises the documented refusals)."""
    if target == "envelope":
        verified = wssec.verify_envelope(data, now=NOW)
        return verified.certificate, xmldsig.c14n(verified.body), view(verified.body), verified.created
    if target == "token":
        return _token_meaning(token.verify(data, sts().trust, NOW))
    request = xmldsig.parse(data)
    saml.verify_request_signature(request, holder().certificate)
    return saml.read_query(request)


@budget(60)
@given(target=st.sampled_from(sorted(SIGNED)), i=index, k=st.integers(0, 1))
@example(target="envelope", i=31, k=0)  # <m:Ping xmlns:m="test"> in the signed Body
@example(target="token", i=13, k=0)  # a saml:Attribute in namespace "test"
@example(target="request", i=26, k=0)  # a claimed saml:Attribute in namespace "test"
def test_signed_content_in_a_relative_namespace_is_refused(target, i, k):
    """A signed element moved into a relative namespace URI ("test", "../x"): canonical XML
    cannot serialise it, so a verifier must refuse it with its documented exception."""
    original = _signed_meaning(target, SIGNED[target]())
    try:
        read = bounded(_signed_meaning, target, mutate(SIGNED[target](), [("relative", i, k)]))
    except CLAIM_REFUSALS:
        return
    assert read == original, "accepted with another meaning"


@budget(30)
@given(i=index, j=index)
@example(i=9, j=3)  # <ds:CanonicalizationMethod ...>&e;</ds:CanonicalizationMethod>
def test_signed_info_holding_an_entity_is_refused(i, j):
    original = x509_envelope("rsa")
    check_envelope(original, mutate(original.data, [("text", i, "x"), ("entity", j, 0)]))


@budget(30)
@given(i=index)
@example(i=6)  # the BinarySecurityToken
def test_a_certificate_with_an_unreadable_key_is_refused(i):
    """A certificate whose public key does not load, anywhere in a signed message: refused."""
    original = x509_envelope("rsa")
    check_envelope(original, mutate(original.data, [("spoil", i, "key")]))


@budget(60)
@given(target=st.sampled_from(sorted(SIGNED)), i=index, part=st.sampled_from(("key", "subject", "issuer")))
@example(target="token", i=40, part="subject")  # the token signer's certificate
def test_a_certificate_with_an_unreadable_part_is_refused(target, i, part):
    """Any certificate of a token, request or message whose key or names do not load: refused,
    or (a certificate nobody reads) the same meaning."""
    assume(target != "envelope" or part != "key")  # the bug of the test above
    original = _signed_meaning(target, SIGNED[target]())
    try:
        read = bounded(_signed_meaning, target, mutate(SIGNED[target](), [("spoil", i, part)]))
    except CLAIM_REFUSALS:
        return
    assert read == original, "accepted with another meaning"


# --- 2. STS tokens -------------------------------------------------------------------------------


def _token_meaning(read: token.Token) -> Any:
    return (read.assertion_id, read.not_before, read.not_on_or_after, read.holder_of_key, read.attributes)


@budget(200)
@given(linked=st.sampled_from(("true", "false")), ops=ops_of(any_op))
def test_token_mutations(linked, ops):
    """A good token and one whose certified boolean is false (refused by check_session): a
    mutation is refused, or reads as the original, so it is accepted or refused as that was."""
    authority, original = sts(), token.verify(token_bytes(linked), sts().trust, NOW)
    try:
        read = bounded(token.verify, mutate(token_bytes(linked), ops), authority.trust, NOW)
    except SignatureInvalid:
        event("refused")
        return
    event("accepted")
    assert _token_meaning(read) == _token_meaning(original), "accepted with another meaning"
    try:
        kind = token.check_session(read, ASKED, holder().certificate)
    except TokenRefused:
        assert linked == "false", "a good token is refused"
    else:
        assert linked == "true" and kind == "pharmacy", "a token whose boolean is false is accepted"


# --- 3. STS requests (the sandbox STS reads them) -------------------------------------------------


def _read_query(data: bytes) -> saml.Claimed:
    return saml.read_query(xmldsig.parse(data))


@budget(120)
@given(ops=ops_of(any_op))
def test_saml_request_mutations(ops):
    """Any mutation: read or refused (SignatureInvalid, ClaimRefused). A mutation whose enveloped
    signature still holds reads as the original."""
    original = _read_query(saml_request())
    data = mutate(saml_request(), ops)
    try:
        read = bounded(_read_query, data)
    except CLAIM_REFUSALS:
        return
    try:
        bounded(saml.verify_request_signature, xmldsig.parse(data), holder().certificate)
    except SignatureInvalid:
        return
    assert read == original, "a request whose signature holds reads differently"


def _read_request(data: bytes) -> saml.Claimed:
    return wstrust.read_request(xmldsig.parse(data))


@budget(120)
@given(ops=ops_of(any_op))
def test_wstrust_request_mutations_are_read_or_refused(ops):
    data = mutate(rst(), ops)
    try:
        bounded(_read_request, data)
    except SignatureInvalid:
        pass


@functools.cache
def client() -> Any:
    return software_signer("rsa")


def _client_sends(body: bytes) -> bytes | None:
    """The request in an envelope signed by the client (None: mcn's signer cannot sign it, as
    C14N does not serialise an unexpanded entity reference; another client's might)."""
    try:
        root = wssec.sign_envelope(wssec.envelope(xmldsig.parse(body)), client(), now=NOW)
    except SignatureInvalid:  # mcn's c14n refuses what it cannot canonicalise
        return None
    return wssec.to_bytes(root)


def _sts_reads(message: bytes) -> saml.Claimed:
    """What the sandbox STS does with a WS-Trust request: verify the client's envelope, then
    read the request from the signed Body."""
    verified = wssec.verify_envelope(message, now=NOW)
    return wstrust.read_request(wssec.body_payload(verified))


@budget(80)
@given(ops=ops_of(same_meaning_op))
def test_wstrust_request_means_the_same_through_the_sts(ops):
    """The client signs what it sends (so any content is "signed"): a request that means the same
    to an XML reader is read as the original, or refused."""
    original = _sts_reads(_client_sends(rst()))
    message = _client_sends(mutate(rst(), ops))
    if message is None:
        return
    try:
        read = bounded(_sts_reads, message)
    except SignatureInvalid:
        return
    assert read == original, "the same request reads differently"


# --- 4. Insurability answers ---------------------------------------------------------------------


def _parse_answer(data: bytes) -> insurability.Answer:
    return insurability.parse_answer(xmldsig.parse(data))


@budget(150)
@given(scenario=st.sampled_from(ANSWERS), ops=ops_of(any_op))
def test_answer_mutations_are_read_or_refused(scenario, ops):
    """MyCareNet's answer is not signed: any mutation is read, or refused as ServiceUnavailable
    (not well-formed XML is SignatureInvalid from xmldsig.parse, before parse_answer)."""
    data = mutate(answer(scenario), ops)
    try:
        root = xmldsig.parse(data)
    except SignatureInvalid:
        return
    try:
        bounded(insurability.parse_answer, root)
    except ServiceUnavailable:
        pass


@budget(100)
@given(scenario=st.sampled_from(ANSWERS), ops=ops_of(same_meaning_op))
@example(scenario="annex-1", ops=[("comment", 20, 4)])  # <core:Ssin>8507<!-- -->3003328
@example(scenario="annex-1", ops=[("entity", 0, 0)])  # <Code>&e;00</Code>, e = "2"
def test_answer_that_means_the_same_reads_the_same(scenario, ops):
    original = _parse_answer(answer(scenario))
    try:
        read = bounded(_parse_answer, mutate(answer(scenario), ops))
    except (SignatureInvalid, ServiceUnavailable):
        return
    assert read == original, "the same answer reads differently"


# --- 5. xmldsig.parse over hostile documents -----------------------------------------------------

SECRET = "mcn-property-secret-7f3a"


@functools.cache
def secret_file() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="mcn-properties-"))
    atexit.register(shutil.rmtree, folder, True)
    path = folder / "secret.txt"
    path.write_text(SECRET)
    return path


def _prologs() -> list[bytes]:
    uri = secret_file().as_uri().encode()
    return [
        b"",
        b"<?xml version='1.0'?>",
        b"<?xml version='1.0' encoding='UTF-8'?>",
        b"<?xml version='1.0' encoding='ISO-8859-1'?>",
        b"<?xml version='1.0' encoding='UTF-16'?>",
        b"<?xml version='1.0' encoding='EBCDIC-nonsense'?>",
        b"<?xml version='1.1'?>",
        b'<!DOCTYPE r [<!ENTITY e SYSTEM "' + uri + b'">]>',
        b'<!DOCTYPE r [<!ENTITY % p SYSTEM "' + uri + b'"> %p;]>',
        b'<!DOCTYPE r SYSTEM "' + uri + b'">',
        b'<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">'
        b'<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">]>',
        b"<!DOCTYPE r [<!ATTLIST r Id ID #IMPLIED>]>",
        b"<!-- c --><?pi x?>",
    ]


documents = st.builds(
    lambda prolog, inner, tail: prolog + b"<r" + inner + b"</r>" + tail,
    st.integers(0, 12).map(lambda k: _prologs()[k]),
    st.lists(
        st.sampled_from((b">", b"&e;", b"x", b"<a/>", b"<![CDATA[&e;]]>", b" Id='1'>", b"\x00", b"\xc3"))
        | st.binary(max_size=8),
        max_size=6,
    ).map(b"".join),
    st.sampled_from((b"", b"\n", b"<r/>", b"\x00", b"<!-- -->")),
)


@budget(150)
@given(data=documents)
def test_parse_is_well_formed_xml_or_refused_and_reads_no_file(data):
    try:
        root = bounded(xmldsig.parse, data)
    except SignatureInvalid:
        return
    assert SECRET not in etree.tostring(root, encoding="unicode"), "an external entity was read"


# --- 6. Keystores --------------------------------------------------------------------------------

PASSWORD = "keystore-pass-1"
KEYSTORE_REFUSALS = (keystore.KeystoreError, InvalidInput)


def _spki(key: Any) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _der(certificate: Any) -> bytes | None:
    return None if certificate is None else certificate.public_bytes(serialization.Encoding.DER)


def entries(data: bytes, password: str = PASSWORD) -> list[tuple[Any, ...]]:
    """What a keystore holds, as plain data (it crosses the process boundary)."""
    return [
        (e.alias, _spki(e.private_key), _der(e.certificate), [_der(c) for c in e.chain])
        for e in keystore.read(data, password).entries
    ]


def coherent_entries(data: bytes, password: str = PASSWORD) -> list[tuple[Any, ...]]:
    """Read, and check what any keystore read must satisfy: an entry's certificate certifies
    the entry's key."""
    read = entries(data, password)
    for alias, spki, certificate, _ in read:
        if certificate is not None:
            from cryptography import x509

            try:
                certified = x509.load_der_x509_certificate(certificate).public_key()
            except (ValueError, UnsupportedAlgorithm):
                raise AssertionError(f"entry {alias!r} has a certificate whose key is unreadable") from None
            own = certified.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            assert own == spki, f"entry {alias!r} pairs a key with another key's certificate"
    return read


@dataclass
class Tlv:
    """One DER value, kept as a tree; an OCTET STRING holding DER (PKCS#12 nests them) is opened."""

    tag: bytes
    content: bytes = b""
    children: list[Tlv] | None = None
    long_length: bool = False
    indefinite: bool = False

    def encode(self) -> bytes:
        inner = self.body()
        if self.indefinite and self.children is not None and self.tag[0] & 0x20:
            return self.tag + b"\x80" + inner + b"\x00\x00"
        size = len(inner)
        if size < 0x80 and not self.long_length:
            length = bytes([size])
        else:
            raw = size.to_bytes(4 if self.long_length else (size.bit_length() + 7) // 8, "big")
            length = bytes([0x80 | len(raw)]) + raw
        return self.tag + length + inner

    def body(self) -> bytes:
        return self.content if self.children is None else b"".join(c.encode() for c in self.children)


def der_read(data: bytes) -> list[Tlv]:
    nodes, at = [], 0
    while at < len(data):
        node, at = _der_one(data, at)
        nodes.append(node)
    return nodes


def _der_one(data: bytes, at: int) -> tuple[Tlv, int]:
    try:
        first = data[at]
        tag_end = at + 1
        if first & 0x1F == 0x1F:
            while data[tag_end] & 0x80:
                tag_end += 1
            tag_end += 1
        tag = data[at:tag_end]
        size = data[tag_end]
    except IndexError:
        raise ValueError("truncated") from None
    at = tag_end + 1
    if size & 0x80:
        count = size & 0x7F
        if not 1 <= count <= 4 or at + count > len(data):
            raise ValueError("bad length")
        size = int.from_bytes(data[at : at + count], "big")
        at += count
    end = at + size
    if end > len(data):
        raise ValueError("truncated")
    node = Tlv(tag, data[at:end])
    if first & 0x20:
        node.children, node.content = der_read(node.content), b""
    elif first in (0x04, 0x80) and node.content[:1] == b"\x30":
        try:
            node.children, node.content = der_read(node.content), b""
        except ValueError:
            pass
    return node, end


def _flat(nodes: list[Tlv]) -> list[tuple[Tlv, list[Tlv]]]:
    out: list[tuple[Tlv, list[Tlv]]] = []
    for node in nodes:
        out.append((node, nodes))
        if node.children is not None:
            out.extend(_flat(node.children))
    return out


OIDS = (
    "1.2.840.113549.1.7.1",  # data
    "1.2.840.113549.1.7.6",  # encrypted data
    "1.2.840.113549.1.7.2",  # signed data
    "1.2.840.113549.1.12.10.1.1",  # key bag
    "1.2.840.113549.1.12.10.1.2",  # shrouded key bag
    "1.2.840.113549.1.12.10.1.3",  # cert bag
    "1.2.840.113549.1.12.10.1.5",  # secret bag
    "1.2.840.113549.1.12.1.3",  # pbeWithSHAAnd3-KeyTripleDES-CBC
    "1.2.840.113549.1.12.1.6",  # pbeWithSHAAnd40BitRC2-CBC
    "1.2.840.113549.1.5.13",  # PBES2
    "1.2.840.113549.1.5.12",  # PBKDF2
    "1.2.840.113549.2.9",  # hmacWithSHA256
    "2.16.840.1.101.3.4.1.42",  # aes256-CBC
    "2.16.840.1.101.3.4.1.2",  # aes128-CBC
    "1.2.840.113549.3.7",  # des-ede3-cbc
    "1.3.14.3.2.26",  # sha1
    "2.16.840.1.101.3.4.2.1",  # sha256
    "1.2.840.113549.2.5",  # md5
    "1.2.840.113549.1.9.20",  # friendlyName
    "1.2.840.113549.1.9.21",  # localKeyId
    "1.2.840.113549.1.9.22.1",  # x509Certificate
    "1.2.840.10045.2.1",  # ecPublicKey
    "1.2.840.113549.1.1.1",  # rsaEncryption
    "1.2.3.4",
)
INTEGERS = (0, 1, 2, 3, -1, -(1 << 31), 127, 128, 255, 256, 2048, 50_000, 1 << 64, 1 << 2048)


def _integer(value: int) -> bytes:
    return value.to_bytes((value + (value < 0)).bit_length() // 8 + 1, "big", signed=True)


def _der_mutate(nodes: list[Tlv], name: str, i: int, k: int, value: int) -> None:
    flat = _flat(nodes)
    if not flat:
        return
    node, siblings = _pick(flat, i)
    at = next(n for n, s in enumerate(siblings) if s is node)
    if name == "flip":
        body = bytearray(node.body() or b"\x00")
        body[k % len(body)] ^= value % 255 + 1
        node.children, node.content = None, bytes(body)
    elif name == "cut":
        body = node.body()
        node.children, node.content = None, body[: k % (len(body) + 1)]
    elif name == "grow":
        node.children, node.content = None, node.body() + bytes([value % 256]) * (k % 9 + 1)
    elif name == "int":
        integers = [n for n, _ in flat if n.tag == b"\x02"]
        if integers:
            _pick(integers, i).content = _integer(_pick(INTEGERS, value))
    elif name == "oid":
        oids = [n for n, _ in flat if n.tag == b"\x06"]
        if oids:
            _pick(oids, i).content = core.ObjectIdentifier(_pick(OIDS, value)).contents
    elif name == "retag":
        node.tag = bytes([value % 256])
    elif name == "drop":
        del siblings[at]
    elif name == "dup":
        siblings.insert(at, copy.deepcopy(node))
    elif name == "swap" and at + 1 < len(siblings):
        siblings[at], siblings[at + 1] = siblings[at + 1], siblings[at]
    elif name == "copy":
        siblings[at] = copy.deepcopy(_pick(flat, k)[0])
    elif name == "long":
        node.long_length = True
    elif name == "indefinite":
        node.indefinite = True


der_op = st.tuples(
    st.sampled_from(
        ("flip", "cut", "grow", "int", "oid", "retag", "drop", "dup", "swap", "copy", "long", "indefinite")
    ),
    st.integers(0, 2000),
    st.integers(0, 2000),
    st.integers(0, 2000),
)


def der_mutate(data: bytes, ops: Sequence[Op]) -> bytes:
    nodes = der_read(data)
    for op in ops:
        _der_mutate(nodes, *op)
    return b"".join(n.encode() for n in nodes)


_MAC_DIGESTS = {"1.3.14.3.2.26": "sha1", "2.16.840.1.101.3.4.2.1": "sha256"}


def remac(data: bytes, password: str = PASSWORD) -> bytes:
    """The keystore with its MAC made again over its (changed) contents, as a hostile file would
    come with the password its sender gives: the checks behind the MAC are then reached.
    Best effort: a structure it cannot follow is returned as it is."""
    try:
        pfx = der_read(data)[0]
        content = pfx.children[1].children[1].children[0].body()
        mac, salt, *rest = pfx.children[2].children
        digest_info, digest = mac.children
        name = _MAC_DIGESTS[core.ObjectIdentifier.load(digest_info.children[0].encode()).dotted]
        iterations = int.from_bytes(rest[0].body(), "big", signed=True) if rest else 1
    except (ValueError, TypeError, IndexError, KeyError, AttributeError):
        return data
    if not 0 < iterations <= 10_000:
        return data
    key = keystore.pkcs12_kdf(password, salt.body(), 3, iterations, hashlib.new(name).digest_size, name)
    digest.children, digest.content = None, hmac.new(key, content, name).digest()
    return pfx.encode() + b"".join(n.encode() for n in der_read(data)[1:])


@functools.cache
def ec_issued() -> tuple[Any, Any, Any]:
    """An EC key and its certificate issued by a CA (EC keys load fast: RSA keys are validated
    at every load, ~80 ms)."""
    from cryptography.x509.oid import NameOID

    authority = pki.issue(pki.name((NameOID.COMMON_NAME, "property CA")), pki.ec_key(), None, ca=True)
    first = pki.issue(pki.name((NameOID.COMMON_NAME, "first")), pki.ec_key(), authority)
    second = pki.issue(pki.name((NameOID.COMMON_NAME, "second")), pki.ec_key(), authority)
    return authority, first, second


@functools.cache
def written_keystore() -> bytes:
    """mcn's own keystores: PBES2 AES-256 key bags, encrypted certificates, SHA-256 MAC."""
    authority, first, second = ec_issued()
    return keystore.write(
        keystore.Keystore(
            [
                keystore.KeyEntry("authentication", first.key, first.certificate, [authority.certificate]),
                keystore.KeyEntry("123456789", second.key, second.certificate),
            ]
        ),
        PASSWORD,
    )


@functools.cache
def plain_keystore() -> bytes:
    """Unencrypted key and certificate bags under a SHA-256 MAC: every ASN.1 value the reader
    parses is open to the mutations."""
    authority, first, second = ec_issued()
    key_bags, cert_bags = [], []
    for alias, issued in (("authentication", first), ("123456789", second)):
        key_id = hashlib.sha1(_spki(issued.key)).digest()
        attributes = [
            {"type": "friendly_name", "values": [alias]},
            {"type": "local_key_id", "values": [key_id]},
        ]
        private = issued.key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        key_bags.append(
            {
                "bag_id": "key_bag",
                "bag_value": asn1_keys.PrivateKeyInfo.load(private),
                "bag_attributes": attributes,
            }
        )
        cert_bags.append(
            {
                "bag_id": "cert_bag",
                "bag_value": {
                    "cert_id": "x509",
                    "cert_value": core.ParsableOctetString(_der(issued.certificate)),
                },
                "bag_attributes": attributes,
            }
        )
    cert_bags.append(
        {
            "bag_id": "cert_bag",
            "bag_value": {
                "cert_id": "x509",
                "cert_value": core.ParsableOctetString(_der(authority.certificate)),
            },
            "bag_attributes": [],
        }
    )
    safe = pkcs12.AuthenticatedSafe(
        [
            {"content_type": "data", "content": core.OctetString(pkcs12.SafeContents(cert_bags).dump())},
            {"content_type": "data", "content": core.OctetString(pkcs12.SafeContents(key_bags).dump())},
        ]
    ).dump()
    pfx = pkcs12.Pfx(
        {
            "version": "v3",
            "auth_safe": {"content_type": "data", "content": core.OctetString(safe)},
            "mac_data": {
                "mac": {"digest_algorithm": {"algorithm": "sha256"}, "digest": b"\x00" * 32},
                "mac_salt": b"salt-of-sixteen!",
                "iterations": 2048,
            },
        }
    )
    return remac(pfx.dump())


@pytest.fixture(scope="module")
def legacy_keystore(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """What eHealth's tools write: 3DES key bag, 40-bit RC2 certificates, SHA-1 MAC (OpenSSL)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    authority, first, _ = ec_issued()
    folder = tmp_path_factory.mktemp("legacy")
    (folder / "key.pem").write_bytes(pki.key_pem(first.key))
    (folder / "cert.pem").write_bytes(pki.pem(first.certificate))
    (folder / "ca.pem").write_bytes(pki.pem(authority.certificate))
    command = ["openssl", "pkcs12", "-export", "-legacy", "-name", "authentication", "-out", "legacy.p12"]
    command += ["-inkey", "key.pem", "-in", "cert.pem", "-certfile", "ca.pem", "-passout", "env:P12_PASSWORD"]
    environment = {**os.environ, "P12_PASSWORD": PASSWORD}  # never a password on a command line
    subprocess.run(command, cwd=folder, env=environment, check=True, capture_output=True)
    data = _Quiet((folder / "legacy.p12").read_bytes())
    assert keystore.read(data, PASSWORD).get("authentication") is not None
    return data


class _Quiet(bytes):
    """Bytes that Hypothesis shows by name in a falsifying example, not as 1 400 escapes."""

    def __repr__(self) -> str:
        return "<legacy keystore>"


def _keystore(kind: str, legacy: bytes) -> bytes:
    return {"written": written_keystore, "plain": plain_keystore}.get(kind, lambda: legacy)()


KINDS = st.sampled_from(("written", "plain", "legacy"))


def check_same_entries(original: bytes, data: bytes) -> None:
    """Refused, or the same entries (a mutation the MAC does not cover must not change them)."""
    outcome = in_child(entries, data, refusals=KEYSTORE_REFUSALS)
    event(outcome.kind)
    assert outcome.kind != "crash", outcome.value
    if outcome.kind == "ok":
        assert outcome.value == entries(original), "a changed keystore is read with other entries"


raw_keystore_op = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 16), st.integers(1, 255)),
    st.tuples(st.just("delete"), st.integers(0, 1 << 16), st.integers(1, 64)),
    st.tuples(st.just("cut"), st.integers(0, 1 << 16)),
)


def raw_keystore_mutate(data: bytes, op: Op) -> bytes:
    name, at, *rest = op
    if name == "cut":
        return data[: at % (len(data) + 1)]
    return RAW_OPS[name](data, at, *rest)


@budget(60)
@given(kind=KINDS, op=raw_keystore_op)
def test_keystore_byte_mutations(legacy_keystore, kind, op):
    original = _keystore(kind, legacy_keystore)
    check_same_entries(original, raw_keystore_mutate(original, op))


@budget(60)
@given(kind=KINDS, op=der_op)
def test_keystore_asn1_mutations(legacy_keystore, kind, op):
    """One ASN.1 change (the MAC is left as it was)."""
    original = _keystore(kind, legacy_keystore)
    check_same_entries(original, der_mutate(original, [op]))


@budget(120)
@given(kind=KINDS, ops=st.lists(der_op, min_size=1, max_size=3))
def test_keystore_asn1_mutations_behind_a_good_mac(legacy_keystore, kind, ops):
    """Changes with the MAC made again (a hostile keystore sent with its password): refused, or
    read, within the time limit, without any other exception."""
    data = remac(der_mutate(_keystore(kind, legacy_keystore), ops))
    outcome = in_child(entries, data, refusals=KEYSTORE_REFUSALS)
    event(outcome.kind)
    assert outcome.kind != "crash", outcome.value


@budget(80)
@given(ops=st.lists(der_op, min_size=1, max_size=2))
@example(ops=[("copy", 212, 137, 0)])  # the authentication key bag takes the other key's localKeyId
@example(ops=[("flip", 40, 6, 1987)])  # the first certificate's key algorithm: an unknown OID
def test_keystore_entries_pair_each_key_with_its_certificate(ops):
    """Behind a good MAC: an entry's certificate, when there is one, certifies the entry's key."""
    data = remac(der_mutate(plain_keystore(), ops))
    outcome = in_child(coherent_entries, data, refusals=KEYSTORE_REFUSALS)
    assert outcome.kind != "crash", outcome.value


def _with_iterations(data: bytes, old: int, occurrence: int, new: int) -> bytes:
    """The keystore with the ``occurrence``-th INTEGER equal to ``old`` set to ``new``."""
    nodes = der_read(data)
    integers = [n for n, _ in _flat(nodes) if n.tag == b"\x02" and n.content == _integer(old)]
    integers[occurrence].content = _integer(new)
    return b"".join(n.encode() for n in nodes)


HUGE = (1 << 31) - 1


@pytest.mark.parametrize(
    ("kind", "old", "occurrence", "again"),
    [
        pytest.param("written", keystore.MAC_ITERATIONS, -1, False, id="mac"),
        pytest.param("written", keystore.ITERATIONS, 0, True, id="pbes2"),
        pytest.param("legacy", 2048, 0, True, id="rc2-certificates"),
        pytest.param("legacy", 2048, 1, True, id="3des-key"),
    ],
)
def test_keystore_huge_iteration_counts_are_refused_quickly(legacy_keystore, kind, old, occurrence, again):
    """2^31-1 iterations (issue 11 item 6): refused within a second, not computed."""
    data = _with_iterations(_keystore(kind, legacy_keystore), old, occurrence, HUGE)
    outcome = in_child(entries, remac(data) if again else data, refusals=KEYSTORE_REFUSALS, limit=1.0)
    assert outcome.kind == "refused", outcome.value


BOUND = getattr(keystore, "MAX_ITERATIONS", 10_000_000)
TOTAL = getattr(keystore, "MAX_TOTAL_ITERATIONS", 2 * BOUND)


@pytest.mark.parametrize(
    ("kind", "old", "occurrence", "new", "again"),
    [
        pytest.param("written", keystore.MAC_ITERATIONS, -1, BOUND, False, id="mac"),
        pytest.param("written", keystore.ITERATIONS, -1, BOUND, True, id="pbes2-key"),
        pytest.param("legacy", 2048, 1, min(BOUND, (TOTAL - 4 * 2048) // 3), True, id="3des-key"),
    ],
)
def test_keystore_iteration_counts_within_the_bound_are_quick(
    legacy_keystore, kind, old, occurrence, new, again
):
    """Counts the reader accepts cost a bounded time, not a hang (the bounds are chosen so that it
    is about a second on this project's machine; the limit here leaves room for a busy one)."""
    data = _with_iterations(_keystore(kind, legacy_keystore), old, occurrence, new)
    outcome = in_child(entries, remac(data) if again else data, refusals=KEYSTORE_REFUSALS, limit=5.0)
    assert outcome.kind != "crash", outcome.value
