"""The playbook and roles as CI and a network manager's own tooling see them, before anything runs."""

from __future__ import annotations

import json

from tests.ansible.conftest import ANSIBLE_DIR, Ansible, unavailable


def test_site_playbook_and_example_inventory_pass_the_syntax_check(ansible: Ansible) -> None:
    result = ansible.run("ansible-playbook", "--syntax-check", "-i", "inventories/trust/hosts.yml", "site.yml")

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_school_in_the_example_inventory_has_its_site_name_subnets_and_token(ansible: Ansible) -> None:
    result = ansible.run("ansible-inventory", "-i", "inventories/trust/hosts.yml", "--list", "--export")

    assert result.returncode == 0, result.stderr
    groups = json.loads(result.stdout)
    schools = groups["caretaker_agents"]["children"]
    assert sorted(schools) == ["hillside_primary", "northgate_academy", "riverside_school"]
    names = set()
    for school in schools:
        site = groups[school]["vars"]
        names.add(site["caretaker_site_name"])
        assert site["caretaker_site_subnets"], school
        assert school in site["caretaker_site_token"], "each school's token comes from its own vault entry"
        assert groups[school]["hosts"], school
    assert len(names) == 3


def test_roles_and_playbook_pass_ansible_lint_with_the_production_profile(ansible: Ansible) -> None:
    if not (ansible.bin / "ansible-lint").exists():
        unavailable(f"ansible-lint is not installed beside {ansible.bin / 'ansible-playbook'}")

    result = ansible.run("ansible-lint", "--offline", "--profile", "production", "--nocolor", str(ANSIBLE_DIR))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Profile 'production' was required, and it passed" in result.stdout + result.stderr
