"""Asking the eHealth STS for a SAML 1.1 holder-of-key token for a pharmacy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from mcn_cli.domain.errors import AuthenticationNeeded, ServiceUnavailable
from mcn_cli.ehealth import ns, saml, transport, wssec
from mcn_cli.ehealth.endpoints import Environment
from mcn_cli.ehealth.ns import q
from mcn_cli.ehealth.saml import Token, TokenRefused
from mcn_cli.ehealth.signers import KeystoreSigner, Signer
from mcn_cli.ehealth.xmldsig import SignatureInvalid

SOAP_ACTION = "urn:be:fgov:ehealth:sts:protocol:v1:RequestSecurityToken"


def request_token(
    environment: Environment,
    identification: Signer,
    holder: KeystoreSigner,
    claims: Mapping[str, str],
    designators: Sequence[str],
) -> Token:
    now = datetime.now(UTC)
    request = saml.attribute_query(
        identification.certificate, holder.certificate, claims, designators, now=now
    )
    if holder.certificate != identification.certificate:
        saml.sign_request(request, holder)
    envelope = wssec.sign_envelope(wssec.envelope(request), identification, now=now)
    try:
        root, _ = transport.post(
            environment.sts_url,
            wssec.to_bytes(envelope),
            SOAP_ACTION,
            verify=environment.verify,
            timeout=environment.timeout,
        )
    except transport.SoapFaultError as error:
        if "security" in error.fault.code.lower():
            raise AuthenticationNeeded(f"eHealth refused the login: {error.fault.message}") from None
        raise ServiceUnavailable(f"the eHealth STS failed: {error.fault.message}") from None
    response = root.find(f"{q(ns.SOAP, 'Body')}/{q(ns.SAMLP, 'Response')}")
    if response is None:
        raise ServiceUnavailable("the eHealth STS answered without a SAML response")
    code = response.find(f"{q(ns.SAMLP, 'Status')}/{q(ns.SAMLP, 'StatusCode')}")
    if code is None or code.get("Value", "").split(":")[-1] != "Success":
        message = (
            response.findtext(f"{q(ns.SAMLP, 'Status')}/{q(ns.SAMLP, 'StatusMessage')}") or "no reason given"
        )
        raise AuthenticationNeeded(f"eHealth refused the login: {message}")
    assertion = response.find(q(ns.SAML, "Assertion"))
    if assertion is None:
        raise ServiceUnavailable("the eHealth STS answered without a token")
    try:
        token = saml.check_assertion(assertion, environment.sts_certificate, datetime.now(UTC))
        saml.check_token(token)
    except SignatureInvalid as error:
        raise AuthenticationNeeded(f"the eHealth token is unusable: {error}") from None
    except TokenRefused as error:
        raise AuthenticationNeeded(f"eHealth refused the session: {error}") from None
    if token.holder_of_key != holder.certificate:
        raise AuthenticationNeeded("the eHealth token names another holder-of-key certificate")
    return token
