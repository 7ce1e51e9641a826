from batchline.rules.verdict import ALLOWED, Reason, Verdict


def test_a_verdict_without_reasons_allows() -> None:
    assert ALLOWED.allowed and bool(ALLOWED)


def test_a_verdict_keeps_every_reason_and_its_code() -> None:
    v = Verdict.of(Reason("LOT_EXPIRED", "Lot L-1 expired"), None, Reason("QTY", "Not enough"))
    assert not v.allowed
    assert v.codes == ["LOT_EXPIRED", "QTY"]
