"""Retention policies in the config: defaults, per-tenant overrides and presets."""

from __future__ import annotations

import pytest

from receiver.config import ConfigError, load_config


def test_presets_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "retention:\n"
        "  default: soc2\n"
        "  tenants:\n"
        "    clinic: hipaa\n"
        "    shop: {preset: pci, hot_days: 30}\n"
        "    lab: {retain_days: 100}\n"
    )
    r = load_config(path).retention
    assert (r.default.hot_days, r.default.retain_days) == (365, 365)
    assert (r.policy_for("clinic").hot_days, r.policy_for("clinic").retain_days) == (365, 2190)
    assert (r.policy_for("shop").preset, r.policy_for("shop").hot_days, r.policy_for("shop").retain_days) == (
        "pci",
        30,
        365,
    )
    # an override of retain_days alone keeps the default hot_days, capped by retain_days
    assert (r.policy_for("lab").hot_days, r.policy_for("lab").retain_days) == (100, 100)
    assert r.policy_for("anyone-else") == r.default and r.interval_seconds == 3600


def test_bad_policies_are_refused():
    with pytest.raises(ConfigError, match="unknown retention preset 'gdpr'"):
        load_config(None, retention={"default": "gdpr"})
    with pytest.raises(ConfigError, match="hot_days cannot exceed retain_days"):
        load_config(None, retention={"default": {"hot_days": 400, "retain_days": 365}})
