"""The training CSV reader (modelops.model.dataset.read_csv): missing values as pandas reads them, the rule that
makes a column numeric, and one-line errors for data that cannot be trained on."""

from __future__ import annotations

import math

import numpy as np
import pytest
from modelops.core.errors import ModelOpsError
from modelops.model.dataset import read_csv
from modelops.model.missing import NA_VALUES, missing_tokens, parse_tokens
from modelops.model.training import train


def csv(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def test_the_missing_value_tokens_are_pandas_defaults():
    parsers = pytest.importorskip("pandas._libs.parsers")
    assert set(NA_VALUES) == set(parsers.STR_NA_VALUES)


@pytest.mark.parametrize("token", sorted(NA_VALUES))
def test_every_token_is_missing_and_the_column_stays_numeric(token):
    data = read_csv(csv("a,b,y", f"1.5,{token},x", "2.5,7,z", "3.5,8,x"), "y")
    assert data.dtypes == ["number", "number"]
    assert data.X.dtype == np.float64
    assert math.isnan(data.X[0, 1]) and data.X[1, 1] == 7.0


def test_a_numeric_column_with_missing_values_agrees_with_pandas():
    pd = pytest.importorskip("pandas")
    import io

    body = csv("a,b,y", "1,NA,x", "2,,z", "3,null,x", "4,None,z", "5,N/A,x", "6,9.5,z")
    ours = read_csv(body, "y")
    theirs = pd.read_csv(io.BytesIO(body))
    assert str(theirs["b"].dtype) == "float64"
    np.testing.assert_array_equal(ours.X[:, 1], theirs["b"].to_numpy())


def test_missing_values_in_a_categorical_column_are_nan():
    data = read_csv(csv("plan,y", "a,x", "NA,z", "b,x", ",z"), "y")
    assert data.dtypes == ["category"]
    assert data.X[0, 0] == "a" and math.isnan(data.X[1, 0]) and math.isnan(data.X[3, 0])


def test_a_stray_value_in_a_numeric_column_is_an_error_naming_column_line_and_value():
    body = csv("a,b,y", "1,2,x", "3,4,z", "5,?,x", "7,8,z", "9,-,x")
    with pytest.raises(ModelOpsError) as failure:
        read_csv(body, "y")
    message = str(failure.value)
    assert "line 4" in message and "column 'b'" in message and "'?'" in message and "1 more" in message
    assert "--as-missing" in message and "--categorical b" in message and "\n" not in message


def test_stray_values_can_be_read_as_missing():
    body = csv("a,b,y", "1,2,x", "3,4,z", "5,?,x", "7,8,z", "9,-,x")
    data = read_csv(body, "y", missing=["?", "-"])
    assert data.dtypes == ["number", "number"]
    assert np.isnan(data.X[:, 1]).sum() == 2
    assert data.missing == ("-", "?")


def test_a_column_declared_categorical_keeps_its_numbers_as_categories():
    data = read_csv(csv("zip,y", "10001,x", "94105,z", "10001,x"), "y", categorical=["zip"])
    assert data.dtypes == ["category"] and data.X[0, 0] == "10001"
    with pytest.raises(ModelOpsError, match="'nope' is not a feature column"):
        read_csv(csv("zip,y", "1,x", "2,z"), "y", categorical=["nope"])
    with pytest.raises(ModelOpsError, match="'y' is the target"):
        read_csv(csv("zip,y", "1,x", "2,z"), "y", categorical=["y"])


def test_a_column_of_mostly_words_is_categorical():
    # numbers are a minority, so the column is categories, not a numeric column with typos
    data = read_csv(csv("size,y", "S,x", "M,z", "L,x", "10,z"), "y")
    assert data.dtypes == ["category"]


def test_an_infinite_value_is_a_stray_value():
    with pytest.raises(ModelOpsError, match="column 'a' is numeric but has 'inf'"):
        read_csv(csv("a,y", "1,x", "2,z", "inf,x"), "y")


def test_an_all_empty_column_is_an_error():
    with pytest.raises(ModelOpsError, match="column 'b' has no values"):
        read_csv(csv("a,b,y", "1,,x", "2,NA,z", "3,,x"), "y")


def test_a_target_with_missing_values_is_an_error():
    with pytest.raises(ModelOpsError, match=r"target column 'y' has 2 missing value\(s\), the first on line 3"):
        read_csv(csv("a,y", "1,1.5", "2,NA", "3,2.5", "4,"), "y")


def test_line_numbers_count_blank_and_multi_line_rows():
    body = csv("a,b,y", "1,2,x", "", '3,4,"two', 'lines"', "5,?,z", "6,7,x")
    with pytest.raises(ModelOpsError, match="line 6: column 'b'"):
        read_csv(body, "y")


def test_a_repeated_header_column_is_an_error():
    with pytest.raises(ModelOpsError, match="column 'a' appears twice"):
        read_csv(csv("a,a,y", "1,2,x", "3,4,z"), "y")


def test_a_recipe_reads_the_same_tokens_again(monkeypatch):
    """A retrain re-reads the original training CSV with the tokens the champion was trained with."""
    from modelops.retrain.data import load_original

    body = csv("a,b,y", *[f"{i},{'?' if i % 5 == 0 else i * 2},{'x' if i % 2 else 'z'}" for i in range(40)])
    trained = train(read_csv(body, "y", missing=["?"]), "tokens")
    assert trained.manifest.recipe["missing_values"] == ["?"]

    class OneObject:
        def __init__(self, bucket, s3=None):
            pass

        def get(self, key):
            return body, '"etag"'

    trained.manifest.training_data["uri"] = "s3://bucket/train.csv"
    again = load_original(trained.manifest, open_store=OneObject)
    assert np.isnan(again.X[:, 1]).sum() == 8


def test_tokens_option_parsing():
    assert parse_tokens("?, -,,") == ("?", "-")
    assert parse_tokens(None) == ()
    assert missing_tokens(["?"]) == NA_VALUES | {"?"}
