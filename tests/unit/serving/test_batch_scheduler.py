"""tfsbed.serve.batch_scheduler: queues, batch formation, limits and errors, with real threads.

The batched computation here is a plain numpy function (x * 2 + 1) so each test
knows the exact answer; the served-model path is covered in tests/e2e/serving.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from tfsbed.serve.batch_scheduler import BatchScheduler
from tfsbed.serve.batching import BatchingParameters
from tfsctl.serving.rules import ServingError

WAIT = 30.0  # bound for every wait in these tests


class Model:
    """The batched function: records the size of every call it gets."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.calls: list[int] = []
        self.gate = gate
        self.entered = threading.Event()

    def __call__(self, inputs: Mapping[str, np.ndarray], timeout_ms: int) -> Sequence[np.ndarray]:
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(WAIT)
        self.calls.append(int(inputs["x"].shape[0]))
        return [inputs["x"] * 2 + 1]


def run_concurrently(scheduler: BatchScheduler, model: Model, inputs: list[np.ndarray]) -> list[object]:
    results: list[object] = [None] * len(inputs)

    def one(i: int) -> None:
        try:
            results[i] = scheduler.run(model, "m", "sig", {"x": inputs[i]}, 0, model)
        except ServingError as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    return results


Factory = Callable[..., BatchScheduler]


@pytest.fixture
def make() -> Iterator[Factory]:
    """BatchScheduler(BatchingParameters(**kwargs)), closed after the test."""
    made: list[BatchScheduler] = []

    def factory(**kwargs: Any) -> BatchScheduler:
        scheduler = BatchScheduler(BatchingParameters(**kwargs))
        made.append(scheduler)
        return scheduler

    yield factory
    for scheduler in made:
        scheduler.close()


def test_concurrent_tasks_run_as_one_batch_and_get_their_own_rows(make: Factory) -> None:
    # A long timeout: the batch runs when it is full (4 rows), so it holds all four tasks.
    scheduler = make(max_batch_size=4, batch_timeout_micros=60_000_000, num_batch_threads=1)
    model = Model()
    inputs = [np.full((1, 3), float(i), np.float32) for i in range(4)]
    results = run_concurrently(scheduler, model, inputs)
    assert model.calls == [4]
    for i, result in enumerate(results):
        assert isinstance(result, list)
        np.testing.assert_array_equal(result[0], inputs[i] * 2 + 1)


def test_timeout_runs_a_partial_batch(make: Factory) -> None:
    scheduler = make(max_batch_size=64, batch_timeout_micros=1000, num_batch_threads=1)
    model = Model()
    (result,) = run_concurrently(scheduler, model, [np.ones((2, 1), np.float32)])
    assert model.calls == [2]
    assert isinstance(result, list)
    assert result[0].ravel().tolist() == [3.0, 3.0]


def test_batches_are_padded_to_allowed_sizes_and_padding_is_not_returned(make: Factory) -> None:
    scheduler = make(
        max_batch_size=8, allowed_batch_sizes=(4, 8), batch_timeout_micros=1000, num_batch_threads=1
    )
    model = Model()
    (result,) = run_concurrently(scheduler, model, [np.array([[1.0], [2.0], [3.0]], np.float32)])
    assert model.calls == [4]
    assert isinstance(result, list)
    assert result[0].ravel().tolist() == [3.0, 5.0, 7.0]
    metrics = scheduler.stats.render()
    assert ':tensorflow:serving:batching_session:processed_batch_size_sum{model_name="m"} 4' in metrics
    assert 'padding_size_sum{model_name="m",execution_batch_size="4"} 1' in metrics


def test_task_larger_than_max_batch_size_is_invalid_argument(make: Factory) -> None:
    scheduler = make(max_batch_size=4, num_batch_threads=1)
    model = Model()
    with pytest.raises(ServingError) as info:
        scheduler.run(model, "m", "sig", {"x": np.zeros((5, 1))}, 0, model)
    assert info.value.code == "INVALID_ARGUMENT"
    assert info.value.message == "Task size 5 is larger than maximum input batch size 4"
    assert model.calls == []


def test_full_queue_is_unavailable_like_tf_serving(make: Factory) -> None:
    # One worker held inside a batch; max_enqueued_batches=1 leaves room for one open batch of 2 rows.
    gate = threading.Event()
    scheduler = make(max_batch_size=2, max_enqueued_batches=1, num_batch_threads=1)
    model = Model(gate)
    first = threading.Thread(
        target=scheduler.run, args=(model, "m", "sig", {"x": np.zeros((2, 1))}, 0, model)
    )
    first.start()
    assert model.entered.wait(WAIT)  # the worker is busy with the first batch
    second = threading.Thread(
        target=scheduler.run, args=(model, "m", "sig", {"x": np.zeros((2, 1))}, 0, model)
    )
    second.start()
    try:
        # The second task fills the open batch; the third does not fit and no batch can be added.
        deadline = threading.Event()
        for _ in range(100):
            try:
                scheduler.run(model, "m", "sig", {"x": np.zeros((1, 1))}, 0, model)
            except ServingError as exc:
                assert exc.code == "UNAVAILABLE"
                assert exc.message == (
                    "The batch scheduling queue to which this task was submitted is full; "
                    "currently 1 batches enqueued and max_enqueued_batches is 1"
                )
                break
            deadline.wait(0.05)  # the second task was not queued yet; try again
        else:
            pytest.fail("the queue never reported full")
    finally:
        gate.set()
        first.join(WAIT)
        second.join(WAIT)
    assert model.calls == [2, 2]


def test_unbatchable_inputs_are_returned_to_the_caller_to_run_directly(make: Factory) -> None:
    scheduler = make(num_batch_threads=1)
    model = Model()
    assert scheduler.run(model, "m", "sig", {"x": np.float32(1) * np.ones(())}, 0, model) is None
    assert scheduler.run(model, "m", "sig", {"x": np.zeros((1, 1)), "y": np.zeros((2, 1))}, 0, model) is None
    assert model.calls == []


def test_different_inner_shapes_go_to_different_batches(make: Factory) -> None:
    scheduler = make(max_batch_size=8, batch_timeout_micros=200_000, num_batch_threads=2)
    model = Model()
    inputs = [np.ones((1, 2), np.float32), np.ones((1, 3), np.float32)]
    results = run_concurrently(scheduler, model, inputs)
    assert sorted(model.calls) == [1, 1]
    assert [r[0].shape for r in results] == [(1, 2), (1, 3)]  # type: ignore[index]


def test_a_failing_batch_fails_each_of_its_tasks_with_the_error(make: Factory) -> None:
    scheduler = make(max_batch_size=2, batch_timeout_micros=60_000_000, num_batch_threads=1)

    def broken(inputs: Mapping[str, np.ndarray], timeout_ms: int) -> Sequence[np.ndarray]:
        raise ServingError("INVALID_ARGUMENT", "bad input")

    results: list[object] = []
    lock = threading.Lock()

    def one() -> None:
        try:
            scheduler.run(broken, "m", "sig", {"x": np.zeros((1, 1))}, 0, broken)
        except ServingError as exc:
            with lock:
                results.append((exc.code, exc.message))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert results == [("INVALID_ARGUMENT", "bad input")] * 2


def test_tasks_that_all_waited_past_their_deadline_get_resource_exhausted() -> None:
    # A frozen clock: the open batch is due (1 ms timeout) only when the test moves time by 1 s,
    # by which time the task (50 ms deadline) has waited too long.
    now = [100.0]
    scheduler = BatchScheduler(
        BatchingParameters(max_batch_size=4, batch_timeout_micros=1000, num_batch_threads=1),
        clock=lambda: now[0],
    )
    model = Model()
    errors: list[ServingError] = []

    def one() -> None:
        try:
            scheduler.run(model, "m", "sig", {"x": np.zeros((2, 1))}, 50, model)
        except ServingError as exc:
            errors.append(exc)

    try:
        thread = threading.Thread(target=one)
        thread.start()
        for _ in range(200):  # until the task is queued
            with scheduler._cond:
                if scheduler._queues:
                    break
            threading.Event().wait(0.01)
        now[0] += 1.0
        thread.join(WAIT)
    finally:
        scheduler.close()
    assert [(e.code, e.message) for e in errors] == [
        ("RESOURCE_EXHAUSTED", "Run() timeout exceeded while waiting in batching queue")
    ]
    assert model.calls == []


def test_closing_fails_queued_tasks(make: Factory) -> None:
    scheduler = make(max_batch_size=8, batch_timeout_micros=60_000_000, num_batch_threads=1)
    model = Model()
    errors: list[str] = []

    def one() -> None:
        try:
            scheduler.run(model, "m", "sig", {"x": np.zeros((1, 1))}, 0, model)
        except ServingError as exc:
            errors.append(exc.code)

    thread = threading.Thread(target=one)
    thread.start()
    for _ in range(200):
        with scheduler._cond:
            if scheduler._queues:
                break
        threading.Event().wait(0.01)
    scheduler.close()
    thread.join(WAIT)
    assert errors == ["UNAVAILABLE"]
    assert model.calls == []
