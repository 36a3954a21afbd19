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
])
def test_bad_values_name_the_field(data, field):
    with pytest.raises(ConfigError, match=field):
        TrackerConfig.from_dict(data)


def test_bad_yaml_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        TrackerConfig.from_yaml(p)
