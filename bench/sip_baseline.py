"""The ceiling of the SIP benchmark: the least a Python UDP server on the default asyncio loop
can do to answer an INVITE with a 302 (the issue's "minimal responder").

It copies the headers a response must carry (Via, From, To with a tag, Call-ID, CSeq) from the
request by their line prefixes, adds a fixed Contact, and absorbs ACKs; no parsing beyond
that, no transactions, no decision. ``python -m bench.sip_baseline HOST PORT``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from typing import Any

from sip.server import UDP_BUFFER_BYTES

_COPIED = (b"via:", b"v:", b"from:", b"f:", b"call-id:", b"i:", b"cseq:")
_TO = (b"to:", b"t:")


class Responder(asyncio.DatagramProtocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        # The same socket buffers as callgate's (sip.server.UDP_BUFFER_BYTES): a fair race.
        sock = transport.get_extra_info("socket")
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            sock.setsockopt(socket.SOL_SOCKET, option, UDP_BUFFER_BYTES)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not data.startswith(b"INVITE "):
            return  # ACKs (and anything else) get no answer
        head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        lines = [b"SIP/2.0 302 Moved Temporarily"]
        for line in head[1:]:
            lower = line[:9].lower()
            if lower.startswith(_COPIED):
                lines.append(line)
            elif lower.startswith(_TO):
                lines.append(line + b";tag=baseline")
        lines += [b"Contact: <sip:+12125550187@gw.example;user=phone>",
                  b"P-Asserted-Identity: <sip:+12125550101@demo.sip.example;user=phone>",
                  b"Content-Length: 0", b"", b""]
        self.transport.sendto(b"\r\n".join(lines), addr)


async def main(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(Responder, local_addr=(host, port))
    print("Stop with Ctrl-C.", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(sys.argv[1], int(sys.argv[2])))
