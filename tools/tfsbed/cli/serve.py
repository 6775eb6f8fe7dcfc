"""``tfsctl serve``: run SavedModels behind TF Serving's gRPC and REST APIs.

Takes ``tensorflow_model_server``'s own flags (``--flag=value`` or ``--flag value``),
so a chart can run ``tfsctl serve`` in place of the binary. TensorFlow is imported
only once the flags are valid and models are about to load.
"""

from __future__ import annotations

import logging
import sys

import click

from tfsctl.errors import ToolkitError


@click.command(
    context_settings={
        "ignore_unknown_options": True,
        "allow_extra_args": True,
        "help_option_names": ["-h", "--help"],
    },
    add_help_option=True,
)
@click.argument("flags", nargs=-1, type=click.UNPROCESSED)
def serve(flags: tuple[str, ...]) -> None:
    """Serve models like tensorflow_model_server (same flags).

    \b
    Examples:
      tfsctl serve --port=8500 --rest_api_port=8501 --model_name=m --model_base_path=/models/m
      tfsctl serve --port 8500 --rest_api_port 8501 --model_config_file=/etc/tfserving/model_config.pbtxt \\
                   --model_config_file_poll_wait_seconds=2 --allow_version_labels_for_unavailable_models=true

    \b
    --ssl_config_file=FILE: text-format tensorflow.serving.SSLConfig with PEM contents
      (server_key, server_cert, custom_ca, client_verify). As in TensorFlow Serving it
      secures the gRPC port only (mutual TLS when client_verify: true, clients signed by
      custom_ca); the REST port stays plain HTTP. Checked before any model loads.

    """
    from tfsbed.serve.flags import parse_flags
    from tfsbed.serve.server import serve as run

    options = parse_flags(flags)
    root = logging.getLogger()
    if root.level > logging.INFO or root.level == logging.NOTSET:
        # A server's lifecycle lines (loaded, listening, draining) are its normal output.
        logging.getLogger("tfsctl").setLevel(logging.INFO)
    status = run(options)
    if status:
        raise ToolkitError(f"server exited with status {status}")
    sys.stdout.flush()
