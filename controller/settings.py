"""The controller's one settings object (prefix ``CARETAKER_``); nothing else reads the environment.

Each setting comes from, in this order: what the command line gives, the environment (``CARETAKER_<NAME>``),
then the config file (``$CARETAKER_CONFIG``, else ``/etc/caretaker/caretaker.toml``: the Ansible role and
``./demo`` write it), so an operator's `caretaker` finds the controller's database without being told.
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from controller.errors import DomainError

DEFAULT_CONFIG = Path("/etc/caretaker/caretaker.toml")
DATABASE_FILE = "caretaker.db"


def config_path() -> Path:
    return Path(os.environ.get("CARETAKER_CONFIG") or DEFAULT_CONFIG)


class NoDatabase(LookupError, DomainError):
    """No database was named and none is where one is looked for; the message says where it looked."""


class ConfigFileError(ValueError, DomainError):
    """The config file is there but cannot be read or is not TOML."""


def read_config(path: Path) -> dict:
    """The config file's settings; none when there is no file."""
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigFileError(f"cannot read the config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"the config file {path} is not TOML: {exc}") from None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CARETAKER_", extra="ignore")

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, dotenv_settings, file_secret_settings,
                InitSettingsSource(settings_cls, init_kwargs=read_config(config_path())))

    data_dir: Path = Path("var")
    # Empty means embedded SQLite in data_dir; a school needs nothing else.
    database_url: str = ""
    # Agent reports are small (a few kB); anything near this limit is a mistake or an attack.
    max_body_bytes: int = 1024 * 1024
    # JSON nested deeper than this is refused before it is parsed (a report is 4 levels deep).
    max_json_depth: int = 32
    # While the database cannot answer, requests get 503 and this many seconds in Retry-After.
    retry_after_seconds: int = 30
    # FastAPI's /docs and /redoc fetch their viewer from a CDN (outside the console's content security
    # policy), so they are off unless turned on; /openapi.json is always served.
    api_docs: bool = False
    report_interval_seconds: int = 300
    # Agents' clocks drift; a report ending further in the future than this is refused.
    clock_skew_seconds: int = 600
    # Reports older than this are refused rather than rewriting history long since reported on.
    max_report_age_days: int = 400
    enrollment_token_days: int = 30
    # Group commit: how many agent batches one ingest transaction may take.
    ingest_group_size: int = 200
    # /metrics reads the estate from the database at most this often, however often it is scraped.
    metrics_cache_seconds: float = 15.0
    # The all-history counters (energy, carbon, cost, savings) scan every hourly bucket: reloaded in the
    # background at most this often, so scrapes never wait for them. 0: reloaded inline on every scrape.
    metrics_history_seconds: float = 300.0
    # Per-device series (power now) are off: 100,000 devices would be 100,000 series. When on, capped.
    metrics_per_device: bool = False
    metrics_per_device_limit: int = 2000
    # When set, /metrics wants "Authorization: Bearer <token>" (Prometheus: authorization.credentials_file).
    metrics_token: SecretStr | None = None
    agent_wheels_dir: Path | None = None  # wheels served at /api/v1/downloads/agent/simple/ (pip)
    # SNMP: registered kit is polled this often (0: never). Polling needs a credentials file (default
    # <data_dir>/snmp-credentials.yaml); the meter map (default <data_dir>/snmp-meters.yaml) is optional.
    snmp_poll_interval_seconds: int = 300
    snmp_credentials_file: Path | None = None
    snmp_meter_map_file: Path | None = None
    # Power policies (YAML) the controller compiles into agents' schedules; default <data_dir>/policies.
    policy_dir: Path | None = None
    # Safety: at most this many devices of one site start powering down in the same minute.
    power_downs_per_minute: int = 60
    schedule_hours: int = 48  # how far ahead each agent's schedule reaches (it enforces it offline)
    # Console sign-in: a session ends after this long unused, and in any case this long after sign-in.
    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    # Sign-in throttling (web/throttle.py): failures from one address before each further one doubles
    # its wait (up to the maximum); failures a minute from all addresses before every attempt is spaced;
    # passwords checked at once (argon2 is deliberately expensive: the rest of the CPU stays with ingest).
    signin_free_failures: int = 5
    signin_max_delay_seconds: float = 900.0
    signin_failures_per_minute: int = 120
    signin_hash_slots: int = 1
    # Wake-on-LAN. A wave releases at most this many magic packets per second per site (no inrush).
    wake_per_second: float = 20.0
    wake_port: int = 9
    wake_rewake_seconds: int = 900  # no second wake of a device within this long of the last one
    wake_confirm_seconds: int = 600  # a woken device must report within this long, else the wake is retried
    wake_attempts: int = 3
    # A teacher's wake button (power/staff.py): requests a staff user or token may make in an hour, and all
    # staff together for one site. Past either, 429 with Retry-After.
    staff_wakes_per_user_per_hour: int = 10
    staff_wakes_per_site_per_hour: int = 60
    # The controller's own subnets (CIDR); empty: read from its interfaces. A target on one is woken directly.
    wake_local_networks: list[str] = []
    # Subnets a router forwards directed broadcasts to: the fallback when no relay agent is on them.
    wake_directed_broadcast_networks: list[str] = []
    # Elected relays (a primary and a standby per subnet) report this often, so they pick wake orders up
    # promptly; one silent for an interval and a quarter is passed over for its standby (election.RelayTiming).
    relay_report_interval_seconds: int = 30
    # A device whose schedule powers it down within this long is not elected relay (it is about to go).
    relay_power_down_lookahead_seconds: int = 300
    wake_tick_seconds: float = 0.02  # how often the wake dispatcher looks for due wakes
    # How often the relays are elected again from recent reports. A relay's liveness is news once per relay
    # interval (above), and a silent one is passed over between elections (its last report is looked up
    # every tick); electing more often re-read every fresh device for nothing new, which at 10,000 devices
    # cost ~80 ms of CPU a time on every replica, stalling the ingest answers behind it (bench/README.md).
    relay_election_seconds: float = 30.0
    # Singleton jobs (one replica at a time, controller.jobs): how often each runs; 0 switches one off.
    scheduled_wakes_every_seconds: float = 30.0  # queue the wakes compiled schedules promise (power/scheduled.py)
    rollup_every_seconds: float = 900.0  # settled days into the daily rollup, and days late reports re-opened
    retention_every_seconds: float = 3600.0  # old reports (and hourly buckets) dropped
    partitions_every_seconds: float = 3600.0  # PostgreSQL: the report table's partitions made ahead
    # Retention: each report is kept this long (its energy stays in the buckets and the rollup), hourly
    # buckets this many years; the daily rollup is kept for ever.
    report_retention_days: int = 90
    hourly_retention_years: int = 7

    def report_age_limit_days(self) -> int:
        """The oldest report ingest takes: none it could not keep, or a dropped report could come back as new."""
        return min(self.max_report_age_days, self.report_retention_days)

    def resolved_policy_dir(self) -> Path:
        return self.policy_dir or self.data_dir / "policies"

    def resolved_database_url(self) -> str:
        """The database named (flag, environment or config file), else the SQLite file in the data directory.
        A data directory nobody named (./var) is used only when it already holds a database: a command run in
        the wrong place must not start an empty estate there. Named, it is made if need be (`serve`, the demo)."""
        if self.database_url:
            return self.database_url
        database = self.data_dir / DATABASE_FILE
        if "data_dir" not in self.model_fields_set and not database.exists():
            config = config_path()
            raise NoDatabase(
                f"no database found: no --database-url or --data-dir, no CARETAKER_DATABASE_URL or "
                f"CARETAKER_DATA_DIR, {config} {'names none' if config.exists() else 'does not exist'}, "
                f"and there is no {database.resolve()}")
        return f"sqlite:///{database.resolve()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
