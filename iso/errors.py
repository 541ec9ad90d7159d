"""The errors an ISO build raises, on the two branches of `core.errors`."""

from __future__ import annotations

from core.errors import OperationError, UserError


class IsoUserError(UserError):
    """The build cannot start as asked (not root, a tool missing, a bad seed or option)."""


class BuildError(OperationError):
    """A build step failed (debootstrap, apt, mksquashfs, xorriso)."""

    def __init__(self, message: str, *, phase: str = "", hint: str = ""):
        super().__init__(message, phase=phase, hint=hint)
