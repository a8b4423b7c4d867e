"""The graph fixtures (``kg``, ``saved``) live in tests/conftest.py, shared by all folders."""
