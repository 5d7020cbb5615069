"""Prometheus metrics, one registry per app (so several apps in one process, as in the
tests, do not collide). With several uvicorn workers each process reports its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "socialcart_http_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "socialcart_http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.model = Info("socialcart_model", "The model being served.", registry=r)
        self.model_loaded = Gauge(
            "socialcart_model_loaded_timestamp_seconds",
            "When the served model was loaded.",
            registry=r,
        )
        self.store_write = Histogram(
            "socialcart_store_write_duration_seconds",
            "Time to store and commit a write (with the writes committed alongside it), by kind.",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.live_updates = Counter(
            "socialcart_live_updates",
            "Writes applied to the live model, by kind and origin (request, replay, sync).",
            ["kind", "origin"],
            registry=r,
        )
        self.skipped = Counter(
            "socialcart_live_updates_skipped",
            "Stored writes the live model could not apply, by kind.",
            ["kind"],
            registry=r,
        )
        self.reloads = Counter(
            "socialcart_model_reloads", "Model reloads by outcome.", ["outcome"], registry=r
        )
        self.recommend_batch = Histogram(
            "socialcart_recommend_batch_people",
            "People in each batched recommendation call.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
            registry=r,
        )
        self.write_batch = Histogram(
            "socialcart_write_batch_writes",
            "Writes stored in each transaction (group commit).",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
            registry=r,
        )
        self.rate_limited = Counter(
            "socialcart_rate_limited", "Writes refused by the rate limiter.", registry=r
        )

    def model_loaded_now(self, version: str, model_dir: str, loaded_at: float) -> None:
        self.model.info({"version": version, "model_dir": model_dir})
        self.model_loaded.set(loaded_at)
