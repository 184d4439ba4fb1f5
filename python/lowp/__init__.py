"""lowp: exact low-precision number formats for deep learning, for numpy.

The C++ core of lowp (the same code as the ``lowp`` command-line tool, with the
same results bit for bit) over numpy arrays:

  formats(), format_info(name)       the registered formats and their properties
  encode(x, format, ...)             real numbers -> codes (uint8/uint16/uint32)
  decode(codes, format, ...)         codes -> exact values (float32)
  fake_quant(x, format, ...)         quantize then dequantize (scalar or block formats)
  quantize(x, format, ...)           -> PackedTensor: MX / NVFP4 in packed bytes
  quantize_matrix(w, format)         -> PackedMatrix: a weight matrix as the runtime stores it
  fake_quantize_rows(x, format)      each row quantized as a one-row PackedMatrix
  power_quantize(w, format)          PowerQuant: sign(w)|w|^a stored, a searched
  low_rank_compensation(w, q, rank)  LoRC: the rank-r SVD of w - q as int8 factors
  matryoshka_slice(m, bits)          the r-bit Matryoshka slice of an int8 matrix
  vector_quantize(w, format, ...)    VQ / GPTVQ with per-group int8 code books
  open_model(path)                   -> Model: tensors of safetensors/GGUF/ONNX/npy/npz files
  quantize_model(input, output, format, ...)   a whole model file, tensor by tensor
  split_numbers(text, grouping)      digit-group tokenization of numbers (l2rK / r2lK)
  insert_thousands_separators(text)  the comma trick
  numeracy_tasks(task, n, ...)       numeracy items (prompt, exact answer)
  parse_answer(output), score_answer(output, answer)   the exact scorer
  fone_encode(values, ...), fone_decode(features, ...)   FoNE number embeddings
  arc_sort(x), radix_sort(x)         sorted copies (digit-count buckets; LSD radix)

Errors are lowp.Error, a subclass of ValueError, with a one-line message.
Format names: see formats() and docs/formats.md; any minifloat is "eXmY", any
MX format "mx:<element>:<k>". The PyTorch part is the subpackage lowp.torch
(imported separately; it needs torch).
"""

try:
    from ._lowp import (
        Error,
        __version__,
        Model,
        PackedMatrix,
        PackedTensor,
        arc_sort,
        decode,
        encode,
        fake_quant,
        fake_quantize_rows,
        fone_decode,
        fone_encode,
        format_info,
        formats,
        insert_thousands_separators,
        low_rank_compensation,
        matryoshka_slice,
        numeracy_tasks,
        open_model,
        parse_answer,
        power_quantize,
        quantize,
        quantize_matrix,
        quantize_model,
        radix_sort,
        score_answer,
        split_numbers,
        vector_quantize,
    )
except ModuleNotFoundError as e:
    if e.name != __name__ + "._lowp":
        raise
    raise ImportError(
        "lowp: the extension module lowp._lowp is not built. Build lowp with CMake "
        "(cmake --preset release && cmake --build --preset release; it needs pybind11-dev, "
        "python3-dev and python3-numpy), then install it (cmake --install build --component "
        "python) or put build/python on PYTHONPATH") from e

__all__ = [
    "Error",
    "Model",
    "PackedMatrix",
    "PackedTensor",
    "arc_sort",
    "decode",
    "encode",
    "fake_quant",
    "fake_quantize_rows",
    "fone_decode",
    "fone_encode",
    "format_info",
    "formats",
    "insert_thousands_separators",
    "low_rank_compensation",
    "matryoshka_slice",
    "numeracy_tasks",
    "open_model",
    "parse_answer",
    "power_quantize",
    "quantize",
    "quantize_matrix",
    "quantize_model",
    "radix_sort",
    "score_answer",
    "split_numbers",
    "vector_quantize",
]

# The extension's types show (and pickle) as lowp.X, where users find them.
for _name in ("Error", "Model", "PackedMatrix", "PackedTensor"):
    globals()[_name].__module__ = __name__
del _name

def __getattr__(name):
    # `lowp.torch` after a plain `import lowp`: the PyTorch subpackage is imported
    # on first use only, so that `import lowp` never needs torch.
    if name == "torch":
        import importlib

        return importlib.import_module(".torch", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
