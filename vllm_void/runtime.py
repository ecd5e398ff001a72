"""Worker-side void state: per-step plans, per-request evidence and reports.

vLLM's model runner knows which request each token of a step belongs to; the
model only sees flat token rows. Before each forward the plugin calls
:meth:`VoidRuntime.plan_step` with the runner, which turns the requests' void
params into per-row tensors (:class:`StepPlan`) that the void-aware decoder
reads. After the forward, :meth:`VoidRuntime.finish_step` files what LAC saw
into per-request reports, fetched later through ``collective_rpc``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from vllm_void.params import PhaseParams, VoidParams, parse_void_params
from vllm_void.policy import AdaptiveChoice, VoidProfile, load_profile

FINISHED_REPORTS_KEPT = 4096


def external_request_id(internal_id: str) -> str:
    """vLLM appends ``-<8 random chars>`` to every request id it is given."""
    head, sep, tail = internal_id.rpartition("-")
    return head if sep and len(tail) == 8 else internal_id


@dataclass
class StepPlan:
    """Per-row void decisions of one forward step."""

    skip_mask: torch.Tensor  # [rows, layers] bool: row leaves layer out
    skip_np: np.ndarray  # the same, on the host
    any_skip: np.ndarray  # [layers] bool
    all_skip: np.ndarray  # [layers] bool: no real row runs the layer
    need_lac: bool
    alpha: torch.Tensor  # [rows] fp32
    mask_rows: torch.Tensor | None  # [rows] bool: rows read out in mask mode
    row_req: np.ndarray  # [rows] index into req_ids, -1 for padding
    row_pos: np.ndarray  # [rows] token position
    row_decode: np.ndarray  # [rows] bool
    req_ids: list[str]
    activated: torch.Tensor | None = None  # [rows, layers] filled by the decoder


@dataclass
class RequestVoid:
    """What the worker knows about one live request."""

    params: VoidParams
    num_layers: int
    adaptive: AdaptiveChoice | None = None
    bits: dict[int, np.ndarray] = field(default_factory=dict)  # position -> [layers], traced
    decode_positions: set[int] = field(default_factory=set)
    activated: dict[str, int] = field(default_factory=lambda: {"prefill": 0, "decode": 0})
    lac_tokens: dict[str, int] = field(default_factory=lambda: {"prefill": 0, "decode": 0})
    layers_run: dict[str, int] = field(default_factory=lambda: {"prefill": 0, "decode": 0})
    tokens: dict[str, int] = field(default_factory=lambda: {"prefill": 0, "decode": 0})
    skipped: dict[str, tuple[int, ...]] = field(default_factory=dict)
    next_new_position: int = 0  # positions below were already accounted for
    handed_out: bool = False  # its final report was taken; keep nothing on retire

    def account_range(self, first: int, count: int, num_prompt: int, layers_run: int) -> None:
        """Count positions [first, first + count) that all ran ``layers_run`` layers."""
        start = max(first, self.next_new_position)
        end = first + count
        if start >= end:
            return
        prefill = max(0, min(end, num_prompt) - start)
        self.tokens["prefill"] += prefill
        self.tokens["decode"] += end - start - prefill
        self.layers_run["prefill"] += prefill * layers_run
        self.layers_run["decode"] += (end - start - prefill) * layers_run
        self.next_new_position = end

    def account(self, phase: str, pos: int, layers_run: int) -> bool:
        """Count a token once, even when preemption recomputes it."""
        if pos < self.next_new_position:
            return False
        self.next_new_position = pos + 1
        self.tokens[phase] += 1
        self.layers_run[phase] += layers_run
        return True

    @property
    def adaptive_pending(self) -> bool:
        return self.adaptive is None or self.adaptive.skip_set is None

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "num_layers": self.num_layers,
            "params": self.params.to_dict(),
            "tokens": dict(self.tokens),
            "skipped_layers": {
                phase: list(self.skipped.get(phase, ())) for phase in ("prefill", "decode")
            },
            "layers_used": {
                phase: (self.layers_run[phase] / (self.tokens[phase] * self.num_layers))
                if self.tokens[phase]
                else None
                for phase in ("prefill", "decode")
            },
        }
        out["activated_share"] = {
            phase: self.activated[phase] / (self.lac_tokens[phase] * self.num_layers)
            if self.lac_tokens[phase]
            else None
            for phase in ("prefill", "decode")
        }
        if self.params.trace:
            ordered = sorted(self.bits)
            out["trace"] = {
                "prefill": [
                    self.bits[p].tolist() for p in ordered if p not in self.decode_positions
                ],
                "decode": [self.bits[p].tolist() for p in ordered if p in self.decode_positions],
            }
        return out


class VoidRuntime:
    """One per worker process: the bridge between the runner and the decoder."""

    def __init__(self) -> None:
        self.requests: dict[str, RequestVoid] = {}
        self.finished: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.profiles: dict[str, VoidProfile | None] = {}
        self.mlp_rows_run: np.ndarray | None = None  # [layers] rows that ran each MLP
        self.current: StepPlan | None = None

    # -- profile ---------------------------------------------------------
    def profile(self, model: str) -> VoidProfile | None:
        if self.profiles.get(model) is None:
            self.profiles[model] = load_profile(model)
        return self.profiles[model]

    def set_profile(self, model: str, profile: VoidProfile) -> None:
        self.profiles[model] = profile

    # -- requests --------------------------------------------------------
    def _sync_requests(self, live: dict[str, Any], num_layers: int) -> None:
        for req_id in [r for r in self.requests if r not in live]:
            self._retire(req_id)
        for req_id, state in live.items():
            if req_id not in self.requests:
                sp = state.sampling_params
                params = parse_void_params(sp.extra_args if sp is not None else None)
                state = RequestVoid(params=params, num_layers=num_layers)
                if params.decode.skips and params.decode.policy == "adaptive":
                    state.adaptive = AdaptiveChoice(num_layers)
                self.requests[req_id] = state

    def _retire(self, req_id: str) -> None:
        state = self.requests.pop(req_id)
        if state.handed_out:
            return
        self.finished[external_request_id(req_id)] = state.report()
        while len(self.finished) > FINISHED_REPORTS_KEPT:
            self.finished.popitem(last=False)

    def take_reports(self, external_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Final reports of the named (finished) requests, each handed out once.

        A request can still look live here: the runner retires it on its next
        step, which may not have run yet.
        """
        wanted = set(external_ids)
        out = {}
        for req_id, state in self.requests.items():
            ext = external_request_id(req_id)
            if ext in wanted and not state.handed_out:
                out[ext] = state.report()
                state.handed_out = True
        for ext in wanted - set(out):
            if ext in self.finished:
                out[ext] = self.finished.pop(ext)
        return out

    def take_reports_matching(self, base_id: str) -> dict[str, dict[str, Any]]:
        """Final reports of every request whose id contains ``base_id``: the
        server's request and the sub-requests vLLM derives from it (``n`` > 1,
        several prompts)."""
        ids = {external_request_id(r) for r in self.requests} | set(self.finished)
        return self.take_reports([i for i in ids if base_id in i])

    # -- planning --------------------------------------------------------
    def _skip_set(
        self, state: RequestVoid, phase: PhaseParams, is_decode: bool, model: str
    ) -> tuple[int, ...]:
        if not phase.skips:
            return ()
        if phase.policy == "adaptive":
            return state.adaptive.settle(phase.ratio) or ()
        profile = self.profile(model)
        if profile is None or profile.num_layers != state.num_layers:
            return ()
        if phase.policy == "shortgpt" and profile.block_influence is None:
            return ()
        return profile.skip_set(is_decode, phase.ratio, phase.policy)

    def plan_step(
        self,
        live_requests: dict[str, Any],
        req_ids: list[str],
        query_start_loc: np.ndarray,
        num_computed: np.ndarray,
        num_rows: int,
        num_layers: int,
        model: str,
        device: torch.device,
    ) -> StepPlan | None:
        """Per-row decisions for a step, or None when every row is stock.

        Row positions come from the runner's host-side counters (tokens of a
        request are consecutive), so planning never waits on the device.
        """
        self._sync_requests(live_requests, num_layers)
        if self.mlp_rows_run is None:
            self.mlp_rows_run = np.zeros(num_layers, dtype=np.int64)
        states = [self.requests[r] for r in req_ids]
        if all(s.params.is_stock for s in states):
            for i, (req_id, state) in enumerate(zip(req_ids, states, strict=True)):
                count = int(query_start_loc[i + 1]) - int(query_start_loc[i])
                num_prompt = live_requests[req_id].num_prompt_tokens
                state.account_range(int(num_computed[i]), count, num_prompt, num_layers)
            self.mlp_rows_run += int(query_start_loc[len(req_ids)])
            return None

        row_req = np.full(num_rows, -1, dtype=np.int64)
        row_pos = np.zeros(num_rows, dtype=np.int64)
        row_decode = np.zeros(num_rows, dtype=bool)
        for i, req_id in enumerate(req_ids):
            start, end = int(query_start_loc[i]), int(query_start_loc[i + 1])
            row_req[start:end] = i
            row_pos[start:end] = np.arange(end - start) + int(num_computed[i])
            # The phase of a token is what the request does at its position,
            # not the step's shape: recomputed output tokens stay "decode".
            row_decode[start:end] = row_pos[start:end] >= live_requests[req_id].num_prompt_tokens

        # Padding rows skip everything so they never force a layer to run.
        skip = np.ones((num_rows, num_layers), dtype=bool)
        alpha = np.zeros(num_rows, dtype=np.float32)
        mask_rows = np.zeros(num_rows, dtype=bool)
        need_lac = False
        for i, state in enumerate(states):
            for is_decode in (False, True):
                sel = np.nonzero((row_req == i) & (row_decode == is_decode))[0]
                if sel.size == 0:
                    continue
                phase = state.params.phase(is_decode)
                skip_set = self._skip_set(state, phase, is_decode, model)
                if phase.skips:
                    state.skipped["decode" if is_decode else "prefill"] = skip_set
                skip[sel] = False
                if skip_set:
                    skip[np.ix_(sel, np.asarray(skip_set))] = True
                alpha[sel] = phase.alpha
                mask_rows[sel] = phase.mode == "mask"
                decode = state.params.decode
                # An adaptive request gathers its evidence with LAC on its
                # prompt and its first decode tokens.
                gathering = decode.skips and decode.policy == "adaptive" and state.adaptive_pending
                need_lac |= phase.needs_lac or state.params.trace or gathering

        real = row_req >= 0
        return StepPlan(
            skip_mask=torch.from_numpy(skip).to(device),
            skip_np=skip,
            any_skip=skip[real].any(axis=0),
            all_skip=skip[real].all(axis=0),
            need_lac=need_lac,
            alpha=torch.from_numpy(alpha).to(device),
            mask_rows=torch.from_numpy(mask_rows).to(device) if mask_rows.any() else None,
            row_req=row_req,
            row_pos=row_pos,
            row_decode=row_decode,
            req_ids=list(req_ids),
        )

    def finish_step(self, plan: StepPlan) -> None:
        """File the step's layer usage and LAC bits into the requests' reports."""
        skip = plan.skip_np
        bits = plan.activated.cpu().numpy() if plan.activated is not None else None
        real = np.nonzero(plan.row_req >= 0)[0]
        self.mlp_rows_run += (~skip[real]).sum(axis=0)
        for row in real:
            state = self.requests[plan.req_ids[plan.row_req[row]]]
            pos = int(plan.row_pos[row])
            is_decode = bool(plan.row_decode[row])
            phase = "decode" if is_decode else "prefill"
            # A preempted request recomputes positions it already reported.
            if state.account(phase, pos, int((~skip[row]).sum())):
                if bits is not None:
                    state.lac_tokens[phase] += 1
                    state.activated[phase] += int(bits[row].sum())
            if is_decode:
                state.decode_positions.add(pos)
            if bits is None:
                continue
            if state.params.trace:
                state.bits[pos] = bits[row].astype(np.int8)
            if state.adaptive is not None:
                state.adaptive.observe(phase, pos, bits[row])


RUNTIME = VoidRuntime()
