"""The real RabbitMQ through rabbitmqctl: one vhost per test session (`devtools.rabbit`)."""
from __future__ import annotations

from devtools.rabbit import (
    VHOST_PREFIX,
    QueueSweeper,
    base_url,
    close_connections,
    create_vhost,
    ctl,
    delete_stale_vhosts,
    delete_vhost,
    queue_depths,
    reachable,
    url_for_vhost,
)

__all__ = ["VHOST_PREFIX", "QueueSweeper", "base_url", "close_connections", "create_vhost", "ctl",
           "delete_stale_vhosts", "delete_vhost", "queue_depths", "reachable", "url_for_vhost"]
