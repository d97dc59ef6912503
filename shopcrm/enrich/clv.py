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
from scipy.special import betaln, digamma, gammaln, hyp2f1

from shopcrm.config import ClvSettings

FloatArray = NDArray[np.float64]

LOG_BOUND = math.log(1e6)  # every parameter lives in [1e-6, 1e6]; touching a bound is a failure
CLV_STEP_DAYS = 30  # purchases are discounted at the end of each 30-day step of the horizon
DAYS_PER_YEAR = 365.0
GRADIENT_TOLERANCE = 1e-4  # of the mean per-customer log-likelihood, in log-parameter space

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


def _unique_rows(*columns: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Index of one representative per distinct row, and each row's distinct-row number."""
    order = np.lexsort(columns[::-1])
    change = np.zeros(len(order), dtype=bool)
    change[:1] = True
    for col in columns:
        ordered = col[order]
        change[1:] |= ordered[1:] != ordered[:-1]
    number = np.cumsum(change) - 1
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[order] = number
    return order[change], inverse


def _compress(*columns: NDArray[np.float64]) -> tuple[list[FloatArray], FloatArray]:
    """Distinct rows and their counts: the likelihood is a weighted sum over them."""
    first, inverse = _unique_rows(*columns)
    counts = np.bincount(inverse, minlength=len(first)).astype(np.float64)
    return [col[first] for col in columns], counts


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
    after a repeat), so that branch is masked explicitly instead of evaluating b+x-1.
    The special functions depend on x alone, so they are evaluated once per distinct x
    (`x_levels`: the distinct values and each row's index into them; computed when absent).
    """
    r, alpha, a, b = np.exp(log_params)
    levels, index = x_levels if x_levels is not None else np.unique(x, return_inverse=True)
    repeat = x > 0
    log_at = np.log(alpha + T)
    log_atx = np.log(alpha + t_x)
    base = (
        (gammaln(r + levels) + betaln(a, b + levels))[index]
        - gammaln(r)
        + r * math.log(alpha)
        - (r + x) * log_at
        - betaln(a, b)
    )
    d = np.full_like(x, -np.inf)
    bx1 = np.where(repeat, b + x - 1.0, 1.0)
    d[repeat] = (
        math.log(a) - np.log(bx1[repeat]) + (r + x[repeat]) * (log_at[repeat] - log_atx[repeat])
    )
    ll = base + np.logaddexp(0.0, d)
    w = np.where(repeat, 1.0 / (1.0 + np.exp(-d)), 0.0)  # weight of the dropout-after-t_x term
    d_r = (
        digamma(r + levels)[index] - digamma(r) + math.log(alpha) - log_at + w * (log_at - log_atx)
    )
    d_alpha = (
        r / alpha - (r + x) / (alpha + T) + w * (r + x) * (1 / (alpha + T) - 1 / (alpha + t_x))
    )
    psi_ab = digamma(a + b)
    psi_abx = digamma(a + b + levels)[index]
    d_a = psi_ab - psi_abx + w / a
    d_b = digamma(b + levels)[index] - psi_abx - digamma(b) + psi_ab - w / bx1
    grad = np.array(
        [
            r * np.dot(weights, d_r),
            alpha * np.dot(weights, d_alpha),
            a * np.dot(weights, d_a),
            b * np.dot(weights, d_b),
        ]
    )
    return float(np.dot(weights, ll)), grad


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
    p, q, v = np.exp(log_params)
    levels, index = x_levels if x_levels is not None else np.unique(x, return_inverse=True)
    px = p * x
    p_levels = p * levels
    log_vmx = np.log(v + m * x)
    log_m = np.log(m)
    log_x = np.log(x)
    ll = (
        (gammaln(p_levels + q) - gammaln(p_levels))[index]
        - gammaln(q)
        + q * math.log(v)
        + (px - 1) * log_m
        + px * log_x
        - (px + q) * log_vmx
    )
    psi_pxq = digamma(p_levels + q)[index]
    d_p = x * (psi_pxq - digamma(p_levels)[index] + log_m + log_x - log_vmx)
    d_q = psi_pxq - digamma(q) + math.log(v) - log_vmx
    d_v = q / v - (px + q) / (v + m * x)
    grad = np.array([p * np.dot(weights, d_p), q * np.dot(weights, d_q), v * np.dot(weights, d_v)])
    return float(np.dot(weights, ll)), grad


def _maximise(
    log_likelihood: object,
    start: FloatArray,
    args: tuple[object, ...],
    total_weight: float,
) -> Fit:
    """Maximise a log-likelihood with L-BFGS-B in log space and check that it converged."""

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        value, grad = log_likelihood(theta, *args)  # type: ignore[operator]
        if not np.isfinite(value) or not np.all(np.isfinite(grad)):
            return np.inf, np.zeros_like(theta)
        return -value / total_weight, -grad / total_weight

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
    (xu, txu, Tu), w = _compress(
        np.asarray(x, np.float64), np.asarray(t_x, np.float64), np.asarray(T, np.float64)
    )
    rate = max(float(np.dot(w, xu)), 1.0) / max(float(np.dot(w, Tu)), 1.0)
    start = np.array([0.0, math.log(1.0 / rate), 0.0, 0.0])
    levels = np.unique(xu, return_inverse=True)
    fit = _maximise(bgnbd_log_likelihood, start, (xu, txu, Tu, w, levels), float(w.sum()))
    r, alpha, a, b = (float(v) for v in fit.params)
    return BgNbdParams(r, alpha, a, b), fit.log_likelihood


def fit_gamma_gamma(x: FloatArray, m: FloatArray) -> tuple[GammaGammaParams, float]:
    """Maximum-likelihood Gamma-Gamma parameters and the log-likelihood (customers with x > 0).

    The values are divided by their median while fitting, so the optimiser's bounds and
    tolerances do not depend on the currency; v and the log-likelihood are scaled back.

    Raises:
        FitFailed: the optimiser did not reach an interior optimum.
    """
    x = np.asarray(x, np.float64)
    m = np.asarray(m, np.float64)
    scale = float(np.median(m))
    (xu, mu), w = _compress(x, m / scale)
    levels = np.unique(xu, return_inverse=True)
    start = np.array([0.0, math.log(2.0), 0.0])
    fit = _maximise(gamma_gamma_log_likelihood, start, (xu, mu, w, levels), float(w.sum()))
    p, q, v = (float(val) for val in fit.params)
    return GammaGammaParams(p, q, v * scale), fit.log_likelihood - len(m) * math.log(scale)


def p_alive(params: BgNbdParams, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    """P(alive | x, t_x, T) [FHL08]: 1 / (1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))."""
    x = np.asarray(x, np.float64)
    return 1.0 / (
        1.0 + _dropout_odds(params, x, np.asarray(t_x, np.float64), np.asarray(T, np.float64))
    )


def _dropout_odds(params: BgNbdParams, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    odds = np.zeros_like(x)
    repeat = x > 0  # with no repeat purchase the customer is alive by assumption of the model
    xr = x[repeat]
    odds[repeat] = np.exp(
        math.log(a)
        - np.log(b + xr - 1)
        + (r + xr) * (np.log(alpha + T[repeat]) - np.log(alpha + t_x[repeat]))
    )
    return odds


def expected_purchases(
    params: BgNbdParams, t: float, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    """E[Y(t) | x, t_x, T], purchases in the next t days [FHL05 eq. (10)].

    E = (a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))]
        * P(alive)
    The bracketed factor depends on (x, T) only, so it is evaluated once per distinct pair.
    """
    x = np.asarray(x, np.float64)
    T = np.asarray(T, np.float64)
    first, inverse = _unique_rows(x, T)
    factor = _alive_expectation(params, t, x[first], T[first])[inverse]
    return factor * p_alive(params, x, np.asarray(t_x, np.float64), T)


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
    x = summary.frequency.astype(np.float64)
    t_x = summary.recency.astype(np.float64)
    T = summary.age.astype(np.float64)
    alive = p_alive(bgnbd, x, t_x, T)
    value = expected_order_value(gamma_gamma, x, summary.monetary)
    steps = [*list(range(CLV_STEP_DAYS, horizon_days, CLV_STEP_DAYS)), horizon_days]
    first, inverse = _unique_rows(x, T)  # the alive-expectation depends on (x, T) only
    previous = np.zeros(len(first))
    discounted = np.zeros(len(first))
    for t in steps:
        current = _alive_expectation(bgnbd, float(t), x[first], T[first])
        discounted += (current - previous) / (1.0 + annual_discount_rate) ** (t / DAYS_PER_YEAR)
        previous = current
    return Predictions(alive, previous[inverse] * alive, value, discounted[inverse] * alive * value)


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
