"""A second synthetic business: Nông Phát, an agricultural-inputs trader (fertiliser,
pesticide, seed, harvest and irrigation supplies) in Buôn Ma Thuột, Đắk Lắk.

Written independently of the models it is meant to test (see docs/second-business.md):
its habits, seasons and anomalies come from how such a trader works, not from the model
code or the first generator's anomaly module. ``build.build_dataset`` returns the same
``Dataset`` as the distributor's generator, so ``generate`` writes it the same way.
"""
