"""A null-modem cable in software: two pseudo-terminals whose masters a thread bridges.

Whatever is written to one end's device path comes out of the other's, as between
two serial ports joined by a cable, so an RTU client and an RTU server can talk over
real serial devices (termios, pyserial, inter-byte timing) without hardware.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import tty
from types import TracebackType


class PtyLink:
    """Two serial device paths, :attr:`a` and :attr:`b`, joined by a bridging thread."""

    def __init__(self) -> None:
        self._masters: list[int] = []
        self._slaves: list[int] = []
        self.a = ""
        self.b = ""
        self._stop_r, self._stop_w = -1, -1
        self._thread: threading.Thread | None = None

    def start(self) -> PtyLink:
        """Open the two pseudo-terminals and start copying between them."""
        paths = []
        for _ in range(2):
            master, slave = os.openpty()
            # Raw mode on the slave: no echo, no line editing, no CR/LF translation.
            # Keeping the slave open here keeps the master readable when no one has
            # the device open (a closed slave makes the master read EIO).
            tty.setraw(slave)
            self._masters.append(master)
            self._slaves.append(slave)
            paths.append(os.ttyname(slave))
        self.a, self.b = paths
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._bridge, name="pty-link", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the bridge and close every descriptor."""
        if self._thread is not None:
            os.write(self._stop_w, b"x")
            self._thread.join(5)
            self._thread = None
        for fd in [*self._masters, *self._slaves, self._stop_r, self._stop_w]:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._masters, self._slaves = [], []
        self._stop_r = self._stop_w = -1

    def _bridge(self) -> None:
        first, second = self._masters
        other = {first: second, second: first}
        while True:
            ready, _, _ = select.select([first, second, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    continue
                if data:
                    os.write(other[fd], data)

    def __enter__(self) -> PtyLink:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
