"""Check in to the controller until it acknowledges (stdlib only).

POST {controller_url}/api/v1/checkin with JSON {serial, macs, addresses, boot_mode,
host_key_fingerprint, node}; the controller answers 200 {"ack": true}. Tries every 5 s, forever:
a controller that starts late still hears from every node.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from iso.live import STATE_DIR
from iso.live.seedapply import read_seed
from iso.live.sysinfo import boot_mode, global_addresses, host_key_fingerprint, physical_links, system_serial

RETRY_SECONDS = 5.0


def checkin_payload(node: str | None) -> dict[str, Any]:
    return {
        "serial": system_serial(),
        "macs": sorted(set(physical_links().values())),
        "addresses": global_addresses(),
        "boot_mode": boot_mode(),
        "host_key_fingerprint": host_key_fingerprint(),
        "node": node,
    }


def post_checkin(url: str, payload: dict[str, Any], timeout: float = 10.0) -> bool:
    """True when the controller acknowledged this check-in."""
    request = urllib.request.Request(
        url.rstrip("/") + "/api/v1/checkin", data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        answer = json.loads(response.read() or b"{}")
    return response.status == 200 and isinstance(answer, dict) and answer.get("ack") is True


def _state(text: str) -> None:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    (STATE_DIR / "checkin").write_text(text + "\n")


def _seed_node() -> str | None:
    try:
        return json.loads((STATE_DIR / "seed.json").read_text()).get("node")
    except (OSError, ValueError):
        return None


def main() -> int:
    seed, note = read_seed()
    if seed is None or not seed.controller_url:
        _state(f"not checking in ({note if seed is None else 'no controller URL in the seed'})")
        return 0
    attempt = 0
    while True:
        attempt += 1
        try:
            if post_checkin(seed.controller_url, checkin_payload(_seed_node())):
                _state(f"checked in to {seed.controller_url} (attempt {attempt})")
                print(f"pvc-checkin: acknowledged by {seed.controller_url}", flush=True)
                return 0
            _state(f"{seed.controller_url} did not acknowledge (attempt {attempt}); retrying")
        except (OSError, ValueError, urllib.error.URLError) as err:
            _state(f"cannot reach {seed.controller_url} (attempt {attempt}: {err}); retrying")
        time.sleep(RETRY_SECONDS)


if __name__ == "__main__":
    sys.exit(main())
