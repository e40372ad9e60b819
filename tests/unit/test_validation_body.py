"""The one body for invalid requests stays readable however many problems a request has."""

from __future__ import annotations

import pytest

from shared.service import MAX_PROBLEMS, validation_body

pytestmark = pytest.mark.unit


def test_problems_are_named_by_field_and_capped_with_a_count_of_the_rest() -> None:
    errors = [{"loc": ("body", f"key{i}"), "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}
              for i in range(200_000)]
    detail = validation_body(errors)["detail"]
    assert len(detail) == MAX_PROBLEMS + 1
    assert detail[0] == {"field": "key0", "reason": "Extra inputs are not permitted", "code": "extra_forbidden"}
    assert detail[-1] == {"field": "body", "reason": f"{200_000 - MAX_PROBLEMS} more problems not listed",
                          "code": "more_problems"}
    few = validation_body([{"loc": ("query", "offset"), "msg": "too big", "type": "less_than_equal"}])
    assert few == {"detail": [{"field": "offset", "reason": "too big", "code": "less_than_equal"}]}
