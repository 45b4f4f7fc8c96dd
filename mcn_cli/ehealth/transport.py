"""Posting SOAP over HTTPS, with every network failure turned into one clear error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from lxml import etree

from mcn_cli.domain.errors import ServiceUnavailable
from mcn_cli.ehealth import soap, xmldsig
from mcn_cli.ehealth.soap import Fault


def _user_agent() -> str:
    from mcn_cli import __version__

    return f"mcn/{__version__}"


USER_AGENT = _user_agent()


class ConnectionRefused(ServiceUnavailable):
    """Nothing accepted the connection: the request never reached the service."""


class SoapFaultError(Exception):
    def __init__(self, fault: Fault, status: int, response: bytes = b"") -> None:
        super().__init__(f"{fault.code}: {fault.message}")
        self.fault = fault
        self.status = status
        self.response = response


@dataclass(frozen=True)
class Exchange:
    request: bytes
    response: bytes
    status: int


def post(
    url: str,
    payload: bytes,
    soap_action: str,
    *,
    verify: str | bool,
    timeout: float,
    session: Any = None,
    contact: str = "",
) -> tuple[etree._Element, Exchange]:
    """POST ``payload``; returns the parsed answer. Raises ServiceUnavailable or SoapFaultError.
    ``contact`` goes as the From header, as eHealth asks of client software."""
    import requests

    host = urlsplit(url).netloc
    headers = {
        "Content-Type": "text/xml; charset=utf-8",
        "SOAPAction": f'"{soap_action}"',
        "User-Agent": USER_AGENT,
    }
    if contact:
        headers["From"] = contact
    try:
        response = (session or requests).post(
            url, data=payload, headers=headers, verify=verify, timeout=(min(timeout, 10), timeout)
        )
    except requests.exceptions.SSLError:
        raise ServiceUnavailable(f"{host}: its TLS certificate is not trusted; nothing was sent") from None
    except requests.exceptions.ConnectTimeout:
        raise ServiceUnavailable(f"{host} did not accept the connection within {timeout:g} s") from None
    except requests.exceptions.Timeout:
        raise ServiceUnavailable(f"{host} did not answer within {timeout:g} s") from None
    except requests.exceptions.ConnectionError as error:
        if "NewConnectionError" in repr(error) or "Connection refused" in str(error):
            raise ConnectionRefused(f"cannot reach {host}: the network or the service is down") from None
        raise ServiceUnavailable(
            f"{host} broke the connection: the network or the service is failing"
        ) from None
    exchange = Exchange(payload, response.content, response.status_code)
    if response.status_code in (429, 503):
        retry = response.headers.get("Retry-After")
        wait = f"; retry after {retry} s" if retry else ""
        raise ServiceUnavailable(f"{host} is throttling this pharmacy (HTTP {response.status_code}){wait}")
    try:
        root = xmldsig.parse(response.content)
    except xmldsig.SignatureInvalid:
        raise ServiceUnavailable(f"{host} sent a malformed answer (HTTP {response.status_code})") from None
    fault = soap.read_fault(root)
    if fault is not None:
        raise SoapFaultError(fault, response.status_code, response.content)
    if response.status_code != 200:
        raise ServiceUnavailable(f"{host} answered HTTP {response.status_code}")
    return root, exchange
