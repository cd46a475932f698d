"""Kernel tests run two ways: on the CPU under TRITON_INTERPRET=1 (`make test` sets it; small
shapes), and natively on a CUDA GPU (`@pytest.mark.gpu`, real sizes). Nothing here touches the GPU
at import time: availability is asked inside fixtures."""

import pytest
import torch

from attnsim.kernels.launch import interpreting
from attnsim.simulator.hardware import from_name


@pytest.fixture
def device() -> str:
    """Where the small-shape tests run: the interpreter on the CPU, else a GPU if there is one."""
    if interpreting():
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    pytest.skip("needs TRITON_INTERPRET=1 (CPU interpreter) or a CUDA GPU")


@pytest.fixture
def cuda() -> str:
    """Real-size tests: a CUDA GPU with compiled kernels (not the interpreter)."""
    if interpreting() or not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU and TRITON_INTERPRET unset")
    return "cuda"


@pytest.fixture
def h100():
    return from_name("h100")
