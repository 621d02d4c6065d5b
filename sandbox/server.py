"""Run the sandbox over real HTTP: in the foreground (`run`) or in a test thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from sandbox.app import create_app
from sandbox.config import SandboxConfig

__all__ = ["run", "serve_app_in_thread", "serve_in_thread"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def _uvicorn_config(config: SandboxConfig | None, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(config),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )


def run(
    host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, config: SandboxConfig | None = None
) -> None:
    """Serve the sandbox agencies until interrupted (each agency under /<agency>)."""
    uvicorn.Server(_uvicorn_config(config, host, port)).run()


@contextmanager
def serve_in_thread(
    config: SandboxConfig | None = None, port: int = 0, host: str = DEFAULT_HOST
) -> Iterator[str]:
    """Serve the sandbox from a background thread; yields the root URL, e.g. http://127.0.0.1:PORT."""
    with serve_app_in_thread(create_app(config), port=port, host=host, name="sandbox") as url:
        yield url


@contextmanager
def serve_app_in_thread(
    app: Any, *, port: int = 0, host: str = DEFAULT_HOST, name: str = "app"
) -> Iterator[str]:
    """Serve an ASGI app with uvicorn from a background thread; yields its root URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=host, port=bound_port, log_level="warning", access_log=False, lifespan="off"
        )
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"{name}-uvicorn", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 10.0
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{name} server did not start")
            time.sleep(0.01)
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10.0)
        sock.close()


def main(argv: list[str] | None = None) -> None:
    """Command line: python -m sandbox.server [--host H] [--port P] [--households N] ..."""
    import argparse

    from sandbox.config import FaultConfig, RegistryDataConfig

    parser = argparse.ArgumentParser(description="Serve the CETTAR Hub sandbox agencies.")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--households", type=int, default=RegistryDataConfig().households)
    parser.add_argument("--seed", type=int, default=RegistryDataConfig().seed)
    parser.add_argument("--epoch", type=int, default=0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--rate-limit-rate", type=float, default=0.0)
    parser.add_argument("--drop-rate", type=float, default=0.0)
    parser.add_argument("--truncate-rate", type=float, default=0.0)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--page-cache", help="serve registry pages rendered once, kept here")
    parser.add_argument("--prerender", type=int, help="first render every page of this size")
    args = parser.parse_args(argv)
    if args.prerender is not None and args.page_cache is None:
        parser.error("--prerender needs --page-cache")
    config = SandboxConfig(
        registry=RegistryDataConfig(seed=args.seed, households=args.households, epoch=args.epoch),
        faults=FaultConfig(
            error_rate=args.error_rate,
            rate_limit_rate=args.rate_limit_rate,
            drop_rate=args.drop_rate,
            truncate_rate=args.truncate_rate,
            latency_ms=args.latency_ms,
        ),
        page_cache_dir=None if args.page_cache is None else Path(args.page_cache),
    )
    if args.prerender is not None:
        from sandbox.page_cache import prerender_config

        prerender_config(config, args.prerender)
    run(args.host, args.port, config)


if __name__ == "__main__":
    main()
