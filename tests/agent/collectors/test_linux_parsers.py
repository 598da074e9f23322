"""Pure parsers of Linux text files: os-release and cpuinfo, as distributions and boards write them."""

from __future__ import annotations

import pytest

from agent.platform import linux


@pytest.mark.parametrize(("text", "name"), [
    pytest.param('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n',
                 "Debian GNU/Linux 12 (bookworm)", id="Debian"),
    pytest.param("NAME=Fedora\nVERSION='39 (Workstation Edition)'\n"
                 "PRETTY_NAME='Fedora Linux 39 (Workstation Edition)'\n",
                 "Fedora Linux 39 (Workstation Edition)", id="single quotes"),
    pytest.param('NAME="Linux Mint"\nVERSION="21.3 (Virginia)"\n', "Linux Mint 21.3 (Virginia)",
                 id="no PRETTY_NAME"),
    pytest.param("# generated\nNAME=Alpine\nPRETTY_NAME=\"Alpine Linux v3.19\"\n", "Alpine Linux v3.19",
                 id="comment line"),
    pytest.param('PRETTY_NAME="Ubuntu \\"Noble\\" 24.04"\n', 'Ubuntu "Noble" 24.04', id="escaped quotes"),
    pytest.param("", "", id="missing file"),
])
def test_distribution_name_from_os_release(text: str, name: str) -> None:
    assert linux.parse_os_release(text) == name


@pytest.mark.parametrize(("text", "model"), [
    pytest.param("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD Ryzen 5 PRO 4650G with Radeon Graphics\n"
                 "processor\t: 1\nmodel name\t: AMD Ryzen 5 PRO 4650G with Radeon Graphics\n",
                 "AMD Ryzen 5 PRO 4650G with Radeon Graphics", id="x86"),
    pytest.param("processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU part\t: 0xd08\n\n"
                 "Hardware\t: BCM2835\nRevision\t: c03114\nSerial\t\t: 10000000a1b2c3d4\n"
                 "Model\t\t: Raspberry Pi 4 Model B Rev 1.4\n",
                 "Raspberry Pi 4 Model B Rev 1.4", id="Raspberry Pi"),
    pytest.param("processor\t: 0\nHardware\t: Qualcomm Technologies, Inc SDM845\n",
                 "Qualcomm Technologies, Inc SDM845", id="ARM with only Hardware"),
    pytest.param("processor\t: 0\n", "", id="nothing to go on"),
])
def test_processor_name_from_cpuinfo(text: str, model: str) -> None:
    assert linux.parse_cpuinfo(text) == model
