"""The batch scheduler behind ``--enable_batching``: TF Serving's ``SharedBatchScheduler`` in Python.

One scheduler per server, shared by every model version (as TF Serving shares one
per source adapter): ``num_batch_threads`` workers serve all queues round-robin.
There is one queue per (servable, tensor signature, input dtypes and inner shapes):
the servable's session ``Run`` calls with the same feeds and fetches are batched,
as ``BatchingSession`` does, so Predict, Classify, Regress and warmup all go
through it. A queue is a list of batches whose last one is *open*:

- a task joins the open batch; when it does not fit (``max_batch_size``) a new
  batch opens, unless the queue already holds ``max_enqueued_batches`` batches:
  then the task is refused with UNAVAILABLE ("The batch scheduling queue to which
  this task was submitted is full; ...");
- a task larger than ``max_batch_size`` is refused with INVALID_ARGUMENT
  ("Task size N is larger than maximum input batch size M");
- a worker takes a closed batch, or the open one when it is full or its first
  task has waited ``batch_timeout_micros`` (at once when that is 0 and a worker
  is free: batches form while the workers are busy);
- the batch runs as ONE call (``batching.merge``/``split``); a task that
  waited past its own deadline is still run unless all have (then every task
  gets RESOURCE_EXHAUSTED, as in ``BatchingSession::ProcessBatch``).
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tfsbed.serve.batching import BatchingParameters, batch_size_of, merge, shape_key, split
from tfsctl.serving.rules import ServingError

log = logging.getLogger(__name__)

Process = Callable[[Mapping[str, np.ndarray], int], Sequence[np.ndarray]]  # (inputs, timeout_ms) -> outputs
_MAX_TASK_WAIT = 3600.0  # seconds; the scheduler always finishes a task, this only bounds the wait


@dataclass(eq=False)
class _Task:
    inputs: Mapping[str, np.ndarray]
    size: int
    timeout_ms: int
    enqueued: float
    done: threading.Event = field(default_factory=threading.Event)
    outputs: list[np.ndarray] | None = None
    error: ServingError | None = None


@dataclass(eq=False)
class _Batch:
    tasks: list[_Task] = field(default_factory=list)
    size: int = 0
    start: float = 0.0


@dataclass(eq=False)
class _Queue:
    owner: Any
    model: str
    process: Process
    batches: deque[_Batch] = field(default_factory=lambda: deque([_Batch()]))
    closed: bool = False

    def idle(self) -> bool:
        return len(self.batches) == 1 and not self.batches[0].tasks


class BatchingStats:
    """Batching metrics under TF Serving's names (``/tensorflow/serving/batching_session/...``).

    Rendered as Prometheus histograms the way TF Serving's exporter names them
    (``:tensorflow:serving:batching_session:processed_batch_size``...). Sizes use
    power-of-two buckets, queuing latency TF Serving's (100 us * 1.2^i, 52 buckets).
    """

    SIZE_BUCKETS: tuple[float, ...] = tuple(float(2**i) for i in range(14))
    LATENCY_BUCKETS_US: tuple[float, ...] = tuple(100.0 * 1.2**i for i in range(52))

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (metric, labels) -> (bucket counts, sum)
        self._hists: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[list[int], list[float]]] = {}

    def _add(self, metric: str, labels: tuple[tuple[str, str], ...], value: float) -> None:
        bounds = self.LATENCY_BUCKETS_US if metric == "queuing_latency" else self.SIZE_BUCKETS
        with self._lock:
            counts, total = self._hists.setdefault((metric, labels), ([0] * (len(bounds) + 1), [0.0]))
            counts[bisect.bisect_left(bounds, value)] += 1
            total[0] += value

    def record_batch(
        self, model: str, thread_pool: str, task_sizes: Sequence[int], padding: int, waits_us: Sequence[float]
    ) -> None:
        by_model = (("model_name", model),)
        self._add("processed_batch_size", by_model, sum(task_sizes) + padding)
        self._add(
            "padding_size", (*by_model, ("execution_batch_size", str(sum(task_sizes) + padding))), padding
        )
        for size in task_sizes:
            self._add("input_batch_size", by_model, size)
        for wait in waits_us:
            self._add("queuing_latency", (("thread_pool_name", thread_pool),), wait)

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            by_metric: dict[str, list[Any]] = defaultdict(list)
            for (metric, labels), (counts, total) in sorted(self._hists.items()):
                by_metric[metric].append((labels, list(counts), total[0]))
        for metric, series in by_metric.items():
            name = f":tensorflow:serving:batching_session:{metric}"
            bounds = self.LATENCY_BUCKETS_US if metric == "queuing_latency" else self.SIZE_BUCKETS
            lines.append(f"# TYPE {name} histogram")
            for labels, counts, total in series:
                text = ",".join(f'{k}="{v}"' for k, v in labels)
                cumulative = 0
                for bound, count in zip([*bounds, float("inf")], counts, strict=True):
                    cumulative += count
                    le = "+Inf" if bound == float("inf") else f"{bound:g}"
                    lines.append(f'{name}_bucket{{{text},le="{le}"}} {cumulative}')
                lines.append(f"{name}_sum{{{text}}} {total:g}")
                lines.append(f"{name}_count{{{text}}} {cumulative}")
        return "\n".join(lines) + ("\n" if lines else "")


class BatchScheduler:
    """Queues and worker threads; ``run`` blocks the calling thread until its slice of a batch is done."""

    def __init__(
        self,
        params: BatchingParameters,
        stats: BatchingStats | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.params = params
        self.stats = stats or BatchingStats()
        self._clock = clock
        self._cond = threading.Condition()
        self._queues: dict[Hashable, _Queue] = {}
        self._order: list[Hashable] = []  # round-robin over queues
        self._next = 0
        self._closed = False
        self._timeout = params.batch_timeout_micros / 1e6
        self._workers = [
            threading.Thread(target=self._work, name=f"{params.thread_pool_name}-{i}", daemon=True)
            for i in range(params.threads)
        ]
        for worker in self._workers:
            worker.start()

    # ------------------------------------------------------------------ callers
    def run(
        self,
        owner: Any,
        model: str,
        signature: Hashable,
        inputs: Mapping[str, np.ndarray],
        timeout_ms: int,
        process: Process,
    ) -> list[np.ndarray] | None:
        """The outputs of ``inputs`` run in a batch; ``None`` when they cannot be batched (run directly)."""
        size = batch_size_of(inputs)
        if size is None:
            return None
        task = _Task(inputs, size, timeout_ms, self._clock())
        key = (id(owner), signature, shape_key(inputs, self.params.pad_variable_length_inputs))
        self._schedule(key, owner, model, process, task)
        if not task.done.wait(_MAX_TASK_WAIT):
            raise ServingError("DEADLINE_EXCEEDED", "Timed out waiting for the batch to be processed")
        if task.error is not None:
            raise ServingError(task.error.code, task.error.message)
        assert task.outputs is not None
        return task.outputs

    def _schedule(self, key: Hashable, owner: Any, model: str, process: Process, task: _Task) -> None:
        limit = self.params.max_batch_size
        if task.size > limit:
            raise ServingError(
                "INVALID_ARGUMENT", f"Task size {task.size} is larger than maximum input batch size {limit}"
            )
        with self._cond:
            if self._closed:
                raise ServingError("UNAVAILABLE", "The batch scheduler is shutting down")
            queue = self._queues.get(key)
            if queue is None:
                queue = _Queue(owner, model, process)
                self._queues[key] = queue
                self._order.append(key)
            open_batch = queue.batches[-1]
            if open_batch.size + task.size > limit:
                if len(queue.batches) >= self.params.max_enqueued_batches:
                    raise ServingError(
                        "UNAVAILABLE",
                        "The batch scheduling queue to which this task was submitted is full; currently "
                        f"{len(queue.batches)} batches enqueued and max_enqueued_batches is "
                        f"{self.params.max_enqueued_batches}",
                    )
                open_batch = _Batch()
                queue.batches.append(open_batch)
            if not open_batch.tasks:
                open_batch.start = task.enqueued
            open_batch.tasks.append(task)
            open_batch.size += task.size
            self._cond.notify()

    def forget(self, owner: Any) -> None:
        """``owner`` (a servable) is unloading: drop its queues once they are empty."""
        with self._cond:
            for key, queue in list(self._queues.items()):
                if queue.owner is owner:
                    queue.closed = True
                    if queue.idle():
                        self._drop(key)

    def close(self, timeout: float = 10.0) -> None:
        """Fail the tasks still queued, stop the workers (bounded)."""
        with self._cond:
            self._closed = True
            for queue in self._queues.values():
                for batch in queue.batches:
                    for task in batch.tasks:
                        task.error = ServingError("UNAVAILABLE", "The batch scheduler is shutting down")
                        task.done.set()
                queue.batches = deque([_Batch()])
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.join(timeout=max(0.0, deadline - time.monotonic()))

    # ------------------------------------------------------------------ workers
    def _drop(self, key: Hashable) -> None:
        del self._queues[key]
        self._order.remove(key)
        self._next = 0

    def _take(self, now: float) -> tuple[_Queue, _Batch] | float | None:
        """A batch to run, else the seconds until an open batch times out (``None``: nothing queued)."""
        wait: float | None = None
        count = len(self._order)
        for i in range(count):
            key = self._order[(self._next + i) % count]
            queue = self._queues[key]
            if len(queue.batches) > 1:
                batch = queue.batches.popleft()
            else:
                batch = queue.batches[0]
                if not batch.tasks:
                    continue
                due = batch.start + self._timeout - now
                if batch.size < self.params.max_batch_size and due > 0:
                    wait = due if wait is None else min(wait, due)
                    continue
                queue.batches[0] = _Batch()
            self._next = (self._next + i + 1) % count
            if queue.closed and queue.idle():
                self._drop(key)
            return queue, batch
        return wait

    def _work(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return
                    taken = self._take(self._clock())
                    if isinstance(taken, tuple):
                        break
                    # Bounded: a stalled notify never parks a worker for long.
                    self._cond.wait(timeout=1.0 if taken is None else min(taken, 1.0))
            queue, batch = taken
            self._process(queue, batch)

    def _process(self, queue: _Queue, batch: _Batch) -> None:
        now = self._clock()
        tasks = batch.tasks
        try:
            expired = [t.timeout_ms > 0 and (now - t.enqueued) * 1000 >= t.timeout_ms for t in tasks]
            if all(expired):
                raise ServingError(
                    "RESOURCE_EXHAUSTED", "Run() timeout exceeded while waiting in batching queue"
                )
            # The batch runs with the longest timeout of its tasks (none if one has none).
            timeout_ms = 0 if any(t.timeout_ms <= 0 for t in tasks) else max(t.timeout_ms for t in tasks)
            merged, sizes, padding = merge(
                [t.inputs for t in tasks],
                self.params.allowed_batch_sizes,
                self.params.pad_variable_length_inputs,
            )
            self.stats.record_batch(
                queue.model,
                self.params.thread_pool_name,
                sizes,
                padding,
                [(now - t.enqueued) * 1e6 for t in tasks],
            )
            outputs = [np.asarray(v) for v in queue.process(merged, timeout_ms)]
            for task, part in zip(tasks, split(outputs, sizes, padding), strict=True):
                task.outputs = part
        except ServingError as exc:
            for task in tasks:
                task.error = exc
        except Exception as exc:  # a bug here must not leave callers waiting
            log.exception("batch of %d tasks for %s failed", len(tasks), queue.model)
            for task in tasks:
                task.error = ServingError("INTERNAL", f"Batch processing failed: {exc}")
        finally:
            for task in tasks:
                task.done.set()
