import math

import numpy as np
import pytest
from modelops.errors import InputError
from modelops.schema import CATEGORY, NUMBER, Feature, FeatureSchema

NUM = FeatureSchema((Feature("a", NUMBER, 0, 10), Feature("b", NUMBER, -1, 1)))
MIXED = FeatureSchema((Feature("a", NUMBER, 0, 10, nullable=True), Feature("plan", CATEGORY, allowed=("basic", "pro"))))


def test_fast_path_matches_feature_order():
    m = NUM.matrix_from_instances([{"b": 0.5, "a": 3}, {"a": 1.5, "b": -1}], 10)
    assert m.dtype == np.float64
    np.testing.assert_array_equal(m, [[3, 0.5], [1.5, -1]])


def test_columnar_form_reorders_columns():
    m = NUM.matrix_from_columns(["b", "a"], [[0.5, 3], [0.25, 4]], 10)
    np.testing.assert_array_equal(m, [[3, 0.5], [4, 0.25]])


@pytest.mark.parametrize(
    "rows,field,code",
    [
        ([{"a": 1}], "instances[0].b", "missing_feature"),
        ([{"a": 1, "b": 2, "c": 3}], "instances[0].c", "unknown_feature"),
        ([{"a": 1, "b": "2"}], "instances[0].b", "wrong_type"),
        ([{"a": True, "b": 2}], "instances[0].a", "wrong_type"),
        ([{"a": None, "b": 2}], "instances[0].a", "wrong_type"),
        ([{"a": 1, "b": 2}, {"a": 10**400, "b": 2}], "instances[1].a", "not_finite"),
        ([{"a": 1, "b": float("nan")}], "instances[0].b", "not_finite"),
        ([{"a": 1, "b": float("inf")}], "instances[0].b", "not_finite"),
        ([[1, 2]], "instances[0]", "invalid_input"),
        ([], "instances", "empty_input"),
    ],
)
def test_bad_rows_name_the_field(rows, field, code):
    with pytest.raises(InputError) as err:
        NUM.matrix_from_instances(rows, 10)
    assert err.value.field == field and err.value.code == code
    row, _, name = field.partition(".")
    assert row in str(err.value) and name in str(err.value)


def test_row_limit():
    with pytest.raises(InputError) as err:
        NUM.matrix_from_instances([{"a": 1, "b": 1}] * 3, 2)
    assert err.value.code == "too_many_rows"


def test_columnar_errors():
    with pytest.raises(InputError, match="missing feature 'b'"):
        NUM.matrix_from_columns(["a"], [[1]], 10)
    with pytest.raises(InputError, match=r"data\[0\]: expected a list of 2 values"):
        NUM.matrix_from_columns(["a", "b"], [[1]], 10)
    with pytest.raises(InputError, match=r"data\[1\]\[1\]: expected a number"):
        NUM.matrix_from_columns(["a", "b"], [[1, 2], [1, "x"]], 10)


def test_mixed_schema_builds_object_matrix_and_accepts_nullable():
    m = MIXED.matrix_from_instances([{"a": None, "plan": "pro"}, {"a": 2, "plan": "basic"}], 10)
    assert m.dtype == object and math.isnan(m[0, 0]) and m[0, 1] == "pro"
    with pytest.raises(InputError, match="expected a string"):
        MIXED.matrix_from_instances([{"a": 1, "plan": 3}], 10)
    with pytest.raises(InputError, match="longer than"):
        MIXED.matrix_from_instances([{"a": 1, "plan": "x" * 1000}], 10)


def test_schema_round_trip_and_example():
    again = FeatureSchema.from_list(MIXED.to_list())
    assert again == MIXED
    assert NUM.example_instance() == {"a": 5.0, "b": 0.0}
    assert MIXED.example_instance()["plan"] == "basic"
