"""How long each BMC wait may last: per request, per step (retries), per read-back."""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.bmc.retry import RetryPolicy


@dataclass(frozen=True)
class BmcTimings:
    """Every wait has an end: per request, per step (retries), per read-back."""

    request_timeout: float = 30.0
    step: RetryPolicy = field(default_factory=RetryPolicy)
    power_deadline: float = 300.0
    media_deadline: float = 60.0
    task_deadline: float = 600.0
    poll_interval: float = 2.0
    # how long a task monitor the BMC just gave may answer 404 (NOTE(dell/idrac10): sushy retries 3 x 10 s)
    task_missing_grace: float = 30.0
    # NOTE(dell/idrac9 < 6.00, idrac8): the import refused for now (RAC0679, LC068) is sent again every
    # config_job_wait seconds (sushy: 15) for up to config_job_deadline (sushy: 35 tries, about 9 min;
    # pvcctl stays under the boot step's own deadline, 600 s by default)
    config_job_wait: float = 15.0
    config_job_deadline: float = 300.0
    # after a ForceRestart whose answer was lost: how long to look for a sign that the server restarted
    restart_confirm: float = 30.0
    # after the restart a Secure Boot change needs: how long SecureBootEnable may take to show it
    # (NOTE(dell/idrac9): a BIOS job run during POST; ironic waits up to 900 s, boot_mode_config_timeout)
    secure_boot_deadline: float = 600.0
