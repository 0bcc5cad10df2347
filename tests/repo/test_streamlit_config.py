"""The dashboard's Streamlit configuration: it listens on loopback unless a deployment says otherwise."""

from __future__ import annotations

import tomllib

from conftest import ROOT


def test_the_dashboard_listens_on_loopback_by_default() -> None:
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
