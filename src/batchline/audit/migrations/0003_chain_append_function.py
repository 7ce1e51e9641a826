from django.db import migrations

# The function as it was then (a single chain); migration 0005 replaces it.
APPEND_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION batchline_audit_append(
    p_at timestamptz, p_actor_id bigint, p_actor_username varchar, p_actor_name varchar,
    p_action varchar, p_record_type varchar, p_record_id varchar, p_changes text,
    p_reason text, p_via varchar, p_digest varchar,
    OUT entry_id bigint, OUT entry_hash varchar)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE prev varchar;
BEGIN
    PERFORM pg_advisory_xact_lock(CHAIN_LOCK_KEY);
    SELECT hash INTO prev FROM audit_auditentry ORDER BY id DESC LIMIT 1;
    prev := coalesce(prev, repeat('0', 64));
    entry_hash := encode(sha256(convert_to(prev || p_digest, 'SQL_ASCII')), 'hex');
    INSERT INTO audit_auditentry (at, actor_id, actor_username, actor_name, action, record_type,
                                  record_id, changes, reason, via, prev_hash, hash)
    VALUES (p_at, p_actor_id, p_actor_username, p_actor_name, p_action, p_record_type,
            p_record_id, p_changes, p_reason, p_via, prev, entry_hash)
    RETURNING id INTO entry_id;
END
$$;
""".replace("CHAIN_LOCK_KEY", str(0x6261_7463_686C))


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_FUNCTION_SQL)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS batchline_audit_append")


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only_triggers")]
    operations = [migrations.RunPython(install, drop)]
