"""Who exists in the sandbox: pharmacists, pharmacies, a tarification office, and their files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mcn_cli.store import paths

if TYPE_CHECKING:
    from mcn_cli.ehealth.trust import StsTrust


@dataclass(frozen=True)
class Person:
    niss: str
    first: str
    last: str
    nihii11: str  # personal NIHII: 8 digits + qualification
    eid: str | None  # "rsa", "ec" (newer cards) or None (no card in the sandbox)
    key: str = "rsa"  # the personal eHealth certificate's key: "rsa" or "ec" (P-384, as eHealth issues now)

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"


@dataclass(frozen=True)
class Pharmacy:
    nihii: str
    kbo: str
    name: str
    holder: str  # NISS of the titular pharmacist
    authorised: tuple[str, ...]  # NISS of every pharmacist who may open a session for it
    key: str = "rsa"  # the organisation certificate's key: "rsa" or "ec" (P-384)
    certified: bool = True  # False: no certificate yet (mcn sandbox init makes none; CertRA will)


ANNE = Person("75021504626", "Anne", "Lambert", "18302514001", "rsa")  # titular of the Parc
PIETER = Person("88110312363", "Pieter", "Claes", "19437711002", "ec")  # authorised at the Parc
MARC = Person("70052021115", "Marc", "Dubois", "21006438001", None, "ec")  # titular elsewhere
PEOPLE = (ANNE, PIETER, MARC)

PARC = Pharmacy("27150201", "0403019261", "Pharmacie du Parc", ANNE.niss, (ANNE.niss, PIETER.niss))
LINDE = Pharmacy("62599147", "0202239951", "Apotheek De Linde", MARC.niss, (MARC.niss,), "ec")
# no certificate yet: the one to request through the sandbox's CertRA (Pieter titular, Anne
# authorised there too, so the default card, Anne's, is validated automatically and logs in)
GARE = Pharmacy(
    "35101726", "0456789034", "Pharmacie de la Gare", PIETER.niss, (PIETER.niss, ANNE.niss), certified=False
)
PHARMACIES = (PARC, LINDE, GARE)

OT_NIHII = "64001291"
OT_NAME = "Office de tarification Test"

DEFAULT_PIN = "1234"

LAYOUT = "4"  # bumped when the sandbox's PKI changes shape: mcn sandbox init then re-creates it
STS_SIGNER = "mcn sandbox STS"  # the CN of the sandbox STS's signing certificate


def person(niss: str) -> Person | None:
    return next((p for p in PEOPLE if p.niss == niss), None)


def pharmacy(nihii: str) -> Pharmacy | None:
    return next((p for p in PHARMACIES if p.nihii == nihii), None)


class Files:
    """Where the sandbox keeps its PKI, keystores, token and state (under the data folder)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or paths.data_dir() / "sandbox"

    @property
    def ca(self) -> Path:
        return self.root / "ca"

    def ca_cert(self, name: str) -> Path:
        return self.ca / f"{name}.pem"

    def ca_key(self, name: str) -> Path:
        return self.ca / f"{name}.key"

    @property
    def keystores(self) -> Path:
        return self.root / "keystores"

    def org_keystore(self, nihii: str) -> Path:
        return self.keystores / f"NIHII-PHARMACY={nihii}.p12"

    def personal_keystore(self, niss: str) -> Path:
        return self.keystores / f"SSIN={niss}.p12"

    def ot_keystore(self) -> Path:
        return self.keystores / f"NIHII-OTD_PHARMACY={OT_NIHII}.p12"

    def expired_keystore(self, niss: str) -> Path:
        return self.keystores / "expired" / f"SSIN={niss}.p12"

    @property
    def softhsm(self) -> Path:
        return self.root / "softhsm"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def server_file(self) -> Path:
        return self.root / "server.json"

    @property
    def layout_file(self) -> Path:
        return self.root / "layout"

    def exists(self) -> bool:
        try:
            layout = self.layout_file.read_text().strip()
        except OSError:
            return False
        return layout == LAYOUT and self.ca_cert("sts").exists() and self.org_keystore(PARC.nihii).exists()

    def state(self) -> dict[str, object]:
        try:
            return json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return {"revoked": []}

    def save_state(self, state: dict[str, object]) -> None:
        from mcn_cli.store.secure_files import write_private

        write_private(self.state_file, json.dumps(state, indent=2).encode())

    def revoked(self) -> set[int]:
        return {int(s) for s in self.state().get("revoked", [])}  # type: ignore[union-attr]


def sts_trust(files: Files) -> StsTrust:
    """The sandbox STS's tokens are trusted as eHealth's are: by chain (the sandbox CAs) and name."""
    from cryptography import x509

    from mcn_cli.ehealth.trust import StsTrust

    anchors = tuple(
        x509.load_pem_x509_certificate(files.ca_cert(n).read_bytes()) for n in ("root", "ehealth")
    )
    return StsTrust(anchors, STS_SIGNER)
