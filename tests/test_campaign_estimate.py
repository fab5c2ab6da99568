"""The campaign forecast (campaigns.estimate): models still to train from measured per-epoch seconds of models
like them, a training in progress from its own checkpoint, evaluations from stored records, unknown otherwise."""
from __future__ import annotations

import json

import pytest
import torch

PLAN = """
[campaign]
name = "forecast"
dataset = "digits"
preset = "quick"
set = {{ epochs = {{ erm = 2, mixup = 3 }}, test_subset = 60 }}

[[pass]]
name = "first"
defenses = ["erm"]
attacks = ["clean", "pgd10"]
seeds = [0]
{extra}
"""

MORE = """
[[pass]]
name = "more"
defenses = ["erm", "mixup"]
attacks = ["clean", "pgd10"]
seeds = [1]
"""


def test_forecast_uses_measured_models_and_records_and_says_unknown_for_the_rest(tmp_path, private_cache):
    from varmixup_bench.campaigns.engine import run_campaign
    from varmixup_bench.campaigns.estimate import estimate
    from varmixup_bench.campaigns.plan import load_plan
    from varmixup_bench.campaigns.status import pass_status
    from varmixup_bench.training.cache import WeightCache

    wd = tmp_path / "wd"
    (tmp_path / "a.toml").write_text(PLAN.format(extra=""))
    first = load_plan(tmp_path / "a.toml")
    before = estimate(first, wd, pass_status(first, wd, "cpu"), "cpu")[0]
    assert list(before.train.values()) == [None] and before.evaluate == [None, None]  # nothing measured yet
    run_campaign(first, wd, show_progress=False)
    (meta,) = list(WeightCache(wd).root.glob("*/meta.json"))

    epoch_seconds = [h["seconds"] for h in json.loads(meta.read_text())["history"]]

    (tmp_path / "b.toml").write_text(PLAN.format(extra=MORE))
    plan = load_plan(tmp_path / "b.toml")
    done, more = estimate(plan, wd, pass_status(plan, wd, "cpu"), "cpu")
    assert done.train == {} and done.evaluate == []  # the first pass is complete
    erm1, mixup1 = more.train.values()  # erm seed 1 (like erm seed 0), then mixup: nothing like it trained
    assert erm1 == pytest.approx(2 * sum(epoch_seconds) / len(epoch_seconds)) and mixup1 is None
    assert more.train_seconds() == (pytest.approx(erm1), 1)
    assert len(more.evaluate) == 4 and all(e is not None and e > 0 for e in more.evaluate)


def test_a_training_in_progress_is_estimated_from_its_own_checkpoint(tmp_path):
    from varmixup_bench.campaigns.estimate import remaining_seconds
    from varmixup_bench.training.checkpoint import save_checkpoint

    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    assert remaining_seconds(tmp_path, 5) is None
    save_checkpoint(tmp_path, model, opt, 2, [{"epoch": 1, "seconds": 2.0}, {"epoch": 2, "seconds": 4.0}])
    assert remaining_seconds(tmp_path, 5) == pytest.approx(9.0) and remaining_seconds(tmp_path, 2) == 0.0
    (tmp_path / "checkpoint.safetensors").write_bytes(b"torn")  # damaged: no forecast, and no exception
    assert remaining_seconds(tmp_path, 5) is None


def test_an_adv_var_recipe_costs_what_its_plain_one_does_and_nothing_else_is_alike():
    from varmixup_bench.campaigns.estimate import model_seconds

    base = {"model": "fast-cnn-half", "batch_size": 256, "data": "d1", "epochs": 4}
    metas = [{"config": {**base, "recipe": "varmixup"}, "history": [{"seconds": 10.0}, {"seconds": 12.0}]},
             {"config": {**base, "recipe": "erm"}, "history": [{"seconds": 3.0}]}]
    assert model_seconds({**base, "recipe": "adv-varmixup", "epochs": 3}, metas) == pytest.approx(33.0)
    assert model_seconds({**base, "recipe": "varmixup", "epochs": 2}, metas) == pytest.approx(22.0)
    assert model_seconds({**base, "recipe": "mixup"}, metas) is None  # another recipe: unknown, never guessed
    assert model_seconds({**base, "recipe": "adv-varmixup", "data": "d2"}, metas) is None


def test_evaluations_are_forecast_from_records_of_the_same_inference_rule_first():
    from varmixup_bench.campaigns.estimate import alike_records

    records = [{"defense": "mixup+mi", "stochastic": True, "seconds": 10.0},
               {"defense": "varmixup+varmi", "stochastic": True, "seconds": 90.0},
               {"defense": "erm", "stochastic": False, "seconds": 1.0}]
    assert [r["defense"] for r in alike_records(records, "varmi", True)] == ["varmixup+varmi"]
    assert [r["defense"] for r in alike_records(records, "plain", False)] == ["erm"]
    assert [r["defense"] for r in alike_records(records, "adv-varmi", True)] == ["varmixup+varmi"]  # the same cost
    # no record of the rule (VarMI's left out): the same kind of predictor, a randomised rule
    assert [r["defense"] for r in alike_records(records[:1] + records[2:], "varmi", True)] == ["mixup+mi"]


def test_a_training_in_progress_estimates_the_models_like_it(tmp_path, private_cache):
    from varmixup_bench.campaigns.cells import planned_cells
    from varmixup_bench.campaigns.estimate import estimate
    from varmixup_bench.campaigns.plan import load_plan
    from varmixup_bench.campaigns.status import pass_status
    from varmixup_bench.training.cache import WeightCache
    from varmixup_bench.training.checkpoint import save_checkpoint
    from varmixup_bench.training.runner import defense_key

    wd = tmp_path / "wd"
    (tmp_path / "p.toml").write_text(PLAN.format(extra=MORE))
    plan = load_plan(tmp_path / "p.toml")
    statuses = pass_status(plan, wd, "cpu")
    first = next(pc for pc in planned_cells(plan, wd, statuses, "cpu") if pc.cell.defense == "erm")
    folder = WeightCache(wd).folder(defense_key("erm", first.ctx))  # erm seed 0, one epoch of two done
    model = torch.nn.Linear(2, 2)
    save_checkpoint(folder, model, torch.optim.SGD(model.parameters(), lr=0.1), 1, [{"epoch": 1, "seconds": 5.0}])
    started, more = estimate(plan, wd, statuses, "cpu")
    assert list(started.train.values()) == [pytest.approx(5.0)]  # its own epochs left
    erm1, mixup1 = more.train.values()
    assert erm1 == pytest.approx(10.0) and mixup1 is None  # erm seed 1: two epochs like seed 0's; mixup: unlike


def test_a_model_zoo_defense_is_forecast_with_nothing_to_train(tmp_path):
    """`robustbench:NAME` is loaded, never trained: the forecast has no training for it (it used to stop on
    'unknown recipe'), and its evaluations are unknown until something measured resembles them."""
    from varmixup_bench.campaigns.estimate import estimate
    from varmixup_bench.campaigns.plan import load_plan
    from varmixup_bench.campaigns.status import pass_status

    (tmp_path / "z.toml").write_text(
        '[campaign]\nname = "zoo"\ndataset = "digits"\npreset = "quick"\nset = { zoo_dataset = "cifar10" }\n\n'
        '[[pass]]\nname = "zoo"\ndefenses = ["robustbench:Standard", "robustbench:Standard+mi"]\n'
        'attacks = ["clean"]\nseeds = [0]\n')
    plan = load_plan(tmp_path / "z.toml")
    (zoo,) = estimate(plan, tmp_path / "wd", pass_status(plan, tmp_path / "wd", "cpu"), "cpu")
    assert zoo.train == {} and zoo.evaluate == [None, None]


def test_a_vae_ladder_forecasts_its_next_latent_from_the_trained_ones_of_the_same_stride():
    """The latent's size changes one small layer each way: a VAE of 4 latent channels is forecast from one of 16
    at the same stride, width, batch size and data; another stride, width or an adversarial VAE is not alike."""
    from varmixup_bench.campaigns.estimate import vae_seconds

    base = {"arch": "conv", "latent_channels": 16, "latent_stride": 4, "width": 32, "batch_size": 128,
            "adversarial": False, "from": None, "epochs": 10}
    metas = [{"dataset": "cifar", "config": base, "history": [{"seconds": 130.0}] * 10}]
    assert vae_seconds({**base, "latent_channels": 4, "epochs": 20}, "cifar", metas) == pytest.approx(2600.0)
    for other in ({"latent_stride": 2}, {"width": 64}, {"adversarial": True}, {"batch_size": 256}):
        assert vae_seconds({**base, **other}, "cifar", metas) is None, other
    assert vae_seconds(base, "digits", metas) is None


def test_another_budget_on_a_measured_model_is_forecast_from_that_model(tmp_path):
    """A convergence pass (PGD-50 where PGD-10 was measured) is forecast from the same trained model's records,
    not from the median of every model of its inference rule: on a VAE ladder one decoder costs a third of
    another's, and the median would say so for none of them."""
    from varmixup_bench.campaigns.cells import planned_cells
    from varmixup_bench.campaigns.estimate import estimate
    from varmixup_bench.campaigns.plan import load_plan
    from varmixup_bench.campaigns.status import pass_status
    from varmixup_bench.results.store import ResultStore
    from varmixup_bench.training.runner import defense_key

    wd = tmp_path / "wd"
    (tmp_path / "c.toml").write_text(PLAN.format(extra="").replace('["clean", "pgd10"]', '["pgd(steps=50)"]'))
    plan = load_plan(tmp_path / "c.toml")
    statuses = pass_status(plan, wd, "cpu")
    (pc,) = planned_cells(plan, wd, statuses, "cpu")
    own = defense_key("erm", pc.ctx)
    config = {"eps": 0.03, "steps": 10, "restarts": 1, "norm": "Linf"}
    ResultStore(wd).extend([
        {"dataset": "digits", "defense": "erm", "attack": "pgd10", "config_hash": key, "seconds": seconds,
         "stochastic": False, "attack_config": config, "eval_hash": key, "timestamp": "2026-12-01T00:00:00"}
        for key, seconds in [(own, 10.0), ("another-model", 300.0), ("a-third-model", 400.0)]])
    (first,) = estimate(plan, wd, statuses, "cpu")
    assert first.evaluate == [pytest.approx(50.0)]  # 1 s per step on its own model, times 50 steps
