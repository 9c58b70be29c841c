"""scikit-learn classes a pickle may import, argued per family in docs/scanners.md.

verifier never imports scikit-learn: the names are written out here (scikit-learn 1.9), and
`tests/scanners/test_sklearn_allowlist.py` compares them with the installed library (an
estimator it adds, moves or drops fails the test) and checks, class by class, what the argument
below rests on. A file written by an older scikit-learn whose classes lived elsewhere (before
0.22 `sklearn.linear_model.logistic`, without the underscore) names other paths: those stay
unknown (high), never allowed by pattern.

The argument: reconstructing an object runs `cls(*args)` (`REDUCE`), `cls.__new__(cls, *args)`
(`NEWOBJ`) and `obj.__setstate__(state)` or `obj.__dict__.update(state)` (`BUILD`), with
arguments and state the file's author chose. A class is listed only when none of these calls
anything those arguments name: no file, process or name lookup, whatever the arguments.
Callables an estimator holds (a `kernel`, a `metric`, a `tokenizer`) are imports of their own in
the pickle, classified on their own; classes whose purpose is to call a callable they hold are
not listed (`EXCLUDED`).
"""

from __future__ import annotations

#: Every estimator `sklearn.utils.all_estimators()` lists in scikit-learn 1.9 but `EXCLUDED`.
#: Their `__init__` only stores its parameters (scikit-learn's own rule, checked by its
#: `check_no_attributes_set_in_init`; the test reads every `__init__` in each class's MRO and
#: allows no call but `super().__init__`, the constructors of listed estimators and a few
#: value builders); none defines `__new__`, `__reduce__` or `__setstate__` beyond
#: `BaseEstimator.__setstate__` (which pops `_sklearn_version`, may warn, and updates
#: `__dict__`), a deprecation wrapper around `object.__new__`, and
#: `IsotonicRegression.__setstate__` (rebuilds its linear interpolation from two arrays).
SKLEARN_ESTIMATORS: frozenset[str] = frozenset(
    [
        "sklearn.calibration.CalibratedClassifierCV",
        "sklearn.cluster._affinity_propagation.AffinityPropagation",
        "sklearn.cluster._agglomerative.AgglomerativeClustering",
        "sklearn.cluster._agglomerative.FeatureAgglomeration",
        "sklearn.cluster._bicluster.SpectralBiclustering",
        "sklearn.cluster._bicluster.SpectralCoclustering",
        "sklearn.cluster._birch.Birch",
        "sklearn.cluster._bisect_k_means.BisectingKMeans",
        "sklearn.cluster._dbscan.DBSCAN",
        "sklearn.cluster._hdbscan.hdbscan.HDBSCAN",
        "sklearn.cluster._kmeans.KMeans",
        "sklearn.cluster._kmeans.MiniBatchKMeans",
        "sklearn.cluster._mean_shift.MeanShift",
        "sklearn.cluster._optics.OPTICS",
        "sklearn.cluster._spectral.SpectralClustering",
        "sklearn.compose._column_transformer.ColumnTransformer",
        "sklearn.covariance._elliptic_envelope.EllipticEnvelope",
        "sklearn.covariance._empirical_covariance.EmpiricalCovariance",
        "sklearn.covariance._graph_lasso.GraphicalLasso",
        "sklearn.covariance._graph_lasso.GraphicalLassoCV",
        "sklearn.covariance._robust_covariance.MinCovDet",
        "sklearn.covariance._shrunk_covariance.LedoitWolf",
        "sklearn.covariance._shrunk_covariance.OAS",
        "sklearn.covariance._shrunk_covariance.ShrunkCovariance",
        "sklearn.cross_decomposition._pls.CCA",
        "sklearn.cross_decomposition._pls.PLSCanonical",
        "sklearn.cross_decomposition._pls.PLSRegression",
        "sklearn.cross_decomposition._pls.PLSSVD",
        "sklearn.decomposition._dict_learning.DictionaryLearning",
        "sklearn.decomposition._dict_learning.MiniBatchDictionaryLearning",
        "sklearn.decomposition._dict_learning.SparseCoder",
        "sklearn.decomposition._factor_analysis.FactorAnalysis",
        "sklearn.decomposition._fastica.FastICA",
        "sklearn.decomposition._incremental_pca.IncrementalPCA",
        "sklearn.decomposition._kernel_pca.KernelPCA",
        "sklearn.decomposition._lda.LatentDirichletAllocation",
        "sklearn.decomposition._nmf.MiniBatchNMF",
        "sklearn.decomposition._nmf.NMF",
        "sklearn.decomposition._pca.PCA",
        "sklearn.decomposition._sparse_pca.MiniBatchSparsePCA",
        "sklearn.decomposition._sparse_pca.SparsePCA",
        "sklearn.decomposition._truncated_svd.TruncatedSVD",
        "sklearn.discriminant_analysis.LinearDiscriminantAnalysis",
        "sklearn.discriminant_analysis.QuadraticDiscriminantAnalysis",
        "sklearn.dummy.DummyClassifier",
        "sklearn.dummy.DummyRegressor",
        "sklearn.ensemble._bagging.BaggingClassifier",
        "sklearn.ensemble._bagging.BaggingRegressor",
        "sklearn.ensemble._forest.ExtraTreesClassifier",
        "sklearn.ensemble._forest.ExtraTreesRegressor",
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.ensemble._forest.RandomForestRegressor",
        "sklearn.ensemble._forest.RandomTreesEmbedding",
        "sklearn.ensemble._gb.GradientBoostingClassifier",
        "sklearn.ensemble._gb.GradientBoostingRegressor",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor",
        "sklearn.ensemble._iforest.IsolationForest",
        "sklearn.ensemble._stacking.StackingClassifier",
        "sklearn.ensemble._stacking.StackingRegressor",
        "sklearn.ensemble._voting.VotingClassifier",
        "sklearn.ensemble._voting.VotingRegressor",
        "sklearn.ensemble._weight_boosting.AdaBoostClassifier",
        "sklearn.ensemble._weight_boosting.AdaBoostRegressor",
        "sklearn.feature_extraction._dict_vectorizer.DictVectorizer",
        "sklearn.feature_extraction._hash.FeatureHasher",
        "sklearn.feature_extraction.image.PatchExtractor",
        "sklearn.feature_extraction.text.CountVectorizer",
        "sklearn.feature_extraction.text.HashingVectorizer",
        "sklearn.feature_extraction.text.TfidfTransformer",
        "sklearn.feature_extraction.text.TfidfVectorizer",
        "sklearn.feature_selection._from_model.SelectFromModel",
        "sklearn.feature_selection._rfe.RFE",
        "sklearn.feature_selection._rfe.RFECV",
        "sklearn.feature_selection._sequential.SequentialFeatureSelector",
        "sklearn.feature_selection._univariate_selection.GenericUnivariateSelect",
        "sklearn.feature_selection._univariate_selection.SelectFdr",
        "sklearn.feature_selection._univariate_selection.SelectFpr",
        "sklearn.feature_selection._univariate_selection.SelectFwe",
        "sklearn.feature_selection._univariate_selection.SelectKBest",
        "sklearn.feature_selection._univariate_selection.SelectPercentile",
        "sklearn.feature_selection._variance_threshold.VarianceThreshold",
        "sklearn.frozen._frozen.FrozenEstimator",
        "sklearn.gaussian_process._gpc.GaussianProcessClassifier",
        "sklearn.gaussian_process._gpr.GaussianProcessRegressor",
        "sklearn.impute._base.MissingIndicator",
        "sklearn.impute._base.SimpleImputer",
        "sklearn.impute._knn.KNNImputer",
        "sklearn.isotonic.IsotonicRegression",
        "sklearn.kernel_approximation.AdditiveChi2Sampler",
        "sklearn.kernel_approximation.Nystroem",
        "sklearn.kernel_approximation.PolynomialCountSketch",
        "sklearn.kernel_approximation.RBFSampler",
        "sklearn.kernel_approximation.SkewedChi2Sampler",
        "sklearn.kernel_ridge.KernelRidge",
        "sklearn.linear_model._base.LinearRegression",
        "sklearn.linear_model._bayes.ARDRegression",
        "sklearn.linear_model._bayes.BayesianRidge",
        "sklearn.linear_model._coordinate_descent.ElasticNet",
        "sklearn.linear_model._coordinate_descent.ElasticNetCV",
        "sklearn.linear_model._coordinate_descent.Lasso",
        "sklearn.linear_model._coordinate_descent.LassoCV",
        "sklearn.linear_model._coordinate_descent.MultiTaskElasticNet",
        "sklearn.linear_model._coordinate_descent.MultiTaskElasticNetCV",
        "sklearn.linear_model._coordinate_descent.MultiTaskLasso",
        "sklearn.linear_model._coordinate_descent.MultiTaskLassoCV",
        "sklearn.linear_model._glm.glm.GammaRegressor",
        "sklearn.linear_model._glm.glm.PoissonRegressor",
        "sklearn.linear_model._glm.glm.TweedieRegressor",
        "sklearn.linear_model._huber.HuberRegressor",
        "sklearn.linear_model._least_angle.Lars",
        "sklearn.linear_model._least_angle.LarsCV",
        "sklearn.linear_model._least_angle.LassoLars",
        "sklearn.linear_model._least_angle.LassoLarsCV",
        "sklearn.linear_model._least_angle.LassoLarsIC",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.linear_model._logistic.LogisticRegressionCV",
        "sklearn.linear_model._omp.OrthogonalMatchingPursuit",
        "sklearn.linear_model._omp.OrthogonalMatchingPursuitCV",
        "sklearn.linear_model._passive_aggressive.PassiveAggressiveClassifier",
        "sklearn.linear_model._passive_aggressive.PassiveAggressiveRegressor",
        "sklearn.linear_model._perceptron.Perceptron",
        "sklearn.linear_model._quantile.QuantileRegressor",
        "sklearn.linear_model._ransac.RANSACRegressor",
        "sklearn.linear_model._ridge.Ridge",
        "sklearn.linear_model._ridge.RidgeCV",
        "sklearn.linear_model._ridge.RidgeClassifier",
        "sklearn.linear_model._ridge.RidgeClassifierCV",
        "sklearn.linear_model._stochastic_gradient.SGDClassifier",
        "sklearn.linear_model._stochastic_gradient.SGDOneClassSVM",
        "sklearn.linear_model._stochastic_gradient.SGDRegressor",
        "sklearn.linear_model._theil_sen.TheilSenRegressor",
        "sklearn.manifold._classical_mds.ClassicalMDS",
        "sklearn.manifold._isomap.Isomap",
        "sklearn.manifold._locally_linear.LocallyLinearEmbedding",
        "sklearn.manifold._mds.MDS",
        "sklearn.manifold._spectral_embedding.SpectralEmbedding",
        "sklearn.manifold._t_sne.TSNE",
        "sklearn.mixture._bayesian_mixture.BayesianGaussianMixture",
        "sklearn.mixture._gaussian_mixture.GaussianMixture",
        "sklearn.model_selection._classification_threshold.FixedThresholdClassifier",
        "sklearn.model_selection._classification_threshold.TunedThresholdClassifierCV",
        "sklearn.model_selection._search.GridSearchCV",
        "sklearn.model_selection._search.RandomizedSearchCV",
        "sklearn.multiclass.OneVsOneClassifier",
        "sklearn.multiclass.OneVsRestClassifier",
        "sklearn.multiclass.OutputCodeClassifier",
        "sklearn.multioutput.ClassifierChain",
        "sklearn.multioutput.MultiOutputClassifier",
        "sklearn.multioutput.MultiOutputRegressor",
        "sklearn.multioutput.RegressorChain",
        "sklearn.naive_bayes.BernoulliNB",
        "sklearn.naive_bayes.CategoricalNB",
        "sklearn.naive_bayes.ComplementNB",
        "sklearn.naive_bayes.GaussianNB",
        "sklearn.naive_bayes.MultinomialNB",
        "sklearn.neighbors._classification.KNeighborsClassifier",
        "sklearn.neighbors._classification.RadiusNeighborsClassifier",
        "sklearn.neighbors._graph.KNeighborsTransformer",
        "sklearn.neighbors._graph.RadiusNeighborsTransformer",
        "sklearn.neighbors._kde.KernelDensity",
        "sklearn.neighbors._lof.LocalOutlierFactor",
        "sklearn.neighbors._nca.NeighborhoodComponentsAnalysis",
        "sklearn.neighbors._nearest_centroid.NearestCentroid",
        "sklearn.neighbors._regression.KNeighborsRegressor",
        "sklearn.neighbors._regression.RadiusNeighborsRegressor",
        "sklearn.neighbors._unsupervised.NearestNeighbors",
        "sklearn.neural_network._multilayer_perceptron.MLPClassifier",
        "sklearn.neural_network._multilayer_perceptron.MLPRegressor",
        "sklearn.neural_network._rbm.BernoulliRBM",
        "sklearn.pipeline.FeatureUnion",
        "sklearn.pipeline.Pipeline",
        "sklearn.preprocessing._data.Binarizer",
        "sklearn.preprocessing._data.KernelCenterer",
        "sklearn.preprocessing._data.MaxAbsScaler",
        "sklearn.preprocessing._data.MinMaxScaler",
        "sklearn.preprocessing._data.Normalizer",
        "sklearn.preprocessing._data.PowerTransformer",
        "sklearn.preprocessing._data.QuantileTransformer",
        "sklearn.preprocessing._data.RobustScaler",
        "sklearn.preprocessing._data.StandardScaler",
        "sklearn.preprocessing._discretization.KBinsDiscretizer",
        "sklearn.preprocessing._encoders.OneHotEncoder",
        "sklearn.preprocessing._encoders.OrdinalEncoder",
        "sklearn.preprocessing._label.LabelBinarizer",
        "sklearn.preprocessing._label.LabelEncoder",
        "sklearn.preprocessing._label.MultiLabelBinarizer",
        "sklearn.preprocessing._polynomial.PolynomialFeatures",
        "sklearn.preprocessing._polynomial.SplineTransformer",
        "sklearn.preprocessing._target_encoder.TargetEncoder",
        "sklearn.random_projection.GaussianRandomProjection",
        "sklearn.random_projection.SparseRandomProjection",
        "sklearn.semi_supervised._label_propagation.LabelPropagation",
        "sklearn.semi_supervised._label_propagation.LabelSpreading",
        "sklearn.semi_supervised._self_training.SelfTrainingClassifier",
        "sklearn.svm._classes.LinearSVC",
        "sklearn.svm._classes.LinearSVR",
        "sklearn.svm._classes.NuSVC",
        "sklearn.svm._classes.NuSVR",
        "sklearn.svm._classes.OneClassSVM",
        "sklearn.svm._classes.SVC",
        "sklearn.svm._classes.SVR",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._classes.DecisionTreeRegressor",
        "sklearn.tree._classes.ExtraTreeClassifier",
        "sklearn.tree._classes.ExtraTreeRegressor",
    ]
)

#: Estimators that exist to call a callable they hold on the data (`func`, `inverse_func`):
#: flagged even though loading them calls nothing, as the callable is the whole model.
EXCLUDED: frozenset[str] = frozenset(
    [
        "sklearn.preprocessing._function_transformer.FunctionTransformer",
        "sklearn.compose._target.TransformedTargetRegressor",
    ]
)

#: The parts fitted estimators hold and pickle by name: each argued in docs/scanners.md.
SKLEARN_PARTS: frozenset[str] = frozenset(
    [
        # Cython trees: `Tree(n_features, n_classes, n_outputs)`, then `__setstate__` checks the
        # node and value arrays' dtypes and shapes and copies them; `KDTree`/`BallTree` are
        # built by `newObj(cls)` (`cls.__new__(cls)`, the class an import judged on its own)
        # and given their arrays and distance metric.
        "sklearn.tree._tree.Tree",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._kd_tree.KDTree64",
        "sklearn.neighbors._kd_tree.KDTree32",
        "sklearn.neighbors._kd_tree.newObj",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.neighbors._ball_tree.BallTree64",
        "sklearn.neighbors._ball_tree.BallTree32",
        "sklearn.neighbors._ball_tree.newObj",
        "sklearn.metrics._dist_metrics.newObj",
        # Distance metrics: `__setstate__` sets `p`, `vec` and `mat`. `PyFuncDistance`, which
        # calls the function it holds, is not listed.
        *(
            f"sklearn.metrics._dist_metrics.{name}Distance{bits}"
            for bits in ("64", "32")
            for name in (
                "Euclidean",
                "SEuclidean",
                "Manhattan",
                "Chebyshev",
                "Minkowski",
                "Mahalanobis",
                "Hamming",
                "Canberra",
                "BrayCurtis",
                "Jaccard",
                "Matching",
                "Dice",
                "Kulsinski",
                "RogersTanimoto",
                "RussellRao",
                "SokalMichener",
                "SokalSneath",
                "Haversine",
            )
        ),
        # Gradient boosting internals: binning, the fitted tree predictors, losses and links
        # (values, and Cython loss objects rebuilt from their parameters).
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        *(
            f"sklearn._loss.loss.{name}"
            for name in (
                "HalfSquaredError",
                "AbsoluteError",
                "PinballLoss",
                "HuberLoss",
                "HalfPoissonLoss",
                "HalfGammaLoss",
                "HalfTweedieLoss",
                "HalfTweedieLossIdentity",
                "HalfBinomialLoss",
                "ExponentialLoss",
                "HalfMultinomialLoss",
            )
        ),
        *(
            f"sklearn._loss._loss.Cy{name}"
            for name in (
                "HalfSquaredError",
                "AbsoluteError",
                "PinballLoss",
                "HuberLoss",
                "HalfPoissonLoss",
                "HalfGammaLoss",
                "HalfTweedieLoss",
                "HalfTweedieLossIdentity",
                "HalfBinomialLoss",
                "ExponentialLoss",
                "HalfMultinomialLoss",
            )
        ),
        *(
            f"sklearn._loss.link.{name}"
            for name in (
                "Interval",
                "IdentityLink",
                "LogLink",
                "LogitLink",
                "HalfLogitLink",
                "MultinomialLogit",
            )
        ),
        # SGD's loss functions (Cython, rebuilt from one number) and the MLP's optimisers.
        *(
            f"sklearn.linear_model._sgd_fast.{name}"
            for name in (
                "Hinge",
                "SquaredHinge",
                "ModifiedHuber",
                "EpsilonInsensitive",
                "SquaredEpsilonInsensitive",
            )
        ),
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
        # What a fitted search or selector keeps: cross-validation splitters, the default scorer.
        *(
            f"sklearn.model_selection._split.{name}"
            for name in (
                "KFold",
                "StratifiedKFold",
                "GroupKFold",
                "StratifiedGroupKFold",
                "ShuffleSplit",
                "StratifiedShuffleSplit",
                "GroupShuffleSplit",
                "RepeatedKFold",
                "RepeatedStratifiedKFold",
                "TimeSeriesSplit",
                "LeaveOneOut",
                "LeavePOut",
                "LeaveOneGroupOut",
                "LeavePGroupsOut",
                "PredefinedSplit",
            )
        ),
        "sklearn.metrics._scorer._PassthroughScorer",
        # Estimator parameters that are NumPy scalar types (`dtype=np.float64`): calling one
        # builds a number.
        *(
            f"numpy.{name}"
            for name in (
                "float16",
                "float32",
                "float64",
                "int8",
                "int16",
                "int32",
                "int64",
                "uint8",
                "uint16",
                "uint32",
                "uint64",
                "bool_",
                "complex64",
                "complex128",
            )
        ),
    ]
)

SKLEARN_GLOBALS: frozenset[str] = SKLEARN_ESTIMATORS | SKLEARN_PARTS
