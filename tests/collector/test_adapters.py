"""Payload adapters: KServe v1, Open Inference Protocol v2, generic JSON."""

from __future__ import annotations

from typing import Any

import pytest

from collector.adapters import PayloadError, Rows, detect, extract
from collector.adapters.paths import get_path
from modeltap.config import PayloadConfig

NAMES = ["a", "b"]


def run(request: Any, response: Any, hint: str | None = None, **payload: Any) -> Rows:
    return extract(
        request, response, payload=PayloadConfig(**payload), feature_names=NAMES, hint=hint
    )


def test_kserve_v1_positional_rows_take_the_configured_names() -> None:
    rows = run({"instances": [[1, 2], [3, 4]]}, {"predictions": [0, 1]})
    assert rows.features == [{"a": 1, "b": 2}, {"a": 3, "b": 4}]
    assert rows.predictions == [0, 1]
    assert rows.scores == [None, None]
    assert rows.instance_ids == [None, None]


def test_kserve_v1_objects_inputs_alias_and_unnamed_columns() -> None:
    rows = run({"inputs": [{"x": 1}, [5, 6, 7]]}, {"predictions": ["yes", "no"]})
    assert rows.features == [{"x": 1}, {"f0": 5, "f1": 6, "f2": 7}]


def test_kserve_v1_picks_prediction_and_score_inside_each_item() -> None:
    rows = run(
        {"instances": [[1, 2]]},
        {"predictions": [{"label": "churn", "p": 0.8}]},
        prediction_path="label",
        score_path="p",
    )
    assert (rows.predictions, rows.scores) == (["churn"], [0.8])


@pytest.mark.parametrize(
    ("request_body", "response_body", "reason"),
    [
        (
            {"instances": [[1, 2], [3, 4]]},
            {"predictions": [0]},
            r"2 instance\(s\) but 1 prediction\(s\)",
        ),
        ({"instances": "x"}, {"predictions": [0]}, "needs an 'instances'"),
        ({"instances": [[1, 2]]}, {"oops": 1}, "has no 'predictions'"),
        ({"instances": [[1, 2]]}, [0], "response must be a JSON object"),
    ],
)
def test_kserve_v1_problems_are_reasons(request_body: Any, response_body: Any, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        run(request_body, response_body, hint="kserve_v1")


V2_REQUEST = {
    "inputs": [
        {"name": "input-0", "shape": [2, 2], "datatype": "FP32", "data": [[1.0, 2.0], [3.0, 4.0]]},
        {"name": "country", "shape": [2], "datatype": "BYTES", "data": ["fr", "de"]},
    ]
}
V2_RESPONSE = {
    "outputs": [
        {"name": "label", "shape": [2], "datatype": "INT64", "data": [1, 0]},
        {"name": "proba", "shape": [2, 2], "datatype": "FP32", "data": [0.2, 0.8, 0.9, 0.1]},
    ]
}


def test_oip_v2_tensors_become_columns() -> None:
    rows = run(V2_REQUEST, V2_RESPONSE)
    assert rows.features == [
        {"input-0_0": 1.0, "input-0_1": 2.0, "country": "fr"},
        {"input-0_0": 3.0, "input-0_1": 4.0, "country": "de"},
    ]
    assert rows.predictions == [1, 0]
    assert rows.scores == [None, None]


def test_oip_v2_single_input_uses_feature_names_and_binary_probabilities_score() -> None:
    request = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [5, 6]}]}
    response = {"outputs": [{"name": "p", "shape": [1, 2], "datatype": "FP32", "data": [0.3, 0.7]}]}
    rows = run(request, response)
    assert rows.features == [{"a": 5, "b": 6}]
    assert rows.predictions == [[0.3, 0.7]]
    assert rows.scores == [0.7]


def test_oip_v2_named_prediction_and_score_outputs() -> None:
    rows = run(V2_REQUEST, V2_RESPONSE, prediction_path="label", score_path="proba")
    assert rows.predictions == [1, 0]
    assert rows.scores == [0.8, 0.1]


@pytest.mark.parametrize(
    ("request_body", "response_body", "reason"),
    [
        (
            {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3]}]},
            V2_RESPONSE,
            "has 3 values for shape",
        ),
        (
            {"inputs": [{"name": "x", "shape": [3], "datatype": "FP32", "data": [1, 2, 3]}]},
            V2_RESPONSE,
            "has 2 rows but the batch has 3",
        ),
        (
            {"inputs": [{"name": "x", "shape": "2", "datatype": "FP32", "data": [1, 2]}]},
            V2_RESPONSE,
            "needs a shape",
        ),
        (V2_REQUEST, {"outputs": []}, "non-empty 'outputs'"),
    ],
)
def test_oip_v2_problems_are_reasons(request_body: Any, response_body: Any, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        run(request_body, response_body, hint="oip_v2")


def test_oip_v2_unknown_output_name() -> None:
    with pytest.raises(PayloadError, match="no output tensor named 'nope'"):
        run(V2_REQUEST, V2_RESPONSE, prediction_path="nope")


def test_generic_object_list_of_records_and_answer_keys() -> None:
    assert run({"a": 1}, {"prediction": 3}).features == [{"a": 1}]
    rows = run([{"a": 1}, {"a": 2}], {"predictions": [7, 8]})
    assert (rows.features, rows.predictions) == ([{"a": 1}, {"a": 2}], [7, 8])
    assert run([1, 2], 0.5).features == [{"a": 1, "b": 2}]  # one row as a bare list


def test_generic_paths_and_scores() -> None:
    rows = run(
        {"data": {"rows": [{"a": 1}, {"a": 2}]}},
        {"result": {"labels": ["x", "y"], "p": [0.1, 0.9]}},
        features_path="data.rows",
        prediction_path="result.labels",
        score_path="result.p",
    )
    assert rows.predictions == ["x", "y"]
    assert rows.scores == [0.1, 0.9]


def test_generic_paths_reach_into_a_list_of_records() -> None:
    answer = {"predictions": [{"label": "churn", "probability": 0.8}, {"label": "stay",
              "probability": 0.3}]}  # fmt: skip
    for prediction, score in (
        ("predictions.label", "predictions.probability"),
        ("predictions.*.label", "predictions.*.probability"),
    ):
        rows = run([{"a": 1}, {"a": 2}], answer, prediction_path=prediction, score_path=score)
        assert (rows.predictions, rows.scores) == (["churn", "stay"], [0.8, 0.3])
    with pytest.raises(PayloadError, match=r"nothing at prediction_path 'predictions\.label'"):
        run([{"a": 1}, {"a": 2}], {"predictions": [{"label": 1}, {"class": 0}]},
            prediction_path="predictions.label")  # fmt: skip


def test_generic_problems_are_reasons() -> None:
    with pytest.raises(PayloadError, match="nothing at features_path 'data'"):
        run({"x": 1}, {}, features_path="data")
    with pytest.raises(PayloadError, match="2 instances but a single prediction"):
        run([{"a": 1}, {"a": 2}], {"prediction": 1})
    with pytest.raises(PayloadError, match="neither an object nor a list"):
        run("text", 1)


def test_instance_ids_are_taken_out_of_the_features() -> None:
    rows = run([{"id": 9, "a": 1}, {"a": 2}], [0, 1], instance_id_field="id")
    assert rows.instance_ids == ["9", None]
    assert rows.features == [{"a": 1}, {"a": 2}]


def test_detection_prefers_the_configured_format_then_the_path_hint() -> None:
    assert detect(V2_REQUEST, None) == "oip_v2"
    assert detect({"instances": []}, None) == "kserve_v1"
    assert detect({"instances": []}, "json") == "json"
    assert detect({"x": 1}, None) == "json"
    rows = run({"instances": [[1, 2]]}, {"predictions": [1]}, format="json")
    assert rows.features == [{"instances": [[1, 2]]}]


def test_paths() -> None:
    document = {"a": [{"b": 1}, {"b": 2}]}
    assert get_path(document, "a.1.b") == 2
    assert get_path(document, "a.-1.b") == 2
    assert get_path(document, None) is document
    with pytest.raises(KeyError):
        get_path(document, "a.5.b")
    with pytest.raises(KeyError):
        get_path(document, "a.x")
    assert get_path(document, "a.b") == get_path(document, "a.*.b") == [1, 2]
    assert get_path({"m": [[1, 2], [3, 4]]}, "m.*.0") == [1, 3]


def test_kserve_v1_bare_predictions_ignore_paths_meant_for_objects() -> None:
    rows = run(
        {"instances": [[1, 2]]}, {"predictions": [1]}, prediction_path="label", score_path="p"
    )
    assert (rows.predictions, rows.scores) == ([1], [None])
    with pytest.raises(PayloadError, match="prediction item: no value at 'label'"):
        run({"instances": [[1, 2]]}, {"predictions": [{"other": 1}]}, prediction_path="label")


def test_class_probabilities_are_kept_whole_in_every_dialect() -> None:
    """A multiclass model's probabilities per row: a k-wide v2 tensor, a list or an object
    inside KServe v1 prediction items, a list of lists or one row's list in generic JSON."""
    three = {
        "outputs": [
            {"name": "label", "shape": [2], "datatype": "INT64", "data": [2, 0]},
            {
                "name": "proba",
                "shape": [2, 3],
                "datatype": "FP32",
                "data": [0, 0.25, 0.75, 1, 0, 0],
            },
        ]
    }
    rows = run(V2_REQUEST, three, prediction_path="label", score_path="proba")
    assert rows.class_scores == [[0.0, 0.25, 0.75], [1.0, 0.0, 0.0]]
    v1 = run(
        {"instances": [[1, 2], [3, 4]]},
        {
            "predictions": [
                {"label": "cat", "p": {"cat": 0.5, "dog": 0.3, "eel": 0.2}},
                {"label": "dog", "p": [0.1, 0.6, 0.3]},
            ]
        },
        prediction_path="label",
        score_path="p",
    )
    assert v1.class_scores == [{"cat": 0.5, "dog": 0.3, "eel": 0.2}, [0.1, 0.6, 0.3]]
    assert v1.scores == [None, None]  # not one number: the binary score stays empty
    batch = run([{"a": 1}, {"a": 2}], {"labels": [1, 0], "p": [[0.2, 0.8], [0.6, 0.4]]},
                prediction_path="labels", score_path="p")  # fmt: skip
    assert batch.class_scores == [[0.2, 0.8], [0.6, 0.4]]
    one = run({"a": 1}, {"label": 2, "p": [0.1, 0.2, 0.7]}, prediction_path="label", score_path="p")
    assert (one.class_scores, one.scores) == ([[0.1, 0.2, 0.7]], [None])


@pytest.mark.parametrize(
    "answered",
    [
        [0.5, "high"],
        [0.5, True],
        {"cat": None, "dog": 1},
        [],
        [0.1] * 257,
        [float("nan"), 1.0],
        [float("inf"), 0.0],
    ],
)
def test_class_probabilities_that_are_not_all_finite_numbers_are_not_kept(answered: Any) -> None:
    rows = run({"instances": [[1, 2]]}, {"predictions": [{"p": answered}]}, score_path="p")
    assert rows.class_scores == [None]
    assert len(rows.features) == 1  # the row itself is captured
