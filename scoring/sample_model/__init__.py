"""The sample model: scikit-learn Ridge on the bundled diabetes data set (10 features)."""
