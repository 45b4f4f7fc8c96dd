"""Posting SOAP over HTTPS, with every network failure turned into one clear error.

The server at the other end is not trusted to behave (issue 11):

- no redirect is ever followed: the signed envelope carries the licence password, and a 3xx
  is a service failure naming where it pointed;
- one deadline (``timeout``) bounds everything: name resolution, connect, TLS handshake,
  sending, and the status line, headers and body of the answer, however slowly they trickle;
- answers are capped (``max_answer_bytes``) before and after decompression, read in pieces;
- the HTTP framing is read strictly (one Content-Length or chunked, never both), and every
  failure is a ``ServiceUnavailable`` (exit 5) of one line naming the service ("MyCareNet",
  "the eHealth STS"), never its address (kept in ``address`` for traces):
  ``NetworkFailure`` when the service could not be talked to (``ConnectionRefused`` when the
  request certainly never reached it: callers retry it once), ``ServiceBusy`` when it asks to
  wait (HTTP 429, or 503 with Retry-After: ``retry_after`` seconds), ``ServiceFailing`` when it
  answered wrongly (an HTTP error, a malformed answer, a SOAP fault: ``SoapFaultError``).

HTTP/1.1 is spoken directly on a socket (no ``requests``, ``urllib3`` or ``http.client``), so
each read is bounded by what is left of the deadline and nothing is read that is not counted.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from lxml import etree

from mcn_cli.domain.errors import InvalidInput, ServiceUnavailable
from mcn_cli.domain.messages import N_, Message
from mcn_cli.ehealth import soap, xmldsig
from mcn_cli.ehealth.soap import Fault

DEFAULT_MAX_ANSWER_BYTES = 4 * 1024 * 1024  # the max_answer_bytes setting's default
_READ = 64 * 1024  # bytes asked of the socket at a time
_MAX_LINE = 8 * 1024  # status line, header line, chunk-size line
_MAX_HEADERS = 100
_MAX_INTERIM = 5  # 1xx answers skipped before the real one
_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([1-9][0-9]{2})(?: [^\r\n]*)?\r?\n")
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,15})[ \t]*(?:;[^\r\n]*)?\r?\n")


def _user_agent() -> str:
    from mcn_cli import __version__

    return f"mcn/{__version__}"


USER_AGENT = _user_agent()


MYCARENET = Message(N_("MyCareNet"))
STS = Message(N_("the eHealth STS"))


class TransportError(ServiceUnavailable):
    """A failure of one exchange with ``service`` (a message: "MyCareNet", "the eHealth STS"),
    the message's ``{service}`` parameter; ``address`` (host[:port]) is for traces, never
    shown in the message. ``retry_after`` is set only on ``ServiceBusy``."""

    retry_after: int | None = None

    def __init__(self, message: str, *, service: Message, address: str = "", **params: object) -> None:
        super().__init__(message, service=service, **params)
        self.service = service
        self.address = address


class NetworkFailure(TransportError):
    """The service could not be talked to: no connection, a timeout, a broken connection, TLS."""


class ConnectionRefused(NetworkFailure):
    """Nothing accepted the connection: the request never reached the service."""


class ServiceBusy(TransportError):
    """The service asks to wait (HTTP 429, or 503 with Retry-After): not a failure, try later.
    ``retry_after``: the seconds it asked, None when it did not say."""

    def __init__(self, *, service: Message, status: int, retry_after: int | None, address: str = "") -> None:
        if retry_after is None:
            super().__init__(
                N_("{service} is busy: wait a moment and try again"), service=service, address=address
            )
        else:
            super().__init__(
                N_("{service} is busy: wait {seconds} s"),
                service=service,
                address=address,
                seconds=retry_after,
            )
        self.status = status
        self.retry_after = retry_after


class ServiceFailing(TransportError):
    """The service answered, wrongly: an HTTP error, a malformed answer, a SOAP fault."""


class SoapFaultError(ServiceFailing):
    """A SOAP fault: ``fault`` (its code and text kept for the helpdesk, in the message too),
    the HTTP ``status`` and the raw ``response``. Callers map client and security faults to
    refusals; the message says the service is failing (right for server faults)."""

    def __init__(
        self,
        fault: Fault,
        status: int,
        response: bytes = b"",
        *,
        service: Message = MYCARENET,
        address: str = "",
    ) -> None:
        super().__init__(
            N_("{service} is failing (fault {code}: {text})"),
            service=service,
            address=address,
            code=printable(fault.code, 80),
            text=printable(fault.message, 200),
        )
        self.fault = fault
        self.status = status
        self.response = response


@dataclass(frozen=True)
class Exchange:
    request: bytes
    response: bytes
    status: int


class Connections:
    """Keeps connections open between posts to the same server (HTTP keep-alive), as a batch
    wants. One per thread; pass it as ``post(..., session=...)``. Without it, each post opens
    its own connection and closes it."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, str, int, str | bool], Any] = {}

    def take(self, key: tuple[str, str, int, str | bool]) -> Any:
        sock = self._idle.pop(key, None)
        if sock is not None and not _still_open(sock):
            sock.close()
            return None
        return sock

    def give(self, key: tuple[str, str, int, str | bool], sock: Any) -> None:
        previous = self._idle.pop(key, None)
        if previous is not None:
            previous.close()
        self._idle[key] = sock

    def close(self) -> None:
        for sock in self._idle.values():
            sock.close()
        self._idle.clear()


def post(
    url: str,
    payload: bytes,
    soap_action: str,
    *,
    verify: str | bool,
    timeout: float,
    session: Any = None,
    contact: str = "",
    max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
    service: Message = MYCARENET,
) -> tuple[etree._Element, Exchange]:
    """POST ``payload``; returns the parsed answer. Raises a TransportError (SoapFaultError for
    a fault); its messages name ``service`` (MYCARENET or STS), never the address.

    ``verify`` is a CA file (PEM) or True for the system's CAs; TLS is always verified.
    ``timeout`` (seconds) bounds the whole exchange; ``max_answer_bytes`` the answer, as sent
    and once decompressed. ``session`` may be a ``Connections`` (anything else is ignored).
    ``contact`` goes as the From header, as eHealth asks of client software."""
    if max_answer_bytes < 1:
        raise InvalidInput(
            "max_answer_bytes", "range", N_("must be at least 1, got {value}"), value=max_answer_bytes
        )
    target = _Target.of(url)
    headers = [
        ("Host", target.authority),
        ("User-Agent", USER_AGENT),
        ("Accept-Encoding", "gzip"),
        ("Content-Type", "text/xml; charset=utf-8"),
        ("SOAPAction", f'"{soap_action}"'),
    ]
    if contact:
        headers.append(("From", contact))
    pool = session if isinstance(session, Connections) else None
    if pool is None:
        headers.append(("Connection", "close"))
    headers.append(("Content-Length", str(len(payload))))
    head = f"POST {target.path} HTTP/1.1\r\n" + "".join(f"{k}: {_value(k, v)}\r\n" for k, v in headers)
    request = head.encode("latin-1") + b"\r\n" + payload

    call = _Call(target, verify, timeout, max_answer_bytes, pool, service)
    answer = call.run(request)
    exchange = Exchange(payload, answer.body, answer.status)
    retry_after = _retry_after(answer.header("retry-after"))
    if answer.status == 429 or (answer.status == 503 and retry_after is not None):
        raise ServiceBusy(
            service=service, status=answer.status, retry_after=retry_after, address=target.authority
        )
    try:
        root = xmldsig.parse(answer.body)
    except xmldsig.SignatureInvalid:
        if answer.status != 200:
            raise call.fail(N_("{service} is failing (HTTP {status})"), status=answer.status) from None
        raise call.fail(
            N_("{service} sent a malformed answer (HTTP {status})"), status=answer.status
        ) from None
    fault = soap.read_fault(root)
    if fault is not None:
        raise SoapFaultError(fault, answer.status, answer.body, service=service, address=target.authority)
    if answer.status != 200:
        raise call.fail(N_("{service} is failing (HTTP {status})"), status=answer.status)
    return root, exchange


def _retry_after(value: str) -> int | None:
    """The seconds a Retry-After header asks (a number, or an HTTP date); None when absent or
    unreadable. At least 1: a service that asks to wait 0 s is still busy."""
    value = value.strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return max(1, min(int(value[:9]), 86_400 * 7))
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    from datetime import UTC, datetime

    seconds = (when - datetime.now(UTC)).total_seconds()
    return max(1, min(int(seconds + 0.999), 86_400 * 7))


def _value(name: str, value: str) -> str:
    if any(ord(c) < 0x20 or ord(c) == 0x7F or ord(c) > 0xFF for c in value):
        raise InvalidInput(name, "header", N_("{value!r} cannot go in an HTTP header"), value=value)
    return value


def printable(text: str, limit: int) -> str:
    """Untrusted text for a one-line message: no control characters, at most ``limit`` long."""
    cleaned = "".join(c if c.isprintable() else "?" for c in text)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


_CLOSED_INSIDE = {
    "status line": N_("the connection closed inside the status line"),
    "header line": N_("the connection closed inside the header line"),
    "chunk size": N_("the connection closed inside the chunk size"),
    "chunk end": N_("the connection closed inside the chunk end"),
    "trailer": N_("the connection closed inside the trailer"),
}
_TOO_LONG = {
    "status line": N_("a status line over {limit} bytes"),
    "header line": N_("a header line over {limit} bytes"),
    "chunk size": N_("a chunk size over {limit} bytes"),
    "chunk end": N_("a chunk end over {limit} bytes"),
    "trailer": N_("a trailer over {limit} bytes"),
}


def _seconds(value: float) -> int | float:
    """A duration as people write it: 1, not 1.0; 0.5 stays."""
    return int(value) if value == int(value) else value


def _size(count: int) -> str:
    mib = count / (1024 * 1024)
    return f"{mib:g} MiB" if count % (1024 * 1024) == 0 else f"{count} bytes"


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str  # for DNS / connect / SNI (IPv6 without brackets)
    port: int
    authority: str  # for the Host header and messages
    path: str

    @classmethod
    def of(cls, url: str) -> _Target:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            parts, port = None, None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(
                "url", "format", N_("not an http(s) address: {url!r}"), url=printable(url, 120)
            )
        default = 443 if parts.scheme == "https" else 80
        host = parts.hostname
        authority = f"[{host}]" if ":" in host else host
        if port not in (None, default):
            authority += f":{port}"
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if any(ord(c) <= 0x20 or ord(c) >= 0x7F for c in path):
            raise InvalidInput(
                "url", "format", N_("not a plain address path: {path!r}"), path=printable(path, 120)
            )
        return cls(parts.scheme, host, port or default, authority, path)


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: dict[str, list[str]]
    body: bytes

    def header(self, name: str) -> str:
        values = self.headers.get(name)
        return values[0] if values else ""


class _Call:
    """One request and its answer within one deadline; every failure a ServiceUnavailable."""

    def __init__(
        self,
        target: _Target,
        verify: str | bool,
        timeout: float,
        limit: int,
        pool: Connections | None,
        service: Message = MYCARENET,
    ) -> None:
        self.target = target
        self.host = target.authority
        self.service = service
        self.verify = verify
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.limit = limit
        self.pool = pool
        self.key = (target.scheme, target.host, target.port, verify)
        self.buffer = bytearray()
        self.status = 0
        self.received = 0  # body bytes as sent, counted against the limit

    # -- time ------------------------------------------------------------------------------

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return left

    def fail(
        self, message: str, kind: type[TransportError] = ServiceFailing, **params: object
    ) -> TransportError:
        """``message`` (with ``{service}`` and ``params``) as a ``kind`` error."""
        return kind(message, service=self.service, address=self.host, **params)

    def lost(self, message: str, **params: object) -> TransportError:
        """A failure to talk to the service at all (the network's or the connection's)."""
        return self.fail(message, NetworkFailure, **params)

    def late(self, message: str, **params: object) -> TransportError:
        """The deadline passed: ``message`` has ``{seconds}``."""
        return self.lost(message, seconds=_seconds(self.timeout), **params)

    # -- the exchange ----------------------------------------------------------------------

    def run(self, request: bytes) -> _Answer:
        sock = self.pool.take(self.key) if self.pool is not None else None
        if sock is None:
            sock = self.connect()
        keep = False
        try:
            self.send(sock, request)
            answer, keep = self.receive(sock)
            return answer
        finally:
            if keep and self.pool is not None:
                self.pool.give(self.key, sock)
            else:
                _close(sock)

    def connect(self) -> Any:
        """A connection to the service (through the HTTPS proxy the environment names, if any)."""
        proxy = _proxy_for(self.target) if self.target.scheme == "https" else None
        if proxy is None:
            sock = self.open(self.target.host, self.target.port)
        else:
            sock = self.open(proxy.host, proxy.port)
            self.tunnel(sock, proxy)
        if self.target.scheme == "https":
            return self.secure(sock)
        return sock

    def tunnel(self, sock: Any, proxy: _Proxy) -> None:
        """Ask the proxy for a tunnel to the service: TLS then runs end to end through it, so the
        proxy sees neither the licence nor the signed envelope."""
        host = f"[{self.target.host}]" if ":" in self.target.host else self.target.host
        where = f"{host}:{self.target.port}"
        lines = [f"CONNECT {where} HTTP/1.1", f"Host: {where}", f"User-Agent: {USER_AGENT}"]
        if proxy.authorization:
            lines.append(f"Proxy-Authorization: Basic {proxy.authorization}")
        try:
            self.send(sock, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            _, status, _ = self.read_head(sock)
        except TimeoutError:
            _close(sock)
            raise self.late(
                N_("{service} was not reached through the proxy {proxy} within {seconds} s"), proxy=proxy.name
            ) from None
        except BaseException:
            _close(sock)
            raise
        if status != 200 or self.buffer:
            _close(sock)
            raise self.lost(
                N_("{service} cannot be reached through the proxy {proxy} (HTTP {status})"),
                proxy=proxy.name,
                status=status,
            )

    def open(self, host: str, port: int) -> Any:
        import socket

        try:
            addresses = self.resolve(host, port)
            sock = None
            refused: OSError | None = None
            for family, kind, proto, _, address in addresses:
                candidate = socket.socket(family, kind, proto)
                try:
                    candidate.settimeout(self.remaining())
                    candidate.connect(address)
                except TimeoutError:
                    candidate.close()
                    raise
                except OSError as error:  # refused, unreachable: try the next address
                    candidate.close()
                    refused = error
                    continue
                sock = candidate
                break
        except TimeoutError:
            raise self.late(N_("{service} did not accept the connection within {seconds} s")) from None
        if sock is None:
            detail = refused.strerror.lower() if refused is not None and refused.strerror else "no address"
            if host == self.target.host:
                raise self.fail(
                    N_("cannot reach {service}: the network or the service is down ({reason})"),
                    ConnectionRefused,
                    reason=detail,
                )
            raise self.fail(
                N_(
                    "cannot reach {service} through the proxy {proxy}: "
                    "the network or the proxy is down ({reason})"
                ),
                ConnectionRefused,
                proxy=f"{host}:{port}",
                reason=detail,
            )
        return sock

    def resolve(self, host: str, port: int) -> list[tuple[Any, ...]]:
        import socket
        import threading

        try:  # an address needs no lookup
            return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
        except socket.gaierror:
            pass
        found: dict[str, Any] = {}

        def lookup() -> None:
            try:
                found["addresses"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError as error:
                found["error"] = error

        worker = threading.Thread(target=lookup, name="mcn-resolve", daemon=True)
        worker.start()
        worker.join(self.remaining())  # getaddrinfo cannot be interrupted: leave it behind
        if worker.is_alive():
            raise TimeoutError
        if "error" in found:
            raise self.fail(N_("cannot reach {service}: its name does not resolve"), ConnectionRefused)
        return found["addresses"]

    def secure(self, sock: Any) -> Any:
        import ssl

        try:
            context = _tls_context(self.verify)
            sock = context.wrap_socket(sock, server_hostname=self.target.host, do_handshake_on_connect=False)
            sock.settimeout(self.remaining())
            sock.do_handshake()  # the socket's timeout bounds the whole handshake (a deadline)
            return sock
        except BaseException as error:
            sock.close()  # the TLS socket once wrapped: it took over the connection
            if isinstance(error, TimeoutError):
                raise self.late(
                    N_("{service} did not complete the TLS handshake within {seconds} s")
                ) from None
            if isinstance(error, ssl.SSLCertVerificationError):
                reason = printable(error.verify_message or "unknown reason", 160)
                raise self.lost(
                    N_("{service}: its TLS certificate is not trusted ({reason}); nothing was sent"),
                    reason=reason,
                ) from None
            if isinstance(error, OSError):  # ssl.SSLError included
                raise self.lost(
                    N_("{service} failed the TLS handshake ({reason}); nothing was sent"),
                    reason=_reason(error),
                ) from None
            raise

    def send(self, sock: Any, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                sock.settimeout(self.remaining())
                view = view[sock.send(view) :]
        except TimeoutError:
            raise self.late(N_("{service} did not take the request within {seconds} s")) from None
        except OSError as error:
            raise self.lost(
                N_("{service} broke the connection while the request was sent ({reason})"),
                reason=_reason(error),
            ) from None

    def receive(self, sock: Any) -> tuple[_Answer, bool]:
        try:
            for _ in range(_MAX_INTERIM + 1):
                version, status, headers = self.read_head(sock)
                if not 100 <= status < 200:
                    break
                if status == 101:
                    raise self.fail(N_("{service} switched protocols (HTTP 101) instead of answering"))
            else:
                raise self.fail(
                    N_("{service} sent more than {count} interim (1xx) answers"), count=_MAX_INTERIM
                )
            self.status = status
            if 300 <= status < 400:  # never followed: the envelope must go nowhere else
                location = (headers.get("location") or ["(nowhere)"])[0]
                raise self.fail(
                    N_(
                        "{service} answered HTTP {status} redirecting to {location}: "
                        "mcn never follows a redirect, nothing was sent there"
                    ),
                    status=status,
                    location=printable(location, 160),
                )
            body, framed = self.read_body(sock, headers, status)
            body = self.decode(body, headers)
        except TimeoutError:
            if self.status:
                raise self.late(
                    N_("{service} did not finish its answer (HTTP {status}) within {seconds} s"),
                    status=self.status,
                ) from None
            raise self.late(N_("{service} did not answer within {seconds} s")) from None
        except OSError as error:
            if self.status:
                raise self.lost(
                    N_("{service} broke off its answer (HTTP {status}: {reason})"),
                    status=self.status,
                    reason=_reason(error),
                ) from None
            raise self.lost(
                N_("{service} broke the connection before answering ({reason})"), reason=_reason(error)
            ) from None
        connection = ",".join(headers.get("connection", [])).lower()
        reusable = framed and version == 1 and "close" not in connection and not self.buffer
        return _Answer(status, headers, body), reusable

    # -- reading, each socket read bounded by the deadline ---------------------------------

    def fill(self, sock: Any) -> bool:
        """One read from the socket into the buffer; False at the end of the stream."""
        sock.settimeout(self.remaining())
        data = sock.recv(_READ)
        if not data:
            return False
        self.buffer += data
        return True

    def line(self, sock: Any, what: str) -> bytes:
        start = 0
        while True:
            end = self.buffer.find(b"\n", start)
            if end >= 0:
                if end + 1 > _MAX_LINE:
                    break
                line = bytes(self.buffer[: end + 1])
                del self.buffer[: end + 1]
                return line
            start = len(self.buffer)
            if start > _MAX_LINE:
                break
            if not self.fill(sock):
                if not self.status and not self.buffer and what == "status line":
                    raise self.lost(N_("{service} closed the connection without answering"))
                raise self._broken(Message(_CLOSED_INSIDE[what]))
        raise self._broken(Message(_TOO_LONG[what], {"limit": _MAX_LINE}))

    def _broken(self, why: Message) -> TransportError:
        """The answer's framing is broken (``why``, a message): a malformed head, or an answer
        broken off once its status was read."""
        if self.status:
            return self.fail(
                N_("{service} broke off its answer (HTTP {status}): {why}"), status=self.status, why=why
            )
        return self.fail(N_("{service} sent a malformed HTTP answer: {why}"), why=why)

    def read_head(self, sock: Any) -> tuple[int, int, dict[str, list[str]]]:
        match = _STATUS_LINE.fullmatch(self.line(sock, "status line"))
        if match is None:
            raise self._broken_head(Message(N_("not an HTTP/1.x status line")))
        headers: dict[str, list[str]] = {}
        for _ in range(_MAX_HEADERS + 1):
            line = self.line(sock, "header line")
            if line in (b"\r\n", b"\n"):
                return int(match[1]), int(match[2]), headers
            name, colon, value = line.partition(b":")
            if not colon or not _TOKEN.fullmatch(name):
                raise self._broken_head(Message(N_("a malformed header line")))
            headers.setdefault(name.decode("ascii").lower(), []).append(
                value.strip(b" \t\r\n").decode("latin-1")
            )
        raise self._broken_head(Message(N_("more than {count} headers"), {"count": _MAX_HEADERS}))

    def _broken_head(self, why: Message) -> TransportError:
        return self.fail(N_("{service} sent a malformed HTTP answer: {why}"), why=why)

    def read_body(self, sock: Any, headers: dict[str, list[str]], status: int) -> tuple[bytes, bool]:
        """The body as sent (still encoded), and whether its end was framed (keep-alive)."""
        if status in (204, 304):
            return b"", True
        encodings = [
            v.strip().lower() for value in headers.get("transfer-encoding", []) for v in value.split(",")
        ]
        lengths = {v.strip() for value in headers.get("content-length", []) for v in value.split(",")}
        if encodings:
            if lengths:
                raise self._broken_head(Message(N_("both Transfer-Encoding and Content-Length")))
            if encodings != ["chunked"]:
                raise self._broken_head(
                    Message(
                        N_("transfer encoding {encoding!r}"),
                        {"encoding": printable(", ".join(encodings), 60)},
                    )
                )
            return self.read_chunked(sock), True
        if lengths:
            length = lengths.pop()
            if lengths or not length.isdigit() or not length.isascii() or len(length) > 18:
                raise self._broken_head(Message(N_("an invalid Content-Length")))
            return self.read_length(sock, int(length)), True
        return self.read_to_close(sock), False

    def count(self, size: int) -> None:
        self.received += size
        if self.received > self.limit:
            raise self.fail(
                N_(
                    "{service} sent an answer over max_answer_bytes ({limit}; HTTP {status}): "
                    "mcn stopped reading"
                ),
                limit=_size(self.limit),
                status=self.status,
            )

    def take(self, size: int) -> bytes:
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def read_length(self, sock: Any, length: int) -> bytes:
        if length > self.limit:
            raise self.fail(
                N_(
                    "{service} announced an answer of {length} bytes, over max_answer_bytes "
                    "({limit}; HTTP {status}): mcn did not read it"
                ),
                length=length,
                limit=_size(self.limit),
                status=self.status,
            )
        body = bytearray()  # one buffer: a list of tiny pieces would cost far more than their size
        left = length
        while left:
            if not self.buffer and not self.fill(sock):
                raise self._broken(
                    Message(
                        N_("it ended after {received} of the {length} bytes it announced"),
                        {"received": length - left, "length": length},
                    )
                )
            piece = self.take(left)
            self.count(len(piece))
            body += piece
            left -= len(piece)
        return bytes(body)

    def read_to_close(self, sock: Any) -> bytes:
        body = bytearray()
        while self.buffer or self.fill(sock):
            piece = self.take(len(self.buffer))
            self.count(len(piece))
            body += piece
        return bytes(body)

    def read_chunked(self, sock: Any) -> bytes:
        body = bytearray()
        while True:
            match = _CHUNK_SIZE.fullmatch(self.line(sock, "chunk size"))
            if match is None:
                raise self._broken(Message(N_("bad chunked framing (chunk size)")))
            size = int(match[1], 16)
            if size == 0:
                break
            if self.received + size > self.limit:
                self.count(size)
            left = size
            while left:
                if not self.buffer and not self.fill(sock):
                    raise self._broken(Message(N_("the connection closed inside a chunk")))
                piece = self.take(left)
                self.count(len(piece))
                body += piece
                left -= len(piece)
            if self.line(sock, "chunk end") not in (b"\r\n", b"\n"):
                raise self._broken(Message(N_("bad chunked framing (chunk end)")))
        for _ in range(_MAX_HEADERS + 1):  # trailer fields, discarded
            if self.line(sock, "trailer") in (b"\r\n", b"\n"):
                return bytes(body)
        raise self._broken(Message(N_("more than {count} trailer fields"), {"count": _MAX_HEADERS}))

    def decode(self, body: bytes, headers: dict[str, list[str]]) -> bytes:
        codings = [
            v.strip().lower() for value in headers.get("content-encoding", []) for v in value.split(",")
        ]
        codings = [c for c in codings if c and c != "identity"]
        if not codings or not body:
            return body
        if len(codings) > 1 or codings[0] not in ("gzip", "x-gzip", "deflate"):
            raise self.fail(
                N_("{service} sent its answer in an encoding mcn does not read ({encoding})"),
                encoding=printable(", ".join(codings), 60),
            )
        import zlib

        out = bytearray()
        produced = 0
        data = body
        try:
            while True:
                self.remaining()  # many tiny gzip members must not outlast the deadline
                inflater = zlib.decompressobj(32 + zlib.MAX_WBITS)  # gzip or zlib header
                while data:
                    # never more than one byte past the cap: a bomb stops here, memory bounded
                    piece = inflater.decompress(data, self.limit - produced + 1)
                    produced += len(piece)
                    if produced > self.limit:
                        raise self.fail(
                            N_(
                                "{service} sent an answer that decompresses to over max_answer_bytes "
                                "({limit}; HTTP {status}): mcn stopped"
                            ),
                            limit=_size(self.limit),
                            status=self.status,
                        )
                    out += piece
                    data = inflater.unconsumed_tail
                    if inflater.eof:
                        break
                if not inflater.eof:
                    raise zlib.error("the compressed data ends early")
                data = inflater.unused_data  # a further gzip member, or garbage
                if not data:
                    return bytes(out)
        except TimeoutError:
            raise self.late(
                N_("{service} did not finish decompressing its answer (HTTP {status}) within {seconds} s"),
                status=self.status,
            ) from None
        except zlib.error as error:
            raise self.fail(
                N_("{service} sent a corrupt compressed answer (HTTP {status}: {reason})"),
                status=self.status,
                reason=str(error),
            ) from None


@dataclass(frozen=True)
class _Proxy:
    host: str
    port: int
    authorization: str | None  # base64 of user:password, for Basic

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"


def _proxy_for(target: _Target) -> _Proxy | None:
    """The HTTPS proxy the environment names (HTTPS_PROXY, less NO_PROXY), as other tools use it."""
    import os

    if not any(os.environ.get(name) for name in ("https_proxy", "HTTPS_PROXY")):
        return None  # the common case costs no import
    import base64
    import urllib.request
    from urllib.parse import unquote

    if urllib.request.proxy_bypass(target.host):
        return None
    url = urllib.request.getproxies().get("https", "")
    if not url:
        return None
    parts = urlsplit(url if "://" in url else f"http://{url}")
    try:
        port = parts.port or 80
    except ValueError:
        port = 0
    if parts.scheme != "http" or not parts.hostname or not port:
        shown = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()  # never the password
        raise InvalidInput(
            "https_proxy",
            "format",
            N_("not an http://host:port proxy: {proxy!r}"),
            proxy=printable(shown, 120),
        )
    authorization = None
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = base64.b64encode(credentials.encode("utf-8")).decode("ascii")
    return _Proxy(parts.hostname, port, authorization)


def _reason(error: BaseException) -> str:
    import ssl

    if isinstance(error, ssl.SSLError) and error.reason:
        return "TLS: " + error.reason.replace("_", " ").lower()
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return printable(str(error), 120) or type(error).__name__


def _close(sock: Any) -> None:
    try:
        sock.close()
    except OSError:
        pass


def _still_open(sock: Any) -> bool:
    """An idle kept connection the server has not closed (nor written to) since."""
    import socket

    if getattr(sock, "pending", lambda: 0)():  # TLS data already decrypted and never asked for
        return False
    try:
        sock.setblocking(False)
        try:
            # peek at the raw bytes (an SSLSocket refuses flags): any byte, or EOF, means unusable
            socket.socket.recv(sock, 1, socket.MSG_PEEK)
            return False
        except BlockingIOError:
            return True
    except OSError:
        return False


_CONTEXTS: dict[str | bool, Any] = {}


def _tls_context(verify: str | bool) -> Any:
    """A verifying TLS client context: the CAs of the file ``verify`` names, or the system's
    (certifi's when the system has none). Made once per process for each."""
    import ssl

    key: str | bool = verify if isinstance(verify, str) else True
    context = _CONTEXTS.get(key)
    if context is not None:
        return context
    try:
        if isinstance(key, str):
            context = ssl.create_default_context(cafile=key)
        else:
            context = ssl.create_default_context()
            paths = ssl.get_default_verify_paths()
            if paths.cafile is None and paths.capath is None:  # no system store: certifi's, if any
                try:
                    import certifi
                except ImportError:
                    pass
                else:
                    context.load_verify_locations(cafile=certifi.where())
    except (OSError, ssl.SSLError) as error:
        raise InvalidInput(
            "tls_ca_bundle",
            "unreadable",
            N_("cannot load CA certificates from {path}: {reason}"),
            path=key,
            reason=str(error),
        ) from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _CONTEXTS[key] = context  # a race makes two equal contexts: harmless
    return context
