"""Agent wheels for installers, as a PEP 503 "simple" package index that pip reads directly.

A school's PCs often cannot reach PyPI, and the controller is the one host they all trust already, so
it serves the agent (and the wheels of its dependencies) from ``Settings.agent_wheels_dir``:
``pip install --index-url https://<controller>/api/v1/downloads/agent/simple/ caretaker``.
Only names found by listing that directory are ever opened: a requested file name is looked up among
them, never joined to a path, so no request can reach outside the directory.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from html import escape
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

from controller.api.deps import RuntimeDep

PREFIX = "/api/v1/downloads/agent"
router = APIRouter(prefix=PREFIX, tags=["downloads"])
# {distribution}-{version}(-{build})?-{python}-{abi}-{platform}.whl (PEP 427); the distribution has no "-".
WHEEL_NAME = re.compile(r"^(?P<project>[A-Za-z0-9][A-Za-z0-9_.]*)-[A-Za-z0-9_.+!]+(-[A-Za-z0-9_.]+){3,4}\.whl$")


@dataclass(frozen=True)
class Wheel:
    filename: str
    project: str  # normalised (PEP 503): what pip asks for
    sha256: str


def normalise(project: str) -> str:
    return re.sub(r"[-_.]+", "-", project).lower()


@lru_cache(maxsize=1024)
def _sha256(path: Path, _mtime_ns: int, _size: int) -> str:
    """Hashed once per file version: a whole estate installing at once asks for the index many times."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def wheels(directory: Path | None) -> dict[str, Wheel]:
    """The wheels on offer, by file name; none when no directory is configured or it is missing."""
    if directory is None or not directory.is_dir():
        return {}
    found = {}
    for path in sorted(directory.iterdir()):
        match = WHEEL_NAME.match(path.name)
        if match and path.is_file():
            stat = path.stat()
            found[path.name] = Wheel(path.name, normalise(match["project"]),
                                     _sha256(path, stat.st_mtime_ns, stat.st_size))
    return found


def _page(title: str, links: list[tuple[str, str]]) -> HTMLResponse:
    anchors = "\n".join(f'<a href="{escape(href)}">{escape(text)}</a><br>' for href, text in links)
    return HTMLResponse("<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.0\">"
                        f"<title>{escape(title)}</title></head><body>\n{anchors}\n</body></html>\n")


@router.get("/simple/", response_class=HTMLResponse, response_model=None)
def projects(runtime: RuntimeDep) -> HTMLResponse:
    names = sorted({wheel.project for wheel in wheels(runtime.settings.agent_wheels_dir).values()})
    return _page("Caretaker agent downloads", [(f"{quote(name)}/", name) for name in names])


@router.get("/simple/{project}/", response_class=HTMLResponse, response_model=None)
def project_files(project: str, runtime: RuntimeDep) -> HTMLResponse:
    offered = [w for w in wheels(runtime.settings.agent_wheels_dir).values() if w.project == normalise(project)]
    if not offered:
        raise HTTPException(status_code=404, detail=f"no wheels for {project}")
    return _page(f"Links for {normalise(project)}",
                 [(f"../../files/{quote(w.filename)}#sha256={w.sha256}", w.filename) for w in offered])


@router.get("/files/{filename}", response_class=FileResponse, response_model=None)
def download(filename: str, runtime: RuntimeDep) -> FileResponse:
    directory = runtime.settings.agent_wheels_dir
    if directory is None or filename not in wheels(directory):
        raise HTTPException(status_code=404, detail="no such wheel")
    return FileResponse(directory / filename, media_type="application/octet-stream", filename=filename)
