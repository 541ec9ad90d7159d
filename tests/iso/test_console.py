"""The live console screen: drawn again only when what it shows changed, `ip` run again only when the
kernel announces an address change (here: a socket pair standing in for the netlink socket)."""

from __future__ import annotations

import io
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from iso.live import console


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The console reading state from tmp_path; returns the list `ip` lookups are counted in."""
    monkeypatch.setattr(console, "STATE_DIR", tmp_path)
    lookups: list[int] = []

    def addresses() -> list[str]:
        lookups.append(1)
        return ["10.254.0.1/24"] if len(lookups) > 1 else []

    monkeypatch.setattr(console, "global_addresses", addresses)
    return lookups


def _run_console(watcher: console.AddressWatcher, steps: list) -> tuple[str, int]:
    """Run the console with a pipe as its keyboard; `steps` run in turn 0.3 s apart, then "s" is typed."""
    read_fd, write_fd = os.pipe()
    stdin, keyboard = os.fdopen(read_fd), os.fdopen(write_fd, "w")
    out = io.StringIO()

    def drive() -> None:
        for step in steps:
            time.sleep(0.3)
            step()
        time.sleep(0.3)
        keyboard.write("s\n")
        keyboard.flush()

    driver = threading.Thread(target=drive)
    driver.start()
    status = console.main(stdin=stdin, stdout=out, refresh=0.02, watcher=watcher)
    driver.join()
    keyboard.close()
    stdin.close()
    return out.getvalue(), status


def test_screen_is_drawn_again_only_when_it_changes(tmp_path: Path, live: list[int]) -> None:
    kernel, announcer = socket.socketpair()
    watcher = console.AddressWatcher(events=kernel)

    def check_in() -> None:
        (tmp_path / "checkin").write_text("checked in to http://10.254.0.254:8080 (attempt 1)")

    def address_added() -> None:
        announcer.send(b"RTM_NEWADDR")

    shown, status = _run_console(watcher, [lambda: None, check_in, lambda: None, address_added])
    screens = shown.split("\033[2J\033[H")[1:]
    assert status == 0
    # about 60 refreshes of 20 ms went by; the screen changed twice
    assert len(screens) == 3, screens
    assert "check-in:   not yet" in screens[0] and "addresses:  none yet" in screens[0]
    assert "checked in to http://10.254.0.254:8080" in screens[1] and "none yet" in screens[1]
    assert "addresses:  10.254.0.1/24" in screens[2]
    assert len(live) == 2, "ip runs once at the start and once after the kernel's announcement"
    assert shown.rstrip().endswith("run pvc-console)")
    announcer.close()
    kernel.close()


def test_without_netlink_the_addresses_are_looked_up_each_time(live: list[int]) -> None:
    watcher = console.AddressWatcher()
    watcher.events.close()
    watcher.events = None  # as when the socket cannot be made
    _, status = _run_console(watcher, [])
    assert status == 0
    assert len(live) > 5


def test_the_real_netlink_socket_is_subscribed() -> None:
    watcher = console.AddressWatcher()
    assert watcher.events is not None and watcher.fileno() >= 0
    assert watcher.events.getsockname()[1] == console.AddressWatcher.GROUPS
    watcher.events.close()
