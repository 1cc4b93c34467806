"""Closed-form latency of one serving replica under Poisson load (vectorized; seconds).

The system (docs/model.md ("Serving"), "Load and latency"): requests arrive as a Poisson stream of rate lam,
each with P prompt tokens and O output tokens. The replica runs iterations back to back while it has work
(continuous, mixed batching: Orca, Yu et al. OSDI 2022; Sarathi-Serve, Agrawal et al. OSDI 2024). An
iteration takes every decoding sequence one token further and the prompt tokens of requests admitted when
it started (at most C of them when prefill is chunked). An iteration with n decoding sequences and k prompt
tokens lasts tau(n, k) (`StepModel`). A request holds one of B slots from admission to its last token.

The approximation (each part is spelled out in docs/model.md ("Serving")):
  * mean iteration: n = lam*(O-1)*tau and k = lam*P*tau by Little's law, so tau solves
    tau = tau(lam*(O-1)*tau, lam*P*tau); for the piecewise-linear tau, the larger of the fixed points of its
    two linear pieces;
  * saturation: r = lam*tau requests start per iteration, at most B/(prefill iterations + O - 1) (slots)
    and C/P (prompt budget): the highest stable rate;
  * iteration chain: prompt work pending at each iteration start is a Markov chain (Poisson arrivals during
    an iteration whose length depends on the work it takes); its stationary law gives the distribution of
    iteration lengths, which are convex in the prompt tokens (max of memory and compute);
  * TPOT = mean of the O-1 iterations a request decodes through: the chain's moments averaged with their
    lag-one autocorrelation, plus the decoding count n as a birth-death process (linear-noise
    approximation); percentiles by the Cornish-Fisher expansion;
  * TTFT = rest of the iteration in progress (length-biased) + the iterations until the prompt is done,
    behind the prompts gated into the same iteration at a uniform place; an arrival to an empty replica
    (M/G/inf probability) starts at once; near saturation, a wait for a slot (Erlang C, and an exponential
    conditional wait from the M/D/c characteristic root).
Checked against a discrete-event simulation of the same system in tests/test_queueing_des.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Z = {0.5: 0.0, 0.9: 1.2815515655446004, 0.95: 1.6448536269514722, 0.99: 2.3263478740408408}
_BISECT = 40
# Largest iteration chain (pending prompt units); beyond it, the backlog of a prompt budget run above ~90%
# is truncated and TTFT tails read low (docs/model.md ("Serving"), "Limits").
MAX_STATES = 96
# Three-point Gauss-Hermite rule for a standard normal (nodes, weights).
HERMITE = ((-1.7320508075688772, 1.0 / 6.0), (0.0, 2.0 / 3.0), (1.7320508075688772, 1.0 / 6.0))
# Cumulative-probability edges of the merged TTFT components: 5% steps to 0.9, then ever finer steps.
MASS_EDGES = np.concatenate([np.linspace(0.05, 0.9, 18), 1.0 - 0.1 * 0.8 ** np.arange(1, 31)])


@dataclass
class StepModel:
    """tau(n, k) = max(mem(n, k), compute(n, k)) + a_n*n + a_k*k + c0 (seconds), every field an array.

    mem = w_dense + w_expert * (1 - (1 - topk_frac)^((n + k)/micro)): weights streamed from HBM (MoE: the
    experts that n + k tokens touch). compute = g_n*n + g_k*k + g0: the GEMMs. a_n: KV-cache reads and
    communication per decoding sequence; a_k: prompt attention and communication per prompt token; c0:
    latencies and overheads per iteration.
    """

    w_dense: np.ndarray
    w_expert: np.ndarray
    topk_frac: np.ndarray
    micro: np.ndarray
    g_n: np.ndarray
    g_k: np.ndarray
    g0: np.ndarray
    a_n: np.ndarray
    a_k: np.ndarray
    c0: np.ndarray

    def mem(self, n, k):
        if not np.any(self.w_expert > 0):
            return self.w_dense + 0.0 * (n + k)
        tokens = np.maximum((n + k) / self.micro, 0.0)
        touched = np.where(self.topk_frac < 1.0, 1.0 - (1.0 - self.topk_frac) ** tokens, 1.0)
        return self.w_dense + self.w_expert * touched

    def compute(self, n, k):
        return self.g_n * n + self.g_k * k + self.g0

    def time(self, n, k):
        return np.maximum(self.mem(n, k), self.compute(n, k)) + self.a_n * n + self.a_k * k + self.c0

    def solve(self, m, p):
        """tau solving tau = time(m*tau, p*tau) (m = lam*(O-1), p = lam*P); inf where no finite solution.

        With the weights term frozen, time() is the larger of two lines in tau, and the fixed point of a
        maximum of lines with slopes below one is the larger of their fixed points. MoE rows repeat this
        with the weights term updated to the experts touched at the last estimate (it rises with tau)."""
        lin = self.a_n * m + self.a_k * p
        slope_c = lin + self.g_n * m + self.g_k * p
        w = self.w_dense.copy()
        tau = np.zeros_like(w)
        for _ in range(6):
            t_mem = np.where(lin < 1.0, (w + self.c0) / np.maximum(1.0 - lin, 1e-300), np.inf)
            t_cmp = np.where(slope_c < 1.0, (self.g0 + self.c0) / np.maximum(1.0 - slope_c, 1e-300), np.inf)
            tau = np.maximum(t_mem, t_cmp)
            finite = np.isfinite(tau)
            w = np.where(finite, self.mem(m * np.where(finite, tau, 0.0), p * np.where(finite, tau, 0.0)), w)
        return tau


@dataclass
class Load:
    """The operating point of each row: lam (requests/s per replica), P, O, C (prompt tokens per iteration;
    inf = not chunked), B (slots)."""

    lam: np.ndarray
    prompt: np.ndarray
    output: np.ndarray
    chunk: np.ndarray
    slots: np.ndarray


def prefill_iterations(load: Load) -> np.ndarray:
    """Iterations a prompt needs on its own: ceil(P/C), at least one."""
    return np.maximum(np.ceil(load.prompt / load.chunk), 1.0)


def saturation(step: StepModel, load: Load) -> dict[str, np.ndarray]:
    """Highest stable request rate: r = lam*tau requests start per iteration, limited by the slots
    (B / (prefill iterations + O - 1)) and by the prompt budget (C / P)."""
    hold = prefill_iterations(load) + load.output - 1.0
    r = np.minimum(load.slots / hold, load.chunk / load.prompt)
    n, k = r * (load.output - 1.0), r * load.prompt
    tau = step.time(n, k)
    return {"lam": r / tau, "tau": tau, "n": n, "k": k, "r": r}


def mean_point(step: StepModel, load: Load) -> dict[str, np.ndarray]:
    """Mean iteration length and occupancy at rate lam (mean-value analysis)."""
    lam = load.lam
    tau = step.solve(lam * (load.output - 1.0), lam * load.prompt)
    tau = np.where(lam > 0, tau, step.time(0.0 * lam, 0.0 * lam))
    n = lam * (load.output - 1.0) * tau
    k = np.minimum(lam * load.prompt * tau, load.chunk)
    return {"tau": tau, "n": n, "k": k}


def _erlang_c(c: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Probability that an arrival waits in M/M/c with offered load a: the Erlang B recursion up to
    c = 64, the Halfin-Whitt normal approximation above (Halfin & Whitt 1981)."""
    c = np.asarray(c, dtype=float)
    a = np.asarray(a, dtype=float)
    rho = np.where(c > 0, a / np.maximum(c, 1e-300), 1.0)
    b = np.ones_like(a)
    small = np.full_like(a, np.nan)
    for j in range(1, 65):
        b = a * b / (j + a * b)
        small = np.where(c == j, b, small)
    exact = np.where(rho < 1, small / np.maximum(1.0 - rho * (1.0 - small), 1e-300), 1.0)
    beta = (c - a) / np.sqrt(np.maximum(a, 1e-300))
    phi = np.exp(-0.5 * beta**2) / np.sqrt(2 * np.pi)
    cdf = 0.5 * (1.0 + _erf(beta / np.sqrt(2.0)))
    hw = 1.0 / (1.0 + beta * cdf / np.maximum(phi, 1e-300))
    out = np.where(c <= 64, exact, np.where(beta > 0, hw, 1.0))
    return np.clip(np.nan_to_num(out, nan=1.0), 0.0, 1.0)


def _mdc_wait_rate(c: np.ndarray, a: np.ndarray, hold: np.ndarray) -> np.ndarray:
    """Rate of the exponential wait for a slot, given a wait, in M/D/c with offered load a and holding time H.

    Seen every H, the queue gains Poisson(a) and loses c, so the number waiting has the geometric tail z^-n,
    z > 1 the root of z^c = exp(a*(z - 1)) (Crommelin 1932). An arrival that waits finds a geometric number
    ahead of it (ratio 1/z) and the c busy slots free at about c/H: its wait is exponential with rate
    (c/H)*(1 - 1/z), which tends to Kingman's 2*(c - a)/H in heavy traffic."""
    c = np.where(np.isfinite(c), c, 1e9)
    ratio = np.clip(a / np.maximum(c, 1e-300), 1e-9, 1.0 - 1e-9)
    # Solve c*ln(z) = a*(z - 1) for z > 1 by Newton's method from above (the difference is concave).
    z = np.maximum(2.0 / ratio, 2.0)
    for _ in range(60):
        f = c * np.log(z) - a * (z - 1.0)
        df = c / z - a
        z = np.maximum(z - f / np.where(np.abs(df) > 1e-300, df, -1e-300), 1.0 + 1e-12)
    return c * (1.0 - 1.0 / z) / np.maximum(hold, 1e-300)


def _erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7)."""
    s = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = ((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592
    y = 1.0 - poly * t * np.exp(-x * x)
    return s * y


@dataclass
class Latency:
    """Everything the percentiles need, per row (see `latency`). The components are the heaviest
    (chain state, other arrivals, decoding count) cases, the rest of the mass lumped into one at its mean."""

    tau: np.ndarray  # mean iteration length
    n: np.ndarray  # mean decoding sequences
    tpot_mean: np.ndarray
    tpot_sd: np.ndarray
    tpot_skew: np.ndarray
    tpot_floor: np.ndarray  # the shortest iteration a decoding request can see: itself alone, no prompts
    p_idle: np.ndarray  # an arrival finds the replica empty ...
    ttft_idle: np.ndarray  # ... and its TTFT is then this
    comp_weight: np.ndarray  # [rows, M] mixture components of the busy-arrival TTFT: probability ...
    comp_width: np.ndarray  # ... residual of the iteration in progress, ~ U(0, width) ...
    comp_time: np.ndarray  # ... plus the time from its end to the first token
    p_wait: np.ndarray  # wait for a slot, with probability p_wait ...
    wait_rate: np.ndarray  # ... exponential with this rate
    stable: np.ndarray
    utilization: np.ndarray
    lam_sat: np.ndarray

    def ttft_cdf(self, t: np.ndarray) -> np.ndarray:
        """P(TTFT <= t) for each row: a mixture of uniform residuals shifted by the time to the first token,
        convolved with the exponential slot wait where there is one."""
        t = np.asarray(t, dtype=float)[:, None]
        w = np.maximum(self.comp_width, 1e-12)
        y = t - self.comp_time
        no_wait = np.clip(y / w, 0.0, 1.0)
        th = np.maximum(self.wait_rate[:, None], 1e-12)
        tw = np.minimum(th * w, 700.0)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            inside = y / w - (1.0 - np.exp(-th * np.maximum(y, 0.0))) / tw
            beyond = 1.0 - np.exp(-th * y) * np.expm1(tw) / tw
        waited = np.where(y <= 0, 0.0, np.where(y < w, inside, beyond))
        waited = np.clip(np.nan_to_num(waited, nan=1.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
        pw = self.p_wait[:, None]
        busy = np.sum(self.comp_weight * ((1.0 - pw) * no_wait + pw * waited), axis=1)
        idle = (t[:, 0] >= self.ttft_idle).astype(float)
        return self.p_idle * idle + (1.0 - self.p_idle) * busy

    def ttft_quantile(self, q: float) -> np.ndarray:
        lo = np.zeros_like(self.tau)
        top = np.max(self.comp_time + self.comp_width, axis=1)
        hi = (
            np.maximum(top, self.ttft_idle) + np.where(self.p_wait > 0, 50.0 / np.maximum(self.wait_rate, 1e-12), 0.0)
        ) * 1.01 + 1e-9
        for _ in range(_BISECT):
            mid = 0.5 * (lo + hi)
            below = self.ttft_cdf(mid) < q
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        return np.where(self.stable, hi, np.nan)

    def _busy_mean(self) -> np.ndarray:
        return np.sum(self.comp_weight * (self.comp_time + self.comp_width / 2), axis=1) + self.p_wait / np.maximum(
            self.wait_rate, 1e-12
        )

    def ttft_mean(self) -> np.ndarray:
        return np.where(self.stable, self.p_idle * self.ttft_idle + (1 - self.p_idle) * self._busy_mean(), np.nan)

    def queue_mean(self) -> np.ndarray:
        """Mean wait before the prompt is first scheduled: the rest of the iteration in progress, and a slot."""
        busy = np.sum(self.comp_weight * self.comp_width, axis=1) / 2 + self.p_wait / np.maximum(self.wait_rate, 1e-12)
        return np.where(self.stable, (1 - self.p_idle) * busy, np.nan)

    def tpot_quantile(self, q: float) -> np.ndarray:
        z = Z[q]
        skew = np.clip(self.tpot_skew, -2.0, 2.0)
        value = self.tpot_mean + self.tpot_sd * (z + (z * z - 1.0) * skew / 6.0)
        return np.where(self.stable, np.maximum(value, self.tpot_floor), np.nan)


def _poisson(mu: np.ndarray, size: int) -> np.ndarray:
    """Poisson probabilities of 0..size-1 along a new last axis; the tail beyond is added to the last."""
    kk = np.arange(size, dtype=float)
    logf = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1.0, size)))])
    mu = np.asarray(mu, dtype=float)[..., None]
    pmf = np.where(mu > 0, np.exp(kk * np.log(np.maximum(mu, 1e-300)) - mu - logf), (kk == 0).astype(float))
    pmf[..., -1] += np.clip(1.0 - pmf.sum(axis=-1), 0.0, None)
    return pmf


def _units(load: Load):
    """The chain counts pending prompt work in units of u = min(P, C) tokens: a prompt is m_p = P/u units,
    an iteration clears m_c = C/u of them (both rounded, at least one), so a long chunked prompt counts
    down deterministically instead of leaving at a random iteration."""
    u = np.minimum(load.prompt, load.chunk)
    m_p = np.maximum(np.round(load.prompt / u), 1.0)
    m_c = np.maximum(np.floor(np.where(np.isfinite(load.chunk), load.chunk / u, 1e9)), 1.0)
    return u, m_p, m_c


def _chain(step: StepModel, load: Load, n: np.ndarray, size: int):
    """Iteration lengths and the stationary law of prompt work pending when an iteration starts.

    State j: j units pending. The iteration takes k_j = min(j, m_c)*u prompt tokens and lasts
    x_j = tau(n, k_j); max(j - m_c, 0) units stay and m_p units join for each of the Poisson(lam*x_j)
    prompts that arrive meanwhile."""
    u, m_p, m_c = (a[:, None] for a in _units(load))
    j = np.arange(size, dtype=float)[None, :]
    k = np.minimum(j, m_c) * u
    x = step_time_rows(step, n[:, None], k)
    left = np.maximum(j - m_c, 0.0)
    rows = x.shape[0]
    pmf = _poisson(load.lam[:, None] * x, size)  # [rows, J(from), A(arrivals)]
    a = np.arange(size, dtype=float)[None, None, :]
    dest = (left[:, :, None] + m_p[:, :, None] * a).astype(np.int64)
    ok = dest < size
    r_i, j_i, _ = np.nonzero(ok)
    trans = np.zeros((rows, size, size))
    trans[r_i, j_i, dest[ok]] = pmf[ok]
    trans[:, :, -1] += np.clip(1.0 - trans.sum(axis=2), 0.0, None)
    # Stationary law: w (T - I) = 0 with sum(w) = 1, as one batched linear solve.
    lhs = np.swapaxes(trans, 1, 2) - np.eye(size)[None]
    lhs[:, -1, :] = 1.0
    rhs = np.zeros((rows, size, 1))
    rhs[:, -1, 0] = 1.0
    w = np.clip(np.linalg.solve(lhs, rhs)[..., 0], 0.0, None)
    w /= np.maximum(w.sum(axis=1, keepdims=True), 1e-300)
    return x, k, w, trans, left


def latency(step: StepModel, load: Load, size: int | None = None, compress: bool = True) -> Latency:
    """The latency approximation at each row's rate (rows at or past saturation are marked unstable)."""
    lam, P, O, C = load.lam, load.prompt, load.output, load.chunk
    sat = saturation(step, load)
    util = np.where(sat["lam"] > 0, lam / sat["lam"], np.inf)
    stable = util < 1.0
    lam_c = np.where(stable, lam, sat["lam"] * 0.999)
    load_c = Load(lam_c, P, O, C, load.slots)
    # Grid sizes: pending prompt units (J) and arrivals during one iteration (K), each covering the
    # Poisson mean plus eight standard deviations at this load (iterations up to four times the mean).
    mu = lam_c * sat["tau"] * 4.0
    mu_hi = float(np.nanmax(mu, initial=0.0))
    arrivals = int(min(mu_hi + 8.0 * np.sqrt(mu_hi) + 6.0, 160.0))
    if size is None:
        # ... and, when the prompt budget C is near full, the backlog of an M/D/1-like prompt queue, whose
        # tail falls about e-fold per rho/(1 - rho) prompts (four e-folds kept).
        _, m_p, _ = _units(load_c)
        rho_p = np.clip(lam_c * P * sat["tau"] / C, 0.0, 0.97)
        backlog = 4.0 * m_p * rho_p / (1.0 - rho_p)
        units = float(np.nanmax(mu * m_p + 8.0 * np.sqrt(mu) * m_p + backlog, initial=0.0))
        size = int(min(max(units + 8.0, 12.0), MAX_STATES))

    tau = mean_point(step, load_c)["tau"]
    tau = np.where(np.isfinite(tau), tau, sat["tau"])
    # No more sequences decode than the slots hold (the decoding share of B at saturation).
    n_cap = sat["r"] * (O - 1.0)
    for _ in range(2):
        n = np.minimum(lam_c * (O - 1.0) * tau, n_cap)
        x, k, w, trans, left = _chain(step, load_c, n, size)
        tau = np.sum(w * x, axis=1)
    n = np.minimum(lam_c * (O - 1.0) * tau, n_cap)

    # While a request decodes it holds one of B slots: others are admitted (and their prompts mixed into
    # its iterations) no faster than the other B - 1 slots free, (B - 1)/H with H the holding time.
    n_alone = prefill_iterations(load)
    hold = (n_alone + O - 1.0) * tau
    lam_tag = np.minimum(lam_c, np.maximum(load.slots - 1.0, 0.0) / np.maximum(hold, 1e-300))
    if np.any(lam_tag < lam_c * (1.0 - 1e-9)):
        load_tag = Load(lam_tag, P, O, C, load.slots)
        n_tag = np.minimum(n, np.maximum(load.slots - 1.0, 0.0))
        x_t, k_t, w_t, trans_t, _ = _chain(step, load_tag, n_tag, size)
        tpot_mean, sd, skew, var_n = _tpot_moments(step, load_tag, n_tag, tau, x_t, k_t, w_t, trans_t)
        var_n = np.where(lam_tag < lam_c, _tpot_moments(step, load_c, n, tau, x, k, w, trans)[3], var_n)
    else:
        tpot_mean, sd, skew, var_n = _tpot_moments(step, load_c, n, tau, x, k, w, trans)
    comp = _ttft_mixture(step, load_c, n, var_n, size, arrivals, (x, k, w, trans, left), compress)

    ttft_idle = step.time(0.0 * P, np.minimum(P, C)) * n_alone
    t_sys = np.sum(comp[0] * (comp[2] + comp[1] / 2), axis=1) + (O - 1.0) * tpot_mean
    p_idle = np.where(lam_c > 0, np.exp(-lam_c * t_sys), 1.0)

    occupancy = lam_c * hold
    p_wait = np.where(np.isfinite(load.slots), _erlang_c(load.slots, occupancy), 0.0)
    # Given a wait, it is exponential (holding times are nearly deterministic: M/D/c).
    wait_rate = _mdc_wait_rate(load.slots, occupancy, hold)

    return Latency(
        tau=tau,
        n=n,
        tpot_mean=tpot_mean,
        tpot_sd=sd,
        tpot_skew=skew,
        tpot_floor=step.time(1.0 + 0.0 * n, 0.0 * n),
        p_idle=p_idle,
        ttft_idle=ttft_idle,
        comp_weight=comp[0],
        comp_width=comp[1],
        comp_time=comp[2],
        p_wait=p_wait,
        wait_rate=wait_rate,
        stable=stable,
        utilization=util,
        lam_sat=sat["lam"],
    )


def _compress(weight: np.ndarray, width: np.ndarray, time: np.ndarray):
    """Merge mixture components into at most len(MASS_EDGES)+1 groups per row: sorted by time, grouped by
    cumulative probability (finer toward the tail, so high percentiles keep their shape), each group
    replaced by one component at its probability-weighted mean width and time."""
    rows = weight.shape[0]
    weight, width, time = (a.reshape(rows, -1) for a in (weight, width, time))
    order = np.argsort(time + width / 2, axis=1)
    weight, width, time = (np.take_along_axis(a, order, axis=1) for a in (weight, width, time))
    total = np.maximum(weight.sum(axis=1, keepdims=True), 1e-300)
    weight = weight / total
    mid = np.cumsum(weight, axis=1) - weight / 2
    groups = len(MASS_EDGES) + 1
    gid = np.searchsorted(MASS_EDGES, mid) + groups * np.arange(rows)[:, None]
    size = rows * groups
    w_g = np.bincount(gid.ravel(), weight.ravel(), size)
    width_g = np.bincount(gid.ravel(), (weight * width).ravel(), size) / np.maximum(w_g, 1e-300)
    time_g = np.bincount(gid.ravel(), (weight * time).ravel(), size) / np.maximum(w_g, 1e-300)
    return w_g.reshape(rows, groups), width_g.reshape(rows, groups), time_g.reshape(rows, groups)


def _tpot_moments(step: StepModel, load_c: Load, n, tau, x, k, w, trans):
    """Mean, standard deviation and skewness of a request's TPOT, and the variance of the decoding count.
    A request decodes through O-1 iterations, with itself among the n+1 sequences."""
    lam_c, P, O = load_c.lam, load_c.prompt, load_c.output
    m = np.maximum(O - 1.0, 1.0)
    x_tag = step_time_rows(step, n[:, None] + 1.0, k)
    chain_mean = np.sum(w * x_tag, axis=1)
    dev = x_tag - chain_mean[:, None]
    var = np.sum(w * dev**2, axis=1)
    lag = np.einsum("rj,rj,rjl,rl->r", w, dev, trans, dev)
    phi = np.clip(np.where(var > 0, lag / np.maximum(var, 1e-300), 0.0), -0.9, 0.95)
    k3 = np.sum(w * dev**3, axis=1)
    var_k = var * (1.0 + phi) / (1.0 - phi) / m
    k3_k = k3 * (1.0 - phi**3) / (1.0 - phi) ** 3 / m**2

    # The decoding count n as a birth-death process (linear-noise approximation, van Kampen): arrivals at
    # rate lam each add one sequence and, through their prompt work (a share u of the time), hold back
    # the departures of the others, a jump of 1/(1-u); departures n/((O-1)*tau(n)) slow as n grows, with
    # tau rising c_n/(1-u) per sequence (longer iterations also gather more prompts).
    k_mean = np.sum(w * k, axis=1)
    c_p = step.time(n, k_mean + P) - step.time(n, k_mean)
    u = np.clip(lam_c * c_p, 0.0, 0.95)
    c_n = (step.time(n + 1.0, k_mean) - step.time(n, k_mean)) / (1.0 - u)
    e = np.clip(n * c_n / np.maximum(tau, 1e-300), 0.0, 0.95)
    kappa = (1.0 - e) / np.maximum(m * tau, 1e-300)
    var_n = lam_c * (1.0 / (1.0 - u) ** 2 + 1.0) / (2.0 * np.maximum(kappa, 1e-300))
    # A count confined to [0, B] with mean n varies by at most n(B - n) (Bhatia-Davis inequality).
    slots = np.where(np.isfinite(load_c.slots), load_c.slots, np.inf)
    var_n = np.where(lam_c > 0, np.minimum(var_n, n * np.maximum(slots - n, 0.0)), 0.0)
    # A request sees n weighted by itself (Palm): the excess over Poisson raises its mean iteration; its
    # average of n over a life of L = m*tau keeps 2(kL - 1 + exp(-kL))/(kL)^2 of the variance (an
    # Ornstein-Uhlenbeck average).
    tpot_mean = chain_mean + c_n * np.maximum(var_n / np.maximum(n, 1e-300) - 1.0, 0.0)
    kl = np.maximum(kappa * m * tau, 1e-9)
    keep = np.where(kl > 1e-4, 2.0 * (kl - 1.0 + np.exp(-kl)) / kl**2, 1.0 - kl / 3.0)
    sd = np.sqrt(var_k + c_n**2 * var_n * keep)
    # An over-dispersed count is right-skewed: a negative binomial with this mean and variance has skewness
    # (2 - n/V) * sqrt(V) / n; averaging over the request's life keeps the skewness.
    skew_n = (2.0 - n / np.maximum(var_n, 1e-300)) * np.sqrt(var_n) / np.maximum(n, 1e-300)
    k3_n = np.where(n > 0, skew_n * var_n**1.5, 0.0) * keep**1.5 * c_n**3
    skew = np.where(sd > 0, (k3_k + k3_n) / np.maximum(sd, 1e-300) ** 3, 0.0)

    return tpot_mean, sd, skew, var_n


def _ttft_mixture(step: StepModel, load_c: Load, n, var_n, size: int, arrivals: int, chain, compress: bool):
    """The busy-arrival TTFT as a mixture of shifted uniforms: (probability, width, shift) per component."""
    lam_c = load_c.lam
    x, k, w, trans, left = chain
    # Land in an iteration of state j (length-biased), wait out its rest; the K prompts that arrive during
    # it join this one; it is done after the iterations that clear what is ahead of it. The decoding count
    # n at that moment is spread by a three-point Gauss-Hermite rule; the three cases stack along the
    # state axis.
    u_t, m_p, m_c = (a[:, None, None] for a in _units(load_c))
    kk = np.arange(arrivals, dtype=float)[None, None, :]
    left_mid = left
    spread = np.sqrt(var_n)
    parts = {"weight": [], "next_w": [], "next_t": [], "width": []}
    for offset, q_weight in HERMITE:
        n_q = np.maximum(n + offset * spread, 0.0)
        # More sequences, longer iterations, more prompts pending: the chain at that n.
        x_q, _, w_q, _, left = _chain(step, load_c, n_q, size) if offset else (x, k, w, trans, left_mid)
        parts["weight"].append(q_weight * w_q * x_q / np.maximum(np.sum(w_q * x_q, axis=1, keepdims=True), 1e-300))
        # This prompt sits at a uniform place among the K+1 that arrived during that iteration, behind the
        # work left over: `lo` iterations from the front, up to `hi` from the back. The places that need
        # more than `lo` finish uniformly between `second` and `hi`: that spread joins the residual's
        # uniform width.
        lo = np.maximum(np.ceil((left[:, :, None] + m_p) / m_c), 1.0)
        hi = np.maximum(np.ceil((left[:, :, None] + m_p * (1.0 + kk)) / m_c), lo)
        first = np.clip(np.floor((lo * m_c - left[:, :, None] - m_p) / m_p) + 1.0, 1.0, kk + 1.0)
        p_lo = np.where(hi > lo, first / (kk + 1.0), 1.0)
        second = np.where(hi > lo, np.maximum(np.ceil((left[:, :, None] + m_p * (first + 1.0)) / m_c), lo + 1.0), lo)
        per_iter = step_time_rows3(step, n_q[:, None, None], np.minimum(left[:, :, None] + m_p * (1.0 + kk), m_c) * u_t)
        pmf = _poisson(lam_c[:, None] * x_q, arrivals)
        width = np.broadcast_to(x_q[:, :, None], pmf.shape)
        parts["next_w"].append(np.stack([pmf * p_lo, pmf * (1.0 - p_lo)], axis=-1))
        parts["next_t"].append(np.stack([per_iter * lo, per_iter * second], axis=-1))
        parts["width"].append(np.stack([width, width + per_iter * (hi - second)], axis=-1))
    cur_weight = np.concatenate(parts["weight"], axis=1)
    next_weight = np.concatenate(parts["next_w"], axis=1)
    next_time = np.concatenate(parts["next_t"], axis=1)
    weights, widths = cur_weight[:, :, None, None] * next_weight, np.concatenate(parts["width"], axis=1)
    if compress:  # for percentiles by bisection; a single CDF value (the latency-limit search) needs none
        comp = _compress(weights, widths, next_time)
    else:
        rows = weights.shape[0]
        total = np.maximum(weights.sum(axis=(1, 2, 3)), 1e-300)[:, None, None, None]
        comp = tuple(a.reshape(rows, -1) for a in (weights / total, widths, next_time))
    return comp


def step_time_rows3(step: StepModel, n: np.ndarray, k: np.ndarray) -> np.ndarray:
    """step.time for a [rows, J, K] grid."""
    cols = {f: getattr(step, f)[:, None, None] for f in step.__dataclass_fields__}
    return StepModel(**cols).time(n, k)


def step_time_rows(step: StepModel, n: np.ndarray, k: np.ndarray) -> np.ndarray:
    """step.time for a [rows, K] grid (the step's per-row fields broadcast along the second axis)."""
    cols = {f: getattr(step, f)[:, None] for f in step.__dataclass_fields__}
    return StepModel(**cols).time(n, k)


def max_rate_within(
    step: StepModel,
    load: Load,
    ttft_limit_s: np.ndarray,
    tpot_limit_s: np.ndarray,
    q: float = 0.99,
    iterations: int = 9,
) -> np.ndarray:
    """Highest rate (requests/s per replica) whose q-quantiles of TTFT and TPOT stay within the limits
    (NaN limit: no limit). Both quantiles rise with the rate, so a bisection on lam finds it; 0 where even
    a lone request misses a limit. Nine halvings place it within 0.2% of the saturation rate, finer than
    the model's own accuracy."""
    sat = saturation(step, load)["lam"]
    ttft_lim = np.where(np.isfinite(ttft_limit_s), ttft_limit_s, np.inf)
    tpot_lim = np.where(np.isfinite(tpot_limit_s), tpot_limit_s, np.inf)

    def ok(lam):
        lat = latency(step, Load(lam, load.prompt, load.output, load.chunk, load.slots), compress=False)
        finite_t = np.where(np.isfinite(ttft_lim), ttft_lim, 0.0)
        ttft_ok = np.where(np.isfinite(ttft_lim), lat.ttft_cdf(finite_t) >= q, True)
        tpot_ok = lat.tpot_quantile(q) <= tpot_lim
        return ttft_ok & tpot_ok & lat.stable

    lo = np.zeros_like(sat)
    hi = sat * 0.9999
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        good = ok(mid)
        lo = np.where(good, mid, lo)
        hi = np.where(good, hi, mid)
    return lo
