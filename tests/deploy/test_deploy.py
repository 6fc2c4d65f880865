"""Deployment's parts: the quantization (golden's functions, per-channel weights), the
functional data it gives, runs at another batch, a kernel that differs from golden, and
every bad input (a clear error each)."""

from __future__ import annotations

import numpy as np
import pytest

from edgetron.config import PRESETS
from edgetron.deploy import Model, Samples, calibrate, deploy
from edgetron.deploy import calibration as calibration_module
from edgetron.errors import EdgetronError, SimulationError, TraceError
from edgetron.golden.add import residual_constants
from edgetron.golden.dyadic import requant_constants
from edgetron.golden.gelu import gelu_int8_constants
from edgetron.golden.layernorm import layernorm_constants
from edgetron.golden.quant import activation_scale, quantize, quantize_bias, weight_scales
from edgetron.golden.softmax import softmax_constants
from edgetron.sim.opdata import OpQuant, Quantization
from edgetron.sim.prepare import prepare
from edgetron.sim.units import gemm as gemm_unit

from .helpers import CALIB, DATA, digits, small_cnn

RNG = np.random.default_rng(7)


def same(a, b) -> bool:
    """Equal constants: NamedTuples field by field, arrays element by element."""
    if isinstance(a, tuple):
        return type(a) is type(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(np.array_equal(a, b))


@pytest.fixture(scope="module")
def vit():
    m = Model(DATA / "digits_vit.onnx")
    x = digits()["train"][:64]
    return m, x, calibrate(m, Samples(x, m.input_shape, "calib"))


def test_weights_per_channel_or_per_tensor(vit):
    """Per output channel where the op requantizes per channel, one scale where it keeps
    int32 (a single output scale): golden's weight_scales / activation_scale and quantize."""
    m, _, q = vit
    for i, op in enumerate(m.trace):
        if op.kind != "gemm" or not op.weights:
            continue
        w = m.weights[f"{i}.weight"].astype(np.float64)[0]
        if op.requant == "channel":
            sw = weight_scales(w, axis=1)
        else:
            assert op.requant == "none"
            sw = np.full(op.n, activation_scale(w))
        np.testing.assert_array_equal(q.ops[i].weight_scale[0], sw)
        np.testing.assert_array_equal(q.ops[i].weight[0], quantize(w, sw, axis=1))
        assert np.abs(q.ops[i].weight).max() == 127
    assert q.input_scale == pytest.approx(1 / 127)  # the images are in [0, 1]


def test_every_constant_comes_from_golden(vit):
    """The functional data of a deployed model: int32 biases at S_x * S_w, and every integer
    constant derived by golden's constant function from the calibrated scales."""
    m, x, q = vit
    xq = quantize(m.stored(x[:1]), q.input_scale)
    data = prepare(m.trace, inputs={0: xq}, quant=q)
    scale = [d.out_scale for d in data.ops]
    for i, (op, d) in enumerate(zip(m.trace, data.ops, strict=True)):
        s_in = q.input_scale if op.inputs[0].op is None else scale[op.inputs[0].op]
        if q.ops[i].out_scale is not None:
            assert d.out_scale == q.ops[i].out_scale
        w = {k.split(".")[1]: v.astype(np.float64) for k, v in m.weights.items()
             if k.split(".")[0] == str(i)}
        if op.kind == "gemm" and op.weights:
            sw = q.ops[i].weight_scale
            assert same(d.params["bias"], quantize_bias(w["bias"][0], s_in, sw[0])[None])
            if op.requant == "channel":
                mq, sq = requant_constants(s_in, sw[0], q.ops[i].out_scale)
                assert same(d.params["m"][0], mq) and same(d.params["s"][0], sq)
        elif op.kind == "layernorm":
            assert same(d.params["c"], layernorm_constants(
                w["weight"], w["bias"], s_in, d.out_scale, float(w["eps"]), op.in_bits))
        elif op.kind == "softmax":
            assert same(d.params["c"], softmax_constants(s_in))
        elif op.kind == "gelu":
            assert same(d.params["c8"], gelu_int8_constants(s_in, d.out_scale, op.in_bits))
        elif op.kind == "add" and op.weights:
            s_b = activation_scale(w["weight"])
            assert same(d.params["rc"], residual_constants(s_in, s_b, d.out_scale))
            assert same(d.params["b"][0], quantize(w["weight"], s_b))
        elif op.kind == "add":
            s_b = scale[op.inputs[1].op]
            assert same(d.params["rc"], residual_constants(s_in, s_b, d.out_scale))
        elif op.kind == "concat":
            assert same(d.params["const"], quantize(w["weight"], s_in))
            assert d.out_scale == s_in


def test_other_batches_give_the_same_integer_model(tmp_path):
    """A model with a symbolic batch deployed at batch 1 and at batch 2 (5 samples: the
    last inference padded) predicts the same for every sample; all bit-exact."""
    path = small_cnn(tmp_path)
    x = RNG.standard_normal((5, 1, 6, 6)).astype(np.float32)
    cal = RNG.standard_normal((16, 1, 6, 6)).astype(np.float32)
    r1 = deploy(Model(path, batch=1), cal, data=x, config=PRESETS["edge-8"])
    r2 = deploy(Model(path, batch=2), cal, data=x, config=PRESETS["edge-8"])
    assert [op.kind for op in r1.cost.trace_ops] == ["conv2d", "dwconv2d", "maxpool",
                                                     "avgpool", "gemm"]
    assert r1.bit_exact and r2.bit_exact
    assert (r1.evaluation.runs, r2.evaluation.runs) == (5, 3)
    assert r1.input_scale == r2.input_scale
    np.testing.assert_array_equal(r1.evaluation.int_pred, r2.evaluation.int_pred)
    np.testing.assert_array_equal(r1.evaluation.float_pred, r2.evaluation.float_pred)
    np.testing.assert_allclose(r1.evaluation.cosine, r2.evaluation.cosine, rtol=1e-9)
    assert r1.evaluation.cosine.min() > 0.98
    assert r1.batch == 1 and r2.batch == 2 and r2.to_dict()["batch"] == 2


def test_zero_weights_and_a_dead_channel(tmp_path):
    """A channel of zero weights gets the tensor's largest scale (golden's weight_scales),
    an all-zero tensor scale 1; the model still runs bit-exact."""
    m = Model(small_cnn(tmp_path), batch=1)
    w0 = m.weights["0.weight"].copy()
    w0[1] = 0
    m.weights["0.weight"] = w0
    m.weights["4.weight"] = np.zeros_like(m.weights["4.weight"])
    x = RNG.standard_normal((4, 1, 6, 6)).astype(np.float32)
    q = calibrate(m, Samples(x, m.input_shape, "calib"))
    assert q.ops[0].weight_scale[1] == q.ops[0].weight_scale.max()
    assert not q.ops[0].weight[1].any()
    np.testing.assert_array_equal(q.ops[4].weight_scale, 1.0)
    r = deploy(m, x, config=PRESETS["edge-8"])
    assert r.bit_exact and r.evaluation.cosine[0] > 0.99


def test_a_kernel_that_differs_from_golden_is_reported(tmp_path, monkeypatch):
    real = gemm_unit.gemm_tiled

    def off_by_one(*args):
        calls, ok = real(*args)
        args[-1][0, 0, 0] += 1
        return calls, ok

    monkeypatch.setattr(gemm_unit, "gemm_tiled", off_by_one)
    x = RNG.standard_normal((3, 1, 6, 6)).astype(np.float32)
    r = deploy(Model(small_cnn(tmp_path), batch=1), x, config=PRESETS["edge-8"])
    assert not r.bit_exact
    assert [(f.index, f.kind, f.runs) for f in r.evaluation.failures] == [
        (0, "conv2d", 3), (1, "dwconv2d", 3), (4, "gemm", 3)]
    assert all(f.mismatches == 3 and not f.calls_differ for f in r.evaluation.failures)
    assert "3 ops differ from golden" in r.format()


def test_prepare_checks_the_quantization(vit):
    m, x, q = vit
    xq = quantize(m.stored(x[:1]), q.input_scale)
    with pytest.raises(SimulationError, match="runs on its own data; give the inputs"):
        prepare(m.trace, quant=q)  # a deployed model needs its inputs
    with pytest.raises(SimulationError, match="28 ops' parameters for the 29 ops"):
        prepare(m.trace, inputs={0: xq}, quant=Quantization(q.input_scale, q.ops[:-1]))
    with pytest.raises(SimulationError, match="input_scale: expected a positive"):
        prepare(m.trace, inputs={0: xq}, quant=Quantization(float("nan"), q.ops))
    ops = list(q.ops)
    ops[4] = OpQuant(out_scale=ops[4].out_scale, weight=ops[4].weight[:, :3],
                     weight_scale=ops[4].weight_scale, bias=ops[4].bias)
    with pytest.raises(SimulationError, match=r"op 4 \('node_MatMul_11'\): deployed "
                                              r"parameters: weight: expected shape \[1, 32, "
                                              r"96\], got \[1, 3, 96\]"):
        prepare(m.trace, inputs={0: xq}, quant=Quantization(q.input_scale, tuple(ops)))
    ops[4] = OpQuant(weight=q.ops[4].weight, weight_scale=q.ops[4].weight_scale,
                     bias=q.ops[4].bias)
    with pytest.raises(SimulationError, match=r"op 4 .*out_scale: missing"):
        prepare(m.trace, inputs={0: xq}, quant=Quantization(q.input_scale, tuple(ops)))


def test_a_concat_of_inputs_at_different_scales_is_refused():
    """A concat copies values: a deployed one whose inputs come at different scales would
    mix them silently, so it is an error naming the op."""
    from edgetron.workload import Concat, Gemm, Trace

    fc = {"inputs": ("input",), "batch": 1, "m": 2, "k": 4, "n": 4, "weights": True,
          "requant": "channel"}
    t = Trace(name="t", batch=1, ops=(Gemm(name="a", **fc), Gemm(name="b", **fc),
                                      Concat(name="cat", inputs=(0, 1), batch=1, rows=(2, 2),
                                             cols=4)))
    w, sw = np.ones((1, 4, 4), dtype=np.int64), np.full((1, 4), 0.01)
    ops = (OpQuant(out_scale=0.5, weight=w, weight_scale=sw),
           OpQuant(out_scale=0.25, weight=w, weight_scale=sw), OpQuant())
    x = np.ones((1, 2, 4), dtype=np.int64)
    with pytest.raises(SimulationError, match=r"op 2 \('cat'\): a concat moves values: its "
                                              r"inputs must share one scale, got 0.5, 0.25"):
        prepare(t, inputs=x, quant=Quantization(0.1, ops))
    ops = (ops[0], OpQuant(out_scale=0.5, weight=w, weight_scale=sw), ops[2])
    data = prepare(t, inputs=x, quant=Quantization(0.1, ops))
    assert data.ops[2].out_scale == 0.5 and data.ops[2].golden.shape == (1, 4, 4)


# ---- bad input -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cnn():
    return Model(DATA / "digits_cnn.onnx")


def _err(fn, match):
    with pytest.raises(SimulationError, match=match) as info:
        fn()
    assert "\n" not in str(info.value)


def test_bad_samples(cnn, tmp_path):
    x = digits()["test"][:8]
    _err(lambda: deploy(cnn, x[:, 0]), r"calib: shape \[8, 8, 8\]: expected \[N, 1, 8, 8\] "
                                       r"\(N samples of the model input \[1, 1, 8, 8\]\)")
    _err(lambda: deploy(cnn, x.astype(np.complex64)), "calib: dtype complex64: expected real")
    _err(lambda: deploy(cnn, x > 0), "calib: dtype bool: expected real")
    _err(lambda: deploy(cnn, x[:0]), "calib: 0 samples; expected 1 to")
    _err(lambda: deploy(cnn, [[1.0]]), "calib: expected a NumPy array or a .npy file, got list")
    bad = x.copy()
    bad[3, 0, 2, 2] = np.nan
    _err(lambda: deploy(cnn, x, data=bad), "data: sample 3 holds NaN or infinite values")
    p = tmp_path / "obj.npy"
    np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    _err(lambda: deploy(cnn, p), "obj.npy: not a .npy array of plain numbers")
    p = tmp_path / "z.npz"
    np.savez(p, x=x)
    _err(lambda: deploy(cnn, p), "z.npz: expected one array")
    p = tmp_path / "cut.npy"
    np.save(p, x)
    p.write_bytes(p.read_bytes()[:200])
    _err(lambda: deploy(cnn, p), "cut.npy: not a .npy array")
    p.write_bytes(b"")
    _err(lambda: deploy(cnn, p), "cut.npy: not a .npy array")


def test_bad_labels(cnn):
    x = digits()["test"][:8]
    y = digits()["test_labels"][:8]
    _err(lambda: deploy(cnn, x, labels=y[:7]), "labels: 7 labels for the 8 samples of calib")
    _err(lambda: deploy(cnn, x, labels=y.astype(float)), "labels: dtype float64: expected "
                                                          "integer class labels")
    _err(lambda: deploy(cnn, x, labels=y[:, None]), r"labels: shape \[8, 1\]: expected one")
    bad = y.copy()
    bad[5] = 10
    _err(lambda: deploy(cnn, x, labels=bad), r"labels: label 5 is 10; the model has 10 "
                                             r"classes \(0 to 9\)")
    _err(lambda: deploy(cnn, x, labels=bad.astype(np.uint64) * 0 - 1),
         "labels: label 0 is 18446744073709551615")


def test_bad_options_and_models(cnn, tmp_path, monkeypatch):
    x = digits()["test"][:8]
    for p in (0, 101, float("nan"), True):
        _err(lambda p=p: deploy(cnn, x, percentile=p), "percentile: expected a number in")
    monkeypatch.setattr(calibration_module, "MAX_CALIB_BYTES", 100_000)
    _err(lambda: deploy(cnn, digits()["train"][:CALIB]),
         r"calib: calibrating on 256 samples would record 4.2 MiB of activations, over the "
         r"limit of 0.1 MiB; calibrate on at most 5 samples")
    with pytest.raises(TraceError, match="shape-only model"):
        Model(DATA / "exporters" / "resnet18_torchscript_op13.onnx")
    assert issubclass(SimulationError, EdgetronError)
