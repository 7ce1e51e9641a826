import pytest

from batchline.recipes.compare import compare

OLD = {"operations": [{"key": "a", "steps": [{"key": "s1", "title": "One"}, {"key": "s2", "title": "Two"}]}]}


@pytest.mark.req("MBR-02")
def test_an_inserted_step_is_one_addition_not_a_cascade() -> None:
    new = {
        "operations": [
            {
                "key": "a",
                "steps": [
                    {"key": "s1", "title": "One"},
                    {"key": "s9", "title": "New"},
                    {"key": "s2", "title": "Two"},
                ],
            }
        ]
    }
    changes = {(c.path, c.kind) for c in compare(OLD, new)}
    assert changes == {
        ("operations[a].steps[s9].position", "added"),
        ("operations[a].steps[s9].key", "added"),
        ("operations[a].steps[s9].title", "added"),
        ("operations[a].steps[s2].position", "changed"),
    }


def test_removed_and_changed_texts_are_named() -> None:
    new = {"operations": [{"key": "a", "steps": [{"key": "s1", "title": "Uno"}]}]}
    got = {(c.path, c.kind, c.old, c.new) for c in compare(OLD, new)}
    assert ("operations[a].steps[s1].title", "changed", "One", "Uno") in got
    assert ("operations[a].steps[s2].title", "removed", "Two", None) in got
