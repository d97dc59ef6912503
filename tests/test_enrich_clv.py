"""CLV models: parameter recovery on simulated data, hand-computed expectations, failure modes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate
from scipy.special import betaln, gammaln

from shopcrm.config.schema import ClvSettings
from shopcrm.enrich import clv

TRUTH_BG = clv.BgNbdParams(r=0.8, alpha=20.0, a=1.5, b=6.0)
TRUTH_GG = clv.GammaGammaParams(p=2.0, q=8.0, v=100.0)
HOLDOUT_DAYS = 180.0


def simulate(n: int, seed: int) -> dict[str, np.ndarray]:
    """Customers drawn from BG/NBD and Gamma-Gamma with TRUTH_* (continuous time, in days).

    Each customer first buys at time 0 and is observed for T days (365-1095); after every
    repeat purchase it drops out with its probability p; spend per purchase is Gamma(p, nu).
    Purchases after T, up to T + HOLDOUT_DAYS, are the holdout.
    """
    rng = np.random.default_rng(seed)
    lam = rng.gamma(TRUTH_BG.r, 1 / TRUTH_BG.alpha, n)
    drop = rng.beta(TRUTH_BG.a, TRUTH_BG.b, n)
    nu = rng.gamma(TRUTH_GG.q, 1 / TRUTH_GG.v, n)
    T = rng.uniform(365, 1095, n)
    x, t_x, hold, spend, t = (np.zeros(n) for _ in range(5))
    alive = np.ones(n, dtype=bool)
    while alive.any():
        idx = np.flatnonzero(alive)
        t[idx] += rng.exponential(1 / lam[idx])
        over = t[idx] > T[idx] + HOLDOUT_DAYS
        alive[idx[over]] = False
        idx = idx[~over]
        in_cal = t[idx] <= T[idx]
        cal = idx[in_cal]
        x[cal] += 1
        t_x[cal] = t[cal]
        spend[cal] += rng.gamma(TRUTH_GG.p, 1 / nu[cal])
        hold[idx[~in_cal]] += 1
        alive[idx[rng.random(len(idx)) < drop[idx]]] = False
    m = np.where(x > 0, spend / np.maximum(x, 1), np.nan)
    return {"x": x, "t_x": t_x, "T": T, "m": m, "holdout": hold}


@pytest.fixture(scope="module")
def simulated() -> dict[str, np.ndarray]:
    return simulate(40_000, seed=0)


def test_bgnbd_recovers_parameters(simulated):
    fit, ll = clv.fit_bgnbd(simulated["x"], simulated["t_x"], simulated["T"])
    for name in ("r", "alpha", "a", "b"):
        assert getattr(fit, name) == pytest.approx(getattr(TRUTH_BG, name), rel=0.10), name
    assert ll < 0


def test_gamma_gamma_recovers_parameters(simulated):
    repeat = simulated["x"] > 0
    fit, _ = clv.fit_gamma_gamma(simulated["x"][repeat], simulated["m"][repeat])
    for name in ("p", "q", "v"):
        assert getattr(fit, name) == pytest.approx(getattr(TRUTH_GG, name), rel=0.10), name


def test_holdout_purchases_match_simulation(simulated):
    fit, _ = clv.fit_bgnbd(simulated["x"], simulated["t_x"], simulated["T"])
    predicted = clv.expected_purchases(
        fit, HOLDOUT_DAYS, simulated["x"], simulated["t_x"], simulated["T"]
    )
    assert predicted.mean() == pytest.approx(simulated["holdout"].mean(), rel=0.05)


def test_gamma_gamma_scale_follows_the_currency(simulated):
    """Fitting the same spend in cents scales v by 100 and leaves p and q unchanged."""
    repeat = simulated["x"] > 0
    x, m = simulated["x"][repeat], simulated["m"][repeat]
    units, _ = clv.fit_gamma_gamma(x, m)
    cents, _ = clv.fit_gamma_gamma(x, m * 100)
    assert cents.p == pytest.approx(units.p, rel=1e-4)
    assert cents.q == pytest.approx(units.q, rel=1e-4)
    assert cents.v == pytest.approx(units.v * 100, rel=1e-4)


# Published CDNOW estimates (weeks) from Fader, Hardie & Lee (2005).
CDNOW = clv.BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)


def _by_integration(params: clv.BgNbdParams, t: float, x: int, t_x: float, T: float) -> float:
    """E[Y(t) | x, t_x, T] integrated numerically over the posterior of (lambda, p)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b

    def alive_mean(p: float) -> float:
        # given alive: lambda ~ Gamma(r + x, alpha + T);
        # E[purchases in t] = (1 - E[exp(-lambda p t)]) / p
        return (1 - ((alpha + T) / (alpha + T + p * t)) ** (r + x)) / p

    log_beta = betaln(a, b + x)
    expectation, _ = integrate.quad(
        lambda p: (
            alive_mean(p)
            * math.exp((a - 1) * math.log(p) + (b + x - 1) * math.log1p(-p) - log_beta)
        ),
        0,
        1,
        limit=200,
    )
    odds = 0.0 if x == 0 else a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x)
    return expectation / (1 + odds)


@pytest.mark.parametrize(
    ("x", "t_x", "T", "t"),
    [(2, 30.43, 38.86, 39.0), (0, 0.0, 38.86, 39.0), (5, 20.0, 52.0, 52.0), (1, 1.0, 70.0, 10.0)],
)
def test_conditional_expectation_matches_integration(x, t_x, T, t):
    closed = clv.expected_purchases(CDNOW, t, np.array([x]), np.array([t_x]), np.array([T]))[0]
    assert closed == pytest.approx(_by_integration(CDNOW, t, x, t_x, T), rel=1e-6)


def test_conditional_expectation_matches_hardie_spreadsheet():
    """The CDNOW example of FHL05's companion spreadsheet: x=2, t_x=30.43, T=38.86, t=39."""
    value = clv.expected_purchases(
        CDNOW, 39.0, np.array([2.0]), np.array([30.43]), np.array([38.86])
    )
    assert value[0] == pytest.approx(1.226, abs=1e-3)


def test_p_alive_by_hand():
    # r=1, alpha=1, a=1, b=2, x=1, t_x=1, T=3: odds = 1/(2+1-1) * ((1+3)/(1+1))^2 = 2 -> 1/3
    params = clv.BgNbdParams(r=1.0, alpha=1.0, a=1.0, b=2.0)
    alive = clv.p_alive(params, np.array([1.0, 0.0]), np.array([1.0, 0.0]), np.array([3.0, 3.0]))
    assert alive[0] == pytest.approx(1 / 3)
    assert alive[1] == 1.0  # no repeat purchase: alive by the model's assumption


def test_expected_order_value_by_hand():
    params = clv.GammaGammaParams(p=6.0, q=4.0, v=15.0)
    value = clv.expected_order_value(params, np.array([3.0, 0.0]), np.array([20.0, np.nan]))
    assert value[0] == pytest.approx(6 * (15 + 3 * 20) / (6 * 3 + 4 - 1))  # 450 / 21
    assert value[1] == pytest.approx(6 * 15 / (4 - 1))  # the population mean


def test_log_likelihood_of_one_customer_by_hand():
    """x=0 reduces eq. (6) to (alpha/(alpha+T))^r: e.g. r=1, alpha=1, T=3 -> ln(1/4)."""
    ll, _ = clv.bgnbd_log_likelihood(
        np.log([1.0, 1.0, 1.0, 2.0]),
        np.array([0.0]),
        np.array([0.0]),
        np.array([3.0]),
        np.array([1.0]),
    )
    assert ll == pytest.approx(math.log(0.25))


def test_gradient_matches_finite_differences(simulated):
    x, t_x, T = simulated["x"][:500], simulated["t_x"][:500], simulated["T"][:500]
    w = np.ones(len(x))
    theta = np.log([0.7, 15.0, 1.2, 4.0])
    _, grad = clv.bgnbd_log_likelihood(theta, x, t_x, T, w)
    for i in range(4):
        step = np.zeros(4)
        step[i] = 1e-6
        up, _ = clv.bgnbd_log_likelihood(theta + step, x, t_x, T, w)
        down, _ = clv.bgnbd_log_likelihood(theta - step, x, t_x, T, w)
        assert grad[i] == pytest.approx((up - down) / 2e-6, rel=1e-4)


def test_log_likelihood_when_a_dropout_is_all_but_certain():
    """Odds of a dropout beyond e^745 (many purchases, long ago) must not underflow P(alive)."""
    r, alpha, a, b = 5.0, 0.01, 1.0, 2.0
    x, t_x, T = 300.0, 1.0, 1000.0
    log_odds = math.log(a / (b + x - 1)) + (r + x) * math.log((alpha + T) / (alpha + t_x))
    expected = (
        gammaln(r + x)
        - gammaln(r)
        + r * math.log(alpha)
        - (r + x) * math.log(alpha + T)
        + betaln(a, b + x)
        - betaln(a, b)
        + np.logaddexp(0.0, log_odds)
    )
    ll, grad = clv.bgnbd_log_likelihood(
        np.log([r, alpha, a, b]), np.array([x]), np.array([t_x]), np.array([T]), np.array([1.0])
    )
    assert log_odds > 745
    assert ll == pytest.approx(expected, rel=1e-12)
    assert np.all(np.isfinite(grad))


def test_gamma_gamma_log_likelihood_of_one_customer_by_hand():
    p, q, v, x, m = 2.0, 3.0, 4.0, 2.0, 5.0
    expected = (
        gammaln(p * x + q)
        - gammaln(p * x)
        - gammaln(q)
        + q * math.log(v)
        + (p * x - 1) * math.log(m)
        + p * x * math.log(x)
        - (p * x + q) * math.log(v + m * x)
    )
    ll, _ = clv.gamma_gamma_log_likelihood(
        np.log([p, q, v]), np.array([x]), np.array([m]), np.array([1.0])
    )
    assert ll == pytest.approx(expected, rel=1e-12)


def test_gamma_gamma_gradient_matches_finite_differences(simulated):
    repeat = simulated["x"] > 0
    x, m = simulated["x"][repeat][:500], simulated["m"][repeat][:500]
    w = np.ones(len(x))
    theta = np.log([1.5, 6.0, 80.0])
    _, grad = clv.gamma_gamma_log_likelihood(theta, x, m, w)
    for i in range(3):
        step = np.zeros(3)
        step[i] = 1e-6
        up, _ = clv.gamma_gamma_log_likelihood(theta + step, x, m, w)
        down, _ = clv.gamma_gamma_log_likelihood(theta - step, x, m, w)
        assert grad[i] == pytest.approx((up - down) / 2e-6, rel=1e-4)


def test_day_counts_as_integers_or_floats_give_the_same_model(simulated):
    """Integer day counts take a faster path to their distinct values; the result is the same."""
    days = [np.floor(simulated[k]).astype(np.int64) for k in ("x", "t_x", "T")]
    as_floats = [d.astype(np.float64) for d in days]
    params, ll = clv.fit_bgnbd(*days)
    assert (params, ll) == clv.fit_bgnbd(*as_floats)
    assert np.array_equal(clv.p_alive(params, *days), clv.p_alive(params, *as_floats))
    assert np.array_equal(
        clv.expected_purchases(params, 90.0, *days),
        clv.expected_purchases(params, 90.0, *as_floats),
    )


def test_clv_discounting_and_horizon():
    summary = clv.RepeatSummary(
        frequency=np.array([3]),
        recency=np.array([200]),
        age=np.array([300]),
        monetary=np.array([50.0]),
        days_since_last=np.array([100]),
    )
    undiscounted = clv.predict(TRUTH_BG, TRUTH_GG, summary, 365, 0.0)
    discounted = clv.predict(TRUTH_BG, TRUTH_GG, summary, 365, 0.10)
    assert undiscounted.clv[0] == pytest.approx(
        undiscounted.expected_purchases[0] * undiscounted.expected_order_value[0]
    )
    assert discounted.clv[0] < undiscounted.clv[0]
    assert discounted.clv[0] > undiscounted.clv[0] / 1.10  # each step discounted by <= 1 year


def _summary(n: int, repeat: int, age: int = 400, quiet: int = 5) -> clv.RepeatSummary:
    freq = np.zeros(n, dtype=np.int64)
    freq[:repeat] = 2
    return clv.RepeatSummary(
        frequency=freq,
        recency=np.where(freq > 0, 100, 0),
        age=np.full(n, age),
        monetary=np.where(freq > 0, 30.0, np.nan),
        days_since_last=np.full(n, quiet),
    )


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        (_summary(10, 5), "10 buyers, needs at least 500 (clv.min_buyers)"),
        (_summary(600, 10), "10 repeat buyers, needs at least 50 (clv.min_repeat_buyers)"),
        (_summary(600, 100, age=90), "90 days of purchase history, needs at least 180"),
        (_summary(600, 100, quiet=45), "last purchase 45 days before the as-of date"),
    ],
)
def test_too_little_data_gives_a_message_and_no_numbers(summary, expected):
    model = clv.fit_shop(summary, ClvSettings())
    assert model.status == "insufficient-data"
    assert expected in model.message
    assert model.bgnbd is None
    assert model.gamma_gamma is None


def test_unidentified_fit_fails_cleanly():
    """Identical customers (everyone bought twice on the same days): no interior optimum."""
    summary = _summary(600, 600)
    model = clv.fit_shop(summary, ClvSettings())
    assert model.status == "failed"
    assert model.message.startswith("model fit failed")


def test_fit_shop_on_simulated_days(simulated):
    x = np.floor(simulated["x"]).astype(np.int64)
    summary = clv.RepeatSummary(
        frequency=x,
        recency=np.floor(simulated["t_x"]).astype(np.int64),
        age=np.floor(simulated["T"]).astype(np.int64),
        monetary=simulated["m"],
        days_since_last=np.floor(simulated["T"] - simulated["t_x"]).astype(np.int64),
    )
    model = clv.fit_shop(summary, ClvSettings(max_days_since_last_order=1000))
    assert model.status == "fitted", model.message
    assert model.customers == len(x)
    assert model.repeat_customers == int(np.count_nonzero(x))
    assert model.bgnbd is not None
    assert model.bgnbd.r == pytest.approx(TRUTH_BG.r, rel=0.15)
