"""``caretaker-agent``: run (enrol once, then report every interval), once (one report, then exit),
collect (print the report that would be sent, touching nothing) and session-helper (run in a user's
session for the service; agent.entry starts it without this module's imports).

argparse rather than typer, to keep the agent's memory small. Exit codes: 0 done; 1 the controller or
this machine let us down (the reason is one line on stderr, and any report stays spooled); 2 the
command line cannot work (no controller, nothing to enrol with, an unreadable CA file).
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from agent import credentials, platform
from agent.client import Client, ClientError
from agent.config import AgentConfig
from agent.credentials import Credentials, CredentialsError
from agent.enforcer import enforcer_for
from agent.entry import HELPER, helper_options
from agent.labels import LabelsError
from agent.protocol import MAX_BATCH_REPORTS, MAX_INTERVAL_SECONDS, ProtocolError, to_wire
from agent.runner import ENFORCE_EVERY_SECONDS, LOG, DeliveryFailed, Runner
from agent.sampler import Sampler
from agent.session import desk as sessions
from agent.spool import Spool

EXIT_FAILED = 1
EXIT_USAGE = 2
# once and collect measure this long before reporting: over the few milliseconds after start-up, CPU
# load says more about Python starting than about the machine.
SAMPLE_SECONDS = 1.0
HELPER_EVERY_SECONDS = 30


class UsageError(Exception):
    """The command line cannot work as given."""


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == [HELPER]:
        from agent.session import helper

        return helper.main(given[1:])
    args = _parser().parse_args(given)
    logging.basicConfig(level=logging.INFO if args.command == "run" else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s caretaker-agent %(levelname)s %(message)s",
                        datefmt="%Y-%m-%dT%H:%M:%S%z")
    command: Callable[[AgentConfig], int] = COMMANDS[args.command]
    try:
        return command(_config(args))
    except (UsageError, LabelsError) as exc:
        print(f"caretaker-agent: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (DeliveryFailed, ClientError, CredentialsError, ProtocolError, OSError, sqlite3.Error) as exc:
        print(f"caretaker-agent: {exc}", file=sys.stderr)
        return EXIT_FAILED


def run(config: AgentConfig) -> int:
    """Report every interval until SIGTERM or SIGINT."""
    config, creds, client = _connect(config)
    address = config.session_address or platform.session_side().DEFAULT_ADDRESS
    # Helpers report every 30 s, or each interval if shorter: twice per look of the enforcer (every minute).
    desk = sessions.for_machine(config.root, address, min(HELPER_EVERY_SECONDS, ENFORCE_EVERY_SECONDS,
                                                          max(1, config.interval_seconds)))
    desk.start()
    sessions.install(desk)
    try:
        with Spool(config.spool_file, config.spool_max_bytes) as spool:
            runner = Runner(config, spool, Sampler(config), client, creds, enforcer=enforcer_for(config, desk))
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda _signum, _frame: runner.stop())
            LOG.info("reporting to %s every %d s; state in %s; session helpers at %s", config.controller,
                     runner.interval_seconds, config.state_dir, address)
            runner.run()
            LOG.info("stopped; %d report(s) spooled", spool.stats().pending)
    finally:
        desk.close()
    return 0


def once(config: AgentConfig) -> int:
    """Collect one report, deliver it with any backlog, and say whether it was acknowledged."""
    config, creds, client = _connect(config)
    with Spool(config.spool_file, config.spool_max_bytes) as spool:
        sampler = Sampler(config)
        time.sleep(SAMPLE_SECONDS)
        Runner(config, spool, sampler, client, creds).once()
    return 0


def collect(config: AgentConfig) -> int:
    """Print the report this machine would send, with its inventory, as JSON; send and store nothing.

    It carries seq 1 because only the spool hands out sequence numbers, and this must not touch it.
    """
    sampler = Sampler(config)
    time.sleep(SAMPLE_SECONDS)
    report = sampler.report(1)
    if report.inventory is None:
        report = replace(report, inventory=sampler.inventory())
    print(json.dumps(to_wire(report), indent=2))
    return 0


COMMANDS: dict[str, Callable[[AgentConfig], int]] = {"run": run, "once": once, "collect": collect}


def _connect(config: AgentConfig) -> tuple[AgentConfig, Credentials | None, Client]:
    """The controller to talk to, this agent's credentials there (None: enrol first) and a client."""
    stored = credentials.load(config.credentials_file)
    controller = (config.controller or (stored.controller if stored else "")).rstrip("/")
    if not controller:
        raise UsageError("no controller: pass --controller https://… and --token <enrolment token>")
    if stored is not None and stored.controller.rstrip("/") != controller:
        stored = None  # enrolled elsewhere: this controller needs a token of its own
    if stored is None and not config.token:
        raise UsageError(f"not enrolled at {controller}: pass --token <enrolment token>")
    try:
        client = Client(controller, config.ca_file)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:  # includes ssl.SSLError: a file that holds no certificate
        raise UsageError(f"cannot use --ca-file {config.ca_file}: {exc}") from None
    return replace(config, controller=controller), stored, client


def _token_from(path: Path) -> str:
    """The enrolment token kept in a file, so that it never shows in ``ps`` or a service definition."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UsageError(f"cannot read --token-file {path}: {exc.strerror or exc}") from None
    if not token:
        raise UsageError(f"--token-file {path} is empty")
    return token


def _config(args: argparse.Namespace) -> AgentConfig:
    token = _token_from(args.token_file) if args.token_file is not None else args.token
    given = {"controller": args.controller, "token": token, "state_dir": args.state_dir,
             "ca_file": args.ca_file, "interval_seconds": args.interval, "root": args.root,
             "batch_size": args.batch_size, "inventory_overlay": args.inventory_overlay,
             "labels_file": args.labels_file,
             "power_command_wrapper": tuple(shlex.split(args.power_command_wrapper))
             if args.power_command_wrapper else None, "session_address": args.session_address,
             "busy_cpu_percent": args.busy_cpu_percent, "idle_threshold_seconds": args.idle_threshold}
    return AgentConfig(**{name: value for name, value in given.items() if value is not None})


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--controller", metavar="URL", help="the controller, e.g. https://caretaker.school.example:8443")
    token = common.add_mutually_exclusive_group()
    token.add_argument("--token", metavar="T", help="site enrolment token; needed only to enrol")
    token.add_argument("--token-file", type=Path, metavar="FILE", help="read the site enrolment token from FILE")
    common.add_argument("--state-dir", type=Path, metavar="DIR",
                        help=f"credentials and spool (default {AgentConfig().state_dir})")
    common.add_argument("--ca-file", type=Path, metavar="PEM",
                        help="CA that signed the controller's certificate (default: the system trust store)")
    common.add_argument("--interval", type=_bounded(1, MAX_INTERVAL_SECONDS), metavar="SECONDS",
                        help="seconds between reports until the controller says otherwise")
    common.add_argument("--root", type=Path, metavar="DIR", help="where collectors read /sys and /proc (default /)")
    common.add_argument("--idle-threshold", type=_bounded(0, MAX_INTERVAL_SECONDS), metavar="SECONDS",
                        help=f"an interval with user input within this many seconds counts as active "
                             f"(default {AgentConfig().idle_threshold_seconds})")
    common.add_argument("--busy-cpu-percent", type=float, metavar="PERCENT",
                        help=f"an interval above this mean CPU load counts as active, not idle (default "
                             f"{AgentConfig().busy_cpu_percent:g}); a server that idles busy may need more")
    common.add_argument("--batch-size", type=_bounded(1, MAX_BATCH_REPORTS), metavar="N",
                        help="reports sent per request at most")
    common.add_argument("--power-command-wrapper", metavar="CMD",
                        help="run power commands through CMD (e.g. a site's logging script)")
    common.add_argument("--session-address", metavar="ADDRESS",
                        help="where session helpers reach the agent: a Unix socket path, or a named pipe on Windows "
                             "(default: this OS's, e.g. /run/caretaker-agent/session.sock)")
    common.add_argument("--labels-file", type=Path, metavar="TOML",
                        help='this machine\'s room and tags for the controller\'s policies, e.g. tags = ["signage"]')
    common.add_argument("--inventory-overlay", type=Path, metavar="JSON",
                        help="JSON object whose fields replace the collected inventory's (testing several agents "
                             "on one machine as separate devices on separate subnets)")
    parser = argparse.ArgumentParser(prog="caretaker-agent",
                                     description="Report this machine's inventory, activity and power to "
                                                 "a Caretaker controller.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("run", parents=[common], help="enrol if needed, then report every interval")
    commands.add_parser("once", parents=[common], help="collect and send one report, then exit")
    commands.add_parser("collect", parents=[common], help="print the report that would be sent, as JSON")
    commands.add_parser(HELPER, parents=[helper_options()],
                        help="run in a user's session: tell the agent its idle time, show its warnings")
    return parser
