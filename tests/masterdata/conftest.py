from tests.masterdata.test_master_data import plant  # noqa: F401  (the same plant for every master-data test)
