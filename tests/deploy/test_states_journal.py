"""The transition table and the journal's resume decisions: pure logic, on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.bmc.base import BootStatus, BootTarget, Identity, MediaStatus, PowerState
from controller.journal import Journal
from controller.node import results as r
from controller.node.events import Board, Event, EventBus, EventKind
from controller.node.states import PHASES, TRANSITIONS, NodeState, Phase, TransitionError, advance, next_phase


def test_pipeline_order_and_transitions() -> None:
    assert [p.value for p in PHASES] == ["preflight", "media", "boot", "live", "inspect", "install", "collect",
                                         "finalize", "verify"]
    state = NodeState.PENDING
    for phase in PHASES:
        state = advance(state, NodeState.of(phase))
    assert advance(state, NodeState.DONE) is NodeState.DONE
    assert next_phase(Phase.VERIFY) is None and next_phase(Phase.LIVE) is Phase.INSPECT
    assert advance(NodeState.INSPECT, NodeState.DONE) is NodeState.DONE  # an inspect-only run ends there


@pytest.mark.parametrize(("current", "new"), [
    (NodeState.PREFLIGHT, NodeState.INSTALL),  # no skipping steps
    (NodeState.DONE, NodeState.PREFLIGHT),  # done is final
    (NodeState.FAILED, NodeState.INSTALL),  # a failed node starts over from its first step
    (NodeState.INSTALL, NodeState.MEDIA),
])
def test_forbidden_transitions(current: NodeState, new: NodeState) -> None:
    with pytest.raises(TransitionError):
        advance(current, new)


def test_every_working_state_can_fail_or_stop() -> None:
    for phase in PHASES:
        allowed = TRANSITIONS[NodeState.of(phase)]
        assert {NodeState.FAILED, NodeState.STOPPED} <= allowed


def _state(node: str, state: NodeState, attempt: int = 1, message: str = "", phase: str = "") -> Event:
    return Event(node, EventKind.STATE, message, state=state, attempt=attempt, phase=phase)


_MEDIA = MediaStatus("CD", True, "pvc-live.iso")
_BOOT = BootStatus(BootTarget.CD, "Cd", "Once", "UEFI", ("Cd", "Hdd"))
SAMPLE: dict[Phase, r.StepResult] = {
    Phase.PREFLIGHT: r.PreflightResult(Identity("Dell Inc.", "R650", "7.00", "S1", "", "T1", ("52:54:00:00:00:01",),
                                                PowerState.OFF, "UEFI", "idrac9"), _MEDIA, _BOOT),
    Phase.MEDIA: r.MediaResult(_MEDIA),
    Phase.BOOT: r.BootResult(_BOOT, PowerState.OFF),
    Phase.LIVE: r.LiveResult("127.2.0.2", 22),
    Phase.INSPECT: r.InspectResult({"chosen": {"path": "/dev/sda"}}, ({"key": "memory_min_gb", "status": "ok"},),
                                   "hv1: will WIPE /dev/sda"),
    Phase.INSTALL: r.InstallResult("pvcctl/run-1", 0),
    Phase.COLLECT: r.CollectResult({"ssh_host_keys": ["ssh-ed25519 AAAA root@hv1"], "disk": "/dev/sda"}, "/logs/a.1"),
    Phase.FINALIZE: r.FinalizeResult(BootStatus(BootTarget.DISK, "Hdd", "Once", "UEFI")),
    Phase.VERIFY: r.VerifyResult("127.2.0.2", ("ssh-ed25519 AAAA root@hv1",), "hv1.example.org"),
}


def _step(node: str, phase: Phase, attempt: int = 1) -> Event:
    result = r.encode(phase, SAMPLE[phase])
    return Event(node, EventKind.STEP, phase=phase.value, attempt=attempt, data={"seconds": 1.5, "result": result})


def test_journal_resume_points(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path, {"cluster": "c1", "nodes": "a,b,c,d"})
    for phase in PHASES:  # a: all done
        journal.record(_state("a", NodeState.of(phase)))
        journal.record(_step("a", phase))
    journal.record(_state("a", NodeState.DONE))
    for phase in PHASES[:4]:  # b: was installing when the controller died
        journal.record(_state("b", NodeState.of(phase)))
        journal.record(_step("b", phase))
    journal.record(_state("b", NodeState.INSTALL))
    journal.record(_state("c", NodeState.PREFLIGHT))  # c: failed in media
    journal.record(_state("c", NodeState.FAILED, message="BMC said no", phase="media"))
    journal.record(_state("d", NodeState.BOOT, attempt=2))  # d: stopped during boot
    journal.record(_state("d", NodeState.STOPPED, attempt=2, phase="boot"))
    journal.close()

    records = Journal(journal.run_dir).nodes()
    assert records["a"].resume_phase() is None
    assert records["b"].resume_phase() is Phase.INSTALL
    assert records["b"].steps[Phase.LIVE] == r.LiveResult("127.2.0.2", 22)
    assert records["a"].steps == SAMPLE  # every phase's result, back as its own type
    assert records["c"].resume_phase() is Phase.PREFLIGHT and records["c"].error == "BMC said no"
    assert records["c"].phase == "media"
    assert records["d"].resume_phase() is Phase.PREFLIGHT and records["d"].attempt == 2
    assert (journal.run_dir / "logs" / "a.1.log").read_text().count("\n") == 2 * len(PHASES) + 1
    assert Journal.latest(tmp_path) == journal.run_dir


def test_node_events_go_to_the_node_log_and_run_events_to_the_run_log(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path, {"cluster": "c1", "nodes": "a"})
    journal.record(Event("a", EventKind.MESSAGE, "checked in: serial S1", phase="live", attempt=2))
    journal.record(Event("", EventKind.MESSAGE, "ignored a check-in from an unknown machine", phase="live"))
    journal.record(Event("", EventKind.RUN, "deploying a"))
    journal.record(Event("a", EventKind.MESSAGE, "before any attempt"))  # no attempt, no log to put it in
    journal.close()
    logs = journal.run_dir / "logs"
    assert sorted(p.name for p in logs.iterdir()) == ["a.2.log", "run.log"]
    assert (logs / "a.2.log").read_text().endswith(" [live] message: checked in: serial S1\n")
    run_log = (logs / "run.log").read_text().splitlines()
    assert [line.split(" ", 1)[1] for line in run_log] == [
        "[live] message: ignored a check-in from an unknown machine", "[-] run: deploying a"]


def test_board_folds_events() -> None:
    board = Board(["a"])
    board.apply(_state("a", NodeState.INSTALL))
    board.apply(Event("a", EventKind.PROGRESS, "wiping", phase="install", attempt=1, data={"percent": 40}))
    board.apply(_step("a", Phase.INSTALL))
    board.apply(Event("a", EventKind.STATE, "boom", state=NodeState.FAILED, attempt=1, data={"log": "/x.log"}))
    (status,) = board.snapshot()
    assert (status["state"], status["percent"], status["error"], status["log"]) == ("failed", 40, "boom", "/x.log")
    assert status["phase_seconds"] == {"install": 1.5}


def test_a_stored_result_that_does_not_fit_its_phase_is_refused() -> None:
    with pytest.raises(r.ResultCodecError, match="live"):
        r.decode(Phase.LIVE, {"address": "127.2.0.2"})  # no port
    with pytest.raises(TypeError, match="LiveResult"):
        r.encode(Phase.VERIFY, SAMPLE[Phase.LIVE])


def test_the_bus_cuts_the_runs_secrets_out_of_every_event(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path, {"cluster": "c1", "nodes": "a"})
    bus = EventBus()
    seen: list[Event] = []
    for subscriber in (journal.record, seen.append):
        bus.subscribe(subscriber)
    bus.keep_secret("s3cretpath")
    url = "http://10.0.0.1:8740/iso/s3cretpath/pvc-live.iso"
    bus.emit(Event("a", EventKind.MESSAGE, f"the BMC answered 400 for {url}", phase="media", attempt=1,
                   data={"media": {"image": url, "slots": [url]}}))
    journal.close()
    (event,) = seen
    assert event.message == "the BMC answered 400 for http://10.0.0.1:8740/iso/<secret>/pvc-live.iso"
    assert event.data == {"media": {"image": "http://10.0.0.1:8740/iso/<secret>/pvc-live.iso",
                                    "slots": ["http://10.0.0.1:8740/iso/<secret>/pvc-live.iso"]}}
    stored = (journal.run_dir / "journal.sqlite").read_bytes() + (journal.run_dir / "logs" / "a.1.log").read_bytes()
    assert b"s3cretpath" not in stored and b"pvc-live.iso" in stored


def test_a_command_finds_its_clusters_run_never_another_clusters(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from controller.runs import NoRunError, find_run

    monkeypatch.chdir(tmp_path)
    with pytest.raises(NoRunError, match="holds no cluster's runs"):
        find_run(None, None)
    first = Journal.create(tmp_path / "runs" / "c1", {"cluster": "c1"})
    assert find_run(None, None) == first.run_dir  # the only cluster under ./runs
    other = Journal.create(tmp_path / "runs" / "c2", {"cluster": "c2"})  # a later run of another cluster
    with pytest.raises(NoRunError, match=r"clusters c1, c2 have runs under \./runs; give the cluster's inventory"):
        find_run(None, None)
    assert find_run(None, first.run_dir) == first.run_dir != other.run_dir
    with pytest.raises(NoRunError, match="is not a run directory"):
        find_run(None, tmp_path)
