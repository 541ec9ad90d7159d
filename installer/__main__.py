"""Command line: `python3 -m installer` (console questions) or `python3 -m installer run PLAN.json`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from installer.actions import Mode
from installer.engine import EXIT_BAD_PLAN, STEP_NAMES, Options, run_plan
from installer.events import Level, Reporter
from installer.plan import FileRefused, Plan, PlanError, read_small_file


def _common(parser: argparse.ArgumentParser, top: bool) -> None:
    """The same options before and after `run`. After it they default to SUPPRESS, so that
    `--dry-run run plan.json` stays a dry run (argparse would otherwise reset it to False)."""
    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    parser.add_argument("--dry-run", action="store_true", default=default(False),
                        help="print every destructive action; touch nothing")
    parser.add_argument("--simulate", type=Path, metavar="DISKS.json", default=default(None),
                        help="recorded lsblk --json (+ udev) output: choose the disk, run nothing")
    parser.add_argument("--target", type=Path, default=default(Path("/tmp/pvc-target")),
                        help="where to mount the new system")
    parser.add_argument("--log", type=Path, default=default(Path("/var/log/pvc-install/install.log")))
    parser.add_argument("--report", type=Path, default=default(Path("/var/log/pvc-install/report.json")))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python3 -m installer", description="Install a PVC node.")
    _common(top, top=True)
    top.add_argument("--image", help="the root image for the image method (console mode)")
    sub = top.add_subparsers(dest="command")
    run = sub.add_parser("run", help="install from a plan file, printing JSON-lines progress")
    run.add_argument("plan", type=Path, metavar="PLAN.json")
    _common(run, top=False)
    run.add_argument("--step-delay", type=float, default=0.0, metavar="SECONDS",
                     help="simulate mode: wait this long after each step")
    run.add_argument("--stop-after", choices=STEP_NAMES, help="tests: stop after this step, half done")
    run.add_argument("--simulate-root", type=Path, metavar="DIR",
                     help="simulate mode: a simulated disk's root directory, which keeps the install marker")
    inspect = sub.add_parser("inspect", help="the install's dry run and the machine's hardware, as JSON; "
                                             "writes nothing to any disk")
    inspect.add_argument("plan", type=Path, metavar="PLAN.json")
    _common(inspect, top=False)
    return top


def options_from(args: argparse.Namespace, human: bool) -> Options:
    mode = Mode.SIMULATE if args.simulate else Mode.DRY_RUN if args.dry_run else Mode.REAL
    return Options(mode=mode, target=args.target, log_path=args.log, report_path=args.report,
                   simulate_file=args.simulate, step_delay=getattr(args, "step_delay", 0.0),
                   stop_after=getattr(args, "stop_after", None), human=human,
                   sim_root=getattr(args, "simulate_root", None) if args.simulate else None)


def load_plan(path: Path) -> Plan:
    try:
        data = json.loads(read_small_file(path, "plan"))
    except OSError as err:
        raise PlanError("", f"cannot read the plan {path}: {err.strerror}") from None
    except FileRefused as err:
        raise PlanError("", str(err)) from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise PlanError("", f"{path} is not JSON: {err}") from None
    return Plan.from_dict(data)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.simulate is not None and not args.simulate.is_file():
        print(f"installer: --simulate {args.simulate}: no such file; give recorded lsblk --json output",
              file=sys.stderr)
        return EXIT_BAD_PLAN
    if args.command not in ("run", "inspect"):
        from installer.console import run_console
        return run_console(options_from(args, human=True), image=args.image)
    options = options_from(args, human=False)
    reporter = Reporter(options.log_path)
    try:
        reporter.begin("plan", "validate", 0, f"reading the plan {args.plan}")
        try:
            plan = load_plan(args.plan)
        except PlanError as err:
            reporter.emit(f"bad plan: {err}", Level.ERROR)
            reporter.final({"event": "failed", "exit_code": EXIT_BAD_PLAN, "phase": "plan", "step": "validate",
                            "field": err.field, "message": str(err)})
            return EXIT_BAD_PLAN
        reporter.end()
        if args.command == "inspect":
            from installer.inspect import run_inspect
            return run_inspect(plan, options, reporter)
        return run_plan(plan, options, reporter)
    finally:
        reporter.close()


if __name__ == "__main__":
    sys.exit(main())
