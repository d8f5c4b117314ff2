"""A TCP proxy on 127.0.0.1 that can drop its connections, to test "the connection dropped mid-way".

Point an SshTarget's port at `proxy.port`: the proxy forwards to the real sshd and, once
`cut_after_bytes` bytes have gone from the client to the server (or when `cut()` is called),
closes both sides of every connection at once, as a dropped network would.
"""

from __future__ import annotations

import select
import socket
import threading
from typing import Self

_POLL_SECONDS = 0.05


class FlakyProxy:
    def __init__(self, upstream_port: int, *, cut_after_bytes: int | None = None, upstream_host: str = "127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.cut_after_bytes = cut_after_bytes
        self.bytes_up = 0  # client -> server, over all connections
        self.connections = 0
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(_POLL_SECONDS)
        self.port = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._cut = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._acceptor = threading.Thread(target=self._accept_loop, name="flaky-proxy-accept", daemon=True)

    def __enter__(self) -> Self:
        self._acceptor.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def cut(self) -> None:
        """Drop every open connection now, and refuse new ones until `heal()`."""
        self._cut.set()
        self._close_all()

    def heal(self) -> None:
        """Accept and forward connections again, with a fresh byte budget."""
        with self._lock:
            self.bytes_up = 0
        self._cut.clear()

    def stop(self) -> None:
        self._stopping.set()
        self._close_all()
        self._acceptor.join(timeout=2)
        for thread in list(self._threads):
            thread.join(timeout=2)
        self._listener.close()

    def _close_all(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            if self._cut.is_set():
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=2)
            except OSError:
                client.close()
                continue
            with self._lock:
                self.connections += 1
                self._sockets += [client, server]
            thread = threading.Thread(target=self._pipe, args=(client, server), name="flaky-proxy-pipe", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _pipe(self, client: socket.socket, server: socket.socket) -> None:
        peers = {client: server, server: client}
        while not self._stopping.is_set() and not self._cut.is_set():
            try:
                readable, _, _ = select.select(list(peers), [], [], _POLL_SECONDS)
            except (OSError, ValueError):
                break
            for source in readable:
                try:
                    data = source.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    self._drop(client, server)
                    return
                if source is client and self.cut_after_bytes is not None:
                    with self._lock:
                        allowed = max(0, self.cut_after_bytes - self.bytes_up)
                        self.bytes_up += len(data)
                    if len(data) > allowed:
                        if allowed:
                            server.sendall(data[:allowed])
                        self.cut()
                        return
                elif source is client:
                    with self._lock:
                        self.bytes_up += len(data)
                try:
                    peers[source].sendall(data)
                except OSError:
                    self._drop(client, server)
                    return
        self._drop(client, server)

    def _drop(self, *sockets: socket.socket) -> None:
        with self._lock:
            self._sockets = [s for s in self._sockets if s not in sockets]
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
