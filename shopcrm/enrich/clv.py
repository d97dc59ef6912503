"""Predicted lifetime value: BG/NBD for purchases and P(alive), Gamma-Gamma for spend.

References (cited by equation below):
- [FHL05] Fader, Hardie & Lee (2005), "'Counting Your Customers' the Easy Way: An Alternative to
  the Pareto/NBD Model", Marketing Science 24(2): likelihood eq. (6), conditional expectation
  eq. (10).
- [FHL08] Fader, Hardie & Lee (2008), "Computing P(alive) Using the BG/NBD Model" (note).
- [FH13] Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value" (note): the density of
  a customer's mean transaction value and its conditional expectation.

Conventions (docs/enrichment.md): a purchase is a calendar day in the shop's timezone with at
least one counted order; frequency x = purchase days - 1; recency t_x and age T are in days from
the first purchase day, T measured to the as-of date; the Gamma-Gamma value of a customer is the
mean value of the repeat purchase days (the first day excluded), fitted on customers with x > 0.

Both models are fitted by maximum likelihood over log parameters with L-BFGS-B and analytic
gradients. Everything here is floats: money becomes float only inside this module and comes back
as Decimal micro-units at the edge (`shopcrm.enrich.write`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from shopcrm.config.schema import ClvSettings
from shopcrm.enrich.codes import distinct_codes

FloatArray = NDArray[np.float64]

LOG_BOUND = math.log(1e6)  # every parameter lives in [1e-6, 1e6]; touching a bound is a failure
CLV_STEP_DAYS = 30  # purchases are discounted at the end of each 30-day step of the horizon
DAYS_PER_YEAR = 365.0
GRADIENT_TOLERANCE = 1e-4  # of the mean per-customer log-likelihood, in log-parameter space
# Per-row terms of a likelihood are summed over blocks of this many rows: a block's temporaries
# stay in cache, none is large enough to be mapped afresh from the OS at every evaluation, and
# OpenBLAS computes the dot products of a block on the calling thread (it wakes its thread pool
# above 10,000 elements, which on a small machine costs more than the dot product itself).
BLOCK_ROWS = 8_192

Status = Literal["fitted", "insufficient-data", "failed"]


@dataclass(frozen=True, slots=True)
class RepeatSummary:
    """One row per buyer: the inputs of both models (see the module docstring)."""

    frequency: NDArray[np.int64]  # x: repeat purchase days
    recency: NDArray[np.int64]  # t_x: days from first to last purchase day
    age: NDArray[np.int64]  # T: days from first purchase day to the as-of date
    monetary: FloatArray  # mean value of repeat purchase days (major units); nan when x == 0
    days_since_last: NDArray[np.int64]  # as-of minus last purchase day

    def __len__(self) -> int:
        return len(self.frequency)


@dataclass(frozen=True, slots=True)
class BgNbdParams:
    r: float
    alpha: float  # in days
    a: float
    b: float


@dataclass(frozen=True, slots=True)
class GammaGammaParams:
    p: float
    q: float
    v: float  # the scale called gamma in [FH13], in the shop's currency


@dataclass(frozen=True, slots=True)
class Fit:
    """A converged maximum-likelihood fit."""

    params: NDArray[np.float64]
    log_likelihood: float
    iterations: int


class FitFailed(Exception):
    """The optimiser did not converge to an interior optimum (message says how)."""


@dataclass(frozen=True, slots=True)
class ShopModel:
    """The fitted models of one shop, or why there are none."""

    status: Status
    message: str
    customers: int
    repeat_customers: int
    bgnbd: BgNbdParams | None = None
    gamma_gamma: GammaGammaParams | None = None
    log_likelihood: dict[str, float] = field(default_factory=dict)
    fit_seconds: float = 0.0

    @property
    def fitted(self) -> bool:
        return self.status == "fitted"


@dataclass(frozen=True, slots=True)
class Predictions:
    p_alive: FloatArray
    expected_purchases: FloatArray
    expected_order_value: FloatArray  # major units
    clv: FloatArray  # major units, discounted


@dataclass(frozen=True, slots=True)
class _Coded:
    """A column as its distinct values (ascending) and each row's index into them.

    Whatever depends on one column alone is then computed once per distinct value and gathered
    back: the day counts of a RepeatSummary take about a thousand values over hundreds of
    thousands of buyers, and a gather is far cheaper than a logarithm per row.
    """

    levels: FloatArray
    codes: NDArray[np.intp]

    @classmethod
    def of(cls, column: NDArray[np.generic]) -> _Coded:
        """Code a column; integers over a short range (the day counts) by counting, not sorting."""
        levels, codes = distinct_codes(column)
        return cls(levels.astype(np.float64), codes)

    def values(self) -> FloatArray:
        return self.levels[self.codes]

    def subset(self, codes: NDArray[np.intp]) -> _Coded:
        return _Coded(self.levels, codes)


def _distinct_rows(*columns: _Coded) -> tuple[list[_Coded], FloatArray]:
    """Distinct rows of coded columns and their counts: a likelihood is a weighted sum over them.

    Each row is packed into one integer (its codes in mixed radix), so a single sort of
    integers finds them; when the radix would overflow, every row is kept with weight 1.
    """
    sizes = [len(col.levels) for col in columns]
    if math.prod(sizes) >= 2**63:
        return list(columns), np.ones(len(columns[0].codes))
    key = columns[0].codes.astype(np.int64)
    for col, size in zip(columns[1:], sizes[1:], strict=True):
        key = key * size + col.codes
    keys, counts = np.unique(key, return_counts=True)
    codes = []
    for size in reversed(sizes[1:]):
        keys, code = np.divmod(keys, size)
        codes.append(code)
    codes.append(keys)
    distinct = [col.subset(code) for col, code in zip(columns, codes[::-1], strict=True)]
    return distinct, counts.astype(np.float64)


def _pairs(x: _Coded, T: _Coded) -> tuple[FloatArray, FloatArray, NDArray[np.intp]]:
    """The distinct (x, T) pairs (as two columns) and each row's index into them."""
    pair = _Coded.of(x.codes * len(T.levels) + T.codes)
    x_code, T_code = np.divmod(pair.levels.astype(np.intp), len(T.levels))
    return x.levels[x_code], T.levels[T_code], pair.codes


def _dropout_tables(a: float, b: float, x_levels: FloatArray) -> tuple[FloatArray, FloatArray]:
    """ln(a / (b+x-1)) and 1 / (b+x-1) per distinct x: -inf and 0 where x = 0.

    With no repeat purchase the customer cannot have dropped out after one, so the dropout
    term vanishes; -inf makes it vanish through expit without a per-row mask.
    """
    log_odds = np.full(len(x_levels), -np.inf)
    inverse = np.zeros(len(x_levels))
    repeat = x_levels > 0
    bx1 = b + x_levels[repeat] - 1
    log_odds[repeat] = math.log(a) - np.log(bx1)
    inverse[repeat] = 1 / bx1
    return log_odds, inverse


def _blocks(rows: int) -> tuple[slice, ...]:
    return tuple(slice(start, start + BLOCK_ROWS) for start in range(0, rows, BLOCK_ROWS))


@dataclass(frozen=True, slots=True)
class _BgNbdData:
    """Weighted BG/NBD rows, with the weights also summed per distinct x and per distinct T.

    Every term of eq. (6) but the dropout bracket depends on x alone or on T alone, so it is
    summed over distinct values; only the bracket needs (x, t_x, T) row by row.
    """

    x: _Coded
    t_x: _Coded
    T: _Coded
    weights: FloatArray
    total: float  # sum of the weights
    repeats: FloatArray  # x per row
    x_weights: FloatArray  # per distinct x
    T_weights: FloatArray  # per distinct T
    T_x_weights: FloatArray  # per distinct T, the weighted sum of x
    blocks: tuple[slice, ...]

    @classmethod
    def of(cls, x: _Coded, t_x: _Coded, T: _Coded, weights: FloatArray) -> _BgNbdData:
        repeats = x.values()
        return cls(
            x,
            t_x,
            T,
            weights,
            float(weights.sum()),
            repeats,
            np.bincount(x.codes, weights, len(x.levels)),
            np.bincount(T.codes, weights, len(T.levels)),
            np.bincount(T.codes, weights * repeats, len(T.levels)),
            _blocks(len(weights)),
        )


def bgnbd_log_likelihood(
    log_params: FloatArray,
    x: FloatArray,
    t_x: FloatArray,
    T: FloatArray,
    weights: FloatArray,
    x_levels: tuple[FloatArray, NDArray[np.intp]] | None = None,
) -> tuple[float, FloatArray]:
    """Total BG/NBD log-likelihood [FHL05 eq. (6)] and its gradient in log parameters.

    ln L = ln G(r+x) - ln G(r) + r ln(alpha) - (r+x) ln(alpha+T) + ln B(a, b+x) - ln B(a, b)
           + ln(1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))
    The bracket is 1 for x == 0 (no repeat purchase: the customer cannot have dropped out
    after a repeat), so its log-odds are set to -inf there instead of evaluating b+x-1.
    The special functions depend on x alone, so they are evaluated once per distinct x
    (`x_levels`: the distinct values and each row's index into them; computed when absent).
    """
    coded_x = _Coded(*x_levels) if x_levels is not None else _Coded.of(x)
    data = _BgNbdData.of(coded_x, _Coded.of(t_x), _Coded.of(T), np.asarray(weights, np.float64))
    return _bgnbd_log_likelihood(log_params, data)


def _bgnbd_log_likelihood(log_params: FloatArray, data: _BgNbdData) -> tuple[float, FloatArray]:
    r, alpha, a, b = np.exp(log_params)
    total = data.total
    levels, x_weights = data.x.levels, data.x_weights
    rx_weights = r * data.T_weights + data.T_x_weights  # per distinct T: weighted sum of r+x
    log_at = np.log(alpha + data.T.levels)
    inverse_at = 1 / (alpha + data.T.levels)
    bracket, by_spread, by_inverse_spread, dropouts, by_inverse_bx1 = _dropout_sums(
        r, alpha, a, b, data
    )
    ll = (
        np.dot(x_weights, gammaln(r + levels) + betaln(a, b + levels))
        - total * (gammaln(r) - r * math.log(alpha) + betaln(a, b))
        - np.dot(rx_weights, log_at)
        + bracket
    )
    psi_ab = digamma(a + b)
    psi_abx = digamma(a + b + levels)
    d_r = (
        np.dot(x_weights, digamma(r + levels))
        + total * (math.log(alpha) - digamma(r))
        - np.dot(data.T_weights, log_at)
        + by_spread
    )
    d_alpha = total * r / alpha - np.dot(rx_weights, inverse_at) + by_inverse_spread
    d_a = total * psi_ab - np.dot(x_weights, psi_abx) + dropouts / a
    d_b = (
        np.dot(x_weights, digamma(b + levels) - psi_abx)
        + total * (psi_ab - digamma(b))
        - by_inverse_bx1
    )
    return float(ll), np.array([r * d_r, alpha * d_alpha, a * d_a, b * d_b])


def _dropout_sums(r: float, alpha: float, a: float, b: float, data: _BgNbdData) -> FloatArray:
    """Weighted sums over the rows of the dropout bracket of eq. (6) and of its derivatives.

    With odds = a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x) and s = w odds/(1+odds): the sums of
    w ln(1+odds), s ln((alpha+T)/(alpha+t_x)), s (r+x) (1/(alpha+T) - 1/(alpha+t_x)), s and
    s/(b+x-1).
    """
    log_at, log_atx = np.log(alpha + data.T.levels), np.log(alpha + data.t_x.levels)
    inverse_at, inverse_atx = 1 / (alpha + data.T.levels), 1 / (alpha + data.t_x.levels)
    log_odds_x, inverse_bx1 = _dropout_tables(a, b, data.x.levels)
    sums = np.zeros(5)
    for block in data.blocks:
        x_code, t_code, T_code = data.x.codes[block], data.t_x.codes[block], data.T.codes[block]
        weights = data.weights[block]
        spread = log_at[T_code] - log_atx[t_code]
        rx = r + data.repeats[block]
        log_odds = log_odds_x[x_code] + rx * spread  # -inf where x == 0
        dropout = expit(log_odds)
        # ln(1+odds) from the larger of 1/(1+odds) and odds/(1+odds): neither underflows
        log_bracket = np.maximum(log_odds, 0) - np.log(np.maximum(dropout, 1 - dropout))
        weighted = weights * dropout
        sums += (
            np.dot(weights, log_bracket),
            np.dot(weighted, spread),
            np.dot(weighted * rx, inverse_at[T_code] - inverse_atx[t_code]),
            weighted.sum(),
            np.dot(weighted, inverse_bx1[x_code]),
        )
    return sums


@dataclass(frozen=True, slots=True)
class _GammaGammaData:
    """Weighted Gamma-Gamma rows: per row only ln(1 + m x / v) varies with the parameters.

    The terms in ln m and ln x are linear in p, so they are computed once, not per evaluation.
    """

    x: _Coded
    x_weights: FloatArray  # per distinct x
    weights: FloatArray
    total: float  # sum of the weights
    repeats: FloatArray  # x per row
    weighted_x: FloatArray  # weights * x per row
    spend: FloatArray  # m x per row
    log_m: FloatArray  # ln m per row
    log_mx: FloatArray  # x (ln m + ln x) per row
    log_mx_sum: float  # its weighted sum
    blocks: tuple[slice, ...]

    @classmethod
    def of(cls, x: _Coded, m: FloatArray, weights: FloatArray) -> _GammaGammaData:
        repeats = x.values()
        log_m = np.log(m)
        log_mx = repeats * (log_m + np.log(repeats))
        return cls(
            x,
            np.bincount(x.codes, weights, len(x.levels)),
            weights,
            float(weights.sum()),
            repeats,
            weights * repeats,
            m * repeats,
            log_m,
            log_mx,
            float(np.sum(weights * log_mx)),
            _blocks(len(weights)),
        )


def gamma_gamma_log_likelihood(
    log_params: FloatArray,
    x: FloatArray,
    m: FloatArray,
    weights: FloatArray,
    x_levels: tuple[FloatArray, NDArray[np.intp]] | None = None,
) -> tuple[float, FloatArray]:
    """Total Gamma-Gamma log-likelihood [FH13] of mean values m over x > 0 repeat purchases.

    ln f(m | p, q, v, x) = ln G(px+q) - ln G(px) - ln G(q) + q ln v + (px-1) ln m + px ln x
                           - (px+q) ln(v + m x)
    The special functions depend on x alone: evaluated once per distinct x (`x_levels`).
    """
    coded_x = _Coded(*x_levels) if x_levels is not None else _Coded.of(x)
    data = _GammaGammaData.of(coded_x, np.asarray(m, np.float64), np.asarray(weights, np.float64))
    return _gamma_gamma_log_likelihood(log_params, data)


def _gamma_gamma_log_likelihood(
    log_params: FloatArray, data: _GammaGammaData
) -> tuple[float, FloatArray]:
    p, q, v = np.exp(log_params)
    total = data.total
    levels, x_weights = data.x.levels, data.x_weights
    p_levels = p * levels
    psi_pxq = digamma(p_levels + q)
    # ln G(px+q) - ln G(px) - ln G(q) = -ln B(px, q), without the cancellation of large terms
    by_x = -betaln(p_levels, q) - p_levels * math.log(v)
    ll, log_ratio_x, log_ratio, inverse_ratio_x, inverse_ratio = _spend_sums(p, q, v, by_x, data)
    d_p = (
        np.dot(x_weights * levels, psi_pxq - digamma(p_levels) - math.log(v))
        + data.log_mx_sum
        - log_ratio_x
    )
    d_q = np.dot(x_weights, psi_pxq) - total * digamma(q) - log_ratio
    d_log_v = total * q - p * inverse_ratio_x - q * inverse_ratio
    return float(ll), np.array([p * d_p, q * d_q, d_log_v])


def _spend_sums(
    p: float, q: float, v: float, by_x: FloatArray, data: _GammaGammaData
) -> FloatArray:
    """The log-likelihood, and with R = 1 + m x / v the weighted sums of x ln R, ln R, x/R, 1/R.

    ln(v + m x) enters as ln v + ln R, and the rest of q ln v cancels, so no term is large:
    the log-likelihood is summed row by row (`by_x` holds the terms of x alone) with a rounding
    far below the changes the optimiser resolves near the optimum.
    """
    sums = np.zeros(5)
    for block in data.blocks:
        weights, weighted_x = data.weights[block], data.weighted_x[block]
        ratio = 1 + data.spend[block] / v
        log_ratio = np.log(ratio)
        inverse_ratio = 1 / ratio
        ll = (
            by_x[data.x.codes[block]]
            + p * (data.log_mx[block] - data.repeats[block] * log_ratio)
            - q * log_ratio
            - data.log_m[block]
        )
        sums += (
            np.dot(weights, ll),
            np.dot(weighted_x, log_ratio),
            np.dot(weights, log_ratio),
            np.dot(weighted_x, inverse_ratio),
            np.dot(weights, inverse_ratio),
        )
    return sums


def _maximise(
    log_likelihood: object,
    start: FloatArray,
    args: tuple[object, ...],
    total_weight: float,
) -> Fit:
    """Maximise a log-likelihood with L-BFGS-B in log space and check that it converged."""
    # every evaluation is kept, so the check at the returned point costs no extra evaluation
    evaluated: dict[bytes, tuple[float, FloatArray]] = {}

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        key = theta.tobytes()
        if key not in evaluated:
            value, grad = log_likelihood(theta, *args)  # type: ignore[operator]
            if not np.isfinite(value) or not np.all(np.isfinite(grad)):
                evaluated[key] = np.inf, np.zeros_like(theta)
            else:
                evaluated[key] = -value / total_weight, -grad / total_weight
        return evaluated[key]

    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(start)
    result = minimize(
        objective,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": 500, "ftol": 1e-13, "gtol": 1e-9},
    )
    theta = np.asarray(result.x, dtype=np.float64)
    value, grad = objective(theta)
    if not np.isfinite(value):
        raise FitFailed("log-likelihood is not finite at the optimum")
    if np.any(np.abs(theta) >= LOG_BOUND - 1e-6):
        raise FitFailed("a parameter ran to its bound (1e-6 or 1e6): the data do not identify it")
    # L-BFGS-B may stop on a failed line search right at the optimum (the objective is flat to
    # float precision there), so convergence is judged by the gradient, not by its status.
    if float(np.max(np.abs(grad))) > GRADIENT_TOLERANCE:
        raise FitFailed(
            f"optimiser stopped without converging ({result.message}; "
            f"max |gradient| = {np.max(np.abs(grad)):.2g})"
        )
    return Fit(np.exp(theta), -value * total_weight, int(result.nit))


def fit_bgnbd(x: FloatArray, t_x: FloatArray, T: FloatArray) -> tuple[BgNbdParams, float]:
    """Maximum-likelihood BG/NBD parameters and the log-likelihood.

    Args:
        x: repeat purchases per customer.
        t_x: time of the last purchase, from the first (days).
        T: age, from the first purchase to the end of observation (days).

    Returns:
        The parameters (alpha in the unit of the inputs) and the maximised log-likelihood.

    Raises:
        FitFailed: the optimiser did not reach an interior optimum.
    """
    (cx, ctx, cT), w = _distinct_rows(_Coded.of(x), _Coded.of(t_x), _Coded.of(T))
    data = _BgNbdData.of(cx, ctx, cT, w)
    purchases = max(float(np.dot(data.x_weights, cx.levels)), 1.0)
    rate = purchases / max(float(np.dot(data.T_weights, cT.levels)), 1.0)
    start = np.array([0.0, math.log(1.0 / rate), 0.0, 0.0])
    fit = _maximise(_bgnbd_log_likelihood, start, (data,), data.total)
    r, alpha, a, b = (float(v) for v in fit.params)
    return BgNbdParams(r, alpha, a, b), fit.log_likelihood


def fit_gamma_gamma(x: FloatArray, m: FloatArray) -> tuple[GammaGammaParams, float]:
    """Maximum-likelihood Gamma-Gamma parameters and the log-likelihood (customers with x > 0).

    The values are divided by their median while fitting, so the optimiser's bounds and
    tolerances do not depend on the currency; v and the log-likelihood are scaled back.

    Raises:
        FitFailed: the optimiser did not reach an interior optimum.
    """
    m = np.asarray(m, np.float64)
    scale = float(np.median(m))
    (coded_x, coded_m), w = _distinct_rows(_Coded.of(x), _Coded.of(m / scale))
    data = _GammaGammaData.of(coded_x, coded_m.values(), w)
    start = np.array([0.0, math.log(2.0), 0.0])
    fit = _maximise(_gamma_gamma_log_likelihood, start, (data,), data.total)
    p, q, v = (float(val) for val in fit.params)
    return GammaGammaParams(p, q, v * scale), fit.log_likelihood - len(m) * math.log(scale)


def p_alive(params: BgNbdParams, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    """P(alive | x, t_x, T) [FHL08]: 1 / (1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))."""
    return _p_alive(params, _Coded.of(x), _Coded.of(t_x), _Coded.of(T))


def _p_alive(params: BgNbdParams, x: _Coded, t_x: _Coded, T: _Coded) -> FloatArray:
    r, alpha = params.r, params.alpha
    log_odds = _dropout_tables(params.a, params.b, x.levels)[0]
    spread = np.log(alpha + T.levels)[T.codes] - np.log(alpha + t_x.levels)[t_x.codes]
    return expit(-(log_odds[x.codes] + (r + x.values()) * spread))


def expected_purchases(
    params: BgNbdParams, t: float, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    """E[Y(t) | x, t_x, T], purchases in the next t days [FHL05 eq. (10)].

    E = (a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))]
        * P(alive)
    The bracketed factor depends on (x, T) only, so it is evaluated once per distinct pair.
    """
    cx, cT = _Coded.of(x), _Coded.of(T)
    x_pairs, T_pairs, pair = _pairs(cx, cT)
    factor = _alive_expectation(params, t, x_pairs, T_pairs)[pair]
    return factor * _p_alive(params, cx, _Coded.of(t_x), cT)


def _alive_expectation(params: BgNbdParams, t: float, x: FloatArray, T: FloatArray) -> FloatArray:
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = t / (alpha + T + t)
    hyp = hyp2f1(r + x, b + x, a + b + x - 1, z)
    return (
        (a + b + x - 1)
        / (a - 1)
        * (1 - np.exp((r + x) * np.log((alpha + T) / (alpha + T + t))) * hyp)
    )


def expected_order_value(params: GammaGammaParams, x: FloatArray, m: FloatArray) -> FloatArray:
    """E[M | x, m] [FH13]: p (v + x m) / (p x + q - 1); at x = 0 the population mean p v / (q - 1).

    A customer without a repeat purchase has no repeat spend to go on (its first purchase is
    not part of the model), so it gets the population mean.
    """
    x = np.asarray(x, np.float64)
    m = np.where(x > 0, np.asarray(m, np.float64), 0.0)
    p, q, v = params.p, params.q, params.v
    return p * (v + x * m) / (p * x + q - 1)


def predict(
    bgnbd: BgNbdParams,
    gamma_gamma: GammaGammaParams,
    summary: RepeatSummary,
    horizon_days: int,
    annual_discount_rate: float,
) -> Predictions:
    """P(alive), expected purchases and order value, and the discounted CLV over the horizon.

    CLV = sum over 30-day steps k of (E[Y(t_k)] - E[Y(t_k-1)]) * E[M] / (1 + d)^(t_k / 365),
    with t_k = min(30 k, horizon): each step's purchases are discounted at the step's end.
    """
    x, t_x, T = (_Coded.of(col) for col in (summary.frequency, summary.recency, summary.age))
    alive = _p_alive(bgnbd, x, t_x, T)
    value = expected_order_value(gamma_gamma, summary.frequency, summary.monetary)
    steps = [*list(range(CLV_STEP_DAYS, horizon_days, CLV_STEP_DAYS)), horizon_days]
    x_pairs, T_pairs, pair = _pairs(x, T)  # the alive-expectation depends on (x, T) only
    previous = np.zeros(len(x_pairs))
    discounted = np.zeros(len(x_pairs))
    for t in steps:
        current = _alive_expectation(bgnbd, float(t), x_pairs, T_pairs)
        discounted += (current - previous) / (1.0 + annual_discount_rate) ** (t / DAYS_PER_YEAR)
        previous = current
    return Predictions(alive, previous[pair] * alive, value, discounted[pair] * alive * value)


def min_data_problem(summary: RepeatSummary, settings: ClvSettings) -> str | None:
    """Why a shop has too little data for a model, or None (docs/enrichment.md "minimum data")."""
    buyers = len(summary)
    repeat = int(np.count_nonzero(summary.frequency))
    if buyers < settings.min_buyers:
        return f"{buyers} buyers, needs at least {settings.min_buyers} (clv.min_buyers)"
    if repeat < settings.min_repeat_buyers:
        return (
            f"{repeat} repeat buyers, needs at least {settings.min_repeat_buyers} "
            "(clv.min_repeat_buyers)"
        )
    history = int(summary.age.max())
    if history < settings.min_history_days:
        return (
            f"{history} days of purchase history, needs at least {settings.min_history_days} "
            "(clv.min_history_days)"
        )
    quiet = int(summary.days_since_last.min())
    if quiet > settings.max_days_since_last_order:
        return (
            f"last purchase {quiet} days before the as-of date, needs one within "
            f"{settings.max_days_since_last_order} (clv.max_days_since_last_order)"
        )
    return None


def fit_shop(summary: RepeatSummary, settings: ClvSettings) -> ShopModel:
    """Fit both models for one shop, or say why not (too little data, no convergence).

    Args:
        summary: one row per buyer of the shop (`shopcrm.enrich.history.repeat_summary`).
        settings: the minimum-data rule.

    Returns:
        A ShopModel whose status is "fitted", "insufficient-data" or "failed", with a message.
    """
    buyers = len(summary)
    repeat = int(np.count_nonzero(summary.frequency))
    problem = min_data_problem(summary, settings)
    if problem is not None:
        return ShopModel(
            "insufficient-data", f"not enough data for a model: {problem}", buyers, repeat
        )
    started = time.perf_counter()
    has_repeat = summary.frequency > 0
    try:
        bgnbd, ll_bg = fit_bgnbd(summary.frequency, summary.recency, summary.age)
        gg, ll_gg = fit_gamma_gamma(summary.frequency[has_repeat], summary.monetary[has_repeat])
    except FitFailed as exc:
        return ShopModel(
            "failed",
            f"model fit failed: {exc}",
            buyers,
            repeat,
            fit_seconds=time.perf_counter() - started,
        )
    elapsed = time.perf_counter() - started
    if gg.q <= 1:
        return ShopModel(
            "failed",
            f"Gamma-Gamma q = {gg.q:.3g} <= 1: the mean spend is unbounded, no value predicted",
            buyers,
            repeat,
            bgnbd,
            gg,
            {"bgnbd": ll_bg, "gamma_gamma": ll_gg},
            elapsed,
        )
    return ShopModel(
        "fitted",
        f"fitted on {buyers} buyers ({repeat} repeat)",
        buyers,
        repeat,
        bgnbd,
        gg,
        {"bgnbd": ll_bg, "gamma_gamma": ll_gg},
        elapsed,
    )
