"""Whose app is it: checked before anything else touches it."""
from __future__ import annotations

import uuid

from server.adapters.hot_reads import HotReads
from server.domain.errors import Forbidden


async def ensure_app_owned(reads: HotReads, app_id: uuid.UUID, account_id: uuid.UUID) -> None:
    # An app of another account and an app that does not exist look alike: ids never leak.
    if await reads.app_owner(app_id) != account_id:
        raise Forbidden("the app does not belong to your account", appId=str(app_id))
