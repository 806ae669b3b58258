"""One suite for both backends: the GPU algorithm against the CPU loop, backend selection, chunks.

Cases parametrized over ``numpy`` and ``cupy`` run the kernels on that namespace; the CuPy ones
are skipped where no CUDA device works. The sorted (GPU) form of the running totals also runs on
NumPy, so CI checks it against the CPU loop on every run, device or not.
"""
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import fake_cupy
from conftest import cupy_or_skip, shipment, write_ledger
from kernels.amounts import AmountOverflowError, row_amounts
from kernels.backend import (NUMPY, Backend, BackendUnavailableError, reset_probe, rows_per_chunk,
                             select_backend)
from kernels.running_totals import TotalsOverflowError, key_totals, over_limit, running_totals

ROOT = Path(__file__).resolve().parent.parent
INT64_MAX = np.iinfo(np.int64).max


@pytest.fixture(scope="module", params=["numpy", "cupy"])
def device(request):
    """The backend to test on; CuPy cases skip cleanly where no device works."""
    return Backend("numpy", np, method="sorted") if request.param == "numpy" else cupy_or_skip()


def loop(keys, amounts, n_keys, carry=None):
    """The CPU loop's answer: (cumulative, totals) or the overflow row."""
    try:
        cum, totals = running_totals(np.asarray(keys, np.int64), np.asarray(amounts, np.int64), n_keys,
                                     carry=None if carry is None else np.asarray(carry, np.int64))
        return cum.tolist(), totals.tolist()
    except TotalsOverflowError as error:
        return error.row


def on(device, keys, amounts, n_keys, carry=None, dtype=np.int64):
    """The sorted form's answer on ``device``, in the same shape as :func:`loop`."""
    xp = device.xp
    try:
        cum, totals = running_totals(xp.asarray(np.asarray(keys, dtype)), xp.asarray(np.asarray(amounts, np.int64)),
                                     n_keys, carry=None if carry is None else xp.asarray(np.asarray(carry, np.int64)),
                                     xp=xp, method="sorted")
        return device.to_host(cum).tolist(), device.to_host(totals).tolist()
    except TotalsOverflowError as error:
        return error.row


@st.composite
def ledgers(draw, amounts=st.integers(0, 10**12)):
    n_keys = draw(st.integers(0, 8))
    keys = st.integers(-1, n_keys - 1) if n_keys else st.just(-1)
    rows = draw(st.lists(st.tuples(keys, amounts), max_size=120))
    carry = draw(st.none() | st.lists(amounts, min_size=n_keys, max_size=n_keys))
    return [k for k, _ in rows], [a for _, a in rows], n_keys, carry


# ------------------------------------------------------------------------------ kernels
@settings(max_examples=150, deadline=None)
@given(data=ledgers(), dtype=st.sampled_from([np.int32, np.int64]))
def test_sorted_form_equals_the_cpu_loop(device, data, dtype):
    keys, amounts, n_keys, carry = data
    expected = loop(keys, amounts, n_keys, carry)
    assert on(device, keys, amounts, n_keys, carry, dtype) == expected
    if not isinstance(expected, int):
        xp = device.xp
        totals = key_totals(xp.asarray(np.asarray(keys, np.int64)), xp.asarray(np.asarray(amounts, np.int64)), n_keys,
                            carry=None if carry is None else xp.asarray(np.asarray(carry, np.int64)), xp=xp,
                            method="sorted")
        assert device.to_host(totals).tolist() == expected[1]


HUGE = st.sampled_from([0, 1, 5, 2**31, 2**32 + 7, 2**62 - 1, 2**62, 2**62 + 2**32, INT64_MAX // 3, INT64_MAX // 2 + 1,
                        INT64_MAX - 1, INT64_MAX]) | st.integers(0, INT64_MAX)


@settings(max_examples=200, deadline=None)
@given(data=ledgers(amounts=HUGE))
def test_overflow_is_found_at_the_same_row(device, data):
    """Near the int64 bound: the same results, or an overflow reported at the same first row."""
    keys, amounts, n_keys, carry = data
    assert on(device, keys, amounts, n_keys, carry) == loop(keys, amounts, n_keys, carry)


def test_a_wrapping_global_sum_neither_fools_nor_stops_the_check(device):
    big = 2**62 - 1
    # Per key the totals fit (2**63 - 2) while the sum over all rows wraps: exact, no error.
    assert on(device, [0, 1, 0, 1], [big] * 4, 2) == ([big, big, 2 * big, 2 * big], [2 * big, 2 * big])
    # One key's total is 2**64 + 5, which wraps to 5: still an overflow, at row 1 as on the CPU.
    assert on(device, [0, 0, 0, 0, 0], [2**62] * 4 + [5], 1) == loop([0] * 5, [2**62] * 4 + [5], 1) == 1
    # Same, hidden behind other keys and non-candidates, in any key order.
    keys, amounts = [1, -1, 0, 1, 1, 0, 1], [2**62, 9, 3, 2**62, 2**62, 4, 2**62]
    assert on(device, keys, amounts, 2) == loop(keys, amounts, 2) == 3
    # The carry-in counts: a carry one below the bound overflows at the first row of its key.
    assert on(device, [1, 0], [1, 2], 2, carry=[INT64_MAX - 1, INT64_MAX - 1]) == 1
    assert on(device, [1, 0], [1, 1], 2, carry=[INT64_MAX - 1, INT64_MAX - 1]) == (
        [INT64_MAX, INT64_MAX], [INT64_MAX, INT64_MAX])


def test_negative_amounts_and_bad_keys_are_refused(device):
    assert on(device, [0, -1, 0, 0], [1, -5, -2, 3], 1) == loop([0, -1, 0, 0], [1, -5, -2, 3], 1) == 2
    with pytest.raises(ValueError, match="out of range"):
        running_totals(device.xp.asarray(np.array([0, 3])), device.xp.asarray(np.array([1, 1])), 2, xp=device.xp,
                       method="sorted")


def test_calls_over_2_31_rows_are_cut_into_slices_with_carry(monkeypatch):
    import kernels.segmented

    monkeypatch.setattr(kernels.segmented, "MAX_ROWS_PER_CALL", 3)
    rng = np.random.default_rng(5)
    keys, amounts = rng.integers(-1, 4, 50), rng.integers(0, 1000, 50)
    carry = rng.integers(0, 1000, 4)
    cum, totals = running_totals(keys, amounts, 4, carry=carry, method="sorted")
    expected = running_totals(keys, amounts, 4, carry=carry)
    assert cum.tolist() == expected[0].tolist() and totals.tolist() == expected[1].tolist()
    keys[[10, 20]], amounts[[10, 20]] = 2, 2**62
    amounts[30] = -1
    with pytest.raises(TotalsOverflowError) as caught:
        running_totals(keys, amounts, 4, method="sorted")
    assert caught.value.row == loop(keys, amounts, 4) == 20


def test_the_cpu_loop_stays_the_numpy_default():
    with pytest.raises(NotImplementedError):
        running_totals(np.zeros(1, np.int64), np.ones(1, np.int64), 1, xp=fake_cupy.make(), method="loop")
    with pytest.raises(ValueError, match="method"):
        running_totals(np.zeros(1, np.int64), np.ones(1, np.int64), 1, method="scan")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(-2, 2**40)), max_size=60),
       st.lists(st.sampled_from([0, 1, 15832, 2**30, 2**40, -3]), min_size=4, max_size=4))
def test_row_amounts_composed_equals_the_loop(device, rows, unit):
    codes = np.array([c for c, _ in rows], dtype=np.int32)
    quantity = np.array([q for _, q in rows], dtype=np.int64)
    unit = np.array(unit, dtype=np.int64)

    def run(method, xp):
        try:
            out = row_amounts(xp.asarray(unit), xp.asarray(codes), xp.asarray(quantity), xp=xp, method=method)
            return device.to_host(out).tolist()
        except AmountOverflowError as error:
            return str(error)

    assert run("composed", device.xp) == run("loop", np)


def test_over_limit_on_the_device(device):
    xp = device.xp
    over = over_limit(xp.asarray(np.array([5, 12, -1, 10])), xp.asarray(np.array([0, 0, -1, 1])),
                      np.array([10, 9]), xp=xp)
    assert device.to_host(over).tolist() == [False, True, False, True]


# ------------------------------------------------------------------------------ backend
@settings(max_examples=60, deadline=None)
@given(data=ledgers(), chunk=st.integers(1, 40), limits=st.lists(st.integers(0, 3 * 10**12), min_size=8, max_size=8))
def test_chunked_accumulation_equals_one_pass(device, data, chunk, limits):
    keys, amounts, n_keys, carry = data
    keys, amounts = np.array(keys, np.int64), np.array(amounts, np.int64)
    carry = None if carry is None else np.array(carry, np.int64)
    limits = np.array(limits[:n_keys], np.int64)
    whole = NUMPY.accumulate(keys, amounts, n_keys, carry=carry, limits=limits)
    for chunked in (Backend(device.name, device.xp, device.device, chunk_rows=chunk, method=device.method),
                    Backend("numpy", np, chunk_rows=chunk)):
        got = chunked.accumulate(keys, chunked.resident(amounts), n_keys, carry=carry, limits=limits)
        assert got.cumulative.tolist() == whole.cumulative.tolist()
        assert got.totals.tolist() == whole.totals.tolist()
        assert got.over.tolist() == whole.over.tolist()


def test_chunked_overflow_names_the_row_of_the_whole_input(device):
    keys = np.array([0, 1, 0, 1, 0, 1], np.int64)
    amounts = np.array([1, 2**62, 1, 2**62, 1, 1], np.int64)
    with pytest.raises(TotalsOverflowError) as caught:
        Backend(device.name, device.xp, chunk_rows=2, method=device.method).accumulate(keys, amounts, 2)
    assert caught.value.row == 3 and "row 3" in str(caught.value)


def test_rows_per_chunk_from_free_memory():
    assert rows_per_chunk(128 * 10**6, bytes_per_row=128, fraction=1.0) == 10**6
    assert rows_per_chunk(80 * 2**30) == int(80 * 2**30 * 0.7) // 128
    assert rows_per_chunk(10) == 65536  # a floor: a nearly full device still makes progress
    with pytest.raises(ValueError):
        rows_per_chunk(2**30, bytes_per_row=0)
    assert NUMPY.rows_per_chunk() is None and NUMPY.plain
    assert Backend("numpy", np, chunk_rows=5).rows_per_chunk() == 5


def test_select_backend_names():
    assert select_backend("numpy") is NUMPY
    custom = Backend("numpy", np, chunk_rows=3)
    assert select_backend(custom) is custom
    with pytest.raises(ValueError, match="auto, numpy, cupy"):
        select_backend("gpu")


@pytest.mark.parametrize("broken,reason", [
    ("missing", "CuPy cannot be imported"), ("count", "no CUDA device"), ("none", "no CUDA device"),
    ("kernel", "does not run a CuPy kernel"), ("wrong", "wrong test sum"),
])
def test_auto_falls_back_and_cupy_explains_why(monkeypatch, fake_gpu, broken, reason):
    if broken == "missing":
        monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy raises ImportError
        reset_probe()
    else:
        fake_gpu(devices=0 if broken == "none" else 1, fail=None if broken == "none" else broken)
    assert select_backend("auto") is NUMPY
    with pytest.raises(BackendUnavailableError, match=reason) as caught:
        select_backend("cupy")
    assert "backend 'numpy' or 'auto'" in str(caught.value)


def test_auto_takes_a_working_device_and_sizes_chunks_from_its_memory(fake_gpu):
    fake_gpu(free=128 * 10**7)
    chosen = select_backend("auto")
    assert (chosen.name, chosen.device) == ("cupy", "Fake GPU") and not chosen.plain
    assert chosen.rows_per_chunk() == rows_per_chunk(128 * 10**7)
    assert select_backend("cupy").name == "cupy"


def test_auto_leaves_pair_scoring_on_the_cpu(fake_gpu):
    """Until a device measurement shows the array-form pair scorer faster than Numba, ``auto`` runs
    only the accumulators on the device; ``cupy`` by name runs pair scoring there too."""
    assert not select_backend("auto").scores_pairs_on_device
    assert select_backend("cupy").scores_pairs_on_device
    assert not NUMPY.scores_pairs_on_device and not Backend("numpy", np, pairs_on_device=True).scores_pairs_on_device


def test_the_sorted_form_states_its_stable_sort(fake_gpu):
    """Rows of one key must stay in row order. The stand-in's ``argsort`` breaks ties backwards
    unless ``kind="stable"`` is stated, so a kernel that leaves it to the default fails here."""
    import fake_cupy

    ties = np.array([3, 1, 3, 3, 1, 2, 3], np.int64)
    assert fake_cupy.argsort(ties).tolist() != np.argsort(ties, kind="stable").tolist()
    assert fake_cupy.argsort(ties, kind="stable").tolist() == np.argsort(ties, kind="stable").tolist()
    xp = select_backend("cupy").xp
    rng = np.random.default_rng(3)
    keys, amounts = rng.integers(-1, 3, 400), rng.integers(1, 10**6, 400)
    cum, totals = running_totals(xp.asarray(keys), xp.asarray(amounts), 3, xp=xp, method="sorted")
    expected = running_totals(keys, amounts, 3)
    assert np.array_equal(cum, expected[0]) and np.array_equal(totals, expected[1])


FUSING_CALLS = {"ElementwiseKernel", "ReductionKernel", "RawKernel", "RawModule"}
NEVER_FOR_FLOATS = {"fuse", "jit"}


def kernels_compiled_with_fma(source: str) -> list[str]:
    """Calls in ``source`` that build a device kernel able to contract a multiply-add: a CuPy
    kernel from source without ``options=NO_FMA_OPTIONS``, or ``cupy.fuse`` / a Numba CUDA ``jit``."""
    import ast

    found = []
    for node in ast.walk(ast.parse(source)):
        target = node.func if isinstance(node, ast.Call) else node if isinstance(node, ast.Attribute) else None
        name = getattr(target, "attr", getattr(target, "id", None))
        if isinstance(node, ast.Call) and name in FUSING_CALLS:
            options = [k for k in node.keywords if k.arg == "options"]
            if not options or "NO_FMA_OPTIONS" not in ast.unparse(options[0].value):
                found.append(f"line {node.lineno}: {name} without options=NO_FMA_OPTIONS")
        elif isinstance(node, ast.Attribute) and name in NEVER_FOR_FLOATS and ast.unparse(node.value) in (
                "cupy", "xp", "cuda", "numba.cuda"):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_no_kernel_can_contract_a_multiply_add():
    """Scores are promised bit for bit on the GPU: every fused kernel compiles with ``--fmad=false``."""
    from kernels import NO_FMA_OPTIONS

    assert NO_FMA_OPTIONS == ("--fmad=false",)
    assert kernels_compiled_with_fma("k = cupy.ElementwiseKernel('float64 a', 'float64 b', 'b = a * a + a', 'k')")
    assert kernels_compiled_with_fma("f = cupy.fuse(lambda a: a * a + a)")
    assert kernels_compiled_with_fma("@cuda.jit\ndef k(a):\n    pass")
    assert not kernels_compiled_with_fma("k = cupy.RawKernel(code, 'k', options=NO_FMA_OPTIONS)")
    for path in sorted((ROOT / "kernels").glob("*.py")):
        assert kernels_compiled_with_fma(path.read_text()) == [], path.name


def test_gpu_test_files_collect_without_duckdb():
    """The GPU image has no duckdb: the GPU suites still collect, and the oracle's tests skip."""
    code = ("import sys; sys.modules['duckdb'] = None; import pytest; "
            "sys.exit(pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', 'tests/test_backends.py', "
            "'tests/test_differential.py', 'tests/test_oracle_sql.py', 'tests/test_similarity.py']))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "test_backends.py::test_screening_gives_the_same_decisions_on_every_backend[numpy-" in done.stdout
    assert "test_differential.py::test_output_does_not_depend_on_input_order" in done.stdout
    assert "test_engine_equals_sql_oracle" in done.stdout  # collected, skipped when run


def test_importing_the_package_creates_no_cuda_context():
    code = ("import sys, kernels, kernels.backend, kernels.running_totals, kernels.segmented, kernels.amounts, "
            "pipeline, pipeline.decide, pipeline.screen, pipeline.scale, flows.cli; "
            "kernels.backend.select_backend('numpy'); "
            "print('cupy' in sys.modules, any(m.startswith(('cupy', 'cupyx')) for m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


# ------------------------------------------------------------------------------ pipeline
POLICIES = {"ai-diffusion-2025": ["lpp.limit_tpp=7916000", "allocation.default_cap_tpp=60000000",
                                  "allocation.caps.SG=30000000"],
            "post-rescission-2025": ["agreements.0.cap_tpp=1500000", "agreements.1.cap_tpp=1000000"],
            "in-force": ["agreements.0.cap_tpp=1500000", "agreements.1.cap_tpp=1000000"]}
COMPARED = ["shipment_id", "decision", "authorization", "reasons", "tier", "tpp", "lpp_cum_tpp", "country_cum_tpp",
            "cn_volume_cum", "us_volume_cum"]


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    from pipeline.ingest import read_ledgers
    from test_differential import random_rows

    rng = random.Random(11)
    rows = random_rows(rng, 300) + [  # licensed lines under the agreements, so their caps are crossed too
        shipment(f"AG{i:03d}", f"2026-0{rng.randrange(1, 10)}-1{rng.randrange(10)}",
                 destination_country=rng.choice(["AE", "SA"]), license_id=f"L-{i}", consignee_id=f"G-{i % 3}",
                 quantity=rng.choice([1, 8, 16])) for i in range(40)] + [  # the China volume condition, crossed
        shipment(f"CV{i:03d}", f"2026-0{rng.randrange(2, 10)}-1{rng.randrange(10)}", sku="NVIDIA-H200",
                 destination_country=rng.choice(["CN", "US", "US"]), license_id=rng.choice([None, "L-CN"]),
                 exporter=rng.choice(["A", "B"]), quantity=rng.choice([1, 4, 8])) for i in range(60)]
    path = write_ledger(rows, tmp_path_factory.mktemp("backends") / "l.parquet")
    return read_ledgers([path])


def decisions(run):
    return {c: run.decisions.column(c).cast("string").to_pylist() for c in COMPARED}


def assert_same_table(got, expected):
    """Every column equal, value for value (floats bit for bit), naming the first column that is not."""
    assert got.column_names == expected.column_names
    for name in expected.column_names:
        a, b = got.column(name).combine_chunks(), expected.column(name).combine_chunks()
        if not a.equals(b):
            same = [x == y for x, y in zip(a.to_pylist(), b.to_pylist())]
            first = same.index(False) if False in same else None
            raise AssertionError(f"column {name!r} differs ({same.count(False)} rows; first at row {first}: "
                                 f"{a[first] if first is not None else ''} != {b[first] if first is not None else ''})")


@pytest.mark.parametrize("policy_id", sorted(POLICIES))
def test_screening_gives_the_same_decisions_on_every_backend(device, ledger, policy_id):
    from pipeline.policy import load_policy
    from pipeline.screen import screen_ledger

    policy = load_policy(policy_id, POLICIES[policy_id])
    expected = screen_ledger(ledger, policy)
    assert expected.summary["backend"] == "numpy"
    assert any(h["exceeded_rows"] for h in expected.summary["allocation_headroom"]), "caps must be crossed"
    if policy_id == "in-force":
        assert any(k["rows_over"] for k in expected.summary["china_volume"]["keys"]), "the share must be crossed"
    for chosen in (device, Backend(device.name, device.xp, device.device, chunk_rows=7, method=device.method),
                   Backend("numpy", np, chunk_rows=5)):
        run = screen_ledger(ledger, policy, backend=chosen)
        assert_same_table(run.decisions, expected.decisions)
        assert decisions(run) == decisions(expected)
        assert run.outcome.carry.equals(expected.outcome.carry)
        assert run.summary["allocation_headroom"] == expected.summary["allocation_headroom"]
        assert run.summary["lpp"] == expected.summary["lpp"]
        assert run.summary["china_volume"] == expected.summary["china_volume"]
        assert run.summary["backend"] == chosen.name


def test_scan_passes_the_backend_to_each_piece(ledger):
    from pipeline.policy import load_policy
    from pipeline.scale import scan, split_rows

    policy = load_policy("ai-diffusion-2025", POLICIES["ai-diffusion-2025"])
    plain = scan(split_rows(ledger.rows, 64), policy)
    other = scan(split_rows(ledger.rows, 64), policy, backend=Backend("numpy", np, chunk_rows=9, method="sorted"))
    assert other.carry.equals(plain.carry) and other.tally.decision_counts() == plain.tally.decision_counts()


def test_the_fake_device_runs_the_whole_pipeline(fake_gpu, ledger, tmp_path):
    from pipeline.policy import load_policy
    from pipeline.screen import screen_ledger

    policy = load_policy("ai-diffusion-2025", POLICIES["ai-diffusion-2025"])
    run = screen_ledger(ledger, policy, backend="auto")
    assert run.summary["backend"] == "cupy"
    assert_same_table(run.decisions, screen_ledger(ledger, policy).decisions)


def test_cli_backend_option(tmp_path, monkeypatch):
    from flows.cli import app

    runner = CliRunner()
    path = write_ledger(__import__("test_differential").random_rows(random.Random(3), 20), tmp_path / "l.parquet")
    base = ["screen", str(path), "--policy", "ai-diffusion-2025", "--quiet", "--out"]
    done = runner.invoke(app, base + [str(tmp_path / "a"), "--backend", "numpy"])
    assert done.exit_code == 0, done.output
    assert '"backend": "numpy"' in (tmp_path / "a" / "summary.json").read_text()
    done = runner.invoke(app, base + [str(tmp_path / "b"), "--backend", "gpu"])
    assert done.exit_code == 1 and "--backend must be one of" in done.output
    monkeypatch.setitem(sys.modules, "cupy", None)  # no CuPy: auto runs on numpy, cupy is a clear error
    reset_probe()
    try:
        done = runner.invoke(app, base + [str(tmp_path / "c")])
        assert done.exit_code == 0, done.output
        assert '"backend": "numpy"' in (tmp_path / "c" / "summary.json").read_text()
        done = runner.invoke(app, base + [str(tmp_path / "d"), "--backend", "cupy"])
        assert done.exit_code == 1 and "error" in done.output and "cannot run here" in done.output
        assert "Traceback" not in done.output and not (tmp_path / "d").exists()
    finally:
        reset_probe()


def test_the_fake_device_screens_a_lake_incrementally(fake_gpu, tmp_path):
    """The lake path on the GPU backend (here the stand-in): the same decisions and checkpoint as NumPy."""
    import pyarrow.parquet as pq

    from pipeline.lake import ingest
    from pipeline.lake_screen import screen_lake
    from pipeline.policy import load_policy

    policy = load_policy("ai-diffusion-2025", POLICIES["ai-diffusion-2025"])
    rows = sorted(__import__("test_differential").random_rows(random.Random(5), 200),
                  key=lambda r: (r["ship_date"], r["shipment_id"]))
    for name, backend in (("gpu", "cupy"), ("cpu", "numpy")):
        ingest([write_ledger(rows[:150], tmp_path / f"{name}-a.parquet")], tmp_path / name)
        screen_lake(tmp_path / name, policy, tmp_path / f"{name}-out", scheduler="none", backend=backend)
        ingest([write_ledger(rows[150:], tmp_path / f"{name}-b.parquet")], tmp_path / name)
        run = screen_lake(tmp_path / name, policy, tmp_path / f"{name}-out", scheduler="none", backend=backend)
        assert run.plan.mode == "incremental" and run.summary["backend"] == backend
    gpu, cpu = (pq.read_table(tmp_path / f"{n}-out" / "decisions.parquet") for n in ("gpu", "cpu"))
    assert_same_table(gpu, cpu)


# ------------------------------------------------------------------------------ decide in chunks
DECISION_ARRAYS = ("decision", "authorization", "reasons", "tier", "lpp_cum_tpp", "country_cum_tpp", "lpp_keys",
                   "allocation_keys", "lpp_totals", "allocation_totals", "allocation_over")


def features_of(ledger, policy):
    """Features of the ledger with the party results of the real list."""
    from pipeline.enrich import build_features
    from pipeline.parties import PartyScreen
    from pipeline.screen import CSL_PATH, consignees

    name_codes, names, countries = consignees(ledger.rows, policy)
    parties = PartyScreen.from_path(CSL_PATH).screen_policy(names, policy, countries=countries)
    return build_features(ledger.rows, policy, parties, name_codes)


@pytest.mark.parametrize("policy_id", sorted(POLICIES))
def test_decide_in_chunks_gives_the_same_arrays_and_labels(fake_gpu, ledger, policy_id):
    """Every chunk size, algorithm and namespace (the stand-in numbers profiles by sorting, NumPy by
    first appearance) gives the same arrays, reason codes included: the labels are canonical."""
    from pipeline.decide import decide
    from pipeline.policy import load_policy

    policy = load_policy(policy_id, POLICIES[policy_id])
    features = features_of(ledger, policy)
    expected = decide(features, policy)
    assert expected.reason_labels == sorted(expected.reason_labels) and len(expected.reason_labels) > 3
    assert expected.allocation_over.any(), "caps must be crossed in some chunk"
    fake = select_backend("cupy")
    for backend in (Backend("numpy", np, chunk_rows=1), Backend("numpy", np, chunk_rows=13, method="sorted"),
                    Backend("cupy", fake.xp, "Fake GPU", chunk_rows=29), fake):
        got = decide(features, policy, backend=backend)
        for name in DECISION_ARRAYS:
            a, b = getattr(got, name), getattr(expected, name)
            assert (a is None and b is None) or np.array_equal(a, b), (backend, name)
        assert got.reason_labels == expected.reason_labels
        assert got.carry.equals(expected.carry)
        assert [a.label for a in got.allocations] == [a.label for a in expected.allocations]


def test_decide_in_chunks_names_the_overflow_row_of_the_whole_input(ledger):
    from pipeline.decide import decide
    from pipeline.policy import load_policy

    policy = load_policy("ai-diffusion-2025")
    features = features_of(ledger, policy)
    whole = decide(features, policy)
    keys = whole.allocation_keys
    first, second = np.flatnonzero(keys == keys[keys >= 0][0])[:2]  # two rows of one allocation key
    features.tpp = features.tpp.copy()
    features.tpp[[first, second]] = INT64_MAX // 2 + 1
    rows = set()
    for backend in (NUMPY, Backend("numpy", np, chunk_rows=7), Backend("numpy", np, chunk_rows=3, method="sorted")):
        with pytest.raises(TotalsOverflowError) as error:
            decide(features, policy, backend=backend)
        rows.add(error.value.row)
    assert rows == {second}


def test_decide_chunks_from_the_device_memory(fake_gpu):
    """Free device memory sets decide's chunk: a small device gets more, smaller chunks."""
    from pipeline.decide import DECIDE_BYTES_PER_ROW

    fake_gpu(free=DECIDE_BYTES_PER_ROW * 100_000)
    backend = select_backend("cupy")
    assert backend.rows_per_chunk(DECIDE_BYTES_PER_ROW) == rows_per_chunk(DECIDE_BYTES_PER_ROW * 100_000,
                                                                          DECIDE_BYTES_PER_ROW)
    assert backend.rows_per_chunk(DECIDE_BYTES_PER_ROW) < backend.rows_per_chunk()
