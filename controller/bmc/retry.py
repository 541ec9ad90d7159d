"""Retries by failure class, on stamina: back off with jitter until a deadline, then explain.

Only failures whose class is transient are tried again (busy, conflict, during POST, connection,
timeout, 5xx). Callers make each retried operation check-then-act, so a repeated write acts only
when the BMC shows it did not act the first time. Tests call `stamina.set_testing(True, ...)` to
remove the waiting.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import stamina

from controller.bmc.errors import HINTS, BmcError, BmcRequestError, FailureClass

log = logging.getLogger(__name__)

T = TypeVar("T")


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
        if not err.failure.transient:
            return False
        log.info("%s: BMC %s: %s: %s; trying again", self.where.node, self.where.bmc, self.step, err)
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
    raise AssertionError("unreachable: stamina ends with a result or an exception")


def failure_error(where: StepContext, step: str, message: str, failure: FailureClass, hint: str = "") -> BmcError:
    """A BmcError for a step that cannot succeed as asked (no retry would help)."""
    return BmcError(
        message, node=where.node, bmc=where.bmc, step=step, failure=failure, hint=hint or HINTS[failure]
    )
