"""The demo partners: a bank, the merchants of the six 信易+ scenarios, the data sources, a government
department and the peer city 汉中.

Their client ids are drawn from the seed (known before anything is created, so records name their data
sources); their secrets are issued once, when they are created, and only printed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import NamedTuple

from demo.city import streams
from demo.records import DATA_SOURCES
from partners.services import create_partner
from partners.tables import Partner


@dataclass(frozen=True, slots=True)
class PartnerSpec:
    name: str
    kind: str
    scenario: str | None = None
    source: str | None = None  # DATA_SOURCES key for data sources
    # Where partner-started consent returns the citizen (docs/walkthroughs.md: a loopback callback of the tour)
    redirect_uris: tuple[str, ...] = ()


DEMO_PARTNERS: tuple[PartnerSpec, ...] = (
    PartnerSpec("嘉兴银行", "bank", redirect_uris=("http://127.0.0.1:8765/callback",)),
    PartnerSpec("嘉兴南湖旅游区", "merchant", scenario="travel"),  # 信易游
    PartnerSpec("嘉兴市公共自行车服务中心", "merchant", scenario="transit"),  # 信易行
    PartnerSpec("嘉兴禾城汽车租赁有限公司", "merchant", scenario="rental"),  # 信易租
    PartnerSpec("嘉兴市第一医院", "merchant", scenario="medical"),  # 信易医
    PartnerSpec("嘉兴月河客栈", "merchant", scenario="lodging"),  # 信易住
    PartnerSpec("嘉兴市图书馆", "merchant", scenario="reading"),  # 信易阅
    *(PartnerSpec(s.name, "data_source", source=s.key) for s in DATA_SOURCES.values()),
    PartnerSpec("嘉兴市住房和城乡建设局", "government"),
    PartnerSpec("汉中市公共信用信息平台", "city_peer"),
)


class PlannedPartner(NamedTuple):
    spec: PartnerSpec
    client_id: str
    exists: bool


async def _plan_partners(rng: random.Random) -> list[PlannedPartner]:
    """The client id of every demo partner: the existing partner's, or the one the seed will give it.

    Known before anything is created, so records can name their data sources while partners are only
    created once the registry load has succeeded (a failed seed never swallows a one-time secret).
    """
    planned: list[PlannedPartner] = []
    for spec in DEMO_PARTNERS:
        # Drawn for every partner, whether it exists or not, so client ids do not depend on what exists.
        client_id = f"{spec.kind.replace('_', '')[:8]}_{rng.getrandbits(64):016x}"
        row = await Partner.select(Partner.client_id).where(
            ((Partner.name == spec.name) & (Partner.kind == spec.kind)) | (Partner.client_id == client_id)
        ).first()
        planned.append(PlannedPartner(spec, row["client_id"] if row else client_id, row is not None))
    return planned


async def create_partners(planned: list[PlannedPartner], *, create: bool) -> list[dict[str, str | None]]:
    """Create the planned partners that do not exist yet (if `create`); report rows for the CLI.

    Returns:
        One row per partner that exists now, with the client secret of those created by this call
        (None for partners that already existed).
    """
    report: list[dict[str, str | None]] = []
    for spec, client_id, exists in planned:
        secret: str | None = None
        if not exists:
            if not create:
                continue
            issued = await create_partner(name=spec.name, kind=spec.kind, scenario=spec.scenario,
                                          client_id=client_id, redirect_uris=list(spec.redirect_uris) or None,
                                          # the tour's loopback callback; synthetic partners of a demo city
                                          production=False)
            secret = issued.client_secret
        report.append({"name": spec.name, "kind": spec.kind, "client_id": client_id,
                       "client_secret": secret, "scenario": spec.scenario})
    return report


async def plan_partners(seed: int) -> list[PlannedPartner]:
    """The demo partners (and their client ids) a seed will create; data-source records name them."""
    return await _plan_partners(streams(seed).partners)
