"""Helpers shared by the test folders: reference fixtures, tiny models and datasets, the common model tester.

Importable as `testing_utils` because pytest puts `tests/` (the folder of the root conftest) on `sys.path`.
"""
