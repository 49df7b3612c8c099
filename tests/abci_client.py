"""A minimal blocking ABCI socket client (our framing), for tests."""

from __future__ import annotations

import socket

from abci_app.framing import encode_uvarint
from abci_app.pb.tendermint.abci import types_pb2 as abci


class AbciClient:
    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, request: abci.Request) -> abci.Response:
        payload = request.SerializeToString()
        flush = abci.Request(flush=abci.RequestFlush()).SerializeToString()
        self.send_raw(encode_uvarint(len(payload)) + payload + encode_uvarint(len(flush)) + flush)
        response = self._read_response()
        assert self._read_response().WhichOneof("value") == "flush"
        return response

    def _read_exact(self, count: int) -> bytes:
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def _read_response(self) -> abci.Response:
        length, shift = 0, 0
        while True:
            byte = self._read_exact(1)[0]
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        response = abci.Response()
        response.ParseFromString(self._read_exact(length))
        return response

    def is_closed_by_server(self) -> bool:
        """True once the server has closed its side (recv returns EOF)."""
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, TimeoutError):
            return True
