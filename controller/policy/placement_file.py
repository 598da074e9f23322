"""Placement rules as a policy-directory file: a top-level ``placement:`` list, validated like policies
(every mistake one line with file:line:column) and reloaded with them (policies/README.md, "Placement").

    placement:
      - name: Exam hall
        match: {hostnames: ["HALL-*"]}
        room: Hall
        tags: [exam-room]
"""

from __future__ import annotations

import ipaddress
import re

from agent.protocol import DeviceClass
from controller.policy.yamlnodes import Node, Problems
from controller.register.placement import PlacementRule

RULE_KEYS = ("name", "match", "room", "tags")
MATCH_KEYS = ("hostnames", "hostname_regex", "subnets", "device_classes", "sites", "agent_tags")


def is_placement(document: Node) -> bool:
    return document.is_mapping and any(key.value == "placement" for key, _ in document.raw.value)


def read_placement(document: Node, problems: Problems) -> list[PlacementRule]:
    fields = problems.attempt(lambda: document.mapping(("placement",), required=("placement",)))
    if fields is None:
        return []
    items = problems.attempt(lambda: list(fields["placement"].items())) or []
    return [rule for item in items if (rule := problems.attempt(lambda item=item: _rule(item))) is not None]


def _rule(node: Node) -> PlacementRule:
    fields = node.mapping(RULE_KEYS, required=("match",))
    if "room" not in fields and "tags" not in fields:
        raise node.invalid("the rule places nothing: give it a room, tags or both")
    match = fields["match"].mapping(MATCH_KEYS)
    if not match:
        raise fields["match"].invalid(f"match at least one of {', '.join(MATCH_KEYS)}: an empty match would place "
                                      "every device")
    regex = _regex(match["hostname_regex"]) if "hostname_regex" in match else None
    room = fields["room"].text() if "room" in fields else None
    if room is not None:
        for reference in re.findall(r"\{(\d+)\}", room):
            if regex is None or int(reference) > regex.groups:
                raise fields["room"].invalid(f"{{{reference}}} names a group the hostname_regex does not have")
    classes = match["device_classes"].texts() if "device_classes" in match else ()
    for value in classes:
        if value not in set(DeviceClass):
            raise match["device_classes"].invalid(
                f"{value!r} is not a device class ({', '.join(c.value for c in DeviceClass)})")
    return PlacementRule(
        name=fields["name"].text() if "name" in fields else f"rule at line {node.line}",
        room=room, tags=fields["tags"].texts() if "tags" in fields else (),
        hostnames=match["hostnames"].texts() if "hostnames" in match else (),
        hostname_regex=regex,
        subnets=tuple(_subnet(item) for item in match["subnets"].items()) if "subnets" in match else (),
        device_classes=classes, sites=match["sites"].texts() if "sites" in match else (),
        agent_tags=match["agent_tags"].texts() if "agent_tags" in match else (), source=node.source)


def _regex(node: Node) -> re.Pattern:
    text = node.text()
    try:
        return re.compile(text, re.IGNORECASE)
    except re.error as exc:
        raise node.invalid(f"{text!r} is not a regular expression: {exc}") from None


def _subnet(node: Node) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    text = node.text()
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise node.invalid(f"{text!r} is not a subnet (e.g. 10.20.0.0/16 or 2001:db8:20::/48)") from None
