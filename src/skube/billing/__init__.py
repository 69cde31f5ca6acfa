"""Billing: per-second metering of virtual-node instances by their rounded size
(``specs``), price tables (``prices``), the per-node ledger (``ledger``), the
node's hook (``meter``) and bills (``report``)."""
from .ledger import Ledger, Run
from .meter import Meter
from .prices import Price, PriceTable
from .report import Report, build_report, find_ledgers, load_runs
from .specs import ECI, FARGATE, Spec, SpecTable, spec_table

__all__ = ["Ledger", "Run", "Meter", "Price", "PriceTable", "Report", "build_report", "find_ledgers",
           "load_runs", "ECI", "FARGATE", "Spec", "SpecTable", "spec_table"]
