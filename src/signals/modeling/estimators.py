"""The model: LightGBM with early stopping, then probability calibration.

:class:`SignalModel` follows the scikit-learn contract (settings in ``__init__``, learned
attributes end in ``_``, ``fit`` returns ``self``). It is fitted on training rows, stops early
on validation rows, and calibrates on the same validation rows so that a score of 0.3 means
about 30%. Test rows are never passed to it while fitting.

Defaults for rare positives: no re-weighting of classes (it would distort probabilities; the
calibration would have to undo it), early stopping on log-loss (a proper score), and a
large ``min_child_samples`` so leaves do not chase a handful of positives.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from signals.errors import DataError
from signals.settings import LightGBMSettings

__all__ = ["Calibrator", "SignalModel"]


class Calibrator:
    """Maps raw scores to probabilities: isotonic regression or Platt's sigmoid.

    Parameters
    ----------
    method : {"isotonic", "sigmoid"}
    """

    def __init__(self, method: Literal["isotonic", "sigmoid"] = "isotonic") -> None:
        self.method = method

    def fit(self, score, y, weight=None) -> Calibrator:
        score = np.asarray(score, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if len(np.unique(y)) < 2:
            raise DataError("calibration needs both positive and negative rows")
        if self.method == "isotonic":
            self.isotonic_ = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(score, y, sample_weight=weight)
        elif self.method == "sigmoid":
            # fit on the standardised score (well conditioned whatever its scale), then fold the
            # standardisation into the slope and intercept
            center, spread = float(np.mean(score)), float(np.std(score)) or 1.0
            lr = LogisticRegression(C=1e6, max_iter=1000).fit(((score - center) / spread).reshape(-1, 1), y,
                                                              sample_weight=weight)
            lr.coef_ = lr.coef_ / spread
            lr.intercept_ = lr.intercept_ - lr.coef_[:, 0] * center
            self.sigmoid_ = lr
        else:
            raise ValueError(f"calibration method must be 'isotonic' or 'sigmoid', got {self.method!r}")
        return self

    def predict(self, score) -> np.ndarray:
        score = np.asarray(score, dtype=np.float64)
        if self.method == "isotonic":
            return self.isotonic_.predict(score)
        return self.sigmoid_.predict_proba(score.reshape(-1, 1))[:, 1]

    def to_dict(self) -> dict:
        if self.method == "isotonic":
            return {"method": "isotonic", "x": self.isotonic_.X_thresholds_.tolist(), "y": self.isotonic_.y_thresholds_.tolist()}
        return {"method": "sigmoid", "coef": float(self.sigmoid_.coef_[0, 0]), "intercept": float(self.sigmoid_.intercept_[0])}

    @classmethod
    def from_dict(cls, data: dict) -> Calibrator:
        """Rebuild a fitted calibrator from :meth:`to_dict` (exactly the same predictions)."""
        cal = cls(data["method"])
        if data["method"] == "isotonic":
            x, y = np.asarray(data["x"]), np.asarray(data["y"])
            cal.isotonic_ = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(x, y)
        else:
            lr = LogisticRegression()
            lr.classes_ = np.array([0.0, 1.0])
            lr.coef_ = np.array([[data["coef"]]])
            lr.intercept_ = np.array([data["intercept"]])
            lr.n_features_in_ = 1
            cal.sigmoid_ = lr
        return cal


class SignalModel:
    """LightGBM binary classifier with early stopping and calibrated probabilities.

    Parameters
    ----------
    lightgbm : LightGBMSettings
        Booster settings (``n_estimators`` is an upper bound; early stopping picks the count).
    calibration : {"isotonic", "sigmoid"}
    seed : int

    Attributes
    ----------
    booster_ : lightgbm.Booster
    best_iteration_ : int
    feature_names_ : list of str
    calibrator_ : Calibrator
    """

    def __init__(self, lightgbm: LightGBMSettings | None = None, calibration: str = "sigmoid", seed: int = 42) -> None:
        self.lightgbm = lightgbm
        self.calibration = calibration
        self.seed = seed

    def _params(self) -> dict:
        s = self.lightgbm or LightGBMSettings()
        return {
            "objective": "binary",
            "metric": "binary_logloss",
            "learning_rate": s.learning_rate,
            "num_leaves": s.num_leaves,
            "min_child_samples": s.min_child_samples,
            "feature_fraction": s.feature_fraction,
            "bagging_fraction": s.bagging_fraction,
            "bagging_freq": s.bagging_freq,
            "lambda_l2": s.lambda_l2,
            "num_threads": s.num_threads,
            "seed": self.seed,
            "deterministic": True,
            "force_col_wise": True,  # same trees as row-wise, 1.4-1.7x faster here (many features, few threads)
            "verbosity": -1,
        }

    def fit(self, X: pd.DataFrame, y, X_val: pd.DataFrame, y_val, *, weight=None, val_weight=None) -> SignalModel:
        """Fit on ``(X, y)``, stop early and calibrate on ``(X_val, y_val)``.

        ``weight`` / ``val_weight`` are optional row weights (a customer bootstrap draws customers
        with replacement: a row counts as often as its customer was drawn).

        Raises
        ------
        DataError
            The training or validation rows lack positives or negatives.
        """
        s = self.lightgbm or LightGBMSettings()
        y, y_val = np.asarray(y), np.asarray(y_val)
        for name, labels in (("training", y), ("validation", y_val)):
            if len(np.unique(labels)) < 2:
                raise DataError(f"the {name} rows need both positives and negatives (got {int(labels.sum())} positives "
                                f"in {len(labels)} rows)")
        if list(X_val.columns) != list(X.columns):
            raise ValueError("training and validation features differ")
        train = lgb.Dataset(X, y, weight=weight, free_raw_data=True)
        valid = lgb.Dataset(X_val, y_val, weight=val_weight, reference=train)
        self.booster_ = lgb.train(
            self._params(), train, num_boost_round=s.n_estimators, valid_sets=[valid], valid_names=["validation"],
            callbacks=[lgb.early_stopping(s.early_stopping_rounds, verbose=False)],
        )
        self.best_iteration_ = int(self.booster_.best_iteration or self.booster_.current_iteration())
        self.feature_names_ = list(X.columns)
        self.calibrator_ = Calibrator(self.calibration).fit(self.decision_function(X_val), y_val, weight=val_weight)
        return self

    def _threads(self) -> int:
        """The model's ``lightgbm.num_threads`` (0 = all cores), passed to every prediction.

        LightGBM keeps the thread count of its last call in one process-wide variable: a prediction
        without it resets that to "all cores" under a fit running on another thread with one, which
        can crash the fit (:func:`signals.modeling.training.fit_pool` runs fits side by side).
        """
        return (self.lightgbm or LightGBMSettings()).num_threads

    def _check(self, X: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.feature_names_ if c not in X.columns]
        if missing:
            raise ValueError(f"{len(missing)} feature(s) the model was trained on are missing, e.g. {missing[:5]}")
        return X[self.feature_names_]

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Raw log-odds of the booster (before calibration)."""
        return self.booster_.predict(self._check(X), raw_score=True, num_iteration=self.best_iteration_,
                                     num_threads=self._threads())

    def probability(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of the positive class, one value per row."""
        return self.calibrator_.predict(self.decision_function(X))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """scikit-learn style ``(n, 2)`` calibrated class probabilities."""
        p = self.probability(X)
        return np.column_stack([1.0 - p, p])

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per-row log-odds contributions of each feature (TreeSHAP) plus ``bias``; rows sum to the raw score."""
        values = self.booster_.predict(self._check(X), pred_contrib=True, num_iteration=self.best_iteration_,
                                       num_threads=self._threads())
        return pd.DataFrame(values, columns=[*self.feature_names_, "bias"], index=X.index)

    def tree_shap(self):
        """The vectorised TreeSHAP of this booster (:class:`signals.modeling.shap.TreeShap`, built once)."""
        from signals.modeling.shap import TreeShap

        if getattr(self, "_tree_shap", None) is None or self._tree_shap.booster is not self.booster_:
            self._tree_shap = TreeShap(self.booster_, self.best_iteration_)
        return self._tree_shap

    def importance(self) -> pd.Series:
        """Total gain of each feature, sorted."""
        gain = self.booster_.feature_importance(importance_type="gain", iteration=self.best_iteration_)
        return pd.Series(gain, index=self.feature_names_).sort_values(ascending=False)

    # ---- persistence --------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write ``booster.txt`` and ``model.json`` (calibrator, features, settings) to ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.booster_.save_model(str(folder / "booster.txt"), num_iteration=self.best_iteration_)
        meta = {
            "best_iteration": self.best_iteration_,
            "feature_names": self.feature_names_,
            "calibrator": self.calibrator_.to_dict(),
            "lightgbm": (self.lightgbm or LightGBMSettings()).model_dump(),
            "calibration": self.calibration,
            "seed": self.seed,
        }
        (folder / "model.json").write_text(json.dumps(meta, indent=2, allow_nan=False), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> SignalModel:
        folder = Path(folder)
        meta = json.loads((folder / "model.json").read_text(encoding="utf-8"))
        model = cls(LightGBMSettings(**meta["lightgbm"]), meta["calibration"], meta["seed"])
        model.booster_ = lgb.Booster(model_file=str(folder / "booster.txt"))
        model.best_iteration_ = meta["best_iteration"]
        model.feature_names_ = meta["feature_names"]
        model.calibrator_ = Calibrator.from_dict(meta["calibrator"])
        return model
