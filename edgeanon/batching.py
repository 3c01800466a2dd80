"""One model shared by several camera threads: requests that wait at the same time go through in one call.

A `SharedModel` wraps a Backend and is itself one, so each camera's FaceDetector and FaceGenerator use it
as they would their own backend. Its server thread runs what is pending once every camera with a frame in
progress (`BatchGate.frame`) is waiting on some shared model, or once the oldest request has waited
`wait_s`: frames that are ready together go through in one call, and a camera that hangs or has no frame
delays nobody. Requests whose inputs agree in all but the first (batch) axis are joined along it when the
model has a dynamic batch axis (ONNX Runtime) or a batch profile (TensorRT), up to `max_batch` rows; else
they run one after another in the one session. An error of a call is every request's error: a shared
detector that faults fails every camera's frame closed.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeanon.inference.backend import Backend
from edgeanon.inference.errors import ModelError


class BatchGate:
    """Counts the frames in progress and the threads waiting on a shared model (one lock for all models)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.in_frame = 0
        self.waiting = 0

    @contextlib.contextmanager
    def frame(self) -> Iterator[None]:
        """Around one frame's redaction: while inside, a shared model may wait for this thread's request."""
        with self.cond:
            self.in_frame += 1
        try:
            yield
        finally:
            with self.cond:
                self.in_frame -= 1
                self.cond.notify_all()

    def settled(self) -> bool:
        """Every frame in progress waits on a model: no other request is coming now (call under `cond`)."""
        return self.waiting >= self.in_frame


@dataclass
class _Request:
    inputs: dict[str, np.ndarray]
    since: float
    rows: int
    key: tuple
    outputs: dict[str, np.ndarray] | None = None
    error: BaseException | None = None
    done: bool = False
    batch: int = field(default=1)  # how many requests shared the call that served this one


def batch_limit(backend: Backend, cap: int) -> int:
    """Rows one call may take: the largest batch of a TensorRT engine's profile (its manifest, at most `cap`);
    `cap` for an ONNX model with a dynamic first axis on a GPU (CUDA); else 1, one call per request.

    ONNX Runtime on the CPU gets one call per request: there a joined call costs no less a row than single ones
    (`python -m bench.multicam_bench --joined`, docs/multicam.md: the INT8 detector at 1280x736, 107 ms a frame
    in single calls, 158 ms joined by four), and its memory arena would keep the joined call's peak for good.
    """
    manifest = getattr(backend, "manifest", None)
    if manifest is not None and getattr(manifest, "profiles", None):
        first = backend.input_names[0]
        try:
            return max(1, min(cap, int(manifest.profiles[first]["max"][0])))
        except (KeyError, IndexError, TypeError, ValueError):
            return 1
    session = getattr(backend, "session", None)
    if session is not None and "CUDAExecutionProvider" in session.get_providers():
        dim = session.get_inputs()[0].shape[0]
        return cap if not isinstance(dim, int) or dim < 1 else 1
    return 1


def has_batch_axis(backend: Backend) -> bool:
    """Whether an ONNX Runtime model's first input has a dynamic first (batch) axis."""
    session = getattr(backend, "session", None)
    if session is None:
        return False
    dim = session.get_inputs()[0].shape[0]
    return not isinstance(dim, int) or dim < 1


def batch_profile(limit: int) -> tuple[int, int, int]:
    """TensorRT optimization-profile batch range (min, opt, max) for a model shared by `limit` cameras."""
    limit = max(1, int(limit))
    return (1, limit, limit)


class SharedModel:
    """A Backend that several threads call at once; see the module docstring."""

    def __init__(self, backend: Backend, gate: BatchGate, wait_s: float, max_batch: int, name: str = "model"):
        self.backend = backend
        self.path: Path = backend.path
        self.input_names = list(backend.input_names)
        self.output_names = list(backend.output_names)
        self.gate = gate
        self.wait_s = max(0.0, float(wait_s))
        self.max_batch = max(1, int(max_batch))
        self.name = name
        self.calls = 0
        self.requests = 0
        self._pending: list[_Request] = []
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name=f"shared-{name}", daemon=True)
        self._thread.start()

    # -- the Backend interface ------------------------------------------------------------------

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Queue this request and wait for its outputs (or its call's error)."""
        first = inputs[self.input_names[0]]
        key = tuple((n, inputs[n].shape[1:], inputs[n].dtype.str) for n in self.input_names)
        request = _Request(inputs, time.monotonic(), int(first.shape[0]) if first.ndim else 1, key)
        cond = self.gate.cond
        with cond:
            if self._closed:
                raise ModelError(f"{self.path}: the shared {self.name} was closed")
            self._pending.append(request)
            self.gate.waiting += 1
            cond.notify_all()
            try:
                cond.wait_for(lambda: request.done)
            finally:
                self.gate.waiting -= 1
                cond.notify_all()
        if request.error is not None:
            raise request.error
        assert request.outputs is not None
        return request.outputs

    def metadata(self) -> dict[str, str]:
        return self.backend.metadata()

    def close(self) -> None:
        """Fail what is pending, stop the server thread, close the backend; idempotent."""
        with self.gate.cond:
            if self._closed:
                return
            self._closed = True
            self.gate.cond.notify_all()
        self._thread.join(timeout=5.0)
        self.backend.close()

    def stats(self) -> dict[str, float]:
        return {"calls": self.calls, "requests": self.requests,
                "per_call": round(self.requests / self.calls, 2) if self.calls else 0.0}

    # -- the server -----------------------------------------------------------------------------

    def _take(self) -> list[_Request] | None:
        """The next batch, once it is due (call under the lock); None when closed."""
        cond = self.gate.cond
        while True:
            if self._closed:
                for r in self._pending:
                    r.error, r.done = ModelError(f"{self.path}: the shared {self.name} was closed"), True
                self._pending.clear()
                cond.notify_all()
                return None
            if not self._pending:
                cond.wait()
                continue
            head = self._pending[0]
            same = [r for r in self._pending if r.key == head.key]
            left = head.since + self.wait_s - time.monotonic()
            if self.gate.settled() or left <= 0 or sum(r.rows for r in same) >= self.max_batch:
                break
            cond.wait(left)
        batch, rows = [], 0
        for r in same:
            if batch and rows + r.rows > self.max_batch:
                break
            batch.append(r)
            rows += r.rows
        for r in batch:
            self._pending.remove(r)
        return batch

    def _serve(self) -> None:
        while True:
            with self.gate.cond:
                batch = self._take()
            if batch is None:
                return
            self._run_batch(batch)
            with self.gate.cond:
                for r in batch:
                    r.done = True
                self.gate.cond.notify_all()

    def _run_batch(self, batch: list[_Request]) -> None:
        try:
            if len(batch) == 1 or self.max_batch == 1:
                for r in batch:
                    r.outputs = self.backend.run(r.inputs)
                    self.calls += 1
            else:
                joined = {n: np.concatenate([r.inputs[n] for r in batch]) for n in self.input_names}
                outputs = self.backend.run(joined)
                self.calls += 1
                start = 0
                for r in batch:
                    r.outputs = {n: o[start:start + r.rows] for n, o in outputs.items()}
                    start += r.rows
            for r in batch:
                r.batch = len(batch)
            self.requests += len(batch)
        except BaseException as exc:  # every request of the call fails with it: fail closed, never half-served
            for r in batch:
                r.outputs, r.error = None, exc
