"""The end of an inspect-only run (`pvcctl deploy --inspect`): per node, the disk it will lose and what
that disk holds now, the hardware, and every requirement with ok / warn / fail. A table per node on a
terminal, one JSON object with `--json`; both drawn from the nodes' inspect results only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.table import Table

from controller.node.job import JobOutcome
from controller.node.results import InspectResult
from controller.node.states import NodeState, Phase
from installer.disks import human_size
from installer.hardware import describe_contents

_STYLE = {"ok": "green", "warn": "yellow", "fail": "red", "skip": "dim"}


def inspected(outcomes: dict[str, JobOutcome]) -> dict[str, InspectResult | None]:
    return {name: (o.results.get(Phase.INSPECT) if isinstance(o.results.get(Phase.INSPECT), InspectResult)
                   else None) for name, o in outcomes.items()}  # type: ignore[misc]


def as_json(outcomes: dict[str, JobOutcome], run_dir: Path) -> str:
    nodes = []
    for name, result in inspected(outcomes).items():
        outcome = outcomes[name]
        entry: dict[str, Any] = {"node": name, "state": outcome.state.value, "error": outcome.error}
        if result is not None:
            entry.update({"statement": result.statement, "chosen": result.report.get("chosen"),
                          "disk_problem": result.report.get("disk_problem", ""),
                          "hardware": result.report.get("hardware"), "checks": list(result.checks)})
        nodes.append(entry)
    return json.dumps({"inspect": nodes, "run_dir": str(run_dir)})


def node_table(name: str, result: InspectResult) -> Group:
    report, hw = result.report, result.report.get("hardware") or {}
    cpu = hw.get("cpu") or {}
    facts = Table(title=result.statement, show_header=False, title_justify="left")
    facts.add_row("CPU", f"{cpu.get('model') or '?'}, {cpu.get('cores') or '?'} cores, "
                         f"virtualisation {cpu.get('virtualization') or 'none'}")
    facts.add_row("memory", human_size(int(hw.get("memory_bytes") or 0)))
    for disk in hw.get("disks") or []:
        chosen = (report.get("chosen") or {}).get("path") == disk["path"]
        facts.add_row(("→ " if chosen else "  ") + disk["path"],
                      f"{disk.get('model') or '?'} serial {disk.get('serial') or '?'}, {human_size(disk['size'])}, "
                      f"{'HDD' if disk.get('rotational') else 'SSD'}{', removable' if disk.get('removable') else ''}; "
                      f"{describe_contents(disk)}; {' '.join(disk.get('by_id') or []) or 'no by-id'}")
    for nic in hw.get("nics") or []:
        speed = f"{nic['speed_mbps']} Mbit/s" if nic.get("speed_mbps") else "speed unknown"
        facts.add_row(nic.get("name", "?"), f"{nic.get('mac')}, link {nic.get('link')}, {speed}")
    checks = Table("requirement", "result", "found", "wanted", "what to do", title_justify="left")
    for check in result.checks:
        status = str(check["status"])
        checks.add_row(check["what"], f"[{_STYLE.get(status, '')}]{status}[/]", check["found"], check["wanted"],
                       check["fix"] if status in ("warn", "fail") else "")
    return Group(facts, checks)


def show(outcomes: dict[str, JobOutcome], run_dir: Path, *, json_lines: bool) -> None:
    if json_lines:
        print(as_json(outcomes, run_dir), flush=True)
        return
    console = Console(width=max(Console().width, 160))
    for name, result in inspected(outcomes).items():
        if result is None:
            outcome = outcomes[name]
            console.print(f"{name}: not inspected ({outcome.state.value}): {outcome.error}")
            continue
        console.print(node_table(name, result))
    print(f"inspection only: nothing was written to any disk, no node is recorded as installed; "
          f"each node's inspect.json is in {run_dir / 'nodes'}")


def all_pass(outcomes: dict[str, JobOutcome]) -> bool:
    """Every node inspected and no requirement failed."""
    return all(o.state is NodeState.DONE and r is not None and not r.failed
               for (_, o), r in zip(outcomes.items(), inspected(outcomes).values(), strict=True))
