"""The engine (sim/engine.py): totals, consistency, sweeps, the unit registry and the errors
of bad inputs (configs that cannot run an op, traces too large for 64-bit counts)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgetron.config import PRESETS, AcceleratorConfig
from edgetron.errors import SimulationError
from edgetron.sim import records
from edgetron.sim.engine import INT64_MAX, SWEEP_COLUMNS, check, flatten, simulate, sweep
from edgetron.sim.units import KIND_CODES, ON_ARRAY, REGISTRY
from edgetron.workload import (
    KINDS,
    Conv2d,
    Gemm,
    LayerNorm,
    MaxPool,
    Softmax,
    Trace,
    build_model,
    mobilenetv2,
    resnet18,
    vit,
)

MODELS = ("vit-tiny", "resnet18", "mobilenetv2")
REQUIRED = ("macs", "cycles", "stall_cycles", "utilization", "latency_ms", "energy_uj",
            "dram_bytes")


@pytest.fixture(scope="module")
def traces():
    return {name: flatten(build_model(name)) for name in MODELS}


@pytest.mark.parametrize("preset", ["edge-8", "edge-16", "edge-32"])
@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_mac_totals_equal_the_trace_exactly(traces, preset, dataflow):
    cfg = PRESETS[preset].replace(dataflow=dataflow)
    for name, flat in traces.items():
        res = simulate(flat, cfg)
        assert res.totals["macs"] == flat.macs, name
        assert sum(op.values["macs"] for op in res.ops) == flat.macs
        assert sum(op.values["ev_mac_int8"] for op in res.ops) == flat.macs


def test_published_mac_totals_reach_the_report(traces):
    res = simulate(traces["vit-tiny"], PRESETS["edge-16"])
    assert res.totals["macs"] == 1_253_683_200
    res = simulate(traces["resnet18"], PRESETS["edge-16"])
    assert res.totals["macs"] == 1_814_073_344


@pytest.mark.parametrize("name", MODELS)
def test_totals_are_consistent(traces, name):
    cfg = PRESETS["edge-16"]
    res = simulate(traces[name], cfg)
    t = res.totals
    assert t["cycles"] == t["compute_cycles"] + t["vector_cycles"] + t["stall_cycles"]
    assert t["cycles"] == sum(op.values["cycles"] for op in res.ops)
    assert 0 < t["utilization"] <= 1
    assert t["utilization"] == pytest.approx(t["macs"] / (256 * t["cycles"]))
    assert t["latency_ms"] == pytest.approx(t["cycles"] / (cfg.clock_mhz * 1e3))
    assert t["dram_bytes"] == t["dram_read_bytes"] + t["dram_write_bytes"]
    assert t["dram_bytes"] == sum(t[f"dram_{x}_bytes"] for x in
                                  ("a", "b", "param", "out", "psum"))
    assert t["sram_read_bytes"] == sum(t[f"{b}_read_bytes"] for b in
                                       ("ifmap", "weight", "ofmap", "param"))
    for i in range(len(res.ops)):
        d = res.op_dict(i)
        assert d["cycles"] == d["compute_cycles"] + d["vector_cycles"] + d["stall_cycles"]
        assert d["stall_cycles"] >= 0
        if d["unit"] == "array":
            assert d["compute_cycles"] > 0 and d["calls"] >= 1
        else:
            assert d["compute_cycles"] == 0 and d["vector_cycles"] > 0


def test_every_op_reads_its_weights_and_writes_its_output(traces):
    res = simulate(traces["vit-tiny"], PRESETS["edge-16"])
    for op, r in zip(traces["vit-tiny"].ops, res.ops, strict=True):
        assert r.values["dram_b_bytes"] >= op.weight_bytes, op.name
        assert r.values["dram_out_bytes"] == op.out_bytes, op.name


def test_json_has_the_required_keys(traces):
    res = simulate(traces["resnet18"], PRESETS["edge-8"])
    d = json.loads(json.dumps(res.to_dict()))
    for key in REQUIRED:
        assert key in d["totals"]
        for op in d["ops"]:
            assert key in op
    assert d["config"]["name"] == "edge-8"
    assert len(d["ops"]) == len(traces["resnet18"].ops)


def test_faster_hardware_is_faster(traces):
    flat = traces["vit-tiny"]
    base = simulate(flat, PRESETS["edge-16"]).totals
    assert simulate(flat, PRESETS["edge-32"]).totals["cycles"] < base["cycles"]
    slow_dram = PRESETS["edge-16"].replace(dram_bytes_per_cycle=1.0)
    assert simulate(flat, slow_dram).totals["stall_cycles"] > base["stall_cycles"]
    small = PRESETS["edge-16"].replace(weight_sram_bytes=16 * 1024, ifmap_sram_bytes=8 * 1024)
    assert simulate(flat, small).totals["dram_bytes"] > base["dram_bytes"]


def test_sweep_equals_simulate(traces):
    flat = traces["vit-tiny"]
    configs = [PRESETS[p].replace(dataflow=d) for p in ("edge-8", "edge-16", "edge-32")
               for d in ("ws", "os", "is")]
    configs.append(PRESETS["edge-16"].replace(dram_bytes_per_cycle=2.0, double_buffer=False))
    out = sweep(flat, configs)
    assert set(SWEEP_COLUMNS) <= set(out)
    for j, cfg in enumerate(configs):
        t = simulate(flat, cfg).totals
        assert out["cycles"][j] == t["cycles"]
        assert out["stall_cycles"][j] == t["stall_cycles"]
        assert out["energy_pj"][j] == pytest.approx(t["energy_pj"], rel=1e-12)
        assert out["dram_bytes"][j] == t["dram_bytes"]
        assert out["latency_ms"][j] == pytest.approx(t["latency_ms"])
        assert out["error_op"][j] == -1


# ---- errors ---------------------------------------------------------------------------------
def _tiny_trace(*ops) -> Trace:
    return Trace(name="t", batch=1, ops=tuple(ops))


def test_wrong_types_are_rejected():
    with pytest.raises(TypeError, match="Trace"):
        simulate("vit-tiny", PRESETS["edge-16"])
    with pytest.raises(TypeError, match="AcceleratorConfig"):
        simulate(vit(depth=1), {"rows": 16})
    with pytest.raises(TypeError, match=r"configs\[1\]"):
        sweep(vit(depth=1), [PRESETS["edge-8"], "edge-16"])
    with pytest.raises(SimulationError, match="configs is empty"):
        sweep(vit(depth=1), [])


def test_row_that_cannot_fit_names_the_op_and_the_buffer():
    trace = _tiny_trace(
        Softmax(name="attn", inputs=("input",), batch=1, rows=4, cols=1000, in_bits=32),
    )
    small = AcceleratorConfig(ofmap_sram_bytes=4096)
    # 16 lanes, B = 63, T = 4: logits (63 + 2*4 + 1) * 16 * 4 bytes + exponentials
    # (63 + 4 + 10) * 16 * 2 bytes = 4608 + 2464
    with pytest.raises(SimulationError, match=r"op 0 \('attn'\).*7072 bytes of the ofmap "
                                         r"buffer, which holds 4096 bytes \(ofmap_sram_bytes\)"):
        simulate(trace, small)
    # It fits a larger buffer.
    assert simulate(trace, AcceleratorConfig(ofmap_sram_bytes=8192)).totals["cycles"] > 0


def test_layernorm_and_pool_buffers_are_checked():
    ln = _tiny_trace(LayerNorm(name="ln", inputs=("input",), batch=1, rows=2, cols=1024))
    # 16 lanes, B = 64, T = 4: (64 + 4 + 27) words of 16 bytes
    with pytest.raises(ValueError, match=r"op 0 \('ln'\).*1520 bytes.*holds 512"):
        simulate(ln, AcceleratorConfig(ofmap_sram_bytes=512, cols=8))
    pool = _tiny_trace(MaxPool(name="mp", inputs=("input",), n=1, h=64, w=64, c=64, r=3,
                               s=3, stride_h=2, stride_w=2))
    # two grid rows of 64 x 64 int8 values: 8192 bytes
    with pytest.raises(ValueError, match=r"op 0 \('mp'\).*line buffer.*8192 bytes"):
        simulate(pool, AcceleratorConfig(ofmap_sram_bytes=8000))
    assert simulate(pool, AcceleratorConfig(ofmap_sram_bytes=8192)).totals["cycles"] > 0


#: (config field, buffer, bytes of one word on a 4x4 int8 array, what the word holds)
_WORDS = [("ifmap_sram_bytes", "ifmap", 4, "operand-A"),
          ("weight_sram_bytes", "weight", 4, "operand-B"),
          ("ofmap_sram_bytes", "ofmap", 16, "int32 accumulator")]


@pytest.mark.parametrize("double_buffer", [False, True])
@pytest.mark.parametrize("dataflow, field, buf, need, word", [
    (d, *w) for d in ("ws", "os", "is") for w in _WORDS
    if not (d == "os" and w[1] == "ofmap")  # os accumulates in the PEs
])
def test_a_tile_that_cannot_fit_names_the_op_and_the_buffer(dataflow, field, buf, need, word,
                                                             double_buffer):
    # A buffer below one word of the 4x4 array (4 int8 lanes, or 4 int32 accumulators) per
    # slot (with double_buffer the A and W buffers are halves: one word in each): a
    # validated config cannot have one, so the config's check is bypassed here. Not even a
    # 1 x 1 x 1 GEMM-unit call fits; the planner must say so, not divide by zero.
    cfg = AcceleratorConfig(rows=4, cols=4, dataflow=dataflow, double_buffer=double_buffer)
    halves = double_buffer and buf != "ofmap"
    have = 2 * need - 1 if halves else need - 1
    object.__setattr__(cfg, field, have)
    trace = _tiny_trace(Gemm(name="fc", inputs=("input",), batch=1, m=4, k=8, n=8,
                             weights=True))
    what = (rf"one {need}-byte {word} word in each half of it \(double_buffer\), "
            rf"{2 * need} bytes" if halves else rf"one {need}-byte {word} word of it")
    with pytest.raises(SimulationError, match=(
            rf"op 0 \('fc'\): a tile cannot fit the {buf} buffer: the smallest "
            rf"GEMM-unit call \(1 x 1 x 1\) needs {what}, and {field} is {have}$")):
        simulate(trace, cfg)
    assert list(sweep(trace, [cfg, AcceleratorConfig()])["error_op"]) == [0, -1]


def test_sweep_reports_the_failing_op():
    trace = _tiny_trace(
        Softmax(name="attn", inputs=("input",), batch=1, rows=4, cols=1000, in_bits=32),
    )
    out = sweep(trace, [AcceleratorConfig(ofmap_sram_bytes=4096), AcceleratorConfig()])
    assert list(out["error_op"]) == [0, -1]


def test_operands_wider_than_the_array_are_rejected():
    gemm = Gemm(name="fc", inputs=("input",), batch=1, m=4, k=8, n=8, weights=True)
    narrow = AcceleratorConfig(input_bits=4)
    with pytest.raises(SimulationError, match=r"op 0 \('fc'\): in_bits 8 exceeds the array's "
                                         r"input_bits 4"):
        simulate(_tiny_trace(gemm), narrow)
    with pytest.raises(ValueError, match=r"weight_bits 4"):
        simulate(_tiny_trace(gemm), AcceleratorConfig(weight_bits=4))


def test_accumulator_overflow_is_rejected():
    gemm = Gemm(name="fc", inputs=("input",), batch=1, m=4, k=192, n=8, weights=True)
    with pytest.raises(SimulationError, match=r"op 0 \('fc'\): K=192 products could reach "
                                         r"3145728, beyond the 16-bit accumulator"):
        simulate(_tiny_trace(gemm), AcceleratorConfig(acc_bits=16))
    with pytest.raises(ValueError, match=r"configs\[0\] \(custom\)"):
        sweep(_tiny_trace(gemm), [AcceleratorConfig(acc_bits=16)])


def test_bad_configs_keep_their_clear_errors():
    with pytest.raises(ValueError, match=r"rows: 0 is out of range; allowed \[1, 256\]"):
        PRESETS["edge-16"].replace(rows=0)


def test_result_table_columns_are_documented():
    res = simulate(vit(depth=1), PRESETS["edge-16"])
    assert res.table.shape == (len(res.ops), records.NCOL)
    assert np.all(res.table[:, records.COLUMNS.index("error")] == records.ERR_NONE)


def test_random_configs_never_crash_and_stay_consistent():
    """Fuzz: odd arrays, tiny and huge buffers, slow and fast DRAM, every dataflow."""
    import random

    rng = random.Random(11)
    configs = []
    for i in range(120):
        rows, cols = rng.choice((1, 2, 3, 5, 8, 16, 31, 64)), rng.choice((1, 2, 7, 8, 16, 33))
        acc = 4 * max(rows, cols)
        configs.append(AcceleratorConfig(
            name=f"f{i}", rows=rows, cols=cols, dataflow=rng.choice(("ws", "os", "is")),
            ifmap_sram_bytes=max(256, rng.choice((256, 1024, 8192, 1 << 20))),
            weight_sram_bytes=max(256, rows * cols, rng.choice((256, 4096, 1 << 20))),
            ofmap_sram_bytes=max(256, acc, rng.choice((256, 4096, 1 << 18))),
            dram_bytes_per_cycle=rng.choice((0.01, 1.0, 64.0)),
            vector_lanes=rng.choice((1, 3, 16)), double_buffer=rng.random() < 0.5,
        ))
    for name in ("resnet18", "mobilenetv2"):
        flat = flatten(build_model(name))
        out = sweep(flat, configs)
        ok = out["error_op"] < 0
        assert np.all(out["cycles"][ok] > 0)
        assert np.all(out["cycles"] == out["compute_cycles"] + out["vector_cycles"]
                      + out["stall_cycles"])
        if name == "resnet18":  # its 3x3 max pool needs a line buffer: both paths below
            assert ok.sum() >= 10 and (~ok).sum() >= 1, name
        else:  # MobileNetV2's only pool is global (no line buffer): every config runs
            assert ok.all(), name
        for j in np.flatnonzero(ok)[:10]:
            t = simulate(flat, configs[j]).totals
            assert t["cycles"] == out["cycles"][j] and t["macs"] == flat.macs
        if ok.all():
            continue
        # A config the sweep flags fails in simulate with the same op named.
        j = int(np.flatnonzero(~ok)[0])
        with pytest.raises(SimulationError, match=rf"^op {int(out['error_op'][j])} \("):
            simulate(flat, configs[j])


def test_progress_reports_every_op_in_chunks(traces):
    flat = traces["vit-tiny"]
    calls: list[int] = []
    res = simulate(flat, PRESETS["edge-16"], progress=calls.append, chunk=16)
    n = len(flat.ops)
    assert sum(calls) == n and len(calls) == -(-n // 16) and max(calls) == 16
    np.testing.assert_array_equal(res.table, simulate(flat, PRESETS["edge-16"]).table)


# ---- the unit registry ---------------------------------------------------------------------
def test_the_registry_is_the_trace_kinds_in_order():
    assert list(REGISTRY) == list(KINDS)
    assert KIND_CODES == {kind: i for i, kind in enumerate(KINDS)}
    assert [bool(v) for v in ON_ARRAY] == [REGISTRY[k].on_array for k in KINDS]
    for kind, model in REGISTRY.items():
        # A matrix kind runs on the GEMM unit: the trace's own unit says so too.
        assert model.on_array == (KINDS[kind].unit == "array"), kind
        assert (model.check_config is not None) == model.on_array, kind


@pytest.fixture(scope="module")
def every_kind():
    """Every op of the three CNN / transformer builders, one trace per builder."""
    return [vit(depth=1), resnet18(image_size=32), mobilenetv2(image_size=32)]


def test_every_kind_is_costed_by_its_own_unit(every_kind):
    """Each vector op's cycles are its unit's cycle function, each matrix op's compute the
    sum of its calls' gemm_cycles: the kernel dispatch reaches the unit of every kind."""
    from edgetron.hw.pool import pool_cycles
    from edgetron.sim.units import add, concat, gelu, layernorm, softmax

    cfg = PRESETS["edge-16"]
    p = cfg.sim_params()
    cycles = {
        "softmax": lambda op: softmax.softmax_cycles(p, op.batch * op.rows, op.cols),
        "layernorm": lambda op: layernorm.layernorm_cycles(p, op.batch * op.rows, op.cols),
        "gelu": lambda op: gelu.gelu_cycles(p, op.out_elements),
        "add": lambda op: add.add_cycles(p, op.out_elements),
        "concat": lambda op: concat.concat_cycles(p, op.out_elements),
        "maxpool": lambda op: pool_cycles(p.vector_lanes, op.n, op.h, op.w, op.c, op.out_h,
                                          op.out_w, op.r, op.s, op.stride_h, op.stride_w,
                                          op.pad_top, op.pad_left),
        "avgpool": lambda op: pool_cycles(p.vector_lanes, op.n, op.h, op.w, op.c, op.out_h,
                                          op.out_w, op.r, op.s, op.stride_h, op.stride_w,
                                          op.pad_top, op.pad_left),
    }
    seen = set()
    for trace in every_kind:
        res = simulate(trace, cfg)
        for op, r in zip(trace, res.ops, strict=True):
            seen.add(op.kind)
            if REGISTRY[op.kind].on_array:
                assert r.values["compute_cycles"] > 0 and r.values["vector_cycles"] >= 0
            else:
                assert r.values["vector_cycles"] == cycles[op.kind](op), op.name
    assert seen == set(KINDS)


def test_a_kind_without_a_cost_model_is_named(monkeypatch):
    # A vector op whose kind code has no branch in vector_work (as a newly registered kind
    # would before its branch is added): an error naming it, never a silent zero.
    flat = flatten(Trace(name="t", batch=1, ops=(
        Softmax(name="sm", inputs=("input",), batch=1, rows=2, cols=8),)))
    recs = flat.records.copy()
    recs[0, records.FIELDS.index("kind")] = len(KINDS)  # beyond every branch, not on the array
    bad = type(flat)(flat.name, recs, flat.ops, flat.macs)
    # The engine's dispatch run as Python, so that it reads the patched table of codes.
    monkeypatch.setattr("edgetron.sim.engine.ON_ARRAY", np.zeros(len(KINDS) + 1, np.int64))
    from edgetron.sim.energy import energy_vector
    from edgetron.sim.engine import _op_costs, _raise_error

    cfg = PRESETS["edge-16"]
    row = np.zeros(records.NCOL)
    _op_costs.py_func(cfg.sim_params(), energy_vector(cfg), bad.records[0], row)
    assert row[records.COLUMNS.index("error")] == records.ERR_NO_MODEL
    table = row[None]

    with pytest.raises(SimulationError, match=r"op 0 \('sm'\): the simulator has no "
                                              r"cost model of kind 'softmax'"):
        _raise_error(bad, 0, table[0], cfg)


# ---- traces too large for the kernels' 64-bit integers --------------------------------------
def _huge_conv() -> Trace:
    """A valid conv2d (every tensor within the trace limits) of 2.5e19 MACs."""
    return Trace(name="huge", batch=1, ops=(
        Conv2d(name="big", inputs=("input",), n=1, h=50_000, w=50_000, c=1, k=1, r=50_000,
               s=50_000, pad_top=49_999, pad_bottom=49_999, pad_left=49_999,
               pad_right=49_999),))


def test_macs_beyond_int64_are_refused_before_any_kernel():
    trace = _huge_conv()
    assert trace.macs == 99_999**2 * 50_000**2 > INT64_MAX  # the trace itself is valid
    msg = (r"^op 0 \('big'\): its macs = 24,999,500,002,500,000,000 exceeds the "
           r"simulator's 64-bit integers \(at most 9,223,372,036,854,775,807\); the trace "
           r"is valid, but too large to simulate$")
    for run in (lambda: simulate(trace, PRESETS["edge-16"]), lambda: flatten(trace),
                lambda: sweep(trace, [PRESETS["edge-8"]]),
                lambda: check(trace, PRESETS["edge-8"])):
        with pytest.raises(SimulationError, match=msg):
            run()


def test_a_pool_whose_counts_overflow_is_refused():
    # 99,999 x 99,999 outputs of 50,000 x 50,000 windows: 2.5e19 window reads, which the
    # kernels would wrap; refused before the line-buffer check could even run.
    trace = Trace(name="p", batch=1, ops=(
        MaxPool(name="pool", inputs=("input",), n=1, h=50_000, w=50_000, c=1, r=50_000,
                s=50_000, pad_top=49_999, pad_bottom=49_999, pad_left=49_999,
                pad_right=49_999),))
    with pytest.raises(SimulationError, match=(
            r"^op 0 \('pool'\): its window reads, up to "
            r"8\*n\*out_h\*out_w\*c\*r\*s = 199,996,000,020,000,000,000, exceed the "
            r"simulator's 64-bit integers")):
        simulate(trace, PRESETS["edge-16"])


def test_a_conv_whose_counts_overflow_is_refused():
    # 2-bit operands let K reach 536,848,900 (23,170 x 23,170 windows) within the 32-bit
    # accumulator; 99,999 x 99,999 outputs make 5.4e18 MACs, which fit int64, but the
    # planner's counts (bytes, calls, partial sums over padded tiles) would not.
    pad = 11_584
    trace = Trace(name="wide", batch=1, ops=(
        Conv2d(name="c", inputs=("input",), n=1, h=100_000, w=100_000, c=1, k=1, r=23_170,
               s=23_170, pad_top=pad, pad_bottom=pad, pad_left=pad, pad_right=pad,
               in_bits=2, weight_bits=2),))
    op = trace[0]
    assert op.gemm.k == 536_848_900 and op.out_h == 99_999 and trace.macs < INT64_MAX
    with pytest.raises(SimulationError, match=(
            r"^op 0 \('c'\): its traffic and event counts, up to "
            r"16\*count\*\(M\+E\)\*\(K\+E\)\*\(N\+E\) with count=1, M=9999800001, "
            r"K=536848900, N=1 \(its GEMM view\) and E=8 \(the larger array edge\) = "
            r"[0-9,]+, exceed the simulator's 64-bit integers \(at most "
            r"9,223,372,036,854,775,807\); the trace is valid, but too large to simulate$")):
        simulate(trace, PRESETS["edge-8"])
    # The im2col DRAM bound, n*h*w*(c/groups)*K + K, is checked too.
    bounds = dict((w, v) for w, _, v in REGISTRY["conv2d"].int64_bounds(op, 8))
    assert bounds["its im2col DRAM accounting"] == 10**10 * op.gemm.k + op.gemm.k


def test_the_matrix_bound_grows_with_the_array_edge():
    op = Gemm(name="g", inputs=("input",), batch=1, count=3, m=5, k=7, n=2, weights=True)
    ((what, formula, small),) = REGISTRY["gemm"].int64_bounds(op, 8)
    ((_, _, large),) = REGISTRY["gemm"].int64_bounds(op, 256)
    assert small == 16 * 3 * (5 + 8) * (7 + 8) * (2 + 8)
    assert large == 16 * 3 * (5 + 256) * (7 + 256) * (2 + 256)
    assert "count=3, M=5, K=7, N=2" in formula and "E=8" in formula
    assert what == "its traffic and event counts"


def test_bounds_are_checked_once_per_trace_and_edge():
    flat = flatten(vit(depth=1))
    simulate(flat, PRESETS["edge-8"])
    simulate(flat, PRESETS["edge-8"].replace(dataflow="os"))
    sweep(flat, [PRESETS["edge-16"], PRESETS["edge-32"]])
    assert flat._edges_checked == {8, 16, 32}


def test_every_trace_kind_has_a_model():
    assert set(KIND_CODES) == set(KINDS)
