from django.db import migrations

# The function as it was then (a single chain); migration 0005 replaces it.
APPEND_MANY_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION batchline_audit_append_many(
    p_at timestamptz[], p_actor_id bigint[], p_actor_username varchar[], p_actor_name varchar[],
    p_action varchar[], p_record_type varchar[], p_record_id varchar[], p_changes text[],
    p_reason text[], p_via varchar[], p_digest varchar[])
RETURNS TABLE (entry_id bigint, entry_hash varchar)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE prev varchar;
BEGIN
    PERFORM pg_advisory_xact_lock(CHAIN_LOCK_KEY);
    SELECT hash INTO prev FROM audit_auditentry ORDER BY id DESC LIMIT 1;
    prev := coalesce(prev, repeat('0', 64));
    FOR i IN 1 .. coalesce(array_length(p_digest, 1), 0) LOOP
        entry_hash := encode(sha256(convert_to(prev || p_digest[i], 'SQL_ASCII')), 'hex');
        INSERT INTO audit_auditentry (at, actor_id, actor_username, actor_name, action, record_type,
                                      record_id, changes, reason, via, prev_hash, hash)
        VALUES (p_at[i], p_actor_id[i], p_actor_username[i], p_actor_name[i], p_action[i],
                p_record_type[i], p_record_id[i], p_changes[i], p_reason[i], p_via[i], prev, entry_hash)
        RETURNING id INTO entry_id;
        prev := entry_hash;
        RETURN NEXT;
    END LOOP;
END
$$;
""".replace("CHAIN_LOCK_KEY", str(0x6261_7463_686C))


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_MANY_FUNCTION_SQL)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS batchline_audit_append_many")


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_chain_append_function")]
    operations = [migrations.RunPython(install, drop)]
