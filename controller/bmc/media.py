"""Virtual media over Redfish: find the CD slot, eject everything, insert an image, read it back.

The algorithm is sushy's and Ironic's, not the naive spec flow: slots under Systems first, then
under Managers; CD, else DVD; slots without the insert action are skipped, and a slot that answers
400/405 passes the turn to the next; the insert payload is adjusted to what the BMC asks for.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from controller.bmc.base import MediaStatus
from controller.bmc.channel import RedfishChannel, Resource
from controller.bmc.errors import BmcRequestError, FailureClass
from controller.bmc.quirks import VendorProfile

log = logging.getLogger(__name__)

INSERT = "#VirtualMedia.InsertMedia"
EJECT = "#VirtualMedia.EjectMedia"

# NOTE(nvidia/dgx): placeholder image credentials for a BMC that demands UserName/Password even for an
# anonymous image (sushy bug 2071945). They are public constants, not secrets, and never the BMC's own
# credentials: the image server does not check them.
PLACEHOLDER_IMAGE_USER = "none"
PLACEHOLDER_IMAGE_PASSWORD = "none"


@dataclass(frozen=True)
class Slot:
    path: str
    id: str
    media_types: tuple[str, ...]
    insert_target: str | None
    eject_target: str | None
    patchable: bool
    inserted: bool
    image: str
    etag: str | None

    def status(self) -> MediaStatus:
        return MediaStatus(slot=self.path, inserted=self.inserted, image=self.image if self.inserted else "")


def slot_from(resource: Resource, profile: VendorProfile) -> Slot:
    data = resource.data
    actions = data.get("Actions", {}) if isinstance(data.get("Actions"), dict) else {}
    image = str(data.get("Image") or "")
    inserted = bool(data["Inserted"]) if isinstance(data.get("Inserted"), bool) else bool(image)
    if profile.not_connected_is_empty and data.get("ConnectedVia") == "NotConnected":
        inserted = False
    return Slot(
        path=resource.path,
        id=str(data.get("Id", resource.path.rstrip("/").rsplit("/", 1)[-1])),
        media_types=tuple(str(t) for t in data.get("MediaTypes") or ()),
        insert_target=(actions.get(INSERT) or {}).get("target"),
        eject_target=(actions.get(EJECT) or {}).get("target"),
        patchable=profile.insert_by_patch or "PATCH" in resource.allow.upper(),
        inserted=inserted,
        image=image,
        etag=resource.etag,
    )


def check_image_url(url: str, profile: VendorProfile) -> str | None:
    """Why this BMC family cannot take `url`, or None when it can."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"image URL {url!r} must be http:// or https:// with a host"
    if profile.image_https_only and parts.scheme != "https":
        return (f"{profile.name} accepts only https:// image URLs, but the controller serves {url}: "
                "serve the ISO over HTTPS for this node")
    if profile.image_suffix_iso and not parts.path.lower().endswith(".iso"):
        return f"{profile.name} needs an image name ending in .iso, got {parts.path!r}"
    if profile.image_no_query and ("?" in url or "=" in url):
        return f"{profile.name} rejects ? and = in image URLs, got {url!r}"
    return None


class VirtualMedia:
    """The virtual CD of one system, as reached through `channel`."""

    def __init__(self, channel: RedfishChannel, profile: VendorProfile, collections: list[str],
                 *, deadline: float, poll_interval: float):
        self.channel = channel
        self.profile = profile
        self.collections = collections
        self.deadline = deadline
        self.poll_interval = poll_interval

    async def _slots_of(self, collection: str) -> list[Slot]:
        members = (await self.channel.get(collection)).data.get("Members", [])
        reads = [self.channel.get(str(m["@odata.id"])) for m in members if isinstance(m, dict)]
        return [slot_from(r, self.profile) for r in await asyncio.gather(*reads)]

    async def cd_slots(self, *, usable_only: bool = True) -> list[Slot]:
        """CD slots in the order to try them: Systems CD, Systems DVD, Managers CD, Managers DVD."""
        ordered: list[Slot] = []
        for collection in self.collections:
            slots = [s for s in await self._slots_of(collection) if not usable_only or self._usable(s)]
            ordered += [s for s in slots if "CD" in s.media_types]
            ordered += [s for s in slots if "DVD" in s.media_types and "CD" not in s.media_types]
        return ordered

    def _usable(self, slot: Slot) -> bool:
        if self.profile.media_slot_ids and slot.id not in self.profile.media_slot_ids:
            return False
        if self.profile.media_slot_prefixes and not slot.id.startswith(self.profile.media_slot_prefixes):
            return False
        return slot.insert_target is not None or slot.patchable

    async def status(self) -> MediaStatus:
        slots = await self.cd_slots()
        if not slots:
            raise BmcRequestError(FailureClass.UNSUPPORTED, "no virtual CD/DVD slot that takes an image")
        return next((s for s in slots if s.inserted), slots[0]).status()

    async def eject_all(self) -> None:
        for slot in await self.cd_slots(usable_only=False):
            if slot.inserted and (slot.eject_target or slot.patchable):
                await self._eject(slot)
                await self._wait_slot(slot.path, lambda s: not s.inserted, "ejected")

    async def _eject(self, slot: Slot) -> None:
        log.info("ejecting %s from %s", slot.image, slot.path)
        if slot.eject_target is None:
            await self.channel.write("PATCH", slot.path, {"Image": None, "Inserted": False}, etag=slot.etag)
            return
        try:
            await self.channel.write("POST", slot.eject_target, self.profile.eject_body)
        except BmcRequestError as err:
            if err.status in (400, 415) and self.profile.eject_body is None:
                # NOTE(hpe/ilo5): some BMCs want a {} body (sushy fix-eject-media-empty-dict).
                await self.channel.write("POST", slot.eject_target, {})
                return
            fresh = slot_from(await self.channel.get(slot.path), self.profile)
            if fresh.inserted:
                raise
            log.info("eject of %s answered %s, but the slot is empty now", slot.path, err.status)

    async def insert(self, url: str) -> MediaStatus:
        """Insert `url` into the first slot that takes it (check first: an inserted `url` is kept)."""
        slots = await self.cd_slots()
        if not slots:
            raise BmcRequestError(FailureClass.UNSUPPORTED, "no virtual CD/DVD slot that takes an image")
        current = next((s for s in slots if s.inserted and s.image == url), None)
        if current is not None:
            return current.status()
        if any(s.inserted for s in slots):
            await self.eject_all()
        refused: BmcRequestError | None = None
        for slot in slots:
            try:
                await self._insert_into(slot, url)
            except BmcRequestError as err:
                if err.status not in (400, 405) or err.failure is FailureClass.DURING_POST:
                    raise
                log.info("slot %s refused the image (%s); trying the next slot", slot.path, err)
                refused = err
                continue
            done = await self._wait_slot(slot.path, lambda s: s.inserted and s.image == url, "inserted")
            return done.status()
        assert refused is not None
        if refused.has_message("UserName", "Password"):
            refused.hint = ("the BMC wants credentials for the image even over plain HTTP, and the placeholder ones "
                            "pvcctl sends (where the vendor profile allows) did not satisfy it; serve the ISO "
                            "from a web server that takes the credentials this BMC sends")
        else:
            refused.hint = f"check that the BMC can fetch {url} (it reads it with HEAD and Range GETs)"
        raise refused

    async def _insert_into(self, slot: Slot, url: str) -> None:
        if slot.insert_target is None:
            body = {"Image": url, "Inserted": True, "WriteProtected": True}
            await self.channel.write("PATCH", slot.path, body, etag=slot.etag)
            return
        payload: dict[str, Any] = {"Image": url}
        if self.profile.insert_flags:
            payload |= {"Inserted": True, "WriteProtected": True}
        if self.profile.insert_transfer_protocol:
            payload["TransferProtocolType"] = urlsplit(url).scheme.upper()
        for _ in range(4):
            try:
                await self.channel.write("POST", slot.insert_target, payload)
                return
            except BmcRequestError as err:
                adjusted = adjust_insert_payload(payload, err, url, self.profile)
                if adjusted is None:
                    raise
                log.info("%s: InsertMedia again with %s, after %s", slot.path, _change(payload, adjusted), err)
                payload = adjusted
        raise BmcRequestError(FailureClass.REJECTED, f"{slot.path}: InsertMedia refused every payload")

    async def _wait_slot(self, path: str, done: Any, what: str) -> Slot:
        deadline = time.monotonic() + self.deadline
        while True:
            slot = slot_from(await self.channel.get(path), self.profile)
            if done(slot):
                return slot
            if time.monotonic() > deadline:
                raise BmcRequestError(FailureClass.TIMEOUT,
                                      f"{path} still does not read {what} after {self.deadline:.0f} s")
            await asyncio.sleep(self.poll_interval)


def adjust_insert_payload(payload: dict[str, Any], err: BmcRequestError, url: str,
                          profile: VendorProfile) -> dict[str, Any] | None:
    """The payload to try next after a refusal, or None when no change can help."""
    if err.failure is not FailureClass.REJECTED:
        return None
    if err.has_message("TransferProtocolType") and "TransferProtocolType" not in payload:
        return payload | {"TransferProtocolType": urlsplit(url).scheme.upper()}
    if err.has_message("TransferMethod") and "TransferMethod" not in payload:
        return payload | {"TransferMethod": "Stream"}
    if profile.media_placeholder_credentials and _wants_credentials(err) and "UserName" not in payload:
        return payload | {"UserName": PLACEHOLDER_IMAGE_USER, "Password": PLACEHOLDER_IMAGE_PASSWORD}
    if err.has_message("Inserted", "WriteProtected", "PropertyUnknown", "ActionParameterUnknown") and (
        "Inserted" in payload or "WriteProtected" in payload
    ):
        return {k: v for k, v in payload.items() if k not in ("Inserted", "WriteProtected")}
    return None


def _wants_credentials(err: BmcRequestError) -> bool:
    """NOTE(nvidia/dgx): UserName/Password reported missing (ActionParameterMissing or a GeneralError)."""
    return err.has_message("UserName", "Password") and err.has_message(
        "ActionParameterMissing", "PropertyMissing", "GeneralError", "requires the parameter", "parameter missing")


def _change(before: dict[str, Any], after: dict[str, Any]) -> str:
    """What a payload adjustment adds and drops, for the log. Only placeholder credentials ever appear
    here (PLACEHOLDER_IMAGE_*): they are shown as they are, they are not secrets."""
    added = [f"{k}={after[k]}" for k in after if k not in before]
    dropped = [f"without {k}" for k in before if k not in after]
    note = " (placeholder image credentials, not the BMC's)" if "UserName" in after and "UserName" not in before else ""
    return ", ".join(added + dropped) + note
