"""Functional mode (sim/prepare.py, sim/functional.py): bit-exact with golden in the hardware's
tile order, on the plan simulate made; its size estimate and refusal; its errors."""

from __future__ import annotations

import inspect
import textwrap

import numpy as np
import pytest

from edgetron.config import PRESETS
from edgetron.errors import SimulationError
from edgetron.golden.quant import activation_bounds
from edgetron.sim import prepare as prepare_module
from edgetron.sim.engine import simulate
from edgetron.sim.functional import run_functional
from edgetron.sim.prepare import BASE_BYTES, DEFAULT_MAX_GIB, estimate, prepare
from edgetron.sim.units import gemm as gemm_unit
from edgetron.workload import (
    AvgPool,
    Conv2d,
    Gemm,
    MaxPool,
    Trace,
    mobilenetv2,
    parse_scalesim,
    resnet18,
    vit,
)
from edgetron.workload.scalesim import CONV_HEADER

CONFIGS = [(p, d) for p in ("edge-8", "edge-16") for d in ("ws", "os", "is")]


@pytest.fixture(scope="module")
def vit_block():
    """ViT-Tiny with one full encoder block (patch embedding and head included)."""
    return prepare(vit(depth=1), seed=1)


@pytest.fixture(scope="module")
def resnet_small():
    """ResNet-18, every layer, at 32 x 32 input (spatial sizes 16 down to 1)."""
    return prepare(resnet18(image_size=32), seed=2)


@pytest.mark.parametrize("preset, dataflow", CONFIGS)
def test_vit_block_is_bit_exact(vit_block, preset, dataflow):
    res = run_functional(vit_block, PRESETS[preset].replace(dataflow=dataflow))
    assert res.ok, res.summary()
    kinds = {c.kind for c in res.checks}
    assert {"gemm", "conv2d", "softmax", "layernorm", "gelu", "add", "concat"} <= kinds


@pytest.mark.parametrize("preset, dataflow", CONFIGS)
def test_resnet18_reduced_is_bit_exact(resnet_small, preset, dataflow):
    cfg = PRESETS[preset].replace(dataflow=dataflow)
    res = run_functional(resnet_small, cfg)
    assert res.ok, res.summary()
    assert {"conv2d", "maxpool", "add", "avgpool", "gemm"} <= {c.kind for c in res.checks}


def test_k_split_partial_sums_are_exercised_and_exact(resnet_small):
    # edge-8's 32 KiB weight buffer cannot hold layer4's K = 4608 in one call.
    cfg = PRESETS["edge-8"]
    timing = simulate(resnet_small.trace, cfg)
    split = [op.name for op in timing.ops if op.values["k_chunks"] > 1]
    assert "layer4.0.conv2" in split
    res = run_functional(resnet_small, cfg)
    assert res.ok, res.summary()
    calls = {c.name: c.calls for c in res.checks}
    assert calls["layer4.0.conv2"] == timing.op_dict(
        [o.name for o in timing.ops].index("layer4.0.conv2"))["calls"] > 1


def test_depthwise_and_relu6_are_exact():
    data = prepare(mobilenetv2(image_size=32), seed=3)
    res = run_functional(data, PRESETS["edge-16"])
    assert res.ok, res.summary()
    assert "dwconv2d" in {c.kind for c in res.checks}
    # Every fused activation's clamp is golden's, for the op's own output scale.
    for op, d in zip(data.trace, data.ops, strict=True):
        if getattr(op, "act", "none") != "none":
            bounds = activation_bounds(op.act, d.out_scale, op.out_bits)
            assert (d.params["lo"], d.params["hi"]) == bounds, op.name
            assert bounds[0] <= d.golden.min() and d.golden.max() <= bounds[1], op.name


def test_relu6_upper_clamp_below_the_int8_maximum_is_exact():
    # Inputs at +-127 (real +-4) drive the outputs past 6, so the calibrated scale puts
    # round(6 / S_y) below 127 and both clamps of relu6 are reached.
    trace = Trace(name="relu6", batch=1, ops=(
        Gemm(name="fc", inputs=("input",), batch=1, m=64, k=256, n=32, weights=True,
             bias=True, requant="channel", act="relu6"),
    ))
    x = np.random.default_rng(6).choice([-127, 127], size=(1, 64, 256))
    data = prepare(trace, seed=6, inputs=x)
    d = data.ops[0]
    lo, hi = activation_bounds("relu6", d.out_scale)
    assert (d.params["lo"], d.params["hi"]) == (lo, hi) and lo == 0 and hi < 127
    assert d.golden.min() == 0 and d.golden.max() == hi
    assert (d.golden == hi).sum() > 10
    for dataflow in ("ws", "os", "is"):
        res = run_functional(data, PRESETS["edge-8"].replace(dataflow=dataflow))
        assert res.ok, res.summary()


def _pool_trace(pool_pads) -> Trace:
    conv = Conv2d(name="conv", inputs=("input",), n=2, h=9, w=9, c=4, k=8, r=3, s=3,
                  pad_top=1, pad_bottom=1, pad_left=1, pad_right=1, bias=True, act="relu")
    mp = MaxPool(name="maxpool", inputs=(0,), n=2, h=9, w=9, c=8, r=3, s=3, stride_h=2,
                 stride_w=2, **pool_pads[0])
    ap = AvgPool(name="avgpool", inputs=(1,), n=2, h=mp.out_h, w=mp.out_w, c=8, r=2, s=2,
                 stride_h=2, stride_w=2, **pool_pads[1])
    return Trace(name="pools", batch=2, ops=(conv, mp, ap))


def test_asymmetric_pools_are_exact():
    # TensorFlow-style SAME padding (extra at the bottom and right), then an average pool
    # padded on the top and left only.
    trace = _pool_trace(({"pad_bottom": 1, "pad_right": 1}, {"pad_top": 1, "pad_left": 1}))
    assert (trace[1].out_h, trace[1].out_w, trace[2].out_h, trace[2].out_w) == (4, 4, 2, 2)
    data = prepare(trace, seed=8)
    for preset, dataflow in CONFIGS[:4]:
        res = run_functional(data, PRESETS[preset].replace(dataflow=dataflow))
        assert res.ok, res.summary()
    assert [c.kind for c in res.checks] == ["conv2d", "maxpool", "avgpool"]


def test_pool_golden_cannot_run_is_rejected_by_name():
    # The last window of a 2x2 average pool with 2 rows of bottom padding would lie wholly
    # in the padding, which golden refuses. The trace enforces golden's bound (each side
    # at most max(kernel, stride) - 1), so functional mode never meets such a pool: it is
    # refused by field when the trace is built.
    with pytest.raises(ValueError, match=r"pad_bottom: 2 is out of range; allowed \[0, 1\]"):
        _pool_trace(({"pad_bottom": 1}, {"pad_bottom": 2}))


def test_scalesim_partial_windows_are_exact():
    # SCALE-Sim's partial last window becomes bottom / right padding of the imported convs.
    trace = parse_scalesim(CONV_HEADER + "\nc1,9,10,3,3,4,8,2,\nc2,10,9,3,3,6,16,2,\n"
                           "c3_DP,8,7,3,3,8,8,2,\n")
    pads = [(op.pad_top, op.pad_bottom, op.pad_left, op.pad_right) for op in trace]
    assert pads == [(0, 0, 0, 1), (0, 1, 0, 0), (0, 1, 0, 0)]
    data = prepare(trace, seed=9)
    for dataflow in ("ws", "os", "is"):
        res = run_functional(data, PRESETS["edge-8"].replace(dataflow=dataflow))
        assert res.ok, res.summary()


def test_small_buffers_force_many_calls_and_stay_exact(vit_block):
    cfg = PRESETS["edge-8"].replace(ifmap_sram_bytes=2048, weight_sram_bytes=2048,
                                    ofmap_sram_bytes=8192, dataflow="ws")
    res = run_functional(vit_block, cfg)
    assert res.ok, res.summary()
    qkv = next(c for c in res.checks if c.name == "blocks.0.qkv")
    assert qkv.calls == qkv.expected_calls > 10


def test_a_wrong_output_is_reported(vit_block):
    trace = vit_block.trace
    i = next(j for j, op in enumerate(trace) if op.name == "blocks.0.softmax")
    saved = vit_block.ops[i].golden.copy()
    try:
        vit_block.ops[i].golden.flat[5] += 1
        res = run_functional(vit_block, PRESETS["edge-16"])
    finally:
        vit_block.ops[i].golden[...] = saved
    assert not res.ok
    assert [c.index for c in res.failures] == [i]
    bad = res.failures[0]
    assert bad.mismatches == 1 and bad.first_mismatch is not None
    assert "blocks.0.softmax" in res.summary()


def _mutate(monkeypatch, name: str, old: str, new: str) -> None:
    """Replace the GEMM-unit kernel ``name`` of sim/units/gemm.py by a mutant of its source.

    The mutant is the kernel's own Python source with ``old`` (which must occur once)
    replaced by ``new``, run as Python; ``gemm_tiled`` then runs as Python too, so that it
    calls the mutant. Nothing on disk changes.
    """
    kernel = getattr(gemm_unit, name)
    src = textwrap.dedent(inspect.getsource(kernel.py_func))
    assert src.count(old) == 1, (name, old)
    src = src.replace(old, new).replace("@njit(cache=True)\n", "", 1)
    scope: dict = {}
    exec(compile(src, f"<mutant of {name}>", "exec"), gemm_unit.__dict__, scope)
    monkeypatch.setattr(gemm_unit, name, scope[name])
    if name != "gemm_tiled":
        monkeypatch.setattr(gemm_unit, "gemm_tiled", gemm_unit.gemm_tiled.py_func)


@pytest.fixture(scope="module")
def mapping_data():
    """A GEMM with several folds and column tiles that edge-8 must split along K."""
    trace = Trace(name="mapping", batch=1, ops=(
        Gemm(name="fc", inputs=("input",), batch=1, m=12, k=100, n=20, weights=True,
             bias=True, requant="channel"),
    ))
    return prepare(trace, seed=11)


#: ws with small buffers: K = 100 does not fit one call (with double buffering a call
#: uses half the weight buffer: a K split into chunks of 32, 32, 32 and 4, each folds of
#: 8 rows), N = 20 takes three calls per chunk. os with the preset's buffers: one call of
#: two row tiles and three column tiles.
MAPPING_CFGS = {
    "ws": PRESETS["edge-8"].replace(weight_sram_bytes=512),
    "os": PRESETS["edge-8"].replace(dataflow="os"),
}

#: Mapping bugs the functional mode must catch: (kernel, source, mutant, config).
MUTANTS = {
    "a ws fold overwrites the accumulator": (
        "_call_ws", "v = acc[i, j0 + c] + psum", "v = psum", "ws"),
    "the last ws fold is dropped": (
        "_call_ws", "for r0 in range(0, kt, rows):", "for r0 in range(0, kt - rows, rows):",
        "ws"),
    "K-split partial sums are not accumulated": (
        "gemm_tiled", "v += total[i, j]", "v += 0", "ws"),
    "every K chunk is requantized, not the sum after the last": (
        "gemm_tiled", "v = acc[i, j]\n",
        "v = acc[i, j] if nk == 1 else requantize(acc[i, j], mq[pi, n0 + j], "
        "sq[pi, n0 + j], lo, hi)\n", "ws"),
    "an os tile ignores its column offset": (
        "_call_os", "w[k0 + kk, n0 + j0 + c]", "w[k0 + kk, n0 + c]", "os"),
}


def test_mapping_harness_runs_exact(mapping_data, monkeypatch):
    # The unmutated kernels, run as Python the way the mutants run: exact, and the
    # configurations exercise what the mutants break.
    ws = simulate(mapping_data.trace, MAPPING_CFGS["ws"]).op_dict(0)
    assert (ws["k_chunks"], ws["tile_k"], ws["tile_n"], ws["calls"]) == (4, 32, 8, 12)
    os_ = simulate(mapping_data.trace, MAPPING_CFGS["os"]).op_dict(0)
    assert (os_["tile_m"], os_["tile_n"], os_["calls"]) == (12, 20, 1)
    monkeypatch.setattr(gemm_unit, "gemm_tiled", gemm_unit.gemm_tiled.py_func)
    for cfg in MAPPING_CFGS.values():
        res = run_functional(mapping_data, cfg)
        assert res.ok, res.summary()


@pytest.mark.parametrize("bug", MUTANTS)
def test_a_mapping_bug_in_the_simulator_is_reported(mapping_data, monkeypatch, bug):
    name, old, new, cfg = MUTANTS[bug]
    _mutate(monkeypatch, name, old, new)
    res = run_functional(mapping_data, MAPPING_CFGS[cfg])
    assert not res.ok
    (bad,) = res.failures
    assert bad.name == "fc" and bad.mismatches > 0 and bad.calls == bad.expected_calls
    assert "op 0 ('fc')" in res.summary()


def test_seed_must_be_a_non_negative_integer():
    trace = Trace(name="t", batch=1, ops=(
        Gemm(name="fc", inputs=("input",), batch=1, m=4, k=8, n=8, weights=True),
    ))
    for bad in (-1, 1.5, True):
        with pytest.raises(SimulationError, match=r"seed: expected a non-negative integer"):
            prepare(trace, seed=bad)


def test_prepare_and_run_report_progress_per_op(vit_block):
    trace = vit_block.trace
    ticks: list[int] = []
    prepare(trace, seed=1, progress=ticks.append)
    assert ticks == [1] * len(trace)
    ticks.clear()
    assert run_functional(vit_block, PRESETS["edge-16"], progress=ticks.append).ok
    assert ticks == [1] * len(trace)


def _heads(x: np.ndarray, layout: str, count: int) -> list[np.ndarray]:
    """Per-sample list over heads of each head's matrix, from a stored operand."""
    if layout == "rows":
        return [x[:, h] for h in range(count)] if count > 1 else [x]
    width = x.shape[-1] // count
    return [x[..., h * width:(h + 1) * width] for h in range(count)]


LAYOUTS = [
    # (a_heads, b_heads, b_transposed, out_heads): ViT's scores, ViT's attention x V, others
    ("cols", "cols", True, "rows"),
    ("rows", "cols", False, "cols"),
    ("rows", "rows", True, "cols"),
    ("cols", "rows", False, "rows"),
]


@pytest.mark.parametrize(("a_heads", "b_heads", "b_transposed", "out_heads"), LAYOUTS)
@pytest.mark.parametrize("count", [1, 3])
def test_attention_layout_fields_are_followed(a_heads, b_heads, b_transposed, out_heads, count):
    # Square products (m = k = n) whose consumers are no softmax: the shapes alone cannot
    # tell K from K^T nor rows from columns; the fields do. The golden output is checked
    # against products taken directly from the stored operands, per head.
    trace = Trace(name="attn", batch=2, ops=(
        Gemm(name="p", inputs=("input", "input"), batch=2, count=count, m=4, k=4, n=4,
             weights=False, a_heads=a_heads, b_heads=b_heads, b_transposed=b_transposed,
             out_heads=out_heads, out_bits=32, requant="none"),
    ))
    data = prepare(trace, seed=10)
    d = data.ops[0]
    a, b = d.operands
    out = d.golden
    for h, (ah, bh, oh) in enumerate(zip(_heads(a, a_heads, count), _heads(b, b_heads, count),
                                         _heads(out, out_heads, count), strict=True)):
        want = ah @ (bh.transpose(0, 2, 1) if b_transposed else bh)
        np.testing.assert_array_equal(oh, want, err_msg=f"head {h}")
    for preset, dataflow in CONFIGS[:3]:
        res = run_functional(data, PRESETS[preset].replace(dataflow=dataflow))
        assert res.ok, res.summary()


def test_given_inputs_are_used_and_checked():
    trace = Trace(name="t", batch=1, ops=(
        Gemm(name="fc", inputs=("input",), batch=1, m=4, k=8, n=8, weights=True,
             requant="channel"),
    ))
    x = np.arange(-16, 16).reshape(1, 4, 8)
    data = prepare(trace, seed=0, inputs=x)
    np.testing.assert_array_equal(data.ops[0].operands[0], x)
    assert run_functional(data, PRESETS["edge-8"]).ok
    with pytest.raises(SimulationError, match=r"op 0 \('fc'\): inputs\[0\] must be integers of "
                                         r"shape \[1, 4, 8\]"):
        prepare(trace, inputs=np.zeros((1, 4, 7), dtype=np.int64))
    with pytest.raises(SimulationError, match="int8 values"):
        prepare(trace, inputs={0: np.full((1, 4, 8), 300)})


def test_same_seed_same_data():
    a = prepare(vit(image_size=32, embed=32, heads=2, depth=1, classes=10), seed=7)
    b = prepare(vit(image_size=32, embed=32, heads=2, depth=1, classes=10), seed=7)
    for x, y in zip(a.ops, b.ops, strict=True):
        np.testing.assert_array_equal(x.golden, y.golden)


# ---- the plan, the size estimate, the errors ---------------------------------------------------
def _fc_trace(name: str = "t", k: int = 8) -> Trace:
    return Trace(name=name, batch=1, ops=(
        Gemm(name="fc", inputs=("input",), batch=1, m=4, k=k, n=8, weights=True,
             requant="channel"),
    ))


def test_the_plan_simulate_made_is_followed_not_remade(vit_block, monkeypatch):
    cfg = PRESETS["edge-8"].replace(ifmap_sram_bytes=2048, weight_sram_bytes=2048,
                                    ofmap_sram_bytes=8192)
    plan = simulate(vit_block.trace, cfg)

    def no_second_simulation(*args, **kw):
        raise AssertionError("run_functional simulated again")

    monkeypatch.setattr("edgetron.sim.functional.simulate", no_second_simulation)
    res = run_functional(vit_block, plan)
    assert res.ok, res.summary()
    assert (res.config_name, res.dataflow) == (cfg.name, cfg.dataflow)
    calls = [round(r.values["calls"]) for r in plan.ops]
    assert [c.expected_calls for c in res.checks] == calls
    assert [c.calls for c in res.checks] == calls and max(calls) > 10


def test_a_plan_of_another_trace_is_refused():
    data = prepare(_fc_trace("a"), seed=0)
    other = simulate(_fc_trace("b", k=16), PRESETS["edge-8"])
    with pytest.raises(SimulationError, match=r"the plan is of trace 'b' \(1 ops\), the data of "
                                              r"trace 'a' \(1 ops\)"):
        run_functional(data, other)
    with pytest.raises(TypeError, match="SimResult or an AcceleratorConfig"):
        run_functional(data, "edge-8")


def test_a_trace_with_inputs_is_prepared_on_the_way():
    x = np.arange(-16, 16).reshape(1, 4, 8)
    res = run_functional(_fc_trace(), PRESETS["edge-8"], seed=3, inputs=x)
    assert res.ok and res.checks[0].elements == 32


def test_an_accumulation_beyond_int32_is_an_error_naming_the_op():
    data = prepare(_fc_trace(), seed=0)
    data.ops[0].operands[0][...] = 1 << 15  # beyond int8: products of 2**15 * w
    data.ops[0].params["w"][...] = 1 << 15
    with pytest.raises(SimulationError, match=r"^op 0 \('fc'\): an int32 accumulation "
                                              r"left the int32 range$"):
        run_functional(data, PRESETS["edge-8"])


def test_the_estimate_counts_kept_data_and_the_largest_scratch():
    trace = _fc_trace()
    op = trace[0]
    est = estimate(trace)
    kept = 8 * (4 * 8 + 4 * 8 + 8 * 8 + 0)  # input, output, weights (no bias)
    assert est.peak_bytes == BASE_BYTES + kept + gemm_unit.scratch_bytes(op)
    assert est.seconds == pytest.approx(op.macs / prepare_module.MACS_PER_SECOND
                                        + 32 / prepare_module.ELEMENTS_PER_SECOND)
    # ResNet-18 at batch 1 fits the default easily; its scratch is the first conv's im2col.
    big = estimate(resnet18())
    assert 0.2 < big.gib < DEFAULT_MAX_GIB and 1 < big.seconds < 120


def test_a_run_above_the_memory_limit_is_refused_with_its_estimate():
    trace = resnet18()
    est = estimate(trace)
    limit = est.gib / 2
    msg = (rf"^functional mode of 'resnet18' would need about {est.gib:.1f} GiB and "
           rf"[0-9]+ s: more memory than the limit of {limit:g} GiB \(max_gib; "
           rf"--functional-max-gib on the command line\), which must be at least "
           rf"{int(np.ceil(est.gib))} to run it anyway$")
    with pytest.raises(SimulationError, match=msg):
        prepare(trace, max_gib=limit)
    small = prepare(_fc_trace(), seed=0)
    with pytest.raises(SimulationError, match=r"more memory than the limit of 0\.1 GiB"):
        run_functional(small, PRESETS["edge-8"], max_gib=0.1)
    with pytest.raises(SimulationError, match="more memory than the limit"):
        run_functional(_fc_trace(), PRESETS["edge-8"], max_gib=0.1)
    assert run_functional(small, PRESETS["edge-8"], max_gib=None).ok


def test_an_absurd_trace_is_refused_before_any_allocation():
    # A valid conv of 2.5e19 MACs whose im2col matrix alone would be 1.6 zettabytes.
    trace = Trace(name="huge", batch=1, ops=(
        Conv2d(name="big", inputs=("input",), n=1, h=50_000, w=50_000, c=1, k=1, r=50_000,
               s=50_000, pad_top=49_999, pad_bottom=49_999, pad_left=49_999,
               pad_right=49_999),))
    with pytest.raises(SimulationError, match=r"would need about [0-9.e+]+ GiB and [0-9.,e+]+ "
                                              r"days: more memory than the limit of 8 GiB"):
        prepare(trace)


@pytest.mark.slow
@pytest.mark.parametrize("preset, dataflow", CONFIGS)
def test_vit_tiny_all_blocks_bit_exact(preset, dataflow):
    data = prepare(vit(), seed=5)
    res = run_functional(data, PRESETS[preset].replace(dataflow=dataflow))
    assert res.ok, res.summary()
    assert len(res.checks) == len(data.trace) == 3 + 12 * 12 + 2
