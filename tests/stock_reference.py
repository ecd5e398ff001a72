"""Greedy token ids from stock vLLM, run in its own process with no plugin.

``VLLM_PLUGINS=""`` keeps the void plugin out of this process and of the
engine processes it starts, so these are vLLM's own model classes, with the
same engine settings as the tests' void engine.

usage: python stock_reference.py MODEL_DIR MAX_TOKENS ENGINE_ARGS_JSON OUT_JSON < prompts.json
"""

import json
import os
import sys


def main() -> None:
    assert os.environ.get("VLLM_PLUGINS") == "", "run with VLLM_PLUGINS= (empty)"
    from vllm import LLM, SamplingParams

    model, max_tokens, engine_args = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    prompts = json.load(sys.stdin)
    llm = LLM(model, **engine_args)
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens)
    batch = llm.generate(prompts, params, use_tqdm=False)
    with open(sys.argv[4], "w") as f:
        json.dump([list(o.outputs[0].token_ids) for o in batch], f)


if __name__ == "__main__":
    main()
