import json
from pathlib import Path

import pytest
import yaml

from autothink_lite.config import RecipeError, load_recipe, recipe_from_dict

RECIPES = sorted((Path(__file__).parents[1] / "recipes").glob("*.yaml"))


def _write(tmp_path, data) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def _minimal(**extra):
    return {"name": "t", "stages": {1: {"gamma": 0.5}, 2: None, 3: {"length_alpha": 0.05}}, **extra}


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_shipped_recipe_loads_and_has_all_three_stages(path):
    recipe = load_recipe(path)
    assert sorted(recipe.stages) == [1, 2, 3]
    assert recipe.stages[1].shaping.balances and not recipe.stages[2].shaping.balances
    assert recipe.stages[3].shaping.shapes_length


def test_stage_overrides_apply_on_top_of_the_shared_grpo_settings(tmp_path):
    recipe = load_recipe(_write(tmp_path, _minimal(grpo={"max_steps": 7, "learning_rate": 1e-5},
                                                   stages={1: {"grpo": {"max_steps": 3}}, 2: {}})))
    assert recipe.stage_grpo(1).max_steps == 3 and recipe.stage_grpo(2).max_steps == 7
    assert recipe.stage_grpo(1).learning_rate == 1e-5


def test_unknown_key_names_the_field_and_the_allowed_keys(tmp_path):
    with pytest.raises(RecipeError, match=r"unknown key grpo\.learnig_rate: allowed keys here are .*learning_rate"):
        load_recipe(_write(tmp_path, _minimal(grpo={"learnig_rate": 1e-5})))


def test_unknown_key_inside_a_stage_override_is_caught(tmp_path):
    with pytest.raises(RecipeError, match=r"stages\.1\.grpo\.max_step"):
        load_recipe(_write(tmp_path, _minimal(stages={1: {"grpo": {"max_step": 3}}})))


def test_grpo_takes_any_trl_grpoconfig_field_by_its_trl_name_and_trl_gets_it(tmp_path):
    from autothink_lite.trainer import grpo_args

    recipe = load_recipe(_write(tmp_path, _minimal(
        grpo={"beta": 0.04, "per_device_train_batch_size": 4, "optim": "adamw_torch", "weight_decay": "1e-2"},
        stages={1: {"grpo": {"weight_decay": 0.1}}, 2: {}})))
    assert recipe.stage_grpo(1).trl_options == {"optim": "adamw_torch", "weight_decay": 0.1}
    assert recipe.stage_grpo(2).trl_options == {"optim": "adamw_torch", "weight_decay": 0.01}
    args = grpo_args(recipe.stage_grpo(1), tmp_path / "out", "float32", world_size=1)
    assert (args.beta, args.per_device_train_batch_size, args.weight_decay, args.optim) == (0.04, 4, 0.1, "adamw_torch")
    assert args.gradient_accumulation_steps == 16 * 8 // 4, "prompts_per_step stays AutoThink's own"


def test_an_unknown_grpo_key_names_the_closest_grpoconfig_field(tmp_path):
    with pytest.raises(RecipeError, match=r"unknown key stages\.2\.grpo\.weight_decy: .*the closest is weight_decay"):
        load_recipe(_write(tmp_path, _minimal(stages={1: {}, 2: {"grpo": {"weight_decy": 0.1}}})))


@pytest.mark.parametrize("old, new", [("kl_beta", "beta"), ("micro_batch_size", "per_device_train_batch_size")])
def test_the_grpo_keys_of_older_recipes_name_trls_key_instead(tmp_path, old, new):
    with pytest.raises(RecipeError, match=rf"grpo\.{old}: .*write {new}"):
        load_recipe(_write(tmp_path, _minimal(grpo={old: 1})))


def test_grpoconfig_fields_that_autothink_sets_itself_are_refused_with_where_the_value_comes_from(tmp_path):
    with pytest.raises(RecipeError, match=r"grpo\.gradient_accumulation_steps: AutoThink sets .*prompts_per_step"):
        load_recipe(_write(tmp_path, _minimal(grpo={"gradient_accumulation_steps": 4})))


def test_a_grpoconfig_value_of_the_wrong_type_is_refused_with_trls_type(tmp_path):
    with pytest.raises(RecipeError, match=r"grpo\.weight_decay: expected float .*got 'lots'"):
        load_recipe(_write(tmp_path, _minimal(grpo={"weight_decay": "lots"})))


def test_the_grpoconfig_fields_read_from_source_are_trls_own():
    import dataclasses

    from trl import GRPOConfig

    from autothink_lite.grpo_fields import grpo_config_fields

    assert set(grpo_config_fields()) == {f.name for f in dataclasses.fields(GRPOConfig)}


def test_wrong_type_names_the_field_and_what_it_expects(tmp_path):
    with pytest.raises(RecipeError, match=r"grpo\.num_generations: expected int, got 'eight'"):
        load_recipe(_write(tmp_path, _minimal(grpo={"num_generations": "eight"})))


def test_value_outside_its_choices_lists_them(tmp_path):
    with pytest.raises(RecipeError, match=r"model\.dtype: 'fp8' is not one of float32, bfloat16, float16"):
        load_recipe(_write(tmp_path, _minimal(model={"dtype": "fp8"})))


def test_batch_that_cannot_be_split_into_micro_batches_gets_the_fix(tmp_path):
    data = _minimal(grpo={"prompts_per_step": 3, "num_generations": 8, "per_device_train_batch_size": 16})
    with pytest.raises(RecipeError, match=r"24 completions per step is not divisible by per_device_train_batch_size=16"):
        load_recipe(_write(tmp_path, data))


def test_a_group_of_one_sample_is_refused(tmp_path):
    with pytest.raises(RecipeError, match=r"num_generations=1.*2 or more"):
        load_recipe(_write(tmp_path, _minimal(grpo={"num_generations": 1})))


def test_stage_numbers_other_than_one_to_three_are_refused(tmp_path):
    with pytest.raises(RecipeError, match=r"stages\.4: AutoThink has stages 1, 2 and 3"):
        load_recipe(_write(tmp_path, _minimal(stages={4: {}})))


def test_a_recipe_without_stages_is_refused():
    with pytest.raises(RecipeError, match="stages"):
        recipe_from_dict({"name": "t"})


def test_broken_yaml_and_missing_file_get_clear_errors(tmp_path):
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(_write(tmp_path, "grpo: [unclosed"))
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(tmp_path / "nope.yaml")


def test_command_line_overrides_are_validated_like_the_file(tmp_path):
    path = _write(tmp_path, _minimal())
    recipe = load_recipe(path, ["grpo.learning_rate=3e-5", "stages.2.grpo.max_steps=4", "eval.modes=[auto, standard]",
                                "stages.3.grpo.learning_rate=2e-4"])
    assert recipe.grpo.learning_rate == 3e-5 and recipe.stage_grpo(2).max_steps == 4
    assert recipe.stage_grpo(3).learning_rate == 2e-4, "a stage override written 2e-4 (a string to YAML) is a float"
    assert recipe.eval.modes == ["auto", "standard"]
    with pytest.raises(RecipeError, match="KEY=VALUE"):
        load_recipe(path, ["grpo.learning_rate"])
    with pytest.raises(RecipeError, match="eval.modes: 'thinking' is not one of"):
        load_recipe(path, ["eval.modes=[thinking]"])


R1_DISTILL_SHAPES = {
    "r1-distill-qwen-1.5b": {"hidden_size": 1536, "num_hidden_layers": 28, "num_attention_heads": 12,
                             "num_key_value_heads": 2, "intermediate_size": 8960, "vocab_size": 151936},
    "r1-distill-qwen-7b": {"hidden_size": 3584, "num_hidden_layers": 28, "num_attention_heads": 28,
                           "num_key_value_heads": 4, "intermediate_size": 18944, "vocab_size": 152064},
}


@pytest.mark.parametrize("name", ["r1-distill-qwen-1.5b", "r1-distill-qwen-7b", "deepscaler-1.5b"])
def test_each_gpu_recipe_fits_the_24gb_card_it_is_sized_for(tmp_path, name):
    from autothink_lite.training import check_stage_fits

    shape = R1_DISTILL_SHAPES.get(name, R1_DISTILL_SHAPES["r1-distill-qwen-1.5b"])
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2", "tie_word_embeddings": False,
                                                           "max_position_embeddings": 131072, **shape}))
    recipe = load_recipe(Path(__file__).parents[1] / "recipes" / f"{name}.yaml",
                         [f"model.name_or_path={tmp_path}"])
    for stage in recipe.stages:
        assert "peak" in check_stage_fits(recipe, stage)


def test_a_stage_too_big_for_the_card_stops_with_a_setting_to_change(tmp_path):
    from autothink_lite.fitcheck import FitError
    from autothink_lite.training import check_stage_fits

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2", "tie_word_embeddings": False,
                                                           **R1_DISTILL_SHAPES["r1-distill-qwen-7b"]}))
    recipe = load_recipe(Path(__file__).parents[1] / "recipes" / "r1-distill-qwen-7b.yaml",
                         [f"model.name_or_path={tmp_path}", "stages.3.grpo.max_completion_length=32768",
                          "stages.3.grpo.per_device_train_batch_size=4"])
    with pytest.raises(FitError, match="per_device_train_batch_size|max_completion_length|gradient_checkpointing"):
        check_stage_fits(recipe, 3)


def test_the_length_cap_baseline_recipe_loads_with_the_standard_prompt():
    recipe = load_recipe(Path(__file__).parents[1] / "recipes" / "baselines" / "mini-length-cap.yaml")
    assert recipe.data.prompt_mode == "standard" and recipe.stages[1].shaping.length_cap == 96
    mini = load_recipe(Path(__file__).parents[1] / "recipes" / "mini.yaml")
    assert recipe.stage_grpo(1).max_steps == sum(mini.stage_grpo(s).max_steps for s in mini.stages), "same budget"


def test_a_length_cap_mixed_with_autothink_shaping_is_refused(tmp_path):
    with pytest.raises(RecipeError, match="length_cap replaces AutoThink's rewards"):
        load_recipe(_write(tmp_path, _minimal(stages={1: {"gamma": 0.5, "length_cap": 64}})))
