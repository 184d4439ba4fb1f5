"""lowp.torch: lowp's number formats inside PyTorch training.

    import lowp.torch as lt

    y = lt.fake_quant(x, "mxfp8_e4m3", axis=-1)      # quantize, dequantize (CPU fp32/bf16)
    layer = lt.Linear(512, 256, spec="mxfp6")         # drop-in for nn.Linear
    lt.convert(model, "mxfp8")                        # every nn.Linear of a model, in place

The ops run in a C++ library (liblowp_torch_ops.so, built from python/torch/
against the system libtorch) that this package loads with
torch.ops.load_library from its own directory; it registers torch.ops.lowp.*.
It does not need lowp's numpy module (lowp._lowp).

Recipes (lowp.torch.RECIPES): "fp32", the MX ones ("mxfp8", "mxfp8-e4m3",
"mxfp6", "mxfp6-e2m3", "mxfp6-hybrid", "mxfp4", "mxfp4-sr"), the FP8 ones
("fp8-current" a.k.a. "fp8-dynamic", "fp8-delayed", "fp8-blockwise") and
"nvfp4"; see
lowp.torch.recipe(), docs/torch.md and docs/training.md.
"""

import os

try:
    import torch
except ImportError as e:  # pragma: no cover - depends on the machine
    raise ImportError(
        "lowp.torch needs PyTorch (Debian: apt-get install python3-torch libtorch-dev); "
        f"import torch failed: {e}") from e

_LIBRARY_NAME = "liblowp_torch_ops.so"
_HERE = os.path.dirname(os.path.abspath(__file__))
LIBRARY_PATH = os.path.join(_HERE, _LIBRARY_NAME)


def _load_ops():
    if not os.path.exists(LIBRARY_PATH):
        raise ImportError(
            f"lowp.torch: the op library {LIBRARY_PATH} is missing. Build it with lowp's CMake "
            "project (LOWP_TORCH=ON, the default when libtorch-dev is installed): "
            "cmake --preset release && cmake --build --preset release; then put build/python "
            "on PYTHONPATH (or install the package).")
    try:
        torch.ops.load_library(LIBRARY_PATH)
    except OSError as e:
        raise ImportError(f"lowp.torch: could not load the op library {LIBRARY_PATH} "
                          f"(built against another libtorch?): {e}") from e


_load_ops()

from .ops import (fake_quant, fake_quant_per_tensor, fake_quant_tiles, format_max,  # noqa: E402
                  hadamard_matrix, hadamard_rows)
from .spec import (QuantSpec, LinearSpec, RECIPES, ROLES, recipe, with_options,  # noqa: E402
                   reset_stochastic_stream)
from .stats import QuantStats  # noqa: E402
from .linear import (QuantLinearFunction, Linear, convert, quantized_linear,  # noqa: E402
                     QuantMatmulFunction, Matmul, quantized_matmul)

__all__ = [
    "LIBRARY_PATH", "fake_quant", "fake_quant_per_tensor", "fake_quant_tiles", "format_max",
    "hadamard_matrix", "hadamard_rows", "QuantSpec", "with_options", "LinearSpec", "RECIPES",
    "ROLES", "recipe", "reset_stochastic_stream", "QuantStats", "QuantLinearFunction", "Linear",
    "convert", "quantized_linear", "QuantMatmulFunction", "Matmul", "quantized_matmul",
]

from .accum import Accumulator, matmul_acc  # noqa: E402

__all__ += ["Accumulator", "matmul_acc"]
