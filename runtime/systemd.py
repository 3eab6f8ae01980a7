"""systemd's notify protocol (sd_notify(3)): READY=1 once the stream answers, WATCHDOG=1 while every stage makes
progress, STOPPING=1 at the end. A unit with `Type=notify` and `WatchdogSec=` then restarts a process that hangs.
The protocol is one datagram to $NOTIFY_SOCKET; outside systemd nothing is sent."""

from __future__ import annotations

import os
import socket


def notify(state: str) -> bool:
    """Send `state` (e.g. "READY=1") to the service manager. → whether there was one to tell."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.setblocking(False)  # a manager that does not read must never stall the stream
            sock.connect(address)
            sock.send(state.encode())
    except OSError:
        return False
    return True


def watchdog_interval_s() -> float | None:
    """How often to send WATCHDOG=1: half of WatchdogSec, as sd_watchdog_enabled(3) advises; None when the
    service manager does not watch this process."""
    usec, pid = os.environ.get("WATCHDOG_USEC"), os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(int(usec), 1) / 2e6
    except ValueError:
        return None
