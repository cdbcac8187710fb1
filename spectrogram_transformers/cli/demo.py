"""`spectrogram-transformers demo --model DIR_OR_HUB_ID`: a Gradio page to try a model in the browser.

    spectrogram-transformers demo --model runs/esc50 --port 7860
    spectrogram-transformers demo --model runs/esc50 --share          # Gradio's public link (needs the internet)

Needs the `[demo]` extra (gradio, matplotlib). The page is `spectrogram_transformers.demo.build_demo`.
"""

import argparse
import sys

from ..demo import DEFAULT_MAX_DURATION_S  # the demo module imports gradio only when a page is built
from ._argument_types import positive_int, positive_seconds, probability
from ._inference import add_model_arguments

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(
        parser, default_batch_size=16
    )  # --model, --batch-size, --device, --dtype, --backend: as classify
    parser.add_argument("--port", type=int, default=None, help="port (default: Gradio's, 7860 or the next free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument(
        "--top-k", "--top_k", dest="top_k", type=positive_int, default=5, help="labels shown (default 5)"
    )
    parser.add_argument(
        "--threshold", type=probability, default=0.5, help="event threshold of frame-level models (HTS-AT)"
    )
    parser.add_argument("--title", default=None, help="page title (default: family and model name)")
    parser.add_argument(
        "--max-duration",
        "--max_duration",
        dest="max_duration",
        type=positive_seconds,
        default=DEFAULT_MAX_DURATION_S,
        metavar="SECONDS",
        help=f"refuse uploads longer than this, read from the file's header before decoding (default {DEFAULT_MAX_DURATION_S:g} s)",
    )
    gradio = parser.add_argument_group("passed to Gradio's launch()")
    gradio.add_argument(
        "--share", action="store_true", help="also serve on a public *.gradio.live link (needs the internet)"
    )
    gradio.add_argument("--root-path", default=None, help="URL prefix when served behind a proxy")
    gradio.add_argument("--auth", default=None, metavar="USER:PASSWORD", help="ask for this user name and password")
    gradio.add_argument("--max-file-size", default=None, help="largest upload, e.g. 50mb")


def launch_options(args: argparse.Namespace) -> dict:
    """Keyword arguments of `Blocks.launch` from the command line."""
    options = {"server_name": args.host, "server_port": args.port, "share": args.share, "root_path": args.root_path}
    if args.auth is not None:
        user, separator, password = args.auth.partition(":")
        if not separator or not user:
            raise SystemExit(f"--auth: expected USER:PASSWORD, got {args.auth!r}")
        options["auth"] = (user, password)
    if args.max_file_size is not None:
        options["max_file_size"] = args.max_file_size
    return options


def run(args: argparse.Namespace) -> int:
    from ..demo import build_demo  # imports gradio only when the page is built

    options = launch_options(args)
    try:
        demo = build_demo(
            args.model,
            title=args.title,
            top_k=args.top_k,
            threshold=args.threshold,
            max_duration=args.max_duration,
            device=args.device,
            batch_size=args.batch_size,
            dtype=args.dtype,
            backend=args.backend,
        )
    except ImportError as error:
        raise SystemExit(f"demo: {error}") from None
    except (OSError, ValueError) as error:  # no such model directory or Hub id, a bad option
        raise SystemExit(f"demo: cannot load {args.model}: {error}") from None
    print(f"demo of {args.model}: starting Gradio (Ctrl+C to stop)", file=sys.stderr, flush=True)
    demo.launch(**options)
    return 0
