"""An operating system as a person names it, and when its security updates end: one function each.

Agents report the OS as the platform gives it ("Microsoft Windows 10 Education 10.0.22631": Windows 11
still calls itself 10 in WMI's caption; "macOS 14.4.1 (23E224)" from sw_vers, or a bare Darwin kernel
version). ``describe`` gives the marketing name with the build kept ("Windows 11 Education, build
22631"); ``support_end`` looks the build and edition group up in data/os_support.yaml, with its source.
A date in the device's register entry (a Chromebook's auto-update expiry from the Google Admin import,
or one a person typed) always wins over the shipped data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

import yaml

DATA = Path(__file__).with_name("data") / "os_support.yaml"
WINDOWS_11_FIRST_BUILD = 22000
_WINDOWS = re.compile(r"Windows (?:(\d+)\s+)?(.*?)\s*(\d+)\.(\d+)\.(\d+)\s*$")
_MACOS = re.compile(r"(?:macOS|Mac OS X)\s+(\d+)(?:\.(\d+))?")
_DARWIN = re.compile(r"^\s*(\d+)\.\d+")
ENTERPRISE_EDITIONS = ("enterprise", "education")  # IoT Enterprise too; "Pro Education" is not one


@dataclass(frozen=True)
class OsName:
    family: str  # "Windows 11", "macOS 14", "Linux", "Windows Server"
    edition: str  # "Education", "Pro", "" when not told
    build: int | None  # Windows build, None elsewhere
    text: str  # what a person reads


@dataclass(frozen=True)
class SupportEnd:
    ends: date
    what: str  # "Windows 10 22H2 (Education)", "macOS 13 Ventura"
    source: str
    esu: bool = False  # the date is the Extended Security Updates date


@dataclass(frozen=True)
class _Windows:
    build: int
    name: str
    ends: dict[str, date]
    source: str
    esu_until: date | None
    esu_source: str


@dataclass(frozen=True)
class _Mac:
    major: int
    darwin: int
    name: str
    ends: date | None


@cache
def _data() -> tuple[dict[int, _Windows], dict[int, _Mac], str]:
    raw = yaml.safe_load(DATA.read_text())
    windows = {e["build"]: _Windows(e["build"], e["name"], dict(e["ends"]), e["source"],
                                    (e.get("esu") or {}).get("until"), (e.get("esu") or {}).get("source", ""))
               for e in raw["windows"]}
    macs = {e["major"]: _Mac(e["major"], e["darwin"], e["name"], e.get("ends")) for e in raw["macos"]}
    return windows, macs, raw["macos_source"]


def describe(os_name: str | None, os_version: str | None) -> OsName:
    """The marketing name of what an agent reported (Windows build 22000 and later is Windows 11; Darwin 23
    is macOS 14), the build kept for Windows."""
    name, version = (os_name or "").strip(), (os_version or "").strip()
    if name == "Windows" or version.startswith("Microsoft Windows"):
        found = _WINDOWS.search(version)
        if found is None:
            return OsName("Windows", "", None, " ".join(p for p in (name, version) if p) or "Windows")
        major, edition, build = found.group(1), found.group(2).strip(), int(found.group(5))
        if edition.startswith("Server") or (major is None and "Server" in version):
            return OsName("Windows Server", edition, build, f"Windows {edition}, build {build}".replace("  ", " "))
        family = "Windows 11" if build >= WINDOWS_11_FIRST_BUILD else f"Windows {major or '10'}"
        return OsName(family, edition, build, f"{family} {edition}, build {build}".replace(" ,", ","))
    if name == "Darwin" or version.startswith(("macOS", "Mac OS X")):
        if found := _MACOS.search(version):
            major = int(found.group(1))
            if major == 10 and found.group(2):  # Mac OS X 10.15 is macOS 10.15
                return OsName(f"macOS 10.{found.group(2)}", "", None, version)
            return OsName(f"macOS {major}", "", None, version)
        if found := _DARWIN.search(version):
            darwin = int(found.group(1))
            major = next((m.major for m in _data()[1].values() if m.darwin == darwin), darwin - 9 if darwin >= 20
                         else None)
            if major is not None:
                return OsName(f"macOS {major}", "", None, f"macOS {major} (Darwin {darwin})")
        return OsName("macOS", "", None, version or "macOS")
    return OsName(name, "", None, " ".join(p for p in (name, version) if p))


def support_end(os_name: str | None, os_version: str | None, esu: bool = False) -> SupportEnd | None:
    """When the reported OS stops getting security updates (its ESU date when ``esu``), or None when the
    shipped data does not know it (Linux distributions, Windows Server, a release not listed)."""
    seen = describe(os_name, os_version)
    windows, macs, mac_source = _data()
    if seen.build is not None and seen.family.startswith("Windows ") and seen.family != "Windows Server":
        entry = windows.get(seen.build)
        if entry is None:
            return None
        group = "enterprise" if seen.edition.lower() in ENTERPRISE_EDITIONS or seen.edition.lower().startswith(
            "iot enterprise") else "consumer"
        what = f"{entry.name} ({seen.edition or group})"
        if esu and entry.esu_until is not None:
            return SupportEnd(entry.esu_until, f"{what} with Extended Security Updates", entry.esu_source, True)
        return SupportEnd(entry.ends[group], what, entry.source)
    if seen.family.startswith("macOS ") and seen.family[6:].isdigit():
        entry_mac = macs.get(int(seen.family[6:]))
        if entry_mac is not None and entry_mac.ends is not None:
            return SupportEnd(entry_mac.ends, entry_mac.name, mac_source)
    return None
