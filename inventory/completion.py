"""Shell completion from the inventory named on the command line being completed: its node names.

typer calls these while the shell completes a word; they must answer quickly and never fail, so an
inventory that does not load completes nothing (the command itself reports why when it runs).
"""

from __future__ import annotations

from pathlib import Path

import typer


def inventory_nodes(inventory: object) -> list[str]:
    """The node names of `inventory` (a path given on the line), or none when it cannot be read. Only the
    names are read, not the whole inventory resolved: completion needs no BMC password in the environment."""
    if not inventory:
        return []
    from ruamel.yaml import YAML

    try:
        nodes = YAML(typ="safe").load(Path(str(inventory)).read_text(encoding="utf-8"))["nodes"]
        return [str(node["hostname"]) for node in nodes if isinstance(node, dict) and "hostname" in node]
    except Exception:  # completion never fails; the command says what is wrong
        return []


def _given_inventory(ctx: typer.Context) -> object:
    """The inventory on the line. While an option before the word being completed still waits for its
    value (`deploy inv.yml --only <TAB>`), click has not assigned the positional arguments: then the
    inventory is the first leftover argument that is a file."""
    given = ctx.params.get("inventory")
    if given:
        return given
    return next((arg for arg in ctx.args if Path(arg).is_file()), None)


def complete_nodes(ctx: typer.Context, incomplete: str) -> list[str]:
    """Node names for --node NAME or NODE...: the inventory's, less those already on the line."""
    given = ctx.params.get("node") or ctx.params.get("nodes") or []
    return [n for n in inventory_nodes(_given_inventory(ctx)) if n.startswith(incomplete) and n not in given]


def complete_node_list(ctx: typer.Context, incomplete: str) -> list[str]:
    """Node names for a comma-separated list (--only hv1,hv2): the word so far, then the next name."""
    done, _, last = incomplete.rpartition(",")
    chosen = set(done.split(",")) if done else set()
    prefix = f"{done}," if done else ""
    return [prefix + n for n in inventory_nodes(_given_inventory(ctx)) if n.startswith(last) and n not in chosen]
