"""The SAML 1.1 variant of the STS (``/IAM/Saml11TokenService/v1``, STS.md §2): a samlp:Request
holding the claims, signed inside by the holder-of-key key and outside (WS-Security) by the
identification key; the answer is a samlp:Response with the assertion."""

from __future__ import annotations

from collections.abc import Sequence

from mcn_cli.domain.errors import AuthenticationNeeded
from mcn_cli.domain.messages import N_
from mcn_cli.ehealth import ns, saml, xmldsig
from mcn_cli.ehealth.ns import q
from mcn_cli.ehealth.saml import Attribute
from mcn_cli.ehealth.signers import KeystoreSigner, Signer
from mcn_cli.ehealth.sts_client import Call
from mcn_cli.ehealth.xmldsig import SignatureInvalid

SOAP_ACTION = "urn:be:fgov:ehealth:sts:protocol:v1:RequestSecurityToken"


def obtain(
    call: Call, identification: Signer, holder: KeystoreSigner, attributes: Sequence[Attribute]
) -> bytes:
    """The assertion, as the STS sent it."""
    request = saml.attribute_query(identification.certificate, holder.certificate, attributes)
    saml.sign_request(request, holder, holder.certificate)  # always, as e-Contract and egelke do
    reply = call(SOAP_ACTION, request, identification)
    response = reply.body
    if response.tag != q(ns.SAMLP, "Response"):
        raise SignatureInvalid(N_("the eHealth STS answered without a SAML response"))
    if response.get("InResponseTo") != request.get("RequestID"):
        raise SignatureInvalid(N_("the STS's answer is not for this request"))
    code = response.find(f"{q(ns.SAMLP, 'Status')}/{q(ns.SAMLP, 'StatusCode')}")
    if code is None or code.get("Value", "").split(":")[-1] != "Success":
        message = response.findtext(f"{q(ns.SAMLP, 'Status')}/{q(ns.SAMLP, 'StatusMessage')}")
        if not message:
            raise AuthenticationNeeded(N_("eHealth refused the login (no reason given)"))
        raise AuthenticationNeeded(N_("eHealth refused the login: {reason}"), reason=message)
    assertions = response.findall(q(ns.SAML, "Assertion"))
    if len(assertions) != 1:
        raise SignatureInvalid(N_("the STS's answer holds no token"))
    return xmldsig.exact_bytes(reply.raw, reply.root, assertions[0])
