"""The peer-message cipher: sealed messages open only with the same secret, unaltered."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag

from raftq.raft.wire import WireCipher


def test_a_sealed_message_opens_with_the_same_secret_and_keeps_its_timestamp() -> None:
    sender, receiver = WireCipher("s3cret"), WireCipher("s3cret")
    token = sender.encrypt_at_time(b"append_entries", 1234)
    assert receiver.extract_timestamp(token) == 1234
    assert receiver.decrypt(token) == b"append_entries"
    assert b"append_entries" not in token


def test_another_secret_cannot_open_it() -> None:
    token = WireCipher("s3cret").encrypt_at_time(b"x" * 100, 1)
    with pytest.raises(InvalidTag):
        WireCipher("other").decrypt(token)


@pytest.mark.parametrize("position", [0, 7, 8, 19, 20, -1])
def test_any_altered_byte_is_refused(position: int) -> None:
    cipher = WireCipher("s3cret")
    token = bytearray(cipher.encrypt_at_time(b"payload", 99))
    token[position] ^= 0x01  # the timestamp (0-7), the nonce (8-19), the body, the tag
    with pytest.raises(InvalidTag):
        cipher.decrypt(bytes(token))


def test_nonces_never_repeat() -> None:
    cipher = WireCipher("s3cret")
    nonces = {cipher.encrypt_at_time(b"", 0)[8:20] for _ in range(10_000)}
    assert len(nonces) == 10_000
