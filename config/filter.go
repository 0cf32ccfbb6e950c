package config

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// The topic checks here are a small local copy of the rules, not an import
// of package topic: config stays free of the broker's packages so that any
// of them can import it.

// checkTopicString applies the rules shared by topic names and filters.
func checkTopicString(s string) error {
	switch {
	case s == "":
		return errors.New("must not be empty") // [MQTT-4.7.3-1]
	case len(s) > 65535:
		return fmt.Errorf("must be at most 65535 bytes, got %d", len(s))
	case !utf8.ValidString(s):
		return fmt.Errorf("must be valid UTF-8, got %q", s)
	case strings.ContainsRune(s, 0):
		return fmt.Errorf("must not contain the null character, got %q", s) // [MQTT-4.7.3-2]
	}
	return nil
}

// checkFilter checks an MQTT topic filter, as used in a subscription or an
// ACL rule.
func checkFilter(f string) error {
	if err := checkTopicString(f); err != nil {
		return err
	}
	levels := strings.Split(f, "/")
	for i, level := range levels {
		// [MQTT-4.7.1-1] '#' must be the last character and alone in its level.
		if strings.Contains(level, "#") && (level != "#" || i != len(levels)-1) {
			return fmt.Errorf("'#' must be the whole last level of a filter, got %q", f)
		}
		// [MQTT-4.7.1-2] '+' must occupy an entire level.
		if strings.Contains(level, "+") && level != "+" {
			return fmt.Errorf("'+' must be a whole level of a filter, got %q", f)
		}
	}
	return nil
}

// checkTopicName checks an MQTT topic name, as used in a publish.
func checkTopicName(t string) error {
	if err := checkTopicString(t); err != nil {
		return err
	}
	if strings.ContainsAny(t, "+#") { // [MQTT-3.3.2-2]
		return fmt.Errorf("a topic name must not contain '+' or '#', got %q", t)
	}
	return nil
}

// checkKafkaTopic checks a Kafka topic name: 1 to 249 of [a-zA-Z0-9._-],
// and not "." or "..".
func checkKafkaTopic(t string) error {
	const allowed = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"
	switch {
	case t == "":
		return errors.New("must not be empty")
	case len(t) > 249:
		return fmt.Errorf("a Kafka topic is at most 249 characters, got %d", len(t))
	case t == "." || t == "..":
		return fmt.Errorf("%q is not a valid Kafka topic", t)
	case strings.Trim(t, allowed) != "":
		return fmt.Errorf("a Kafka topic may hold only letters, digits, '.', '_' and '-', got %q", t)
	}
	return nil
}
