"""tfsbed.serve.batching: BatchingParameters parsing/validation and batch assembly (pure)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tfsbed.serve.batching import (
    BatchingParameters,
    batch_size_of,
    load_batching_parameters,
    merge,
    parse_batching_parameters,
    round_to_allowed,
    shape_key,
    split,
)
from tfsctl.errors import InvalidInput
from tfsctl.serving.rules import ServingError

FULL = """
max_batch_size { value: 16 }
batch_timeout_micros { value: 2000 }
max_enqueued_batches { value: 4 }
num_batch_threads { value: 3 }
thread_pool_name { value: "pool" }
allowed_batch_sizes: 4
allowed_batch_sizes: 8
allowed_batch_sizes: 16
pad_variable_length_inputs: true
"""


class TestParameters:
    def test_every_field_is_read_from_the_text_format(self) -> None:
        params = parse_batching_parameters(FULL, "b.pbtxt")
        assert params == BatchingParameters(
            max_batch_size=16,
            batch_timeout_micros=2000,
            max_enqueued_batches=4,
            num_batch_threads=3,
            thread_pool_name="pool",
            allowed_batch_sizes=(4, 8, 16),
            pad_variable_length_inputs=True,
        )
        assert params.threads == 3

    def test_unset_fields_take_tf_serving_defaults(self) -> None:
        params = parse_batching_parameters("max_batch_size { value: 8 }", "b.pbtxt")
        assert (params.max_batch_size, params.batch_timeout_micros, params.max_enqueued_batches) == (8, 0, 10)
        assert params.thread_pool_name == "batch_threads"
        assert params.allowed_batch_sizes == ()
        assert params.threads >= 1

    def test_flag_without_file_uses_the_model_server_thread_pool(self) -> None:
        params = BatchingParameters.flag_only()
        assert params.thread_pool_name == "model_server_batch_threads"
        assert params.max_batch_size == 1000

    def test_chart_rendering_parses(self) -> None:
        text = (
            "max_batch_size { value: 32 }\nbatch_timeout_micros { value: 1000 }\n"
            "max_enqueued_batches { value: 100 }\nnum_batch_threads { value: 4 }\n"
            "pad_variable_length_inputs: false\n"
        )
        assert parse_batching_parameters(text, "x").max_enqueued_batches == 100

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("max_batch_size: 8", "invalid text format of tensorflow.serving.BatchingParameters"),
            ("max_batch_size { value: 8 ", "invalid text format"),
            ("batch_size { value: 8 }", "batch_size"),
            ("max_batch_size { value: 0 }", "max_batch_size: max_batch_size must be positive; was 0"),
            (
                "batch_timeout_micros { value: -1 }",
                "batch_timeout_micros: batch_timeout_micros must be non-neg",
            ),
            (
                "max_enqueued_batches { value: 0 }",
                "max_enqueued_batches: max_enqueued_batches must be positive",
            ),
            (
                "num_batch_threads { value: 0 }",
                "num_batch_threads: num_batch_threads must be positive; was 0",
            ),
            (
                "max_batch_size { value: 8 } allowed_batch_sizes: [4, 4, 8]",
                "allowed_batch_sizes: allowed_batch_sizes entries must be monotonically increasing",
            ),
            (
                "max_batch_size { value: 8 } allowed_batch_sizes: 2 allowed_batch_sizes: 4",
                "allowed_batch_sizes: Last entry in allowed_batch_sizes must match max_batch_size; "
                "last entry was 4; expected 8",
            ),
            ("allowed_batch_sizes: 32", "last entry was 32; expected 1000"),
            ("enable_large_batch_splitting { value: true }", "enable_large_batch_splitting is not supported"),
        ],
    )
    def test_invalid_file_is_one_line_naming_the_flag_and_field(self, text: str, expected: str) -> None:
        with pytest.raises(InvalidInput) as info:
            parse_batching_parameters(text, "/etc/b.pbtxt")
        message = str(info.value)
        assert message.startswith("--batching_parameters_file: /etc/b.pbtxt: ")
        assert expected in message
        assert "\n" not in message

    def test_missing_file_names_the_flag(self, tmp_path: Path) -> None:
        with pytest.raises(InvalidInput, match=r"^--batching_parameters_file: cannot read .*nope"):
            load_batching_parameters(f"{tmp_path}/nope")


class TestAssembly:
    def test_batch_size_is_the_common_leading_dimension(self) -> None:
        assert batch_size_of({"a": np.zeros((3, 2)), "b": np.zeros((3,))}) == 3

    @pytest.mark.parametrize(
        "inputs",
        [
            {"a": np.float32(1.0) * np.ones(())},
            {"a": np.zeros((2, 1)), "b": np.zeros((3, 1))},
            {"a": np.zeros((0, 4))},
            {},
        ],
    )
    def test_inputs_without_a_common_batch_dimension_are_not_batchable(
        self, inputs: dict[str, np.ndarray]
    ) -> None:
        assert batch_size_of(inputs) is None

    def test_shape_key_separates_inner_shapes_unless_padding(self) -> None:
        a, b = {"x": np.zeros((1, 3), np.float32)}, {"x": np.zeros((2, 4), np.float32)}
        assert shape_key(a, False) != shape_key(b, False)
        assert shape_key(a, True) == shape_key(b, True)
        assert shape_key(a, True) != shape_key({"x": np.zeros((1, 3), np.int32)}, True)

    def test_round_to_allowed_picks_the_next_allowed_size(self) -> None:
        assert [round_to_allowed((2, 4, 8), n) for n in (1, 2, 3, 5, 8)] == [2, 2, 4, 8, 8]
        assert round_to_allowed((), 5) == 5

    def test_merge_concatenates_in_task_order_and_split_gives_each_task_its_rows(self) -> None:
        tasks = [{"x": np.array([[1.0], [2.0]])}, {"x": np.array([[3.0]])}, {"x": np.array([[4.0], [5.0]])}]
        merged, sizes, padding = merge(tasks)
        assert merged["x"].ravel().tolist() == [1, 2, 3, 4, 5]
        assert (sizes, padding) == ([2, 1, 2], 0)
        parts = split([merged["x"] * 10], sizes, padding)
        assert [p[0].ravel().tolist() for p in parts] == [[10, 20], [30], [40, 50]]

    def test_padding_repeats_the_last_tasks_first_row_and_is_dropped_on_split(self) -> None:
        tasks = [{"x": np.array([[1.0]])}, {"x": np.array([[2.0], [3.0]])}]
        merged, sizes, padding = merge(tasks, allowed=(4, 8))
        assert padding == 1
        assert merged["x"].ravel().tolist() == [1, 2, 3, 2]
        parts = split([merged["x"] + 1], sizes, padding)
        assert [p[0].ravel().tolist() for p in parts] == [[2], [3, 4]]

    def test_variable_length_inputs_are_padded_with_the_tensors_first_value(self) -> None:
        tasks = [{"x": np.array([[7, 8]])}, {"x": np.array([[1, 2, 3]])}]
        merged, _, _ = merge(tasks, pad_variable_length=True)
        assert merged["x"].tolist() == [[7, 8, 7], [1, 2, 3]]

    def test_different_inner_shapes_without_padding_fail_like_tf_serving(self) -> None:
        tasks = [{"x": np.zeros((1, 2))}, {"x": np.zeros((1, 3))}]
        with pytest.raises(ServingError, match="different shapes and padding is turned off") as info:
            merge(tasks)
        assert info.value.code == "FAILED_PRECONDITION"

    def test_split_rejects_outputs_that_are_not_batched(self) -> None:
        with pytest.raises(ServingError, match="0th dimension does not equal"):
            split([np.zeros((2, 3))], [1, 2], 0)
        with pytest.raises(ServingError, match="0 dimensions"):
            split([np.zeros(())], [1], 0)
