"""Every table, imported in one place so Alembic, the migration test and ``SQLModel.metadata`` see them all.

Domain packages keep their own ``models.py`` beside the code that queries it; each adds itself here.
"""

from controller.energy import models as energy
from controller.estate import models as estate
from controller.jobs import models as jobs
from controller.lifecycle import models as lifecycle
from controller.policy import models as policy
from controller.power import models as power
from controller.register import models as register
from controller.snmp import models as snmp
from controller.web import models as web

MODULES = (register, energy, lifecycle, policy, power, snmp, web, jobs, estate)
