// Package listenertest proves Herald's listeners end to end: an in-process
// broker behind the TLS, WebSocket and secure WebSocket listeners, driven
// by third-party clients (paho.golang for MQTT 5, paho.mqtt.golang for
// 3.1.1, and mqtt.js in headless Chromium), with client certificates and
// per-listener connection limits. It holds tests only.
package listenertest
