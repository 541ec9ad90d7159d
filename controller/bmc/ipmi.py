"""Is IPMI over LAN answering at a BMC? PVC fences a node through it (ipmitool lanplus, UDP 623).

An RMCP/ASF presence ping (DMTF DSP0136 §3.2.4.1) needs no login: a BMC with IPMI over LAN on
answers with a presence pong. Nothing is changed on the BMC.
"""

from __future__ import annotations

import asyncio
import contextlib

IPMI_PORT = 623
# RMCP header (version 6, reserved, sequence 0xff: no RMCP ack, class 6: ASF), then the ASF message:
# IANA enterprise 4542 (ASF), type 0x80 (presence ping), tag, reserved, data length 0
PRESENCE_PING = bytes.fromhex("0600ff06" "000011be" "80" "21" "00" "00")
PRESENCE_PONG = 0x40


class _Ping(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answered: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:
        if len(data) >= 9 and data[3] == 0x06 and data[8] == PRESENCE_PONG and not self.answered.done():
            self.answered.set_result(True)

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable: nothing listens there
        if not self.answered.done():
            self.answered.set_result(False)


async def ipmi_answers(host: str, port: int = IPMI_PORT, *, timeout: float = 2.0, tries: int = 3) -> bool:
    """True when the host answers an RMCP presence ping (UDP is lossy: a few tries)."""
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await loop.create_datagram_endpoint(_Ping, remote_addr=(host, port))
    except OSError:
        return False
    try:
        for _ in range(tries):
            transport.sendto(PRESENCE_PING)
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(asyncio.shield(protocol.answered), timeout / tries)
        return False
    finally:
        transport.close()
