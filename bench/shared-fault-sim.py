#!/usr/bin/env python3
"""How often the docs plan's canary-versus-baseline error rule fires on a
fault both versions share, and how soon it catches a real +5% regression:
a Monte Carlo of its first step, not a run of golive.

The model is the e2e scenario "8% errors on both" (crates/golive/tests/it/
rollout_e2e.rs): 200 req/s, the canary at 25%, every request failing with
probability 0.08 on either version; `error_rate` over 20 s windows (the
canary's window starts empty at the weight change, the stable one is
full); one evaluation a second from the end of `warmup`; the rule
`canary.error_rate - stable.error_rate > 3% for HOLD` fires once it has
held HOLD evaluations in a row; the step lasts `warmup + 12 s`.

Usage: bench/shared-fault-sim.py [TRIALS]   (default 5000; pure Python)
"""
import random
import sys


def binom(n, p):
    return sum(1 for _ in range(n) if random.random() < p)


def step(warmup, hold, canary_p, stable_p=0.08, rate=200, pause=12):
    """The second the rule fires in one step, or None."""
    c_req, c_err = [], []
    s_req, s_err = [rate] * 30, [binom(rate, stable_p) for _ in range(30)]
    held = 0
    for t in range(1, warmup + pause + 1):
        nc = binom(rate, 0.25)
        c_req.append(nc)
        c_err.append(binom(nc, canary_p))
        s_req.append(rate - nc)
        s_err.append(binom(rate - nc, stable_p))
        if t >= warmup:
            canary = sum(c_err[-20:]) / max(1, sum(c_req[-20:]))
            stable = sum(s_err[-20:]) / sum(s_req[-20:])
            held = held + 1 if canary - stable > 0.03 else 0
            if held > hold:
                return t
    return None


def main():
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    random.seed(20261207)
    print(f"{'warmup':>6} {'for':>4} {'false rollbacks':>16} {'+5% caught in step':>19} {'mean s':>7}")
    for warmup, hold in [(5, 5), (10, 5), (5, 10), (10, 10)]:
        false = sum(step(warmup, hold, 0.08) is not None for _ in range(trials))
        caught = [step(warmup, hold, 0.13) for _ in range(trials // 5)]
        hits = [t for t in caught if t is not None]
        print(
            f"{warmup:>5}s {hold:>3}s {false / trials:>15.2%} {len(hits) / len(caught):>18.1%}"
            f" {sum(hits) / max(1, len(hits)):>7.1f}"
        )


if __name__ == "__main__":
    main()
