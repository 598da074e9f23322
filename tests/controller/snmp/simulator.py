"""Running snmpsim on loopback, for the SNMP tests and bench/snmp_poll.py.

snmpsim picks a data file by community alone here: snmpsim 1.2.2 selects by receiving endpoint
only in a method pysnmp 7 no longer calls, so every endpoint of one process answers a community with
the same file. Distinct devices sharing one community (a school's subnet) are one process each.
As root, snmpsim must drop privileges to nobody, so its data and cache live in a directory nobody
can read, outside pytest's private tmp.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

SNMPSIM = Path(os.environ.get("SNMPSIM_PREFIX", "/opt/snmpsim")) / "bin" / "snmpsim-command-responder"


@contextmanager
def serving(files: Mapping[str, Path], endpoints: Sequence[str], ready: Callable[[], bool],
            extra: Sequence[str] = (), startup_seconds: float = 60) -> Iterator[Path]:
    """snmpsim serving ``files`` (data-dir-relative name → recording) on ``endpoints`` (address:port)
    until the block ends; yields its log. ``ready`` is asked until it answers True."""
    root = Path(tempfile.mkdtemp(prefix="caretaker-snmpsim-"))
    process = None
    log = root / "snmpsim.log"
    try:
        data, cache = root / "data", root / "cache"
        cache.mkdir()
        for name, source in files.items():
            (data / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, data / name)
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        args = [str(SNMPSIM), f"--data-dir={data}", f"--cache-dir={cache}",
                *(f"--agent-udpv4-endpoint={e}" for e in endpoints), *extra]
        if os.geteuid() == 0:
            shutil.chown(cache, "nobody")
            args += ["--process-user=nobody", "--process-group=nogroup"]
        process = subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + startup_seconds
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"snmpsim did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield log
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(root, ignore_errors=True)
