from __future__ import annotations

from services.gateway.adapters.tables import GatewayIdempotency, GatewayToken, GatewayUser
from shared.migrations import Migration, create_tables

MIGRATIONS: list[Migration] = [
    Migration(1, "users, hashed tokens, idempotency records",
              create_tables(GatewayUser, GatewayToken, GatewayIdempotency)),
]
