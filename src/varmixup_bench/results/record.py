"""The evaluation record: its fields, its schema version, the key of its leaderboard row, the fields that define a
trained model, and its evaluation key (what "the same evaluation" means for the store, `bench run`, the sweep,
`bench converge` and `bench report`).

A record is a plain dict (JSON in the store, one row of the long CSV). This module is the one place its schema is
written down; the store, the runner and the views import it, and it imports no other module of the package at
import time (so none of them has to import another for the schema)."""
from __future__ import annotations

import json
import math
from typing import Any

# Version of the record's schema, stored in every new record as `schema_version`. Records written before the
# field existed read as version 1 (record_schema_version).
#   1: the fields below, without schema_version
#   2: schema_version added
SCHEMA_VERSION = 2

# the fields every evaluation record has (results.store.RECORD_FIELDS)
REQUIRED_FIELDS = [
    "dataset", "model", "defense", "attack", "threat_model", "eps", "step", "clean_acc", "clean_acc_std",
    "robust_acc", "robust_acc_std", "trials", "n_examples", "seconds", "seed", "config_hash", "eval_hash",
    "preset", "device", "trained", "timestamp", "versions",
]

# what any table needs of a record to show it (a line without them is no record: import quarantines it, restore
# refuses the CSV); records older than some REQUIRED_FIELDS still have these
ESSENTIAL_FIELDS = ("dataset", "defense", "attack", "eps", "clean_acc", "robust_acc", "n_examples", "timestamp")

# the long leaderboard's columns, in order (views.leaderboard.COLUMNS): every field a table shows
COLUMNS = [
    "dataset", "defense", "attack", "threat_model", "norm", "eps", "step", "clean_acc", "clean_acc_std",
    "clean_acc_ci_low", "clean_acc_ci_high", "robust_acc", "robust_acc_std", "robust_acc_ci_low",
    "robust_acc_ci_high", "robust_acc_worst", "robust_acc_worst_std", "robust_acc_worst_ci_low",
    "robust_acc_worst_ci_high", "draws", "target_hit_rate", "metric", "value", "trials", "n_examples", "seconds",
    "seed", "model", "preset", "device", "threads", "stochastic", "trained", "config_hash", "eval_hash",
    "data_fingerprint", "train_config", "train_overrides", "inference_config", "attack_config", "timestamp",
    "versions", "per_image",
]

# fields some records have besides the columns: written by evaluate (eps_source for attacks with a radius, zoo
# for model-zoo checkpoints, details of some attacks), by the sweep (its cell identity tag), by reuse (same_as,
# reused_from), by `bench restore` and `bench retire`
OPTIONAL_FIELDS = [
    "schema_version", "eps_source", "zoo", "details", "sweep_key", "same_as", "reused_from", "restored_from",
    "retired_reason",
]

FIELDS = COLUMNS + OPTIONAL_FIELDS  # the record's schema: every field a record may have

# one leaderboard row per ROW_KEY; records that agree on ROW_KEY but differ in VARIANT_KEY are different results
# and are shown apart, never merged (attack_config_key: the attack_config as canonical JSON)
ROW_KEY = ["dataset", "defense", "attack", "threat_model", "norm", "eps"]
VARIANT_KEY = ["step", "n_examples", "preset", "config_hash", "attack_config_key", "trials"]

# preset fields that change a trained model (the others only change how it is evaluated). Not `dataset`: a
# record's data is its own `dataset` column (the rows' grouping key) and `data_fingerprint`; the preset field is
# only how the command named it (`bench sweep --datasets` leaves it at the default, `bench report --dataset`
# sets it), so it must not split one model's records into two rows
TRAINING_FIELDS = {"model", "epochs", "epochs_default", "batch_size", "lr", "optimizer", "eta", "train_eps",
                   "train_step", "train_steps", "trades_beta", "amp", "seed", "train_subset", "vae_latent_dim",
                   "vae_width", "vae_gamma", "vae_bandwidth", "vae_epochs", "vae_batch_size", "vae_lr", "vae_from",
                   "vae_adv_eps", "vae_adv_step", "vae_adv_steps", "vae_adv_epochs", "weight_decay",
                   "lr_schedule", "label_smoothing", "augment", "init", "vae_arch", "vae_latent_channels",
                   "vae_latent_stride", "vae_seed"}


def record_schema_version(rec: dict[str, Any]) -> int:
    """The schema version a record was written with (1 for records older than the field)."""
    v = rec.get("schema_version")
    try:
        return int(v) if v is not None and v == v else 1
    except (TypeError, ValueError):
        return 1


def record_norm(r: dict) -> str:
    """A record's norm; records written before L2 existed are L-inf (or `none` for clean, corruptions, ECE)."""
    norm = r.get("norm")
    if isinstance(norm, str) and norm:
        return norm
    return "none" if r.get("threat_model") == "none" else "Linf"


def record_norms(df) -> list[str]:
    """record_norm of every row of a pandas frame, in row order."""
    cols = [c for c in ("norm", "threat_model") if c in df]
    return [record_norm(r) for r in df[cols].to_dict("records")]


def eps_label(eps: float) -> str:
    """8/255 when eps is a whole number of 255ths, else the decimal."""
    scaled = eps * 255
    if abs(scaled - round(scaled)) < 1e-3:
        return "0" if round(scaled) == 0 else f"{round(scaled)}/255"
    return f"{eps:.4g}"


def eps_text(eps: float, norm: str | None = None) -> str:
    """A radius as read in its norm: L-inf as k/255 (eps_label), L2 as a plain number with an `L2` mark."""
    if norm == "L2":
        return f"L2 {eps:.4g}"
    return eps_label(eps)


def _without_seeds(v: Any) -> Any:
    """A nested config with every `seed` key removed: a recipe's parts (the VarMixup family's MMD-VAE) are seeded
    from the training seed, so their seeds differ exactly when the training seed does."""
    if isinstance(v, dict):
        return {k: _without_seeds(x) for k, x in v.items() if k != "seed"}
    return v


def relative_step(step: Any, eps: Any) -> str:
    """A PGD step as a fraction of its radius ("0.25" for the default eps/4, "1" for the paper's 8/255 at 8/255;
    "-" without a step or a radius, e.g. APGD): records of one attack at other relative steps are other attacks,
    not points of one curve or the two sides of one comparison."""
    try:
        s, e = float(step), float(eps)
    except (TypeError, ValueError):
        return "-"
    return f"{s / e:.4g}" if s == s and e == e and e > 0 else "-"


def field_value(v: Any) -> Any:
    """A record field as Python: the JSON objects and lists a store keeps as text (configs, overrides, details)
    decoded, anything else (and text that is not valid JSON) as it is."""
    if isinstance(v, str) and v[:1] in "{[":
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def inference_key(value: Any) -> str:
    """A record's inference rule settings (lambda_MI, N_MI, the VAE it decodes with) as canonical JSON without
    seeds; "" for a plain predictor. One trained model under two settings (the lambda_MI sweep) is two predictors,
    whose results are never merged, pooled or compared as one."""
    cfg = _without_seeds(field_value(value))
    return json.dumps(cfg, sort_keys=True, default=str) if isinstance(cfg, dict) and cfg else ""


def predictor_key(config_hash: Any, inference_config: Any) -> str:
    """The predictor a record evaluated: its trained model (config hash; "" where unknown) and, for an inference
    rule with settings, those settings (inference_key)."""
    model = "" if config_hash is None or config_hash != config_hash else str(config_hash)
    rule = inference_key(inference_config)
    return f"{model}|{rule}" if rule else model


def model_signature(row: Any) -> str:
    """The training configuration of a record without its seeds (the model's and its MMD-VAE's): recipe settings,
    epochs, lr, batch size and the preset overrides that change a model (TRAINING_FIELDS), and the inference
    rule's settings (inference_key: records of one model under two lambda_MI are two rows). `row`: a record, or
    a row of a frame of records."""
    cfg = _without_seeds(field_value(row.get("train_config")) or {})
    ov = field_value(row.get("train_overrides")) or {}
    ov = ({k: v for k, v in ov.items() if k in TRAINING_FIELDS and k not in ("seed", "vae_seed")}
          if isinstance(ov, dict) else {})
    sig = {"train": cfg, "overrides": ov}
    rule = inference_key(row.get("inference_config"))
    if rule:  # absent for plain predictors, so their signatures are as before the field
        sig["inference"] = rule
    return json.dumps(sig, sort_keys=True, default=str)


def evaluation_key(defense: Any, atk: Any, test: Any, trials: int, seed: int) -> str:
    """The evaluation key (a record's `eval_hash`): a hash of everything that determines an evaluation's record —
    the model (its training key), the attack's spec and config, the inference rule, the test data, trials, seed
    and the draws per adversarial example. The one definition of "the same evaluation": `bench run`'s reuse,
    stored_or_evaluate (`bench converge`, `bench report`) and the sweep's reuse look records up by it.

    `defense`: a trained Defense, `atk`: a built Attack, `test`: the test Split."""
    from varmixup_bench.training.data import split_fingerprint

    return evaluation_key_of(defense.info["config_hash"], atk, defense.rule.config(), split_fingerprint(test), trials,
                             seed, int(defense.info["settings"].worst_case_draws))


def evaluation_key_of(train_key: str, atk: Any, inference: dict, test_fingerprint: str, trials: int, seed: int,
                      draws: int) -> str:
    """evaluation_key from its parts, for a model not loaded (the campaign forecast asks whether a step's cell is
    stored): the model's training key, the built attack, the rule's config, the test split's fingerprint."""
    from varmixup_bench.training.cache import config_hash

    return config_hash({"train": train_key, "attack": atk.spec, "attack_config": atk.config(), "inference": inference,
                        "trials": trials, "seed": seed, "test": test_fingerprint, "draws": int(draws)})


def _flatten(prefix: str, v, out: dict) -> dict:
    if isinstance(v, str) and v.startswith("{"):
        try:
            v = json.loads(v)
        except ValueError:
            pass
    if isinstance(v, dict):
        for k, val in v.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), val, out)
    else:
        out[prefix] = v
    return out


def differing_fields(rows: list[dict], fields: list[str]) -> list[str]:
    """For each row, 'k=v' of the flattened fields whose values differ between the rows."""
    flat = [_flatten("", {f: r.get(f) for f in fields}, {}) for r in rows]
    keys = sorted({k for f in flat for k in f})
    differ = [k for k in keys if len({json.dumps(f.get(k), default=str) for f in flat}) > 1]
    def show(key: str, v) -> str:  # radii and steps as k/255, other numbers (lambda_MI, lr) as they are
        if isinstance(v, float) and not math.isnan(v):
            return eps_label(v) if "eps" in key or "step" in key else f"{v:g}"
        return str(v)

    def label(f: dict) -> str:
        # what this row has: an unset field (None) says nothing, and an override that restates a trained value
        # under a longer name (vae_latent_channels=16 beside the VAE's latent_channels=16) is said once
        parts = list(dict.fromkeys((k.split(".")[-1], show(k.split(".")[-1], f.get(k)))
                                   for k in differ if f.get(k) is not None))
        return ", ".join(f"{k}={v}" for k, v in parts
                         if not any(k.endswith("_" + o) and v == w for o, w in parts))

    return [label(f) for f in flat]
