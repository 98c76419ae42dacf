import pytest
import yaml

from common import config
from common.config import FreeDict
from common.errors import ConfigError

DEFAULTS = config.with_run_defaults({
    "TRAIN": {"LR": 0.0002, "BATCH_SIZE": 64, "FLAG": True, "BETAS": [0.5, 0.999],
              "NAME": "x"},
    "DATA": {"KIND": "layered_scenes", "OPTIONS": FreeDict()},
    "ANY": None,
})


def write(tmp_path, text, name="exp.yml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_file_and_overrides_merge_over_defaults(tmp_path):
    path = write(tmp_path, "TRAIN:\n  LR: 1\n  BETAS: [0, 0.9]\nRUN:\n  SEED: 3\n")
    cfg = config.load(path, DEFAULTS, ["TRAIN.BATCH_SIZE=8", "TRAIN.FLAG=false",
                                       "TRAIN.NAME=hello world", "ANY=[1, 2]"])
    assert cfg.TRAIN.LR == 1.0 and isinstance(cfg.TRAIN.LR, float)  # int accepted for float
    assert cfg.TRAIN.BETAS == [0.0, 0.9]
    assert cfg.TRAIN.BATCH_SIZE == 8 and cfg.TRAIN.FLAG is False
    assert cfg.TRAIN.NAME == "hello world" and cfg.ANY == [1, 2]
    assert cfg.RUN.SEED == 3 and cfg.RUN.PRECISION == "fp32"
    assert DEFAULTS["TRAIN"]["LR"] == 0.0002  # defaults untouched


def test_yaml11_exponent_string_is_read_as_float(tmp_path):
    cfg = config.load(write(tmp_path, "TRAIN:\n  LR: 2e-4\n"), DEFAULTS)
    assert cfg.TRAIN.LR == pytest.approx(2e-4)


def test_unknown_key_names_key_file_and_suggestion(tmp_path):
    path = write(tmp_path, "TRAIN:\n  BATCH_SIZ: 3\n")
    with pytest.raises(ConfigError) as err:
        config.load(path, DEFAULTS)
    msg = str(err.value)
    assert str(path) in msg and "TRAIN.BATCH_SIZ" in msg and "TRAIN.BATCH_SIZE" in msg
    assert err.value.key == "TRAIN.BATCH_SIZ"


@pytest.mark.parametrize("text, key", [("TRAIN:\n  BATCH_SIZE: 2.5\n", "TRAIN.BATCH_SIZE"),
                                       ("TRAIN:\n  FLAG: 1\n", "TRAIN.FLAG"),
                                       ("TRAIN:\n  LR: fast\n", "TRAIN.LR"),
                                       ("TRAIN:\n  BETAS: 0.5\n", "TRAIN.BETAS"),
                                       ("TRAIN: 3\n", "TRAIN"),
                                       ("RUN:\n  SEED: true\n", "RUN.SEED")])
def test_wrong_types_name_key_and_file(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        config.load(path, DEFAULTS)
    assert str(path) in str(err.value) and key in str(err.value)


def test_bad_choice_and_bad_override(tmp_path):
    with pytest.raises(ConfigError, match=r"command line: RUN.PRECISION is 'fp8'"):
        config.load(None, DEFAULTS, ["RUN.PRECISION=fp8"])
    with pytest.raises(ConfigError, match="KEY.SUB=VALUE"):
        config.load(None, DEFAULTS, ["TRAIN.LR"])
    with pytest.raises(ConfigError, match="command line: unknown key TRAIN.NOPE"):
        config.load(None, DEFAULTS, ["TRAIN.NOPE=1"])


def test_check_errors_name_where_the_key_was_set(tmp_path):
    def check(cfg):
        if cfg.TRAIN.BATCH_SIZE % 2:
            raise ConfigError("TRAIN.BATCH_SIZE must be even", "TRAIN.BATCH_SIZE")
    path = write(tmp_path, "TRAIN:\n  BATCH_SIZE: 3\n")
    with pytest.raises(ConfigError, match=rf"^{path}: TRAIN.BATCH_SIZE must be even"):
        config.load(path, DEFAULTS, check=check)
    with pytest.raises(ConfigError, match=r"^command line: TRAIN.BATCH_SIZE must be even"):
        config.load(path, DEFAULTS, ["TRAIN.BATCH_SIZE=5"], check=check)


def test_free_sections_accept_any_key(tmp_path):
    cfg = config.load(write(tmp_path, "DATA:\n  OPTIONS:\n    LENGTH: 5\n    X: [1]\n"), DEFAULTS)
    assert cfg.DATA.OPTIONS.LENGTH == 5 and cfg.DATA.OPTIONS.X == [1]


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        config.load(tmp_path / "missing.yml", DEFAULTS)
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load(write(tmp_path, "TRAIN: [1,\n"), DEFAULTS)
    with pytest.raises(ConfigError, match="mapping"):
        config.load(write(tmp_path, "- 1\n- 2\n"), DEFAULTS)


def test_dump_round_trips_and_differences(tmp_path):
    cfg = config.load(None, DEFAULTS, ["TRAIN.LR=0.5", "DATA.OPTIONS.SEED=4"])
    config.dump(cfg, tmp_path / "config.yml")
    again = config.load(tmp_path / "config.yml", DEFAULTS)
    assert config.to_plain(again) == config.to_plain(cfg)
    assert yaml.safe_load((tmp_path / "config.yml").read_text())["TRAIN"]["LR"] == 0.5
    changed = config.load(None, DEFAULTS, ["TRAIN.LR=0.25", "RUN.MAX_ITERS=9"])
    # MAX_ITERS steers the loop only, so it may change on resume; LR may not
    assert config.differences(cfg, changed) == [
        "DATA.OPTIONS.SEED: 4 -> '<absent>'", "TRAIN.LR: 0.5 -> 0.25"]


def test_a_cache_size_may_change_on_resume():
    """Caches change speed, never pixels: runs written before CACHE_MB existed resume."""
    old = {"DATA": {"KIND": "scenes", "OPTIONS": {"SIZE": 32}}, "DATASET": {"NAME": "birds"}}
    new = {"DATA": {"KIND": "scenes", "OPTIONS": {"SIZE": 32, "CACHE_MB": 256}},
           "DATASET": {"NAME": "birds", "CACHE_MB": 0}}
    assert config.differences(old, new) == []
    assert config.differences(old, {**new, "DATA": {"KIND": "scenes", "OPTIONS": {"SIZE": 64}}})


def test_options_follow_their_kind():
    defaults = config.with_run_defaults({"DATA": {"KIND": "a", "OPTIONS": FreeDict(
        {"LENGTH": 5}, follows="KIND")}})
    assert config.load(None, defaults, ["DATA.OPTIONS.X=1"]).DATA.OPTIONS == {"LENGTH": 5, "X": 1}
    assert config.load(None, defaults, ["DATA.KIND=b"]).DATA.OPTIONS == {}
    assert config.load(None, defaults, ["DATA.KIND=b", "DATA.OPTIONS.X=1"]).DATA.OPTIONS == {"X": 1}
    assert config.load(None, defaults, ["DATA.KIND=a"]).DATA.OPTIONS == {"LENGTH": 5}
