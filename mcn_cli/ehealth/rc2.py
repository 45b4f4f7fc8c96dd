"""RC2 decryption (RFC 2268) with any effective key length, for legacy PKCS#12 keystores.

eHealth's older tools protect the certificates of a keystore with 40-bit RC2, which no modern
library offers; this reads them. It decrypts only: mcn never writes RC2.

Every size is checked before any work (a key of 1 to 128 bytes, an effective length of 1 to
1024 bits, an 8-byte IV, whole 8-byte blocks): anything else is a ``ValueError``, never an
``IndexError`` from a short block.
"""

from __future__ import annotations

import struct

_PITABLE = bytes.fromhex(
    "d978f9c419ddb5ed28e9fd794aa0d89dc67e37832b76538e624c6488448bfba2"
    "179a59f587b34f1361456d8d09817d32bd8f40eb86b77b0bf09521225c6b4e82"
    "54d66593ce60b21c7356c014a78cf1dc1275ca1f3bbee4d1423dd430a33cb626"
    "6fbf0eda4669075727f21d9bbc944303f811c7f690ef3ee706c3d52fc8661ed7"
    "08e8eade8052eef784aa72ac354d6a2a961ad2715a1549744b9fd05e0418a4ec"
    "c2e0416e0f51cbcc2491af50a1f47039997c3a8523b8b47afc02365b25559731"
    "2d5dfa98e38a92ae05df2910676cbac9d300e6cfe19ea82c6316013f58e289a9"
    "0d38341bab33ffb0bb480c5fb9b1cd2ec5f3db47e5a59c770aa62068fe7fc1ad"
)
_MASK = 0xFFFF
_BLOCK = 8
# Decryption runs the 16 mixing rounds backwards with the two mashing rounds between them:
# 5 rounds, a mash, 6 rounds, a mash, 5 rounds (RFC 2268, section 4). True is a mixing round.
_SCHEDULE = (True,) * 5 + (False,) + (True,) * 6 + (False,) + (True,) * 5
_WORDS = struct.Struct("<4H")


def expand_key(key: bytes, effective_bits: int) -> list[int]:
    length = len(key)
    if not 1 <= length <= 128:
        raise ValueError(f"an RC2 key has 1 to 128 bytes, not {length}")
    if not 1 <= effective_bits <= 1024:
        raise ValueError(f"an RC2 effective key length is 1 to 1024 bits, not {effective_bits}")
    l_ = bytearray(128)
    l_[:length] = key
    for i in range(length, 128):
        l_[i] = _PITABLE[(l_[i - 1] + l_[i - length]) % 256]
    t8 = (effective_bits + 7) // 8
    tm = 0xFF >> (8 * t8 - effective_bits)
    l_[128 - t8] = _PITABLE[l_[128 - t8] & tm]
    for i in range(127 - t8, -1, -1):
        l_[i] = _PITABLE[l_[i + 1] ^ l_[i + t8]]
    return [l_[2 * i] | (l_[2 * i + 1] << 8) for i in range(64)]


def _decrypt_words(k: list[int], r0: int, r1: int, r2: int, r3: int) -> tuple[int, int, int, int]:
    """One block, as its four little-endian 16-bit words (r-mix and r-mash of RFC 2268)."""
    m = _MASK
    j = 63
    for mixing in _SCHEDULE:
        if mixing:
            r3 = ((r3 >> 5) | (r3 << 11)) & m
            r3 = (r3 - k[j] - (r2 & r1) - (~r2 & r0)) & m
            r2 = ((r2 >> 3) | (r2 << 13)) & m
            r2 = (r2 - k[j - 1] - (r1 & r0) - (~r1 & r3)) & m
            r1 = ((r1 >> 2) | (r1 << 14)) & m
            r1 = (r1 - k[j - 2] - (r0 & r3) - (~r0 & r2)) & m
            r0 = ((r0 >> 1) | (r0 << 15)) & m
            r0 = (r0 - k[j - 3] - (r3 & r2) - (~r3 & r1)) & m
            j -= 4
        else:
            r3 = (r3 - k[r2 & 63]) & m
            r2 = (r2 - k[r1 & 63]) & m
            r1 = (r1 - k[r0 & 63]) & m
            r0 = (r0 - k[r3 & 63]) & m
    return r0, r1, r2, r3


def decrypt_cbc(key: bytes, effective_bits: int, iv: bytes, data: bytes) -> bytes:
    """Decrypt RC2-CBC; the padding is left for the caller to remove."""
    if len(iv) != _BLOCK:
        raise ValueError(f"an RC2-CBC IV has {_BLOCK} bytes, not {len(iv)}")
    if len(data) % _BLOCK:
        raise ValueError(f"RC2-CBC data is whole {_BLOCK}-byte blocks, not {len(data)} bytes")
    k = expand_key(key, effective_bits)
    out = bytearray(len(data))
    p0, p1, p2, p3 = _WORDS.unpack(iv)
    for start in range(0, len(data), _BLOCK):
        c0, c1, c2, c3 = _WORDS.unpack_from(data, start)
        r0, r1, r2, r3 = _decrypt_words(k, c0, c1, c2, c3)
        _WORDS.pack_into(out, start, r0 ^ p0, r1 ^ p1, r2 ^ p2, r3 ^ p3)
        p0, p1, p2, p3 = c0, c1, c2, c3
    return bytes(out)
