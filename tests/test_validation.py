"""Bad input everywhere gives a clear error: API arguments, files, CLI flags, and the
memory bound that answers hopeless problems fast.

Every case here was a traceback, a hang or a silently wrong answer before; each asserts a
:class:`~phaze.errors.ConfigError` (exit status 2 and one line on the command line) that
names the bad value.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import phaze
from phaze.cli import main
from phaze.errors import ConfigError
from phaze.hardware import Accelerator, DesignSpace
from phaze.joint.bounds import devices_lower_bound, time_per_batch_lower_bound
from phaze.models import TransformerSpec, build_graph, preset
from phaze.placement import place_arrays
from phaze.placement.instance import problem_from_instance
from phaze.units import GIB

DATA_DIR = Path(__file__).parent / "data"

TINY = DesignSpace(
    num_tc=(8,),
    num_vc=(2,),
    tc_width=(128,),
    tc_depth=(128,),
    vc_width=(128,),
    glb_bytes=(2**27,),
    area_band=0.0,
)
BERT = phaze.Workload(preset("bert-large"), global_batch=256)
CLUSTER = phaze.Cluster(devices=16)
LLAMA_7B = DATA_DIR / "hf_configs" / "llama-2-7b.json"
INSTANCE = DATA_DIR / "placement" / "tiny6_8dev.instance.json"


# --- evaluate_architectures and the other public entry points ------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hbm_bytes": -1}, "hbm_bytes=-1 is invalid"),
        ({"hbm_bytes": 0}, "hbm_bytes=0 is invalid"),
        ({"hbm_bytes": math.nan}, "hbm_bytes=nan is invalid"),
        ({"hbm_bytes": "32"}, "hbm_bytes='32' is invalid"),
        ({"hbm_bytes": math.inf}, "hbm_bytes=inf is invalid"),
        ({"recompute": "no"}, "recompute='no' is invalid; allowed: true or false"),
        ({"micro_batch_size": "8"}, "micro_batch_size='8' is invalid"),
        ({"micro_batch_size": 3}, "micro-batch size 3 must"),
        ({"cluster": None}, "cluster=None is invalid"),
        ({"workload": "bert-large"}, "workload='bert-large' is invalid"),
        ({"arch_table": None}, "arch_table=None is invalid"),
    ],
)
def test_evaluate_architectures_checks_its_arguments(kwargs, message):
    args = {
        "workload": BERT,
        "cluster": CLUSTER,
        "arch_table": TINY.enumerate(),
        "micro_batch_size": 8,
        "hbm_bytes": 32 * GIB,
        "recompute": False,
    }
    args.update(kwargs)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        phaze.evaluate_architectures(**args)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: phaze.Workload("bert-large"), "model='bert-large' is invalid"),
        (lambda: phaze.search("bert-large"), "workloads='bert-large' is invalid"),
        (lambda: phaze.place(None), "problem=None is invalid"),
        (lambda: phaze.preset(["x"]), r"unknown model \['x'\]"),
        (lambda: phaze.Cluster(link_bandwidth_Bps="4e9"), "link_bandwidth_Bps='4e9'"),
        (lambda: phaze.search(BERT, hbm_sizes=(math.inf,)), "hbm_bytes=inf is invalid"),
        (lambda: Accelerator(tc_width=2**62, tc_depth=4), "tc_width=4611686018427387904"),
        (lambda: Accelerator(glb_bytes=2**62), "allowed: an integer from 1 to 1099511627776"),
        (lambda: Accelerator(frequency_hz=1e300), r"frequency_hz=1e\+300 is invalid"),
        (lambda: DesignSpace(num_tc=(2**62,)), "num_tc has the value 4611686018427387904"),
    ],
)
def test_public_entry_points_raise_config_error(call, message):
    with pytest.raises(ConfigError, match=message):
        call()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("link_bandwidth_Bps", 0.0),
        ("link_bandwidth_Bps", math.nan),
        ("devices", 0),
        ("devices", 10**30),
        ("hbm_bytes", -1.0),
        ("num_micro_batches", 0),
        ("recompute", "false"),
    ],
)
def test_place_arrays_checks_its_scalars(name, value):
    one = np.ones((1, 2))
    kw = {
        "devices": 2,
        "link_bandwidth_Bps": 1.0,
        "hbm_bytes": 100.0,
        "num_micro_batches": 2,
        "recompute": False,
        "adam": False,
    }
    kw[name] = value
    with pytest.raises(ConfigError, match=name):
        place_arrays([1], one, one, one, one, one > 0, [0], [1], [0.0], **kw)


# --- placement instances -----------------------------------------------------------------------


def _instance() -> dict:
    return json.loads(INSTANCE.read_text(encoding="utf-8"))


def test_instance_width_keys_that_mean_the_same_width_are_refused():
    obj = _instance()
    key = next(iter(obj["nodes"]))
    obj["nodes"]["0" + key] = obj["nodes"][key]
    obj["edges"]["0" + key] = obj["edges"][key]
    with pytest.raises(ConfigError, match=f"'{key}' and '0{key}' both mean tensor width"):
        problem_from_instance(obj)


@pytest.mark.parametrize("field", ["isTensorParallelized", "activationRecomputation"])
def test_instance_flags_must_be_booleans(field):
    obj = _instance()
    if field == "activationRecomputation":
        obj[field] = "false"
    else:
        key = next(iter(obj["nodes"]))
        obj["nodes"][key][0][field] = "false"
    with pytest.raises(ConfigError, match=f"{field}='false' is invalid; allowed: true or false"):
        problem_from_instance(obj)


def test_instance_device_count_has_a_stated_limit():
    obj = _instance()
    obj["maxDevices"] = 10**30
    with pytest.raises(ConfigError, match="allowed: an integer from 1 to 16777216"):
        problem_from_instance(obj)


# --- JSON files --------------------------------------------------------------------------------


def _write(path, text: str | bytes):
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("reader", ["hf", "instance"])
def test_json_files_that_are_not_json_objects(tmp_path, reader):
    read = TransformerSpec.from_hf_config if reader == "hf" else phaze.placement.load_instance
    deep = _write(tmp_path / "deep.json", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError, match="deep.json' nests arrays/objects too deeply"):
        read(deep)
    latin1 = _write(tmp_path / "latin1.json", '{"name": "caf\xe9"}'.encode("latin-1"))
    with pytest.raises(ConfigError, match="latin1.json' is not UTF-8 text"):
        read(latin1)
    with pytest.raises(ConfigError, match="is a directory, not a JSON file"):
        read(tmp_path)


def _hf(tmp_path, **changes):
    cfg = json.loads(LLAMA_7B.read_text(encoding="utf-8"))
    cfg.update(changes)
    return _write(tmp_path / "config.json", json.dumps(cfg))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model_type": ["llama"]}, r"model_type=\['llama'\] is not supported"),
        ({"tie_word_embeddings": "false"}, "tie_word_embeddings='false' is invalid"),
        ({"attention_bias": "true"}, "attention_bias='true' is invalid"),
        ({"mlp_bias": 1}, "mlp_bias=1 is invalid"),
        ({"num_key_value_heads": 0}, "'num_key_value_heads'=0 must be an integer >= 1"),
        ({"head_dim": 0}, "'head_dim'=0 must be an integer >= 1"),
        ({"vocab_size": 10**30}, "vocab=1000000000000000000000000000000 is invalid"),
        ({"num_hidden_layers": 10**6}, "layers=1000000 is invalid; allowed: an integer from"),
        ({"num_hidden_layers": 10**30}, "layers=1000000000000000000000000000000 is invalid"),
        ({"hidden_act": ["silu"]}, None),  # Llama ignores it: no error expected
    ],
)
def test_hf_config_fields_are_checked_before_anything_is_built(tmp_path, changes, message):
    path = _hf(tmp_path, **changes)
    started = time.perf_counter()
    if message is None:
        assert TransformerSpec.from_hf_config(path).layers == 32
        return
    with pytest.raises(ConfigError, match=message):
        TransformerSpec.from_hf_config(path)
    assert time.perf_counter() - started < 2.0


def test_gpt2_string_false_is_not_read_as_true(tmp_path):
    cfg = json.loads((DATA_DIR / "hf_configs" / "gpt2-xl.json").read_text(encoding="utf-8"))
    cfg["tie_word_embeddings"] = "false"
    path = _write(tmp_path / "config.json", json.dumps(cfg))
    with pytest.raises(ConfigError, match="tie_word_embeddings='false'"):
        TransformerSpec.from_hf_config(path)


# --- Llama biases and head width ----------------------------------------------------------------


def _llama_params(hidden, heads, kv_heads, head_dim, ffn, layers, vocab, attn_b, mlp_b):
    """Parameters of a Hugging Face LlamaForCausalLM, from its module shapes."""
    q, kv = heads * head_dim, kv_heads * head_dim
    block = hidden * q + 2 * hidden * kv + q * hidden  # q, k, v, o
    block += 3 * hidden * ffn  # gate, up, down
    block += 2 * hidden  # two RMSNorm weights
    if attn_b:
        block += q + 2 * kv + hidden
    if mlp_b:
        block += 2 * ffn + hidden
    return layers * block + 2 * vocab * hidden + hidden  # embed, untied lm_head, norm


def test_llama_attention_bias_adds_attention_biases_only(tmp_path):
    spec = TransformerSpec.from_hf_config(_hf(tmp_path, attention_bias=True))
    assert spec.param_count() == 6_738_939_904


@pytest.mark.parametrize(
    ("attn_b", "mlp_b", "head_dim"),
    [(False, True, None), (True, True, None), (False, False, 256), (True, False, 64)],
)
def test_llama_mlp_bias_and_head_dim_are_honoured(tmp_path, attn_b, mlp_b, head_dim):
    changes = {"attention_bias": attn_b, "mlp_bias": mlp_b}
    if head_dim is not None:
        changes["head_dim"] = head_dim
    spec = TransformerSpec.from_hf_config(_hf(tmp_path, **changes))
    hd = head_dim or 128
    want = _llama_params(4096, 32, 32, hd, 11008, 32, 32000, attn_b, mlp_b)
    assert spec.param_count() == want
    q = 32 * hd
    for t in (1, 4):  # the graph's per-device weights and GEMM shapes use them too
        g = build_graph(spec, 128, 1, t)
        split = 4 * 4096 * q + 3 * 4096 * 11008  # q, k, v, o and the MLP matrices
        split += (3 * q if attn_b else 0) + (2 * 11008 if mlp_b else 0)
        replicated = 2 * 4096 + 4096 * (int(attn_b) + int(mlp_b))  # norms, o / down biases
        assert g.block.param_bytes == 2 * (split // t + replicated)
        q_proj = next(op for op in g.block.ops.ops if op.name.startswith("q_proj"))
        assert q_proj.macs == 128 * 4096 * q // t


# --- hopeless problems answer fast ---------------------------------------------------------------


def test_weights_that_cannot_fit_are_refused_without_scheduling():
    started = time.perf_counter()
    res = phaze.search(phaze.Workload(preset("gpt3-175b")), phaze.Cluster(devices=8))
    elapsed = time.perf_counter() - started
    assert res.best is None and len(res.frontier) == 0
    assert res.counters["dp_calls"] == 0 and res.counters["solved"] == 0
    assert elapsed < 10.0, f"{elapsed:.1f} s to find that nothing fits"


def test_cli_says_nothing_fits_for_hopeless_weights(tmp_path, capsys):
    argv = ["search", "--model", "gpt3-175b", "--devices", "8", "--hbm", "32"]
    assert main([*argv, "--out", str(tmp_path / "out"), "--no-progress"]) == 3
    assert "No design has a plan that fits in memory" in capsys.readouterr().out


@given(
    st.lists(st.integers(1, 50), min_size=1, max_size=5),
    st.integers(1, 6),
    st.sampled_from([1, 2]),
    st.booleans(),
    st.booleans(),
    st.integers(5, 120),
    st.randoms(use_true_random=False),
)
def test_memory_bound_never_rules_out_a_feasible_plan(
    params, devices, t, adam, recompute, hbm, rnd
):
    """Whenever the DP finds a plan, the device bound is at most the cluster's devices."""
    n = len(params)
    widths = [1, t] if t > 1 else [1]
    w = len(widths)
    pb = np.array([[p / (k + 1 if rnd.random() < 0.5 else 1) for p in params] for k in range(w)])
    ab = np.array([[rnd.randint(0, 20) for _ in range(n)] for _ in range(w)], dtype=float)
    tp = np.array([[k > 0 and rnd.random() < 0.6 for _ in range(n)] for k in range(w)])
    lat = np.ones((w, n))
    src, dst = np.arange(n - 1), np.arange(1, n)
    eb = np.array([[rnd.randint(0, 5) for _ in range(n - 1)] for _ in range(w)], dtype=float)
    res = place_arrays(
        widths, lat, lat, pb, ab, tp, src, dst, eb.reshape(w, n - 1),
        devices=devices, link_bandwidth_Bps=1.0, hbm_bytes=float(hbm),
        num_micro_batches=4, recompute=recompute, adam=adam,
    )  # fmt: skip
    need = devices_lower_bound(widths, pb, ab, tp, float(hbm), adam)
    if math.isfinite(res.time_per_batch_s):
        assert need <= devices, (need, res)


@given(
    st.integers(1, 5),
    st.integers(1, 8),
    st.integers(1, 12),
    st.integers(1, 3),
    st.floats(0.0, 4.0),
    st.randoms(use_true_random=False),
)
def test_time_bound_with_all_reduce_below_every_chain_plan(n, devices, micro, t, bw, rnd):
    """Every partition of a chain into stages, every d: the documented time per batch,
    including the all-reduce of the first stage's parameters, is never below the bound."""
    fwd = np.array([rnd.uniform(0.1, 2) for _ in range(n)])
    bwd = np.array([rnd.uniform(0.1, 2) for _ in range(n)])
    params = np.array([rnd.uniform(0, 3) for _ in range(n)])
    a = np.array([t if rnd.random() < 0.7 else 1 for _ in range(n)])
    link = 10.0**bw
    lb = time_per_batch_lower_bound(fwd[:, None], bwd[:, None], a, devices, micro, params[0], link)[
        0
    ]
    best = math.inf
    for cuts in itertools.product([False, True], repeat=n - 1):
        edges = [0, *[i + 1 for i, c in enumerate(cuts) if c], n]
        stages = list(itertools.pairwise(edges))
        loads = [float((fwd + bwd)[lo:hi].sum()) for lo, hi in stages]
        need = sum(int(a[lo:hi].max()) for lo, hi in stages)
        s = len(stages)
        for d in range(1, min(devices, micro) + 1):
            if need > devices // d:
                continue
            m = -(-micro // d)
            first = float(params[stages[0][0] : stages[0][1]].sum())
            best = min(best, max(loads) * (m + s - 1) + 4 * (d - 1) * first / (link * d))
    assert lb <= best * (1 + 1e-12), (lb, best)


# --- command-line flags --------------------------------------------------------------------------

BIG = str(10**30)


@pytest.fixture
def bad_files(tmp_path):
    deep = _write(tmp_path / "deep.json", "[" * 100_000 + "]" * 100_000)
    latin1 = _write(tmp_path / "latin1.json", b'{"model_type": "gpt2\xe9"}')
    listed = _write(tmp_path / "listed.json", '{"model_type": ["gpt2"]}')
    obj = _instance()
    obj["maxDevices"] = 10**30
    huge = _write(tmp_path / "huge.json", json.dumps(obj))
    jsondir = tmp_path / "dir.json"  # a directory named as a system file
    jsondir.mkdir()
    return {
        "deep": deep,
        "latin1": latin1,
        "listed": listed,
        "huge": huge,
        "dir": tmp_path,
        "jsondir": jsondir,
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["schedule", "--seq", "0"], "argument --seq: 0 is out of range"),
        (["schedule", "--mbs", "1e30"], "argument --mbs: '1e30' is not an integer"),
        (["schedule", "--mbs", BIG], "argument --mbs: 1000000000000000000000000000000 is out"),
        (["schedule", "--time-limit", "inf"], "argument --time-limit: inf is out of range"),
        (["arch", "--glb-mib", "inf"], "argument --glb-mib: inf is out of range"),
        (["arch", "--tc-width", str(2**62)], "argument --tc-width: 4611686018427387904 is"),
        (["models", "--seq", BIG], "argument --seq"),
        (["search", "--batch", BIG], "argument --batch"),
        (["search", "--devices", BIG], "argument --devices"),
        (["search", "--max-tp", BIG], "argument --max-tensor-width"),
        (["search", "--hbm", "1e300"], "argument --hbm: 1e300 is out of range"),
        (["search", "--hbm", "1e10"], "argument --hbm: 1e10 is out of range"),
        (["search", "--link-gibps", "1e-300"], "allowed: a number from 0.001 to 1e+06 GiB/s"),
        (["search", "--area-budget", "nan"], "argument --area-budget: nan is out of range"),
        (["search", "--hf-config", "{deep}"], "nests arrays/objects too deeply"),
        (["search", "--hf-config", "{latin1}"], "latin1.json' is not UTF-8 text"),
        (["search", "--hf-config", "{listed}"], r"model_type=['gpt2'] is not supported"),
        (["search", "--hf-config", "{dir}"], "is a directory, not a JSON file"),
        (["place", "--instance", "{dir}"], "is a directory, not a JSON file"),
        (["place", "--instance", "{deep}"], "nests arrays/objects too deeply"),
        (["place", "--instance", "{huge}"], "allowed: an integer from 1 to 16777216"),
        (["schedule", "--latencies", "{latin1}"], "is not UTF-8 text"),
        (["sweep", "{dir}"], "sweep file '{dir}' is a directory, not a TOML file"),
        (["sweep", "{latin1}"], "sweep file '{latin1}' is not UTF-8 text (byte 20"),
        (["estimate", "{dir}"], "run file '{dir}' is a directory, not a JSON-lines file"),
        (["estimate", "{latin1}"], "run file '{latin1}' is not UTF-8 text (byte 20"),
        (
            ["plan", "--system", "{latin1}", "--model", "gpt3-175b", "--devices", "8"],
            "system file '{latin1}' is not UTF-8 text (byte 20",
        ),
        (
            ["plan", "--system", "{jsondir}", "--model", "gpt3-175b", "--devices", "8"],
            "system file '{jsondir}' is a directory, not a JSON file",
        ),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(argv, message, bad_files, tmp_path, capsys):
    argv = [a.format(**bad_files) for a in argv]
    message = message.format(**bad_files)
    if argv[0] == "search":
        argv += ["--out", str(tmp_path / "out"), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert message in err, err
    assert len(err) < 400, err  # a 300-digit value is not echoed in full
