"""Publishers of redacted frames: MQTT today (edgeanon.publish.mqtt)."""

from edgeanon.publish.mqtt import OFFLINE, ONLINE, STOPPED, MqttPublisher, PublishError, Topics, make_client

__all__ = ["MqttPublisher", "PublishError", "Topics", "make_client", "ONLINE", "OFFLINE", "STOPPED"]
