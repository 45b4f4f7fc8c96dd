"""The sandbox server's request framing: strict, quiet, every refusal a SOAP fault."""

from __future__ import annotations

import socket
import ssl

import pytest

from mcn_cli.sandbox.server import MAX_BODY, Server


@pytest.fixture
def server(sandbox):
    running = Server(sandbox).start()
    yield running
    running.stop()


def exchange(server, sandbox, head: bytes, body: bytes = b"") -> bytes:
    host, port = server.httpd.server_address[:2]
    context = ssl.create_default_context(cafile=str(sandbox.ca_cert("root")))
    with (
        socket.create_connection((host, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(head + b"\r\n" + body)
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
            if b"</soapenv:Envelope>" in answer or b"</SOAP-ENV:Envelope>" in answer:
                break
        return answer


def post(length: str | None, extra: bytes = b"") -> bytes:
    lines = [b"POST /IAM/SecurityTokenService/v1 HTTP/1.1", b"Host: 127.0.0.1"]
    if length is not None:
        lines.append(b"Content-Length: " + length.encode("utf-8"))
    return b"\r\n".join(lines) + b"\r\n" + extra


@pytest.mark.parametrize(
    ("length", "extra", "status", "words"),
    [
        ("-1", b"", b"400", b"not a number"),
        ("abc", b"", b"400", b"not a number"),
        ("\u0661\u0662", b"", b"400", b"not a number"),  # Arabic-Indic digits are not ASCII
        (None, b"", b"411", b"Content-Length"),
        (None, b"Transfer-Encoding: chunked\r\n", b"411", b"chunked"),
        (str(MAX_BODY + 1), b"", b"413", b"at most"),
        (str(400 * 1024 * 1024), b"", b"413", b"at most"),
    ],
)
def test_bad_framing_is_a_soap_fault_without_a_traceback(
    server, sandbox, capfd, length, extra, status, words
):
    head = post(length, extra)
    answer = exchange(server, sandbox, head)
    assert answer.split(b"\r\n", 1)[0].split(b" ")[1] == status
    assert b"Fault" in answer and words in answer
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err + captured.out


def test_an_unknown_path_and_a_broken_connection(server, sandbox, capfd):
    answer = exchange(server, sandbox, b"POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n", b"<a")
    assert answer.split(b" ")[1] == b"404" and b"Fault" in answer
    host, port = server.httpd.server_address[:2]
    with socket.create_connection((host, port), timeout=5) as raw:
        raw.sendall(b"not TLS at all\r\n\r\n")  # a broken handshake
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err + captured.out


def test_a_client_that_never_starts_tls_does_not_block_the_others(server, sandbox):
    host, port = server.httpd.server_address[:2]
    with socket.create_connection((host, port), timeout=5):  # connected, silent
        answer = exchange(server, sandbox, b"POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n")
        assert answer.split(b" ")[1] == b"404"
