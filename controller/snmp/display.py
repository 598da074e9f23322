"""A poll as lines of text for a person at a terminal (``caretaker snmp poll``)."""

from __future__ import annotations

from controller.snmp.readings import DevicePoll, EnergyCounter, Supply, Unexplained


def describe(poll: DevicePoll) -> list[str]:
    where = f"{poll.address}:{poll.port}"
    if not poll.ok:
        return [f"{where}: {poll.error}"]
    i = poll.identity
    lines = [f"{where}: {poll.kind}, profile {poll.profile}, credential {poll.credential}"]
    if i is not None:
        lines.append(_pairs(("vendor", i.vendor), ("model", i.model), ("serial", i.serial),
                            ("firmware", i.firmware)) or "identity: nothing reported")
        if i.vendor_from:
            lines.append(f"  vendor from {i.vendor_from}")
    if len(poll.chassis) > 1:
        lines.append(f"{len(poll.chassis)} units, each an asset of its own:")
        lines += ["  " + _pairs(("unit", c.name or c.index), ("model", c.model), ("serial", c.serial or "not reported"),
                                ("firmware", c.firmware)) for c in poll.chassis]
    if poll.power is not None:
        p = poll.power
        lines.append("power: " + _pairs(("now", _num(p.watts, "W")), ("peak", _num(p.peak_watts, "W")),
                                        ("apparent", _num(p.apparent_va, "VA")), ("pf", _num(p.power_factor, "")),
                                        ("current", _num(p.current_amps, "A")), ("voltage", _num(p.voltage_volts, "V")),
                                        ("frequency", _num(p.frequency_hz, "Hz")), ("energy", _energy(p.energy))))
    for o in poll.outlets:
        state = {True: "on", False: "off", None: "?"}[o.powered]
        lines.append(" ".join(part for part in (
            f"  outlet {o.index}", o.name, f"[{state}]", _pairs(("now", _num(o.watts, "W")),
                                                           ("current", _num(o.current_amps, "A")),
                                                           ("energy", _energy(o.energy)))) if part))
    if poll.printer is not None:
        pr = poll.printer
        lines.append("printer: " + _pairs(("count", f"{pr.life_count} {pr.counter_unit or ''}".strip()
                                            if pr.life_count is not None else None), ("status", pr.status),
                                           ("alerts", ", ".join(pr.errors) or None)))
        lines += [f"  {s.description or s.index}: {_supply_level(s)}" for s in pr.supplies]
    if poll.poe is not None:
        lines.append("PoE: " + _pairs(("budget", _num(poll.poe.budget_watts, "W")),
                                      ("drawn", _num(poll.poe.consumption_watts, "W")),
                                      ("vendor MIB says", _num(poll.poe.vendor_consumption_watts, "W"))))
        if len(poll.poe.groups) > 1:
            lines += [f"  power source {g.index}: " + _pairs(("budget", _num(g.budget_watts, "W")),
                                                            ("drawn", _num(g.consumption_watts, "W")),
                                                            ("vendor MIB says", _num(g.vendor_consumption_watts, "W")))
                      for g in poll.poe.groups]
        for port in poll.poe.ports:
            lines.append(f"  port {port.index}: " + _pairs(("now", _num(port.watts, "W")),
                                                          ("delivering", _yes(port.delivering))))
    if poll.ups is not None:
        u = poll.ups
        lines.append("UPS: " + _pairs(("source", u.output_source), ("load", _num(u.load_percent, "%")),
                                      ("output", _num(u.output_watts, "W")),
                                      ("derived", _num(u.derived_watts, "W (load × rating, not metered)")),
                                      ("voltage", _num(u.output_voltage_volts, "V")),
                                      ("current", _num(u.output_current_amps, "A")),
                                      ("frequency", _num(u.output_frequency_hz, "Hz")),
                                      ("battery", _num(u.battery_percent, "%")),
                                      ("battery voltage", _num(u.battery_voltage_volts, "V")),
                                      ("battery temperature", _num(u.battery_temperature_celsius, "°C")),
                                      ("runtime", _num(u.runtime_seconds / 60 if u.runtime_seconds else None, "min"))))
        for out in u.outputs:
            lines.append(f"  output {out.index}: " + _pairs(("load", _num(out.load_percent, "%")),
                                                            ("now", _num(out.watts, "W")),
                                                            ("voltage", _num(out.voltage_volts, "V")),
                                                            ("current", _num(out.current_amps, "A"))))
    if poll.host is not None:
        h = poll.host
        lines.append("host: " + _pairs(("up", _num(h.uptime_seconds / 86400 if h.uptime_seconds else None, "days")),
                                       ("memory", _num(h.memory_bytes / 2**30 if h.memory_bytes else None, "GiB")),
                                       ("processors", h.processors)))
    lines += [f"note: {n}" for n in poll.notes]
    if poll.unexplained is not None:
        lines += unexplained(poll.unexplained)
    return lines


def unexplained(u: Unexplained) -> list[str]:
    """What no profile interpreted, last, for an operator to report."""
    head = ("not interpreted: " + _pairs(("kind guessed", u.kind_guessed), ("vendor", u.vendor or "unknown"),
                                         ("sysObjectID", u.sys_object_id or "none")))
    if not u.subtrees:
        return [head, "  every subtree it answered that Caretaker looks for was read"]
    return [head, *(f"  answered under {s.oid} ({s.name}), which no profile reads" for s in u.subtrees)]


def _supply_level(supply: Supply) -> str:
    if supply.percent is not None:
        return f"{supply.percent:g}%"
    if supply.state is not None:
        return supply.state
    if supply.level is not None:
        return f"{supply.level} (capacity {supply.capacity_state or 'not reported'})"
    return "not reported"


def _pairs(*pairs: tuple[str, object]) -> str:
    return ", ".join(f"{k} {v}" for k, v in pairs if v is not None)


def _num(value: float | None, unit: str) -> str | None:
    return None if value is None else f"{value:.6g} {unit}".rstrip()


def _energy(counter: EnergyCounter | None) -> str | None:
    if counter is None:
        return None
    since = f" since {counter.since}" if counter.since else ""
    return f"{counter.joules / 3.6e6:.6g} kWh{since}"


def _yes(value: bool | None) -> str | None:
    return None if value is None else ("yes" if value else "no")
