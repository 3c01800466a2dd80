"""Publishers of redacted frames: MQTT today (edgeanon.publish.mqtt)."""

from edgeanon.publish.mqtt import OFFLINE, ONLINE, STOPPED, MqttPublisher, PublishError, Topics

__all__ = ["MqttPublisher", "PublishError", "Topics", "ONLINE", "OFFLINE", "STOPPED"]
