"""`python main.py index build|status`: rebuild the FAISS index from SQLite, or show its state."""

from __future__ import annotations

import argparse

from core.cli.output import print_json, print_table
from core.config import config_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("build", "status"), nargs="?", default="status")
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    from core.embedder import index_dir
    from core.logs import configure_logging
    from core.store import connect
    from core.vectorindex import IndexMaintainer, IndexStore

    configure_logging("WARNING")  # the command prints what it built
    config = config_from_args(args)
    conn = connect(config.db_path)
    store = IndexStore(index_dir(config))
    try:
        if args.action == "build":
            result = IndexMaintainer(store, config.embedding_model).rebuild(conn)
            if args.json:
                print_json(result)
            else:
                print(f"built {result['type']} index of {result['count']:,} vectors in {result['seconds']:.2f}s "
                      f"({store.directory})")
            return 0
        meta = store.read_meta()
        queue = conn.execute(
            "SELECT count(*) FILTER (WHERE parked = 0), count(*) FILTER (WHERE parked = 1) FROM embed_jobs"
        ).fetchone()
        embedded = conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
        lag = conn.execute("SELECT count(*) FROM index_log WHERE seq > ?",
                           (meta.log_seq if meta else 0,)).fetchone()[0]
        status = {"index": meta.__dict__ if meta else None, "embedded": embedded, "pending_jobs": queue[0],
                  "parked_jobs": queue[1], "changes_not_indexed": lag}
        if args.json:
            print_json(status)
            return 0
        if meta is None:
            print(f"no index yet in {store.directory}")
        else:
            print_table(["type", "vectors", "model", "updated"],
                        [[meta.index_type, f"{meta.count:,}", meta.model, meta.updated_at]])
        print(f"embeddings stored: {embedded:,}; jobs pending: {queue[0]:,}, parked: {queue[1]:,}; "
              f"changes not yet indexed: {lag:,}")
        return 0
    finally:
        conn.close()
