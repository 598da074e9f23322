"""Bursar reports and audit packs laid out as documents: which tables and charts, in which order, with
which words. kWh, pounds and kgCO2e are rounded here by controller/formatting.py, the one rule every
surface writes them by, so the HTML, the PDF and the CSV show the same figures; a figure without a
tariff says so instead of £0.
"""

from __future__ import annotations

from decimal import Decimal

from controller import formatting as fmt
from controller.energy.policy_hours import DEFAULT_HOURS_TEXT
from controller.reports.audit import AuditPack, restated_tonnes
from controller.reports.bursar import PROVISIONAL_BELOW, BursarReport, WasteLine
from controller.reports.document import Chart, Document, Section, Table
from controller.reports.figures import Figures, MethodShare, stamp

FIGURE_COLUMNS = ("kWh", "£", "kgCO2e")
_STANDARDS = "https://www.gov.uk/guidance/meeting-digital-and-technology-standards-in-schools-and-colleges"
_DEVICES = f"{_STANDARDS}/laptop-desktop-and-tablet-standards"
# Each standards column: the DfE standard it evidences, where it is published, and what it cannot show.
STANDARDS_EVIDENCE = (
    ("Powered off automatically %", "Laptop, desktop and tablet standards: devices automatically power off "
     "when they do not need to be used out of hours", _DEVICES,
     "that devices are switched off by people when not in use in the day; devices no agent reports"),
    ("Register complete %", "Laptop, desktop and tablet standards: an asset register with serial, assigned to, "
     "location, purchase, warranty, support and review dates", _DEVICES,
     "that the entries are true: a filled field is not a checked one"),
    ("Disposal evidence complete %", "Laptop, desktop and tablet standards: dispose of devices under WEEE with "
     "certificates for disposal and destruction of data", _DEVICES,
     "that data was destroyed as the certificate says; repurposing checked before buying"),
    ("Past warranty", "Laptop, desktop and tablet standards: a 3-year warranty (2 years for tablets)", _DEVICES,
     "warranties not recorded in the register"),
    ("Past OS support", "Cyber security standards: supported software with security updates; devices bought "
     "with 5 years of support (3 for tablets)", f"{_STANDARDS}/cyber-security-standards",
     "Linux, Windows Server and releases the shipped data does not list (no date, not counted)"),
    ("Energy measured %", "Laptop, desktop and tablet standards: energy-efficient devices", _DEVICES,
     "energy efficiency of servers, switches (Energy-Efficient Ethernet) and kit without an agent or meter"),
)


def _figures(f: Figures) -> tuple[Decimal, Decimal | str, Decimal]:
    pounds = fmt.pounds(f.pounds)
    return (fmt.kwh(f.kwh), fmt.NO_TARIFF if pounds is None else pounds, fmt.kg(f.kg_co2e))


def _methods_table(methods: tuple[MethodShare, ...]) -> Table:
    return Table("methods", "Energy by method", ("Method", "What it means", "Measured", "kWh", "Share %"),
                 tuple((m.method, fmt.method_words(m.method), "yes" if m.measured else "no (estimated)",
                        fmt.kwh(m.kwh), fmt.share(m.share)) for m in methods),
                 total=("Total", "", "", fmt.kwh(sum(m.kwh for m in methods)), fmt.share(1.0 if methods else 0.0)))


def _waste_table(key: str, title: str, first: str, lines: tuple[WasteLine, ...]) -> Table:
    return Table(key, title, ("Site", first, "Devices", *FIGURE_COLUMNS),
                 tuple((w.site, w.name, w.devices, *_figures(w.waste)) for w in lines))


def bursar_document(report: BursarReport) -> Document:
    r = report
    summary = Table("summary", "Energy, cost and carbon", ("Figure", *FIGURE_COLUMNS), (
        ("Used", *_figures(r.used)),
        ("Saved by power management", *_figures(r.saved)),
        ("Baseline (without power management)", *_figures(r.baseline)),
        ("Idle out of hours (waste)", *_figures(r.wasted)),
        ("Kept on by policy out of hours (not waste)", *_figures(r.kept_on)),
    ))
    kept = Table("kept_on", "Kept on by policy", ("Site", "Device", "Room", "Why", *FIGURE_COLUMNS),
                 tuple((k.site, k.name, k.room, k.why, *_figures(k.kept_on)) for k in r.kept_on_devices),
                 note="Out of school hours while a policy keeps the device on on purpose (never-power-down, "
                      "maintenance and exam windows, keep-on overrides): not waste, and never recommended away.")
    sites = Table("sites", "By site", ("Site", "Devices", "kWh used", "£ used", "kgCO2e used", "kWh saved",
                                       "£ saved", "kgCO2e saved", "About the savings"),
                  tuple((s.site, s.devices, *_figures(s.used), *_figures(s.saved), s.savings_note) for s in r.sites),
                  total=("Total", sum(s.devices for s in r.sites), *_figures(r.used), *_figures(r.saved), ""))
    coverage = Table("coverage", "The data behind the figures", ("Site", "Reporting since", "School days so far",
                                                                  "School days with data"),
                     tuple((c.site, c.first_report.strftime("%-d %b %Y") if c.first_report else "not yet",
                            c.school_days, c.observed_school_days) for c in r.coverage),
                     note="A school day counts when any of the site's devices reported on it; figures for the "
                          "days without data are estimates (devices taken as off), so a partial record "
                          "understates both use and waste.")
    outcomes = Table("power_actions", "Wake and power-down outcomes", ("Action", "Outcome", "Count"),
                     tuple((o.kind, o.outcome, o.count) for o in r.outcomes),
                     total=("Total", "", sum(o.count for o in r.outcomes)))
    recommendations = Table("recommendations", "Recommendations and their annual value",
                            ("Action", "Site", "Room", "kWh a year", "£ a year", "kgCO2e a year", "Basis"),
                            tuple((x.action, x.site, x.room, *_figures(x.annual), x.basis)
                                  for x in r.recommendations))
    kinds = sorted({o.kind for o in r.outcomes})
    states = sorted({o.outcome for o in r.outcomes})
    counts = {(o.kind, o.outcome): o.count for o in r.outcomes}
    before_after = Table("before_after", "Before and after: out-of-hours kWh per school day", (
        "Site", "Observe-mode baseline", "Since power-down acted", "Change %", "Days compared"),
        tuple((b.site, _kwh_or_none(b.baseline_kwh_per_school_day), _kwh_or_none(b.after_kwh_per_school_day),
               None if b.change_percent is None else fmt.kwh(b.change_percent), b.note) for b in r.before_after))
    awake = r.insomnia
    held = Table("insomnia", "What kept idle machines awake out of hours",
                 ("Cause", "Held by", "Program", "Devices", "Idle hours", "kWh", "£", "kgCO2e"),
                 tuple((c.kind, c.what, c.process, c.devices, float(c.idle_hours), float(c.kwh),
                        None if c.cost_gbp is None else float(c.cost_gbp), float(c.kgco2e)) for c in awake.causes),
                 total=("Total", "", "", len(awake.devices), "", float(awake.kwh),
                        None if awake.cost_gbp is None else float(awake.cost_gbp), float(awake.kgco2e)),
                 note="Each wasted hour is put down to what the device's agent saw holding it awake in that hour, "
                      "in proportion to how long each held it: no_sleep_timer (the OS never sleeps on its own: "
                      "set one), a program's power request or assertion (system, display, execution, "
                      "away_mode, idle, network), nothing_held (the OS sleep timer is longer than the idle "
                      "stretch), not_reported (no reading: an older agent).")
    sections = [
        Section("Summary", paragraphs=(
            f"{r.scope} used {fmt.kwh_text(r.used.kwh)} ({fmt.money_text(r.used.pounds)}, "
            f"{fmt.kg_text(r.used.kg_co2e)}) in {r.period.describe()}. Power management saved "
            f"{fmt.kwh_text(r.saved.kwh)} ({fmt.money_text(r.saved.pounds)}, {fmt.kg_text(r.saved.kg_co2e)}) "
            "against the baseline.",
            *_savings_reason(r),
            f"{r.measured_share:.0%} of the energy was measured; the rest was estimated from power models.",
            *(f"Data: {c.sentence()}." for c in r.coverage if not c.complete),
            *r.calendar_notes,
        ), tables=(summary, coverage, before_after), charts=(Chart("Before and after", ("Baseline", "Actual"),
                                              (("kWh", (r.baseline.kwh, r.used.kwh)),), "kWh"),)),
        Section("Sites", tables=(sites,), charts=(Chart(
            "Used and saved by site", tuple(s.site for s in r.sites),
            (("Used", tuple(s.used.kwh for s in r.sites)), ("Saved", tuple(s.saved.kwh for s in r.sites))),
            "kWh", stacked=True),)),
        Section("Measured or estimated", tables=(_methods_table(r.methods),), charts=(Chart(
            "Energy by method", tuple(m.method for m in r.methods), (("kWh", tuple(m.kwh for m in r.methods)),),
            "kWh", horizontal=True),) if r.methods else ()),
        Section("Out-of-hours waste", paragraphs=(
            "Energy drawn by idle machines outside school hours: what automatic power-down removes. What a "
            "policy keeps on on purpose is listed apart and is not waste.",),
            tables=(_waste_table("waste_rooms", "Rooms wasting most out of hours", "Room", r.top_rooms),
                    _waste_table("waste_devices", "Devices wasting most out of hours", "Device", r.top_devices),
                    kept),
            charts=(Chart("Out-of-hours waste by room", tuple(f"{w.name} ({w.site})" for w in r.top_rooms),
                          (("kWh", tuple(w.waste.kwh for w in r.top_rooms)),), "kWh", horizontal=True),)
            if r.top_rooms else ()),
        Section("Machines that would not sleep", paragraphs=(
            f"{fmt.kwh_text(float(awake.kwh))} ({fmt.money_text(awake.cost_gbp)}) of the out-of-hours waste was "
            f"drawn by {len(awake.devices)} idle device(s) that stayed awake; by cause below.",),
            tables=(held,)),
        Section("Wake and power-down", tables=(outcomes,), charts=(Chart(
            "Outcomes by action", tuple(kinds),
            tuple((state, tuple(float(counts.get((k, state), 0)) for k in kinds)) for state in states),
            "actions", stacked=True),) if r.outcomes else ()),
        Section("What to do next", bullets=tuple(x.sentence() for x in r.recommendations) or (
            "No room wasted energy out of hours in this period.",), tables=(recommendations,)),
        Section("Basis", paragraphs=(
            f"Cost at each site's tariff ({r.tariffs})"
            + (f"; {r.unpriced_kwh:,.1f} kWh fell in hours no tariff covers and is not priced." if r.unpriced_kwh
               else ".")
            + f" Carbon is location-based ({r.factor.source}), each hour at its own year's factor; "
              f"{r.factor.year}, which holds most of the energy, uses {r.factor.kg_per_kwh} kgCO2e/kWh.",
            "Saved energy is claimed per power-down: what the device would have drawn idle (its own measured "
            "idle watts, else the power catalogue's) from the action until it was next needed, for the time it "
            "really was asleep or off, less what it drew; a machine switched back on early saves nothing from "
            "then. The baseline is what was used plus what was saved."
            + (f" {len(r.unclaimed)} power-down(s) claimed nothing: {'; '.join(r.unclaimed[:3])}."
               if r.unclaimed else ""),
            f"School hours are those of each device's power policy and school calendar; devices no policy "
            f"powers down are taken as open {DEFAULT_HOURS_TEXT}.",
            "Annual values: waste on school days ÷ school days observed (days the site's devices reported) × "
            "school days in the academic year (by the term calendar where it covers the year, else 195), plus "
            "waste on other days ÷ other days observed × the year's other days; priced at the average price of "
            f"that waste; power-down's own sleep draw is not deducted. Below {PROVISIONAL_BELOW} school days "
            "observed an estimate is provisional.",
        )),
    ]
    return Document("bursar", f"Energy report: {r.scope}", r.period.describe(), stamp(r.generated_at),
                    tuple(sections))


def _kwh_or_none(value: float | None) -> Decimal | None:
    return None if value is None else fmt.kwh(value)


def _savings_reason(r: BursarReport) -> tuple[str, ...]:
    """Why nothing was saved, where nothing was: the policies only observed, or nothing was powered down."""
    if r.saved.kwh > 0:
        return ()
    if r.would_have_saved is not None:
        return (f"No savings yet: the policy is in observe mode, recording what it would do; had it acted, it "
                f"would have saved {fmt.kwh_text(r.would_have_saved.kwh)} "
                f"({fmt.money_text(r.would_have_saved.pounds)}, {fmt.kg_text(r.would_have_saved.kg_co2e)}).",)
    return ("No savings yet: no policy powered a device down in this period.",)


def audit_document(pack: AuditPack) -> Document:
    p = pack
    secr = Table("secr", "Streamlined energy and carbon reporting: electricity", (
        "Site", "Pupils", "Devices", "kWh", "tCO2e", "kWh per pupil", "kgCO2e per pupil", "kWh per device",
        "kWh prior year", "tCO2e prior year restated"),
        tuple((s.site, s.pupils, s.devices, fmt.kwh(s.kwh), s.t_co2e, s.kwh_per_pupil, s.kg_per_pupil,
               s.kwh_per_device, fmt.kwh(s.prior_kwh), s.prior_t_co2e_restated) for s in p.secr),
        total=("Total", sum(s.pupils or 0 for s in p.secr), sum(s.devices for s in p.secr), fmt.kwh(p.used.kwh),
               p.used.kg_co2e / 1000, None, None, None, fmt.kwh(p.prior_kwh),
               restated_tonnes(p.prior_kwh, p.factor)),
        note=f"Prior year: {p.prior.describe()}. "
             f"Factor {p.factor.kg_per_kwh} kgCO2e/kWh for {p.factor.year} (published for {p.factor.factor_year}; "
             f"{p.factor.source}). {p.prior.label} as first reported, at its own factors: "
             f"{p.prior_kg_as_reported / 1000:,.3f} tCO2e.")
    standards = Table("standards", "DfE digital and technology standards", (
        "Site", "Devices", "Powered off automatically %", "Register complete %", "Disposal evidence complete %",
        "Past warranty", "Past OS support", "Energy measured %"),
        tuple((s.site, s.devices, _pct(s.enforcing_share), _pct(s.register.completeness),
               _pct(s.register.disposal_completeness), s.register.past_warranty, s.register.past_os_support,
               s.measured_share * 100) for s in p.standards),
        note="Powered off automatically: devices whose winning power policy acts (not observe). Register: the DfE "
             "fields filled for devices in service. Disposal evidence: sanitisation certificate and waste transfer "
             "note fields recorded for devices leaving or gone. Energy measured: share of kWh metered or measured.")
    evidence = Table("standards_basis", "What each column evidences", (
        "Column", "DfE digital and technology standard", "GOV.UK", "What it cannot evidence"),
        tuple(STANDARDS_EVIDENCE))
    use = p.utilisation
    value = Table("value", "ICT value for money", (
        "Site", "Device-years", "kWh per device-year", "£ per device-year", "Hours in use per school week",
        "Devices to redeploy"),
        tuple((v.site, v.device_years, v.kwh_per_device_year, v.pounds_per_device_year, v.hours_per_week,
               v.underused) for v in p.value),
        note="In use: the time a device's agent reported it active (input, or a busy processor), per school week "
             "of the period (in-use hours ÷ school days × 5), by each site's term calendar. Servers are right-sized "
             "below instead.")
    ranked = ("Devices", "Mean hours per school week", f"Under {use.under_hours:g} h")
    rooms = Table("rooms", "Rooms ranked by use", ("Rank", "Room", *ranked),
                  tuple((g.rank, g.name, g.devices, g.hours_per_week, g.under) for g in use.rooms))
    classes = Table("classes", "Device classes ranked by use", ("Rank", "Class", *ranked),
                    tuple((g.rank, g.name, g.devices, g.hours_per_week, g.under) for g in use.classes))
    underused = Table("underused", f"Devices to redeploy (in use under {use.under_hours:g} h a school week)", (
        "Site", "Device", "Room", "Class", "Hours per school week", "Embodied kgCO2e a new one would cost"),
        tuple((r.site, r.hostname, r.room, r.device_class, r.hours_per_week, r.embodied_kg_co2e)
              for r in use.redeploy),
        total=("Total", "", "", "", "", use.embodied_saved_kg),
        note="Redeploying a device where one is needed saves buying new: the embodied carbon shown is the device's "
             "model figure where its maker published one, else its class's (caretaker lifecycle embodied).")
    servers = Table("servers", "Servers: use and energy", (
        "Site", "Server", "CPU mean %", "CPU 95th percentile %", "Memory mean %", "Memory 95th percentile %",
        "Mean W", "kWh", "£", "Consolidation candidate"),
        tuple((s.site, s.hostname, s.cpu_mean, s.cpu_p95, s.memory_mean, s.memory_p95, s.mean_watts, s.kwh,
               s.pounds, "yes" if s.candidate else "no") for s in p.servers.servers),
        note=f"{p.servers.start:%d %b %Y} to {p.servers.end:%d %b %Y} (UTC), from the servers' agents' reports.")
    consolidation = Table("consolidation", "Virtualisation and consolidation", (
        "Site", "Servers", "Candidates", "Hosts needed", "kWh saved", "£ saved", "kgCO2e saved", "kWh a year",
        "£ a year"),
        tuple((c.site, c.servers, ", ".join(c.candidates), c.hosts, c.kwh_saved, c.pounds_saved, c.kg_co2e_saved,
               c.kwh_saved_per_year, c.pounds_saved_per_year) for c in p.servers.consolidations),
        note=f"Assumptions: {p.servers.assumptions}.")
    refresh = Table("refresh", "Refresh forecast", ("Year", "Devices due", "Embodied kgCO2e"),
                    tuple((str(r.year), r.devices, r.embodied_kg) for r in p.refresh),
                    total=("Total", sum(r.devices for r in p.refresh), sum(r.embodied_kg for r in p.refresh)))
    changes = Table("policy_changes", "Policy changes", ("When (UTC)", "Who", "Action", "Policy", "What changed"),
                    tuple((c.at.strftime("%Y-%m-%d %H:%M"), c.actor, c.action, c.policy, c.what)
                          for c in p.policy_changes))
    sections = [
        Section("Electricity (SECR)", paragraphs=(
            f"{p.used.kwh:,.0f} kWh and {p.used.kg_co2e / 1000:,.3f} tCO2e (location-based) in {p.period.label}, "
            f"against {p.prior_kwh:,.0f} kWh in {p.prior.label} "
            f"({restated_tonnes(p.prior_kwh, p.factor):,.3f} tCO2e restated at this year's factor).",),
            tables=(secr, _methods_table(p.methods)),
            charts=(Chart("Electricity by site", tuple(s.site for s in p.secr),
                          ((p.prior.label, tuple(s.prior_kwh for s in p.secr)),
                           (p.period.label, tuple(s.kwh for s in p.secr))), "kWh"),)),
        Section("Methodology", paragraphs=(p.methodology,)),
        Section("Standards", tables=(standards, evidence)),
        Section("Value for money", tables=(value, rooms, classes, underused, refresh), charts=(Chart(
            "Refresh forecast: embodied carbon", tuple(str(r.year) for r in p.refresh),
            (("kgCO2e", tuple(r.embodied_kg for r in p.refresh)),), "kgCO2e"),) if p.refresh else ()),
        Section("Servers: right-sizing", tables=(servers, consolidation)),
        Section("Policy changes", paragraphs=() if p.policy_changes else ("No policy changed in the period.",),
                tables=(changes,)),
    ]
    return Document("audit", f"Audit pack: {p.trust}", p.period.describe(), stamp(p.generated_at), tuple(sections))


def _pct(share: float | None) -> float | None:
    return None if share is None else share * 100
