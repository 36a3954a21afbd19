"""TrackerConfig: rts50 defaults, YAML round trip, field-naming errors."""
import math

import pytest

from rts_ros.errors import ConfigError
from rts_ros.tracker.config import TrackerConfig


def test_rts50_defaults_of_spec_section_4():
    c = TrackerConfig().validate()
    assert c.image_sample_size == (480, 832) and c.feature_size == (30, 52) and c.clf_feature_size() == (15, 26)
    assert (c.search_area_scale, c.border_mode, c.max_scale_change) == (6.0, "inside_major", (0.8, 1.2))
    assert (c.sample_memory_size, c.learning_rate, c.init_samples_minimum_weight) == (32, 0.1, 0.25)
    assert (c.net_opt_iter, c.net_opt_update_iter, c.train_skipping) == (20, 3, 20)
    assert (c.clf_sample_memory_size, c.clf_learning_rate, c.clf_init_samples_minimum_weight) == (50, 0.01, None)
    assert (c.clf_net_opt_iter, c.clf_net_opt_update_iter, c.clf_target_not_found_threshold) == (10, 2, 0.3)
    assert c.clf_augmentation_blur == ((3, 1), (1, 3), (2, 2)) and c.min_mask_area == 100
    assert (c.sta_search_area_scale, c.sta_border_mode, c.clf_uncertain_threshold) == (4.0, "replicate", -math.inf)


def test_yaml_round_trip(tmp_path):
    import yaml

    c = TrackerConfig.from_dict({"image_sample_size": [256, 448], "max_scale_change": None, "box_init": "grabcut"})
    assert c.feature_size == (16, 28) and c.clf_feature_size() == (8, 14) and c.clf_feature_size(16) == (16, 28)
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump({"tracker": c.to_dict()}))
    assert TrackerConfig.from_yaml(p) == c


@pytest.mark.parametrize("data,field", [
    ({"no_such_field": 1}, "no_such_field"),
    ({"search_area_scale": 0}, "search_area_scale"),
    ({"image_sample_size": [480, 830]}, "image_sample_size"),
    ({"border_mode": "zeros"}, "border_mode"),
    ({"box_init": "magic"}, "box_init"),
    ({"net_opt_iter": "many"}, "net_opt_iter"),
    ({"learning_rate": 1.5}, "learning_rate"),
    ({"update_classifier": 1}, "update_classifier"),
    ({"trust_clf_always": True}, "trust_clf_always"),
    ({"max_scale_change": [1.2, 0.8]}, "max_scale_change"),
    # lengths are checked before any field is unpacked (a ValueError there once ended the ROS node)
    ({"max_scale_change": [0.9]}, "max_scale_change.*needs 2 numbers"),
    ({"scale_history": [1, 2]}, "scale_history.*needs 3 numbers"),
    # NaN passes every comparison, so each number field refuses it explicitly
    ({"min_mask_area": float("nan")}, "min_mask_area.*NaN"),
    ({"crop_fill_value": float("nan")}, "crop_fill_value.*NaN"),
    ({"clf_target_not_found_threshold": float("nan")}, "clf_target_not_found_threshold.*NaN"),
    ({"clf_augmentation_blur": [[1.0, float("nan")]]}, "clf_augmentation_blur.*NaN"),
    ({"clf_regularization": float("inf")}, "clf_regularization"),
    ({"min_mask_area": float("inf")}, "min_mask_area"),
    ({"clf_displacement_scale": -1.0}, "clf_displacement_scale"),
    # counts that would be allocated or iterated
    ({"sample_memory_size": 2 ** 62}, "sample_memory_size.*out of range"),
    ({"clf_sample_memory_size": 5000}, "clf_sample_memory_size.*at most 1000"),
    ({"net_opt_iter": 10 ** 5}, "net_opt_iter.*at most 1000"),
    ({"net_opt_iter": "b"}, "net_opt_iter.*expected an integer"),
])
def test_bad_values_name_the_field(data, field):
    with pytest.raises(ConfigError, match=field):
        TrackerConfig.from_dict(data)


def test_bad_yaml_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        TrackerConfig.from_yaml(p)
    p.write_text("search_area_scale: 4.0\nlearning_rate: [0.1\n")
    with pytest.raises(ConfigError, match=r"tracker config .*bad.yaml is not valid YAML: .* at line 3, column 1") as e:
        TrackerConfig.from_yaml(p)
    assert "\n" not in str(e.value)


def test_the_documented_infinite_thresholds_stay_valid():
    """-inf is the rts50 value of two thresholds (never uncertain / never hard): only NaN is refused there."""
    c = TrackerConfig.from_dict({"clf_uncertain_threshold": "-inf", "clf_hard_negative_threshold": "inf"})
    assert c.clf_uncertain_threshold == float("-inf") and c.clf_hard_negative_threshold == float("inf")
