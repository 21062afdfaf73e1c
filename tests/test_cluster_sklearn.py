"""FigureClusterer follows scikit-learn's estimator contract (``parametrize_with_checks``).

Two checks are expected to fail, each for a reason of the domain, not of the API:

* ``check_clustering``: it scores the labels of 2-d Euclidean blobs; the clusterer groups
  unit vectors by cosine angle (face embeddings), and blobs around the origin are not
  separated by angle.
* ``check_estimators_dtypes``: it fits on small non-negative integers, some of whose rows are
  all zero; a zero embedding has no direction, so the clusterer refuses it with a clear error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from imm_analysis.cluster import FigureClusterer
from imm_analysis.quality import HDRule

EXPECTED_FAILED = {
    "check_clustering": "groups by cosine angle; 2-d Euclidean blobs around the origin are not separable by angle",
    "check_estimators_dtypes": "all-zero integer rows have no direction (cosine undefined); refused with a clear error",
}


@parametrize_with_checks([FigureClusterer()], expected_failed_checks=lambda est: EXPECTED_FAILED)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _two_people(seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(2, 32))
    x = np.repeat(centres, 4, axis=0) + 0.05 * rng.normal(size=(8, 32))
    return x.astype(np.float32)


def test_fit_signature_y_ignored_and_figures_keyword():
    x = _two_people()
    figs = pd.DataFrame({"file_id": [f"img{i}" for i in range(8)], "width": 100, "height": 100, "pitch": 0.0,
                         "roll": 0.0, "yaw": 0.0, "face_quality": 0.9})
    est = FigureClusterer(0.5)
    by_kw = est.fit(x, figures=figs).labels_.copy()
    assert est.fit(x, np.zeros(8)).labels_.tolist() == by_kw.tolist()  # y ignored
    assert est.fit(x, figs).labels_.tolist() == by_kw.tolist()  # figures positionally (compatibility)
    assert est.fit_predict(x, figures=figs).tolist() == by_kw.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    with pytest.raises(TypeError, match="figures given twice"):
        est.fit(x, figs, figures=figs)
    # HD rule as an HDRule: a strict rule leaves no HD face, so nothing can found a cluster
    strict = FigureClusterer(0.5, hd_rule=HDRule(min_quality=0.95)).fit(x, figures=figs)
    assert strict.n_clusters_ == 0 and not strict.hd_.any()


def test_clone_and_pipeline():
    x = _two_people(1)
    est = FigureClusterer(0.5, min_faces=2, hd_rule=HDRule(min_size=10))
    twin = clone(est)
    assert twin.get_params() == est.get_params() and not hasattr(twin, "labels_")
    pipe = make_pipeline(FunctionTransformer(lambda a: a * 3.0), FigureClusterer(0.5))
    labels = pipe.fit_predict(x)
    assert labels.tolist() == FigureClusterer(0.5).fit_predict(x).tolist() == [0, 0, 0, 0, 1, 1, 1, 1]


def test_small_inputs_name_the_problem():
    with pytest.raises(ValueError, match="n_samples = 2"):
        FigureClusterer().fit(np.eye(2, 8))
    with pytest.raises(ValueError, match="n_features = 1"):
        FigureClusterer(0.5).fit(np.ones((4, 1)))
    est = FigureClusterer(0.5).fit(_two_people())
    with pytest.raises(ValueError, match="X has 16 features"):
        est.partial_fit(np.ones((2, 16)))
