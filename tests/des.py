"""A seeded discrete-event simulation of one serving replica: the system docs/model.md ("Serving") defines and
engine/serving/queueing.py approximates in closed form (used only by the tests).

Iteration by iteration: arrivals wait for a slot (FCFS, at most `slots` admitted); at the start of each
iteration the admitted prompts take up to `chunk` prompt tokens in arrival order; every decoding sequence
advances one token; the iteration lasts step(n, k). A prompt's first token comes at the end of the
iteration that finishes it; a request leaves after O-1 further iterations.
"""

from __future__ import annotations

from collections import deque

import numpy as np


def simulate(step, lam: float, prompt: int, output: int, chunk: float, slots: float, requests: int, seed: int = 0):
    """TTFT and TPOT (seconds) of each request after the first tenth (warm-up), and the busy share."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / lam, requests))
    first = np.full(requests, np.nan)
    finish = np.full(requests, np.nan)
    waiting: deque[int] = deque()
    prefill: deque[list] = deque()
    decoding: deque[tuple[int, int]] = deque()
    t, counter, nxt, occupied, done, busy = 0.0, 0, 0, 0, 0, 0.0
    while done < requests:
        while nxt < requests and arrivals[nxt] <= t:
            waiting.append(nxt)
            nxt += 1
        while waiting and occupied < slots:
            prefill.append([waiting.popleft(), prompt])
            occupied += 1
        n = len(decoding)
        if n == 0 and not prefill:
            t = arrivals[nxt]
            continue
        budget, k, finished = chunk, 0, []
        for entry in prefill:
            take = min(entry[1], budget)
            entry[1] -= take
            budget -= take
            k += take
            if entry[1] == 0:
                finished.append(entry[0])
            if budget <= 0:
                break
        for _ in finished:
            prefill.popleft()
        dt = float(step(n, k))
        t += dt
        busy += dt
        counter += 1
        while decoding and decoding[0][0] <= counter:
            _, rid = decoding.popleft()
            finish[rid] = t
            occupied -= 1
            done += 1
        for rid in finished:
            first[rid] = t
            if output <= 1:
                finish[rid] = t
                occupied -= 1
                done += 1
            else:
                decoding.append((counter + output - 1, rid))
    keep = slice(requests // 10, None)
    ttft = first[keep] - arrivals[keep]
    tpot = (finish[keep] - first[keep]) / max(output - 1, 1)
    return ttft, tpot, busy / t
