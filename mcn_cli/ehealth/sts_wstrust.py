"""The WS-Trust 1.3 variant of the STS (``/IAM/SecurityTokenService/v1``, STS.md §3): the RST
signed with the identification key; when the STS challenges (the holder-of-key certificate is
not the signing one), the challenge echoed and signed with the holder-of-key key."""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree

from mcn_cli.domain.messages import N_
from mcn_cli.ehealth import wstrust, xmldsig
from mcn_cli.ehealth.saml import Attribute
from mcn_cli.ehealth.signers import KeystoreSigner, Signer
from mcn_cli.ehealth.sts_client import Call
from mcn_cli.ehealth.xmldsig import SignatureInvalid


def renew(call: Call, identification: Signer, holder: KeystoreSigner, assertion: bytes) -> bytes:
    """A new assertion for the one given, which is embedded as it is (STS.md §3 "Renew")."""
    return _exchange(call, wstrust.renew_request(xmldsig.parse(assertion)), identification, holder)


def obtain(
    call: Call, identification: Signer, holder: KeystoreSigner, attributes: Sequence[Attribute]
) -> bytes:
    """The assertion, as the STS sent it."""
    return _exchange(call, wstrust.issue_request(holder.certificate, attributes), identification, holder)


def _exchange(call: Call, request: etree._Element, identification: Signer, holder: KeystoreSigner) -> bytes:
    reply = call(wstrust.SOAP_ACTION, request, identification)
    challenge = wstrust.read_challenge(reply.body)
    if challenge is not None:
        if challenge.context != request.get("Context"):
            raise SignatureInvalid(N_("the STS's challenge is not for this request"))
        answer = wstrust.challenge_answer(challenge.context, challenge.challenge)
        reply = call(wstrust.CHALLENGE_ACTION, answer, holder)
        if wstrust.read_challenge(reply.body) is not None:
            raise SignatureInvalid(N_("the STS challenged twice"))
    context = reply.body.get("Context")
    if context is not None and context != request.get("Context"):
        raise SignatureInvalid(N_("the STS's answer is not for this request"))
    assertion = wstrust.requested_token(reply.body)
    return xmldsig.exact_bytes(reply.raw, reply.root, assertion)
