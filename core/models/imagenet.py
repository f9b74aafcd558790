"""`--pretrained imagenet`: timm's default ImageNet weights of a backbone, from the Hugging Face hub.

The weights are the ones `timm.create_model(name, pretrained=True)` loads: the architecture's default
pretrained tag (resnet101 -> the hub repository `timm/resnet101.a1h_in1k`), file `model.safetensors`
(or `pytorch_model.bin` where a repository has no safetensors), kept in the Hugging Face cache
(`HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`). `imagenet_weights_file`
returns a local file, which then loads exactly like `--pretrained PATH`. It never waits on a network
that is not there (the hub client would retry for most of a minute):

1. a copy in the cache is used as it is, without any connection;
2. with `HF_HUB_OFFLINE` (or `TRANSFORMERS_OFFLINE`) set, or when the hub's host (or the HTTPS proxy)
   does not accept a TCP connection within `PROBE_SECONDS`, DNS included, it fails at once with one
   line that says what to do;
3. otherwise the file is downloaded into the cache (once per machine).
"""

from __future__ import annotations

import os
import socket
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cxr_attention.core.errors import PretrainedWeightsError
from cxr_attention.core.progress import stderr_is_terminal

IMAGENET = "imagenet"  # the --pretrained value that asks for hub weights
PROBE_SECONDS = 1.5  # longest wait for the hub's host to answer before calling it unreachable
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # timm's order: safetensors first
DEFAULT_ENDPOINT = "https://huggingface.co"


def is_imagenet(pretrained: str | None) -> bool:
    """Whether a --pretrained value asks for the hub's ImageNet weights (any case)."""
    return pretrained is not None and pretrained.strip().lower() == IMAGENET


@dataclass(frozen=True)
class HubWeights:
    """Where timm's default pretrained weights of one backbone live on the hub."""

    backbone: str  # timm architecture name, e.g. "resnet101"
    repo_id: str  # hub repository, e.g. "timm/resnet101.a1h_in1k"
    revision: str | None  # pinned revision, None = the repository's main branch
    filenames: tuple[str, ...]  # files to look for, preferred first

    @property
    def source(self) -> str:
        """How a checkpoint records these weights: timm's own notation for hub weights."""
        return f"hf-hub:{self.repo_id}" + (f"@{self.revision}" if self.revision else "")

    @property
    def url(self) -> str:
        return f"{hub_endpoint()}/{self.repo_id}"


def hub_weights(backbone: str) -> HubWeights:
    """The hub repository of `backbone`'s default pretrained tag, from timm's registry (no network)."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(backbone)
    if cfg is None or not cfg.hf_hub_id:
        raise PretrainedWeightsError(
            f"timm has no ImageNet weights on the Hugging Face hub for {backbone}: download weights "
            "of that architecture and pass --pretrained PATH"
        )
    repo_id, _, revision = cfg.hf_hub_id.partition("@")
    filenames = (cfg.hf_hub_filename,) if cfg.hf_hub_filename else WEIGHT_FILES
    return HubWeights(backbone, repo_id, revision or None, filenames)


def hub_cache_dir() -> Path:
    """The Hugging Face cache folder, read from the environment now (the rules of huggingface_hub's
    constants, which it reads once at import)."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(explicit)).expanduser()
    home = os.environ.get("HF_HOME") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface"
    )
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def hub_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def offline_setting() -> str | None:
    """The environment variable that forbids hub access, if one is set to a true value."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
            return name
    return None


def cached_weights(weights: HubWeights) -> Path | None:
    """The weights file already in the Hugging Face cache, or None."""
    from huggingface_hub import try_to_load_from_cache

    for filename in weights.filenames:
        found = try_to_load_from_cache(
            weights.repo_id, filename, cache_dir=hub_cache_dir(), revision=weights.revision
        )
        if isinstance(found, str) and Path(found).is_file():
            return Path(found)
    return None


def probe_address(endpoint: str) -> tuple[str, int]:
    """(host, port) a download would connect to first: the HTTPS proxy when one applies."""
    url = urlsplit(endpoint)
    host = url.hostname or "huggingface.co"
    proxy = urllib.request.getproxies().get(url.scheme or "https")
    if proxy and not urllib.request.proxy_bypass(host):
        proxy_url = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        return proxy_url.hostname or host, proxy_url.port or 3128
    return host, url.port or (443 if url.scheme != "http" else 80)


def reachable(host: str, port: int, timeout: float = PROBE_SECONDS) -> bool:
    """Whether `host:port` accepts a TCP connection within `timeout` seconds, name lookup included
    (a socket timeout does not bound DNS, so the attempt runs in a thread that is not waited for)."""
    finished, connected = threading.Event(), threading.Event()

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                connected.set()
        except OSError:  # refused, unreachable, unknown name: no need to wait any longer
            pass
        finally:
            finished.set()

    threading.Thread(target=attempt, name="hub-probe", daemon=True).start()
    finished.wait(timeout)
    return connected.is_set()


def imagenet_weights_file(backbone: str) -> tuple[Path, HubWeights]:
    """A local file of `backbone`'s ImageNet weights (cached, else downloaded; see the module doc)."""
    weights = hub_weights(backbone)
    cached = cached_weights(weights)
    if cached is not None:
        return cached, weights
    missing = (
        f"the ImageNet weights of {backbone} ({weights.repo_id}) are not in the Hugging Face "
        f"cache ({hub_cache_dir()})"
    )
    fallback = (
        f"or download {weights.filenames[0]} from {weights.url} on a connected machine and pass "
        "--pretrained PATH"
    )
    setting = offline_setting()
    if setting is not None:
        raise PretrainedWeightsError(
            f"{missing} and {setting} is set: unset it on a connected machine, {fallback}"
        )
    host, port = probe_address(hub_endpoint())
    if not reachable(host, port):
        raise PretrainedWeightsError(
            f"{missing} and {host}:{port} cannot be reached: connect this machine, {fallback}"
        )
    return _download(weights, fallback), weights


def _download(weights: HubWeights, fallback: str) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError
    from huggingface_hub.utils import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    quiet = not stderr_is_terminal() and not are_progress_bars_disabled()
    if quiet:  # a download bar off a terminal is carriage-return debris in a log
        disable_progress_bars()
    try:
        for filename in weights.filenames:
            try:
                path = hf_hub_download(
                    weights.repo_id,
                    filename,
                    revision=weights.revision,
                    cache_dir=hub_cache_dir(),
                    endpoint=hub_endpoint(),
                )
                return Path(path)
            except EntryNotFoundError:  # no such file in the repository: try the next name
                continue
    except OSError as exc:  # every hub and network error is an OSError
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise PretrainedWeightsError(
            f"downloading the ImageNet weights of {weights.backbone} ({weights.repo_id}) failed: "
            f"{first}; try again, {fallback}"
        ) from None
    finally:
        if quiet:
            enable_progress_bars()
    raise PretrainedWeightsError(
        f"{weights.url} holds none of {', '.join(weights.filenames)}; download the weights of "
        f"{weights.backbone} and pass --pretrained PATH"
    )
