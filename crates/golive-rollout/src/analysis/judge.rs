//! The canary-versus-baseline judge, after Kayenta: is the canary's metric
//! worse than the stable version's *over the same minutes*, beyond noise and
//! beyond a tolerated effect?
//!
//! This module owns the statistics. Given the values of one metric gathered
//! on each side during a step (one per evaluation):
//!
//! 1. Non-finite values are dropped, then outliers are removed per group
//!    with Tukey's fences: outside `[Q1 − 1.5·IQR, Q3 + 1.5·IQR]`, the
//!    quartiles interpolated linearly (Hyndman–Fan type 7, numpy's
//!    default). If the fences would remove more than a tenth of a group
//!    (and more than one value) the group is kept whole: a tail that heavy
//!    is the distribution (say, an error rate that is mostly zero and often
//!    not), not a few glitches, and removing it would hide exactly what the
//!    judge is for.
//! 2. With fewer than [`MIN_SAMPLES`] values left on a side the verdict is
//!    inconclusive.
//! 3. Mann–Whitney U, two-sided, with the normal approximation, the tie
//!    correction of the variance and a continuity correction of 0.5 — the
//!    same numbers as `scipy.stats.mannwhitneyu(canary, baseline,
//!    method="asymptotic")`. `u` is the canary's U; `z` is signed, positive
//!    when the canary tends to be larger. There is no exact small-sample
//!    test: with at least five values a side the approximation is usable,
//!    and golive gathers one value per interval for minutes.
//! 4. The effect is the relative difference of medians,
//!    `(canary median − baseline median) / |baseline median|`; with a
//!    baseline median of 0 it is 0 when the canary's median is 0 too and
//!    ±∞ otherwise (any move away from zero exceeds every relative
//!    tolerance; ∞ is written as `null` in JSON).
//! 5. The verdict is `Fail` only when all three hold: `p < 1 − confidence`,
//!    the difference goes the regression way (`z` and the effect both
//!    positive when `fail_when_increase`, both negative otherwise), and
//!    `|effect| > tolerance`. Anything else is `Pass`, with the same numbers.
//!
//! Because both groups are sampled over the same minutes, load that hits
//! both (a latency spike on the whole fleet) moves both distributions and
//! leaves the comparison even, where a fixed threshold on the canary alone
//! would fail.

use serde::Serialize;

/// The fewest values per side, after outlier removal, for a verdict.
pub const MIN_SAMPLES: usize = 5;

/// The largest share of a group Tukey's fences may remove (one value may
/// always go).
pub const MAX_OUTLIER_SHARE: f64 = 0.1;

/// The judge's result for one metric.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JudgeResult {
    /// The metric compared.
    pub metric: String,
    /// The verdict and its numbers.
    #[serde(flatten)]
    pub verdict: JudgeVerdict,
}

/// A judge's verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum JudgeVerdict {
    /// No significant regression beyond the tolerance.
    Pass(JudgeStats),
    /// A significant regression beyond the tolerance.
    Fail(JudgeStats),
    /// Too little data.
    Inconclusive {
        /// Why.
        why: String,
    },
}

/// The numbers behind a verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JudgeStats {
    /// Two-sided p-value of the Mann–Whitney U test.
    pub p_value: f64,
    /// Relative difference of medians (canary vs baseline).
    pub effect: f64,
    /// Median of the canary's values (after outlier removal).
    pub canary_median: f64,
    /// Median of the baseline's values (after outlier removal).
    pub baseline_median: f64,
    /// 95th percentile of the canary's values (after outlier removal),
    /// interpolated between the two nearest values (type 7).
    pub canary_p95: f64,
    /// 95th percentile of the baseline's values, likewise.
    pub baseline_p95: f64,
    /// The canary's U statistic.
    pub u: f64,
    /// Normal score, positive when the canary tends to be larger.
    pub z: f64,
    /// Canary values used.
    pub canary_n: usize,
    /// Baseline values used.
    pub baseline_n: usize,
    /// Canary values removed (outliers, non-finite).
    pub canary_removed: usize,
    /// Baseline values removed (outliers, non-finite).
    pub baseline_removed: usize,
    /// The confidence required.
    pub confidence: f64,
    /// The relative effect tolerated.
    pub tolerance: f64,
}

/// The outcome of a Mann–Whitney U test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MannWhitney {
    /// U of the first sample: `R₁ − n₁(n₁+1)/2`.
    pub u: f64,
    /// Continuity-corrected normal score, signed (positive: the first
    /// sample tends to be larger).
    pub z: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

/// Compares `canary` with `baseline` for the plan's judge `judge`.
pub fn compare(judge: &golive_plan::Judge, baseline: &[f64], canary: &[f64]) -> JudgeResult {
    let verdict = verdict(judge, baseline, canary);
    JudgeResult {
        metric: judge.metric.clone(),
        verdict,
    }
}

fn verdict(judge: &golive_plan::Judge, baseline: &[f64], canary: &[f64]) -> JudgeVerdict {
    let (b, b_removed) = tukey_filter(baseline);
    let (c, c_removed) = tukey_filter(canary);
    if b.len() < MIN_SAMPLES || c.len() < MIN_SAMPLES {
        return JudgeVerdict::Inconclusive {
            why: format!(
                "`{}` needs at least {MIN_SAMPLES} values per side after outlier removal; \
                 baseline has {} ({} removed), canary {} ({} removed)",
                judge.metric,
                b.len(),
                b_removed,
                c.len(),
                c_removed
            ),
        };
    }
    let (Some(test), Some(bm), Some(cm)) = (mann_whitney(&c, &b), median(&b), median(&c)) else {
        return JudgeVerdict::Inconclusive {
            why: format!("`{}`: no values to compare", judge.metric),
        };
    };
    let effect = relative_effect(cm, bm);
    let stats = JudgeStats {
        p_value: test.p_value,
        effect,
        canary_median: cm,
        baseline_median: bm,
        // `tukey_filter` returns the values sorted.
        canary_p95: quantile(&c, 0.95).unwrap_or(cm),
        baseline_p95: quantile(&b, 0.95).unwrap_or(bm),
        u: test.u,
        z: test.z,
        canary_n: c.len(),
        baseline_n: b.len(),
        canary_removed: c_removed,
        baseline_removed: b_removed,
        confidence: judge.confidence,
        tolerance: judge.tolerance,
    };
    let significant = test.p_value < 1.0 - judge.confidence;
    let regression = if judge.fail_when_increase {
        test.z > 0.0 && effect > judge.tolerance
    } else {
        test.z < 0.0 && effect < -judge.tolerance
    };
    if significant && regression {
        JudgeVerdict::Fail(stats)
    } else {
        JudgeVerdict::Pass(stats)
    }
}

/// `(canary − baseline) / |baseline|`, with the zero-baseline convention
/// of the module doc.
pub fn relative_effect(canary_median: f64, baseline_median: f64) -> f64 {
    let diff = canary_median - baseline_median;
    if baseline_median == 0.0 {
        if diff == 0.0 {
            0.0
        } else {
            diff.signum() * f64::INFINITY
        }
    } else {
        diff / baseline_median.abs()
    }
}

/// The `p` quantile of sorted values, interpolated linearly (type 7).
pub fn quantile(sorted: &[f64], p: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let h = p.clamp(0.0, 1.0) * last as f64;
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    let (a, b) = (*sorted.get(lo)?, *sorted.get(hi)?);
    Some(a + (h - lo as f64) * (b - a))
}

/// The median.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    quantile(&v, 0.5)
}

/// Finite values inside Tukey's fences (sorted), and how many were removed
/// — none, beyond non-finite values, when the fences would remove more than
/// one value and more than [`MAX_OUTLIER_SHARE`] of the group.
pub fn tukey_filter(values: &[f64]) -> (Vec<f64>, usize) {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    let non_finite = values.len() - v.len();
    v.sort_by(f64::total_cmp);
    let (Some(q1), Some(q3)) = (quantile(&v, 0.25), quantile(&v, 0.75)) else {
        return (v, non_finite);
    };
    let iqr = q3 - q1;
    let (low, high) = (q1 - 1.5 * iqr, q3 + 1.5 * iqr);
    let kept: Vec<f64> = v
        .iter()
        .copied()
        .filter(|x| *x >= low && *x <= high)
        .collect();
    let outliers = v.len() - kept.len();
    if outliers > 1 && outliers as f64 > MAX_OUTLIER_SHARE * v.len() as f64 {
        return (v, non_finite);
    }
    (kept, non_finite + outliers)
}

/// Mann–Whitney U of `x` against `y` (two-sided, normal approximation with
/// tie and continuity corrections); `None` when a sample is empty.
pub fn mann_whitney(x: &[f64], y: &[f64]) -> Option<MannWhitney> {
    let (n1, n2) = (x.len(), y.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let mut all: Vec<(f64, bool)> = x
        .iter()
        .map(|v| (*v, true))
        .chain(y.iter().map(|v| (*v, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = all.len();
    let mut r1 = 0.0;
    let mut ties = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && all[j].0 == all[i].0 {
            j += 1;
        }
        // Ranks i+1..=j share their average.
        let rank = (i + 1 + j) as f64 / 2.0;
        let t = (j - i) as f64;
        ties += t * t * t - t;
        r1 += rank * all[i..j].iter().filter(|(_, first)| *first).count() as f64;
        i = j;
    }
    let (n1f, n2f, nf) = (n1 as f64, n2 as f64, n as f64);
    let u = r1 - n1f * (n1f + 1.0) / 2.0;
    let mu = n1f * n2f / 2.0;
    let var = n1f * n2f / 12.0 * ((nf + 1.0) - ties / (nf * (nf - 1.0)));
    if var.is_nan() || var <= 0.0 {
        // Every value tied: no evidence of any difference.
        return Some(MannWhitney {
            u,
            z: 0.0,
            p_value: 1.0,
        });
    }
    let d = u - mu;
    let z = d.signum() * (d.abs() - 0.5).max(0.0) / var.sqrt();
    let p_value = erfc(z.abs() / std::f64::consts::SQRT_2).min(1.0);
    Some(MannWhitney { u, z, p_value })
}

/// The complementary error function (Numerical Recipes' Chebyshev fit,
/// fractional error below 1.2e-7 everywhere — ample for p-values).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let ans = t * poly.exp();
    if x >= 0.0 { ans } else { 2.0 - ans }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erfc_known_values() {
        // Two-sided normal tail at 1.96 is 0.0499958 (standard tables).
        assert!((erfc(1.96 / std::f64::consts::SQRT_2) - 0.049_995_8).abs() < 1e-6);
        assert!((erfc(0.0) - 1.0).abs() < 1e-7);
        assert!((erfc(-1.0) - 1.842_700_79).abs() < 1e-6);
        assert!(erfc(30.0) >= 0.0);
    }

    #[test]
    fn the_reason_reports_interpolated_quantiles() {
        let judge = golive_plan::Judge {
            metric: "latency".into(),
            fail_when_increase: true,
            confidence: 0.95,
            tolerance: 0.1,
        };
        let baseline: Vec<f64> = (1..=20).map(f64::from).collect();
        let canary: Vec<f64> = (1..=20).map(|x| f64::from(x) * 2.0).collect();
        let JudgeVerdict::Fail(stats) = compare(&judge, &baseline, &canary).verdict else {
            panic!("a twice slower canary fails");
        };
        // Between the 19th and 20th values, not one of them.
        assert!((stats.baseline_p95 - 19.05).abs() < 1e-9, "{stats:?}");
        assert!((stats.canary_p95 - 38.1).abs() < 1e-9, "{stats:?}");
    }

    #[test]
    fn type7_quantiles() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.25), Some(1.75));
        assert_eq!(quantile(&v, 0.75), Some(3.25));
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
    }
}
