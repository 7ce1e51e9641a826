"""The master recipe as a document: YAML or JSON in, one canonical dict out.

A recipe file is read in three passes, and the first problem of each kind is
reported with its line, so an author can fix the file:

1. YAML syntax (JSON is read by the same parser: it is YAML too);
2. the schema: field names, types, required fields (pydantic);
3. the meaning: unique keys, predecessors that exist and form no cycle,
   limits in order, known units and roles, formulas that only use values
   recorded earlier in the procedure.

Nothing is imported unless all three pass. The canonical dict
(:func:`canonical`) is what a master recipe version stores, what a batch
freezes as its control recipe, and what two versions are compared on.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    ValidationError,
    field_validator,
    model_serializer,
)

from batchline.accounts.roles import ROLES
from batchline.rules import graph
from batchline.rules.alarms import AlarmLimits
from batchline.rules.formula import FormulaError
from batchline.rules.formula import parse as parse_formula
from batchline.rules.limits import NumberLimits, Range
from batchline.units import UnknownUnit, check_unit, convert

FORMAT = "batchline.recipe/1"
MAX_STEPS = 2000
# A recipe file is refused before it is parsed when it is larger than this (UTF-8 bytes), uses YAML
# anchors or aliases (a "billion laughs" expands a few hundred bytes into gigabytes), or nests deeper
# than MAX_DEPTH (docs/configuration.md, "Limits of a recipe file"). The largest recipe the benches
# import (2,000 steps, 20,000 values) is 2.4 MB.
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 32

Key = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
Text = Annotated[str, StringConstraints(max_length=4000)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Number = Annotated[Decimal, Field(allow_inf_nan=False, max_digits=18, decimal_places=6)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limits(Strict):
    low: Number | None = None
    high: Number | None = None

    def range(self) -> Range:
        return Range(self.low, self.high)


class FromDevice(Strict):
    """An input read from the machine instead of typed (issue 15): the equipment gateway's latest
    value of the tag that carries ``parameter`` (the input's own name when not given) on the unit
    the ``equipment`` step identified. The operator takes the reading, or the step takes it when it
    completes; a value typed instead needs a reason and a second person (execution/instruments.py).
    """

    equipment: Key = Field(description="the equipment identification step whose unit is read")
    parameter: Key | None = Field(default=None, description="the tag's parameter; default: the input's name")
    max_age_seconds: int = Field(
        default=60, ge=1, le=86400, description="a reading older than this is not taken"
    )
    at_completion: bool = Field(default=False, description="the step takes the reading when it completes")


class Input(Strict):
    name: Key
    label: ShortText
    type: Literal["number", "text", "choice", "yes_no"] = "number"
    unit: Annotated[str, StringConstraints(max_length=30)] = ""
    target: Number | None = None
    plausible: Limits | None = None
    specification: Limits | None = None
    action: Limits | None = None
    choices: list[ShortText] = Field(default_factory=list, max_length=50)
    critical: bool = False
    scales: bool = Field(default=False, description="target and limits scale with the planned batch size")
    required: bool = True
    device: FromDevice | None = None

    @model_serializer(mode="wrap")
    def _without_absent_device(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A recipe written before inputs were read from machines reads, compares and hashes as before.
        data: dict[str, Any] = handler(self)
        if data.get("device") is None:
            data.pop("device", None)
        return data


class Calculation(Strict):
    name: Key
    label: ShortText
    formula: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    unit: Annotated[str, StringConstraints(max_length=30)] = ""
    decimals: int = Field(default=2, ge=0, le=6)
    specification: Limits | None = None
    critical: bool = False


class Measured(Strict):
    """A value the system measures and records itself (a timer's duration, by the server's clock)."""

    name: Key
    label: ShortText
    unit: Annotated[str, StringConstraints(min_length=1, max_length=30)] = "min"
    decimals: int = Field(default=1, ge=0, le=3)
    specification: Limits | None = None
    critical: bool = False


class Timer(Strict):
    min_minutes: Number | None = None
    max_minutes: Number | None = None
    record: Measured | None = Field(
        default=None, description="record the measured duration (start to completion) as this value"
    )


class Quantity(Strict):
    quantity: Annotated[Decimal, Field(gt=0, allow_inf_nan=False, max_digits=18, decimal_places=6)]
    unit: Annotated[str, StringConstraints(min_length=1, max_length=30)]


PositiveNumber = Annotated[Decimal, Field(gt=0, allow_inf_nan=False, max_digits=18, decimal_places=6)]
Code = Annotated[str, StringConstraints(min_length=1, max_length=40)]
Reference = Annotated[str, StringConstraints(max_length=60)]


class SampleResult(Strict):
    """The laboratory's result of each sample (IPC-01): its unit and limits, and whether the step waits.

    The LIMS posts one result per sample (lims/services.py); it is converted into ``unit`` and
    judged against these limits (scaled with the batch where ``scales`` says so). A step that
    ``waits`` completes only once every sample's result is in, and each result is recorded on the
    step as the value ``name``, which the performer's signature then binds.
    """

    name: Key
    label: ShortText
    unit: Annotated[str, StringConstraints(max_length=30)] = ""
    specification: Limits | None = None
    action: Limits | None = None
    scales: bool = Field(default=False, description="the limits scale with the planned batch size")
    critical: bool = False
    waits: bool = Field(default=False, description="the step completes only once every result is in")


class Sampling(Strict):
    """In-process sampling (IPC-01, 21 CFR 211.188(b)(10)): what, how much, from where, for which test."""

    material: Code | None = Field(
        default=None, description="the material sampled (its code); none: the batch's in-process material"
    )
    quantity: PositiveNumber
    unit: Annotated[str, StringConstraints(min_length=1, max_length=30)]
    scales: bool = Field(default=False, description="the sample size scales with the planned batch size")
    samples: int = Field(default=1, ge=1, le=50, description="how many samples the step takes")
    source: Literal["container", "equipment"] = Field(
        description="sampled from a container (its label scanned) or from a unit the batch uses"
    )
    positions: list[ShortText] = Field(
        default_factory=list,
        max_length=20,
        description="where in the container or unit a sample may come from",
    )
    test: ShortText
    method: Reference = Field(default="", description="the test method or sampling SOP")
    result: SampleResult | None = Field(
        default=None, description="the laboratory's result: its unit, limits, and whether the step waits"
    )

    @model_serializer(mode="wrap")
    def _without_absent_result(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A recipe written before results had limits reads, compares and hashes as it always did.
        data: dict[str, Any] = handler(self)
        if data.get("result") is None:
            data.pop("result", None)
        return data


class Produce(Strict):
    """Output recorded into containers of the batch's output lot; the total is a named value."""

    name: Key
    label: ShortText
    unit: Annotated[str, StringConstraints(min_length=1, max_length=30)]
    specification: Limits | None = None
    critical: bool = False


class ReconciliationLimits(Strict):
    absolute: Annotated[Decimal, Field(ge=0, allow_inf_nan=False, max_digits=18, decimal_places=6)] | None = (
        None
    )
    percent: (
        Annotated[Decimal, Field(ge=0, le=50, allow_inf_nan=False, max_digits=9, decimal_places=3)] | None
    ) = None


class Labelling(Strict):
    """Labels issued, applied, destroyed and returned, reconciled (21 CFR 211.125), and examined (211.134)."""

    per_container: Quantity = Field(description="what one labelled container holds, as its label says")
    reconciliation: ReconciliationLimits = Field(default_factory=ReconciliationLimits)
    examination: list[ShortText] = Field(min_length=1, max_length=20)
    examine_units: int = Field(default=1, ge=1, le=10000, description="labelled units examined (211.134(b))")


class MaterialCharge(Strict):
    """What a material step charges: the item, how much (scaled with the batch), how close."""

    code: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    quantity: Annotated[Decimal, Field(gt=0, allow_inf_nan=False, max_digits=18, decimal_places=6)]
    unit: Annotated[str, StringConstraints(min_length=1, max_length=30)]
    scales: bool = Field(default=True, description="the quantity scales with the planned batch size")
    tolerance_percent: Number | None = Field(default=None, ge=0, le=50)
    tolerance_absolute: Number | None = Field(default=None, ge=0)
    potency_adjust: bool = Field(
        default=False,
        description="weigh: the target is divided by the lot's potency (assay, % of label claim)",
    )
    compensates: Key | None = Field(
        default=None,
        description="weigh: a filler whose target shrinks by what the named step weighed above its nominal",
    )
    dispensed: Key | None = Field(
        default=None,
        description="charge: every container the named weigh_dispense step filled for the batch, whole "
        "(its weighing judged the quantity, potency and compensation included)",
    )


class Monitor(Strict):
    """A critical process parameter read from the machine while the step runs (S95-06, IPC-01).

    The gateway reads the tag that carries ``name`` on the unit the ``equipment`` step identified
    (its configuration names each tag's parameter), and judges every value against these limits
    while the step runs (rules/alarms.py): outside ``action`` an alarm, outside ``specification``
    the batch's exception, and a lost or Bad signal an exception of its own. Each alarm waits for
    a person's acknowledgement before the step completes.
    """

    name: Key
    label: ShortText
    unit: Annotated[str, StringConstraints(min_length=1, max_length=30)]
    equipment: Key = Field(description="the equipment identification step whose unit is read")
    specification: Limits | None = None
    action: Limits | None = None
    deadband: Annotated[Decimal, Field(ge=0, allow_inf_nan=False, max_digits=18, decimal_places=6)] = Decimal(
        0
    )
    min_seconds: int = Field(
        default=0, ge=0, le=3600, description="how long a value stays out before it counts"
    )
    signal_timeout_seconds: int = Field(
        default=30, ge=1, le=3600, description="no value for this long is a loss of signal"
    )
    critical: bool = False


class Step(Strict):
    key: Key
    kind: Literal[
        "instruction",
        "data_entry",
        "checklist",
        "timer",
        "calculation",
        "verification",
        "signature",
        "material_charge",
        "equipment_id",
        "weigh_dispense",
        "sampling",
        "produce",
        "labelling",
    ]
    title: ShortText
    instruction: Text = ""
    sop: Annotated[str, StringConstraints(max_length=60)] = ""
    role: str = "operator"
    signs: bool = Field(default=False, description="the performer completes the step with an e-signature")
    verify: bool = Field(default=False, description="a different person verifies the step")
    after: list[Key] | None = Field(default=None, description="predecessors; default: the step before it")
    inputs: list[Input] = Field(default_factory=list, max_length=50)
    checklist: list[ShortText] = Field(default_factory=list, max_length=50)
    timer: Timer | None = None
    calculations: list[Calculation] = Field(default_factory=list, max_length=20)
    material: MaterialCharge | None = None
    equipment_class: Annotated[str, StringConstraints(max_length=40)] | None = Field(
        default=None, description="equipment identification: the class the scanned unit must belong to"
    )
    qualification: Annotated[str, StringConstraints(max_length=60)] | None = Field(
        default=None, description="a training (SOP or skill code) the performer must hold at step start"
    )
    sampling: Sampling | None = None
    produce: Produce | None = None
    labelling: Labelling | None = None
    monitors: list[Monitor] = Field(
        default_factory=list, max_length=20, description="process values read from the machine while it runs"
    )

    @model_serializer(mode="wrap")
    def _without_absent_monitors(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A recipe written before steps read the machine reads, compares and hashes as it always did.
        data: dict[str, Any] = handler(self)
        if not data.get("monitors"):
            data.pop("monitors", None)
        return data

    def recorded(self) -> list[Input | Calculation | Measured | Produce]:
        """Every named value the step records: inputs, calculations, a timer's duration, an output total."""
        found: list[Input | Calculation | Measured | Produce] = [*self.inputs, *self.calculations]
        if self.timer and self.timer.record:
            found.append(self.timer.record)
        if self.produce:
            found.append(self.produce)
        return found


class YieldSpec(Strict):
    """An operation's yield (YLD-01/02): a recorded quantity against the theoretical one, with limits in %."""

    actual: Key = Field(
        description="the value (a quantity with a unit) recorded in this operation that is its output"
    )
    theoretical: (
        Annotated[Decimal, Field(gt=0, allow_inf_nan=False, max_digits=18, decimal_places=6)] | None
    ) = Field(
        default=None, description="the expected output at the nominal batch size; none: the components used"
    )
    unit: Annotated[str, StringConstraints(max_length=30)] = ""
    scales: bool = Field(
        default=True, description="the theoretical quantity scales with the planned batch size"
    )
    low_percent: Annotated[Decimal, Field(ge=0, le=1000, max_digits=9, decimal_places=3)]
    high_percent: Annotated[Decimal, Field(ge=0, le=1000, max_digits=9, decimal_places=3)]


class Operation(Strict):
    # "yield" is the plant's word and a Python keyword: the field is yield_, the document says yield.
    model_config = ConfigDict(extra="forbid", frozen=True, serialize_by_alias=True)

    key: Key
    name: ShortText
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)
    yield_: YieldSpec | None = Field(default=None, alias="yield")


class Header(Strict):
    code: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9._-]{0,39}$")]
    name: ShortText
    product_code: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9._-]{0,39}$")]
    product_name: ShortText
    batch_size: Quantity
    description: Text = ""


class RecipeDocument(Strict):
    format: Literal["batchline.recipe/1"] = "batchline.recipe/1"
    recipe: Header
    operations: list[Operation] = Field(min_length=1, max_length=200)

    @field_validator("operations")
    @classmethod
    def _not_too_many_steps(cls, ops: list[Operation]) -> list[Operation]:
        if sum(len(o.steps) for o in ops) > MAX_STEPS:
            raise ValueError(f"a recipe has at most {MAX_STEPS} steps")
        return ops

    def steps(self) -> list[tuple[Operation, Step]]:
        return [(op, step) for op in self.operations for step in op.steps]

    def predecessors(self) -> dict[str, list[str]]:
        """Explicit ``after`` lists, or else the step before (sequential by default)."""
        preds: dict[str, list[str]] = {}
        previous: str | None = None
        for _, step in self.steps():
            preds[step.key] = list(step.after) if step.after is not None else ([previous] if previous else [])
            previous = step.key
        return preds


# --- problems with a place -------------------------------------------------------------

Path = tuple[str | int, ...]


class Problem:
    def __init__(self, path: Path, message: str, line: int | None = None) -> None:
        self.path, self.message, self.line = path, message, line

    def where(self) -> str:
        dotted = ".".join(str(p) for p in self.path)
        return f"line {self.line}" + (f" ({dotted})" if dotted else "") if self.line else dotted or "file"

    def place(self) -> str:
        """Where, in an author's words ("operation 2, step 3, input 1, unit"), for the form editor."""
        words, path = [], list(self.path)
        while path:
            part = path.pop(0)
            if isinstance(part, str) and path and isinstance(path[0], int):
                noun = {"operations": "operation", "steps": "step", "inputs": "input"}.get(part)
                noun = noun or {"calculations": "calculation", "checklist": "checklist item"}.get(part, part)
                words.append(f"{noun} {int(path.pop(0)) + 1}")
            else:
                words.append(str(part).replace("_", " "))
        return ", ".join(words) or "recipe"

    def __str__(self) -> str:
        return f"{self.where()}: {self.message}"


class RecipeInvalid(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def _line_map(text: str) -> dict[Path, int]:
    """Where in the file each mapping key and list item starts (1-based lines)."""
    lines: dict[Path, int] = {}

    def walk(node: yaml.Node, path: Path) -> None:
        lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = (*path, str(key_node.value))
                walk(value_node, key)
                lines[key] = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        walk(root, ())
    return lines


def _line(lines: dict[Path, int], path: Path) -> int | None:
    for n in range(len(path), -1, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return None


def too_large(size: int) -> RecipeInvalid | None:
    """The refusal of a file of ``size`` bytes, if it is over the limit (checked before reading it)."""
    if size > MAX_FILE_BYTES:
        return RecipeInvalid(
            [
                Problem(
                    (),
                    f"the file is {size / 1048576:.1f} MB: a recipe file is at most {MAX_FILE_BYTES // 1048576} MB",
                )
            ]
        )
    return None


_OPEN = (
    yaml.BlockMappingStartToken,
    yaml.BlockSequenceStartToken,
    yaml.FlowMappingStartToken,
    yaml.FlowSequenceStartToken,
)
_CLOSE = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)
_SCAN_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's scanner: ~15x faster


def screen(text: str) -> None:
    """Refuse what would cost more to parse than its size says, before parsing it.

    The size first (no work at all), then one pass of the tokenizer (linear in
    the text, no document built) that stops at the first anchor or alias and at
    nesting deeper than :data:`MAX_DEPTH`. JSON is read by the same YAML
    parser, so the same pass bounds a JSON file's depth.
    """
    refused = too_large(len(text)) or too_large(len(text.encode("utf-8", errors="replace")))
    if refused:
        raise refused
    depth = 0
    for token in yaml.scan(text, Loader=_SCAN_LOADER):
        if isinstance(token, yaml.AnchorToken | yaml.AliasToken):
            raise RecipeInvalid(
                [
                    Problem(
                        (),
                        "YAML anchors (&name) and aliases (*name) are not accepted in a recipe file: "
                        "write each value out where it is used",
                        token.start_mark.line + 1,
                    )
                ]
            )
        if isinstance(token, _OPEN):
            depth += 1
            if depth > MAX_DEPTH:
                raise RecipeInvalid(
                    [
                        Problem(
                            (),
                            f"the file nests deeper than {MAX_DEPTH} levels: a recipe needs far fewer",
                            token.start_mark.line + 1,
                        )
                    ]
                )
        elif isinstance(token, _CLOSE):
            depth -= 1


def parse(text: str) -> RecipeDocument:
    """Read a recipe file (YAML or JSON); raises :class:`RecipeInvalid` naming lines and reasons."""
    try:
        screen(text)
        data = yaml.safe_load(text)
        lines = _line_map(text)
    except RecursionError as exc:
        raise RecipeInvalid([Problem((), "the file nests too deeply or refers to itself")]) from exc
    except RecipeInvalid:
        raise
    except ValueError as exc:  # a YAML value the reader cannot convert: an integer of 100,000 digits
        raise RecipeInvalid([Problem((), f"not a recipe file: {str(exc)[:200]}")]) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        what = getattr(exc, "problem", None) or str(exc)
        raise RecipeInvalid(
            [Problem((), f"not valid YAML or JSON: {what}", mark.line + 1 if mark else None)]
        ) from exc
    if not isinstance(data, dict):
        raise RecipeInvalid([Problem((), "a recipe file is a mapping with 'recipe' and 'operations'", 1)])
    return validate(data, lines)


def validate(data: dict[str, Any], lines: dict[Path, int] | None = None) -> RecipeDocument:
    """Check a recipe given as plain data (schema, then meaning); problems carry their path."""
    lines = lines or {}
    try:
        doc = RecipeDocument.model_validate(data)
    except RecursionError as exc:
        raise RecipeInvalid([Problem((), "the file nests too deeply or refers to itself")]) from exc
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            problems.append(Problem(loc, err["msg"].replace("Value error, ", ""), _line(lines, loc)))
        raise RecipeInvalid(problems) from exc
    problems = check_meaning(doc)
    for p in problems:
        p.line = _line(lines, p.path)
    if problems:
        raise RecipeInvalid(problems)
    return doc


def from_canonical(data: dict[str, Any]) -> RecipeDocument:
    """A stored (already checked) document back as a model."""
    return RecipeDocument.model_validate(data)


def canonical(doc: RecipeDocument) -> dict[str, Any]:
    """JSON-ready dict: Decimals as strings, defaults written out, so equal recipes compare equal."""
    return doc.model_dump(mode="json")


def dump_yaml(doc: RecipeDocument) -> str:
    return yaml.safe_dump(canonical(doc), sort_keys=False, allow_unicode=True, width=100)


# --- the meaning --------------------------------------------------------------------------


def _limits(inp: Input | Calculation | Measured | Produce | SampleResult) -> NumberLimits:
    plausible = inp.plausible.range() if isinstance(inp, Input) and inp.plausible else Range()
    spec = inp.specification.range() if inp.specification else Range()
    action = inp.action.range() if isinstance(inp, Input | SampleResult) and inp.action else Range()
    return NumberLimits(plausible=plausible, specification=spec, action=action)


def check_meaning(doc: RecipeDocument) -> list[Problem]:
    problems: list[Problem] = []
    seen_keys: dict[str, Path] = {}
    value_names: dict[str, str] = {}  # value name -> step key that records it
    # A laboratory result arrives when the laboratory sends it (and a step that does not wait for it
    # may be long done): no formula may count on it.
    lab_results: set[str] = set()

    try:
        check_unit(doc.recipe.batch_size.unit)
    except UnknownUnit as exc:
        problems.append(Problem(("recipe", "batch_size", "unit"), str(exc)))

    for o, op in enumerate(doc.operations):
        for s, step in enumerate(op.steps):
            here: Path = ("operations", o, "steps", s)
            if step.key in seen_keys:
                problems.append(Problem((*here, "key"), f"step key {step.key!r} is used twice"))
            seen_keys[step.key] = here
            if step.role not in ROLES:
                problems.append(
                    Problem((*here, "role"), f"unknown role {step.role!r}; roles: {', '.join(ROLES)}")
                )
            if step.kind == "data_entry" and not step.inputs:
                problems.append(Problem((*here, "inputs"), "a data entry step needs at least one input"))
            if step.kind == "checklist" and not step.checklist:
                problems.append(Problem((*here, "checklist"), "a checklist step needs its items"))
            if step.kind == "timer" and not (
                step.timer and (step.timer.min_minutes or step.timer.max_minutes)
            ):
                problems.append(Problem((*here, "timer"), "a timer step needs a minimum or maximum duration"))
            if step.kind in ("material_charge", "weigh_dispense") and step.material is None:
                problems.append(Problem((*here, "material"), "a material charge step names its material"))
            if step.material is not None:
                m = step.material
                try:
                    check_unit(m.unit)
                except UnknownUnit as exc:
                    problems.append(Problem((*here, "material", "unit"), str(exc)))
                if m.compensates is not None and m.compensates not in {st.key for _, st in doc.steps()}:
                    problems.append(
                        Problem((*here, "material", "compensates"), f"step {m.compensates!r} does not exist")
                    )
                if m.tolerance_percent is not None and m.tolerance_absolute is not None:
                    problems.append(
                        Problem(
                            (*here, "material"),
                            "give the tolerance as a percentage or as a quantity, not both",
                        )
                    )
                if m.dispensed is not None:
                    problems += _check_dispensed(doc, step, (*here, "material", "dispensed"))
            if step.kind == "calculation" and not step.calculations:
                problems.append(Problem((*here, "calculations"), "a calculation step needs a formula"))
            problems += _check_step_records(step, here)
            t = step.timer
            if (
                t
                and t.min_minutes is not None
                and t.max_minutes is not None
                and t.min_minutes > t.max_minutes
            ):
                problems.append(Problem((*here, "timer"), "the minimum duration is longer than the maximum"))
            for i, inp in enumerate(step.inputs):
                where: Path = (*here, "inputs", i)
                problems += _check_value_def(inp, where, value_names, step.key)
                if inp.type == "choice" and not inp.choices:
                    problems.append(Problem((*where, "choices"), "a choice needs its choices"))
                gated = free_text_identity(inp)
                if gated:
                    problems.append(Problem((*where, "type"), gated))
                if inp.device is not None and inp.type != "number":
                    problems.append(
                        Problem(
                            (*where, "device"), f"{inp.name!r} is read from a machine: its type is number"
                        )
                    )
            for i, calc in enumerate(step.calculations):
                problems += _check_value_def(calc, (*here, "calculations", i), value_names, step.key)
            if step.timer and step.timer.record:
                problems += _check_value_def(
                    step.timer.record, (*here, "timer", "record"), value_names, step.key
                )
            if step.produce:
                problems += _check_value_def(step.produce, (*here, "produce"), value_names, step.key)
            if step.sampling and step.sampling.result:
                problems += _check_value_def(
                    step.sampling.result, (*here, "sampling", "result"), value_names, step.key
                )
                lab_results.add(step.sampling.result.name)
            for i, monitor in enumerate(step.monitors):
                problems += _check_monitor(monitor, (*here, "monitors", i), value_names, step.key)

    for o, op in enumerate(doc.operations):
        problems += _check_yield(op, ("operations", o, "yield"))

    preds = doc.predecessors()
    for key, ps in preds.items():
        for p in ps:
            if p not in seen_keys:
                problems.append(
                    Problem((*seen_keys[key], "after"), f"step {key!r} waits for {p!r}, which does not exist")
                )
            elif p == key:
                problems.append(Problem((*seen_keys[key], "after"), f"step {key!r} waits for itself"))
    if problems:
        return problems
    try:
        graph.topological_order(preds)
    except graph.CycleError as exc:
        return [Problem((*seen_keys[exc.cycle[0]], "after"), str(exc))]

    # A formula may use only values recorded by steps that must be complete before it; a charge of
    # what was weighed out comes after the weighing; a step reads the machine an earlier step identified.
    kinds = {st.key: st.kind for _, st in doc.steps()}
    for o, op in enumerate(doc.operations):
        for s, step in enumerate(op.steps):
            earlier = graph.ancestors(step.key, preds)
            for i, monitor in enumerate(step.monitors):
                if kinds.get(monitor.equipment) != "equipment_id" or monitor.equipment not in earlier:
                    problems.append(
                        Problem(
                            ("operations", o, "steps", s, "monitors", i, "equipment"),
                            f"{monitor.name!r} is read from the unit of {monitor.equipment!r}, which must be "
                            "an equipment identification step that comes before it",
                        )
                    )
            for i, inp in enumerate(step.inputs):
                if inp.device is not None and (
                    kinds.get(inp.device.equipment) != "equipment_id" or inp.device.equipment not in earlier
                ):
                    problems.append(
                        Problem(
                            ("operations", o, "steps", s, "inputs", i, "device", "equipment"),
                            f"{inp.name!r} is read from the unit of {inp.device.equipment!r}, which must be "
                            "an equipment identification step that comes before it",
                        )
                    )
            weighing = step.material.dispensed if step.material is not None else None
            if weighing is not None and weighing not in earlier:
                problems.append(
                    Problem(
                        ("operations", o, "steps", s, "material", "dispensed"),
                        f"step {step.key!r} charges what {weighing!r} weighs out, "
                        "which does not come before it: list it in 'after'",
                    )
                )
            for c, calc in enumerate(step.calculations):
                where = ("operations", o, "steps", s, "calculations", c, "formula")
                try:
                    formula = parse_formula(calc.formula)
                except FormulaError as exc:
                    problems.append(Problem(where, f"formula {calc.formula!r}: {exc}"))
                    continue
                own_earlier = (
                    {x.name for x in step.inputs}
                    | {x.name for x in step.calculations[:c]}
                    | {x.name for x in step.recorded() if not isinstance(x, Calculation)}
                )
                for name in sorted(formula.names):
                    source = value_names.get(name)
                    if name in lab_results:
                        problems.append(
                            Problem(
                                where, f"formula uses {name!r}, a laboratory result, which no formula uses"
                            )
                        )
                    elif source is None:
                        problems.append(Problem(where, f"formula uses {name!r}, which no step records"))
                    elif name not in own_earlier and source not in earlier:
                        problems.append(
                            Problem(
                                where,
                                f"formula uses {name!r}, recorded by step {source!r}, which does not come before this one",
                            )
                        )
    return problems


def _check_dispensed(doc: RecipeDocument, step: Step, where: Path) -> list[Problem]:
    """A charge of what was weighed out names a weighing of its own material."""
    assert step.material is not None and step.material.dispensed is not None
    if step.kind != "material_charge":
        return [Problem(where, "only a material_charge step charges what a weighing dispensed")]
    weighing = next((st for _, st in doc.steps() if st.key == step.material.dispensed), None)
    if weighing is None:
        return [Problem(where, f"step {step.material.dispensed!r} does not exist")]
    if weighing.kind != "weigh_dispense" or weighing.material is None:
        return [Problem(where, f"step {weighing.key!r} is a {weighing.kind} step, not a weigh_dispense step")]
    if weighing.material.code != step.material.code:
        return [
            Problem(
                where,
                f"step {weighing.key!r} weighs out {weighing.material.code}, not {step.material.code}",
            )
        ]
    return []


def _check_yield(op: Operation, where: Path) -> list[Problem]:
    y = op.yield_
    if y is None:
        return []
    recorded: dict[str, Input | Calculation | Measured | Produce] = {}
    for st in op.steps:
        recorded.update({v.name: v for v in st.recorded()})
    actual = recorded.get(y.actual)
    if actual is None:
        return [Problem((*where, "actual"), f"no step of operation {op.key!r} records {y.actual!r}")]
    problems = []
    if (isinstance(actual, Input) and actual.type != "number") or not actual.unit:
        problems.append(Problem((*where, "actual"), f"{y.actual!r} must be a number with a unit"))
    if y.low_percent > y.high_percent:
        problems.append(Problem(where, "the low limit is above the high limit"))
    if y.theoretical is not None and not y.unit:
        problems.append(Problem((*where, "unit"), "give the theoretical quantity's unit"))
    if actual.unit and y.unit:
        try:
            convert(Decimal(1), y.unit, actual.unit)
        except Exception:
            problems.append(Problem((*where, "unit"), f"{y.unit!r} cannot be compared with {actual.unit!r}"))
    return problems


def _check_value_def(
    inp: Input | Calculation | Measured | Produce | SampleResult,
    where: Path,
    names: dict[str, str],
    step_key: str,
) -> list[Problem]:
    problems = []
    if inp.name in names:
        problems.append(
            Problem(
                (*where, "name"), f"value name {inp.name!r} is used twice (also in step {names[inp.name]!r})"
            )
        )
    names[inp.name] = step_key
    try:
        check_unit(inp.unit)
    except UnknownUnit as exc:
        problems.append(Problem((*where, "unit"), str(exc)))
    try:
        _limits(inp)
    except ValueError as exc:
        problems.append(Problem(where, f"limits of {inp.name!r}: {exc}"))
    return problems


def monitor_limits(monitor: Monitor | dict[str, Any]) -> AlarmLimits:
    """The alarm rules' limits of a monitored parameter (from the model or the stored spec)."""
    m = monitor if isinstance(monitor, Monitor) else Monitor.model_validate(monitor)
    return AlarmLimits(
        action=m.action.range() if m.action else Range(),
        specification=m.specification.range() if m.specification else Range(),
        deadband=m.deadband,
        min_duration=dt.timedelta(seconds=m.min_seconds),
        signal_timeout=dt.timedelta(seconds=m.signal_timeout_seconds),
    )


def _check_monitor(monitor: Monitor, where: Path, names: dict[str, str], step_key: str) -> list[Problem]:
    problems = []
    if monitor.name in names:
        problems.append(
            Problem(
                (*where, "name"),
                f"value name {monitor.name!r} is used twice (also in step {names[monitor.name]!r})",
            )
        )
    names[monitor.name] = step_key
    try:
        check_unit(monitor.unit)
    except UnknownUnit as exc:
        problems.append(Problem((*where, "unit"), str(exc)))
    if monitor.specification is None and monitor.action is None:
        problems.append(Problem(where, f"{monitor.name!r} is read to be judged: give its limits"))
    try:
        monitor_limits(monitor)
    except ValueError as exc:
        problems.append(Problem(where, f"limits of {monitor.name!r}: {exc}"))
    return problems


# A step kind's own block belongs to that kind only, and that kind needs it.
_KIND_BLOCKS = {"sampling": "sampling", "produce": "produce", "labelling": "labelling"}


def _check_step_records(step: Step, here: Path) -> list[Problem]:
    """The blocks of the step kinds with records of their own: present on their kind, units known."""
    problems: list[Problem] = []
    for kind, block in _KIND_BLOCKS.items():
        given = getattr(step, block) is not None
        if step.kind == kind and not given:
            problems.append(Problem((*here, block), f"a {kind} step needs its '{block}' block"))
        elif given and step.kind != kind:
            problems.append(Problem((*here, block), f"only a {kind} step takes '{block}'"))
    units: list[tuple[Path, str]] = []
    if step.sampling:
        units.append(((*here, "sampling", "unit"), step.sampling.unit))
    if step.produce:
        units.append(((*here, "produce", "unit"), step.produce.unit))
    if step.labelling:
        units.append(((*here, "labelling", "per_container", "unit"), step.labelling.per_container.unit))
        limits = step.labelling.reconciliation
        if limits.absolute is not None and limits.percent is not None:
            problems.append(
                Problem(
                    (*here, "labelling", "reconciliation"),
                    "give the reconciliation limit as a percentage or as a count, not both",
                )
            )
    for where, unit in units:
        try:
            check_unit(unit)
        except UnknownUnit as exc:
            problems.append(Problem(where, str(exc)))
    if step.timer and step.timer.record:
        try:
            convert(Decimal(1), step.timer.record.unit, "min")
        except Exception:
            problems.append(
                Problem(
                    (*here, "timer", "record", "unit"), f"{step.timer.record.unit!r} is not a unit of time"
                )
            )
    return problems


# Free text that names a lot, a container or a unit walks around the gate that checks it (status,
# expiry, identity, cleaning, calibration). Such an input is known by its head, the last word of
# its name (``api_lot``, ``source_container``), or by an identifier word after a lot, container
# or equipment word (``lot_number``, ``granulator_id``), or by an equipment word alone
# (``dryer``). Text *about* them keeps its own head and passes: ``lot_observations``,
# ``container_condition``, ``press_remarks``, ``operator_id``.
_LOT_HEADS = frozenset({"lot", "lots", "container", "containers", "batch", "sublot"})
_IDENTIFIERS = frozenset({"id", "ids", "code", "number", "no", "nr", "tag", "serial"})
_EQUIPMENT = frozenset(
    {
        "equipment",
        "unit",
        "granulator",
        "dryer",
        "drier",
        "fbd",
        "press",
        "blender",
        "mixer",
        "mill",
        "sieve",
        "screen",
        "coater",
        "oven",
        "tank",
        "vessel",
        "reactor",
        "scale",
        "balance",
        "filler",
        "capper",
        "labeller",
        "labeler",
        "line",
        "machine",
        "instrument",
    }
)
_LOT_GATE = "identify it with a material_charge or weigh_dispense step, whose scan checks the lot"
_EQUIPMENT_GATE = (
    "identify it with an equipment_id step, whose scan checks the unit's status, cleaning and calibration"
)


def free_text_identity(inp: Input) -> str | None:
    """Why a free-text input may not record a lot, a container or a unit; None for honest text.

    The name is read by its head; the label, natural language ("Condition of the container"),
    only for an identifier after a lot, container or equipment word ("Granulator number").
    """
    if inp.type != "text":
        return None
    name = inp.name.lower().split("_")
    label = _words(inp.label)
    head, before = name[-1], set(name[:-1])
    named_id = label[-1:] and label[-1] in _IDENTIFIERS and len(label) > 1
    if (
        head in _LOT_HEADS
        or (head in _IDENTIFIERS and before & _LOT_HEADS)
        or (named_id and label[-2] in _LOT_HEADS)
    ):
        return f"{inp.name!r} would record a lot or container as typed text: {_LOT_GATE}"
    if (
        (head in _IDENTIFIERS and before & _EQUIPMENT)
        or (name == [head] and head in _EQUIPMENT)
        or (named_id and label[-2] in _EQUIPMENT)
    ):
        return f"{inp.name!r} would record an equipment unit as typed text: {_EQUIPMENT_GATE}"
    return None


def _words(text: str) -> list[str]:
    return [w for w in "".join(c.lower() if c.isalnum() else " " for c in text).split() if w]
