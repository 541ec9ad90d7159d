"""A node's states and the transitions between them: pure data, no I/O.

    pending → preflight → media → boot → live → inspect → install → collect → finalize → verify → done
    an inspect-only run (`deploy --inspect`): ... → live → inspect → done (powered off, nothing written)
    any working state ──► failed ──► preflight (node-level retry, `--resume`, `pvcctl retry`)
    any working state ──► stopped (Ctrl-C or a killed controller) ──► where it can go on from

The table is flat and commented, like ironic's: a transition not in it is a bug, and `advance`
says so instead of letting a node slip into an impossible state.
"""

from __future__ import annotations

import enum


class Phase(enum.StrEnum):
    """The steps of one node's pipeline, in order (DESIGN.md §3)."""

    PREFLIGHT = "preflight"
    MEDIA = "media"
    BOOT = "boot"
    LIVE = "live"
    INSPECT = "inspect"  # hardware, the disk the install would wipe, the requirements: nothing written
    INSTALL = "install"
    COLLECT = "collect"
    FINALIZE = "finalize"
    VERIFY = "verify"

    @property
    def order(self) -> int:
        return PHASES.index(self)

    @property
    def destructive(self) -> bool:
        """Steps that change a machine (power, media, disks): none starts once a stop is asked."""
        return self in (Phase.MEDIA, Phase.BOOT, Phase.INSTALL, Phase.FINALIZE)


PHASES: tuple[Phase, ...] = tuple(Phase)


class NodeState(enum.StrEnum):
    PENDING = "pending"
    PREFLIGHT = "preflight"
    MEDIA = "media"
    BOOT = "boot"
    LIVE = "live"
    INSPECT = "inspect"
    INSTALL = "install"
    COLLECT = "collect"
    FINALIZE = "finalize"
    VERIFY = "verify"
    DONE = "done"
    FAILED = "failed"
    STOPPED = "stopped"  # interrupted: the journal says where, `--resume` goes on from there

    @property
    def working(self) -> bool:
        return self.value in _PHASE_NAMES

    @property
    def final(self) -> bool:
        return self in (NodeState.DONE, NodeState.FAILED, NodeState.STOPPED)

    @classmethod
    def of(cls, phase: Phase) -> NodeState:
        return cls(phase.value)


_PHASE_NAMES = frozenset(p.value for p in PHASES)
_WORKING = tuple(NodeState.of(p) for p in PHASES)

TRANSITIONS: dict[NodeState, frozenset[NodeState]] = {
    # a fresh node starts at preflight; a resumed one may start later (install reattach, collect...)
    NodeState.PENDING: frozenset({*_WORKING, NodeState.DONE, NodeState.STOPPED}),
    # each working state goes to the next one, fails, or is stopped
    **{
        state: frozenset(
            {(_WORKING[i + 1] if i + 1 < len(_WORKING) else NodeState.DONE), NodeState.FAILED, NodeState.STOPPED}
        )
        for i, state in enumerate(_WORKING)
    },
    # an inspect-only run ends after the inspection
    NodeState.INSPECT: frozenset({NodeState.INSTALL, NodeState.DONE, NodeState.FAILED, NodeState.STOPPED}),
    # a failed node starts over from its first step (retry policy, --resume, pvcctl retry)
    NodeState.FAILED: frozenset({NodeState.PREFLIGHT}),
    # a stopped node goes on from where it can: any working state
    NodeState.STOPPED: frozenset(_WORKING),
    NodeState.DONE: frozenset(),
}


class TransitionError(RuntimeError):
    """A transition the table does not allow: a bug in the engine, never a user's mistake."""


def advance(current: NodeState, new: NodeState) -> NodeState:
    """`new` if the table allows current → new; raises TransitionError otherwise."""
    if new not in TRANSITIONS[current]:
        raise TransitionError(f"no transition from {current} to {new}")
    return new


def next_phase(phase: Phase) -> Phase | None:
    i = phase.order + 1
    return PHASES[i] if i < len(PHASES) else None
