"""Typed keys for what the console's app and each request carry."""

from __future__ import annotations

import asyncio

import jinja2
from aiohttp import web

from leadline.broker import Broker
from worker.dlq_console.settings import ConsoleSettings

SETTINGS = web.AppKey("settings", ConsoleSettings)
BROKER = web.AppKey("broker", Broker)
SECRET = web.AppKey("csrf_secret", bytes)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
LOCK = web.AppKey("lock", asyncio.Lock)
USER = web.RequestKey("user", str)  # the Basic user name, for the audit lines
