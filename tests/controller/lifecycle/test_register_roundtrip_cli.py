"""The register CSV through the real `caretaker assets` commands: export → import → export gives the same bytes
and creates nothing, for devices with and without serials (the id column is what finds a serial-less device);
cells a spreadsheet would run as formulas are written after a quote, and read back as they were.

The CSV is written for this test (not a capture): two serial-less PCs, one with a serial, and cells carrying
the OWASP "CSV injection" payloads (=, +, -, @, tab, carriage return).
"""

from __future__ import annotations

import csv
import io
import subprocess
from pathlib import Path

from sqlmodel import Session, select

from controller.db import make_engine
from controller.register.models import ChangeRecord, Device
from tests.conftest import BIN

REGISTER = (
    "site,hostname,serial,room,tags,asset_tag,assigned_to,supplier,location\n"
    "Hill Primary,HILL-HALL-01,,Hall,signage;exam-room,,,,\n"
    "Hill Primary,HILL-HALL-02,,Hall,,,,,\n"
    'Hill Primary,=HYPERLINK("http://evil.example"),SN-1,ICT Suite,"=cmd|\' /C calc\'!A0;server",'
    'HILL-9,+44 113 496 0000,@SUM(1+1),"-2+3"\n'
    # A tab or CR at the start of a cell survives import only escaped (bare, it is trimmed like any whitespace).
    'Hill Primary,HILL-TAB,,"\'\tTab room",,,"\'\rCR office",\'quoted,\n'
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def caretaker(database_url: str, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([str(BIN / "caretaker"), *args, "--database-url", database_url], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result


def test_export_import_export_is_byte_identical_and_creates_nothing(database_url, tmp_path: Path):
    caretaker(database_url, "token", "create", "--site", "Hill Primary")
    (tmp_path / "register.csv").write_bytes(REGISTER.encode("utf-8"))
    assert caretaker(database_url, "assets", "import", str(tmp_path / "register.csv")).stdout.startswith(
        "4 created, 0 updated, 0 moved, 0 unchanged")

    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    caretaker(database_url, "assets", "export", str(first))
    assert caretaker(database_url, "assets", "import", str(first)).stdout.strip() == (
        "0 created, 0 updated, 0 moved, 4 unchanged")
    caretaker(database_url, "assets", "export", str(second))
    assert second.read_bytes() == first.read_bytes()

    rows = list(csv.DictReader(io.StringIO(first.read_bytes().decode("utf-8"))))
    assert [r["id"] for r in rows] == ["3", "1", "2", "4"]  # sorted by hostname: "=…" first
    cells = [cell for row in rows for cell in row.values()]
    assert not [c for c in cells if c.startswith(FORMULA_STARTS)]  # nothing a spreadsheet would run
    assert (rows[0]["hostname"], rows[0]["tags"], rows[0]["assigned_to"], rows[0]["supplier"],
            rows[0]["location"]) == ("'=HYPERLINK(\"http://evil.example\")", "'=cmd|' /C calc'!A0;server",
                                     "'+44 113 496 0000", "'@SUM(1+1)", "'-2+3")
    assert (rows[3]["room"], rows[3]["assigned_to"], rows[3]["supplier"]) == ("'\tTab room", "'\rCR office",
                                                                            "''quoted")

    engine = make_engine(database_url)
    with Session(engine) as session:
        devices = {d.id: d for d in session.exec(select(Device))}
        assert [(d.hostname, d.room, d.tags) for d in devices.values()] == [
            ("HILL-HALL-01", "Hall", ["signage", "exam-room"]), ("HILL-HALL-02", "Hall", None),
            ('=HYPERLINK("http://evil.example")', "ICT Suite", ["=cmd|' /C calc'!A0", "server"]),
            ("HILL-TAB", "\tTab room", None)]
    engine.dispose()

    # A network manager moves a serial-less PC in the spreadsheet: the id finds it, nothing is created.
    moved = first.read_bytes().decode("utf-8").replace("HILL-HALL-02,unknown,,,,Hall,,in_stock",
                                                       "HILL-HALL-02,unknown,,,,Library,library,in_stock")
    assert moved != first.read_bytes().decode("utf-8")
    (tmp_path / "moved.csv").write_bytes(moved.encode("utf-8"))
    assert caretaker(database_url, "assets", "import", str(tmp_path / "moved.csv")).stdout.strip() == (
        "0 created, 1 updated, 0 moved, 3 unchanged")
    engine = make_engine(database_url)
    with Session(engine) as session:
        hall = session.get(Device, 2)
        assert (hall.room, hall.tags) == ("Library", ["library"])
        placed = session.exec(select(ChangeRecord).where(ChangeRecord.action == "place",
                                                         ChangeRecord.object_id == "2")).all()
        assert [(c.before, c.after) for c in placed][-1] == (
            {"room": "Hall", "tags": None}, {"room": "Library", "tags": ["library"], "source": "register"})
    engine.dispose()
