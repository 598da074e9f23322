"""The agent's settings: one frozen dataclass, filled from the command line (and later a config file).

Paths default to the platform's usual state directory; tests pass their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class AgentConfig:
    controller: str = ""  # https://controller.school.example:8443
    token: str = ""  # site enrollment token, used once
    state_dir: Path = field(default_factory=lambda: Path("/var/lib/caretaker-agent"))
    ca_file: Path | None = None  # the school's CA or the controller's own; None: system trust store
    interval_seconds: int = 300
    batch_size: int = 50
    spool_max_bytes: int = 8 * 1024 * 1024
    # A report whose interval saw user input within this many seconds, or busy CPU, is "active".
    idle_threshold_seconds: int = 600
    busy_cpu_percent: float = 20.0
    # Where collectors read /sys and /proc from; tests point it at fixture trees.
    root: Path = Path("/")
    power_models_file: Path | None = None  # overrides agent/power_models.json
    send_user_names: bool = False  # user names never leave the device unless the site says so
    inventory_overlay: Path | None = None  # JSON fields replacing the collected inventory's (see sampler)
    labels_file: Path | None = None  # this machine's room and tags (agent/labels.py), sent with its inventory
    # Every power command runs as [*wrapper, *argv] when set, e.g. a site's own audit script.
    power_command_wrapper: tuple[str, ...] = ()
    # Where session helpers reach the service: a Unix socket path, or a named pipe on Windows; "": the OS's default.
    session_address: str = ""

    @property
    def credentials_file(self) -> Path:
        return self.state_dir / "credentials.json"

    @property
    def power_state_file(self) -> Path:
        return self.state_dir / "power-schedule.json"

    @property
    def spool_file(self) -> Path:
        return self.state_dir / "spool.sqlite3"
