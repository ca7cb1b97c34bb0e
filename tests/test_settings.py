"""Settings: the documented defaults, clear errors naming file and key path, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from signals.settings import ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]


def test_default_yaml_documents_exactly_the_defaults():
    assert load_settings(ROOT / "configs" / "default.yaml") == Settings()


@pytest.mark.parametrize("name", ["default.yaml", "demo.yaml", "cdnow.yaml"])
def test_shipped_configs_load(name):
    path = ROOT / "configs" / name
    if not path.exists():
        pytest.skip(f"{name} not written yet")
    load_settings(path)


def test_article_prior_points():
    catalog = Settings().catalog
    assert (catalog["seminar"].prior_points, catalog["doc_request"].prior_points,
            catalog["sales_visit"].prior_points, catalog["purchase"].prior_points) == (10, 5, 13, 20)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_unknown_key_names_the_file_and_key_path(tmp_path):
    path = write(tmp_path, "features:\n  windows_dayz: [7]\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(path) in str(err.value) and "features.windows_dayz" in str(err.value)
    assert "unknown key" in str(err.value)


def test_wrong_type_names_the_key_path(tmp_path):
    path = write(tmp_path, "model:\n  lightgbm:\n    num_leaves: many\n")
    with pytest.raises(ConfigError, match=r"model\.lightgbm\.num_leaves"):
        load_settings(path)


def test_bad_values_are_explained(tmp_path):
    with pytest.raises(ConfigError, match="must all be > 0"):
        load_settings(write(tmp_path, "features:\n  half_lives_days: [30, -1]\n"))
    with pytest.raises(ConfigError, match="unknown time zone"):
        load_settings(write(tmp_path, "timezone: Mars/Olympus\n"))
    with pytest.raises(ConfigError, match="lower_snake_case"):
        load_settings(write(tmp_path, "catalog:\n  Web Visit: {channel: web, initiated_by: customer, prior_points: 1}\n"))
    with pytest.raises(ConfigError, match="initiated_by"):
        load_settings(write(tmp_path, "catalog:\n  visit: {channel: web, initiated_by: robot, prior_points: 1}\n"))
    with pytest.raises(ConfigError, match="shift_date"):
        load_settings(write(tmp_path, "simulate:\n  shift_date: 2030-01-01\n"))


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(write(tmp_path, "features: [unclosed\n"))
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_settings(write(tmp_path, "- a\n- b\n"))


def test_partial_files_merge_with_defaults_and_overrides_apply_last(tmp_path):
    path = write(tmp_path, "simulate:\n  n_customers: 500\n")
    settings = load_settings(path, ["simulate.seed=3", "catalog.seminar.prior_points=12", "features.windows_days=[30, 7]"])
    assert settings.simulate.n_customers == 500 and settings.simulate.seed == 3
    assert settings.simulate.start == Settings().simulate.start
    assert settings.catalog["seminar"].prior_points == 12 and len(settings.catalog) == len(Settings().catalog)
    assert settings.features.windows_days == (7, 30)


def test_override_errors():
    with pytest.raises(ConfigError, match="key.path=value"):
        load_settings(overrides=["simulate.seed"])
    with pytest.raises(ConfigError, match=r"--set .*simulate\.sed"):
        load_settings(overrides=["simulate.sed=3"])
    with pytest.raises(ConfigError, match="not a section"):
        load_settings(overrides=["timezone.x=1"])


def test_settings_are_frozen():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Settings().timezone = "Asia/Tokyo"  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# mistakes that used to be silent or a traceback (issue 12: 8, 9; issue 15: 7)


def test_a_repeated_key_is_an_error_not_a_silently_dropped_section(tmp_path):
    path = write(tmp_path, "features:\n  windows_days: [7]\ncutoffs:\n  n_training: 6\nfeatures:\n  half_lives_days: [7]\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert str(path) in message and "line 5" in message and "'features' appears twice" in message
    assert "first on line 1" in message
    with pytest.raises(ConfigError, match="'a' appears twice"):
        load_settings(overrides=["features.windows_days={a: 1, a: 2}"])


def test_an_impossible_date_names_the_file_and_key(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, "cutoffs:\n  end: 2025-02-30\n"))
    message = str(err.value)
    assert "\n" not in message  # one problem, one line
    assert str(tmp_path / "config.yaml") in message and "cutoffs.end" in message and "2025-02-30" in message
    with pytest.raises(ConfigError, match=r"--set cutoffs.end=2025-02-30: cutoffs\.end"):
        load_settings(overrides=["cutoffs.end=2025-02-30"])


SOURCES = """ingest:
  sources:
    - {name: sfa, kind: csv, path: raw/sfa.csv, columns: {customer_id: a, ts: b, touchpoint: c}}
    - {name: support, kind: sql, url: "sqlite:///raw/support.db", query: "SELECT a, b, c FROM t",
       columns: {customer_id: a, ts: b, touchpoint: c}}
    - {name: web, kind: parquet, path: /abs/web.parquet, columns: {customer_id: a, ts: b, touchpoint: c}}
"""


def test_source_paths_in_a_config_file_are_relative_to_the_file(tmp_path, monkeypatch):
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "c.yaml").write_text(SOURCES, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    sfa, support, web = load_settings("configs/c.yaml").ingest.sources
    assert sfa.path == Path("configs/raw/sfa.csv")
    assert support.url == "sqlite:///configs/raw/support.db"
    assert web.path == Path("/abs/web.parquet")
    assert load_settings(folder / "c.yaml").ingest.sources[0].path == folder / "raw" / "sfa.csv"
    # --set paths are typed on the command line: they start at the working directory
    overridden = load_settings("configs/c.yaml", ["ingest.sources.sfa.path=here.csv"]).ingest.sources[0]
    assert overridden.path == Path("here.csv")


def test_set_reaches_list_items_by_index_or_name(tmp_path):
    path = write(tmp_path, SOURCES)
    by_index = load_settings(path, ["ingest.sources.0.timezone=Asia/Tokyo", "ingest.sources.-1.encoding=cp932"])
    assert by_index.ingest.sources[0].timezone == "Asia/Tokyo" and by_index.ingest.sources[2].encoding == "cp932"
    by_name = load_settings(path, ["ingest.sources.support.query=SELECT x FROM y",
                                   "ingest.sources.sfa.touchpoints.Visit=sales_visit"])
    assert by_name.ingest.sources[1].query == "SELECT x FROM y"
    assert by_name.ingest.sources[0].touchpoints == {"Visit": "sales_visit"}
    with pytest.raises(ConfigError, match=r"ingest\.sources has no item named 'crm' \(names: \['sfa', 'support', 'web'\]"):
        load_settings(path, ["ingest.sources.crm.path=x.csv"])
    with pytest.raises(ConfigError, match=r"ingest\.sources has 3 item\(s\), no index 7"):
        load_settings(path, ["ingest.sources.7.path=x.csv"])
    with pytest.raises(ConfigError, match=r"ingest\.sources\.1\.delimiter"):
        load_settings(path, ["ingest.sources.1.delimiter=;;"])
