from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AuditConfig(AppConfig):
    name = "batchline.audit"
    label = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        post_migrate.connect(chain_heads_ensure, sender=self)


def chain_heads_ensure(using: str = "default", **kwargs: Any) -> None:
    """PostgreSQL writers lock a head row per chain: put back any that are missing (after ``flush`` in tests).

    A missing row is rebuilt from its chain's newest entry, so it states where the chain really ends.
    """
    from django.db import connections

    from batchline.rules.hashchain import GENESIS

    from .chain import CHAINS
    from .checkpoints import chain_heads

    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('audit_auditchain') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return
        cursor.execute("SELECT id FROM audit_auditchain")
        have = {row[0] for row in cursor.fetchall()}
        if len(have) == CHAINS:
            return
        heads = chain_heads()
        for chain in set(range(CHAINS)) - have:
            seq, hash_ = heads.get(chain, (0, GENESIS))
            cursor.execute(
                "INSERT INTO audit_auditchain (id, seq, hash) VALUES (%s, %s, %s)", [chain, seq, hash_]
            )
