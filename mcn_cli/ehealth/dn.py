"""Distinguished names as eHealth's clients write them: Java's ``X500Principal.getName("RFC1779")``.

The STS request's NameIdentifier and NameQualifier carry the identification certificate's
subject and issuer in this form (``../shared/docs/STS.md`` §2). It differs from RFC 4514: RDNs are
separated by ", ", only CN C L ST O OU STREET have keywords (others are ``OID.x.y.z``), a value
holding a special character, a leading or trailing space or two spaces in a row is quoted whole,
and a multi-valued RDN is joined by " + ".
"""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

_KEYWORDS = {
    NameOID.COMMON_NAME: "CN",
    NameOID.COUNTRY_NAME: "C",
    NameOID.LOCALITY_NAME: "L",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.STREET_ADDRESS: "STREET",
}
# Java's X500Principal.toString(): what eHealth's tokens carry.
_JAVA_KEYWORDS = {
    **_KEYWORDS,
    NameOID.SERIAL_NUMBER: "SERIALNUMBER",
    NameOID.GIVEN_NAME: "GIVENNAME",
    NameOID.SURNAME: "SURNAME",
    NameOID.EMAIL_ADDRESS: "EMAILADDRESS",
    NameOID.DOMAIN_COMPONENT: "DC",
    NameOID.USER_ID: "UID",
    NameOID.DN_QUALIFIER: "DNQUALIFIER",
    NameOID.TITLE: "T",
    NameOID.INITIALS: "INITIALS",
    NameOID.GENERATION_QUALIFIER: "GENERATION",
}
_SPECIAL = ',+=\n<>#;\\"'


def _value(text: str) -> str:
    quoted = len(text) > 1 and text[0] == '"' and text[-1] == '"'  # Java keeps those quotes
    quote = bool(text) and (text[0] in " \n" or text[-1] in " \n")
    out: list[str] = []
    previous_white = False
    for index, char in enumerate(text):
        if quoted and index in (0, len(text) - 1):
            out.append(char)
            continue
        if char in _SPECIAL:
            quote = True
        if char in " \n":
            quote = quote or previous_white
            previous_white = True
        else:
            previous_white = False
            if char in '"\\':
                out.append("\\")
        out.append(char)
    escaped = "".join(out)
    return f'"{escaped}"' if quote and not quoted else escaped


def _attribute(attribute: x509.NameAttribute, keywords: dict) -> str:
    keyword = keywords.get(attribute.oid, f"OID.{attribute.oid.dotted_string}")
    value = attribute.value if isinstance(attribute.value, str) else attribute.value.hex()
    return f"{keyword}={_value(value)}"


def _join(name: x509.Name, keywords: dict) -> str:
    return ", ".join(
        " + ".join(_attribute(attribute, keywords) for attribute in rdn) for rdn in reversed(list(name.rdns))
    )


def rfc1779(name: x509.Name) -> str:
    """``name`` in Java's RFC 1779 form, most specific RDN first: what the STS request carries."""
    return _join(name, _KEYWORDS)


def java_string(name: x509.Name) -> str:
    """``name`` as Java's ``X500Principal.toString()``: what eHealth's tokens carry."""
    return _join(name, _JAVA_KEYWORDS)
