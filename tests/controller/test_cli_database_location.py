"""Where the real `caretaker` process finds its database: --data-dir or --database-url, else the environment,
else the config file ($CARETAKER_CONFIG, else /etc/caretaker/caretaker.toml, as the Ansible role and the demo
write it), else ./var only if a database is already there. With none, one line says where it looked and
nothing is made. A refusal from the domain is one line on stderr with exit status 2, whatever the command."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import BIN


def run(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CARETAKER_")}
    return subprocess.run([str(BIN / "caretaker"), *args], capture_output=True, text=True, timeout=120, cwd=cwd,
                          env={**base, "CARETAKER_CONFIG": str(cwd / "absent.toml"), **env})


def test_with_no_database_anywhere_one_line_says_where_it_looked_and_nothing_is_made(tmp_path):
    for args in (["devices"], ["serve", "--port", "1"]):
        result = run(tmp_path, *args)
        assert (result.returncode, result.stderr) == (2, (
            "caretaker: error: no database found: no --database-url or --data-dir, no CARETAKER_DATABASE_URL or "
            f"CARETAKER_DATA_DIR, {tmp_path / 'absent.toml'} does not exist, and there is no "
            f"{tmp_path / 'var' / 'caretaker.db'}\n")), args
    assert not (tmp_path / "var").exists()


def test_the_config_file_names_the_database_and_the_environment_and_flags_come_first(tmp_path):
    """A data directory from the environment or a flag beats the config file's database URL."""
    for site, where in (("Config School", "configured"), ("Env School", "env"), ("Flag School", "flag")):
        made = run(tmp_path, "token", "create", "--site", site, "--data-dir", str(tmp_path / where))
        assert made.returncode == 0, made.stderr
    config = tmp_path / "caretaker.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path / "configured" / "caretaker.db"}"\n')

    def sites(*args: str, **env: str) -> list[str]:
        result = run(tmp_path, "site", "list", *args, CARETAKER_CONFIG=str(config), **env)
        assert result.returncode == 0, result.stderr
        return [line.split("  ")[0] for line in result.stdout.splitlines()[1:]]

    assert sites() == ["Config School"]
    (tmp_path / "broken.toml").write_text("data_dir = \n")
    broken = run(tmp_path, "site", "list", CARETAKER_CONFIG=str(tmp_path / "broken.toml"))
    assert (broken.returncode, broken.stderr) == (2, f"caretaker: error: the config file {tmp_path / 'broken.toml'} "
                                                     "is not TOML: Invalid value (at line 1, column 12)\n")
    assert sites(CARETAKER_DATA_DIR=str(tmp_path / "env")) == ["Env School"]
    assert sites("--data-dir", str(tmp_path / "flag"), CARETAKER_DATA_DIR=str(tmp_path / "env")) == ["Flag School"]


def test_a_database_already_in_var_is_found_without_being_named(tmp_path):
    assert run(tmp_path, "token", "create", "--site", "Var School", "--data-dir", "var").returncode == 0
    listed = run(tmp_path, "site", "list")
    assert listed.returncode == 0, listed.stderr
    assert "Var School" in listed.stdout

    refused = run(tmp_path, "site", "show", "Nowhere")  # a domain error no command catches itself
    assert (refused.returncode, refused.stdout, refused.stderr) == (
        2, "", "caretaker: error: no site called 'Nowhere'; sites are Var School\n")
