"""Where training runs and in which precision.

CUDA first, then Apple's MPS, then the CPU. The precision (`FitConfig.amp`, `fit --amp`):

- ``auto`` (the default): on CUDA, autocast in bfloat16 where the GPU supports it (Ampere and
  later: no loss scaling needed), otherwise float16 with a `GradScaler`; images and weights use the
  channels-last layout, which tensor cores prefer. Elsewhere float32 (CPU autocast is slower than
  float32 for these CNNs, MPS autocast is not reliable yet).
- ``bf16``: bfloat16 autocast and channels-last on CUDA *or the CPU*. On the CPU it is slower, but it
  runs the GPU's numerics (autocast's casts, the layout) where tests can reach them.
- ``fp16``: float16 autocast with loss scaling and channels-last; CUDA only.
- ``off``: float32 throughout (channels-last still on CUDA, where it costs nothing).

Whatever autocast does inside the network, the head, the loss, the attention maps handed out, OOD
features and temperatures are float32 (core/models/classifier.py, core/trust/features.py).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from cxr_attention.core.errors import ConfigError

AMP_MODES: tuple[str, ...] = ("auto", "bf16", "fp16", "off")


@dataclass(frozen=True)
class DevicePlan:
    """The device and numerics of one training process."""

    device: torch.device
    amp_dtype: torch.dtype | None  # autocast dtype, None = float32 throughout
    channels_last: bool  # use the NHWC memory layout for images and weights

    @property
    def amp(self) -> str:
        """How config.json records the precision: "bf16", "fp16" or "off"."""
        return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.amp_dtype, "off")

    @property
    def uses_grad_scaler(self) -> bool:
        return self.amp_dtype is torch.float16

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A scaler that is a no-op unless float16 autocast needs it."""
        return torch.amp.GradScaler(self.device.type, enabled=self.uses_grad_scaler)

    def images(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


def select_device(name: str = "auto", local_rank: int | None = None) -> torch.device:
    """Resolve a device name. "auto": CUDA (the GPU of this process's local rank under torchrun),
    else MPS, else the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return _cuda_of_rank(torch.device("cuda", local_rank or 0))
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device cuda requested but no CUDA GPU is visible: use --device cpu")
        if device.index is None:
            device = torch.device("cuda", local_rank or 0)
        _cuda_of_rank(device)
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device mps requested but MPS is not available: use --device cpu")
    return device


def _cuda_of_rank(device: torch.device) -> torch.device:
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise ConfigError(
            f"GPU {device} does not exist: this machine has {count}; start torchrun with "
            f"--nproc_per_node {count} (one process per GPU) or use --device cpu"
        )
    return device


def amp_mode(value: str | bool) -> str:
    """One of `AMP_MODES`; the booleans of runs from before the modes read as "auto" and "off"."""
    if isinstance(value, bool):
        return "auto" if value else "off"
    if value not in AMP_MODES:
        raise ConfigError(f"amp {value!r}: choose one of {', '.join(AMP_MODES)}")
    return value


def plan_device(
    name: str = "auto", amp: str | bool = "auto", local_rank: int | None = None
) -> DevicePlan:
    """Pick the device, autocast dtype and memory layout for training (module docstring)."""
    mode = amp_mode(amp)
    device = select_device(name, local_rank)
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)
    if mode == "auto":
        if device.type != "cuda":
            return DevicePlan(device, None, False)
        mode = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if mode == "off":
        return DevicePlan(device, None, device.type == "cuda")
    if device.type == "mps":
        raise ConfigError(f"--amp {mode} is not supported on MPS: use --amp off (or auto)")
    if mode == "fp16" and device.type != "cuda":
        raise ConfigError("--amp fp16 needs a CUDA GPU: use --amp bf16 on the CPU")
    if mode == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"{device} has no bfloat16 support: use --amp fp16 (or auto)")
    return DevicePlan(device, torch.bfloat16 if mode == "bf16" else torch.float16, True)
