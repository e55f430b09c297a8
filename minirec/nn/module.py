"""The base class of every layer: parameter discovery, train/eval mode and state dictionaries."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from minirec.autograd import Tensor


class Module:
    """A layer or model: holds parameters (tensors with ``requires_grad``), buffers and sub-modules.

    Parameters and sub-modules are found by walking the instance's attributes, including lists of
    modules, so a subclass only assigns them in ``__init__``. Buffers are arrays that are saved with
    the model but not trained (BatchNorm's running statistics); register them with
    :meth:`register_buffer`.
    """

    def __init__(self) -> None:
        self.training = True
        self._buffers: dict[str, np.ndarray] = {}

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError

    # ----------------------------------------------------------------- discovery
    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{name}.{i}", item

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        for name, value in vars(self).items():
            if isinstance(value, Tensor) and value.requires_grad:
                yield prefix + name, value
        for name, child in self.named_children():
            yield from child.named_parameters(prefix + name + ".")

    def parameters(self) -> list[Tensor]:
        return [p for _, p in self.named_parameters()]

    def register_buffer(self, name: str, value: np.ndarray) -> None:
        self._buffers[name] = value

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for name, value in self._buffers.items():
            yield prefix + name, value
        for name, child in self.named_children():
            yield from child.named_buffers(prefix + name + ".")

    # ----------------------------------------------------------------- modes
    def train(self, mode: bool = True) -> "Module":
        self.training = mode
        for _, child in self.named_children():
            child.train(mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def zero_grad(self) -> None:
        for parameter in self.parameters():
            parameter.grad = None

    # ----------------------------------------------------------------- saving
    def state_dict(self) -> dict[str, np.ndarray]:
        """Return every parameter and buffer by dotted name (buffers prefixed ``buffer:``)."""
        state = {name: p.data for name, p in self.named_parameters()}
        state.update({"buffer:" + name: b for name, b in self.named_buffers()})
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays into this module's parameters and buffers; names and shapes must match exactly."""
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise ValueError(
                f"checkpoint does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}; "
                "was it written with other --views, --fusion or dimensions?"
            )
        for name, target in own.items():
            source = np.asarray(state[name])
            if source.shape != target.shape:
                raise ValueError(f"checkpoint entry {name!r} has shape {source.shape}, the model expects {target.shape}")
            target[...] = source

    def num_parameters(self) -> int:
        return int(sum(p.size for p in self.parameters()))
