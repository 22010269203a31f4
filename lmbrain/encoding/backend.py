"""Array backends for the ridge solvers: numpy (CPU) and torch (GPU when present, else CPU).

A backend is a small object exposing the handful of operations the solvers need, so that
``lmbrain.encoding.ridge`` is written once for both (himalaya's design, without its global state).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from lmbrain.errors import LmbrainError

BACKENDS = ("numpy", "torch", "torch_cpu", "torch_cuda")


class NumpyBackend:
    """numpy arrays with LAPACK decompositions."""

    name = "numpy"

    def asarray(self, x: Any, dtype: DTypeLike = None) -> np.ndarray:
        """``x`` as a numpy array of ``dtype`` (numpy dtype), without copy when possible."""
        return np.asarray(x, dtype=dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        """``x`` as a numpy array on the host."""
        return np.asarray(x)

    def svd(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Thin SVD ``x = U @ diag(s) @ Vt`` with ``s`` decreasing."""
        return np.linalg.svd(x, full_matrices=False)

    def eigh(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Eigen-decomposition of a symmetric matrix, eigenvalues increasing."""
        return np.linalg.eigh(x)

    def solve(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Solution of ``a @ x = b`` (batched over leading axes)."""
        return np.linalg.solve(a, b)

    def stack(self, arrays: list[np.ndarray]) -> np.ndarray:
        """Arrays of one shape stacked along a new first axis."""
        return np.stack(arrays)

    def eye(self, n: int, like: np.ndarray) -> np.ndarray:
        """Identity matrix (n, n) with the dtype of ``like``."""
        return np.eye(n, dtype=like.dtype)

    def index(self, idx: np.ndarray) -> np.ndarray:
        """An index array usable on this backend's arrays."""
        return np.asarray(idx)

    def empty(self, shape: tuple[int, ...], like: np.ndarray) -> np.ndarray:
        """Uninitialised array of ``shape`` with the dtype of ``like``."""
        return np.empty(shape, dtype=like.dtype)

    def sum_of_products(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``(a * b).sum(-2)`` for arrays of shape (..., n, m), without the temporary."""
        return np.einsum("...ij,...ij->...j", a, b)


class TorchBackend:
    """torch tensors on ``device`` (CUDA when available and not forced to CPU)."""

    def __init__(self, device: str | None = None) -> None:
        import torch

        self.torch = torch
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.name = f"torch_{self.device.type}"

    def _dtype(self, dtype: DTypeLike) -> Any:
        if dtype is None:
            return None
        return getattr(self.torch, np.dtype(dtype).name)

    def asarray(self, x: Any, dtype: DTypeLike = None) -> Any:
        """``x`` as a tensor of ``dtype`` (numpy dtype) on this backend's device."""
        torch = self.torch
        if isinstance(x, torch.Tensor):
            return x.to(device=self.device, dtype=self._dtype(dtype) or x.dtype)
        arr = np.asarray(x, dtype=dtype)
        return torch.as_tensor(arr, device=self.device)

    def to_numpy(self, x: Any) -> np.ndarray:
        """``x`` as a numpy array on the host."""
        if isinstance(x, self.torch.Tensor):
            return x.detach().cpu().numpy()
        return np.asarray(x)

    def svd(self, x: Any) -> tuple[Any, Any, Any]:
        """Thin SVD ``x = U @ diag(s) @ Vt`` with ``s`` decreasing."""
        return self.torch.linalg.svd(x, full_matrices=False)

    def eigh(self, x: Any) -> tuple[Any, Any]:
        """Eigen-decomposition of a symmetric matrix, eigenvalues increasing."""
        return self.torch.linalg.eigh(x)

    def solve(self, a: Any, b: Any) -> Any:
        """Solution of ``a @ x = b`` (batched over leading axes)."""
        return self.torch.linalg.solve(a, b)

    def stack(self, arrays: list[Any]) -> Any:
        """Tensors of one shape stacked along a new first axis."""
        return self.torch.stack(arrays)

    def eye(self, n: int, like: Any) -> Any:
        """Identity matrix (n, n) with the dtype and device of ``like``."""
        return self.torch.eye(n, dtype=like.dtype, device=like.device)

    def index(self, idx: np.ndarray) -> Any:
        """An index tensor on this backend's device."""
        return self.torch.as_tensor(np.asarray(idx, dtype=np.int64), device=self.device)

    def empty(self, shape: tuple[int, ...], like: Any) -> Any:
        """Uninitialised tensor of ``shape`` with the dtype and device of ``like``."""
        return self.torch.empty(shape, dtype=like.dtype, device=like.device)

    def sum_of_products(self, a: Any, b: Any) -> Any:
        """``(a * b).sum(-2)`` for tensors of shape (..., n, m)."""
        return (a * b).sum(-2)


Backend = NumpyBackend | TorchBackend


def get_backend(backend: str | Backend = "numpy") -> Backend:
    """The backend object for a name in ``BACKENDS`` ("torch" = CUDA when available, else CPU)."""
    if isinstance(backend, NumpyBackend | TorchBackend):
        return backend
    if backend == "numpy":
        return NumpyBackend()
    if backend in ("torch", "torch_cpu", "torch_cuda"):
        try:
            import torch  # noqa: F401
        except ImportError as exc:  # pragma: no cover - torch is a dependency
            raise LmbrainError("backend='torch' needs the torch package") from exc
        device = {"torch": None, "torch_cpu": "cpu", "torch_cuda": "cuda"}[backend]
        return TorchBackend(device)
    raise LmbrainError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
