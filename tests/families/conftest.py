from tests.families.reference import reference_code

__all__ = ["reference_code"]
