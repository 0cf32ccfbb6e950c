// Package topic validates MQTT topic names and topic filters, matches them,
// and indexes them: Trie holds the subscriptions a published topic name is
// routed by, Retained holds the retained messages a new subscription is
// answered with.
//
// Matching follows MQTT 3.1.1 and 5.0 section 4.7: '/' separates levels,
// '+' matches exactly one level, '#' matches the parent level and any number
// of levels below it, and a filter that starts with a wildcard does not match
// a topic name that starts with '$' [MQTT-4.7.2-1]. Levels are compared byte
// for byte, with no normalisation [MQTT-4.7.3-4].
//
// Shared subscriptions ("$share/{group}/{filter}", MQTT 5.0 section 4.8.2)
// are split by ParseShared and stored in the Trie as a Group per group name
// and filter, so the router can deliver each message to one member.
package topic
