"""Metering and settlement: signed meter readings, the delivery check, imbalance paid from collateral.

Readings (``submit_readings``): a meter signs cumulative import/export
registers (OBIS 1.8.0 / 2.8.0, Wh) at a slot end. A slot's flow is the
difference to the meter's previous reading; it counts for the slot only if the
previous reading (or the meter's registration) is at or after the slot's
start. After a gap the reading re-bases the registers and the slot counts as
zero flow (the energy of the unreported slots cannot be told apart).

Settlement (begin-block): at the first block after ``slot_end +
settlement_window_s`` every participant with a trade or a counted reading in
the slot is settled, at most ``settlement_batch`` per block, in account-id
order: contracted C = sold - bought, measured M = exported - imported,
deviation D = M - C. Trades were paid when they were made; D < 0 is bought from
the balancing LPD at ``balancing_buy_price`` (paid from the released
collateral first, then the free balance, the rest recorded as debt); D > 0 is
bought by the LPD at ``balancing_sell_price``. The slot's collateral is
released. Each party's result is stored as its settlement report.

Keys are in ``keys.py``; the block step is ``settle.py``.
"""

# The messages are the module's public API for clients (the CLI, tools, tests).
from abci_app.ledger.modules.settlement.msgs import Reading, SubmitReadings, reading_sign_bytes

__all__ = ["Reading", "SubmitReadings", "reading_sign_bytes"]
