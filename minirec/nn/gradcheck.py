"""Gradient checks for whole layers: every parameter and the input, against central differences."""

from __future__ import annotations

from typing import Callable

import numpy as np

from minirec.autograd import Tensor
from minirec.autograd.gradcheck import check_grads
from minirec.nn.module import Module


def to_float64(module: Module) -> Module:
    """Convert a module's parameters and buffers to float64 in place (finite differences need it)."""
    for _, parameter in module.named_parameters():
        parameter.data = parameter.data.astype(np.float64)
    for owner in _modules(module):
        for name, value in owner._buffers.items():
            owner._buffers[name] = value.astype(np.float64)
    return module


def _modules(module: Module):
    yield module
    for _, child in module.named_children():
        yield from _modules(child)


def check_module_grads(module: Module, forward: Callable[[Tensor], Tensor], x: np.ndarray | None, **tolerances) -> None:
    """Check d(forward)/d(input) and d(forward)/d(parameter) for every parameter of ``module``.

    ``forward`` receives the input tensor (or ``None`` when ``x`` is None) and runs the module. Each
    parameter is checked in turn by swapping in a tensor that the check perturbs. Dropout must be off
    (``module.eval()``) or seeded per call.
    """
    to_float64(module)
    if x is not None:
        check_grads(forward, [x], **tolerances)
    for name, parameter in list(module.named_parameters()):
        owner, attribute = _owner_of(module, name)
        original = parameter.data.copy()

        def with_parameter(value: Tensor, owner=owner, attribute=attribute):
            value.requires_grad = True
            setattr(owner, attribute, value)
            return forward(Tensor(np.asarray(x, dtype=np.float64)) if x is not None else None)

        try:
            check_grads(with_parameter, [original], **tolerances)
        except AssertionError as error:
            raise AssertionError(f"parameter {name}: {error}") from None
        finally:
            setattr(owner, attribute, parameter)


def _owner_of(module: Module, dotted: str) -> tuple[Module, str]:
    *path, attribute = dotted.split(".")
    owner = module
    for part in path:
        owner = getattr(owner, part) if not part.isdigit() else owner[int(part)]
    return owner, attribute
