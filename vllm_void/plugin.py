"""The vLLM general plugin: registers the void-aware models and three hooks.

vLLM loads this in every process (front end, engine core, workers) when the
plugin is enabled (``VLLM_PLUGINS`` unset, or naming ``void``):

- model registry: Llama, Mistral and Qwen2 architectures map to the void-aware
  adapters in :mod:`vllm_void.models`;
- front end, ``InputProcessor.process_inputs``: validates each request's void
  fields (a bad one is a ``VLLMValidationError`` naming the field, raised
  before the request reaches the engine) and salts the prefix cache of
  requests whose KV differs from the full model's;
- engine core, block hashing: a request that skips in decode only keeps its
  prompt blocks shared with the full model's and salts its generated blocks;
- worker, ``GPUModelRunner._model_forward`` (the CPU runner inherits it):
  plans the step's per-row void decisions around the model call;
- worker RPCs for ``collective_rpc``: ``void_take_reports(_matching)``,
  ``void_layer_rows``, ``void_set_profile``.
"""

from __future__ import annotations

import functools
from typing import Any

# Separates a request's own cache salt from the void key that applies to
# generated tokens' blocks only.
DECODE_SALT_MARK = "|void-decode|"
ARCHITECTURES = {
    "LlamaForCausalLM": "vllm_void.models.llama:VoidLlamaForCausalLM",
    "MistralForCausalLM": "vllm_void.models.mistral:VoidMistralForCausalLM",
    "Qwen2ForCausalLM": "vllm_void.models.qwen2:VoidQwen2ForCausalLM",
}
_PATCHED = "_vllm_void_patched"


def register() -> None:
    """Entry point of ``vllm.general_plugins``; safe to call more than once."""
    from vllm import ModelRegistry

    for arch, target in ARCHITECTURES.items():
        ModelRegistry.register_model(arch, target)
    _patch_input_processor()
    _patch_block_hashes()
    _patch_model_runner()
    _add_worker_rpcs()


def _patch_input_processor() -> None:
    from vllm.exceptions import VLLMValidationError
    from vllm.v1.engine.input_processor import InputProcessor

    class VoidValidationError(VLLMValidationError, ValueError):
        """A bad void field: a 400 for vLLM's server, a ValueError for Python callers."""

    from vllm_void.params import VoidParamError, parse_void_params
    from vllm_void.policy import load_profile

    original = InputProcessor.process_inputs
    if getattr(original, _PATCHED, False):
        return

    @functools.wraps(original)
    def process_inputs(self: InputProcessor, *args: Any, **kwargs: Any) -> Any:
        request = original(self, *args, **kwargs)
        sampling = request.sampling_params
        if sampling is None:
            return request
        try:
            params = parse_void_params(sampling.extra_args)
        except VoidParamError as err:
            raise VoidValidationError(str(err), parameter=err.field) from None
        policies = {p.policy for p in (params.prefill, params.decode) if p.skips}
        profile = load_profile(self.model_config.model) if policies - {"adaptive"} else None
        if policies - {"adaptive"} and profile is None:
            raise VoidValidationError(
                f"void_ratio: model {self.model_config.model!r} has no void profile; "
                "run `vllm-void calibrate` on it or set void_policy to 'adaptive'",
                parameter="void_ratio",
            )
        if "shortgpt" in policies and profile.block_influence is None:
            raise VoidValidationError(
                f"void_policy: model {self.model_config.model!r} has no block influence "
                "in its void profile; run `vllm-void calibrate --block-influence` on it",
                parameter="void_policy",
            )
        if not params.kv_exact:
            # Blocks written while skipping hold KV the full model would not
            # write: only requests with the same void settings may reuse them.
            # When only decode skips, the prompt's blocks are the full model's
            # and stay shared: the salt then applies from the first block
            # holding a generated token (see _patch_block_hashes).
            mark = DECODE_SALT_MARK if params.prefill_kv_exact else ""
            request.cache_salt = (request.cache_salt or "") + mark + params.cache_key()
        return request

    setattr(process_inputs, _PATCHED, True)
    InputProcessor.process_inputs = process_inputs


def _patch_block_hashes() -> None:
    """Salt only the blocks that hold generated tokens of decode-skipping requests.

    vLLM hashes a request's salt into its first block, so every block chained
    after it differs. For a salt carrying :data:`DECODE_SALT_MARK`, the part
    before the mark keeps that meaning and the void key goes into the extra
    keys of each block that reaches past the prompt: prompt blocks hash as the
    full model's (their KV is), generated blocks stay private to the setting.
    """
    from vllm.v1.core import block_pool, kv_cache_utils

    original = kv_cache_utils.generate_block_hash_extra_keys
    if getattr(original, _PATCHED, False):
        return

    @functools.wraps(original)
    def generate_block_hash_extra_keys(
        request: Any, start_token_idx: int, end_token_idx: int, start_mm_idx: int
    ) -> tuple[tuple[Any, ...] | None, int]:
        salt = request.cache_salt
        if not salt or DECODE_SALT_MARK not in salt:
            return original(request, start_token_idx, end_token_idx, start_mm_idx)
        own_salt, _, void_key = salt.partition(DECODE_SALT_MARK)
        request.cache_salt = own_salt or None
        try:
            keys, next_mm_idx = original(request, start_token_idx, end_token_idx, start_mm_idx)
        finally:
            request.cache_salt = salt
        if end_token_idx > request.num_prompt_tokens:
            keys = (*(keys or ()), ("void_decode", void_key))
        return keys, next_mm_idx

    setattr(generate_block_hash_extra_keys, _PATCHED, True)
    # block_pool imported the function by name: rebind it there too.
    kv_cache_utils.generate_block_hash_extra_keys = generate_block_hash_extra_keys
    block_pool.generate_block_hash_extra_keys = generate_block_hash_extra_keys


def _patch_model_runner() -> None:
    from vllm.v1.worker.gpu_model_runner import GPUModelRunner

    from vllm_void.models import VoidCausalLM
    from vllm_void.runtime import RUNTIME

    original = GPUModelRunner._model_forward
    if getattr(original, _PATCHED, False):
        return

    @functools.wraps(original)
    def _model_forward(self: GPUModelRunner, *args: Any, **kwargs: Any) -> Any:
        model = self.get_model()
        positions = kwargs.get("positions")
        if not isinstance(model, VoidCausalLM) or positions is None:
            return original(self, *args, **kwargs)
        batch = self.input_batch
        num_reqs = batch.num_reqs
        plan = RUNTIME.plan_step(
            live_requests=self.requests,
            req_ids=batch.req_ids[:num_reqs],
            query_start_loc=self.query_start_loc.np[: num_reqs + 1],
            num_computed=batch.num_computed_tokens_cpu[:num_reqs],
            num_rows=positions.shape[0],
            num_layers=model.config.num_hidden_layers,
            model=self.model_config.model,
            device=positions.device,
        )
        RUNTIME.current = plan
        try:
            output = original(self, *args, **kwargs)
        finally:
            RUNTIME.current = None
        if plan is not None:
            RUNTIME.finish_step(plan)
        return output

    setattr(_model_forward, _PATCHED, True)
    GPUModelRunner._model_forward = _model_forward


def _add_worker_rpcs() -> None:
    from vllm.v1.worker.worker_base import WorkerBase

    from vllm_void.policy import VoidProfile
    from vllm_void.runtime import RUNTIME

    def void_take_reports(self: WorkerBase, request_ids: list[str]) -> dict[str, Any]:
        return RUNTIME.take_reports(request_ids)

    def void_take_reports_matching(self: WorkerBase, base_id: str) -> dict[str, Any]:
        return RUNTIME.take_reports_matching(base_id)

    def void_layer_rows(self: WorkerBase) -> list[int]:
        rows = RUNTIME.mlp_rows_run
        return [] if rows is None else rows.tolist()

    def void_set_profile(self: WorkerBase, model: str, profile_json: str) -> None:
        RUNTIME.set_profile(model, VoidProfile.from_json(profile_json))

    WorkerBase.void_take_reports = void_take_reports
    WorkerBase.void_take_reports_matching = void_take_reports_matching
    WorkerBase.void_layer_rows = void_layer_rows
    WorkerBase.void_set_profile = void_set_profile
