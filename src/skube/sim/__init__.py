"""The cost simulator: workload traces (:mod:`.trace`) replayed on a real skube control
plane under an accelerated clock (:mod:`.runner`) for each strategy (:mod:`.strategies`),
priced with the billing code and reported as a table, CSV and chart (:mod:`.report`)."""
