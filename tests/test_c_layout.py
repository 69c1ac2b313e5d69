"""bcexport.c.layout: the 1-bit weight layout of the generated C code, against hand-computed bytes."""
import numpy as np
import pytest

from bcexport.c.layout import block_matrix, pack_matrix, packed_bytes, unpack_matrix


def test_hand_computed_bytes():
    # K = 5 (groups {0..3}, {4}), N = 18 (outputs 0..15 low nibbles, 16..17 high nibbles of block 0)
    wb = -np.ones((5, 18), np.int8)
    wb[0, 0] = wb[2, 0] = 1        # output 0, group 0: bits 0 and 2 -> low nibble 0b0101
    wb[3, 17] = 1                  # output 17 = 16 + 1, group 0: bit 3 -> high nibble of byte 1
    wb[4, 16] = 1                  # output 16, group 1: bit 0 -> high nibble of byte 0 of group 1
    packed = pack_matrix(wb)
    assert packed.shape == (packed_bytes(5, 18),) == (32,)
    expected = np.zeros(32, np.uint8)
    expected[0] = 0b0101
    expected[1] = 0b1000 << 4
    expected[16 + 0] = 0b0001 << 4
    np.testing.assert_array_equal(packed, expected)


@pytest.mark.parametrize("k, n", [(1, 1), (4, 32), (5, 33), (27, 10), (784, 70)])
def test_round_trip(k, n):
    wb = np.where(np.random.default_rng(k * n).random((k, n)) < 0.5, -1, 1)
    packed = pack_matrix(wb)
    assert packed.size == packed_bytes(k, n) == -(-n // 32) * -(-k // 4) * 16
    np.testing.assert_array_equal(unpack_matrix(packed, k, n), wb)


def test_conv_kernel_is_patch_major():
    wb = np.where(np.random.default_rng(0).random((3, 3, 2, 5)) < 0.5, -1, 1)
    m = block_matrix("conv", wb)
    assert m.shape == (18, 5)
    assert m[(1 * 3 + 2) * 2 + 1, 4] == wb[1, 2, 1, 4]  # row (dy, dx, c)


def test_rejects_non_pm1():
    with pytest.raises(ValueError):
        pack_matrix(np.zeros((2, 2)))
