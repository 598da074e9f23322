"""Every table, imported in one place so Alembic, the migration test and ``SQLModel.metadata`` see them all.

Domain packages keep their own ``models.py`` beside the code that queries it; each adds one import here.
"""

import controller.energy.models  # noqa: F401
import controller.lifecycle.models  # noqa: F401
import controller.models  # noqa: F401
import controller.policy.models  # noqa: F401
import controller.power.models  # noqa: F401
import controller.snmp.models  # noqa: F401
import controller.web.models  # noqa: F401
