"""Power states and summaries as a System shows them, and the signs that a server restarted.

A ForceRestart whose answer was lost leaves the power state On, as before: `restart_sign` looks for
what else changes when a server restarts (a power state on its way, the boot progress, a one-time
boot override used up by the boot).
"""

from __future__ import annotations

from typing import Any

from controller.bmc.base import PowerState


def power_of(system: dict[str, Any]) -> PowerState:
    try:
        return PowerState(str(system.get("PowerState") or "Unknown"))
    except ValueError:
        return PowerState.UNKNOWN


REPEATABLE_RESETS = frozenset({"On", "ForceOn", "ForceOff"})  # to a power state: a second one changes nothing


def restart_sign(before: dict[str, Any], now: dict[str, Any]) -> str:
    """What in the System shows that the server restarted since `before` was read, or ""."""
    power = power_of(now)
    if power is not PowerState.ON:
        return f"its power state is {power.value}"
    progress = (before.get("BootProgress") or {}), (now.get("BootProgress") or {})
    keys = ("LastState", "LastStateTime")
    if any(progress[1].get(k) for k in keys) and any(progress[0].get(k) != progress[1].get(k) for k in keys):
        return f"its boot progress moved to {progress[1].get('LastState') or '?'}"
    override = (before.get("Boot") or {}).get("BootSourceOverrideEnabled"), (now.get("Boot") or {}).get(
        "BootSourceOverrideEnabled")
    if override[0] == "Once" and override[1] != "Once":
        return "its one-time boot override was used up"
    return ""


def summaries_of(system: dict[str, Any]) -> dict[str, Any]:
    """Health, memory and processors, where the BMC offers them (many omit some; lenient, as sushy is)."""
    memory = system.get("MemorySummary") or {}
    cpus = system.get("ProcessorSummary") or {}
    gib, count = memory.get("TotalSystemMemoryGiB"), cpus.get("Count")
    return {"health": str((system.get("Status") or {}).get("Health") or ""),
            "memory_gib": float(gib) if isinstance(gib, (int, float)) and not isinstance(gib, bool) else None,
            "processors": int(count) if isinstance(count, int) and not isinstance(count, bool) else None,
            "processor_model": str(cpus.get("Model") or "")}
