"""TensorRT backend (Jetson): runs a prebuilt engine through the name-based tensor API and execute_async_v3.

One code path for TensorRT 8.5/8.6 (JetPack 5) and 10.x (JetPack 6/7). TensorRT and cuda-python are
imported lazily, so this module imports everywhere; `tensorrt_available()` says whether it can run.
The engine's sidecar manifest is checked first: a stale or foreign engine is refused (fail closed).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from edgeanon.inference.backend import ClosingBackend
from edgeanon.inference.errors import ModelError
from edgeanon.inference.manifest import (
    DeviceEnvironment,
    EngineManifest,
    check_engine,
    jetpack_for_l4t,
    read_l4t_release,
)

log = logging.getLogger(__name__)

MIN_TENSORRT = (8, 5)  # the name-based tensor API (set_input_shape, set_tensor_address) needs 8.5


def parse_version(version: str) -> tuple[int, ...]:
    """'10.3.0.26' -> (10, 3, 0, 26); a part's leading digits count ('0b6' -> 0) and a non-numeric part ends it."""
    parts = []
    for piece in version.split("."):
        match = re.match(r"\d+", piece)
        if not match:
            break
        parts.append(int(match.group()))
    return tuple(parts)


def supported_tensorrt(version: str) -> bool:
    """Whether this TensorRT version has the API this backend uses."""
    return parse_version(version)[:2] >= MIN_TENSORRT


def _import_cudart():
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        from cuda import cudart  # older cuda-python (JetPack 5 pins)
    return cudart


def tensorrt_available() -> bool:
    """True when TensorRT (>= 8.5) and cuda-python import and a CUDA device is visible."""
    try:
        import tensorrt as trt

        cudart = _import_cudart()
    except ImportError:
        return False
    if not supported_tensorrt(trt.__version__):
        return False
    err, count = cudart.cudaGetDeviceCount()
    return int(err) == 0 and count > 0


def _check(result):
    """cuda-python returns (err, *values): raise on error, return the values."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise ModelError(f"CUDA error {int(err)} ({err!r})")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def current_environment() -> DeviceEnvironment:
    """TensorRT/CUDA versions, GPU name and L4T release of this machine (needs TensorRT and cuda-python)."""
    import tensorrt as trt

    cudart = _import_cudart()
    runtime = _check(cudart.cudaRuntimeGetVersion())
    props = _check(cudart.cudaGetDeviceProperties(0))
    name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
    name = name.rstrip("\x00").strip()
    l4t = read_l4t_release()
    return DeviceEnvironment(
        tensorrt_version=trt.__version__,
        cuda_version=f"{runtime // 1000}.{(runtime % 1000) // 10}",
        device_name=name,
        l4t_release=l4t,
        jetpack_version=jetpack_for_l4t(l4t),
    )


class _DeviceBuffer:
    """A growable device allocation."""

    def __init__(self, cudart):
        self.cudart = cudart
        self.ptr = 0
        self.nbytes = 0

    def ensure(self, nbytes: int) -> int:
        if nbytes > self.nbytes:
            self.free()
            self.ptr = int(_check(self.cudart.cudaMalloc(max(nbytes, 1))))
            self.nbytes = nbytes
        return self.ptr

    def free(self) -> None:
        if self.ptr:
            self.cudart.cudaFree(self.ptr)
            self.ptr, self.nbytes = 0, 0


class TensorRTBackend(ClosingBackend):
    """A deserialized engine with one execution context, one CUDA stream and growable device buffers.

    close() (or leaving a `with` block) frees the device memory, the stream, the context and the engine.
    """

    stream = None  # set in __init__; None once closed

    def __init__(self, path: str | Path, check_manifest: bool = True):
        self.path = Path(path)
        try:
            import tensorrt as trt

            cudart = _import_cudart()
        except ImportError as exc:
            raise ModelError(f"{self.path}: TensorRT engine given but TensorRT/cuda-python is not installed "
                             f"({exc.name}); use the ONNX model with --backend ort") from exc
        if not supported_tensorrt(trt.__version__):
            raise ModelError(f"TensorRT {trt.__version__} is too old: edgeanon needs 8.5 or newer")
        self._trt, self._cudart = trt, cudart
        self.manifest: EngineManifest | None = (
            check_engine(self.path, current_environment()) if check_manifest else None
        )
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise ModelError(f"{self.path}: TensorRT could not deserialize this engine (built by another "
                             f"TensorRT version or for another GPU?); rebuild it with `edgeanon engines`")
        self.context = self.engine.create_execution_context()
        self.stream = _check(cudart.cudaStreamCreate())
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        is_input = {n: self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.input_names = [n for n in names if is_input[n]]
        self.output_names = [n for n in names if not is_input[n]]
        self._dtypes = {n: np.dtype(trt.nptype(self.engine.get_tensor_dtype(n))) for n in names}
        self._buffers = {n: _DeviceBuffer(cudart) for n in names}

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.stream is None:
            raise ModelError(f"{self.path}: the backend was closed")
        cudart = self._cudart
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        missing = set(self.input_names) - set(inputs)
        if missing:
            raise ValueError(f"missing inputs: {sorted(missing)}")
        hosts = {}
        for name in self.input_names:
            host = np.ascontiguousarray(inputs[name], dtype=self._dtypes[name])
            hosts[name] = host  # keep alive until the stream is synchronized
            if not self.context.set_input_shape(name, tuple(host.shape)):
                raise ModelError(f"{self.path}: input {name} shape {host.shape} is outside the engine's "
                                 f"optimization profile {self._profile(name)}; rebuild with a wider profile")
            ptr = self._buffers[name].ensure(host.nbytes)
            _check(cudart.cudaMemcpyAsync(ptr, host.ctypes.data, host.nbytes, h2d, self.stream))
            self.context.set_tensor_address(name, ptr)
        outputs = {}
        for name in self.output_names:
            shape = tuple(self.context.get_tensor_shape(name))
            out = np.empty(shape, dtype=self._dtypes[name])
            outputs[name] = out
            self.context.set_tensor_address(name, self._buffers[name].ensure(out.nbytes))
        if not self.context.execute_async_v3(self.stream):
            raise ModelError(f"{self.path}: TensorRT execution failed")
        for name, out in outputs.items():
            _check(cudart.cudaMemcpyAsync(out.ctypes.data, self._buffers[name].ptr, out.nbytes, d2h, self.stream))
        _check(cudart.cudaStreamSynchronize(self.stream))
        return {n: o.astype(np.float32, copy=False) for n, o in outputs.items()}

    def _profile(self, name: str) -> str:
        try:
            return str([list(s) for s in self.engine.get_tensor_profile_shape(name, 0)])
        except Exception:  # not every TensorRT version exposes this for every tensor
            return "(unknown)"

    def metadata(self) -> dict[str, str]:
        meta = {"backend": "tensorrt", "tensorrt_version": self._trt.__version__}
        if self.manifest is not None:
            meta.update({f"engine.{k}": str(v) for k, v in self.manifest.to_dict().items() if k != "onnx_metadata"})
            meta.update(self.manifest.onnx_metadata)  # same keys as the ONNX model's own metadata
        return meta

    def close(self) -> None:
        """Free device buffers and the stream, then the context and the engine (in that order); idempotent."""
        for buf in getattr(self, "_buffers", {}).values():
            buf.free()
        if self.stream is not None:
            self._cudart.cudaStreamDestroy(self.stream)
            self.stream = None
        for name in ("context", "engine", "_runtime"):
            if getattr(self, name, None) is not None:
                setattr(self, name, None)
