from __future__ import annotations

import pytest

from modeltap.errors import MissingExtraError
from modeltap.extras import require


def test_a_present_module_is_returned() -> None:
    assert require("json", feature="x", extra="y").dumps([]) == "[]"


def test_a_missing_module_gives_a_one_line_install_hint() -> None:
    with pytest.raises(MissingExtraError) as caught:
        require("modeltap_not_installed.sub", feature="HTML reports", extra="reports")
    message = str(caught.value)
    assert message == (
        "HTML reports needs the optional package 'modeltap_not_installed'; "
        "install it with: pip install 'modeltap[reports]'"
    )
    assert "\n" not in message
    assert caught.value.exit_code == 2
