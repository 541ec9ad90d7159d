"""Shell completion from the inventory named on the command line being completed: its node names.

typer calls these while the shell completes a word; they must answer quickly and never fail, so an
inventory that does not load completes nothing (the command itself reports why when it runs).
"""

from __future__ import annotations

from pathlib import Path

import typer


def inventory_nodes(inventory: object) -> list[str]:
    """The node names of `inventory` (a path given on the line), or none when it does not load."""
    if not inventory:
        return []
    from inventory.load import load_inventory

    try:
        return [node.hostname for node in load_inventory(Path(str(inventory))).nodes]
    except Exception:  # completion never fails; the command says what is wrong
        return []


def _given_inventory(ctx: typer.Context) -> object:
    return ctx.params.get("inventory")


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
