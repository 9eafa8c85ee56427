"""Validates discovery configs (`topic payload` lines, as `mosquitto_sub -v` prints them, on
standard input) with Home Assistant's MQTT platform schemas. Used by scripts/ha-discovery-check."""

import importlib
import json
import sys

import voluptuous as vol
from homeassistant.helpers import frame

# Template options warn through the frame helper, which needs a running Home Assistant.
frame.report_usage = lambda *args, **kwargs: None

checked = refused = 0
for line in sys.stdin:
    topic, _, payload = line.strip().partition(" ")
    if not payload:
        continue  # a withdrawn entity (empty retained config)
    component = topic.split("/")[1]
    schema = importlib.import_module(f"homeassistant.components.mqtt.{component}").DISCOVERY_SCHEMA
    checked += 1
    try:
        schema(json.loads(payload))
        print(f"ok      {topic}")
    except vol.Invalid as error:
        refused += 1
        print(f"REFUSED {topic}: {error}")
print(f"{checked - refused} passed, {refused} failed")
sys.exit(1 if refused or not checked else 0)
