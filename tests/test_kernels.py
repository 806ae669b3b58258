"""Running totals: exact, per key, in row order, with carry-in; compared with a plain Python loop."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.identifiers import day_id_order, day_id_order_checked, hash_strings
from kernels.running_totals import TotalsOverflowError, key_totals, over_limit, running_totals


def python_running_totals(keys, amounts, n_keys, carry=None):
    totals = list(carry) if carry is not None else [0] * n_keys
    out = []
    for key, amount in zip(keys, amounts):
        if key < 0:
            out.append(-1)
            continue
        totals[key] += amount
        out.append(totals[key])
    return out, totals


rows = st.lists(st.tuples(st.integers(-1, 5), st.integers(0, 10**12)), max_size=200)


@settings(max_examples=200, deadline=None)
@given(rows)
def test_running_totals_match_a_python_loop(data):
    keys = np.array([k for k, _ in data], dtype=np.int64)
    amounts = np.array([a for _, a in data], dtype=np.int64)
    cum, totals = running_totals(keys, amounts, 6)
    expected_cum, expected_totals = python_running_totals(keys.tolist(), amounts.tolist(), 6)
    assert cum.tolist() == expected_cum
    assert totals.tolist() == expected_totals
    assert key_totals(keys, amounts, 6).tolist() == expected_totals


@settings(max_examples=100, deadline=None)
@given(rows, st.integers(0, 200))
def test_chunks_with_carry_equal_one_pass(data, split):
    """The same carry-in mechanism serves chunks, partitions and nightly increments."""
    keys = np.array([k for k, _ in data], dtype=np.int64)
    amounts = np.array([a for _, a in data], dtype=np.int64)
    whole, whole_totals = running_totals(keys, amounts, 6)
    split = min(split, len(keys))
    carry = key_totals(keys[:split], amounts[:split], 6)
    first, _ = running_totals(keys[:split], amounts[:split], 6)
    second, totals = running_totals(keys[split:], amounts[split:], 6, carry=carry)
    assert np.concatenate([first, second]).tolist() == whole.tolist()
    assert totals.tolist() == whole_totals.tolist()


def test_overflow_is_detected_not_wrapped():
    big = np.iinfo(np.int64).max // 2 + 1
    with pytest.raises(TotalsOverflowError, match="row 1"):
        running_totals(np.array([0, 0]), np.array([big, big]), 1)
    with pytest.raises(TotalsOverflowError):
        key_totals(np.array([0, 0]), np.array([big, big]), 1)
    # A carry close to the limit overflows on the first row.
    with pytest.raises(TotalsOverflowError, match="row 0"):
        running_totals(np.array([0]), np.array([2]), 1, carry=np.array([np.iinfo(np.int64).max - 1]))


def test_negative_amount_is_rejected():
    with pytest.raises(TotalsOverflowError):
        running_totals(np.array([0]), np.array([-5]), 1)


def test_carry_shape_is_checked():
    with pytest.raises(ValueError, match="shape"):
        running_totals(np.array([0]), np.array([1]), 2, carry=np.array([0]))


def test_over_limit_is_strictly_greater_and_ignores_non_candidates():
    cum = np.array([10, 11, -1, 5])
    keys = np.array([0, 0, -1, 1])
    assert over_limit(cum, keys, np.array([10, 4])).tolist() == [False, True, False, True]


def test_results_are_int64_and_exact_beyond_float_precision():
    amounts = np.array([2**53, 1, 1], dtype=np.int64)
    cum, _ = running_totals(np.array([0, 0, 0]), amounts, 1)
    assert cum.dtype == np.int64
    assert cum.tolist() == [2**53, 2**53 + 1, 2**53 + 2]


def test_hash_strings_equal_strings_equal_hashes():
    import pyarrow as pa

    ids = pa.array(["A1", "B22", "A1", "", "B22x"])
    offsets = np.frombuffer(ids.buffers()[1], dtype=np.int32)[: len(ids) + 1]
    data = np.frombuffer(ids.buffers()[2], dtype=np.uint8)
    h = hash_strings(offsets, data)
    assert h[0] == h[2]
    assert len({int(h[0]), int(h[1]), int(h[3]), int(h[4])}) == 4


def test_row_amounts_gather_multiply_and_refuse_overflow():
    from kernels.amounts import AmountOverflowError, row_amounts

    unit = np.array([15832, 40000])
    assert row_amounts(unit, np.array([1, 0]), np.array([3, 2])).tolist() == [120000, 31664]
    limit = np.iinfo(np.int64).max // 40000
    assert row_amounts(unit, np.array([1]), np.array([limit])).tolist() == [40000 * limit]
    with pytest.raises(AmountOverflowError, match="row 1"):
        row_amounts(unit, np.array([0, 1]), np.array([1, limit + 1]))
    with pytest.raises(AmountOverflowError):
        row_amounts(unit, np.array([0]), np.array([0]))


def _arrow_day_id_order(days, ids):
    import pyarrow as pa
    import pyarrow.compute as pc

    table = pa.table({"d": pa.array(days, pa.int32()), "i": pa.array(ids, pa.string())})
    return pc.sort_indices(table, [("d", "ascending"), ("i", "ascending")]).to_numpy()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(-3, 3), st.sampled_from(["", "SHP-", "SHP-0000000", "ORDER/2025/"]),
                          st.text(alphabet="09aZé\x00ß-", max_size=14)), max_size=80))
def test_day_id_order_is_a_stable_sort_by_day_then_id_bytes(rows):
    """The ordering kernel against Arrow's stable sort: shared prefixes longer than its 8-byte key,
    prefixes of each other, repeated ids, non-ASCII and NUL bytes, negative days."""
    days = np.array([d for d, _, _ in rows], np.int32)
    ids = [prefix + tail for _, prefix, tail in rows]
    encoded = [i.encode() for i in ids]
    offsets = np.cumsum([0] + [len(e) for e in encoded])
    data = np.frombuffer(b"".join(encoded), np.uint8)
    expected = _arrow_day_id_order(days, ids).tolist()
    assert day_id_order(days, offsets, data).tolist() == expected
    order, increasing = day_id_order_checked(days, offsets, data)
    assert order.tolist() == expected
    assert increasing == all(encoded[a] < encoded[b] for a, b in zip(expected, expected[1:]))
