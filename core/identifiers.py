"""Wire types of the identifiers several domains take in request bodies.

Their patterns are enforced when a body is decoded (api.bodies) and published in the OpenAPI schema from the
same declaration. The checks a pattern cannot express (the id number's checksum and birth date, the registry)
stay with the services, which answer `invalid_id_number`, `identity_mismatch` and so on.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

# ASCII digits only: `\d` would also take full-width and Arabic-Indic digits.
PHONE_PATTERN = r"^(\+86)?1[3-9][0-9]{9}$"
ID_NUMBER_PATTERN = r"^[0-9]{17}[0-9Xx]$"

Phone = Annotated[str, Meta(
    pattern=PHONE_PATTERN, min_length=11, max_length=14,
    description="Mainland mobile number: 11 digits, optionally after +86, without spaces or dashes",
    examples=["13800138000"])]
IdNumber = Annotated[str, Meta(
    pattern=ID_NUMBER_PATTERN, min_length=18, max_length=18,
    description="18-character 公民身份号码 (GB 11643-1999); the check character and birth date are verified too")]
