"""The `export NAME=value` lines `xinyi up` prints for the README tour: which demo partner and operator stands
for which shell variable, and the demo citizen to log in as."""

from __future__ import annotations

import shlex

from demo.citizen import DemoCitizen
from demo.seed import SeedReport

# The demo partners whose credentials the README tour uses, by (kind, name) → shell variable prefix.
_TOUR_PARTNERS = {("bank", "嘉兴银行"): "BANK", ("data_source", "嘉兴市中级人民法院"): "SOURCE",
                  ("merchant", "嘉兴南湖旅游区"): "MERCHANT"}
_TOUR_OPERATORS = {"officer": "OFFICER", "partner_admin": "PARTNER_ADMIN"}


def tour_exports(*, api_url: str, report: SeedReport | None, citizen: DemoCitizen | None) -> list[str]:
    """`export NAME=value` lines for the README tour: the API's address, the demo partners' and operators'
    credentials (secrets only when this run issued them) and a demo citizen to log in as and bind."""
    values: dict[str, str] = {"API": api_url}
    for partner in report.partners if report else []:
        prefix = _TOUR_PARTNERS.get((str(partner["kind"]), str(partner["name"])))
        if prefix:
            values[f"{prefix}_ID"] = str(partner["client_id"])
            if partner["client_secret"]:
                values[f"{prefix}_SECRET"] = partner["client_secret"]
    for op in report.operators if report else []:
        prefix = _TOUR_OPERATORS.get(str(op["role"]))
        if prefix:
            values[f"{prefix}_USER"] = str(op["username"])
            if op["password"]:
                values[f"{prefix}_PASSWORD"] = op["password"]
    if citizen is not None:
        values.update(CITIZEN_PHONE=citizen.phone, CITIZEN_NAME=citizen.name, CITIZEN_ID_NUMBER=citizen.id_number,
                      USCC=citizen.enterprise_uscc)
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
