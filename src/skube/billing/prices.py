"""Price tables: what one second of an instance size costs.

A price is per vCPU-second plus per GiB-second of memory (both ECI and Fargate
bill this way), with an optional minimum billed duration per run (Fargate: one
minute). Each spec table (``eci``, ``fargate``, or a custom one) has its price;
a run recorded under a spec table is priced by the entry of the same name.

Defaults and their sources are in ``docs/billing.md``. Override them with a
YAML file (``skube bill --prices FILE``)::

    currency: USD
    tables:
      eci:     {vcpuPerSecond: 0.0000077, memoryGiBPerSecond: 0.00000096, spotFraction: 0.3}
      fargate: {vcpuPerHour: 0.04048, memoryGiBPerHour: 0.004445, minimumSeconds: 60,
                spot: {vcpuPerHour: 0.0125, memoryGiBPerHour: 0.0014}}   # your current spot rates

Spot runs (pods annotated for spot, see ``specs.SPOT_STRATEGY_ANNOTATION``) pay the
entry's ``spot`` price, or ``spotFraction`` × on-demand (default 0.3). Entries given in the file replace the defaults of the same name; others stay.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml


@dataclass(frozen=True)
class Price:
    vcpu_per_second: float
    memory_gib_per_second: float
    minimum_seconds: float = 0.0
    spot: "Price | None" = field(default=None, compare=False)   # spot price (None: on-demand)

    def for_run(self, spot: bool) -> "Price":
        """The price a run pays: the spot price for spot runs, else this one."""
        return self.spot if spot and self.spot is not None else self

    def per_second(self, vcpu: float, memory_gib: float) -> float:
        """Cost of one second of an instance of that size."""
        return vcpu * self.vcpu_per_second + memory_gib * self.memory_gib_per_second

    def cost(self, vcpu: float, memory_gib: float, seconds: float, *, whole_run: bool = True) -> float:
        """Cost of ``seconds`` of that size; a whole run is billed at least the minimum."""
        if whole_run and seconds > 0:
            seconds = max(seconds, self.minimum_seconds)
        return max(seconds, 0.0) * self.per_second(vcpu, memory_gib)

    @classmethod
    def from_dict(cls, doc: dict) -> "Price":
        def rate(per_second_key: str, per_hour_key: str) -> float:
            if per_second_key in doc:
                return float(doc[per_second_key])
            if per_hour_key in doc:
                return float(doc[per_hour_key]) / 3600.0
            raise ValueError(f"price entry needs {per_second_key} or {per_hour_key}: {doc}")
        on_demand = cls(rate("vcpuPerSecond", "vcpuPerHour"),
                        rate("memoryGiBPerSecond", "memoryGiBPerHour"),
                        float(doc.get("minimumSeconds", 0)))
        if "spot" in doc and "spotFraction" in doc:
            raise ValueError(f"price entry sets both spot and spotFraction: {doc}")
        if "spot" in doc:
            spot = cls.from_dict({"minimumSeconds": on_demand.minimum_seconds, "spotFraction": 1,
                                  **(doc["spot"] or {})})
            return cls(on_demand.vcpu_per_second, on_demand.memory_gib_per_second,
                       on_demand.minimum_seconds, Price(spot.vcpu_per_second, spot.memory_gib_per_second,
                                                        spot.minimum_seconds))
        return on_demand.with_spot_fraction(float(doc.get("spotFraction", DEFAULT_SPOT_FRACTION)))

    def with_spot_fraction(self, fraction: float) -> "Price":
        """This price with a spot price of ``fraction`` × it (0 < fraction <= 1)."""
        if not 0 < fraction <= 1:
            raise ValueError(f"spotFraction must be in (0, 1], not {fraction}")
        spot = Price(self.vcpu_per_second * fraction, self.memory_gib_per_second * fraction,
                     self.minimum_seconds)
        return Price(self.vcpu_per_second, self.memory_gib_per_second, self.minimum_seconds, spot)


# Spot price as a fraction of on-demand, when a table gives no spot price: AWS sells
# Fargate Spot "up to 70% off" and ECI spot instances are sold below pay-as-you-go at a
# market price; 0.3 is that 70%-off ceiling (sources and caveats: docs/billing.md).
DEFAULT_SPOT_FRACTION = 0.3


# Alibaba Cloud ECI list prices (the example prices of the ECI billing docs).
ECI_PRICE = Price(vcpu_per_second=0.0000077,
                  memory_gib_per_second=0.00000096).with_spot_fraction(DEFAULT_SPOT_FRACTION)
# AWS Fargate, Linux/x86, us-east-1 on-demand: USD 0.04048 per vCPU-hour, 0.004445 per
# GB-hour, billed per second with a one-minute minimum.
FARGATE_PRICE = Price(vcpu_per_second=0.04048 / 3600, memory_gib_per_second=0.004445 / 3600,
                      minimum_seconds=60.0).with_spot_fraction(DEFAULT_SPOT_FRACTION)

DEFAULT_PRICES: dict[str, Price] = {"eci": ECI_PRICE, "fargate": FARGATE_PRICE}


@dataclass
class PriceTable:
    """Prices by spec-table name, in one currency."""
    prices: dict[str, Price]
    currency: str = "USD"

    def price(self, table: str) -> Price:
        try:
            return self.prices[table]
        except KeyError:
            raise KeyError(f"no price for spec table {table!r}; priced: {sorted(self.prices)} "
                           f"(add it to the --prices file)") from None

    @classmethod
    def defaults(cls) -> "PriceTable":
        return cls(dict(DEFAULT_PRICES))

    @classmethod
    def from_dict(cls, doc: dict | None, base: "PriceTable | None" = None) -> "PriceTable":
        base = base or cls.defaults()
        doc = doc or {}
        prices = dict(base.prices)
        for name, entry in (doc.get("tables") or {}).items():
            prices[str(name)] = Price.from_dict(entry or {})
        return cls(prices, str(doc.get("currency", base.currency)))

    @classmethod
    def load(cls, path: str | Path | None) -> "PriceTable":
        """The defaults, overridden by the YAML file at ``path`` (if any)."""
        if path is None:
            return cls.defaults()
        doc = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(doc, dict):
            raise ValueError(f"{path}: a price file is a mapping (currency, tables)")
        return cls.from_dict(doc)


__all__ = ["Price", "PriceTable", "ECI_PRICE", "FARGATE_PRICE", "DEFAULT_PRICES", "DEFAULT_SPOT_FRACTION"]
