"""The one FIFO batching kernel: the batches of one queue served by time-windowed replicas.

Every engine path runs this function: the plain simulator (planner.sim.simulate) is the schedule
engine with constant windows (every replica ready at 0, never stopped, one configuration), and
per-replica queues are one call per replica. planner.sim.jit compiles this same source with numba;
a test holds the two to bit-identical results. The reference event loop (planner.sim.events) is an
independent implementation of the same rule.

The rule. Items are the queue's ready times ``a[0] <= a[1] <= ...`` (ties already ordered by
request, then item). Window ``w`` (a replica) has a configuration ``c = cfg[w]`` (batch size
``b_c``, batch timeout ``T_c``, service table), is ready at ``R_w``, starts no batch at or after
``S_w``, and is free at ``f_w`` (initially ``R_w``). With ``s`` the oldest waiting item, window w
could start its next batch at

    t_w = max(f_w, min(a[s + b_c - 1], a[s] + T_c))      (the b_c-th item arrives, or the head's timeout)

and the batch goes to the window with the least ``t_w < S_w`` (ties: the earliest free ``f_w``,
then the lowest window index). It takes the items with ``a[i] <= t``, at most ``b_c``; with
request deadlines ``d[i]`` an item with ``d[i] <= t`` is dequeued and discarded instead (it counted
toward filling the batch until then; drops are lazy), and if every dequeued item had expired no
batch starts and the window stays free. A batch of m items whose first served item sits at stage
position p is served in

    base[c, m] * exp(sigma[c, m] * z[p])    (lognormal; z standard normal)
    base[c, m] * e[p]                       (exponential; e standard exponential)
    base[c, m]                              (deterministic)

Serverless configurations (planner.spec.ResourceClass) add two per-configuration terms, both 0 for
a VM: a *spill preference* ``P_c``, and a *cold start* ``C_c``: an instance whose last batch ended
more than ``K_c`` before ``t_w`` (or that never served) boots first, so the batch it was given
starts at ``t_w + C_c`` (the router does not foresee the cold start; the request pays it).

The spill router. Windows with ``P_c > 0`` (spill windows) are a pool the queue overflows to:
the batch goes to the best spill window (the least ``t_w + P_c``, same ties) only when

    t_w + P_c  <  min over the other windows of max(f_w, a[s])

i.e. when the head would wait longer than ``P_c`` for any other window to be *free*; otherwise
the rule above picks among the other windows. The comparison is with a window's free time, not
with ``t_w``: a VM that is free but still forming a batch (waiting up to ``T_c`` for it to fill)
is not a VM the head waits for, so a plan's batching delay never spills (comparing ``t_w`` did:
with a batch timeout above ``P_c`` every lone request left an idle VM for a function). Windows
with ``P_c = 0`` are compared as VMs, cold start or not. With no spill window the rule above is
unchanged.

With one configuration and every window ready at 0 and never stopped, ``min_w t_w = max(min_w f_w,
due)``: the classic heap of replica free times, i.e. the batching rule of planner.estimate.latency.

The function is written to run both interpreted (on Python lists, the fallback when numba is
absent) and compiled (on numpy arrays): scalar indexing and arithmetic only, outputs written into
preallocated buffers, per-configuration tables flattened as ``table[c * width + m]``.
"""

from __future__ import annotations

import math

LOGNORMAL, EXPONENTIAL, DETERMINISTIC = 0, 1, 2  # service kinds as the kernel sees them


def fifo_windows(arr, deadline, use_deadline, draws, pos0, stride, kind,
                 batch_size, timeout_ms, base_ms, sigma, width,
                 win_config, win_ready_ms, win_stop_ms, order,
                 cold_ms, warm_ms, spill_ms,
                 takes, starts, ends, owner, item_batch, last_end_ms, free_ms, active):
    """Batch the queue ``arr`` (sorted ready times); returns the number of batches written.

    Inputs: ``deadline``/``use_deadline`` (per item; drop at dequeue when ``deadline[i] <= t``),
    ``draws`` (the stage's random draws; item i's stage position is ``pos0 + stride * i``),
    ``kind`` (LOGNORMAL/EXPONENTIAL/DETERMINISTIC), per configuration ``batch_size``,
    ``timeout_ms`` and the flattened ``base_ms``/``sigma`` tables of row ``width``, per window
    ``win_config``, ``win_ready_ms``, ``win_stop_ms``, and ``order`` (windows sorted by (ready, index));
    per configuration ``cold_ms``, ``warm_ms`` (keep-warm) and ``spill_ms`` (all 0 for VMs).
    Outputs, per batch: ``takes`` (items), ``starts``, ``ends``, ``owner`` (window); per item
    ``item_batch`` (written only with deadlines; -1 must be pre-filled); per window ``last_end_ms``.
    ``free_ms`` and ``active`` are scratch of one entry per window. A negative return ``-1 - s``
    means no window can ever serve item ``s`` (every one has stopped).
    """
    n = len(arr)
    n_windows = len(win_config)
    for w in range(n_windows):
        free_ms[w] = win_ready_ms[w]
        last_end_ms[w] = -math.inf
    n_active = 0
    next_stop = math.inf  # the earliest stop among active windows: prune only once it has passed
    nxt = 0
    count = 0
    s = 0
    while s < n:
        a_s = arr[s]
        if next_stop <= a_s:  # a batch starts no earlier than a[s]: windows stopped by then are done
            k = 0
            next_stop = math.inf
            for q in range(n_active):
                w = active[q]
                if win_stop_ms[w] > a_s:
                    active[k] = w
                    k += 1
                    if win_stop_ms[w] < next_stop:
                        next_stop = win_stop_ms[w]
            n_active = k
        best_w = -1  # the best window without a spill preference (the plain rule)
        best_t = math.inf
        best_key = math.inf
        best_free = math.inf
        free_at = math.inf  # the earliest such a window is free for the head: min max(f_w, a[s])
        sp_w = -1  # the best spill window (by t_w + P_c)
        sp_t = math.inf
        sp_key = math.inf
        sp_free = math.inf
        q = 0
        while True:
            while q < n_active:
                w = active[q]
                q += 1
                c = win_config[w]
                due = a_s + timeout_ms[c]
                j = s + batch_size[c] - 1
                if j < n and arr[j] < due:
                    due = arr[j]
                f = free_ms[w]
                t = f if f > due else due
                if t >= win_stop_ms[w]:
                    continue
                key = t + spill_ms[c]  # the router's choice: the cold start is paid, not foreseen
                if cold_ms[c] > 0.0 and t - last_end_ms[w] > warm_ms[c]:
                    t += cold_ms[c]
                if spill_ms[c] > 0.0:
                    if key < sp_key or (key == sp_key and (f < sp_free or (f == sp_free and w < sp_w))):
                        sp_w = w
                        sp_t = t
                        sp_key = key
                        sp_free = f
                    continue
                avail = f if f > a_s else a_s
                if avail < free_at:
                    free_at = avail
                if key < best_key or (key == best_key and (f < best_free or (f == best_free and w < best_w))):
                    best_w = w
                    best_t = t
                    best_key = key
                    best_free = f
            # A window not yet admitted starts no earlier than its ready time. Once a spill window
            # is a candidate, windows up to its key can still matter, one ready exactly at it too
            # (it is free by then: no spill); a later one cannot (its t_w + P_c and its free time
            # are both past the bound).
            bound = best_key
            if sp_w >= 0 and sp_key > bound:
                bound = sp_key
            if nxt < n_windows and (win_ready_ms[order[nxt]] < bound
                                    or (sp_w >= 0 and win_ready_ms[order[nxt]] == sp_key)):
                w = order[nxt]
                active[n_active] = w
                n_active += 1
                nxt += 1
                if win_stop_ms[w] < next_stop:
                    next_stop = win_stop_ms[w]
                continue
            break
        if sp_w >= 0 and (best_w < 0 or sp_key < free_at):
            best_w = sp_w  # spill: the head would wait longer than P_c for every other window
            best_t = sp_t
        if best_w < 0:
            return -1 - s
        c = win_config[best_w]
        b = batch_size[c]
        t = best_t
        m = 0
        first = s
        i = s
        if use_deadline:
            first = -1
            while i < n and m < b and arr[i] <= t:
                if deadline[i] > t:
                    item_batch[i] = count
                    if first < 0:
                        first = i
                    m += 1
                i += 1
        else:
            while i < n and m < b and arr[i] <= t:
                i += 1
                m += 1
        s = i
        if m == 0:
            continue  # everything dequeued had expired; the window stays free
        cell = c * width + m
        p = pos0 + stride * first
        if kind == LOGNORMAL:
            service = base_ms[cell] * math.exp(sigma[cell] * draws[p])
        elif kind == EXPONENTIAL:
            service = base_ms[cell] * draws[p]
        else:
            service = base_ms[cell]
        end = t + service
        free_ms[best_w] = end
        last_end_ms[best_w] = end
        takes[count] = m
        starts[count] = t
        ends[count] = end
        owner[count] = best_w
        count += 1
    return count
