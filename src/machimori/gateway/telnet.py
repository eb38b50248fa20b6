"""A minimal telnet client for the credential probe: it refuses every option the device offers (RFC 854/855)
and collects the text, so the probe can wait for a login prompt, a password prompt or a shell."""

from __future__ import annotations

import asyncio
import re

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
LOGIN_PROMPT = re.compile(r"(login|username)\s*:\s*$", re.IGNORECASE)
PASSWORD_PROMPT = re.compile(r"password\s*:\s*$", re.IGNORECASE)
SHELL_PROMPT = re.compile(r"[#$>]\s*$")
FAILURE = re.compile(r"incorrect|fail|denied|invalid", re.IGNORECASE)
_KEEP_CHARS = 4096


class TelnetSession:
    """The client side of a telnet session that refuses every option and collects the text received."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._pending = b""
        self._answered: set[tuple[int, int]] = set()
        self.text = ""

    async def receive(self) -> bool:
        """Read one chunk into text, answering negotiations; False at the end of the stream."""
        try:
            chunk = await self._reader.read(4096)
        except ConnectionError:
            return False
        if not chunk:
            return False
        data, replies = self._parse(self._pending + chunk)
        if replies:
            self._writer.write(replies)
            await self._writer.drain()
        self.text = (self.text + data.replace(b"\0", b"").decode("utf-8", "replace"))[-_KEEP_CHARS:]
        return True

    async def send_line(self, line: str) -> None:
        """Send a line of text, clearing what was received so far."""
        self.text = ""
        self._writer.write(line.encode("utf-8") + b"\r\n")
        await self._writer.drain()

    def _parse(self, buffer: bytes) -> tuple[bytes, bytes]:
        """The data bytes and the refusals to send (DO→WONT, WILL→DONT, each once); keeps an incomplete tail."""
        data, replies, i = bytearray(), bytearray(), 0
        while i < len(buffer):
            if buffer[i] != IAC:
                data.append(buffer[i])
                i += 1
                continue
            if i + 1 >= len(buffer):
                break
            command = buffer[i + 1]
            if command == IAC:
                data.append(IAC)
                i += 2
            elif command in (DO, DONT, WILL, WONT):
                if i + 2 >= len(buffer):
                    break
                option = buffer[i + 2]
                answer = {DO: WONT, WILL: DONT}.get(command)
                if answer is not None and (command, option) not in self._answered:
                    self._answered.add((command, option))
                    replies += bytes((IAC, answer, option))
                i += 3
            elif command == SB:
                end = buffer.find(bytes((IAC, SE)), i + 2)
                if end < 0:
                    break
                i = end + 2
            else:
                i += 2
        self._pending = buffer[i:]
        return bytes(data), bytes(replies)


async def expect(telnet: TelnetSession, patterns: dict[str, re.Pattern[str]], deadline: float) -> str | None:
    """Read until the text ends as one of the patterns: its name, "eof", or None at the deadline."""
    loop = asyncio.get_running_loop()
    while True:
        for name, pattern in patterns.items():
            if pattern.search(telnet.text):
                return name
        remaining = deadline - loop.time()
        if remaining <= 0:
            return None
        try:
            async with asyncio.timeout(remaining):
                more = await telnet.receive()
        except TimeoutError:
            return None
        if not more:
            return "eof"
