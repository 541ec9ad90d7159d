"""pvc-ansible's own defaults for the dictionaries pvcctl writes, so each is written whole.

Ansible replaces a dictionary variable as a whole (hash_behaviour=replace, its default): a group_vars
`pvc_autobackup: {enabled: false}` hides every other key of the role's default `pvc_autobackup`, and
the day someone sets `enabled: true` the role's tasks find no `schedule`, `root_path`, ... So pvcctl
writes each such dictionary with all the keys pvc-ansible's defaults give it, its own values merged
over them (`merged`). The values are those of pvc-ansible's roles/pvc/defaults/main.yml and
group_vars/default/pvc.yml (the tests state the keys its roles read).
"""

from __future__ import annotations

import copy
from typing import Any

# roles/pvc/defaults/main.yml: pvc_autobackup (disabled, as there)
AUTOBACKUP: dict[str, Any] = {
    "enabled": False,
    "root_path": "/tmp/backups",
    "root_suffix": "/mycluster",
    "tags": ["autobackup"],
    "schedule": {"normal_time": "Tue..Sun *-*-* 0:0:00", "forced_full_time": "Mon *-*-* 0:0:00",
                 "full_interval": 7, "full_retention": 2},
    "reporting": {"enabled": False, "emails": [], "report_on": {"forced_full": False, "normal": False}},
    "auto_mount": {"enabled": False, "packages": [], "mount_cmds": [], "unmount_cmds": []},
}

# roles/pvc/defaults/main.yml: pvc_automirror (disabled; no destination until one is configured)
AUTOMIRROR: dict[str, Any] = {
    "enabled": False,
    "destinations": {},
    "default_destination": "",
    "tags": ["automirror"],
    "schedule": {"time": "*-*-* 00/4:00:00", "retention": 7},
    "reporting": {"enabled": False, "emails": [], "report_on": {"success": False, "error": True}},
}

# group_vars/default/pvc.yml: cpu_tuning (the role's tasks run when it is defined; disabled here)
CPU_TUNING: dict[str, Any] = {"enabled": False, "nodes": {"system_cpus": 2, "osd_cpus": 2}}


def merged(default: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`default` with `override` merged in, dictionaries key by key (a fresh copy)."""
    result = copy.deepcopy(default)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result
