"""The transport against hostile servers (issue 11: "What was reproduced" 4 and 5).

Each test starts real servers on 127.0.0.1 (threads, plain TCP or TLS with a certificate made
here) that misbehave on purpose: redirects, trickles, huge answers, gzip bombs and broken
framing. Every one must end as a ServiceUnavailable (exit 5) of one line, within the deadline,
with memory bounded by max_answer_bytes, and a redirect must send nothing to where it points.
"""

from __future__ import annotations

import gzip
import socket
import ssl
import struct
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.x509.oid import NameOID

from mcn_cli.cli.errors import status_for
from mcn_cli.domain.errors import InvalidInput, ServiceUnavailable
from mcn_cli.ehealth import transport
from mcn_cli.sandbox import pki
from mcn_cli.status import ExitStatus
from mcn_cli.store.settings import Settings

DEADLINE = 1.0  # seconds: every hostile exchange gets this timeout
MARGIN = 0.5  # how late past the deadline a failure may come
LIMIT = 1024 * 1024  # max_answer_bytes for the oversize tests
PAYLOAD = b"<soapenv:Envelope><!-- the signed request, licence password included --></soapenv:Envelope>"
ACTION = "urn:be:fgov:ehealth:mycarenet:test"
ENVELOPE = (
    b"<soapenv:Envelope xmlns:soapenv='http://schemas.xmlsoap.org/soap/envelope/'>"
    b"<soapenv:Body><answer>ok</answer></soapenv:Body></soapenv:Envelope>"
)

Behave = Callable[["Server", socket.socket], None]


class Server:
    """A server on 127.0.0.1 that treats every connection with ``behave`` (in its own thread),
    plain or TLS; it records the connections and requests it received."""

    def __init__(self, behave: Behave, context: ssl.SSLContext | None = None) -> None:
        self.behave = behave
        self.context = context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.connections = 0
        self.requests: list[bytes] = []
        self.threads: list[threading.Thread] = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def url(self, path: str = "/Insurability/v2") -> str:
        return f"{'https' if self.context else 'http'}://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(3)
            if self.context is not None:
                conn = self.context.wrap_socket(conn, server_side=True)
            self.behave(self, conn)
        except (OSError, ValueError):
            pass  # the client gave up, as it should
        finally:
            conn.close()

    def read_request(self, conn: socket.socket) -> bytes | None:
        """One whole request (head and Content-Length body), or None when the client closed."""
        data = b""
        while b"\r\n\r\n" not in data:
            piece = conn.recv(65536)
            if not piece:
                return None
            data += piece
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(body) < length:
            body += conn.recv(65536)
        self.requests.append(head + b"\r\n\r\n" + body)
        return body

    def pause(self, seconds: float) -> bool:
        """Sleep, unless the test is over (then False)."""
        return not self.stop.wait(seconds)

    def close(self) -> None:
        self.stop.set()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the acceptor at once (Linux)
        except OSError:
            pass
        self.listener.close()
        self.acceptor.join(5)
        for thread in self.threads:
            thread.join(5)


@pytest.fixture
def serve():
    servers: list[Server] = []

    def start(behave: Behave, context: ssl.SSLContext | None = None) -> Server:
        servers.append(Server(behave, context))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@dataclass(frozen=True)
class Tls:
    server: ssl.SSLContext
    ca: str  # the CA file that trusts the server
    other_ca: str  # a CA file that does not


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    folder: Path = tmp_path_factory.mktemp("tls")
    ca = pki.issue(pki.name((NameOID.COMMON_NAME, "mcn transport test CA")), pki.ec_key(), None, ca=True)
    other = pki.issue(pki.name((NameOID.COMMON_NAME, "another CA")), pki.ec_key(), None, ca=True)
    leaf = pki.issue(
        pki.name((NameOID.COMMON_NAME, "127.0.0.1")), pki.ec_key(), ca, server_names=("127.0.0.1",)
    )
    pki.write_certificate(folder / "ca.pem", ca.certificate)
    pki.write_certificate(folder / "other.pem", other.certificate)
    pki.write_certificate(folder / "server.pem", leaf.certificate)
    pki.write_key(folder / "server.key", leaf.key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "server.pem", folder / "server.key")
    return Tls(context, str(folder / "ca.pem"), str(folder / "other.pem"))


def answer(raw: bytes) -> Behave:
    """Read the request, send ``raw``, close."""

    def behave(server: Server, conn: socket.socket) -> None:
        if server.read_request(conn) is not None:
            conn.sendall(raw)

    return behave


def http(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    head = [f"HTTP/1.1 {status}", "Content-Type: text/xml", *headers]
    if not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in headers):
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def post(url: str, *, verify: str | bool = True, timeout: float = DEADLINE, **options: object):
    return transport.post(url, PAYLOAD, ACTION, verify=verify, timeout=timeout, **options)


def fails(url: str, needle: str, **options: object) -> ServiceUnavailable:
    """The post fails with exit 5, one line naming ``needle``, within the deadline."""
    timeout = float(options.pop("timeout", DEADLINE))
    start = time.monotonic()
    with pytest.raises(ServiceUnavailable) as caught:
        post(url, timeout=timeout, **options)
    elapsed = time.monotonic() - start
    message = str(caught.value)
    assert status_for(caught.value) == ExitStatus.SERVICE_UNAVAILABLE
    assert needle in message, message
    assert message.startswith(("MyCareNet", "cannot reach MyCareNet")), message  # the service, not
    assert url.split("/")[2] not in message, message  # its address
    assert "\n" not in message and "\r" not in message and len(message) < 300, message
    assert elapsed < timeout + MARGIN, f"{elapsed:.2f} s for a {timeout} s deadline: {message}"
    return caught.value


# -- what still works ----------------------------------------------------------------------


def test_an_answer_is_parsed_and_the_request_sent_as_given(serve):
    server = serve(answer(http(ENVELOPE)))
    root, exchange = post(server.url(), contact="support@example.be")
    assert root.find(".//answer").text == "ok"
    assert exchange.request == PAYLOAD and exchange.response == ENVELOPE and exchange.status == 200
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    assert body == PAYLOAD
    assert head.startswith(b"POST /Insurability/v2 HTTP/1.1\r\n")
    lines = head.split(b"\r\n")
    assert f'SOAPAction: "{ACTION}"'.encode() in lines and b"From: support@example.be" in lines
    assert f"Host: 127.0.0.1:{server.port}".encode() in lines


@pytest.mark.parametrize(
    "raw",
    [
        http(gzip.compress(ENVELOPE), "Content-Encoding: gzip"),
        http(zlib.compress(ENVELOPE), "Content-Encoding: deflate"),
        http(gzip.compress(ENVELOPE[:50]) + gzip.compress(ENVELOPE[50:]), "Content-Encoding: gzip"),
        http(b"", "Transfer-Encoding: chunked")
        + b"%x\r\n%s\r\n" % (40, ENVELOPE[:40])
        + b"%x;ext=1\r\n%s\r\n" % (len(ENVELOPE) - 40, ENVELOPE[40:])
        + b"0\r\nTrailer: x\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n" + http(ENVELOPE),
        b"HTTP/1.0 200 OK\r\n\r\n" + ENVELOPE,  # ends when the server closes
    ],
    ids=["gzip", "deflate", "two-gzip-members", "chunked", "interim-100", "close-delimited"],
)
def test_framings_and_encodings_a_server_may_use(serve, raw):
    server = serve(answer(raw))
    root, exchange = post(server.url())
    assert exchange.response == ENVELOPE and root.find(".//answer").text == "ok"


def test_a_soap_fault_and_throttling_keep_their_meaning(serve):
    fault = (
        b"<soapenv:Envelope xmlns:soapenv='http://schemas.xmlsoap.org/soap/envelope/'><soapenv:Body>"
        b"<soapenv:Fault><faultcode>soapenv:Server</faultcode><faultstring>down</faultstring>"
        b"</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    server = serve(answer(http(fault, status="500 Internal Server Error")))
    with pytest.raises(transport.SoapFaultError) as caught:
        post(server.url())
    assert caught.value.status == 500 and caught.value.response == fault
    assert str(caught.value) == "MyCareNet is failing (fault soapenv:Server: down)"
    assert isinstance(caught.value, transport.ServiceFailing) and caught.value.retry_after is None
    throttled = serve(answer(http(b"slow down", "Retry-After: 60", status="429 Too Many Requests")))
    busy = fails(throttled.url(), "MyCareNet is busy: wait 60 s")
    assert isinstance(busy, transport.ServiceBusy) and busy.retry_after == 60 and busy.status == 429


@pytest.mark.parametrize(
    ("status", "headers", "kind", "needle", "retry_after"),
    [
        ("429 Too Many Requests", (), transport.ServiceBusy, "MyCareNet is busy: wait a moment", None),
        ("503 Service Unavailable", ("Retry-After: 5",), transport.ServiceBusy, "busy: wait 5 s", 5),
        ("503 Service Unavailable", (), transport.ServiceFailing, "MyCareNet is failing (HTTP 503)", None),
        ("500 Internal Server Error", (), transport.ServiceFailing, "MyCareNet is failing (HTTP 500)", None),
    ],
)
def test_busy_is_told_from_failing(serve, status, headers, kind, needle, retry_after):
    """Throttling asks to wait (``retry_after`` from Retry-After); a failure is no throttling."""
    server = serve(answer(http(b"<html>no</html>", *headers, status=status)))
    error = fails(server.url(), needle)
    assert type(error) is kind and error.retry_after == retry_after, error
    assert error.address == f"127.0.0.1:{server.port}"  # kept for traces, not in the message


def test_retry_after_as_an_http_date():
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    assert 110 <= transport._retry_after(later) <= 121
    assert transport._retry_after("") is None and transport._retry_after("soon") is None
    assert transport._retry_after("0") == 1


def test_the_sts_is_named_as_such(serve):
    server = serve(answer(http(b"<html>no</html>", status="500 Internal Server Error")))
    with pytest.raises(transport.ServiceFailing) as caught:
        post(server.url(), service=transport.STS)
    assert str(caught.value) == "the eHealth STS is failing (HTTP 500)"


def test_connections_are_kept_for_a_batch_and_renewed_when_the_server_closed_them(serve):
    def keep_alive(server: Server, conn: socket.socket) -> None:
        for _ in range(2):  # two requests per connection, then the server closes it
            if server.read_request(conn) is None:
                return
            conn.sendall(http(ENVELOPE))

    server = serve(keep_alive)
    connections = transport.Connections()
    try:
        for _ in range(3):
            _, exchange = post(server.url(), session=connections)
            assert exchange.response == ENVELOPE
            time.sleep(0.05)  # the server's close has arrived before the next post
    finally:
        connections.close()
    assert len(server.requests) == 3 and server.connections == 2
    assert b"Connection: close" not in server.requests[0]


def test_without_connections_each_post_asks_the_server_to_close(serve):
    server = serve(answer(http(ENVELOPE)))
    post(server.url(), session=object())  # e.g. a former requests.Session: ignored
    assert b"\r\nConnection: close\r\n" in server.requests[0]


def test_tls_is_verified_with_the_given_ca(serve, tls):
    server = serve(answer(http(ENVELOPE)), tls.server)
    _, exchange = post(server.url(), verify=tls.ca)
    assert exchange.response == ENVELOPE
    fails(server.url(), "is not trusted", verify=tls.other_ca)
    fails(server.url(), "is not trusted", verify=True)  # the system's CAs do not know it
    assert len(server.requests) == 1  # nothing was sent to the untrusted


def test_the_settings_default_is_the_transports():
    assert Settings().max_answer_bytes == transport.DEFAULT_MAX_ANSWER_BYTES == 4 * 1024 * 1024
    with pytest.raises(InvalidInput):
        post("http://127.0.0.1:9/", max_answer_bytes=0)
    with pytest.raises(InvalidInput):
        post("http://127.0.0.1:9/", contact="a@b.be\r\nX-Injected: 1")


# -- redirects: never followed -------------------------------------------------------------


@pytest.mark.parametrize(
    "status",
    [
        "301 Moved Permanently",
        "302 Found",
        "303 See Other",
        "307 Temporary Redirect",
        "308 Permanent Redirect",
    ],
)
def test_a_redirect_is_a_service_failure_and_nothing_goes_where_it_points(serve, tls, status):
    elsewhere = serve(answer(http(ENVELOPE)))  # plain http: the licence password in clear
    location = elsewhere.url("/steal")
    server = serve(answer(http(b"moved", f"Location: {location}", status=status)), tls.server)
    error = fails(server.url(), f"answered HTTP {status[:3]} redirecting to {location}", verify=tls.ca)
    assert "never follows" in str(error)
    time.sleep(0.1)
    assert elsewhere.connections == 0 and elsewhere.requests == []


def test_a_redirect_location_cannot_break_the_line(serve):
    server = serve(answer(http(b"", "Location: http://x/\x1b[31mred" + "a" * 500, status="307 Temporary")))
    error = fails(server.url(), "redirecting to http://x/?[31mred")
    assert "\x1b" not in str(error)


# -- one deadline for the whole exchange ---------------------------------------------------


def trickle(prefix: bytes, every: float = 0.2) -> Behave:
    """Send ``prefix`` then one byte every ``every`` seconds, well inside any per-read timeout."""

    def behave(server: Server, conn: socket.socket) -> None:
        if server.read_request(conn) is None:
            return
        conn.sendall(prefix)
        while server.pause(every):
            conn.sendall(b"<")

    return behave


@pytest.mark.parametrize(
    "prefix, needle",
    [
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n",
            "did not finish its answer (HTTP 200) within 1 s",
        ),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\n", "did not finish its answer"),
        (b"HTTP/1.1 200 OK\r\nX-Slow: ", "did not answer within 1 s"),
        (b"", "did not answer within 1 s"),
    ],
    ids=["body", "chunk", "headers", "status-line"],
)
def test_a_trickling_server_ends_at_the_deadline(serve, prefix, needle):
    server = serve(trickle(prefix))
    fails(server.url(), needle)


def test_a_trickle_over_tls_ends_at_the_deadline(serve, tls):
    server = serve(trickle(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", every=0.1), tls.server)
    fails(server.url(), "did not finish its answer (HTTP 200) within 0.5 s", verify=tls.ca, timeout=0.5)


def test_a_silent_server_ends_at_the_deadline(serve):
    server = serve(lambda server, conn: server.pause(5))  # accepts, never reads, never answers
    fails(server.url(), "did not answer within 0.5 s", timeout=0.5)


def test_a_tls_handshake_that_never_comes_ends_at_the_deadline(serve):
    server = serve(lambda server, conn: server.pause(5))
    fails(f"https://127.0.0.1:{server.port}/", "did not complete the TLS handshake within 0.5 s", timeout=0.5)


def test_a_trickled_tls_handshake_ends_at_the_deadline(serve, tls):
    """A relay in front of a good TLS server passes its bytes on one at a time."""
    upstream = serve(answer(http(ENVELOPE)), tls.server)

    def relay(server: Server, conn: socket.socket) -> None:
        with socket.create_connection(("127.0.0.1", upstream.port), timeout=3) as far:

            def forward() -> None:
                try:
                    while data := conn.recv(65536):
                        far.sendall(data)
                    far.shutdown(socket.SHUT_WR)  # the client left: so does the relay
                except OSError:
                    pass

            threading.Thread(target=forward, daemon=True).start()
            while server.pause(0.02) and (byte := far.recv(1)):
                conn.sendall(byte)

    server = serve(relay)
    fails(f"https://127.0.0.1:{server.port}/", "did not complete the TLS handshake within 1 s", verify=tls.ca)


# -- answers capped, before and after decompression ----------------------------------------


def endless(head: bytes, piece: bytes) -> Behave:
    def behave(server: Server, conn: socket.socket) -> None:
        if server.read_request(conn) is None:
            return
        conn.sendall(head)
        while not server.stop.is_set():
            conn.sendall(piece)

    return behave


def within_memory(url: str, needle: str, limit: int = LIMIT, timeout: float = DEADLINE) -> None:
    tracemalloc.start()
    try:
        fails(url, needle, max_answer_bytes=limit, timeout=timeout)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * limit + 512 * 1024, f"peak {peak / 2**20:.1f} MiB for a {limit / 2**20:g} MiB cap"


def test_a_3_gib_answer_announced_is_refused_unread(serve):
    server = serve(endless(b"HTTP/1.1 200 OK\r\nContent-Length: 3221225472\r\n\r\n", bytes(65536)))
    within_memory(server.url(), "announced an answer of 3221225472 bytes, over max_answer_bytes (1 MiB")


@pytest.mark.parametrize(
    "head, piece",
    [
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", bytes(65536)),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"10000\r\n" + bytes(65536) + b"\r\n"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"fffffffffffffff\r\n" + bytes(65536)),
    ],
    ids=["close-delimited", "chunked", "one-huge-chunk"],
)
def test_an_endless_answer_stops_at_the_cap(serve, head, piece):
    server = serve(endless(head, piece))
    within_memory(server.url(), "sent an answer over max_answer_bytes (1 MiB; HTTP 200)")


def test_the_default_cap_holds_too(serve):
    server = serve(endless(b"HTTP/1.1 200 OK\r\n\r\n", bytes(65536)))
    within_memory(server.url(), "over max_answer_bytes (4 MiB", limit=transport.DEFAULT_MAX_ANSWER_BYTES)


def test_an_answer_in_one_byte_chunks_costs_no_more_than_its_size(serve):
    """Each piece read is appended to one buffer: a list of a million 1-byte objects would cost
    some 50 times the cap."""
    cap = 64 * 1024
    tiny = b"".join(b"1\r\na\r\n" for _ in range(cap + 1))
    server = serve(answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + tiny))
    # about memory, not speed: tracing 65 537 reads is slow on a busy machine, so a roomy deadline
    within_memory(
        server.url(), "sent an answer over max_answer_bytes (65536 bytes; HTTP 200)", limit=cap, timeout=10
    )


def test_many_tiny_gzip_members_do_not_outlast_the_deadline(serve):
    members = gzip.compress(b"", 1) * 200_000  # empty members: each costs time, none adds bytes
    server = serve(answer(http(members, "Content-Encoding: gzip")))
    fails(server.url(), "within 1 s", timeout=DEADLINE)


def test_a_proxy_address_in_error_never_shows_its_password(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "https://alice:s3cret@127.0.0.1:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(InvalidInput) as caught:
        post("https://192.0.2.1/Insurability/v2")
    assert "s3cret" not in str(caught.value) and "alice" not in str(caught.value)


def _one_member_bomb(size: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    return b"".join([packer.compress(block) for _ in range(size // len(block))] + [packer.flush()])


@pytest.mark.parametrize(
    "bomb",
    [
        _one_member_bomb(16 * 1024 * 1024),  # 16 KiB that inflate to 16 MiB
        gzip.compress(bytes(1024 * 1024), 9) * 1024,  # 1 MB that inflates to 1 GiB (1024 members)
    ],
    ids=["one-member", "one-mb-of-members"],
)
def test_a_gzip_bomb_stops_at_the_cap(serve, bomb):
    server = serve(answer(http(bomb, "Content-Encoding: gzip")))
    needle = "decompresses to over max_answer_bytes (4 MiB; HTTP 200)"
    within_memory(server.url(), needle, limit=transport.DEFAULT_MAX_ANSWER_BYTES)


# -- broken answers: one line each, never a raw exception ----------------------------------

GOOD_GZIP = gzip.compress(ENVELOPE)


@pytest.mark.parametrize(
    "raw, needle",
    [
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"<" * 100,
            "it ended after 100 of the 1000 bytes",
        ),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunked framing (chunk size)"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n" + bytes(1000), "bad chunked framing"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nabcde\r\n", "bad chunked framing"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcdefgh\r\n0\r\n\r\n", "(chunk end)"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
            "the connection closed inside a chunk",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n",
            "closed inside the chunk size",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "both Transfer-Encoding",
        ),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "transfer encoding 'gzip, chunked'"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", "an invalid Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n" + ENVELOPE, "an invalid Content-Length"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef",
            "an invalid Content-Length",
        ),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "not an HTTP/1.x status line"),
        (b"", "closed the connection without answering"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "a malformed header line"),
        (b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 200 + b"\r\n", "more than 100 headers"),
        (b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 100_000, "a header line over 8192 bytes"),
        (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "switched protocols"),
        (b"HTTP/1.1 100 Continue\r\n\r\n" * 10, "more than 5 interim"),
        (http(b"\x1f\x8b\x08garbage garbage", "Content-Encoding: gzip"), "sent a corrupt compressed answer"),
        (http(GOOD_GZIP[:-12], "Content-Encoding: gzip"), "the compressed data ends early"),
        (http(GOOD_GZIP + b"trailing junk", "Content-Encoding: gzip"), "corrupt compressed answer"),
        (http(ENVELOPE, "Content-Encoding: br"), "an encoding mcn does not read (br)"),
        (http(b"<html>oops<br></html>", status="502 Bad Gateway"), "MyCareNet is failing (HTTP 502)"),
        (http(b"<html>oops<br></html>"), "MyCareNet sent a malformed answer (HTTP 200)"),
        (http(b"<?xml version='1.0'?><a/>", status="404 Not Found"), "MyCareNet is failing (HTTP 404)"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_a_broken_answer_is_one_line_of_exit_5(serve, raw, needle):
    server = serve(answer(raw))
    fails(server.url(), needle)


def test_a_connection_reset_mid_answer(serve):
    def reset(server: Server, conn: socket.socket) -> None:
        if server.read_request(conn) is None:
            return
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"<" * 1000)
        time.sleep(0.1)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST on close

    server = serve(reset)
    fails(server.url(), "broke off its answer (HTTP 200: connection reset by peer)")


def test_a_refused_connection_is_still_connection_refused(serve):
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with pytest.raises(transport.ConnectionRefused) as caught:
        post(f"https://127.0.0.1:{port}/")
    message = str(caught.value)
    assert message.startswith("cannot reach MyCareNet: the network or the service is down ("), message
    assert "127.0.0.1" not in message and "\n" not in message
    assert isinstance(caught.value, transport.NetworkFailure) and caught.value.address == f"127.0.0.1:{port}"


def test_a_name_that_does_not_resolve_fails_within_the_deadline():
    start = time.monotonic()
    with pytest.raises(ServiceUnavailable) as caught:  # no such name, or no DNS here: both exit 5
        post("https://mycarenet.invalid/Insurability/v2")
    assert time.monotonic() - start < DEADLINE + MARGIN and "\n" not in str(caught.value)


def test_a_tls_failure_is_one_line(serve):
    server = serve(lambda server, conn: conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\nplain, not TLS"))
    fails(f"https://127.0.0.1:{server.port}/", "failed the TLS handshake (")


# -- through an HTTPS proxy (CONNECT), as pharmacies behind one need -------------------------


def tunnel_to(target: Server, seen: list[bytes], status: str = "200 Connection established") -> Behave:
    """A CONNECT proxy: reads the CONNECT request, answers ``status``, then relays both ways."""

    def behave(proxy: Server, conn: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            piece = conn.recv(4096)
            if not piece:
                return
            head += piece
        seen.append(head)
        conn.sendall(f"HTTP/1.1 {status}\r\n\r\n".encode())
        if not status.startswith("200"):
            return
        upstream = socket.create_connection(("127.0.0.1", target.port), timeout=3)

        def pump(source: socket.socket, sink: socket.socket) -> None:
            try:
                while data := source.recv(65536):
                    sink.sendall(data)
            except OSError:
                pass
            finally:
                try:
                    sink.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        back = threading.Thread(target=pump, args=(upstream, conn), daemon=True)
        back.start()
        pump(conn, upstream)
        back.join(3)
        upstream.close()

    return behave


def test_an_https_proxy_tunnels_and_sees_no_content(serve, tls, monkeypatch):
    service = serve(answer(http(ENVELOPE)), tls.server)
    seen: list[bytes] = []
    proxy = serve(tunnel_to(service, seen))
    monkeypatch.setenv("HTTPS_PROXY", f"http://clerk:s%40cret@127.0.0.1:{proxy.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    root, _ = post(service.url(), verify=tls.ca)
    assert root.find(".//answer").text == "ok"
    assert len(seen) == 1 and seen[0].startswith(f"CONNECT 127.0.0.1:{service.port} HTTP/1.1\r\n".encode())
    assert b"Proxy-Authorization: Basic Y2xlcms6c0BjcmV0" in seen[0]  # clerk:s@cret
    assert b"licence" not in seen[0]  # the envelope went through the TLS tunnel only


def test_a_refusing_proxy_and_no_proxy(serve, tls, monkeypatch):
    service = serve(answer(http(ENVELOPE)), tls.server)
    proxy = serve(tunnel_to(service, [], status="407 Proxy Authentication Required"))
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("NO_PROXY", "")
    fails(service.url(), "through the proxy", verify=tls.ca)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    root, _ = post(service.url(), verify=tls.ca)  # bypassed: straight to the service
    assert root.find(".//answer").text == "ok"
