"""Asking the eHealth STS for a SAML 1.1 holder-of-key token: one entry point, two protocol
variants behind it (``sts_wstrust`` and ``sts_saml``), one set of checks on what comes back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from mcn_cli.domain.errors import AuthenticationNeeded, InvalidInput
from mcn_cli.domain.messages import N_
from mcn_cli.ehealth import token as tokens
from mcn_cli.ehealth import transport, wssec
from mcn_cli.ehealth.endpoints import Environment
from mcn_cli.ehealth.saml import Attribute
from mcn_cli.ehealth.signers import KeystoreSigner, Signer
from mcn_cli.ehealth.token import Token, TokenRefused
from mcn_cli.ehealth.xmldsig import SignatureInvalid


@dataclass(frozen=True)
class Reply:
    body: etree._Element  # the one element of the answer's SOAP Body
    root: etree._Element
    raw: bytes


Call = Callable[[str, etree._Element, Signer], Reply]


def _caller(environment: Environment, trace: Path | None) -> Call:
    """Sign ``body`` with WS-Security by ``signer``, post it with ``action``, return the answer."""
    steps = 0

    def call(action: str, body: etree._Element, signer: Signer) -> Reply:
        nonlocal steps
        steps += 1
        envelope = wssec.sign_envelope(wssec.envelope(body), signer)
        payload = wssec.to_bytes(envelope)
        answer: bytes | None = None
        try:
            root, exchange = transport.post(
                environment.sts_url,
                payload,
                action,
                verify=environment.verify,
                timeout=environment.timeout,
                contact=environment.contact,
                max_answer_bytes=environment.max_answer_bytes,
                service=transport.STS,
            )
            answer = exchange.response
        except transport.SoapFaultError as error:
            answer = error.response or None
            if error.fault.code.split(":")[-1] == "Server":
                raise  # "the eHealth STS is failing (fault CODE: TEXT)": a ServiceFailing
            raise AuthenticationNeeded(
                N_("eHealth refused the login: {reason}"),
                reason=transport.printable(error.fault.message, 200),
            ) from None
        finally:
            if trace is not None:
                from mcn_cli.ehealth import traces

                traces.write(trace, f"STS-{steps}-{action.rsplit(':', 1)[-1]}", payload, answer)
        body_element = root.find(f"{{{wssec.ns.SOAP}}}Body")
        children = [] if body_element is None else [c for c in body_element if isinstance(c.tag, str)]
        if len(children) != 1:
            raise transport.ServiceFailing(
                N_("{service} answered with an empty or mixed SOAP Body"), service=transport.STS
            )
        return Reply(children[0], root, exchange.response)

    return call


def request_token(
    environment: Environment,
    identification: Signer,
    holder: KeystoreSigner,
    attributes: Sequence[Attribute],
    *,
    trace: Path | None = None,
    renewing: bytes | None = None,
) -> tuple[Token, str]:
    """A checked token for the session ``attributes`` describe, and its kind ("pharmacy"/"ot").
    With ``renewing`` (a token still valid), a WS-Trust Renew of that token instead."""
    call = _caller(environment, trace)
    try:
        if renewing is not None:
            if environment.sts_protocol != "wstrust":
                raise InvalidInput(
                    "sts_protocol",
                    "renew",
                    N_('only the WS-Trust STS renews a token: set sts_protocol = "wstrust"'),
                )
            from mcn_cli.ehealth import sts_wstrust

            assertion = sts_wstrust.renew(call, identification, holder, renewing)
        elif environment.sts_protocol == "saml":
            if not isinstance(holder.private_key, rsa.RSAPrivateKey):
                raise InvalidInput(
                    "sts_protocol",
                    "ec-key",
                    N_(
                        "the organisation keystore holds an EC key, which eHealth's SAML STS does not take: "
                        'set sts_protocol = "wstrust"'
                    ),
                )
            from mcn_cli.ehealth import sts_saml

            assertion = sts_saml.obtain(call, identification, holder, attributes)
        else:
            from mcn_cli.ehealth import sts_wstrust

            assertion = sts_wstrust.obtain(call, identification, holder, attributes)
        token = tokens.verify(assertion, environment.trust, datetime.now(UTC))
        kind = tokens.check_session(token, attributes, holder.certificate)
    except SignatureInvalid as error:
        raise AuthenticationNeeded(
            N_("the eHealth token is unusable: {reason}"), reason=error.as_message()
        ) from None
    except TokenRefused as error:
        raise AuthenticationNeeded(
            N_("eHealth refused the session: {reason}"), reason=error.as_message()
        ) from None
    return token, kind
