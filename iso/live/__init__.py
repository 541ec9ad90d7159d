"""Code that runs on the live system (Python standard library only).

Shipped into the live root's overlay layer under /usr/local/lib/pvcctl/ and run as
`python3 -m iso.live.<module>`: seedapply (network and the controller's key from the seed),
checkin (tell the controller this node is up), console (the screen and menu on tty1/ttyS0).
"""

from __future__ import annotations

from pathlib import Path

MEDIUM = Path("/run/live/medium")  # live-boot's mount of the boot medium (a RAM copy with toram)
SEED_FILE = MEDIUM / "pvc" / "seed.json"
STATE_DIR = Path("/run/pvc")  # what the live services found, for the console screen
