"""SOAP 1.1 faults: building them (sandbox) and reading them (client)."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from mcn_cli.ehealth import ns
from mcn_cli.ehealth.ns import q


@dataclass(frozen=True)
class Fault:
    code: str
    message: str
    detail: str | None = None


def fault_envelope(fault: Fault) -> bytes:
    root = etree.Element(q(ns.SOAP, "Envelope"), nsmap={"soapenv": ns.SOAP})
    body = etree.SubElement(root, q(ns.SOAP, "Body"))
    element = etree.SubElement(body, q(ns.SOAP, "Fault"))
    etree.SubElement(element, "faultcode").text = fault.code
    etree.SubElement(element, "faultstring").text = fault.message
    if fault.detail:
        etree.SubElement(etree.SubElement(element, "detail"), "message").text = fault.detail
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def read_fault(root: etree._Element) -> Fault | None:
    element = root.find(f"{q(ns.SOAP, 'Body')}/{q(ns.SOAP, 'Fault')}")
    if element is None:
        return None
    detail = element.find("detail")
    detail_text = " ".join(t.strip() for t in detail.itertext() if t.strip()) if detail is not None else None
    return Fault(
        (element.findtext("faultcode") or "").strip(),
        (element.findtext("faultstring") or "").strip(),
        detail_text or None,
    )
