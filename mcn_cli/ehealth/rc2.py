"""RC2 decryption (RFC 2268) with any effective key length, for legacy PKCS#12 keystores.

eHealth's older tools protect the certificates of a keystore with 40-bit RC2, which no modern
library offers; this reads them. It decrypts only: mcn never writes RC2.
"""

from __future__ import annotations

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
_SHIFTS = (1, 2, 3, 5)
_MASK = 0xFFFF


def expand_key(key: bytes, effective_bits: int) -> list[int]:
    length = len(key)
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


def _decrypt_block(k: list[int], block: bytes) -> bytes:
    r = [block[2 * i] | (block[2 * i + 1] << 8) for i in range(4)]
    j = 63

    def unmix() -> None:
        nonlocal j
        for i in (3, 2, 1, 0):
            s = _SHIFTS[i]
            r[i] = ((r[i] >> s) | (r[i] << (16 - s))) & _MASK
            r[i] = (r[i] - k[j] - (r[i - 1] & r[i - 2]) - ((~r[i - 1]) & r[i - 3])) & _MASK
            j -= 1

    def unmash() -> None:
        for i in (3, 2, 1, 0):
            r[i] = (r[i] - k[r[i - 1] & 63]) & _MASK

    for rounds in (5, None, 6, None, 5):
        if rounds is None:
            unmash()
        else:
            for _ in range(rounds):
                unmix()
    return b"".join(word.to_bytes(2, "little") for word in r)


def decrypt_cbc(key: bytes, effective_bits: int, iv: bytes, data: bytes) -> bytes:
    """Decrypt RC2-CBC; the padding is left for the caller to remove."""
    k = expand_key(key, effective_bits)
    out = bytearray()
    previous = iv
    for start in range(0, len(data), 8):
        block = data[start : start + 8]
        plain = _decrypt_block(k, block)
        out += bytes(a ^ b for a, b in zip(plain, previous, strict=True))
        previous = block
    return bytes(out)
