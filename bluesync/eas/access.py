"""
Whether a device may run a command: provisioning (policy key) and device
access state.  Runs on every POST, after the device is recorded and before
the command.  Returns the answer that refuses the request, or None.
"""

from __future__ import annotations

from bluesync.eas.context import CommandContext
from bluesync.web.rendering import Response


async def check(ctx: CommandContext) -> Response | None:
    # Provisioning enforcement (HTTP 449 / Status 142, 144) arrives with the
    # Provision command; until then every authenticated device may proceed.
    return None
