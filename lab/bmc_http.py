"""The lab BMC over HTTPS: Redfish resources, sessions, Basic auth, ETags, task monitors, faults.

One aiohttp application per emulated BMC; `lab/server.py` runs many of them in one process, each on
its own loopback address.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from lab.bmc import LabBmc
from lab.dell_jobs import DellJob
from lab.faults import Refusal, never
from lab.machine import SimulatedMachine
from lab.secure_boot import routes as secure_boot_routes
from lab.secure_boot import system_link as secure_boot_link

BMC_KEY = web.AppKey("bmc", LabBmc)
ROOT = "/redfish/v1"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


def _error(refusal: Refusal) -> web.Response:
    info = {"MessageId": refusal.message_id, "Message": refusal.message, "Severity": "Warning"}
    error: dict[str, Any] = {"code": refusal.message_id} if refusal.with_code else {}
    error |= {"message": refusal.message, "@Message.ExtendedInfo": [info]}
    return _json({"error": error}, refusal.status, refusal.headers)


def _basic(header: str) -> tuple[str, str] | None:
    if not header.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


@web.middleware
async def faults_and_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    bmc = request.app[BMC_KEY]
    bmc.requests += 1
    if request.method not in ("GET", "HEAD"):
        bmc.writes.append(f"{request.method} {request.path}")
    faults = bmc.faults
    if bmc.fault_roll(faults.hang_rate):
        await never()
    if faults.latency:
        await asyncio.sleep(faults.latency)
    if bmc.fault_roll(faults.reset_rate) and request.transport is not None:
        request.transport.abort()  # the client sees a reset connection
        raise web.HTTPServiceUnavailable()
    try:
        if bmc.busy() or bmc.fault_roll(faults.error_rate):
            raise Refusal(503, "Base.1.8.ServiceTemporarilyUnavailable", "the BMC is busy; try again later")
        public = request.path.rstrip("/") == ROOT or (
            request.method == "POST" and request.path.rstrip("/") == f"{ROOT}/SessionService/Sessions"
        )
        token = request.headers.get("X-Auth-Token")
        if not public and not bmc.authorized(token, _basic(request.headers.get("Authorization", ""))):
            raise Refusal(401, "Base.1.8.NoValidSession", "authentication required",
                          {"WWW-Authenticate": 'Basic realm="lab BMC"'})
        response = await handler(request)
    except Refusal as refusal:
        bmc.refusals.append(refusal.status)
        return _error(refusal)
    if request.method != "GET" and bmc.fault_roll(faults.lost_reply_rate) and request.transport is not None:
        request.transport.abort()  # the BMC acted, but its answer never arrives
    return response


async def _body(request: web.Request) -> dict[str, Any] | None:
    raw = await request.read()
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        raise Refusal(400, "Base.1.8.MalformedJSON", "the body is not JSON") from None
    if not isinstance(data, dict):
        raise Refusal(400, "Base.1.8.MalformedJSON", "the body is not a JSON object")
    return data


def _collection(path: str, members: list[str]) -> dict[str, Any]:
    return {"@odata.id": path, "Members": [{"@odata.id": m} for m in members], "Members@odata.count": len(members)}


# -- resources ---------------------------------------------------------------------------------------

def service_root(bmc: LabBmc) -> dict[str, Any]:
    return {
        "@odata.id": f"{ROOT}/", "Id": "RootService", "RedfishVersion": "1.17.0",
        "Vendor": bmc.personality.service_vendor, "Product": bmc.personality.model,
        "Systems": {"@odata.id": f"{ROOT}/Systems"}, "Managers": {"@odata.id": f"{ROOT}/Managers"},
        "SessionService": {"@odata.id": f"{ROOT}/SessionService"},
        "TaskService": {"@odata.id": f"{ROOT}/TaskService"},
        "Links": {"Sessions": {"@odata.id": f"{ROOT}/SessionService/Sessions"}},
    }


def boot_body(bmc: LabBmc, *, allowable: bool = True) -> dict[str, Any]:
    m = bmc.machine
    boot: dict[str, Any] = {
        "BootSourceOverrideTarget": bmc.boot_target_shown(), "BootSourceOverrideEnabled": m.boot.enabled,
        "BootSourceOverrideMode": m.boot.mode,
    }
    if allowable:
        boot |= {
            "BootSourceOverrideTarget@Redfish.AllowableValues": list(bmc.personality.boot_targets),
            "BootSourceOverrideEnabled@Redfish.AllowableValues": ["Disabled", "Once", "Continuous"],
        }
    return boot


def settings_body(bmc: LabBmc) -> dict[str, Any]:
    """NOTE(dell/idrac10): the System's Settings object: Boot with its allowed values, its own ETag."""
    return {"@odata.id": bmc.settings_path, "@odata.etag": bmc.etag("settings"), "Id": "Settings",
            "Name": "System settings", "Boot": boot_body(bmc)}


def system_body(bmc: LabBmc) -> dict[str, Any]:
    p, m = bmc.personality, bmc.machine
    dell = p.manufacturer.startswith("Dell")
    body: dict[str, Any] = {
        "@odata.id": bmc.system_path, "@odata.etag": bmc.etag("system"), "Id": p.system_id,
        "Name": m.name, "Manufacturer": p.manufacturer, "Model": p.model,
        # NOTE(dell/idrac9): SerialNumber is the board's; the service tag (our serial) is in SKU.
        "SerialNumber": f"CN7{zlib.crc32(m.serial.encode()):010d}" if dell else m.serial,
        "SKU": m.serial if dell else f"{p.model}-SKU",
        "PowerState": m.power_state,
        # NOTE(dell/idrac10): the System shows Boot, but its allowed values only in the Settings object.
        "Boot": boot_body(bmc, allowable=not p.boot_in_settings),
        "Actions": {"#ComputerSystem.Reset": {
            "target": f"{bmc.system_path}/Actions/ComputerSystem.Reset",
            "ResetType@Redfish.AllowableValues": ["On", "ForceOff", "GracefulShutdown", "ForceRestart",
                                                  "GracefulRestart", "PowerCycle"],
        }},
        "EthernetInterfaces": {"@odata.id": f"{bmc.system_path}/EthernetInterfaces"},
        "Links": {"ManagedBy": [{"@odata.id": bmc.manager_path}]},
        **secure_boot_link(bmc),
    }
    if isinstance(m, SimulatedMachine):  # QEMU's machine has no such summary to give
        body["Status"] = {"State": "Enabled", "Health": m.health}
        body["MemorySummary"] = {"TotalSystemMemoryGiB": m.memory_gib, "Status": {"Health": m.health}}
        body["ProcessorSummary"] = {"Count": m.processors, "Model": m.processor_model, "Status": {"Health": "OK"}}
    if p.media_under == "Systems":
        body["VirtualMedia"] = {"@odata.id": bmc.media_path}
    if p.boot_in_settings:
        body["@Redfish.Settings"] = {"@odata.type": "#Settings.v1_3_5.Settings",
                                     "SettingsObject": {"@odata.id": bmc.settings_path},
                                     "SupportedApplyTimes": ["Immediate"]}
    return body


def other_system_body(bmc: LabBmc, system_id: str) -> dict[str, Any]:
    """Another node of the chassis (LabBmc.other_systems): enough to be listed and identified."""
    p = bmc.personality
    return {"@odata.id": f"{ROOT}/Systems/{system_id}", "Id": system_id, "Name": f"{bmc.machine.name}-{system_id}",
            "Manufacturer": p.manufacturer, "Model": p.model, "SerialNumber": f"{bmc.machine.serial}-{system_id}",
            "PowerState": "Off", "Links": {"ManagedBy": [{"@odata.id": bmc.manager_path}]}}


def manager_body(bmc: LabBmc) -> dict[str, Any]:
    p = bmc.personality
    body: dict[str, Any] = {"@odata.id": bmc.manager_path, "Id": p.manager_id, "Name": "Manager",
                            "Model": p.manager_model or p.name, "FirmwareVersion": p.firmware, "ManagerType": "BMC"}
    if p.media_under == "Managers":
        body["VirtualMedia"] = {"@odata.id": bmc.media_path}
    if p.dell_scp_import:
        body["Actions"] = {"Oem": {"#OemManager.ImportSystemConfiguration": {
            "target": bmc.import_path,
            "ShareParameters": {"Target@Redfish.AllowableValues": ["ALL", "IDRAC", "BIOS", "NIC", "RAID"]},
            "ShutdownType@Redfish.AllowableValues": ["Graceful", "Forced", "NoReboot"],
        }}}
    return body


def dell_job_body(job: DellJob) -> dict[str, Any]:
    """A Dell job as a Task: TaskState and Messages, and the Dell view in Oem.Dell."""
    path = f"{ROOT}/TaskService/Tasks/{job.id}"
    done = job.state not in ("Running", "Scheduled")
    percent = 100 if done else 50 if job.state == "Running" else 0
    messages = [{"MessageId": job.message_id, "Message": job.message}] if job.message_id else []
    return {
        "@odata.id": path, "@odata.type": "#Task.v1_4_3.Task", "Id": job.id, "Name": job.name,
        "TaskState": {"Running": "Running", "Scheduled": "Pending", "Completed": "Completed"}.get(job.state,
                                                                                                "Exception"),
        "TaskStatus": "Critical" if job.state == "Failed" else "OK",
        "PercentComplete": percent, "Messages": messages,
        "Oem": {"Dell": {"@odata.type": "#DellJob.v1_5_0.DellJob", "Id": job.id, "JobType": job.job_type,
                         "JobState": job.state, "Message": job.message, "MessageId": job.message_id,
                         "PercentComplete": percent, "Name": job.name}},
    }


def slot_body(bmc: LabBmc, slot_id: str) -> dict[str, Any]:
    state = bmc.slot(slot_id)
    path = f"{bmc.media_path}/{slot_id}"
    inserted = bmc.slot_inserted(state)
    body: dict[str, Any] = {
        "@odata.id": path, "@odata.etag": bmc.etag(slot_id), "Id": slot_id, "Name": f"Virtual {slot_id}",
        "MediaTypes": list(state.spec.media_types), "Image": state.image if inserted else None,
        "ImageName": (state.image or "").rsplit("/", 1)[-1] if inserted else "",
        "Inserted": inserted, "WriteProtected": True, "ConnectedVia": state.connected_via,
    }
    if state.transfer_protocol:
        body["TransferProtocolType"] = state.transfer_protocol
    if state.credentials:
        body |= {"UserName": state.credentials[0], "Password": None}  # a BMC never shows the password
    if state.spec.actions:
        body["Actions"] = {
            "#VirtualMedia.InsertMedia": {"target": f"{path}/Actions/VirtualMedia.InsertMedia"},
            "#VirtualMedia.EjectMedia": {"target": f"{path}/Actions/VirtualMedia.EjectMedia"},
        }
    return body


# -- handlers: one per resource, routed by build_app ---------------------------------------------------

def _bmc(request: web.Request) -> LabBmc:
    return request.app[BMC_KEY]


def _path(request: web.Request) -> str:
    return request.path.rstrip("/")


def _missing(request: web.Request) -> Refusal:
    return Refusal(404, "Base.1.8.ResourceMissingAtURI", f"{_path(request)} does not exist")


def _json_handler(view: Callable[[LabBmc], dict[str, Any]]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return _json(view(_bmc(request)))
    return handler


async def get_system(request: web.Request) -> web.Response:
    bmc = _bmc(request)
    return _json(system_body(bmc), headers={"ETag": bmc.etag("system")})


async def get_other_system(request: web.Request) -> web.Response:
    bmc, system_id = _bmc(request), request.match_info["sid"]
    if system_id not in bmc.other_systems:
        raise _missing(request)
    return _json(other_system_body(bmc, system_id))


async def get_settings(request: web.Request) -> web.Response:
    bmc = _bmc(request)
    if not bmc.personality.boot_in_settings:
        raise _missing(request)
    return _json(settings_body(bmc), headers={"ETag": bmc.etag("settings")})


async def get_nic(request: web.Request) -> web.Response:
    bmc, leaf = _bmc(request), request.match_info["nic"]
    index = int(leaf[4:]) - 1 if leaf.startswith("NIC.") and leaf[4:].isdigit() else -1
    if not 0 <= index < len(bmc.machine.macs):
        raise _missing(request)
    return _json({"@odata.id": _path(request), "Id": leaf, "MACAddress": bmc.machine.macs[index]})


async def get_slot(request: web.Request) -> web.Response:
    bmc, slot_id = _bmc(request), request.match_info["slot"]
    return _json(slot_body(bmc, slot_id), headers={"ETag": bmc.etag(slot_id), "Allow": _allow(bmc, slot_id)})


def _allow(bmc: LabBmc, slot_id: str) -> str:
    return "GET, PATCH" if bmc.slot(slot_id).spec.patch_insert else "GET"


async def get_dell_job(request: web.Request) -> web.Response:
    """NOTE(dell): a job's Location is a Task answered 202 while it runs."""
    job_id = request.match_info["task"]
    if not job_id.startswith("JID_"):
        raise _missing(request)
    job = _bmc(request).job(job_id)
    if job.state in ("Running", "Scheduled"):
        return _json(dell_job_body(job), 202, {"Location": _path(request)})
    return _json(dell_job_body(job))


async def get_task_monitor(request: web.Request) -> web.Response:
    task_id = request.match_info["task"]
    state = _bmc(request).task_state(task_id)
    task = {"@odata.id": f"{ROOT}/TaskService/Tasks/{task_id}", "Id": task_id, "TaskState": state, "TaskStatus": "OK"}
    if state == "Running":
        return _json(task, 202, {"Location": _path(request)})
    return _json(task)


async def post_session(request: web.Request) -> web.Response:
    bmc, creds = _bmc(request), await _body(request) or {}
    if bmc.faults.sessions_disabled:
        raise _missing(request)
    token, location = bmc.open_session(str(creds.get("UserName", "")), str(creds.get("Password", "")))
    return _json({"@odata.id": location, "Id": location.rsplit("/", 1)[-1], "UserName": bmc.username},
                 201, {"X-Auth-Token": token, "Location": location})


async def post_reset(request: web.Request) -> web.Response:
    body = await _body(request) or {}
    await _bmc(request).reset(str(body.get("ResetType", "")))
    return web.Response(status=204)


async def post_import(request: web.Request) -> web.Response:
    bmc, body = _bmc(request), await _body(request) or {}
    if not bmc.personality.dell_scp_import:
        raise _missing(request)
    return web.Response(status=202, headers={"Location": bmc.import_system_configuration(body)})


async def post_media_action(request: web.Request) -> web.Response:
    bmc, body = _bmc(request), await _body(request)
    slot_id, action = request.match_info["slot"], request.match_info["action"]
    if not bmc.slot(slot_id).spec.actions:
        raise _missing(request)
    if action == "VirtualMedia.InsertMedia":
        monitor = await bmc.insert(slot_id, body or {})
        if monitor:
            return _json({"TaskState": "Running"}, 202, {"Location": monitor})
        return web.Response(status=204)
    if action == "VirtualMedia.EjectMedia":
        bmc.eject(slot_id, has_body=body is not None)
        return web.Response(status=204)
    raise _missing(request)


async def post_missing(request: web.Request) -> web.Response:
    await _body(request)  # a body that is not JSON is refused first, wherever it is sent
    raise _missing(request)


async def patch_system(request: web.Request) -> web.Response:
    bmc, body = _bmc(request), await _body(request) or {}
    bmc.check_if_match("system", request.headers.get("If-Match"))
    if isinstance(body.get("Boot"), dict):
        bmc.patch_boot(body["Boot"])
    return web.Response(status=204)


async def patch_settings(request: web.Request) -> web.Response:
    bmc, body = _bmc(request), await _body(request) or {}
    if not bmc.personality.boot_in_settings:
        raise _not_patchable(request)
    bmc.check_if_match("settings", request.headers.get("If-Match"))
    if isinstance(body.get("Boot"), dict):
        bmc.patch_boot(body["Boot"], via_settings=True)
    return web.Response(status=204)


async def patch_slot(request: web.Request) -> web.Response:
    bmc, body, slot_id = _bmc(request), await _body(request) or {}, request.match_info["slot"]
    if not bmc.slot(slot_id).spec.patch_insert:
        raise Refusal(405, "Base.1.8.OperationNotAllowed", "PATCH is not allowed here", {"Allow": _allow(bmc, slot_id)})
    bmc.check_if_match(slot_id, request.headers.get("If-Match"))
    if body.get("Image") and body.get("Inserted", True):
        await bmc.insert(slot_id, body, by_patch=True)
    else:
        bmc.eject(slot_id, has_body=True, by_patch=True)
    return web.Response(status=204)


def _not_patchable(request: web.Request) -> Refusal:
    return Refusal(405, "Base.1.8.OperationNotAllowed", f"PATCH {_path(request)} is not allowed")


async def patch_other(request: web.Request) -> web.Response:
    await _body(request)
    raise _not_patchable(request)


async def get_missing(request: web.Request) -> web.Response:
    raise _missing(request)


async def delete_session(request: web.Request) -> web.Response:
    _bmc(request).close_session(request.match_info["sid"])
    return web.Response(status=204)


# -- routes ------------------------------------------------------------------------------------------

SLASH = "{_slash:/*}"  # as a BMC does, a resource answers with or without trailing slashes


def build_app(bmc: LabBmc) -> web.Application:
    """This BMC's Redfish tree: its personality decides where its System, Manager and media live."""
    app = web.Application(middlewares=[faults_and_auth])
    app[BMC_KEY] = bmc
    system, manager, media = bmc.system_path, bmc.manager_path, bmc.media_path
    sessions, nics, tasks = f"{ROOT}/SessionService/Sessions", f"{system}/EthernetInterfaces", f"{ROOT}/TaskService"
    gets: dict[str, Handler] = {
        ROOT: _json_handler(service_root),
        f"{ROOT}/Systems": _json_handler(lambda b: _collection(
            f"{ROOT}/Systems", [b.system_path, *(f"{ROOT}/Systems/{i}" for i in b.other_systems)])),
        f"{ROOT}/Managers": _json_handler(lambda b: _collection(f"{ROOT}/Managers", [b.manager_path])),
        system: get_system,
        bmc.settings_path: get_settings,
        manager: _json_handler(manager_body),
        f"{ROOT}/SessionService": _json_handler(
            lambda b: {"@odata.id": f"{ROOT}/SessionService", "Sessions": {"@odata.id": sessions}}),
        sessions: _json_handler(lambda b: _collection(sessions, [f"{sessions}/{sid}" for sid in b.sessions.values()])),
        nics: _json_handler(lambda b: _collection(nics, [f"{nics}/NIC.{n + 1}" for n in range(len(b.machine.macs))])),
        f"{nics}/{{nic}}": get_nic,
        media: _json_handler(lambda b: _collection(media, [f"{media}/{s.id}" for s in b.personality.slots])),
        f"{media}/{{slot}}": get_slot,
        f"{tasks}/Tasks/{{task}}": get_dell_job,
        f"{tasks}/TaskMonitors/{{task}}": get_task_monitor,
        f"{ROOT}/Systems/{{sid}}": get_other_system,  # after the BMC's own system: that route wins
    }
    posts: dict[str, Handler] = {
        sessions: post_session,
        f"{system}/Actions/ComputerSystem.Reset": post_reset,
        bmc.import_path: post_import,
        f"{media}/{{slot}}/Actions/{{action}}": post_media_action,
    }
    patches: dict[str, Handler] = {
        system: patch_system, bmc.settings_path: patch_settings, f"{media}/{{slot}}": patch_slot,
    }
    for path, (get, patch) in secure_boot_routes(bmc).items():
        gets[path], patches[path] = get, patch
    app.router.add_delete(f"{sessions}/{{sid}}", delete_session)
    for add, routes, missing in ((app.router.add_get, gets, get_missing), (app.router.add_post, posts, post_missing),
                                 (app.router.add_patch, patches, patch_other)):
        for path, handler in routes.items():
            add(path + SLASH, handler)
        add("/{tail:.*}", missing)  # anything else: a Redfish error body, as a BMC answers
    return app
