"""Adapters: where rooms live and how a broadcast reaches its sockets."""

from realtime.adapters.base import Adapter, BroadcastOptions, LocalNamespace, SocketId
from realtime.adapters.memory import InMemoryAdapter

__all__ = ["Adapter", "BroadcastOptions", "InMemoryAdapter", "LocalNamespace", "SocketId"]
