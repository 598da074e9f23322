"""The console's page routes, one module per page group; ``ROUTERS`` lists them for the app factory."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from controller.api.auth import READERS, Principal, Role, require

Reader = Annotated[Principal, Depends(require(*READERS))]
Manager = Annotated[Principal, Depends(require(Role.network_manager))]
Staff = Annotated[Principal, Depends(require(Role.staff))]
SignedIn = Annotated[Principal, Depends(require(*READERS, Role.staff))]
