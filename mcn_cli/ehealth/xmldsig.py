"""XML signatures (exclusive C14N, SHA-256): one implementation for the client and the sandbox.

``sign`` builds a ds:Signature over referenced elements (enveloped or detached); ``verify``
checks one, resolving each reference through a caller-given function so that the caller
decides which element a reference may point at (the defence against wrapping attacks).
"""

from __future__ import annotations

import base64
import copy
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree

from mcn_cli.domain.messages import N_, Message, english
from mcn_cli.ehealth import ns
from mcn_cli.ehealth.ns import q
from mcn_cli.ehealth.signers import Signer


class Refusal(Exception):
    """A check that did not hold: English source text (``N_``) with named parameters, as
    ``McnError`` carries it, so that whoever reports it can quote it translated
    (``as_message()``) and ``str()`` stays the English text (the sandbox sends it as is)."""

    def __init__(self, message: str, **params: object) -> None:
        self.msgid = message
        self.params = params
        self.message = english(message, params)
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def as_message(self) -> Message:
        return Message(self.msgid, self.params)


class SignatureInvalid(Refusal):
    """A signature, a digest, a timestamp or the message's structure does not hold."""


def parser() -> etree.XMLParser:
    """A parser that loads no DTD, no entity and nothing from the network."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def parse(data: bytes) -> etree._Element:
    try:
        return etree.fromstring(data, parser())
    except etree.XMLSyntaxError as error:
        raise SignatureInvalid(N_("not well-formed XML: {reason}"), reason=str(error)) from None


def c14n(element: etree._Element, prefixes: Sequence[str] | None = None) -> bytes:
    try:
        return etree.tostring(
            element,
            method="c14n",
            exclusive=True,
            with_comments=False,
            inclusive_ns_prefixes=list(prefixes) if prefixes else None,
        )
    except etree.C14NError as error:  # e.g. a relative namespace URI, which C14N cannot write
        raise SignatureInvalid(
            N_("the signed XML cannot be canonicalised: {reason}"), reason=str(error)
        ) from None


def certificate(der: bytes) -> Any:
    """An X.509 certificate whose key and names can be read, or SignatureInvalid: cryptography
    parses those lazily, and a damaged one would otherwise fail later with another error."""
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm

    try:
        loaded = x509.load_der_x509_certificate(der)
        loaded.public_key()
        loaded.subject.rfc4514_string()
        loaded.issuer.rfc4514_string()
    except (ValueError, KeyError, TypeError, UnsupportedAlgorithm):
        raise SignatureInvalid(N_("a certificate in the message is unreadable")) from None
    return loaded


_DIGESTS = {ns.SHA256: hashlib.sha256, ns.SHA1: hashlib.sha1}


@dataclass(frozen=True)
class Reference:
    uri: str  # "#id"
    element: etree._Element
    enveloped: bool = False


def sign(
    references: Sequence[Reference],
    signer: Signer,
    key_info: etree._Element | None,
    place: Callable[[etree._Element], None],
    signature_id: str | None = None,
) -> etree._Element:
    """Digest the references, put the new ds:Signature where ``place`` says, then sign it."""
    signature = etree.Element(q(ns.DS, "Signature"), nsmap={"ds": ns.DS})
    if signature_id:
        signature.set("Id", signature_id)
    info = etree.SubElement(signature, q(ns.DS, "SignedInfo"))
    etree.SubElement(info, q(ns.DS, "CanonicalizationMethod"), Algorithm=ns.EXC_C14N)
    etree.SubElement(info, q(ns.DS, "SignatureMethod"), Algorithm=signer.algorithm)
    for reference in references:
        ref = etree.SubElement(info, q(ns.DS, "Reference"), URI=reference.uri)
        transforms = etree.SubElement(ref, q(ns.DS, "Transforms"))
        if reference.enveloped:
            etree.SubElement(transforms, q(ns.DS, "Transform"), Algorithm=ns.ENVELOPED)
        etree.SubElement(transforms, q(ns.DS, "Transform"), Algorithm=ns.EXC_C14N)
        etree.SubElement(ref, q(ns.DS, "DigestMethod"), Algorithm=ns.SHA256)
        value = base64.b64encode(hashlib.sha256(c14n(reference.element)).digest()).decode()
        etree.SubElement(ref, q(ns.DS, "DigestValue")).text = value
    value_element = etree.SubElement(signature, q(ns.DS, "SignatureValue"))
    if key_info is not None:
        signature.append(key_info)
    place(signature)
    value_element.text = base64.b64encode(signer.sign(c14n(info))).decode()
    return signature


def one(parent: etree._Element, tag: str, what: str | None = None) -> etree._Element:
    """The one child ``tag`` of ``parent``; none or several is refused (SignatureInvalid)."""
    found = parent.findall(tag)
    if len(found) != 1:
        raise SignatureInvalid(
            N_("expected one {element}, found {count}"),
            element=what or etree.QName(tag).localname,
            count=len(found),
        )
    return found[0]


def _transforms(reference: etree._Element) -> tuple[bool, list[str] | None]:
    enveloped = False
    prefixes: list[str] | None = None
    transforms = reference.find(q(ns.DS, "Transforms"))
    steps = [] if transforms is None else transforms.findall(q(ns.DS, "Transform"))
    algorithms = [t.get("Algorithm") for t in steps]
    if algorithms == [ns.ENVELOPED, ns.EXC_C14N]:
        enveloped = True
    elif algorithms != [ns.EXC_C14N]:
        raise SignatureInvalid(N_("unsupported transforms {algorithms}"), algorithms=str(algorithms))
    inclusive = steps[-1].find(q(ns.EXC_C14N_NS, "InclusiveNamespaces"))
    if inclusive is not None:
        prefixes = (inclusive.get("PrefixList") or "").split()
    return enveloped, prefixes


def _without_signature(element: etree._Element, signature: etree._Element) -> etree._Element:
    """A copy of ``element`` without ``signature`` (the enveloped-signature transform)."""
    steps: list[int] = []
    node = signature
    while node is not element:
        parent = node.getparent()
        if parent is None:
            raise SignatureInvalid(N_("an enveloped signature must lie inside the signed element"))
        steps.append(parent.index(node))
        node = parent
    clone = copy.deepcopy(element)
    target = clone
    for index in reversed(steps):
        target = target[index]
    parent = target.getparent()
    assert parent is not None
    parent.remove(target)
    return clone


def verify_value(
    public_key: Any, algorithm: str, value: bytes, data: bytes, allow_sha1: bool = False
) -> None:
    try:
        if isinstance(public_key, rsa.RSAPublicKey) and algorithm in (ns.RSA_SHA256, ns.RSA_SHA1):
            if algorithm == ns.RSA_SHA1 and not allow_sha1:
                raise SignatureInvalid(N_("RSA-SHA1 signatures are not accepted"))
            digest = hashes.SHA256() if algorithm == ns.RSA_SHA256 else hashes.SHA1()
            public_key.verify(value, data, padding.PKCS1v15(), digest)
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and algorithm == ns.ECDSA_SHA256:
            size = len(value) // 2
            der = encode_dss_signature(
                int.from_bytes(value[:size], "big"), int.from_bytes(value[size:], "big")
            )
            public_key.verify(der, data, ec.ECDSA(hashes.SHA256()))
        else:
            raise SignatureInvalid(
                N_("signature method {algorithm} does not fit the key"), algorithm=algorithm
            )
    except InvalidSignature:
        raise SignatureInvalid(
            N_("the signature value does not match: wrong key, or the signed data changed")
        ) from None


def verify(
    signature: etree._Element,
    resolve: Callable[[str], etree._Element],
    public_key: Any,
    *,
    allow_sha1: bool = False,
) -> list[etree._Element]:
    """Check every reference's digest and the signature value; returns the signed elements."""
    if any(not isinstance(node.tag, str) for node in signature.iter()):
        raise SignatureInvalid(N_("the signature holds a comment, processing instruction or entity"))
    info = one(signature, q(ns.DS, "SignedInfo"))
    method = one(info, q(ns.DS, "CanonicalizationMethod")).get("Algorithm")
    if method != ns.EXC_C14N:
        raise SignatureInvalid(N_("canonicalization {method} is not exclusive C14N"), method=method)
    algorithm = one(info, q(ns.DS, "SignatureMethod")).get("Algorithm") or ""
    signed: list[etree._Element] = []
    references = info.findall(q(ns.DS, "Reference"))
    if not references:
        raise SignatureInvalid(N_("the signature references nothing"))
    for reference in references:
        uri = reference.get("URI") or ""
        if not uri.startswith("#") or len(uri) < 2:
            raise SignatureInvalid(N_("reference {uri!r} is not a same-document reference"), uri=uri)
        element = resolve(uri[1:])
        if any(not isinstance(node.tag, str) for node in element.iter()):
            # exclusive C14N without comments does not sign them, yet they cut the text around them
            raise SignatureInvalid(N_("{uri} holds a comment, processing instruction or entity"), uri=uri)
        enveloped, prefixes = _transforms(reference)
        digest_method = one(reference, q(ns.DS, "DigestMethod")).get("Algorithm")
        if digest_method not in _DIGESTS or (digest_method == ns.SHA1 and not allow_sha1):
            raise SignatureInvalid(N_("digest method {method} is not accepted"), method=digest_method)
        target = _without_signature(element, signature) if enveloped else element
        digest = base64.b64encode(_DIGESTS[digest_method](c14n(target, prefixes)).digest()).decode()
        expected = (one(reference, q(ns.DS, "DigestValue")).text or "").strip()
        if digest != expected:
            raise SignatureInvalid(
                N_("the digest of {uri} does not match: the signed element changed"), uri=uri
            )
        signed.append(element)
    value_text = one(signature, q(ns.DS, "SignatureValue")).text or ""
    try:
        value = base64.b64decode("".join(value_text.split()), validate=True)
    except ValueError:
        raise SignatureInvalid(N_("the signature value is not base64")) from None
    verify_value(public_key, algorithm, value, c14n(info), allow_sha1)
    return signed


def find_by_id(root: etree._Element, attribute: str, value: str) -> etree._Element:
    """The one element whose ``attribute`` is ``value``; none or several is an attack or an error."""
    found = [e for e in root.iter() if isinstance(e.tag, str) and e.get(attribute) == value]
    if len(found) != 1:
        raise SignatureInvalid(N_("{count} elements carry the id {value!r}"), count=len(found), value=value)
    return found[0]


def exact_bytes(raw: bytes, root: etree._Element, element: etree._Element) -> bytes:
    """``element`` as it stands in ``raw`` (the document ``root`` was parsed from), byte for byte,
    when it declares every namespace it uses; otherwise lxml's serialisation with the in-scope
    declarations added. Either way its canonical form is the one that was signed."""
    from xml.parsers import expat

    position = next(i for i, e in enumerate(e for e in root.iter() if isinstance(e.tag, str)) if e is element)
    spans: list[list[int]] = []
    open_elements: list[int] = []
    parser = expat.ParserCreate()

    def start(name: str, attributes: object) -> None:
        open_elements.append(len(spans))
        spans.append([parser.CurrentByteIndex, -1])

    def end(name: str) -> None:
        spans[open_elements.pop()][1] = parser.CurrentByteIndex

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(raw, True)
        begin, closing = spans[position]
    except (expat.ExpatError, IndexError):
        return etree.tostring(element)
    end_index = raw.index(b">", closing) + 1 if raw[closing : closing + 2] == b"</" else closing
    kept = raw[begin:end_index]
    prefixes = [
        prefix
        for inclusive in element.iter(q(ns.EXC_C14N_NS, "InclusiveNamespaces"))
        for prefix in (inclusive.get("PrefixList") or "").split()
    ]
    try:
        alone = parse(kept)
    except SignatureInvalid:
        return etree.tostring(element)
    if c14n(alone, prefixes) == c14n(element, prefixes) and not _undeclared_type_prefix(alone):
        return kept
    return etree.tostring(element)


def _undeclared_type_prefix(root: etree._Element) -> bool:
    """An xsi:type value naming a prefix declared only outside ``root`` (C14N does not see it)."""
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        value = element.get(q(ns.XSI, "type"))
        if value and ":" in value and value.split(":", 1)[0] not in element.nsmap:
            return True
    return False
