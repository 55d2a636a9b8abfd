import math

import numpy as np
import pytest
from modelops.core.errors import InputError
from modelops.model.schema import CATEGORY, NUMBER, Feature, FeatureSchema

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


def test_warnings_flag_values_never_seen_in_training():
    m = MIXED.matrix_from_instances([{"a": 5, "plan": "pro"}, {"a": None, "plan": "basic"}], 10)
    assert MIXED.warnings(m) is None  # a missing value is not a warning
    m = MIXED.matrix_from_instances([{"a": 5, "plan": "pro"}, {"a": 11.5, "plan": "gold"}], 10)
    warnings = MIXED.warnings(m)
    assert warnings[0] == []
    assert [(w["feature"], w["code"]) for w in warnings[1]] == [("a", "out_of_range"), ("plan", "unseen_category")]
    assert warnings[1][0]["message"] == "11.5 is outside the training range 0 to 10"
    big = np.tile(m, (1500, 1))  # a batch chunk takes the other path to the same answer
    assert MIXED.warnings(big)[:2] == warnings and len(MIXED.warnings(big)) == 3000
    assert (
        NUM.warnings(np.array([[3.0, 0.5]])) is None and NUM.warnings(np.array([[3.0, -2.0]]))[0][0]["feature"] == "b"
    )


def test_bool_and_integer_features_take_only_what_their_dtype_holds():
    schema = FeatureSchema(
        (Feature("n", NUMBER, 1, 3, pandas_dtype="int64"), Feature("flag", NUMBER, 0, 1, pandas_dtype="bool"))
    )
    m = schema.matrix_from_instances([{"n": 2, "flag": True}, {"n": 3.0, "flag": 0}], 10)
    np.testing.assert_array_equal(m, [[2, 1], [3, 0]])
    for row, field, text in [
        ({"n": 2.5, "flag": True}, "instances[0].n", "expected a whole number, got 2.5"),
        ({"n": 2, "flag": "yes"}, "instances[0].flag", "expected a boolean, got string"),
        ({"n": 2, "flag": 2}, "instances[0].flag", "expected a boolean (true, false, 1 or 0), got 2.0"),
    ]:
        with pytest.raises(InputError) as err:  # the fast path hands these to the slow path, which names them
            schema.matrix_from_instances([row], 10)
        assert err.value.field == field and str(err.value) == f"{field}: {text}"
    bad = schema.bad_rows(np.array([[2.0, 1.0], [2.5, 1.0], [3.0, 2.0]]))
    assert bad == {
        1: (0, "expected a whole number, got 2.5"),
        2: (1, "expected a boolean (true, false, 1 or 0), got 2.0"),
    }
    assert Feature.from_dict(schema.features[0].to_dict()) == schema.features[0]
    assert "pandas_dtype" not in Feature("x", NUMBER, 0, 1).to_dict()


def test_example_row_fits_bool_and_integer_features():
    schema = FeatureSchema(
        (Feature("n", NUMBER, 1, 4, pandas_dtype="int64"), Feature("flag", NUMBER, 0, 1, pandas_dtype="bool"))
    )
    row = schema.example_instance()
    assert row == {"n": 2, "flag": False}
    schema.matrix_from_instances([row], 1)  # the documented example is a valid request
