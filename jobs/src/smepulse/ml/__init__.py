"""UC09 cash-flow forecast and UC10 bank-transaction anomaly detection.

Stage entry points (one module each; predict/detect never import train): ``uc09_train``,
``uc09_predict``, ``uc10_train``, ``uc10_detect``, ``validate``. Shared pieces: ``protocol``
(fit/predict/score/save/load), ``uc09_models`` + ``cashflow``, ``uc10_models``, ``features``,
``holidays``, ``backtest``, ``promotion``, ``registry`` (MLflow), ``pyfunc``, ``data``.
"""
