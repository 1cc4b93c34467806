"""Energy, cost and carbon of a training run (vectorized).

IT energy = GPU energy + host energy. A GPU draws gpu_busy_power_fraction x TDP while it computes and its
idle power while it waits (communication, bubbles); the host share (CPUs, memory, NICs, fans, switches)
is the vendor's 8-GPU system maximum less its GPUs' TDP, per GPU, for the whole run.
Facility energy = IT energy x PUE (The Green Grid, PUE definition). Cost = facility kWh x price
+ GPU-hours x rental price. CO2e = facility kWh x grid intensity.
"""

from __future__ import annotations

import numpy as np

from .catalog import Catalog
from .columns import Columns

J_PER_MWH = 3.6e9


def training_energy(r: Columns, cat: Catalog) -> None:
    busy_share = np.clip(r.busy_share, 0.0, 1.0)
    gpu_w = busy_share * r.tdp_w * cat.constant("gpu_busy_power_fraction") + (1 - busy_share) * r.idle_w
    r.gpu_avg_w = gpu_w
    it_w = r.n_gpus * (gpu_w + r.host_w_per_gpu)
    r.it_power_mw = it_w / 1e6
    r.facility_power_mw = r.it_power_mw * r.pue
    r.it_energy_mwh = it_w * r.train_time_s / J_PER_MWH
    r.energy_mwh = r.it_energy_mwh * r.pue
    r.cost_usd = r.energy_mwh * 1000.0 * r.usd_per_kwh + r.gpu_hours * r.gpu_hour_usd
    r.co2_t = r.energy_mwh * 1000.0 * r.gco2_per_kwh / 1e6
    r.tokens_per_kwh = r.train_tokens_total / np.maximum(r.energy_mwh * 1000.0, 1e-30)
