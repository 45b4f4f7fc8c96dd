"""Support traces: the messages of one exchange as files a helpdesk can read and check.

The request is kept exactly as sent, so that its signatures still verify (``xmldsig`` or
``xmlsec1 --verify``); when it holds a secret (the software licence), a redacted copy is written
beside it, named ``…-request.redacted.xml``, the one to mail. Every file is owner-only: traces
hold personal data by nature.
"""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from mcn_cli.store.secure_files import write_private

SECRET_ELEMENTS = ("Username", "Password")


def redacted(message: bytes) -> bytes | None:
    """A copy of ``message`` with the licence hidden, or None when it holds none."""
    from mcn_cli.ehealth import xmldsig

    root = xmldsig.parse(message)
    found = False
    for element in root.iter():
        if isinstance(element.tag, str) and etree.QName(element).localname in SECRET_ELEMENTS:
            element.text = "***"
            found = True
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8") if found else None


def write(folder: Path, name: str, request: bytes, response: bytes | None) -> Path:
    """Write one exchange; returns the request file's path."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    stem = f"{stamp}-{os.getpid()}-{secrets.token_hex(2)}-{name}"
    target = folder / f"{stem}-request.xml"
    write_private(target, request)
    copy = redacted(request)
    if copy is not None:
        write_private(folder / f"{stem}-request.redacted.xml", copy)
    if response is not None:
        write_private(folder / f"{stem}-response.xml", response)
    return target
