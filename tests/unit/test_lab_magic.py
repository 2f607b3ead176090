"""Magic-packet parsing in the lab's power controller."""

import pytest
import wakeonlan

from hearth.lab import magic

MAC = "02:68:65:61:72:12"


def test_parses_what_the_wakeonlan_library_sends() -> None:
    assert magic.parse(wakeonlan.create_magic_packet(MAC)) == MAC


def test_build_matches_the_library_and_roundtrips() -> None:
    assert magic.build(MAC) == wakeonlan.create_magic_packet(MAC)
    assert magic.parse(magic.build("AA-BB-CC-DD-EE-FF")) == "aa:bb:cc:dd:ee:ff"


def test_accepts_a_prefix_and_a_secureon_password() -> None:
    assert magic.parse(b"junk" + magic.build(MAC) + b"\x01\x02\x03\x04\x05\x06") == MAC


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff" * 6,
        magic.build(MAC)[:-1],  # truncated
        b"\xff" * 6 + magic.mac_bytes(MAC) * 15 + magic.mac_bytes("02:00:00:00:00:01"),
        b"\xff" * 102,  # all-ones is the sync stream, not a machine
    ],
)
def test_rejects_non_magic_payloads(data: bytes) -> None:
    assert magic.parse(data) is None


def test_bad_mac_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="not a MAC"):
        magic.build("02:68:65")
