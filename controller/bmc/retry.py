"""Retries by failure class, on stamina: back off with jitter until a deadline, then explain.

Only failures whose class is transient are tried again (busy, conflict, during POST, connection,
timeout, 5xx), and never a write whose task the BMC accepted (`WriteOutcome.ACCEPTED`: it was
polled to its deadline; sending it again would start a second task). Callers make each retried
operation check-then-act, so a repeated write acts only when the BMC shows it did not act the first
time; an operation whose check cannot tell (a restart) handles a lost answer (`WriteOutcome.UNKNOWN`)
itself. Tests call `stamina.set_testing(True, ...)` to remove the waiting.

Each scheduled retry is logged on this module's logger (under `controller`, so that a deploy puts it
in the node's log), named by node, BMC and step: stamina's own hook, which logs a bare
`stamina.retry_scheduled` on the `stamina` logger, is replaced by `log_retry` at import.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import stamina
from stamina.instrumentation import RetryDetails, set_on_retry_hooks

from controller.bmc.errors import HINTS, BmcError, BmcRequestError, FailureClass, WriteOutcome

log = logging.getLogger(__name__)

T = TypeVar("T")

WARN_AT_RETRY = 3  # the retry that is logged as a warning (once per step): the BMC keeps failing


@dataclass(frozen=True)
class RetryPolicy:
    """How long one step may keep trying, and how the waits between tries grow."""

    deadline: float = 120.0
    wait_initial: float = 0.5
    wait_max: float = 10.0
    wait_jitter: float = 1.0


@dataclass(frozen=True)
class StepContext:
    node: str
    bmc: str


class _Attempts:
    """Remembers the first and the last failure of a step; decides whether to try again."""

    def __init__(self, where: StepContext, step: str):
        self.where = where
        self.step = step
        self.first: BmcRequestError | None = None
        self.last: BmcRequestError | None = None
        self.count = 0

    def should_retry(self, err: Exception) -> bool | float:
        if not isinstance(err, BmcRequestError):
            return False
        if not err.failure.transient or err.outcome is WriteOutcome.ACCEPTED:
            return False
        if err.retry_after is not None:
            return min(max(err.retry_after, 0.0), 60.0)
        return True

    def record(self, err: BmcRequestError) -> None:
        self.count += 1
        self.first = self.first or err
        self.last = err

    def give_up(self, err: BmcRequestError) -> BmcError:
        assert self.first is not None
        gave_up = f"gave up after {self.count} attempts" if err.failure.transient else "failed"
        return BmcError(
            gave_up,
            node=self.where.node,
            bmc=self.where.bmc,
            step=self.step,
            first_error=str(self.first),
            last_error=str(err),
            attempts=self.count,
            failure=err.failure,
            hint=err.hint or HINTS[err.failure],
        )


async def retrying(
    where: StepContext, step: str, operation: Callable[[], Awaitable[T]], policy: RetryPolicy
) -> T:
    """Run `operation` until it succeeds, fails for good, or the step's deadline passes."""
    attempts = _Attempts(where, step)
    token = _CURRENT_STEP.set(attempts)
    try:
        async for attempt in stamina.retry_context(
            on=attempts.should_retry,
            attempts=None,
            timeout=policy.deadline,
            wait_initial=policy.wait_initial,
            wait_max=policy.wait_max,
            wait_jitter=policy.wait_jitter,
        ):
            with attempt:
                try:
                    return await operation()
                except BmcRequestError as err:
                    attempts.record(err)
                    raise
    except BmcRequestError as err:
        raise attempts.give_up(err) from None
    finally:
        _CURRENT_STEP.reset(token)
    raise AssertionError("unreachable: stamina ends with a result or an exception")


def failure_error(where: StepContext, step: str, message: str, failure: FailureClass, hint: str = "") -> BmcError:
    """A BmcError for a step that cannot succeed as asked (no retry would help)."""
    return BmcError(
        message, node=where.node, bmc=where.bmc, step=step, failure=failure, hint=hint or HINTS[failure]
    )


# The step whose retries run in this task: stamina's hooks are global, the step is not.
_CURRENT_STEP: contextvars.ContextVar[_Attempts | None] = contextvars.ContextVar("pvcctl_bmc_step", default=None)


def log_retry(details: RetryDetails) -> None:
    """stamina's retry hook: the retry as a log record naming node, BMC and step (never bare on stderr)."""
    attempts = _CURRENT_STEP.get()
    if attempts is None:  # a retry outside `retrying`: still ours, still through logging
        log.warning("%s: %s; trying again in %.1f s", details.name, details.caused_by, details.wait_for)
        return
    where = attempts.where
    level = logging.WARNING if details.retry_num == WARN_AT_RETRY else logging.INFO
    still = f" (still failing after {details.retry_num} attempts)" if details.retry_num >= WARN_AT_RETRY else ""
    log.log(level, "%s: BMC %s: %s: %s; trying again in %.1f s%s", where.node, where.bmc, attempts.step,
            details.caused_by, details.wait_for, still)


set_on_retry_hooks([log_retry])
