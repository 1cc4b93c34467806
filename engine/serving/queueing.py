"""Closed-form latency of one serving replica under Poisson load (vectorized; seconds).

The system (docs/model.md, "Load and latency"): requests arrive as a Poisson stream of rate lam, each with P
prompt tokens to compute and O output tokens. The replica runs iterations back to back while it has work
(continuous, mixed batching: Orca, Yu et al. OSDI 2022; Sarathi-Serve, Agrawal et al. OSDI 2024). An
iteration takes every decoding sequence `accept` tokens further (1 without speculative decoding) and the
prompt tokens of the requests admitted when it started, at most C of them when prefill is chunked. With n
decoding sequences and k prompt tokens it lasts tau(n, k) (`StepModel`). A request holds one of B slots from
admission to its last token.

The approximation, in closed form with small fixed grids (no Markov chain, no linear solve):
  * mean iteration: n = lam*m*tau (m = (O-1)/accept decode iterations per request) and k = lam*P*tau by
    Little's law; the fixed point of tau = E[tau(n, k)] over the distribution of k below;
  * prompt tokens per iteration: k = min(C, W + P*A), A ~ Poisson(lam*tau) prompts gated from the previous
    iteration, W the backlog of chunked prompt work carried over: zero or exponential, its probability and
    mean the fixed point of Lindley's recursion W' = max(W + P*A - C, 0) on the grid (a two-moment fit);
  * saturation: r = lam*tau requests start per iteration, at most B/(prefill iterations + m) (slots) and
    C/P (prompt budget): the highest stable rate;
  * TPOT = the mean of the m iterations a request decodes through: their mean with the request counted
    among the n + 1 sequences, their variance averaged with the lag-one correlation the backlog carries, the
    decoding count n as a birth-death process (linear-noise approximation), and the spread of output
    lengths (E[1/m]); percentiles by the Cornish-Fisher expansion;
  * TTFT = rest of the iteration in progress (length-biased) + the iterations until the backlog, the prompts
    that arrived before this one and its own prompt are done; an arrival to an empty replica (M/G/inf
    probability) starts at once; near saturation, a wait for a slot (Erlang C, with an exponential
    conditional wait from the M/D/c characteristic root); the own prompt's length spread by a three-point
    rule;
  * preemption (paged KV cache): the chance that the requests in the system need more KV than there is (a
    normal approximation of their summed occupancy); a preempted request pays to rebuild its KV.
Checked against a discrete-event simulation of the same system in tests/test_queueing_des.py.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

Z = {0.5: 0.0, 0.9: 1.2815515655446004, 0.95: 1.6448536269514722, 0.99: 2.3263478740408408}
_BISECT = 36
# Arrivals gated into one iteration: a grid of this many Poisson points (spaced out for large means).
ARRIVAL_POINTS = 11
# The backlog: none, or exponential, integrated by three-point Gauss-Laguerre (nodes in units of its mean).
LAGUERRE = ((0.4157745567834791, 0.7110930099291730), (2.2942803602790417, 0.2785177335692409),
            (6.2899450829374794, 0.0103892565015861))  # fmt: skip
# Three-point Gauss-Hermite rule for a standard normal (nodes, weights).
HERMITE = ((-1.7320508075688772, 1.0 / 6.0), (0.0, 2.0 / 3.0), (1.7320508075688772, 1.0 / 6.0))
_SQRT2 = float(np.sqrt(2.0))
_SQRT_2PI = float(np.sqrt(2 * np.pi))


@dataclass
class StepModel:
    """tau(n, k) = max(mem, compute) + a_n*n + a_k*k + c0 (seconds), every field an array.

    T = (tok_n*n + k)/micro tokens per micro-batch (tok_n: tokens a decoding sequence puts through the model
    per iteration, 1 + drafted tokens with speculative decoding). touched = 1 - (1 - topk_frac)^T: the share of
    a GPU's experts that T tokens reach. mem = w_dense + w_expert*touched: weights streamed from HBM;
    compute = g_n*n + g_k*k + g0 + g_e*touched: the GEMMs on the shape curve (g0 and g_e the curve's padding
    of the token dimension, for dense layers and per touched expert). a_n: KV-cache reads, communication and
    drafting per decoding sequence; a_k: prompt attention and communication per prompt token; c0: launch,
    communication latency and engine costs per iteration.
    """

    w_dense: np.ndarray
    w_expert: np.ndarray
    topk_frac: np.ndarray
    micro: np.ndarray
    tok_n: np.ndarray
    g_n: np.ndarray
    g_k: np.ndarray
    g0: np.ndarray
    g_e: np.ndarray
    a_n: np.ndarray
    a_k: np.ndarray
    c0: np.ndarray

    def __post_init__(self) -> None:
        self._moe = bool((self.w_expert > 0).any())
        self._expanded: dict[int, StepModel] = {}

    def touched(self, n, k):
        if not self._moe:
            return 0.0
        tokens = np.maximum((self.tok_n * n + k) / self.micro, 0.0)
        return np.where(self.topk_frac < 1.0, -np.expm1(tokens * np.log1p(-np.minimum(self.topk_frac, 0.999999))), 1.0)

    def mem(self, n, k):
        return self.w_dense + self.w_expert * self.touched(n, k) + 0.0 * (n + k)

    def compute(self, n, k):
        return self.g_n * n + self.g_k * k + self.g0 + self.g_e * self.touched(n, k)

    def time(self, n, k):
        if not self._moe:
            return (
                np.maximum(self.w_dense, self.g_n * n + self.g_k * k + self.g0) + self.a_n * n + self.a_k * k + self.c0
            )
        t = self.touched(n, k)
        mem = self.w_dense + self.w_expert * t
        cmp = self.g_n * n + self.g_k * k + self.g0 + self.g_e * t
        return np.maximum(mem, cmp) + self.a_n * n + self.a_k * k + self.c0

    def solve(self, m, p):
        """tau solving tau = time(m*tau, p*tau) (m = lam*iterations, p = lam*P); inf where none is finite.

        With the experts' terms frozen, time() is the larger of two lines in tau, and the fixed point of a
        maximum of lines with slopes below one is the larger of their fixed points. MoE rows repeat this with
        the touched share updated at the last estimate (it rises with tau)."""
        lin = self.a_n * m + self.a_k * p
        slope_c = lin + self.g_n * m + self.g_k * p
        touched = np.zeros_like(lin)
        tau = np.zeros_like(lin)
        for _ in range(5 if self._moe else 1):
            w = self.w_dense + self.w_expert * touched
            g = self.g0 + self.g_e * touched
            t_mem = np.where(lin < 1.0, (w + self.c0) / np.maximum(1.0 - lin, 1e-300), np.inf)
            t_cmp = np.where(slope_c < 1.0, (g + self.c0) / np.maximum(1.0 - slope_c, 1e-300), np.inf)
            tau = np.maximum(t_mem, t_cmp)
            fin = np.where(np.isfinite(tau), tau, 0.0)
            touched = np.where(np.isfinite(tau), self.touched(m * fin, p * fin), touched)
        return tau

    def rows(self, index) -> StepModel:
        return StepModel(**{f: getattr(self, f)[index] for f in self.__dataclass_fields__})

    def expand(self, *axes: None) -> StepModel:
        """The per-row fields broadcast over extra trailing axes ([rows, 1, ...]); built once per model (the
        fields are never modified in place: views of them)."""
        out = self._expanded.get(len(axes))
        if out is None:
            shape = (slice(None),) + (None,) * len(axes)
            out = StepModel(**{f: getattr(self, f)[shape] for f in self.__dataclass_fields__})
            self._expanded[len(axes)] = out
        return out


@dataclass
class Load:
    """The operating point of each row: lam (requests/s per replica), P (prompt tokens to compute), O (output
    tokens), C (prompt tokens per iteration; inf = not chunked), B (slots), accept (output tokens per decode
    iteration), p_m2 and o_m2 (E[X^2]/E[X]^2 of prompt and output lengths: 1 = fixed lengths)."""

    lam: np.ndarray
    prompt: np.ndarray
    output: np.ndarray
    chunk: np.ndarray
    slots: np.ndarray
    accept: np.ndarray | float = 1.0
    p_m2: np.ndarray | float = 1.0
    o_m2: np.ndarray | float = 1.0

    def at(self, lam: np.ndarray) -> Load:
        return Load(lam, self.prompt, self.output, self.chunk, self.slots, self.accept, self.p_m2, self.o_m2)

    def rows(self, index) -> Load:
        def pick(x):
            return x[index] if np.ndim(x) else x

        return Load(*(pick(getattr(self, f)) for f in self.__dataclass_fields__))


def decode_iterations(load: Load) -> np.ndarray:
    """Iterations a request decodes through after its first token: (O - 1) / accept."""
    return np.maximum(load.output - 1.0, 0.0) / np.maximum(load.accept, 1e-9)


def prefill_iterations(load: Load) -> np.ndarray:
    """Iterations a prompt needs on its own: ceil(P/C), at least one."""
    return np.maximum(np.ceil(load.prompt / load.chunk), 1.0)


def saturation(step: StepModel, load: Load) -> dict[str, np.ndarray]:
    """Highest stable request rate: r = lam*tau requests start per iteration, limited by the slots
    (B / (prefill iterations + m)) and by the prompt budget (C / P)."""
    m = decode_iterations(load)
    hold = prefill_iterations(load) + m
    r = np.minimum(load.slots / hold, load.chunk / np.maximum(load.prompt, 1e-9))
    n, k = r * m, r * load.prompt
    tau = step.time(n, k)
    return {"lam": r / tau, "tau": tau, "n": n, "k": k, "r": r}


def mean_point(step: StepModel, load: Load) -> dict[str, np.ndarray]:
    """Mean iteration length and occupancy at rate lam (mean-value analysis, Little's law)."""
    lam = load.lam
    m = decode_iterations(load)
    tau = step.solve(lam * m, lam * load.prompt)
    tau = np.where(lam > 0, tau, step.time(0.0 * lam, 0.0 * lam))
    return {"tau": tau, "n": lam * m * tau, "k": np.minimum(lam * load.prompt * tau, load.chunk)}


def _erlang_c(c: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Probability that an arrival waits in M/M/c with offered load a: the Erlang B recursion up to c = 10,
    the Halfin-Whitt normal approximation above (Halfin & Whitt 1981)."""
    c = np.asarray(c, dtype=float)
    a = np.asarray(a, dtype=float)
    small_rows = c <= 10
    any_small = bool(small_rows.any())
    all_small = any_small and bool(small_rows.all())
    if any_small:
        rho = np.where(c > 0, a / np.maximum(c, 1e-300), 1.0)
        small = np.full_like(a, np.nan)
        b = np.ones_like(a)
        top = int(np.max(np.where(small_rows, c, 1)))
        for j in range(1, top + 1):
            b = a * b / (j + a * b)
            small = np.where(c == j, b, small)
        exact = np.where(rho < 1, small / np.maximum(1.0 - rho * (1.0 - small), 1e-300), 1.0)
    if all_small:
        out = exact
    else:  # the normal approximation, where some row needs it
        beta = (c - a) / np.sqrt(np.maximum(a, 1e-300))
        phi = np.exp(-0.5 * np.minimum(beta, 30.0) ** 2) / _SQRT_2PI
        hw = 1.0 / (1.0 + beta * normal_cdf(beta) / np.maximum(phi, 1e-300))
        out = np.where(beta > 0, hw, 1.0)
        if any_small:
            out = np.where(small_rows, exact, out)
    return np.clip(np.where(np.isnan(out), 1.0, out), 0.0, 1.0)


def _mdc_wait_rate(c: np.ndarray, a: np.ndarray, hold: np.ndarray) -> np.ndarray:
    """Rate of the exponential wait for a slot, given a wait, in M/D/c with offered load a and holding time H.

    Seen every H, the queue gains Poisson(a) and loses c, so the number waiting has the geometric tail z^-n,
    z > 1 the root of z^c = exp(a*(z - 1)) (Crommelin 1932). An arrival that waits finds a geometric number
    ahead of it (ratio 1/z) and the c busy slots free at about c/H: its wait is exponential with rate
    (c/H)*(1 - 1/z), which tends to Kingman's 2*(c - a)/H in heavy traffic. With y = ln(z) and r = a/c the
    root solves r (e^y - 1) = y: Newton's method from above (the difference is convex), five steps from a
    bound (y < 2(1/r - 1), and y ~ ln(1/r) + ln ln(1/r) for small r) reach 1e-3."""
    c = np.where(np.isfinite(c), c, 1e9)
    r = np.clip(a / np.maximum(c, 1e-300), 1e-9, 1.0 - 1e-9)
    big = np.log(1.0 / r)
    y = np.minimum(2.0 * (1.0 / r - 1.0), big + 2.0 * np.log1p(big) + 1.0)
    for _ in range(5):
        ey = np.exp(y)
        y = np.maximum(y - (r * (ey - 1.0) - y) / np.maximum(r * ey - 1.0, 1e-300), 1e-12)
    return c * (-np.expm1(-y)) / np.maximum(hold, 1e-300)


def _erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7)."""
    s = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = ((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592
    return s * (1.0 - poly * t * np.exp(-x * x))


def normal_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + _erf(np.asarray(x, dtype=float) / _SQRT2))


EXACT_POINTS = 5  # 0..4 arrivals are their own points; more share spaced bins


def _poisson_grid(mu: np.ndarray, points: int, mix_x: np.ndarray | None = None, mix_w: np.ndarray | None = None):
    """Support and weights of Poisson(mu) on `points` values per row: 0..4 exactly (pmf), then points - 5 evenly
    spaced bins up to the largest mean + 4.5 standard deviations, each holding its bin's mass (normal
    approximation with continuity correction). With mix_x, mix_w ([rows, J]): the mixture of Poisson(mu *
    mix_x[j]) with weights mix_w[j] (mix_x relative to its weighted mean)."""
    mu = np.maximum(mu, 0.0)[:, None]
    rows = mu.shape[0]
    if mix_x is None:
        means, weights = mu[:, :, None], np.ones((rows, 1))
    else:
        assert mix_w is not None, "mix_x comes with its weights"
        means, weights = (mu * mix_x)[:, :, None], mix_w
    live = weights > 1e-7
    top = np.where(live, means[:, :, 0], 0.0).max(axis=1, keepdims=True)
    low = np.where(live, means[:, :, 0], np.inf).min(axis=1, keepdims=True)
    e = EXACT_POINTS
    tail = points - e
    start = np.maximum(float(e), np.floor(low - 4.5 * np.sqrt(low))) - 0.5
    reach = top + 4.5 * np.sqrt(top)
    step = np.maximum(np.ceil((reach + 1.0 - start) / tail), 1.0)
    edges = start + step * np.arange(tail + 1)[None, :]
    a = np.empty((rows, points))
    a[:, :e] = _ARRIVALS
    a[:, e:] = np.round(0.5 * (edges[:, :-1] + edges[:, 1:]))
    logp = np.where(means > 0, _ARRIVALS * np.log(np.maximum(means, 1e-300)) - means - _LOG_FACTORIAL, _LOG_P0)
    exact = np.exp(logp)
    thin = reach < e - 1.0  # all the row's mass on the exact points (the tail ~ 0)
    if thin.all():
        w = np.concatenate([np.sum(weights[:, :, None] * exact, axis=1), np.zeros((rows, tail))], axis=1)
        return a, w / np.maximum(w.sum(axis=1, keepdims=True), 1e-300)
    sd = np.sqrt(np.maximum(means, 1e-12))
    # One normal CDF for every cut: the tail's lower end (to spread the tail's mass: the normal mass below it),
    # the bins' lower edges and the last bin's open end.
    cuts = np.empty((rows, tail + 2))
    cuts[:, 0] = e - 0.5
    cuts[:, 1:-1] = edges[:, :-1]
    cuts[:, -1] = np.inf
    cdf = normal_cdf((cuts[:, None, :] - means) / sd)
    binned = (cdf[:, :, 2:] - cdf[:, :, 1:-1]) / np.maximum(1.0 - cdf[:, :, :1], 1e-12)
    # Rows whose mass sits on the exact points drop the tail, as the shortcut above does for a whole batch.
    binned = np.where(thin[:, :, None], 0.0, binned)
    rest = np.maximum(1.0 - exact.sum(axis=2, keepdims=True), 0.0)
    w = np.sum(weights[:, :, None] * np.concatenate([exact, rest * binned], axis=2), axis=1)
    w /= np.maximum(w.sum(axis=1, keepdims=True), 1e-300)
    return a, w


def _log_factorial(a: np.ndarray) -> np.ndarray:
    """ln(a!) by Stirling's series (exact enough from 0 up: error below 1e-4 at a = 1, zero at 0)."""
    x = a + 1.0
    return (x - 0.5) * np.log(x) - x + 0.5 * np.log(2 * np.pi) + 1.0 / (12.0 * x) - 1.0 / (360.0 * x**3)


# The exact points' arrivals, ln(a!) and the pmf's log at a mean of zero (1 at no arrival).
_ARRIVALS = np.arange(EXACT_POINTS, dtype=float)
_LOG_FACTORIAL = _log_factorial(_ARRIVALS)
_LOG_P0 = np.where(_ARRIVALS == 0, 0.0, -np.inf)


@dataclass
class Iterations:
    """The distribution of one iteration at an operating point, on a grid per row: `weight` of each case,
    its prompt tokens `k` and its length `x` (seconds); and the prompt queue's state."""

    weight: np.ndarray
    k: np.ndarray
    x: np.ndarray
    tau: np.ndarray  # mean length
    n: np.ndarray  # mean decoding sequences
    chunked: np.ndarray  # prompts longer than the budget: served one after another, D = P/C iterations each
    busy: np.ndarray  # share of iterations with prompt work
    full: np.ndarray  # share of iterations whose prompt budget is used up (a backlog waits)
    x_idle: np.ndarray  # an iteration without prompt work
    x_full: np.ndarray  # an iteration with a full budget
    per_iter: np.ndarray  # prompts an iteration can take (C/P, at least 1)


def _budget(load: Load):
    """The prompt budget's rate-independent figures per row: prompts an iteration can take (per_iter = C/P, at
    least 1; inf unchunked), whether prompts are longer than the budget (chunked: P >= C), C (1 where
    unchunked: a divisor) and the prompt tokens of a full iteration (C; 0 where unchunked)."""
    P, C = load.prompt, load.chunk
    finite = np.isfinite(C)
    per_iter = np.where(finite, np.maximum(np.floor(C / np.maximum(P, 1e-9)), 1.0), np.inf)
    return per_iter, finite & (P >= C), np.where(finite, C, 1.0), np.where(finite, C, 0.0)


def _prompt_cases(load: Load, mu: np.ndarray, budget, mix_x=None, mix_w=None):
    """Grid of the prompt tokens an iteration takes: ARRIVAL_POINTS cases of A ~ Poisson(mu) prompts gated
    from the last iteration, at most c = C/P of them, and one case of a full budget (a backlog). The full
    case's weight keeps the work: E[k] = mu*P (prompts never leave without being computed). Prompts longer
    than the budget (P >= C) come in runs of P/C full iterations: two cases, none or full. budget: _budget(load)."""
    P = load.prompt
    per_iter, chunked, c_or_1, k_full = budget
    a, wa = _poisson_grid(mu, ARRIVAL_POINTS, mix_x, mix_w)
    taken = np.minimum(a, per_iter[:, None])
    mean_taken = np.sum(wa * taken, axis=1)
    cap = np.where(np.isfinite(per_iter), per_iter, 1.0)
    p_full = np.where(np.isfinite(per_iter), np.clip((mu - mean_taken) / np.maximum(cap - mean_taken, 1e-12), 0, 1), 0)
    f = np.clip(mu * P / c_or_1, 0.0, 1.0)
    first = np.where(a == 0, 1.0, 0.0)
    w_grid = np.where(chunked[:, None], (1.0 - f)[:, None] * first, wa * (1.0 - p_full)[:, None])
    w_full = np.where(chunked, f, p_full)
    weight = np.concatenate([w_grid, w_full[:, None]], axis=1)
    k_grid = P[:, None] * taken
    k = np.concatenate([k_grid, k_full[:, None]], axis=1)
    return weight, k, chunked, per_iter


def iterations(
    step: StepModel, load: Load, tau0: np.ndarray | None = None, rounds: int = 3, sat: dict | None = None
) -> Iterations:
    """The iteration-length distribution at each row's rate (see the module docstring). sat: the rows'
    saturation(step, load) where the caller has it (it does not depend on the rate)."""
    lam = load.lam
    m = decode_iterations(load)
    tau = mean_point(step, load)["tau"] if tau0 is None else tau0
    tau = np.where(np.isfinite(tau), tau, (saturation(step, load) if sat is None else sat)["tau"])
    ex = step.expand(None)
    budget = _budget(load)
    mix_x = mix_w = None
    for _ in range(rounds):
        # Prompts gated into an iteration arrived during the one before it, whose length varies: a mixture of
        # Poissons over the last round's iteration lengths (long iterations gather more prompts).
        weight, k, chunked, per_iter = _prompt_cases(load, lam * tau, budget, mix_x, mix_w)
        n = lam * m * tau
        x = ex.time(n[:, None], k)
        tau = np.sum(weight * x, axis=1)
        mix_x, mix_w = x / np.maximum(tau[:, None], 1e-300), weight
    n = lam * m * tau
    busy = 1.0 - np.sum(weight * (k <= 0), axis=1)
    return Iterations(
        weight=weight,
        k=k,
        x=x,
        tau=tau,
        n=n,
        chunked=chunked,
        busy=busy,
        full=weight[:, -1],
        x_idle=step.time(n, 0.0 * n),
        x_full=x[:, -1],
        per_iter=per_iter,
    )


@dataclass
class Latency:
    """Everything the percentiles need, per row (see `latency`). The TTFT is a mixture of components, each
    a uniform residual U(0, width) + a fixed time + (where rate is finite) an exponential wait."""

    tau: np.ndarray  # mean iteration length
    n: np.ndarray  # mean decoding sequences
    tpot_mean: np.ndarray
    tpot_sd: np.ndarray
    tpot_skew: np.ndarray
    tpot_floor: np.ndarray  # the shortest a request's TPOT can be: itself alone, no prompts
    tpot_cap: np.ndarray  # the longest: every iteration it sees as long as its longest can be
    p_idle: np.ndarray  # an arrival finds the replica empty
    comp_weight: np.ndarray  # [rows, M]
    comp_width: np.ndarray
    comp_time: np.ndarray
    comp_rate: np.ndarray  # inf: no exponential wait
    stable: np.ndarray
    utilization: np.ndarray
    lam_sat: np.ndarray
    p_preempt: np.ndarray  # share of requests preempted (paged KV cache) ...
    preempt_tpot: np.ndarray  # ... and what it adds to their TPOT
    busy: np.ndarray  # share of time the replica runs iterations
    p_wait: np.ndarray  # an arrival waits for a slot
    iteration_weight: np.ndarray  # the iteration distribution: weights and prompt tokens per case
    iteration_k: np.ndarray

    def tpot_mean_all(self) -> np.ndarray:
        """Mean TPOT over every request, preempted ones included."""
        return np.where(self.stable, self.tpot_mean + self.p_preempt * self.preempt_tpot, np.nan)

    def ttft_cdf(self, t: np.ndarray) -> np.ndarray:
        """P(TTFT <= t) for each row (t [rows] or [rows, G]): the mixture's CDF (uniform convolved with
        exponential in closed form)."""
        t = np.asarray(t, dtype=float)
        grid = t.ndim == 2
        t = t[:, :, None] if grid else t[:, None]

        def comp(x):
            return x[:, None, :] if grid else x

        parts = self.__dict__.get("_cdf_parts")
        if parts is None:  # the components' own figures (none depends on t): once per Latency
            rate = self.comp_rate
            has = np.isfinite(rate)
            w = np.maximum(self.comp_width, 1e-12)
            th = np.where(has, np.maximum(rate, 1e-12), 1.0)
            tw = np.minimum(th * w, 700.0)
            with np.errstate(over="ignore"):
                parts = (w, has, th, tw, np.expm1(tw), self.comp_width <= 1e-12)
            self.__dict__["_cdf_parts"] = parts
        w, has, th, tw, grown, point = (comp(x) for x in parts)
        y = t - comp(self.comp_time)
        plain = np.clip(y / w, 0.0, 1.0)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            decay = np.exp(-th * np.maximum(y, 0.0))
            inside = y / w - (1.0 - decay) / tw
            beyond = 1.0 - decay * grown / tw
        waited = np.where(y <= 0, 0.0, np.where(point, 1.0 - decay, np.where(y < w, inside, beyond)))
        # NaN counts as reached; +/-inf clip to 1 and 0.
        waited = np.clip(np.where(np.isnan(waited), 1.0, waited), 0.0, 1.0)
        return np.sum(comp(self.comp_weight) * np.where(has, waited, plain), axis=-1)

    def ttft_quantile(self, q: float) -> np.ndarray:
        return self.ttft_quantiles((q,))[0]

    def ttft_quantiles(self, qs) -> list[np.ndarray]:
        """The qs-quantiles by three passes of a 16-point grid over each bracket (each pass narrows it 17-fold),
        every quantile of a row in one CDF evaluation."""
        tail = np.where(np.isfinite(self.comp_rate), 40.0 / np.maximum(self.comp_rate, 1e-12), 0.0)
        reach = np.where(self.comp_weight > 1e-12, self.comp_time + self.comp_width + tail, 0.0)
        top = np.max(reach, axis=1) * 1.01 + 1e-9
        nq, rows = len(qs), len(self.tau)
        q = np.repeat(np.asarray(qs, dtype=float)[None, :], rows, axis=0).ravel()
        lo, hi = np.zeros(rows * nq), np.repeat(top, nq)
        frac = np.arange(1, 17) / 17.0
        pick = np.arange(rows * nq)
        for _ in range(3):
            grid = lo[:, None] + (hi - lo)[:, None] * frac[None, :]
            cdf = self.ttft_cdf(grid.reshape(rows, nq * 16)).reshape(rows * nq, 16)
            count = (cdf < q[:, None]).sum(axis=1)  # rises with t: the count below is the bracket's index
            new_lo = np.where(count > 0, grid[pick, np.maximum(count - 1, 0)], lo)
            hi = np.where(count < 16, grid[pick, np.minimum(count, 15)], hi)
            lo = new_lo
        out = hi.reshape(rows, nq)
        return [np.where(self.stable, out[:, j], np.nan) for j in range(nq)]

    def _wait_mean(self) -> np.ndarray:
        return np.where(np.isfinite(self.comp_rate), 1.0 / np.maximum(self.comp_rate, 1e-12), 0.0)

    def ttft_mean(self) -> np.ndarray:
        body = np.sum(self.comp_weight * (self.comp_time + self.comp_width / 2 + self._wait_mean()), axis=1)
        return np.where(self.stable, body, np.nan)

    def queue_mean(self) -> np.ndarray:
        """Mean wait before the prompt is first scheduled: the rest of the iteration in progress, a slot, and
        the prompts ahead."""
        busy = np.sum(self.comp_weight * (self.comp_width / 2 + self._wait_mean()), axis=1)
        return np.where(self.stable, busy, np.nan)

    def tpot_quantile(self, q: float) -> np.ndarray:
        return self.tpot_quantiles((q,))[0]

    def tpot_quantiles(self, qs) -> list[np.ndarray]:
        """Cornish-Fisher quantiles of the TPOT over every request: a share p_preempt of them is preempted
        and pays preempt_tpot more, so the TPOT is X + B d (B ~ Bernoulli(p), d the rebuild per token), whose
        mean, variance and third central moment add those of B d (p d, p(1-p) d^2, p(1-p)(1-2p) d^3). One
        distribution for every q (its moments computed once for all of qs), so the quantiles rise with q (p99
        >= p50); between the floor and the longest a request can see (plus the rebuild where there is one)."""
        p = np.clip(self.p_preempt, 0.0, 1.0)
        d = np.where(p > 0, self.preempt_tpot, 0.0)
        mean = self.tpot_mean + p * d
        var = self.tpot_sd**2 + p * (1.0 - p) * d**2
        k3 = self.tpot_skew * self.tpot_sd**3 + p * (1.0 - p) * (1.0 - 2.0 * p) * d**3
        sd = np.sqrt(var)
        skew = np.where(sd > 0, k3 / np.maximum(sd, 1e-300) ** 3, 0.0)
        cap = self.tpot_cap + d
        return [
            np.where(self.stable, np.minimum(_cornish_fisher(mean, sd, skew, q, self.tpot_floor), cap), np.nan)
            for q in qs
        ]


def _cornish_fisher(mean, sd, skew, q, floor) -> np.ndarray:
    """The q-quantile of a distribution of this mean, standard deviation and skewness (skewness clipped to
    +/-2, where the expansion still keeps the p99 above the median), no lower than `floor`."""
    z = _normal_quantile(float(q)) if np.ndim(q) == 0 else np.sqrt(2.0) * _erfinv(2.0 * np.asarray(q, float) - 1.0)
    skew = np.clip(skew, -2.0, 2.0)
    return np.maximum(mean + sd * (z + (z * z - 1.0) * skew / 6.0), floor)


@functools.lru_cache(maxsize=64)
def _normal_quantile(q: float) -> float:
    """The standard normal's q-quantile, sqrt(2) erfinv(2q - 1), once per q."""
    return float(np.sqrt(2.0) * _erfinv(2.0 * np.asarray(q, dtype=float) - 1.0))


def _erfinv(y):
    """Inverse error function: Giles (2012)'s single-precision approximation, refined by two Newton steps."""
    y = np.clip(np.asarray(y, dtype=float), -0.999999, 0.999999)
    w = -np.log((1.0 - y) * (1.0 + y))
    small = w < 5.0
    ws = w - 2.5
    p_small = 2.81022636e-08
    for c in (3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503, -0.00417768164,
              0.246640727, 1.50140941):  # fmt: skip
        p_small = c + p_small * ws
    wl = np.sqrt(np.maximum(w, 5.0)) - 3.0
    p_large = -0.000200214257
    for c in (0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613, 0.00943887047,
              1.00167406, 2.83297682):  # fmt: skip
        p_large = c + p_large * wl
    x = np.where(small, p_small, p_large) * y
    for _ in range(2):
        x = x - (_erf(x) - y) / (2.0 / np.sqrt(np.pi) * np.exp(-x * x))
    return x


@dataclass
class Preemption:
    """What a paged KV cache holds per replica (tokens), each request's mean occupancy and its mean square
    (tokens, tokens^2), and the time to rebuild one preempted request's KV (seconds); capacity inf: never."""

    capacity: np.ndarray
    occupancy: np.ndarray
    occupancy_m2: np.ndarray
    rebuild_s: np.ndarray

    def rows(self, index) -> Preemption:
        return Preemption(*(getattr(self, f)[index] for f in self.__dataclass_fields__))


def _busy_runs(D, f, s):
    """Moments of runs of prompt-busy iterations and of the idle runs between them (iterations): a busy run is
    an M/D/1 busy period (service D iterations, utilisation f: mean D/(1-f), variance D^2 f/(1-f)^3, third
    moment D^3 (1+2f)/(1-f)^5; Takacs); an idle run ends at the first iteration an arrival falls in (geometric,
    success s). Returns the asymptotic variance per iteration of the busy count (alternating renewal) and
    the third moment per busy run."""
    f = np.clip(f, 0.0, 0.98)
    s = np.clip(s, 1e-9, 1.0)
    eb = D / (1.0 - f)
    vb = D * D * f / (1.0 - f) ** 3
    eb3 = D**3 * (1.0 + 2.0 * f) / (1.0 - f) ** 5
    ei = 1.0 / s
    vi = (1.0 - s) / (s * s)
    rate_var = (ei * ei * vb + eb * eb * vi) / (eb + ei) ** 3
    return rate_var, eb3 / (eb + ei), eb + ei


def latency(
    step: StepModel,
    load: Load,
    preempt: Preemption | None = None,
    full: bool = True,
    closed_loop=False,
    sat: dict | None = None,
) -> Latency:
    """The latency approximation at each row's rate (rows at or past saturation are marked unstable).
    closed_loop (per row): a benchmark client holding the batch limit's worth of requests in flight, which
    never waits for a slot (MLPerf Offline, trtllm-bench, a fixed-concurrency client). sat: the rows'
    saturation(step, load) where the caller has it (it does not depend on the rate: a search reuses it)."""
    lam, P, C, B = load.lam, load.prompt, load.chunk, load.slots
    m = decode_iterations(load)
    sat = saturation(step, load) if sat is None else sat
    util = np.where(sat["lam"] > 0, lam / sat["lam"], np.inf)
    stable = util < 1.0
    lam_c = np.where(stable, lam, sat["lam"] * 0.999)
    load_c = load.at(lam_c)
    it = iterations(step, load_c, sat=sat)
    tau = it.tau
    n = np.minimum(it.n, sat["r"] * m)
    ex = step.expand(None)
    accept = np.maximum(load.accept, 1e-9)
    mm = np.maximum(m, 1.0)
    inv_m = load.o_m2 / mm  # E[1/m] for lognormal output lengths

    # --- TPOT ---------------------------------------------------------------------------------------------
    # While a request holds one of B slots, others are admitted (and their prompts mixed into its iterations)
    # no faster than the other B - 1 slots free, (B - 1)/H with H the holding time.
    hold = (prefill_iterations(load) + m) * tau
    lam_tag = np.minimum(lam_c, np.maximum(B - 1.0, 0.0) / np.maximum(hold, 1e-300))
    tagged = lam_tag < lam_c * (1.0 - 1e-9)
    tag = it
    if tagged.any():
        alt = iterations(step, load.at(lam_tag), tau0=tau, rounds=1, sat=sat)
        tag = Iterations(
            **{
                f: np.where(
                    tagged[:, None] if np.ndim(getattr(it, f)) == 2 else tagged, getattr(alt, f), getattr(it, f)
                )
                for f in it.__dataclass_fields__
            }
        )
    n_tag = np.minimum(n, np.maximum(B - 1.0, 0.0))
    x_self = ex.time(n_tag[:, None] + 1.0, tag.k)
    w = tag.weight
    mean_x = np.sum(w * x_self, axis=1)
    dev = x_self - mean_x[:, None]
    var_x = np.sum(w * dev**2, axis=1)
    k3 = np.sum(w * dev**3, axis=1)
    # Chunked long prompts: runs of D = P/C full iterations (M/D/1 busy periods), so a request's mean of m
    # iterations varies as the busy count does (alternating renewal); otherwise iterations are independent.
    D = np.where(np.isfinite(C), P / np.where(np.isfinite(C), C, 1.0), 1.0)
    f = tag.busy
    s_start = -np.expm1(-lam_tag * tag.x_idle)
    rate_var, run_k3, cycle = _busy_runs(D, f, s_start)
    delta = step.time(n_tag + 1.0, np.where(np.isfinite(C), C, 0.0)) - step.time(n_tag + 1.0, 0.0 * n_tag)
    # Otherwise a long iteration gathers more prompts for the next: lag-one correlation lam * d tau/dP
    # (the extra length one more prompt brings, times the prompts per unit of length), as AR(1).
    k_tag = np.sum(w * tag.k, axis=1)
    phi = np.clip(lam_tag * (step.time(n_tag, k_tag + P) - step.time(n_tag, k_tag)), 0.0, 0.9)
    var_k = np.where(tag.chunked, delta**2 * rate_var, var_x * (1.0 + phi) / (1.0 - phi)) * inv_m
    k3_k = np.where(tag.chunked, delta**3 * run_k3, k3 * (1.0 - phi**3) / (1.0 - phi) ** 3) * inv_m**2

    # The decoding count n as a birth-death process (linear-noise approximation, van Kampen): arrivals at
    # rate lam each add one sequence and, through their prompt work (a share u of the time), hold back the
    # departures of the others; departures n/(m*tau(n)) slow as n grows, with tau rising c_n/(1-u) per
    # sequence.
    k_mean = np.sum(it.weight * it.k, axis=1)
    t_mean = step.time(n, k_mean)
    c_p = step.time(n, k_mean + P) - t_mean
    u = np.clip(lam_c * c_p, 0.0, 0.95)
    c_n = (step.time(n + 1.0, k_mean) - t_mean) / (1.0 - u)
    e = np.clip(n * c_n / np.maximum(tau, 1e-300), 0.0, 0.95)
    kappa = (1.0 - e) / np.maximum(mm * tau, 1e-300)
    var_n = lam_c * (1.0 / (1.0 - u) ** 2 + load.o_m2) / (2.0 * np.maximum(kappa, 1e-300))
    # A count confined to [0, B] with mean n varies by at most n(B - n) (Bhatia-Davis inequality).
    slots = np.where(np.isfinite(B), B, np.inf)
    var_n = np.where(lam_c > 0, np.minimum(var_n, n * np.maximum(slots - n, 0.0)), 0.0)
    # A request sees n weighted by itself (Palm): the excess over Poisson raises its mean iteration; its
    # average over a life of L = m*tau keeps 2(kL - 1 + exp(-kL))/(kL)^2 of the variance.
    tpot_mean = (mean_x + c_n * np.maximum(var_n / np.maximum(n, 1e-300) - 1.0, 0.0)) / accept
    kl = np.maximum(kappa * mm * tau, 1e-9)
    keep = np.where(kl > 1e-4, 2.0 * (kl - 1.0 + np.exp(-kl)) / kl**2, 1.0 - kl / 3.0)
    sd = np.sqrt(var_k + c_n**2 * var_n * keep) / accept
    skew_n = (2.0 - n / np.maximum(var_n, 1e-300)) * np.sqrt(var_n) / np.maximum(n, 1e-300)
    k3_n = np.where(n > 0, skew_n * var_n**1.5, 0.0) * keep**1.5 * c_n**3
    skew = np.where(sd > 0, (k3_k + k3_n) / accept**3 / np.maximum(sd, 1e-300) ** 3, 0.0)
    # No request's TPOT exceeds the longest iteration it sees: the batch at its most (the slots, or the mean plus
    # four standard deviations) with the most prompt tokens of any iteration case more likely than 1e-6. The
    # moment expansion can overshoot it where iteration lengths are nearly two-valued (MoE at a tiny batch).
    n_top = np.minimum(np.where(np.isfinite(B), B, np.inf), n + 4.0 * np.sqrt(var_n) + 1.0)
    k_top = np.max(np.where(tag.weight > 1e-6, tag.k, 0.0), axis=1)
    tpot_cap = ex.time(n_top[:, None], k_top[:, None])[:, 0] / accept

    # --- TTFT ---------------------------------------------------------------------------------------------
    own_cases = _own_prompts(load)
    comps = _ttft_components(step, load_c, it, n, own_cases)
    # An arrival to an empty replica starts at once: its own prefill alone (M/G/inf: empty with probability
    # exp(-lam * time in system)).
    t_busy = np.sum(comps[0] * (comps[2] + comps[1] / 2 + np.where(np.isfinite(comps[3]), 1 / comps[3], 0)), 1)
    t_sys = t_busy + m * tpot_mean * accept
    p_idle = np.where(lam_c > 0, np.exp(-lam_c * t_sys), 1.0)
    weights, widths, times, rates = [comps[0] * (1.0 - p_idle)[:, None]], [comps[1]], [comps[2]], [comps[3]]
    for scale, o_w in own_cases:
        own = P * scale
        n_it = np.maximum(np.ceil(own / C), 1.0)
        weights.append((o_w * p_idle)[:, None])
        widths.append(np.zeros_like(P)[:, None])
        times.append((n_it * step.time(0.0 * P, np.minimum(own, C)))[:, None])
        rates.append(np.full_like(P, np.inf)[:, None])
    comp_w, comp_width, comp_time, comp_rate = (np.concatenate(x, axis=1) for x in (weights, widths, times, rates))

    # Waiting for a slot near saturation, or with a small `concurrency`: Erlang C with c = B slots and load
    # a = lam * H; given a wait, exponential (M/D/c, holding times nearly deterministic). A component that
    # already waits in the prompt queue waits the sum (one exponential of the summed mean).
    # H here comes from the iteration distribution and the saturation rate from the mean iteration, so a/B
    # runs a few percent ahead of the utilisation and reaches 1 just before it (where the wait leapt from
    # seconds to 1e11 s). Kept below 1 - (1 - utilisation) / 4, it is a/B itself up to about 95% (checked
    # against the simulation at 80%) and then rises with the utilisation: the wait stays finite and grows
    # smoothly, like 1 / (1 - utilisation), up to the overload point.
    slot_cap = 1.0 - 0.25 * (1.0 - np.clip(util, 0.0, 0.999))
    occupancy = np.minimum(lam_c * hold, np.where(np.isfinite(B), B, np.inf) * slot_cap)
    p_wait = np.where(np.isfinite(B) & ~np.asarray(closed_loop), _erlang_c(B, occupancy), 0.0)
    if np.any(p_wait > 1e-12):
        slot_rate = _mdc_wait_rate(B, occupancy, hold)[:, None]
        both = np.where(np.isfinite(comp_rate), 1.0 / (1.0 / comp_rate + 1.0 / slot_rate), slot_rate)
        pw = p_wait[:, None]
        comp_w = np.concatenate([comp_w * (1.0 - pw), comp_w * pw], axis=1)
        comp_width = np.concatenate([comp_width, comp_width], axis=1)
        comp_time = np.concatenate([comp_time, comp_time], axis=1)
        comp_rate = np.concatenate([comp_rate, both], axis=1)

    # --- preemption (paged KV cache) ------------------------------------------------------------------------
    p_pre = np.zeros_like(tau)
    pre_tpot = np.zeros_like(tau)
    if preempt is not None and np.any(np.isfinite(preempt.capacity)):
        in_system = n + lam_c * prefill_iterations(load) * tau
        mean_d = in_system * preempt.occupancy
        var_d = in_system * preempt.occupancy_m2 + preempt.occupancy**2 * var_n
        zc = (preempt.capacity - mean_d) / np.sqrt(np.maximum(var_d, 1e-300))
        p_pre = np.where(np.isfinite(preempt.capacity), 1.0 - normal_cdf(zc), 0.0)
        pre_tpot = preempt.rebuild_s / np.maximum(load.output - 1.0, 1.0)

    return Latency(
        tau=tau,
        n=n,
        tpot_mean=tpot_mean,
        tpot_sd=sd,
        tpot_skew=skew,
        tpot_floor=step.time(1.0 + 0.0 * n, 0.0 * n) / accept,
        tpot_cap=np.maximum(tpot_cap, tpot_mean),
        p_idle=p_idle,
        comp_weight=comp_w,
        comp_width=comp_width,
        comp_time=comp_time,
        comp_rate=comp_rate,
        stable=stable,
        utilization=util,
        lam_sat=sat["lam"],
        p_preempt=p_pre,
        preempt_tpot=pre_tpot,
        busy=1.0 - p_idle,
        p_wait=p_wait,
        iteration_weight=it.weight,
        iteration_k=it.k,
    )


def _ttft_components(step: StepModel, load: Load, it: Iterations, n: np.ndarray, own_cases):
    """The busy arrival's TTFT as mixture components (weight, width, time, rate) [rows, M].

    Chunked long prompts (P >= C) queue for the prompt budget like an M/D/1 queue whose service is D = P/C
    full iterations: with the budget free (probability 1 - rho, rho its busy share of time) the prompt waits
    out the iteration in progress, else the queue's wait (exponential, of the M/D/1 mean rho S / (2(1 - rho))
    given it waits, the Pollaczek-Khinchine mean); then its own ceil(P/C) iterations.
    Otherwise (several prompts fit an iteration, or unchunked): the iteration in progress (length-biased), the
    prompts that arrived before this one during it (Poisson, mean lam*x/2, two points at mean -/+ one standard
    deviation), then this prompt's iteration with the others gated with it; more than C/P prompts spill into
    further iterations, and a backlog (the share of full iterations) waits as an M/D/c queue (c = C/P per
    iteration)."""
    lam, P, C = load.lam, load.prompt, load.chunk
    finite = np.isfinite(C)
    Cf = np.where(finite, C, 1.0)
    x_full = it.x_full

    # --- chunked long prompts --------------------------------------------------------------------------
    def chunked():
        S = P / Cf * x_full
        rho = np.clip(lam * S, 0.0, 0.999)
        # Given a wait: uniform over (1 - rho) S (the rest of the prompt in service, which dominates at light
        # load) and exponential for the rest of the Pollaczek-Khinchine mean S/(2(1 - rho)) (the queue behind
        # it, which dominates in heavy traffic).
        width_q = S * (1.0 - rho)
        rate_q = 1.0 / np.maximum(S / (2.0 * (1.0 - rho)) - width_q / 2.0, 1e-300)
        parts = []
        for scale, o_w in own_cases:
            own = P * scale
            n_it = np.maximum(np.ceil(own / Cf), 1.0)
            rest = own - (n_it - 1.0) * Cf
            service = (n_it - 1.0) * x_full + step.time(n, np.minimum(rest, Cf))
            parts.append((o_w * (1.0 - rho), it.x_idle, service, np.full_like(P, np.inf)))
            parts.append((o_w * rho, width_q, service, rate_q))
        return [
            np.stack([np.broadcast_to(np.asarray(p[i], dtype=float), P.shape) for p in parts], axis=1) for i in range(4)
        ]

    # --- several prompts per iteration --------------------------------------------------------------------
    def many():
        x_cur = it.x
        lb = it.weight * x_cur
        lb /= np.maximum(lb.sum(axis=1, keepdims=True), 1e-300)
        mu_b = lam[:, None] * x_cur / 2.0
        spread = np.sqrt(mu_b)
        per = np.where(np.isfinite(it.per_iter), it.per_iter, 1e12)[:, None]
        # The backlog queue (M/D/c): c = C/P prompts served per iteration; the prompts offered per iteration lie
        # between lam*tau (a mean iteration) and lam*x_full (the full iterations a backlog runs): their
        # geometric mean (checked against the simulation, tests/test_queueing_des.py).
        c_per = np.where(np.isfinite(it.per_iter), it.per_iter, 1e9)
        a_mid = np.minimum(lam * np.sqrt(it.tau * x_full), 0.999 * c_per)
        p_backlog = np.where(np.isfinite(it.per_iter), _erlang_c(np.minimum(c_per, 1e6), a_mid), 0.0)
        rate_b = _mdc_wait_rate(c_per, a_mid, x_full)
        # Every component at once, on axes [rows, prompts ahead (mean -/+ one standard deviation, half each), own
        # prompt case, queued behind a backlog or not, iteration case], flattened in that order.
        ahead = np.stack([np.maximum(mu_b - spread, 0.0), mu_b + spread], axis=1)[:, :, None, :]
        own = (P[:, None] * np.stack([scale for scale, _ in own_cases], axis=1))[:, None, :, None]
        share = 0.5 * np.array([o_w for _, o_w in own_cases])
        prompts = np.floor(ahead) + 1.0
        spill = np.maximum(np.ceil(prompts / per[:, :, None, None]) - 1.0, 0.0)
        behind = (P[:, None] * mu_b)[:, None, None, :]
        gathered = own + P[:, None, None, None] * ahead + behind
        last_k = np.where(finite[:, None, None, None], np.minimum(Cf[:, None, None, None], gathered), gathered)
        full4 = x_full[:, None, None, None]
        t_first = spill * full4 + step.expand(None, None, None).time(n[:, None, None, None], last_k)
        # Behind a backlog, the iteration that takes this prompt is a full one.
        times = np.stack([t_first, np.maximum(t_first, (spill + 1.0) * full4)], axis=3)
        q_w = np.stack([1.0 - p_backlog, p_backlog], axis=1)
        ws = lb[:, None, None, None, :] * share[None, None, :, None, None] * q_w[:, None, None, :, None]
        rates = np.stack([np.full_like(rate_b, np.inf), rate_b], axis=1)[:, None, None, :, None]
        shape = times.shape
        return [
            np.broadcast_to(x, shape).reshape(len(P), -1) for x in (ws, x_cur[:, None, None, None, :], times, rates)
        ]

    # Rows of one kind leave the other kind's components at weight zero (one array shape for all rows).
    if it.chunked.all():
        return tuple(chunked())
    if not it.chunked.any():
        return tuple(many())
    ch, mc = chunked(), many()
    pad = mc[0].shape[1] - ch[0].shape[1]
    ch = [np.concatenate([c, np.full((len(P), pad), np.inf if i == 3 else 0.0)], axis=1) for i, c in enumerate(ch)]
    is_chunk = it.chunked[:, None]
    return tuple(np.where(is_chunk, c, m) for c, m in zip(ch, mc, strict=True))


def _own_prompts(load: Load):
    """The own prompt's length relative to the mean, per row: one case for fixed lengths, else three
    (Gauss-Hermite in log space of a lognormal with E[P^2]/E[P]^2 = p_m2)."""
    ones = np.ones_like(np.asarray(load.prompt, dtype=float))
    if not np.any(np.asarray(load.p_m2) > 1.0 + 1e-9):
        return [(ones, 1.0)]
    s2 = np.log(np.maximum(np.asarray(load.p_m2, dtype=float), 1.0)) * ones
    s = np.sqrt(s2)
    return [(np.exp(node * s - s2 / 2.0), weight) for node, weight in HERMITE]


def max_rate_within(
    step: StepModel,
    load: Load,
    ttft_limit_s: np.ndarray,
    tpot_limit_s: np.ndarray,
    preempt: Preemption | None = None,
    q: float = 0.99,
    resolution: float = 0.004,
) -> np.ndarray:
    """Highest rate (requests/s per replica) whose q-quantiles of TTFT and TPOT stay within the limits (NaN
    limit: no limit); 0 where even a lone request misses a limit. Both quantiles rise with the rate, so a
    k-ary search on lam finds it: each pass tries G evenly spaced rates in the bracket (G large for few
    rows, where one call's cost is its fixed overhead; 1 - bisection - for many) until the bracket is within
    `resolution` of the saturation rate."""
    sat = saturation(step, load)["lam"]
    rows = len(sat)
    ttft_lim = np.where(np.isfinite(ttft_limit_s), ttft_limit_s, np.inf)
    tpot_lim = np.where(np.isfinite(tpot_limit_s), tpot_limit_s, np.inf)
    points = int(np.clip(256 // max(rows, 1), 1, 15))
    lo = np.zeros_like(sat)
    hi = sat * 0.9999
    frac = np.arange(1, points + 1) / (points + 1.0)
    idx = np.repeat(np.arange(rows), points)
    step_g = step.rows(idx)
    load_g = load.rows(idx)
    pre_g = None if preempt is None else Preemption(*(getattr(preempt, f)[idx] for f in preempt.__dataclass_fields__))
    t_lim, p_lim = np.repeat(ttft_lim, points), np.repeat(tpot_lim, points)
    finite_t = np.where(np.isfinite(t_lim), t_lim, 0.0)
    sat_g = saturation(step_g, load_g)
    while True:
        width = hi - lo
        if not np.any(width > resolution * sat):
            break
        lam = (lo[:, None] + width[:, None] * frac[None, :]).ravel()
        lat = latency(step_g, load_g.at(lam), pre_g, full=False, sat=sat_g)
        ttft_ok = np.where(np.isfinite(t_lim), lat.ttft_cdf(finite_t) >= q, True)
        good = (ttft_ok & (lat.tpot_quantile(q) <= p_lim) & lat.stable).reshape(rows, points)
        # The highest good point below the lowest bad one (the quantiles rise with the rate).
        bad_any = ~good
        first_bad = np.where(bad_any.any(axis=1), bad_any.argmax(axis=1), points)
        grid = lam.reshape(rows, points)
        new_lo = np.where(first_bad > 0, grid[np.arange(rows), np.maximum(first_bad - 1, 0)], lo)
        new_hi = np.where(first_bad < points, grid[np.arange(rows), np.minimum(first_bad, points - 1)], hi)
        lo, hi = new_lo, new_hi
    return lo
