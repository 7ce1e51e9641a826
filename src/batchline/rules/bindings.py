"""What a signature binds, and whether it still holds: the one judgement of a signature's status (21 CFR 11.70).

Plain data in, a :class:`Status` out. The pages, the record PDF, ``audit
verify`` (through ``signatures.status``) and the archive verifier (over the
archived JSON, years later, without a database) all call these functions, so
a signature reads the same everywhere:

- **valid**: the record holds exactly what was signed;
- **superseded**: what was signed is intact, and a later change made through
  the application (a signed correction, a deviation linked afterwards, an
  audited change after a review stage) now stands beside it; the text names
  each one, who made it, when and why;
- **BROKEN**: the signed content no longer hashes to the signature's binding
  and nothing in the trail explains it: the record was changed outside the
  application.

Signatures are plain dicts with the fields of ``signatures.Signature`` (times
as canonical text or aware date-times); records are the dicts of
``reports.content.record_content``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from . import canonical

VALID, SUPERSEDED, BROKEN = "valid", "superseded", "broken"

# The fields of a signature its binding covers, besides the signed content.
BOUND_FIELDS = (
    "record_type",
    "record_id",
    "meaning",
    "signer_id",
    "signer_username",
    "signer_name",
    "signed_at",
    "comment",
    "method",
    "witness",
)

# The audit actions that write a step value (``execution.entries.write_value``).
VALUE_WRITES = frozenset({"record", "correct", "create"})

# Review stages whose batch update is the stage itself (its state), not a change to the record.
STAGE_ACTIONS = frozenset({"production_review", "qa_review", "qp_certification", "released", "rejected"})


@dataclass(frozen=True)
class Status:
    state: str
    text: str

    @property
    def broken(self) -> bool:
        return self.state == BROKEN

    @property
    def label(self) -> str:
        return {VALID: "valid", SUPERSEDED: "superseded", BROKEN: "BROKEN"}[self.state]

    def as_dict(self) -> dict[str, str]:
        return {"state": self.state, "text": self.text}


def binding_hash(signature: Mapping[str, Any], content: Any) -> str:
    """SHA-256 over the signed content and every part of the manifestation.

    Who (id, user ID, printed name), when, with what meaning, comment, method
    and witness flag, and the signed record's content: changing any of them
    afterwards breaks the binding.
    """
    payload = canonical.dumps({**{k: signature[k] for k in BOUND_FIELDS}, "content": content})
    return hashlib.sha256(payload.encode()).hexdigest()


def judge(
    signature: Mapping[str, Any],
    content: Any,
    *,
    later: Sequence[str] = (),
    unexplained: Sequence[str] = (),
) -> Status:
    """The status of ``signature`` over ``content`` as it stood when signed, given what came after.

    ``later``: changes made through the application after signing (each named
    in words); ``unexplained``: differences nothing in the record or its trail
    accounts for.
    """
    if binding_hash(signature, content) != signature["binding_hash"]:
        return Status(
            BROKEN,
            "BROKEN: the signed content changed outside the application; "
            "no correction in the trail explains it",
        )
    if unexplained:
        return Status(BROKEN, "BROKEN: " + "; ".join(unexplained))
    if later:
        return Status(SUPERSEDED, "superseded by " + "; ".join(later))
    return Status(VALID, "valid: the record holds exactly what was signed")


def _time(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))


def _name(person: Any) -> str:
    if isinstance(person, Mapping):
        return str(person.get("name") or person.get("username") or "")
    return str(person or "")


# --- steps and their values ------------------------------------------------------------------


def step_content(
    batch: str, step: str, values: Iterable[Mapping[str, Any]], records: Iterable[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """What a step signature (performed, verified) binds: the step and every value recorded on it,
    and the records of its own (samples, containers produced, labels issued, reconciled, examined:
    ``execution.steprecords``). A step without such records binds exactly what it bound before they
    existed, so older signatures keep their binding."""
    content: dict[str, Any] = {
        "batch": batch,
        "step": step,
        "values": [
            {
                "id": v["id"],
                "name": v["name"],
                "text": v["text"],
                "unit": v["unit"],
                "corrects": v["corrects"],
                # A value read from a machine binds where it came from (execution.instruments); a value
                # without one binds exactly what it bound before readings existed.
                **({"reading": dict(v["reading"])} if v.get("reading") else {}),
            }
            for v in sorted(values, key=lambda v: v["id"])
        ],
    }
    records = sorted(records, key=lambda r: (str(r["type"]), r["id"]))
    if records:
        content["records"] = [dict(r) for r in records]
    return content


def correction_content(value: Mapping[str, Any]) -> dict[str, Any]:
    """What a correction's signature binds: the new value, the one it corrects and the reason."""
    return {
        "value": value["id"],
        "name": value["name"],
        "text": value["text"],
        "corrects": value["corrects"],
        "reason": value["reason"],
    }


def correction_text(value: Mapping[str, Any], values: Mapping[int, Mapping[str, Any]]) -> str:
    """``correction #12 of w2 (640 → 604) by Olga Operator at …: reason``."""
    old = values.get(value["corrects"])
    change = f" ({old['text']} → {value['text']})" if old else f" (→ {value['text']})"
    return (
        f"correction #{value['id']} of {value['name']}{change} by {_name(value.get('entered_by'))} "
        f"at {canonical.normalise(_time(value['entered_at']))}: {value.get('reason') or 'no reason given'}"
    )


def step_signature_status(
    signature: Mapping[str, Any],
    batch: str,
    step: str,
    values: Sequence[Mapping[str, Any]],
    explained: Mapping[int, bool],
    records: Sequence[Mapping[str, Any]] = (),
) -> Status:
    """A step's signature: the values and records it bound (those made by then) must hash as signed.

    A value entered afterwards is explained only as a correction whose own
    signature is valid, or a calculation recalculated (with its audit entry)
    when a value it uses was corrected; anything else added is named.
    """
    signed_at = _time(signature["signed_at"])
    before = [v for v in values if _time(v["entered_at"]) <= signed_at]
    by_id = {v["id"]: v for v in values}
    later, unexplained = [], []
    for v in sorted(values, key=lambda v: v["id"]):
        if _time(v["entered_at"]) <= signed_at:
            continue
        if v["corrects"] is not None and explained.get(v["id"]):
            later.append(correction_text(v, by_id))
        else:
            unexplained.append(
                f"value #{v['id']} ({v['name']} = {v['text']}) was added after signing without a signed correction"
            )
    bound = [r for r in records if _time(r["at"]) <= signed_at]
    unexplained += [
        f"{str(r['type']).replace('_', ' ')} #{r['id']} was recorded after signing"
        for r in records
        if _time(r["at"]) > signed_at
    ]
    return judge(signature, step_content(batch, step, before, bound), later=later, unexplained=unexplained)


def correction_signature_status(
    signature: Mapping[str, Any], value: Mapping[str, Any], values: Sequence[Mapping[str, Any]]
) -> Status:
    """A correction's own signature; corrected again later, it is superseded by that correction."""
    by_id = {v["id"]: v for v in values}
    later = [correction_text(v, by_id) for v in values if v["corrects"] == value["id"]]
    return judge(signature, correction_content(value), later=later)


def witness_content(value: Mapping[str, Any], container: str) -> dict[str, Any]:
    """What a witness signs for a weight typed by hand (``execution.dispensing``): the container it
    went into, the weight and the reason."""
    return {"container": container, "net": value["text"], "unit": value["unit"], "reason": value["reason"]}


def witness_signature_status(
    signature: Mapping[str, Any],
    value: Mapping[str, Any],
    values: Sequence[Mapping[str, Any]],
    dispensed: Iterable[str],
) -> Status:
    """A witness's signature on a hand-typed weight: it holds if the value, with one of the containers
    the step dispensed into (``dispensed``, from the record's weighings), hashes as signed."""
    by_id = {v["id"]: v for v in values}
    later = [correction_text(v, by_id) for v in values if v["corrects"] == value["id"]]
    for container in dispensed:
        content = witness_content(value, container)
        if binding_hash(signature, content) == signature["binding_hash"]:
            return judge(signature, content, later=later)
    return Status(
        BROKEN,
        f"BROKEN: the weight it witnessed ({value['name']} = {value['text']} {value['unit']}) or the "
        "container it went into changed outside the application",
    )


def step_statuses(
    batch: str,
    step: str,
    values: Sequence[Mapping[str, Any]],
    signatures: Sequence[Mapping[str, Any]],
    audited: Iterable[int] = (),
    dispensed: Iterable[str] = (),
    records: Sequence[Mapping[str, Any]] = (),
) -> dict[int, Status]:
    """Every signature of one step (its own, its corrections' and a witness's), by signature id.

    ``audited``: ids of the step's values that have their audit entry (a
    recalculation is not signed on its own; its entry and the signed correction
    that caused it account for it). ``dispensed``: the containers the step
    weighed into, which a witness's signature on a hand-typed weight names.
    ``records``: the step's own records (samples, output, labels), which its signature binds.
    """
    by_id = {str(v["id"]): v for v in values}
    out: dict[int, Status] = {}
    audited = set(audited)
    dispensed = list(dispensed)
    explained: dict[int, bool] = {
        v["id"]: v.get("source") == "calculated" and v["id"] in audited for v in values if v["corrects"]
    }
    for s in signatures:
        if s["record_type"] == "execution.stepvalue" and s["record_id"] in by_id:
            value = by_id[s["record_id"]]
            if s.get("witness") and value["corrects"] is None:
                out[s["id"]] = witness_signature_status(s, value, values, dispensed)
                continue
            out[s["id"]] = correction_signature_status(s, value, values)
            explained[value["id"]] = not out[s["id"]].broken
    for s in signatures:
        if s["record_type"] == "execution.batchstep":
            out[s["id"]] = step_signature_status(s, batch, step, values, explained, records)
    return out


# --- exceptions, deviations ------------------------------------------------------------------


def iso(value: Any) -> str:
    """A time as ``datetime.isoformat()`` writes it in UTC (what a disposition's binding holds)."""
    return _time(value).astimezone(dt.UTC).isoformat()


def disposition_content(batch: str, exception: Mapping[str, Any]) -> dict[str, Any]:
    """What a disposition's signature binds (``quality.services.exceptions_disposition``)."""
    d = exception["disposition"]
    return {
        "batch": batch,
        "exception": exception["id"],
        "code": exception["code"],
        "severity": exception["severity"],
        "message": exception["message"],
        "step": exception["step"],
        "at": iso(exception["at"]),
        "decision": d["decision"],
        "comment": d["comment"],
        "deviation": d["deviation"] or "",
    }


def waste_content(batch: str, weighing: Mapping[str, Any]) -> dict[str, Any]:
    """What the signature on material wasted from a batch's dispensed container binds
    (``materials.services.container_waste``): its ledger entry, as the record's weighings list it."""
    return {
        "batch": batch,
        "entry": weighing["id"],
        "kind": weighing["kind"],
        "container": weighing["container"],
        "lot": weighing["lot"],
        "quantity": f"{Decimal(str(weighing['quantity'])).normalize():f}",
        "unit": weighing["unit"],
        "reason": weighing["reason"],
        "at": iso(weighing["at"]),
    }


def deviation_content(deviation: Mapping[str, Any], links: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What a deviation's signatures bind (``quality.services.deviation_content``)."""
    return {
        "number": deviation["number"],
        "title": deviation["title"],
        "classification": deviation["classification"],
        "state": deviation["state"],
        "description": deviation["description"],
        "immediate_action": deviation["immediate_action"],
        "investigation": deviation["investigation"],
        "root_cause": deviation["root_cause"],
        "impact": deviation["impact"],
        "capa_reference": deviation["capa"],
        "links": [
            {
                "batch": lk["batch"],
                "lot": lk["lot"],
                "equipment": lk["equipment"],
                "exception": lk["exception"],
            }
            for lk in sorted(links, key=lambda lk: lk["id"])
        ],
    }


def deviation_statuses(
    deviation: Mapping[str, Any],
    signatures: Sequence[Mapping[str, Any]],
    sign_entry: Mapping[int, int],
    entries: Mapping[int, Mapping[str, Any]] | None = None,
) -> dict[int, Status]:
    """A deviation's signatures, one per step of its workflow, oldest first.

    The newest binds the deviation as it stands, less the links added after it
    (an exception escalated to it later; each link carries the id of its audit
    entry, ``entry``, and ``entries`` holds those audit entries by id, so the
    status names who added the link, when and why); an earlier one is superseded
    by the next signed step.
    """
    ordered = sorted(signatures, key=lambda s: s["id"])
    out: dict[int, Status] = {}
    for earlier, following in itertools.pairwise(ordered):
        comment = f": {following['comment']}" if following.get("comment") else ""
        out[earlier["id"]] = Status(
            SUPERSEDED,
            f"superseded by signature #{following['id']} ({following['meaning']}) of "
            f"{following['signer_name']} at {following['signed_at']}{comment}",
        )
    if ordered:
        last = ordered[-1]
        signed_entry = sign_entry.get(last["id"])
        links = deviation["links"]
        if signed_entry is None:
            out[last["id"]] = Status(BROKEN, "BROKEN: the signature has no sign entry in the audit trail")
            return out
        before = [lk for lk in links if lk.get("entry") is not None and lk["entry"] < signed_entry]
        later = [
            _later_link_text(lk, (entries or {}).get(lk["entry"]))
            for lk in links
            if lk.get("entry") is not None and lk["entry"] > signed_entry
        ]
        unexplained = [
            f"the link to {_link_text(lk)} has no audit entry" for lk in links if lk.get("entry") is None
        ]
        out[last["id"]] = judge(
            last, deviation_content(deviation, before), later=later, unexplained=unexplained
        )
    return out


def _later_link_text(link: Mapping[str, Any], entry: Mapping[str, Any] | None) -> str:
    """``a link to exception #3 of batch B-1, added by Rita Reviewer at …: why (audit entry #118)``."""
    if entry is None:
        return f"a link to {_link_text(link)} (audit entry #{link['entry']})"
    why = f": {entry['reason']}" if entry.get("reason") else ""
    return (
        f"a link to {_link_text(link)}, added by {entry.get('actor_name') or 'an unnamed actor'} at "
        f"{canonical.normalise(_time(entry['at']))}{why} (audit entry #{link['entry']})"
    )


def _link_text(link: Mapping[str, Any]) -> str:
    if link.get("exception"):
        return f"exception #{link['exception']} of batch {link.get('batch')}"
    for key, word in (("batch", "batch"), ("lot", "lot"), ("equipment", "equipment")):
        if link.get(key):
            return f"{word} {link[key]}"
    return "nothing"


# --- the batch record a review stage approves -----------------------------------------------

# What a review stage approves, field by field: the recorded facts, not their rendering (limits,
# instructions, flags the record computes) nor master data that may be renamed afterwards (product,
# recipe, material and equipment names, lot expiry, the site). People by user ID: a later change of
# printed name is not a change of the record. ``signatures.status.lean_record`` reads exactly these.
APPROVED_FIELDS: dict[str, tuple[str, ...]] = {
    "header": (
        "batch",
        "recipe_code",
        "recipe_version",
        "planned_quantity",
        "unit",
        "created_at",
        "created_by",
    ),
    "value": ("id", "name", "text", "unit", "source", "corrects", "reason", "entered_at", "entered_by"),
    "exception": ("id", "code", "severity", "message", "step", "at", "user"),
    "disposition": ("id", "decision", "comment", "deviation", "at"),
    "deviation": (
        "id",
        "number",
        "title",
        "classification",
        "state",
        "description",
        "immediate_action",
        "investigation",
        "root_cause",
        "impact",
        "capa",
    ),
    "link": ("id", "batch", "lot", "equipment", "exception"),
    "material": ("step", "lot", "container", "quantity", "unit", "at", "by"),
    "weighing": (
        "id",
        "step",
        "kind",
        "container",
        "lot",
        "quantity",
        "unit",
        "balance",
        "device",
        "reason",
        "at",
        "by",
    ),
    "equipment": ("id", "equipment", "kind", "text", "at", "by"),
    "signature": ("id", "record_type", "record_id", "meaning", "signer_username", "binding_hash"),
}


def _who(person: Any) -> Any:
    return person.get("username") if isinstance(person, Mapping) else person


def _pick(row: Mapping[str, Any], kind: str) -> dict[str, Any]:
    out = {}
    for k in APPROVED_FIELDS[kind]:
        v = row.get(k)
        if k in ("created_by", "entered_by", "user", "by"):
            v = _who(v)
        elif k in ("at", "entered_at", "created_at") and v is not None:
            v = iso(v)
        out[k] = v
    return out


def approved_content(record: Mapping[str, Any], before: int | None) -> dict[str, Any]:
    """The complete batch record a review stage approves, as it can be recomputed later.

    Values (originals and corrections), exceptions and their dispositions,
    deviations and their links, materials, weighings, equipment use, and every
    signature of the batch made before this one (``before``: its id; None
    while it is being made), each with the fields of :data:`APPROVED_FIELDS`.
    Left out: the batch's state and the review stages (the review itself moves
    them), what the record computes or renders, and master data renamed since.
    """
    return {
        **approved_record(record),
        "signatures": approved_signatures(record, before),
    }


def approved_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`approved_content` without the signatures: the same for every stage of one reading."""
    exceptions = []
    for e in sorted(record["exceptions"], key=lambda e: e["id"]):
        row = _pick(e, "exception")
        d = e.get("disposition")
        row["disposition"] = _pick(d, "disposition") if d else None
        exceptions.append(row)
    approved: dict[str, Any] = {
        "header": _pick(record["header"], "header"),
        "steps": [_approved_step(s) for s in sorted(record["steps"], key=lambda s: s["key"])],
        "exceptions": exceptions,
        "deviations": [
            {
                **_pick(d, "deviation"),
                "links": [_pick(lk, "link") for lk in sorted(d["links"], key=lambda x: x["id"])],
            }
            for d in sorted(record["deviations"], key=lambda d: d["number"])
        ],
        "materials": sorted(
            (_pick(m, "material") for m in record["materials"]),
            key=lambda m: (m["at"] or "", m["container"] or "", m["quantity"] or ""),
        ),
        "weighings": sorted((_pick(w, "weighing") for w in record["weighings"]), key=lambda w: w["id"]),
        "equipment": sorted((_pick(e, "equipment") for e in record["equipment"]), key=lambda e: e["id"]),
    }
    # The process values from the machine (execution/monitoring.py), where the batch has any: what
    # their judges said, who acknowledged it, and their frozen course. A record without them reads
    # as it did before they existed, so what was signed then still verifies.
    if record.get("process_values"):
        approved["process_values"] = [
            {
                "step": p["step"],
                "events": sorted(p["events"], key=lambda e: e["id"]),
                "trends": sorted(p.get("trends", []), key=lambda t: t["id"]),
            }
            for p in sorted(record["process_values"], key=lambda p: p["step"])
        ]
    return approved


def _approved_step(step: Mapping[str, Any]) -> dict[str, Any]:
    """A step as a review stage approves it: its values and, where it has any, its own records
    (as its signatures bind them; a step without records reads as it did before they existed)."""
    out: dict[str, Any] = {
        "key": step["key"],
        "values": [
            {**_pick(v, "value"), **({"reading": dict(v["reading"])} if v.get("reading") else {})}
            for v in sorted(step["values"], key=lambda v: v["id"])
        ],
    }
    if step.get("records"):
        out["records"] = sorted(step["records"], key=lambda r: (str(r["type"]), r["id"]))
    return out


def approved_signatures(record: Mapping[str, Any], before: int | None) -> list[dict[str, Any]]:
    return [
        _pick(s, "signature")
        for s in sorted(record.get("signature_records", []), key=lambda s: s["id"])
        if before is None or s["id"] < before
    ]


def _sha(value: Any) -> str:
    return hashlib.sha256(canonical.dumps(value).encode()).hexdigest()


def record_sha256(record: Mapping[str, Any], before: int | None, *, base: str | None = None) -> str:
    """What a review stage's signature binds: SHA-256 over the SHA-256 of :func:`approved_record` and
    that of :func:`approved_signatures` (``base``: the first, when already computed for this reading)."""
    part = base if base is not None else _sha(approved_record(record))
    return hashlib.sha256((part + _sha(approved_signatures(record, before))).encode()).hexdigest()


def stage_content(batch: str, stage: Mapping[str, Any]) -> dict[str, Any]:
    """What a review stage's signature binds (``quality.services.review_sign``)."""
    content = {
        "batch": batch,
        "stage": stage["stage"],
        "checklist": stage["checklist"],
        "rules_version": stage["rules_version"],
        "comment": stage["comment"],
    }
    if stage.get("record_sha256"):  # stages signed before the record was bound carry none
        content["record_sha256"] = stage["record_sha256"]
    return content


def _entry_text(e: Mapping[str, Any]) -> str:
    reason = f": {e['reason']}" if e.get("reason") else ""
    return f"audit entry #{e['id']} ({e['action']} {e['record_type']}:{e['record_id']}) by {e['actor_name']} at {e['at']}{reason}"


def stage_status(
    record: Mapping[str, Any],
    stage: Mapping[str, Any],
    signature: Mapping[str, Any],
    others: Mapping[int, Status],
    *,
    base: str | None = None,
) -> Status:
    """A review stage's signature: its row as signed, and the record it approved as it stands now.

    When the record no longer matches, the audited changes made after the
    signature explain it (each named), unless a signature inside the record
    is itself BROKEN or no audited change was made at all: then the record
    was changed outside the application.
    """
    batch = record["header"]["batch"]
    first = judge(signature, stage_content(batch, stage))
    if first.broken or not stage.get("record_sha256"):
        return first
    if record_sha256(record, signature["id"], base=base) == stage["record_sha256"]:
        return first
    trail = record.get("audit_trail", [])
    signed_entry = next(
        (
            e["id"]
            for e in trail
            if e["record_type"] == "signatures.signature" and e["record_id"] == str(signature["id"])
        ),
        None,
    )
    if signed_entry is None:
        return Status(BROKEN, "BROKEN: the signature has no sign entry in the audit trail")
    changes = [
        e
        for e in trail
        if e["id"] > signed_entry
        and e["action"] != "sign"
        and e["record_type"] != "quality.reviewstage"
        and not (e["record_type"] == "execution.batch" and e["action"] in STAGE_ACTIONS)
    ]
    broken_inside = sorted(i for i, s in others.items() if s.broken and i < signature["id"])
    if broken_inside:
        return Status(
            BROKEN,
            "BROKEN: the record it approved changed outside the application (signature "
            + ", ".join(f"#{i}" for i in broken_inside)
            + " in it is broken)",
        )
    if not changes:
        return Status(
            BROKEN,
            "BROKEN: the record it approved changed outside the application; no audited change explains it",
        )
    return Status(
        SUPERSEDED,
        "superseded: the record changed after this signature, by "
        + "; ".join(_entry_text(e) for e in changes),
    )


# --- every signature of a batch record ------------------------------------------------------


def record_statuses(record: Mapping[str, Any]) -> dict[int, Status]:
    """The status of every signature in ``record["signature_records"]``, by signature id.

    Signatures on the batch itself (hold, resume, abort: a command and the state
    it set) are checked against the audit entry of that command.
    """
    batch = record["header"]["batch"]
    sigs = record.get("signature_records", [])
    by_type: dict[str, list[Mapping[str, Any]]] = {}
    for s in sigs:
        by_type.setdefault(s["record_type"], []).append(s)
    out: dict[int, Status] = {}
    trail = record.get("audit_trail", [])
    sign_entry = {
        int(e["record_id"]): e["id"]
        for e in trail
        if e["record_type"] == "signatures.signature" and e["action"] == "sign"
    }

    audited_values = {
        int(e["record_id"])
        for e in trail
        if e["record_type"] == "execution.stepvalue" and e["action"] in VALUE_WRITES
    }
    dispensed: dict[str, list[str]] = {}  # step key -> the containers it weighed into
    for w in record.get("weighings", []):
        if w.get("kind") == "dispense" and not str(w.get("quantity", "")).startswith("-"):
            dispensed.setdefault(w.get("step") or "", []).append(w.get("container") or "")
    for step in record["steps"]:
        ids = {str(x["id"]) for x in step["values"]}
        own = [
            s
            for s in sigs
            if (s["record_type"] == "execution.batchstep" and s["record_id"] == str(step.get("id")))
            or (s["record_type"] == "execution.stepvalue" and s["record_id"] in ids)
        ]
        out.update(
            step_statuses(
                batch,
                step["key"],
                step["values"],
                own,
                audited_values,
                dispensed.get(step["key"], ()),
                step.get("records", []),
            )
        )

    dispositions = {str(e["disposition"]["id"]): e for e in record["exceptions"] if e.get("disposition")}
    for s in by_type.get("execution.exceptiondisposition", []):
        exc = dispositions.get(s["record_id"])
        out[s["id"]] = (
            judge(s, disposition_content(batch, exc))
            if exc
            else Status(BROKEN, f"BROKEN: disposition #{s['record_id']} is missing from the record")
        )

    entries = {e["id"]: e for e in trail}
    for dev in record["deviations"]:
        own = [s for s in by_type.get("quality.deviation", []) if s["record_id"] == str(dev.get("id"))]
        out.update(deviation_statuses(dev, own, sign_entry, entries))

    for s in by_type.get("execution.batch", []):
        out[s["id"]] = _batch_command_status(batch, s, trail, sign_entry)

    stages = {str(x["id"]): x for x in (record.get("review") or {}).get("stages", [])}
    base = _sha(approved_record(record)) if stages else None  # once for every stage
    for s in sorted(by_type.get("quality.reviewstage", []), key=lambda s: s["id"]):
        stage = stages.get(s["record_id"])
        out[s["id"]] = (
            stage_status(record, stage, s, out, base=base)
            if stage
            else Status(BROKEN, f"BROKEN: review stage #{s['record_id']} is missing from the record")
        )
    weighings = {str(w["id"]): w for w in record.get("weighings", [])}
    for s in by_type.get("materials.ledgerentry", []):  # material wasted, signed by who destroyed it
        w = weighings.get(s["record_id"])
        out[s["id"]] = (
            judge(s, waste_content(batch, w))
            if w
            else Status(BROKEN, f"BROKEN: ledger entry #{s['record_id']} is missing from the record")
        )
    for s in sigs:
        out.setdefault(
            s["id"], Status(BROKEN, "BROKEN: the record it signs is missing from the batch record")
        )
    return out


def _batch_command_status(
    batch: str, s: Mapping[str, Any], trail: Sequence[Mapping[str, Any]], sign_entry: Mapping[int, int]
) -> Status:
    """A hold, resume or abort: the command's own audit entry holds what was signed."""
    entry_id = sign_entry.get(s["id"])
    command = next(
        (
            e
            for e in reversed(trail)
            if entry_id is not None
            and e["id"] < entry_id
            and e["record_type"] == "execution.batch"
            and e["record_id"] == s["record_id"]
        ),
        None,
    )
    if command is None:
        return Status(BROKEN, "BROKEN: the command it signs is not in the audit trail")
    changes = command["changes"]
    if isinstance(changes, str):
        changes = json.loads(changes)
    state = (changes.get("state") or [None, None])[1]
    return judge(
        s, {"batch": batch, "command": command["action"], "state": state, "reason": command["reason"]}
    )


def findings(batch: str, record: Mapping[str, Any], statuses: Mapping[int, Status]) -> list[str]:
    """One line per broken signature: ``batch B-1: signature #12 (verified, Sam Supervisor, on …): BROKEN …``."""
    sigs = {s["id"]: s for s in record.get("signature_records", [])}
    return [
        f"batch {batch}: signature #{i} ({sigs[i]['meaning']}, {sigs[i]['signer_name']}, "
        f"on {sigs[i]['record_type']}:{sigs[i]['record_id']}): {st.text}"
        for i, st in sorted(statuses.items())
        if st.broken and i in sigs
    ]
