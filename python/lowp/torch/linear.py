"""The quantized linear layer of lowp.torch: an autograd Function with a
straight-through estimator, the nn.Linear drop-in, and convert()."""

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import stats as _stats
from .ops import hadamard_rows
from .spec import ROLES, LinearSpec, recipe


def _quantize(spec, x, axis, name, state=None):
    return x if spec is None else spec(x, axis, name, state)


def _matmul_nt(a, b, acc):
    """a [M, K] times b [N, K] transposed: a b^T, in the accumulator when given."""
    if acc is None:
        return a.matmul(b.t())
    from .accum import matmul_acc
    return matmul_acc(a.contiguous(), b.contiguous(), acc)


class QuantLinearFunction(torch.autograd.Function):
    """y = Q_input(x) Q_weight(W)^T + b, with each operand of the backward
    matmuls quantized by its own role (see LinearSpec). x is [..., in]; the
    leading dimensions are flattened into N tokens. `name` names the layer in
    errors (e.g. a per-tensor scale of a tensor holding Inf or NaN)."""

    @staticmethod
    def forward(ctx, x, weight, bias, spec, name=None, state=None):
        layer = name or f"Linear({weight.shape[1]}, {weight.shape[0]})"
        x2 = x.reshape(-1, x.shape[-1])
        xq = _quantize(spec.input, x2, 1, f"{layer} input", state)
        wq = _quantize(spec.weight, weight, 1, f"{layer} weight", state)
        y = _matmul_nt(xq, wq, spec.accumulator)
        if bias is not None:
            y = y + bias
        ctx.save_for_backward(x2, weight)
        ctx.spec = spec
        ctx.layer = layer
        ctx.state = state
        ctx.has_bias = bias is not None
        ctx.x_shape = x.shape
        return y.reshape(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx, grad_y):
        x2, weight = ctx.saved_tensors
        spec, layer, state = ctx.spec, ctx.layer, ctx.state
        g = grad_y.reshape(-1, weight.shape[0])
        grad_x = grad_w = grad_b = None
        measure = _stats.active()
        if ctx.needs_input_grad[0]:
            # Reduction over out_features: dy along axis 1, W along axis 0.
            grad_x = _matmul_nt(
                _quantize(spec.grad_output, g, 1, f"{layer} grad_output", state),
                _quantize(spec.weight_bwd, weight, 0, f"{layer} weight_bwd", state).t(),
                spec.accumulator)
            if measure:
                _stats.record_grad("grad_input", g.matmul(weight), grad_x, layer)
            grad_x = grad_x.reshape(ctx.x_shape)
        if ctx.needs_input_grad[1]:
            # Reduction over the N tokens: dy and x along axis 0, optionally
            # both rotated along the tokens by the same random Hadamard transform.
            gt, xt = g, x2
            if spec.wgrad_hadamard:
                gt = hadamard_rows(g, spec.wgrad_hadamard, spec.hadamard_seed)
                xt = hadamard_rows(x2, spec.wgrad_hadamard, spec.hadamard_seed)
            grad_w = _matmul_nt(
                _quantize(spec.role("grad_output_tokens"), gt, 0,
                          f"{layer} grad_output_tokens", state).t(),
                _quantize(spec.input_bwd, xt, 0, f"{layer} input_bwd", state).t(),
                spec.accumulator)
            if measure:
                _stats.record_grad("grad_weight", g.t().matmul(x2), grad_w, layer)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = g.sum(0)
        return grad_x, grad_w, grad_b, None, None, None


class QuantMatmulFunction(torch.autograd.Function):
    """c = Q(a) Q(b) for activations a [..., M, K] and b [..., K, N] with the
    same leading dimensions (the attention products q k^T and att v): the
    roles of quantized_linear(a, b^T), b in the weight's place. Forward: a
    (input) and b (weight) in blocks along K. Backward: grad_a = Q(dc along
    N) Q(b along N)^T (grad_output, weight_bwd); grad_b = Q(a along M)^T Q(dc
    along M) (input_bwd, grad_output_tokens). Accumulators do not apply."""

    @staticmethod
    def forward(ctx, a, b, spec, name=None, state=None):
        layer = name or "matmul"
        aq = _quantize(spec.input, a, a.dim() - 1, f"{layer} input", state)
        bq = _quantize(spec.weight, b, b.dim() - 2, f"{layer} weight", state)
        ctx.save_for_backward(a, b)
        ctx.spec, ctx.layer, ctx.state = spec, layer, state
        return aq.matmul(bq)

    @staticmethod
    def backward(ctx, grad_c):
        a, b = ctx.saved_tensors
        spec, layer, state = ctx.spec, ctx.layer, ctx.state
        last, rows = grad_c.dim() - 1, grad_c.dim() - 2
        grad_a = grad_b = None
        measure = _stats.active()
        if ctx.needs_input_grad[0]:
            grad_a = _quantize(spec.grad_output, grad_c, last, f"{layer} grad_output",
                               state).matmul(
                _quantize(spec.weight_bwd, b, last, f"{layer} weight_bwd", state).transpose(-2, -1))
            if measure:
                _stats.record_grad("grad_input", grad_c.matmul(b.transpose(-2, -1)), grad_a, layer)
        if ctx.needs_input_grad[1]:
            # Computed as (Q(dc)^T Q(a))^T: the product quantized_linear forms.
            grad_b = _quantize(spec.role("grad_output_tokens"), grad_c, rows,
                               f"{layer} grad_output_tokens", state).transpose(-2, -1).matmul(
                _quantize(spec.input_bwd, a, rows, f"{layer} input_bwd", state)).transpose(-2, -1)
            if measure:
                _stats.record_grad("grad_weight", a.transpose(-2, -1).matmul(grad_c), grad_b,
                                   layer)
        return grad_a, grad_b, None, None, None


def quantized_matmul(a, b, spec=None, name=None, state=None):
    """a @ b for activations a [..., M, K], b [..., K, N] (same leading
    dimensions) with both operands, and the backward matmuls' operands,
    quantized by `spec` (a recipe name or LinearSpec; QuantMatmulFunction
    gives the roles). 2-D, it equals quantized_linear(a, b.t()) bit for bit."""
    spec = recipe(spec)
    if spec.is_identity():
        return a.matmul(b)
    if (spec.accumulator is not None or spec.wgrad_hadamard
            or any(q is not None and q.tile is not None for q in map(spec.role, ROLES))):
        raise ValueError(f"lowp.torch.quantized_matmul: recipe {spec.name!r} has an accumulator, "
                         f"a Hadamard transform or 2-D tiles; the attention products take none")
    if a.dim() < 2 or a.shape[:-2] != b.shape[:-2] or a.shape[-1] != b.shape[-2]:
        raise ValueError(f"lowp.torch.quantized_matmul: shapes {tuple(a.shape)} and "
                         f"{tuple(b.shape)} do not multiply (same leading dimensions needed)")
    return QuantMatmulFunction.apply(a, b, spec, name, state)


class Matmul(nn.Module):
    """A quantized a @ b of two activations (quantized_matmul) as a module,
    with its spec, name and delayed-scaling state; convert() sets its spec
    as it does a Linear's. Used for the attention products."""

    def __init__(self, spec="fp32", name=None):
        super().__init__()
        self.spec = recipe(spec)
        self.name = name
        self.scaling_state = {}

    def forward(self, a, b):
        return quantized_matmul(a, b, self.spec, self.name, self.scaling_state)

    def extra_repr(self):
        return f"spec={self.spec.name}"


def quantized_linear(x, weight, bias=None, spec=None, name=None, state=None):
    """F.linear with the operands quantized by `spec` (a recipe name or
    LinearSpec); `name` names the layer in errors; `state` is a dict that
    keeps delayed scaling's amax histories between calls (a Linear has one)."""
    spec = recipe(spec)
    if spec.is_identity():
        return F.linear(x, weight, bias)
    return QuantLinearFunction.apply(x, weight, bias, spec, name, state)


class Linear(nn.Linear):
    """nn.Linear whose matmuls run in lowp formats: a drop-in with the same
    parameters (weight [out, in], bias [out]) and state_dict names.

    spec: a recipe name ("fp32", "mxfp8", "mxfp6", "mxfp4", "fp8-dynamic") or
    a LinearSpec. Build a model with it through functools.partial:
    CharLM(cfg, linear=functools.partial(lowp.torch.Linear, spec="mxfp6")).
    name: what errors call the layer (convert() sets its path in the model,
    e.g. "h.0.mlp.c_fc"); None: "Linear(in, out)".
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None,
                 spec="fp32", name=None):
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        self.spec = recipe(spec)
        self.name = name
        self.scaling_state = {}

    def forward(self, x):
        return quantized_linear(x, self.weight, self.bias, self.spec, self.name,
                                self.scaling_state)

    def extra_repr(self):
        return super().extra_repr() + f", spec={self.spec.name}"

    @classmethod
    def from_linear(cls, linear, spec, name=None):
        """A Linear sharing `linear`'s parameter tensors (no copy)."""
        new = cls.__new__(cls)
        nn.Module.__init__(new)
        new.in_features = linear.in_features
        new.out_features = linear.out_features
        new.weight = linear.weight
        new.bias = linear.bias
        new.spec = recipe(spec)
        new.name = name
        new.scaling_state = {}
        new.train(linear.training)
        return new


def convert(model, spec):
    """Swaps every nn.Linear in `model` (recursively, in place) for a
    lowp.torch.Linear with `spec` that shares its parameters, so an optimizer
    built before the call keeps working; lowp.torch.Linear and
    lowp.torch.Matmul modules already there get the new spec. A head tied to an embedding is converted when it
    is an nn.Linear sharing the embedding's weight (as in CharLM and Hugging
    Face models); a matmul written out in forward() is not a layer and stays
    as it is. Each converted layer is named by its path in `model` in errors.
    Returns the model (a new module if `model` itself is an nn.Linear)."""
    spec = recipe(spec)
    if not isinstance(model, nn.Module):
        raise TypeError(f"lowp.torch.convert: expected an nn.Module, got {type(model).__name__}")
    return _convert(model, spec, None)


def _convert(module, spec, path):
    if isinstance(module, (Linear, Matmul)):
        module.spec = spec
        module.name = path or module.name
        module.scaling_state = {}
        return module
    if isinstance(module, nn.Linear):
        return Linear.from_linear(module, spec, path)
    for name, child in module.named_children():
        converted = _convert(child, spec, f"{path}.{name}" if path else name)
        if converted is not child:
            setattr(module, name, converted)
    return module


__all__ = ["QuantLinearFunction", "quantized_linear", "Linear", "convert", "LinearSpec",
           "QuantMatmulFunction", "quantized_matmul", "Matmul"]
