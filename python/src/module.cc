// The extension module lowp._lowp: numpy bindings over the lowp C++ core.
// python/lowp/__init__.py re-exports everything here as `lowp.*`.
//
// Errors: lowp::Error becomes lowp.Error, a subclass of ValueError, carrying
// the same one-line message the CLI prints.
#include "arrays.h"
#include "lowp/error.h"

namespace lowp::python {
void add_matrix(py::module_& m);  // matrix.cc: quantize_matrix, PackedMatrix, fake_quantize_rows
void add_numeracy_text(py::module_& m);  // numeracy_text.cc: split_numbers, numeracy_tasks, ...
}  // namespace lowp::python

PYBIND11_MODULE(_lowp, m) {
  namespace py = pybind11;
  m.doc() =
      "The lowp C++ core: formats, encode/decode, fake quantization, packed block tensors, "
      "model files. Use it through the package `lowp`.";
  // The docstrings start with their own Python signature.
  py::options options;
  options.disable_function_signatures();
  m.attr("__version__") = LOWP_VERSION;
  py::register_exception<lowp::Error>(m, "Error", PyExc_ValueError).attr("__doc__") =
      "lowp's error for bad input (a format name, an option, an array, a file): a ValueError "
      "whose message is one line naming what is wrong, as the lowp tool prints it.";
  lowp::python::add_formats(m);
  lowp::python::add_convert(m);
  lowp::python::add_packed(m);
  lowp::python::add_matrix(m);
  lowp::python::add_model(m);
  lowp::python::add_numeracy_text(m);
  lowp::python::add_numeracy(m);
}
