"""The sandbox server: HTTPS on loopback, SOAP services at the real eHealth paths."""

from __future__ import annotations

import hashlib
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lxml import etree

from mcn_cli.ehealth import wssec, wstrust
from mcn_cli.ehealth.soap import Fault, fault_envelope
from mcn_cli.ehealth.xmldsig import SignatureInvalid
from mcn_cli.sandbox import insurability, sts
from mcn_cli.sandbox.world import Files, sts_trust

STS_PATHS = {"wstrust": "/IAM/SecurityTokenService/v1", "saml": "/IAM/Saml11TokenService/v1"}
INSURABILITY_PATH = "/Insurability/v2"
# The SOAPActions real clients send (STS.md §1): the connector up to 4.0.2 says RequestSecureToken.
SAML_ACTIONS = (
    "urn:be:fgov:ehealth:sts:protocol:v1:RequestSecurityToken",
    "urn:be:fgov:ehealth:sts:protocol:v1:RequestSecureToken",
)
WSTRUST_ACTIONS = (wstrust.SOAP_ACTION, wstrust.CHALLENGE_ACTION)
REGISTRATION_PATHS = ("/CertRa/v2", "/EtkRa/v2", "/EtkDepot/v1")  # CERTRA.md §1
HEALTH_PATH = "/health"
MAX_BODY = 2 * 1024 * 1024


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = "text/xml; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


Service = Callable[[bytes, dict[str, str]], Reply]


def soap_reply(root: etree._Element) -> Reply:
    return Reply(200, wssec.to_bytes(wssec.envelope(root)))


def fault_reply(code: str, message: str, status: int = 500) -> Reply:
    return Reply(status, fault_envelope(Fault(code, message)))


class Sandbox:
    """The services, built once per server from the sandbox files."""

    def __init__(self, files: Files) -> None:
        self.files = files
        self.services: dict[str, Service] = {
            STS_PATHS["saml"]: self.sts_saml,
            STS_PATHS["wstrust"]: self.sts_wstrust,
            INSURABILITY_PATH: self.insurability,
            **{path: self.registration(path) for path in REGISTRATION_PATHS},
        }
        self.throttle = insurability.Throttle()
        self.trust = sts_trust(files)
        self.challenges = sts.Challenges()
        self.authority = sts.Authority.load(files)  # keys loaded once; revocations read per request
        self.secret = hashlib.sha256(files.ca_key("sts").read_bytes()).digest()
        self.certra: Any = None  # the registration services, made at their first request

    def insurability(self, body: bytes, headers: dict[str, str]) -> Reply:
        now = datetime.now(UTC)
        today = date.today()
        switched = insurability.fault_switch(
            self.files, tuple(k for k in insurability.FAULTS if k != "refused")
        )
        try:
            caller, request = insurability.check_caller(body, self.trust, now)
            fault = switched.kind if switched else insurability.patient_fault(request, today)
            if fault is not None and fault != "slow":
                return _fault(fault)
            if fault == "slow":
                time.sleep(switched.seconds if switched else SLOW_SECONDS)
            if caller.kind == "pharmacy" and not self.throttle.allow(
                caller.pharmacy, insurability.patient_key(request)
            ):
                return _fault("throttle")
            return soap_reply(insurability.answer(request, caller, self.secret, today))
        except SignatureInvalid as error:
            return fault_reply("wsse:InvalidSecurity", f"security check failed: {error}")
        except insurability.Rejected as error:
            return fault_reply(error.code, str(error))

    def registration(self, path: str) -> Service:
        """CertRA v2, EtkRA v2 or the ETK depot (sandbox/certra.py): the Body's one element."""

        def serve(body: bytes, headers: dict[str, str]) -> Reply:
            from mcn_cli.ehealth import ns, xmldsig
            from mcn_cli.sandbox import certra

            if self.certra is None:
                self.certra = certra.Service(self.files)
            try:
                root = xmldsig.parse(body)
                if root.tag != f"{{{ns.SOAP}}}Envelope":
                    raise certra.Malformed("not a SOAP 1.1 envelope")
                bodies = root.findall(f"{{{ns.SOAP}}}Body")
                children = [c for c in bodies[0] if isinstance(c.tag, str)] if len(bodies) == 1 else []
                if len(children) != 1:
                    raise certra.Malformed("the SOAP Body must hold one request")
                return soap_reply(self.certra.handle(path, _action(headers), children[0]))
            except (certra.Malformed, SignatureInvalid) as error:
                return fault_reply("soapenv:Client", str(error))

        return serve

    def sts_saml(self, body: bytes, headers: dict[str, str]) -> Reply:
        if _action(headers) not in SAML_ACTIONS:
            return fault_reply("soapenv:Client", f"unknown SOAPAction {_action(headers)!r}")
        authority = replace(self.authority, revoked=self.files.revoked())  # revocations apply at once
        try:
            return soap_reply(sts.answer_saml(body, authority))
        except SignatureInvalid as error:
            return fault_reply("wsse:InvalidSecurity", f"security check failed: {error}")

    def sts_wstrust(self, body: bytes, headers: dict[str, str]) -> Reply:
        action = _action(headers)
        if action not in WSTRUST_ACTIONS:
            return fault_reply("soapenv:Client", f"unknown SOAPAction {action!r}")
        authority = replace(self.authority, revoked=self.files.revoked())
        try:
            return soap_reply(sts.answer_wstrust(body, action, authority, self.challenges))
        except SignatureInvalid as error:
            return fault_reply("wsse:InvalidSecurity", f"security check failed: {error}")
        except sts.InvalidRequest as error:
            return fault_reply("wst:InvalidRequest", str(error))
        except sts.Refused as error:
            return fault_reply("wst:FailedAuthentication", str(error))

    def handle(self, path: str, body: bytes, headers: dict[str, str]) -> Reply:
        service = self.services.get(path)
        if service is None:
            return fault_reply("soapenv:Client", f"no service at {path[:80]!r}", 404)
        return service(body, headers)


SLOW_SECONDS = 25.0


def _action(headers: dict[str, str]) -> str:
    return headers.get("soapaction", "").strip().strip('"')


def _fault(kind: str) -> Reply:
    if kind == "http-500":
        return Reply(500, b"<html><body>Internal Server Error</body></html>", "text/html")
    if kind == "soap-fault":
        return fault_reply("soapenv:Server", "SystemError: the insurer's system does not answer")
    if kind == "malformed":
        return Reply(
            200,
            b"<?xml version='1.0'?><soapenv:Envelope xmlns:soapenv='http://schemas.xmlsoap.org/"
            b"soap/envelope/'><soapenv:Body><ins:GetInsurabilityFor",
        )
    if kind == "throttle":
        return Reply(
            429, b"too many requests: this pharmacy is slowed down\n", "text/plain", (("Retry-After", "60"),)
        )
    raise ValueError(kind)


def _handler(sandbox: Sandbox) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "mcn-sandbox"
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms stall

        def log_message(self, format: str, *args: object) -> None:
            return

        def _send(self, reply: Reply) -> None:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)

        def do_GET(self) -> None:
            if self.path == HEALTH_PATH:
                self._send(Reply(200, b"mcn sandbox\n", "text/plain"))
            else:
                self._send(Reply(404, b"no such page\n", "text/plain"))

        def _refuse(self, status: int, message: str) -> None:
            """Refuse without reading the body: the connection closes after the fault."""
            self.close_connection = True
            self._send(fault_reply("soapenv:Client", message, status))

        def do_POST(self) -> None:
            length = self.headers.get("Content-Length")
            if self.headers.get("Transfer-Encoding") is not None or length is None:
                self._refuse(411, "a request needs a Content-Length (no chunked encoding)")
                return
            if not (length.isascii() and length.isdigit()):
                self._refuse(400, f"Content-Length {length[:20]!r} is not a number of bytes")
                return
            if int(length) > MAX_BODY:
                self._refuse(413, f"a request may hold at most {MAX_BODY} bytes")
                return
            body = self.rfile.read(int(length))
            if len(body) != int(length):
                self.close_connection = True  # the client went away mid-request
                return
            try:
                reply = sandbox.handle(self.path, body, {k.lower(): v for k, v in self.headers.items()})
            except Exception as error:  # the sandbox answers like a server: a fault, not a crash
                reply = fault_reply("soapenv:Server", f"sandbox error: {type(error).__name__}: {error}")
            self._send(reply)

    return Handler


HANDSHAKE_SECONDS = 10.0


class _QuietServer(ThreadingHTTPServer):
    """TLS is set up in each connection's own thread, within a time limit: a client that
    connects and never starts TLS holds its own thread, not the server's accept loop."""

    tls: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is not None:
            request.settimeout(HANDSHAKE_SECONDS)
            request = self.tls.wrap_socket(request, server_side=True)
            request.settimeout(None)
        super().finish_request(request, client_address)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that breaks the connection (or a TLS handshake) is its own problem: no traceback."""


class Server:
    """An HTTPS server on loopback; ``port=0`` picks a free port."""

    def __init__(self, files: Files, port: int = 0, host: str = "127.0.0.1") -> None:
        self.sandbox = Sandbox(files)
        self.httpd = _QuietServer((host, port), _handler(self.sandbox))
        self.httpd.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(files.ca_cert("server"), files.ca_key("server"))
        self.httpd.tls = context
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"https://{host}:{port}"

    def start(self) -> Server:
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="mcn-sandbox", daemon=True
        )
        self.thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
