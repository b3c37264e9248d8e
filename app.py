"""Entry point (also the Hugging Face Space's ``app_file``): build the app and launch it.

``python app.py`` serves on http://127.0.0.1:7860; ``GRADIO_SERVER_NAME`` and
``GRADIO_SERVER_PORT`` override the host and port. Settings come from the
``COLORBENCH_*`` environment variables (see ``space/context.py``).
"""

from __future__ import annotations

import logging
import os


def main() -> None:
    logging.basicConfig(level=os.environ.get("COLORBENCH_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from space.app import build_app, launch_kwargs
    from space.context import AppContext

    ctx = AppContext.from_env()
    demo = build_app(ctx)
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
                **launch_kwargs(ctx))


if __name__ == "__main__":
    main()
